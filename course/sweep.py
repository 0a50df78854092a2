"""``course sweep``: measure the grader itself.

Autogrades every variant of ``course.variants`` (correct and wrong answers), through the same pipeline as
``course grade`` (sandbox kernel, tamper screen, nbgrader's scores), under several TensorFlow thread
settings, and counts

* false negatives: a correct answer that does not get full marks;
* false positives: a wrong answer that gets full marks.

The target is 0 and 0. The table goes to ``bench/results/sweep.txt``.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

from course.grade import sandbox_ready
from course.parallel import dask_client, grade_assignment
from course.runner import gradebook, scratch_course
from course.variants import VARIANTS, hand_in, student_notebook


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def grade_variants(client, workers: int, threads: int, assignments: list[str]) -> list[tuple]:
    """Every variant of ``assignments`` graded in a scratch course: (assignment, variant, threads, correct,
    score, max score)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="sweep-") as scratch:
        course = scratch_course(Path(scratch), generate=assignments)
        for assignment in assignments:
            variants = VARIANTS[assignment]
            for name, variant in variants.items():
                hand_in(course / "submitted" / slug(name) / assignment, assignment,
                        student_notebook(assignment, variant, course), course)
            print(f"$ sweep {assignment}: {len(variants)} variants, {threads} thread(s) per kernel", flush=True)
            grade_assignment(course, assignment, client, workers, threads, 1800)
            with gradebook(course) as book:
                scores = {s.student_id: (s.score, s.max_score) for s in book.assignment_submissions(assignment)}
            results += [(assignment, name, threads, v.correct, *scores[slug(name)]) for name, v in variants.items()]
    return results


def table(results: list[tuple], title: str, seconds: float) -> str:
    lines = [title, f"machine: {platform.machine()}, {os.cpu_count()} cores; {len(results)} gradings in "
                    f"{seconds:.0f} s; every grading: sandbox kernel, tamper screen, nbgrader's scores",
             f"{'assignment':<10} {'variant':<34} {'threads':>7} {'expected':<9} {'score':>7}  verdict"]
    for assignment, name, threads, correct, score, max_score in results:
        lines.append(f"{assignment:<10} {name:<34} {threads:>7} {'correct' if correct else 'wrong':<9} "
                     f"{score:>3g}/{max_score:<3g}  {verdict(correct, score, max_score)}")
    verdicts = [verdict(r[3], r[4], r[5]) for r in results]
    lines.append(f"false negatives: {verdicts.count('FALSE NEGATIVE')}   false positives: "
                 f"{verdicts.count('FALSE POSITIVE')}   "
                 "(correct: full marks expected; wrong: anything below full marks)")
    return "\n".join(lines) + "\n"


def verdict(correct: bool, score: float, max_score: float) -> str:
    if correct and score < max_score:
        return "FALSE NEGATIVE"
    return "FALSE POSITIVE" if not correct and score >= max_score else "ok"


def main(*, threads: list[int], workers: int, out: str, assignments: list[str] | None = None) -> int:
    sandbox_ready()
    assignments = assignments or list(VARIANTS)
    start, results = time.monotonic(), []
    with dask_client(workers) as client:
        for setting in threads:
            results += grade_variants(client, workers, setting, assignments)
    title = (f"## {time.strftime('%Y-%m-%d %H:%M')}  course sweep --threads {' '.join(map(str, threads))} "
             f"--workers {workers} --assignments {' '.join(assignments)}")
    text = table(results, title, time.monotonic() - start)
    print(text)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as file:
        file.write(text + "\n")
    return 1 if any(verdict(*r[3:]) != "ok" for r in results) else 0

