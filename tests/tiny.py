"""A tiny assignment (no TensorFlow, seconds per submission) for tests of the grading machinery itself:
one answer cell (``answer = 42``), two test cells worth 2 and 1 points."""

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
from conftest import COURSE

from course.runner import gradebook, nbgrader, nbgrader_env


def cell(source, **nbgrader_meta):
    meta = {"nbgrader": dict(nbgrader_meta, schema_version=3, task=False)} if nbgrader_meta else {}
    return nbformat.v4.new_code_cell(source, metadata=meta)


TINY = nbformat.v4.new_notebook(cells=[
    cell("import math", grade=False, solution=False, locked=True, grade_id="given"),
    cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", grade=False, solution=True, locked=False,
         grade_id="answer"),
    cell('"""the answer is 42"""\nassert answer == 42, "not 42"', grade=True, solution=False, locked=True,
         grade_id="test_value", points=2),
    cell('"""the answer is an int"""\nassert isinstance(answer, int)', grade=True, solution=False, locked=True,
         grade_id="test_type", points=1),
], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})

SOLVED = "answer = 42"


def tiny_course(root: Path, students: dict[str, str | None], owner: str | None = None) -> Path:
    """A course with the tiny assignment generated and one folder per student (answer: the answer cell's
    code; None: no notebook; the student ``broken``: a file that is not a notebook), owned by ``owner``."""
    (root / "source" / "tiny").mkdir(parents=True)
    shutil.copy(COURSE / "nbgrader_config.py", root)
    course = root
    nbformat.write(TINY, course / "source" / "tiny" / "tiny.ipynb")
    nbgrader(course, "generate_assignment", "tiny", "--force")
    release = nbformat.read(course / "release" / "tiny" / "tiny.ipynb", as_version=4)
    for student, answer in students.items():
        folder = course / "submitted" / student / "tiny"
        folder.mkdir(parents=True)
        if student == "broken":
            (folder / "tiny.ipynb").write_text("{ not a notebook")
        elif answer is not None:
            notebook = nbformat.from_dict(json.loads(json.dumps(release)))
            notebook.cells[1].source = answer
            nbformat.write(notebook, folder / "tiny.ipynb")
    give(root, owner)
    return course


def give(root: Path, owner: str | None) -> None:
    """Make ``owner`` the owner of ``root`` and all below it (links themselves, never what they point to)."""
    if owner:
        import pwd

        entry = pwd.getpwnam(owner)
        for path in [root, *root.rglob("*")]:
            os.lchown(path, entry.pw_uid, entry.pw_gid)


def account(user: str | None) -> dict:
    """subprocess arguments that run a command as ``user`` with that account's own groups only."""
    if not user:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def grade(course: Path, *options: str, user: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """``course grade tiny`` in ``course``, as this account or as ``user`` (with that account's home), with
    ``env`` added to the environment."""
    env = nbgrader_env(**env, **({"HOME": os.path.expanduser(f"~{user}"), "USER": user} if user else {}))
    done = subprocess.run([sys.executable, "-m", "course.cli", "grade", "tiny", "--cell-timeout", "5", *options],
                          cwd=course, env=env, capture_output=True, text=True, timeout=900, **account(user))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def gradebook_rows(course: Path) -> dict:
    rows = {}
    with gradebook(course) as book:
        for submission in book.assignment_submissions("tiny"):
            for notebook in submission.notebooks:
                for grade_ in notebook.grades:
                    rows[(submission.student_id, grade_.name)] = (grade_.score, grade_.auto_score,
                                                                 grade_.needs_manual_grade)
            rows[(submission.student_id, "timestamp")] = submission.timestamp
    return rows




@contextmanager
def dask_cluster(folder: Path, workers: dict[str, dict]):
    """A Dask scheduler and one ``dask worker`` process per entry of ``workers`` (name -> environment), as on
    a real cluster; yields the scheduler's address and each worker's address by name, and stops them all."""
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = folder / "scheduler.json"
    processes = [subprocess.Popen([dask, "scheduler", "--scheduler-file", str(scheduler_file), "--port", "0",
                                   "--no-dashboard"], env=nbgrader_env(), stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        address = json.loads(scheduler_file.read_text())["address"]
        for name, env in workers.items():
            processes.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                               "--name", name], env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
        with Client(address) as client:
            client.wait_for_workers(len(workers), timeout=120)
            named = {info["name"]: a for a, info in client.scheduler_info()["workers"].items()}
        yield address, named
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
