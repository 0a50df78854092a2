"""Instructor command: grade the class with plain nbgrader and print what happened.

``course grade [ASSIGNMENT ...]`` runs, for each assignment, the same commands an instructor would type:

    nbgrader generate_assignment A --force   # refresh release/ and the gradebook from source/
    nbgrader autograde A --force             # every student in submitted/
    nbgrader generate_feedback A --force
    nbgrader export                          # grades.csv

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


def nbgrader(course: Path, *args: str) -> None:
    """Run one plain nbgrader command in the course folder; stop with its output if it fails."""
    print("$ nbgrader " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=nbgrader_env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"nbgrader {' '.join(args)} failed (exit {done.returncode})")


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


def report(course: Path, assignments: list[str]) -> list[dict]:
    """One row per (student, assignment): score, max score and the failed tests with their reasons."""
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for assignment in assignments:
            for submission in gradebook.assignment_submissions(assignment):
                row = {"student": submission.student_id, "assignment": assignment,
                       "score": submission.score, "max_score": submission.max_score, "failed": {}}
                for notebook in submission.notebooks:
                    path = course / "autograded" / submission.student_id / assignment / f"{notebook.name}.ipynb"
                    if path.exists():
                        row["failed"].update(failures(path))
                    for grade in notebook.grades:  # a failed test without an error output (e.g. never run)
                        if grade.max_score and grade.score < grade.max_score:
                            row["failed"].setdefault(grade.name, "")
                rows.append(row)
    return sorted(rows, key=lambda r: (r["assignment"], r["student"]))


def print_table(rows: list[dict]) -> None:
    width = max([len(r["student"]) for r in rows] + [7])
    print(f"\n{'student':<{width}}  {'assignment':<10}  {'score':>9}  failed tests")
    for r in rows:
        failed = "; ".join(f"{name} ({why})" if why else name for name, why in r["failed"].items()) or "-"
        print(f"{r['student']:<{width}}  {r['assignment']:<10}  {r['score']:>4g}/{r['max_score']:<4g}  {failed}")


def grade_course(course: str, assignments: list[str]) -> int:
    course = Path(course).resolve()
    for assignment in assignments:
        nbgrader(course, "generate_assignment", assignment, "--force")
        nbgrader(course, "autograde", assignment, "--force")
        nbgrader(course, "generate_feedback", assignment, "--force")
    nbgrader(course, "export")
    rows = report(course, assignments)
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
