"""``course grade``: grade the class with plain nbgrader and print what happened.

For each assignment it first checks that ``source/`` is still what was released (``course.release``),
then runs what an instructor would type:

    nbgrader generate_assignment A --force   # refresh release/ and the gradebook from source/
    nbgrader autograde A --force             # every student in submitted/
    nbgrader generate_feedback A --force
    nbgrader export                          # grades.csv

except that the autograde step runs the students on N Dask workers with a progress bar (``course.parallel``,
the same gradebook as the serial command); ``serial`` runs the plain command instead. Then it prints the
grade table (``course.report.table``) and writes the class report (``course.report``).
"""

from __future__ import annotations

import os
import shutil
from contextlib import nullcontext
from pathlib import Path

from course import intake, release, sandbox
from course import report as class_report
from course.report import table as grade_table
from course.runner import CourseError, gradebook, nbgrader, save_costs, students, unsafe_entries


def record_ungradable(course: Path, assignment: str, only: list[str] | None = None) -> list[str]:
    """Give 0 to every test nbgrader could not grade, as nbgrader itself does for a missing notebook: all
    tests of a submission without a gradable notebook (none handed in, or not a notebook), so the student is
    in the gradebook, grades.csv and the table instead of silently absent; and a test cell missing from the
    graded notebook (deleted, and not re-inserted because ``OverwriteCells.add_missing_cells`` is off), which
    nbgrader would otherwise leave waiting for a manual grade (every test here is an autograded code cell).
    Returns the students concerned."""
    from nbgrader.api import MissingEntry

    found = []
    with gradebook(course) as book:
        for student in only or students(course, assignment):
            book.update_or_create_student(student)
            try:
                submission = book.find_submission(assignment, student)
            except MissingEntry:
                submission = book.add_submission(assignment, student)
            changed = False
            for notebook in submission.notebooks:
                graded = (course / "autograded" / student / assignment / f"{notebook.name}.ipynb").exists()
                for grade in notebook.grades:
                    if not graded or grade.auto_score is None and grade.cell.cell_type == "code":
                        grade.auto_score, grade.needs_manual_grade, changed = 0, False, True
            if changed:
                book.db.commit()
                found.append(student)
    return found


def nbgrader_failures(output: str) -> dict[str, str]:
    """{student: the exception that stopped nbgrader on that student's notebook} from ``nbgrader autograde``'s
    log (a serial run; a parallel job reports its own), e.g. ``DeadKernelError: Kernel died``."""
    import re

    found, student = {}, None
    for line in output.splitlines():
        start = re.search(r"There was an error processing assignment: .*/submitted/([^/]+)/[^/]+/?$", line)
        if start:
            student = start.group(1)
            continue
        error = re.match(r"\s+(?:[\w.]+\.)?(\w+(?:Error|Exception|Interrupt)): ?(.*)$", line)
        if student and error:
            found[student] = f"nbgrader could not grade the notebook: {error.group(1)}: {error.group(2)}".strip()[:300]
        elif student and line.startswith("[") and "Traceback" not in line:
            student = None
    return found


def quarantine_links(course: Path, assignment: str, only: list[str] | None = None) -> list[str]:
    """Move every link, hard link and special file out of the students' folders into ``quarantine/`` (kept as
    they are, nothing followed), before nbgrader copies the folders with the grader's rights, following
    links. Returns what was moved."""
    moved = []
    for student in only or students(course, assignment):
        folder = course / "submitted" / student / assignment
        for path, why in unsafe_entries(folder):
            target = course / "quarantine" / student / assignment / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
            moved.append(f"{student}/{assignment}/{path.relative_to(folder)} ({why})")
    if moved:
        print(f"moved to quarantine/ (not graded): {'; '.join(moved)}", flush=True)
    return moved


def sandbox_ready() -> None:
    """Install the course-sandbox kernel spec; refuse to grade without bubblewrap (unless the sandbox is off)."""
    sandbox.install()
    if shutil.which("bwrap") is None and sandbox.enabled():
        raise CourseError("grading runs every kernel in a bubblewrap sandbox, and `bwrap` is not installed: "
                          "`sudo apt-get install -y bubblewrap` (or COURSE_SANDBOX=off to grade without it, unsafe)")


def main(*, course: str, assignments: list[str], workers: int | None = None, scheduler: str | None = None,
         timeout: float = 1800, cell_timeout: int | None = None, serial: bool = False, student: str | None = None,
         regrade_changed_source: bool = False) -> int:
    """Check that ``source/`` is what was released, generate, autograde (on ``workers`` Dask workers, or
    serially with plain nbgrader; every student, or only ``student``), write feedback, export grades.csv,
    print the table and write the class report."""
    from course.parallel import dask_client, grade_assignment

    course = Path(course).resolve()
    only = [student] if student else None
    for assignment in assignments:
        if student and not (course / "submitted" / student / assignment).is_dir():
            raise CourseError(f"no submitted/{student}/{assignment}: {student} handed nothing in for {assignment}")
        release.check(course, assignment, regrade_changed_source)
    one = ["--student", student] if student else []
    sandbox_ready()
    workers = workers or os.cpu_count() or 1
    extra = [f"--Execute.timeout={cell_timeout}"] if cell_timeout else []
    stopped = {}
    with nullcontext() if serial else dask_client(workers, scheduler) as client:
        if scheduler:
            workers = len(client.scheduler_info()["workers"])
        # Threads per kernel: the machine's cores shared among the local workers; a cluster's workers decide.
        threads = None if serial or scheduler or workers == 1 else max(1, (os.cpu_count() or 1) // workers)
        for assignment in assignments:
            quarantine_links(course, assignment, only)
            intake.prepare(course, assignment, only)  # unpack zips, give renamed notebooks their name
            nbgrader(course, "generate_assignment", assignment, "--force")
            if serial:
                # nbgrader exits 1 when a submission cannot be graded (e.g. not a notebook); the others are
                # graded all the same, and the table says which one and why
                log = course / "logs" / f"autograde-{assignment}.log"
                nbgrader(course, "autograde", assignment, "--force", *one, *extra, check=False, log=log)
                stopped.update({(s, assignment): why for s, why in nbgrader_failures(log.read_text()).items()})
                save_costs(course, assignment, {}, only)  # a serial run records no cost
            else:
                print(f"$ autograde {assignment} on {workers} Dask workers"
                      f"{f' ({threads} thread per kernel)' if threads else ''}", flush=True)
                run = grade_assignment(course, assignment, client, workers, threads, timeout, extra, only)
                stopped.update({(s, assignment): j.reason for s, j in run.jobs.items() if j.status != "ok"})
            record_ungradable(course, assignment, only)
            nbgrader(course, "generate_feedback", assignment, "--force", *one)
    nbgrader(course, "export")
    rows = [r for r in grade_table.rows(course, assignments, stopped) if not student or r.student == student]
    print("\n" + grade_table.table(rows) + "\n")
    class_report.write(course, assignments)
    print(f"\ngrades.csv, grades_by_test.csv, reports/, autograded/ and feedback/ written in {course}")
    return 0
