"""Benchmark: grade a synthetic class serially with plain nbgrader and in parallel with `course grade`.

The class is K copies of the sample class in submitted/ without its hostile students (student
``reference`` becomes ``reference_0``, ``reference_1``, ...). Each mode grades it in its own scratch
course, one mode after the other (never both at once): serial is ``nbgrader autograde A --force`` per
assignment, parallel is the autograde step of ``course grade`` (course.parallel.grade_assignment) on an
embedded Dask LocalCluster with ``--workers`` workers. Only the autograde step is timed (generate_assignment
runs before the clock). Records throughput, speed-up, the largest kernel's resident memory, the core count
and whether every grade cell got the same score in both gradebooks, appended to ``bench/results/parallel.txt``.
The workers' verification (``course.fingerprint``, once per ``course grade``) is timed on its own, and the
measured rates project a class of ``--project`` students x the assignments on one such machine and on N:
the parallel rate scales with the machines until the single gradebook writer's rate bounds it.

    .venv/bin/python bench/parallel.py [--copies 1] [--workers 2] [--project 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from course.parallel import dask_client, grade_assignment, run_watched, verified_workers
from course.runner import ROOT as COURSE
from course.runner import assignments, gradebook, nbgrader_env, scratch_course

ASSIGNMENTS = assignments()


def synthetic_course(target: Path, copies: int) -> Path:
    course = scratch_course(target, generate=ASSIGNMENTS)
    # the honest sample class; the hostile students are there to be stopped, not to be timed
    for student in sorted(p for p in (COURSE / "submitted").iterdir() if p.is_dir() and
                          not p.name.startswith("hostile_")):
        for k in range(copies):
            shutil.copytree(student, course / "submitted" / f"{student.name}_{k}")
    return course


def scores(course: Path) -> dict:
    with gradebook(course) as book:
        return {(submission.student_id, assignment, grade.name): grade.score for assignment in ASSIGNMENTS
                for submission in book.assignment_submissions(assignment)
                for notebook in submission.notebooks for grade in notebook.grades}


def grade_serially(course: Path) -> dict:
    """Plain ``nbgrader autograde A --force`` per assignment: seconds and the largest kernel's memory."""
    seconds, peak = 0.0, 0.0
    for assignment in ASSIGNMENTS:
        run = run_watched([sys.executable, "-m", "nbgrader", "autograde", assignment, "--force"],
                          course, nbgrader_env(), timeout=24 * 3600)
        assert run.returncode == 0, run.output[-3000:]
        seconds, peak = seconds + run.seconds, max(peak, run.peak_kernel_mb)
        print(f"serial   {assignment:<9} {run.seconds:7.1f} s", flush=True)
    return {"seconds": seconds, "peak": peak}


def grade_in_parallel(course: Path, workers: int, threads: int) -> dict:
    """The autograde step of ``course grade`` on an embedded cluster: seconds, memory, job and writer times."""
    measured = {"seconds": 0.0, "peak": 0.0, "jobs": [], "replay": 0.0}
    with dask_client(workers) as client:
        start = time.monotonic()
        verified_workers(client, threads)  # what every `course grade` does once, before its first job
        measured["check"] = time.monotonic() - start
        print(f"parallel worker verification {measured['check']:7.1f} s", flush=True)
        for assignment in ASSIGNMENTS:
            start = time.monotonic()
            run = grade_assignment(course, assignment, client, workers, threads, 24 * 3600)
            seconds = time.monotonic() - start
            measured["seconds"] += seconds
            measured["peak"] = max([measured["peak"]] + [j.peak_kernel_mb for j in run.jobs.values()])
            measured["jobs"] += [j.seconds for j in run.jobs.values()]
            measured["replay"] += run.replay_seconds
            print(f"parallel {assignment:<9} {seconds:7.1f} s", flush=True)
    return measured


def projection(students: int, submissions: int, serial: dict, parallel: dict) -> list[str]:
    """A class of ``students`` x the assignments from the measured per-submission rates: serial on one machine;
    in parallel on 1, 2, 5, 10 such machines (the verification once, in parallel on every machine; the grading
    rate N times one machine's, bounded by the single gradebook writer's rate)."""
    total = students * len(ASSIGNMENTS)
    per_serial = serial["seconds"] / submissions
    per_machine = parallel["seconds"] / submissions  # grading only: the verification is timed apart
    per_writer = parallel["replay"] / submissions

    def hours(seconds: float) -> str:
        return f"{seconds / 3600:.1f} h"

    lines = [f"projection, {students} students x {len(ASSIGNMENTS)} assignments = {total} submissions "
             f"(measured per submission: serial {per_serial:.1f} s, parallel {per_machine:.1f} s per machine, "
             f"gradebook writer {per_writer:.2f} s; worker verification {parallel['check']:.0f} s once):",
             f"  serial nbgrader, 1 machine: {hours(total * per_serial)}"]
    for machines in (1, 2, 5, 10):
        grading = total * max(per_machine / machines, per_writer)
        bound = " (the gradebook writer bounds it)" if per_writer >= per_machine / machines else ""
        lines.append(f"  course grade, {machines:>2} machine(s) x {parallel['workers']} workers: "
                     f"{hours(parallel['check'] + grading)}{bound}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--project", type=int, default=300, help="students in the projected class")
    parser.add_argument("--out", default=str(COURSE / "bench" / "results" / "parallel.txt"))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    threads = max(1, cores // args.workers)
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as scratch:
        serial_course = synthetic_course(Path(scratch) / "serial", args.copies)
        submissions = sum(1 for a in ASSIGNMENTS for _ in (serial_course / "submitted").glob(f"*/{a}"))
        serial = grade_serially(serial_course)
        parallel_course = synthetic_course(Path(scratch) / "parallel", args.copies)
        parallel = grade_in_parallel(parallel_course, args.workers, threads)
        parallel["workers"] = args.workers
        serial_scores, parallel_scores = scores(serial_course), scores(parallel_course)
    differing = sorted(k for k in serial_scores.keys() | parallel_scores.keys()
                       if serial_scores.get(k) != parallel_scores.get(k))
    lines = [
        f"## {time.strftime('%Y-%m-%d %H:%M')}  bench/parallel.py --copies {args.copies} --workers {args.workers}",
        f"machine: {platform.machine()}, {cores} cores ({platform.processor() or 'cpu'}), Python "
        f"{platform.python_version()}; {args.workers} workers x {threads} TensorFlow thread(s) per kernel",
        f"class: {submissions} submissions ({args.copies} copies of the non-hostile sample class, both assignments)",
        f"serial   (plain nbgrader autograde): {serial['seconds']:7.1f} s  "
        f"{submissions / serial['seconds'] * 60:5.2f} submissions/min  peak kernel RSS {serial['peak']:.0f} MB",
        f"parallel (course grade, Dask):       {parallel['seconds']:7.1f} s  "
        f"{submissions / parallel['seconds'] * 60:5.2f} submissions/min  peak kernel RSS {parallel['peak']:.0f} MB  "
        f"(one job: mean {sum(parallel['jobs']) / len(parallel['jobs']):.1f} s; the single gradebook writer: "
        f"{parallel['replay']:.1f} s in all)",
        f"worker verification (once per course grade, before the first job): {parallel['check']:.1f} s",
        f"speed-up: {serial['seconds'] / parallel['seconds']:.2f}x grading alone, "
        f"{serial['seconds'] / (parallel['seconds'] + parallel['check']):.2f}x with the verification   "
        "identical grades: "
        f"{'NO' if differing else 'yes'} ({len(serial_scores)} grade cells compared"
        f"{'; differing: ' + str(differing) if differing else ''})",
        *projection(args.project, submissions, serial, parallel),
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as file:
        file.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
