"""Benchmark: grade a synthetic class serially with plain nbgrader and in parallel with `course grade`.

The class is K copies of the sample class in submitted/ without its hostile students (student
``reference`` becomes ``reference_0``, ``reference_1``, ...). Each mode grades it in its own scratch
course, one mode after the other (never both at once): serial is ``nbgrader autograde A --force`` per
assignment, parallel is the autograde step of ``course grade`` (helpers.parallel.grade_assignment) on an
embedded Dask LocalCluster with ``--workers`` workers. Only the autograde step is timed (generate_assignment
runs before the clock). Records throughput, speed-up, the largest kernel's resident memory, the core count
and whether every grade cell got the same score in both gradebooks, appended to ``bench/results/parallel.txt``.

    .venv/bin/python bench/parallel.py [--copies 1] [--workers 2]
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

from helpers.grade import nbgrader, nbgrader_env
from helpers.parallel import cluster_client, grade_assignment, run_watched

COURSE = Path(__file__).resolve().parents[1]

ASSIGNMENTS = ["batchnorm", "shuffle"]


def synthetic_course(target: Path, copies: int) -> Path:
    target.mkdir(parents=True)
    shutil.copy(COURSE / "nbgrader_config.py", target)
    shutil.copytree(COURSE / "source", target / "source")
    # the honest sample class; the hostile students are there to be stopped, not to be timed
    for student in sorted(p for p in (COURSE / "submitted").iterdir() if p.is_dir() and
                          not p.name.startswith("hostile_")):
        for k in range(copies):
            shutil.copytree(student, target / "submitted" / f"{student.name}_{k}")
    for assignment in ASSIGNMENTS:
        nbgrader(target, "generate_assignment", assignment, "--force")
    return target


def scores(course: Path) -> dict:
    from nbgrader.api import Gradebook

    found = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for assignment in ASSIGNMENTS:
            for submission in gradebook.assignment_submissions(assignment):
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        found[(submission.student_id, assignment, grade.name)] = grade.score
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(COURSE / "bench" / "results" / "parallel.txt"))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    threads = max(1, cores // args.workers)

    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as scratch:
        scratch = Path(scratch)
        serial_course = synthetic_course(scratch / "serial", args.copies)
        submissions = sum(1 for a in ASSIGNMENTS for _ in (serial_course / "submitted").glob(f"*/{a}"))
        serial_seconds, serial_peak = 0.0, 0.0
        for assignment in ASSIGNMENTS:
            run = run_watched([sys.executable, "-m", "nbgrader", "autograde", assignment, "--force"],
                              serial_course, nbgrader_env(), timeout=24 * 3600)
            assert run.returncode == 0, run.output[-3000:]
            serial_seconds += run.seconds
            serial_peak = max(serial_peak, run.peak_kernel_mb)
            print(f"serial   {assignment:<9} {run.seconds:7.1f} s", flush=True)

        parallel_course = synthetic_course(scratch / "parallel", args.copies)
        client, cluster = cluster_client(args.workers, None)
        parallel_seconds, parallel_peak, job_seconds, replay_seconds = 0.0, 0.0, [], 0.0
        try:
            for assignment in ASSIGNMENTS:
                start = time.monotonic()
                jobs = grade_assignment(parallel_course, assignment, client, args.workers, threads, 24 * 3600)
                seconds = time.monotonic() - start
                parallel_seconds += seconds
                parallel_peak = max([parallel_peak] + [j["peak_kernel_mb"] for j in jobs.values()])
                job_seconds += [j["seconds"] for j in jobs.values()]
                replay_seconds += jobs.replay_seconds
                print(f"parallel {assignment:<9} {seconds:7.1f} s", flush=True)
        finally:
            client.close()
            cluster.close()
        serial_scores, parallel_scores = scores(serial_course), scores(parallel_course)
        same = serial_scores == parallel_scores
        differing = sorted(k for k in serial_scores.keys() | parallel_scores.keys()
                           if serial_scores.get(k) != parallel_scores.get(k))

    lines = [
        f"## {time.strftime('%Y-%m-%d %H:%M')}  bench/parallel.py --copies {args.copies} --workers {args.workers}",
        f"machine: {platform.machine()}, {cores} cores ({platform.processor() or 'cpu'}), Python "
        f"{platform.python_version()}; {args.workers} workers x {threads} TensorFlow thread(s) per kernel",
        f"class: {submissions} submissions ({args.copies} copies of the non-hostile sample class, both assignments)",
        f"serial   (plain nbgrader autograde): {serial_seconds:7.1f} s  {submissions / serial_seconds * 60:5.2f} "
        f"submissions/min  peak kernel RSS {serial_peak:.0f} MB",
        f"parallel (course grade, Dask):       {parallel_seconds:7.1f} s  {submissions / parallel_seconds * 60:5.2f} "
        f"submissions/min  peak kernel RSS {parallel_peak:.0f} MB  (one job: mean "
        f"{sum(job_seconds) / len(job_seconds):.1f} s; the single gradebook writer: {replay_seconds:.1f} s in all)",
        f"speed-up: {serial_seconds / parallel_seconds:.2f}x   identical grades: {'yes' if same else 'NO'} "
        f"({len(serial_scores)} grade cells compared{'' if same else '; differing: ' + str(differing)})",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as file:
        file.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
