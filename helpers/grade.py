"""Instructor command: grade the class with plain nbgrader and print what happened.

``course grade [ASSIGNMENT ...]`` runs, for each assignment, the same commands an instructor would type:

    nbgrader generate_assignment A --force   # refresh release/ and the gradebook from source/
    nbgrader autograde A --force             # every student in submitted/
    nbgrader generate_feedback A --force
    nbgrader export                          # grades.csv

except that the autograde step runs the students on N Dask workers with a progress bar (``helpers.parallel``,
same gradebook as the serial command); ``--serial`` runs the plain command instead.

then prints one table: each student's score per assignment and the tests they failed, with the first
line of each failure message, read from the autograded notebooks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor


def nbgrader_env() -> dict:
    """The environment nbgrader needs: this Python's bin folder on PATH (nbgrader runs ``alembic`` from
    PATH when it creates a gradebook) and TensorFlow's log noise off."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return dict(os.environ, PATH=path, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))


def nbgrader(course: Path, *args: str, check: bool = True) -> int:
    """Run one plain nbgrader command in the course folder; stop with its output if it fails (``check``),
    else print its errors and go on."""
    print("$ nbgrader " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=nbgrader_env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        if check:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"nbgrader {' '.join(args)} failed (exit {done.returncode})")
        errors = [line for line in (done.stdout + done.stderr).splitlines() if "| ERROR]" in line]
        print("\n".join(errors[:20]), file=sys.stderr)
    return done.returncode


def failures(notebook_path: Path) -> dict[str, str]:
    """The failed test cells of an autograded notebook: grade_id -> the error's first message line."""
    found = {}
    for cell in nbformat.read(notebook_path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                message = (output.evalue or output.ename).strip().splitlines()
                found[meta["grade_id"]] = f"{output.ename}: {message[0] if message else ''}".strip()
                break
    return found


def student_errors(notebook_path: Path) -> list[str]:
    """The first error in a cell the student wrote (answer cells, added cells): where the trouble began."""
    for cell in nbformat.read(notebook_path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("locked") or meta.get("grade") and not meta.get("solution"):
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                message = (output.evalue or "").strip().splitlines()
                where = meta.get("grade_id") or "a cell the student added"
                return [f"{where} raised {output.ename}{': ' + message[0][:120] if message else ''}"]
    return []


def handed_in(course: Path, student: str, assignment: str, names: list[str]) -> list[str]:
    """Notes on the files themselves: a missing or unreadable notebook, extra notebooks that were ignored."""
    folder = course / "submitted" / student / assignment
    notes = []
    for name in names:
        path = folder / f"{name}.ipynb"
        if not path.exists():
            notes.append(f"no {name}.ipynb handed in")
            continue
        try:
            nbformat.read(path, as_version=4)
        except Exception as error:  # nbformat raises several kinds for a broken file
            notes.append(f"{name}.ipynb is not a valid notebook ({type(error).__name__})")
    extras = sorted(p.name for p in folder.glob("*.ipynb") if p.stem not in names)
    if extras:
        notes.append(f"extra notebook ignored: {', '.join(extras)}")
    return notes


def report(course: Path, assignments: list[str], stopped: dict | None = None) -> list[dict]:
    """One row per (student, assignment): score, max score, the failed tests with their reasons, and notes
    (files missing or broken, the first error in the student's own cells, a grading job that was stopped).
    ``stopped``: {(student, assignment): reason} from the parallel grader."""
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for assignment in assignments:
            names = [n.name for n in gradebook.find_assignment(assignment).notebooks]
            for submission in gradebook.assignment_submissions(assignment):
                student = submission.student_id
                row = {"student": student, "assignment": assignment, "score": submission.score,
                       "max_score": submission.max_score, "failed": {},
                       "notes": handed_in(course, student, assignment, names)}
                for notebook in submission.notebooks:
                    path = course / "autograded" / student / assignment / f"{notebook.name}.ipynb"
                    if path.exists():
                        row["failed"].update(failures(path))
                        row["notes"] += student_errors(path)
                    for grade in notebook.grades:  # a failed test without an error output (e.g. never run)
                        if grade.max_score and (grade.score or 0) < grade.max_score:
                            row["failed"].setdefault(grade.name, "")
                why = (stopped or {}).get((student, assignment))
                if why and not row["notes"] and not any(why in reason for reason in row["failed"].values()):
                    row["notes"].append(why)  # the files were fine, the grading job was not
                rows.append(row)
    return sorted(rows, key=lambda r: (r["assignment"], r["student"]))


def print_table(rows: list[dict]) -> None:
    width = max([len(r["student"]) for r in rows] + [7])
    print(f"\n{'student':<{width}}  {'assignment':<10}  {'score':>9}  failed tests  [notes]")
    for r in rows:
        by_reason: dict[str, list[str]] = {}  # tests that failed for the same reason are listed together
        for name, why in r["failed"].items():
            by_reason.setdefault(why, []).append(name)
        failed = "; ".join(f"{', '.join(names)} ({why})" if why else ", ".join(names)
                           for why, names in by_reason.items()) or "-"
        notes = f"  [{'; '.join(r['notes'])}]" if r["notes"] else ""
        print(f"{r['student']:<{width}}  {r['assignment']:<10}  {r['score']:>4g}/{r['max_score']:<4g}  {failed}{notes}")


def record_ungradable(course: Path, assignment: str) -> list[str]:
    """Give 0 to every test nbgrader could not grade, as nbgrader itself does for a missing notebook: all
    tests of a submission without a gradable notebook (none handed in, or not a notebook), so the student is
    in the gradebook, grades.csv and the table instead of silently absent; and a test cell the student
    deleted, which nbgrader would otherwise leave waiting for a manual grade (every test here is an
    autograded code cell). Returns the students concerned."""
    from nbgrader.api import Gradebook, MissingEntry

    found = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for folder in sorted(p for p in (course / "submitted").glob(f"*/{assignment}") if p.is_dir()):
            student = folder.parent.name
            gradebook.update_or_create_student(student)
            try:
                submission = gradebook.find_submission(assignment, student)
            except MissingEntry:
                submission = gradebook.add_submission(assignment, student)
            changed = False
            for notebook in submission.notebooks:
                graded = (course / "autograded" / student / assignment / f"{notebook.name}.ipynb").exists()
                for grade in notebook.grades:
                    if not graded or grade.auto_score is None and grade.cell.cell_type == "code":
                        grade.auto_score, grade.needs_manual_grade, changed = 0, False, True
            if changed:
                gradebook.db.commit()
                found.append(student)
    return found


def sandbox_ready() -> None:
    """Install the course-sandbox kernel spec; stop with what to do if bubblewrap is missing."""
    import shutil

    from helpers.sandbox import enabled, install

    install()
    if shutil.which("bwrap") is None and enabled():
        raise SystemExit("error: grading runs every kernel in a bubblewrap sandbox, and `bwrap` is not installed: "
                         "`sudo apt-get install -y bubblewrap` (or COURSE_SANDBOX=off to grade without it, unsafe)")


def grade_course(course: str, assignments: list[str], workers: int | None = None, scheduler: str | None = None,
                 timeout: float = 1800, cell_timeout: int | None = None, serial: bool = False) -> int:
    """Generate, autograde (on ``workers`` Dask workers, or serially with plain nbgrader), write feedback,
    export grades.csv and print the table."""
    course = Path(course).resolve()
    sandbox_ready()
    workers = workers or os.cpu_count() or 1
    extra = [f"--Execute.timeout={cell_timeout}"] if cell_timeout else []
    client = cluster = None
    if not serial:
        from helpers.parallel import cluster_client

        client, cluster = cluster_client(workers, scheduler)
        if scheduler:
            workers = len(client.scheduler_info()["workers"])
    # Threads per kernel: the machine's cores shared among the local workers; a cluster's workers decide.
    threads = None if serial or scheduler or workers == 1 else max(1, (os.cpu_count() or 1) // workers)
    stopped = {}
    try:
        for assignment in assignments:
            nbgrader(course, "generate_assignment", assignment, "--force")
            if serial:
                # nbgrader exits 1 when a submission cannot be graded (e.g. not a notebook); the others are
                # graded all the same, and the table below says which one and why
                nbgrader(course, "autograde", assignment, "--force", *extra, check=False)
            else:
                from helpers.parallel import grade_assignment

                print(f"$ autograde {assignment} on {workers} Dask workers"
                      f"{f' ({threads} thread per kernel)' if threads else ''}", flush=True)
                jobs = grade_assignment(course, assignment, client, workers, threads, timeout, extra)
                stopped.update({(s, assignment): j["reason"] for s, j in jobs.items() if j["status"] != "ok"})
            record_ungradable(course, assignment)
            nbgrader(course, "generate_feedback", assignment, "--force")
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    nbgrader(course, "export")
    rows = report(course, assignments, stopped)
    print_table(rows)
    print(f"\ngrades.csv, autograded/ and feedback/ written in {course}")
    return 0


class HideTestCode(Preprocessor):
    """Feedback preprocessor: a failed test shows its message only, not the traceback.

    nbgrader's feedback shows the autograded notebook as graded, hidden tests included (upstream #917,
    #1363); ``ClearHiddenTests`` removes them from the cells' source, and this removes them from the
    tracebacks, which quote the failing line. The student sees the test's docstring and its message.
    """

    enabled = True  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
