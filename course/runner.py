"""What every instructor command needs, each written once: nbgrader's environment, running nbgrader, opening
the gradebook, the course's assignments, a scratch copy of a course, the grading-cost records, killing a
process tree, and the error the CLI reports.

Library code raises ``CourseError``; only ``course.cli`` turns it into a message and an exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # this repository: the course folder the package ships with


class CourseError(RuntimeError):
    """A command cannot go on; the message says what failed and what to do."""


def nbgrader_env(**extra: str) -> dict:
    """The environment nbgrader needs: this Python's bin folder on PATH (nbgrader runs ``alembic`` from
    PATH when it creates a gradebook) and TensorFlow's log noise off; ``extra`` on top."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
    return dict(env, **extra)


def nbgrader(course: Path, *args: str, check: bool = True, log: Path | None = None) -> int:
    """Run one plain nbgrader command in the course folder (its whole output written to ``log``, if given). If
    it fails: raise ``CourseError`` with its output (``check``), else print its error lines and return its exit
    code."""
    print("$ nbgrader " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=nbgrader_env(),
                          capture_output=True, text=True)
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        if check:
            raise CourseError(f"nbgrader {' '.join(args)} failed (exit {done.returncode}):\n"
                              + (done.stdout + done.stderr)[-3000:])
        errors = [line for line in (done.stdout + done.stderr).splitlines()
                  if "| ERROR]" in line or line.startswith("course-sandbox:")]
        print("\n".join(errors[:20]), file=sys.stderr)
    return done.returncode


@contextmanager
def gradebook(path: Path):
    """nbgrader's gradebook: a course folder's ``gradebook.db``, or the database file ``path``."""
    from nbgrader.api import Gradebook

    path = Path(path)
    with Gradebook(f"sqlite:///{path / 'gradebook.db' if path.is_dir() else path}") as opened:
        yield opened


def assignments(course: Path = ROOT) -> list[str]:
    """The course's assignments: the folders of ``source/`` that hold their own notebook."""
    found = sorted(p.name for p in (Path(course) / "source").iterdir()
                   if p.is_dir() and (p / f"{p.name}.ipynb").exists())
    if not found:
        raise CourseError(f"no assignment in {Path(course) / 'source'} (expected source/<name>/<name>.ipynb)")
    return found


def students(course: Path, assignment: str) -> list[str]:
    """The students who handed in a folder for ``assignment`` in ``submitted/``."""
    return sorted(p.parent.name for p in (Path(course) / "submitted").glob(f"*/{assignment}") if p.is_dir())


def scratch_course(target: Path, source: Path = ROOT, submitted: Path | None = None,
                   generate: list[str] | tuple[str, ...] = ()) -> Path:
    """A copy of a course as an instructor has it before grading: ``nbgrader_config.py``, ``source/`` and the
    release record ``released.json`` of ``source``, the student folders under ``submitted`` (a ``submitted/``
    folder, or None for none), and ``generate``'s assignments generated (``release/`` and the gradebook)."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(source) / "nbgrader_config.py", target)
    shutil.copytree(Path(source) / "source", target / "source")
    if (Path(source) / "released.json").exists():  # what was handed out (course.release)
        shutil.copy(Path(source) / "released.json", target)
    if submitted is not None:
        shutil.copytree(submitted, target / "submitted", symlinks=True)
    for assignment in generate:
        nbgrader(target, "generate_assignment", assignment, "--force")
    return target


MAX_DEPTH = 32  # folders nested deeper than this break recursive walks (os.walk, shutil, nbgrader's copies)


def unsafe_entries(folder: Path) -> list[tuple[Path, str]]:
    """What in ``folder`` is not a plain file or folder of its own, with why: symbolic links (which a copy
    made by the grader would follow), hard links (another name of a file elsewhere), FIFOs, sockets and
    devices, setuid/setgid files, folders that cannot be listed or are nested deeper than ``MAX_DEPTH``.
    Nothing is followed while looking, and nothing recurses."""
    import stat

    folder = Path(folder)
    if folder.is_symlink():
        return [(folder, f"symbolic link to {os.readlink(folder)}")]
    found, stack = [], [(folder, 0)] if folder.is_dir() else []
    while stack:
        top, depth = stack.pop()
        try:
            entries = sorted(os.scandir(top), key=lambda e: e.name)
        except OSError as error:
            found.append((top, f"folder that cannot be listed ({type(error).__name__})"))
            continue
        for entry in entries:
            path, mode = Path(entry.path), entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(mode.st_mode):
                found.append((path, f"symbolic link to {os.readlink(path)}"))
            elif stat.S_ISDIR(mode.st_mode):
                if depth + 1 >= MAX_DEPTH:
                    found.append((path, f"folder nested deeper than {MAX_DEPTH} levels"))
                else:
                    stack.append((path, depth + 1))
            elif not stat.S_ISREG(mode.st_mode):
                found.append((path, "not a regular file"))
            elif mode.st_nlink > 1:
                found.append((path, "hard link (the same file has another name elsewhere)"))
            elif mode.st_mode & (stat.S_ISUID | stat.S_ISGID):
                found.append((path, "setuid or setgid file"))
    return found


def remove(path: Path) -> None:
    """Remove a file, link or folder however deep or closed, without following links (``rm -rf`` walks
    without recursing in Python; a folder the owner closed is opened first)."""
    if path.is_dir() and not path.is_symlink():
        subprocess.run(["chmod", "-R", "u+rwx", str(path)], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], capture_output=True)
    else:
        path.unlink(missing_ok=True)


def costs_file(course: Path, assignment: str) -> Path:
    """What grading cost per submission (seconds, peak kernel memory, worker), written by a parallel run."""
    return Path(course) / "logs" / f"jobs-{assignment}.json"


def load_costs(course: Path, assignment: str) -> dict[str, dict]:
    path = costs_file(course, assignment)
    return json.loads(path.read_text()) if path.exists() else {}


def save_costs(course: Path, assignment: str, costs: dict[str, dict], only: list[str] | None = None) -> None:
    """Replace the cost records with ``costs``; with ``only`` (a regrade of these students), replace only
    theirs. A serial run records none (``costs`` empty): the regraded students' old records go."""
    kept = {s: c for s, c in load_costs(course, assignment).items() if s not in only} if only else {}
    kept.update(costs)
    path = costs_file(course, assignment)
    if kept:
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(dict(sorted(kept.items())), indent=1))
    else:
        path.unlink(missing_ok=True)


def kill_below(pid: int) -> None:
    """SIGKILL every process below ``pid`` (a sandbox launcher's bwrap then takes its sandbox with it)."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass
