"""Benchmark: Run-All and autograde of each course notebook against the original listing's own run.

Everything runs one after another on this machine (never two trainings at once), in alternating order,
``--repeat`` times. A listing runs as ``python listing.py`` (process start and TensorFlow import
included); a notebook runs as Run-All in a fresh ``python3`` kernel (kernel start included), the
instructor's solution, all sections, as a student runs it; autograde is plain ``nbgrader autograde
<assignment> --student reference`` of the sample class's reference submission in a scratch course (nbgrader
start, the sandbox kernel, hidden tests and saving the scores included), as the grader runs it.
Writes the table to ``bench/results/runall.txt``.

    .venv/bin/python bench/runall.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course.parallel import run_watched
from course.runner import ROOT as COURSE
from course.runner import assignments, nbgrader_env, scratch_course

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
ASSIGNMENTS = assignments()


def run_listing(assignment: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(COURSE / "bench" / "listings" / f"{assignment}_listing.py")],
                   cwd=COURSE / "source" / assignment, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def run_notebook(assignment: str) -> float:
    notebook = nbformat.read(COURSE / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(COURSE / "source" / assignment)}}).execute(env=ENV)
    return time.perf_counter() - start


def run_autograde(course: Path, assignment: str) -> float:
    run = run_watched([sys.executable, "-m", "nbgrader", "autograde", assignment, "--student", "reference",
                       "--force"], course, nbgrader_env(), timeout=1800)
    assert run.returncode == 0, run.output[-3000:]
    return run.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default=str(COURSE / "bench" / "results" / "runall.txt"))
    args = parser.parse_args()

    times: dict[tuple[str, str], list[float]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="bench-runall-"))
    course = scratch_course(scratch / "course", generate=ASSIGNMENTS)
    shutil.copytree(COURSE / "submitted" / "reference", course / "submitted" / "reference")
    for round_ in range(args.repeat):
        for assignment in ASSIGNMENTS:
            order = [("listing", run_listing), ("notebook", run_notebook),
                     ("autograde", lambda a: run_autograde(course, a))]
            for kind, run in order if round_ % 2 == 0 else order[::-1]:
                seconds = run(assignment)
                times.setdefault((assignment, kind), []).append(seconds)
                print(f"round {round_ + 1}: {assignment:<9} {kind:<8} {seconds:6.1f} s", flush=True)

    lines = [f"# bench/runall.py --repeat {args.repeat}: {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}",
             "# seconds per run, median (min-max), wall clock, process/kernel start included; ratios to the listing",
             f"{'assignment':<10} {'listing':>20} {'notebook Run-All':>20} {'ratio':>6} {'autograde':>20} "
             f"{'ratio':>6}"]
    for assignment in ASSIGNMENTS:
        listing, notebook = times[(assignment, "listing")], times[(assignment, "notebook")]
        autograde = times[(assignment, "autograde")]
        lines.append(f"{assignment:<10} {_fmt(listing):>20} {_fmt(notebook):>20} "
                     f"{statistics.median(notebook) / statistics.median(listing):6.2f} {_fmt(autograde):>20} "
                     f"{statistics.median(autograde) / statistics.median(listing):6.2f}")
    lines.append("# runs: " + "; ".join(f"{a} {k}: " + ", ".join(f"{s:.1f}" for s in v) for (a, k), v in times.items()))
    lines.append("# noise: the spread of the runs above (min-max) is this machine's run-to-run noise")
    shutil.rmtree(scratch)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    sys.exit(main())
