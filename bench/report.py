"""Benchmark: how long ``course report`` takes for a class of N students.

The class is made from a graded course (default: this repository after ``make demo``): each graded student
is copied under new names (``reference`` -> ``reference_000``, ...) until there are at least ``--students``
students, with their submitted folders, autograded notebooks, grading-cost records and gradebook entries
(every test's score copied through nbgrader's Gradebook API) in a scratch course. Then ``course report``
runs once on it, timed, and the result is appended to ``bench/results/report.txt``.

    .venv/bin/python bench/report.py [--course .] [--students 300]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from course import report
from course.runner import ROOT, assignments, gradebook, load_costs, save_costs, students


def copy_class(source: Path, target: Path, size: int) -> int:
    """A scratch course holding ``source``'s graded class, copied to at least ``size`` students."""
    for folder in ("source", "logs"):
        if (source / folder).exists():
            shutil.copytree(source / folder, target / folder)
    shutil.copy(source / "gradebook.db", target / "gradebook.db")
    names = sorted({s for a in assignments(source) for s in students(source, a)})
    copies = math.ceil(size / len(names))
    with gradebook(target) as book:
        for assignment in assignments(source):
            originals = {s.student_id: s for s in book.assignment_submissions(assignment)}
            jobs = load_costs(target, assignment)
            for name in names:
                if name not in originals:
                    continue
                scores = {(nb.name, g.name): g.auto_score for nb in originals[name].notebooks for g in nb.grades}
                for k in range(copies):
                    new = f"{name}_{k:03d}"
                    for folder in ("submitted", "autograded"):
                        if (source / folder / name / assignment).exists():
                            shutil.copytree(source / folder / name / assignment, target / folder / new / assignment,
                                            symlinks=True)
                    book.update_or_create_student(new)
                    copy = book.add_submission(assignment, new)
                    for notebook in copy.notebooks:
                        for grade in notebook.grades:
                            grade.auto_score = scores.get((notebook.name, grade.name))
                            grade.needs_manual_grade = False
                    if name in jobs:
                        jobs[new] = jobs[name]
                book.remove_submission(assignment, name)
            save_costs(target, assignment, jobs)
        book.db.commit()
    return copies * len(names)


def main() -> None:
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy's notes on the copied submissions
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--course", type=Path, default=ROOT)
    options.add_argument("--students", type=int, default=300)
    options.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "report.txt")
    args = options.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        course = Path(scratch)
        start = time.monotonic()
        size = copy_class(args.course.resolve(), course, args.students)
        made = time.monotonic() - start
        start = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            written = report.write(course, assignments(course))
        seconds = time.monotonic() - start
        pages = {p.name: p.stat().st_size for p in (course / "reports").glob("*.html")}
    lines = [f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}, {os.cpu_count()} cores, "
             f"python {platform.python_version()}",
             f"class of {size} students (copies of {args.course}'s graded class; {made:.1f} s to build)",
             f"course report, {len(pages)} assignments, {sum(len(r.students) for r in written)} submissions: "
             f"{seconds:.1f} s ({1000 * seconds / sum(len(r.students) for r in written):.0f} ms per submission)",
             "pages: " + ", ".join(f"{name} {size_ / 1e6:.2f} MB" for name, size_ in sorted(pages.items())),
             "summary printed:", *("  " + line for line in printed.getvalue().splitlines()[:12]), ""]
    print("\n".join(lines))
    with open(args.out, "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
