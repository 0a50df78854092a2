"""Instructor command: measure the grader itself (``course sweep``).

Autogrades a generated set of correct and wrong answers to both assignments, through the same pipeline as
``course grade`` (sandbox kernel, tamper screen, nbgrader's scores), under several TensorFlow thread
settings, and counts

* false negatives: a correct answer that does not get full marks;
* false positives: a wrong answer that gets full marks.

The target is 0 and 0. The table goes to ``bench/results/sweep.txt``.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from helpers.calibrate import fit_sources, lenet_source

COURSE = Path(__file__).resolve().parents[1]

BN_LINE = "layers.BatchNormalization()"
WITH_DENSE_BN = lenet_source("conv").replace("model.add(layers.Dense(84, activation='tanh'))\n",
                                             "model.add(layers.Dense(84, activation='tanh'))\n"
                                             f"model.add({BN_LINE})\n")
TWO_BN = "".join(lenet_source("conv").rsplit(f"model.add({BN_LINE})\n", 1))  # no BN after the third convolution

# name -> (answer cells by grade_id (None: the solution), extra cells after a grade_id, correct?)
VARIANTS = {
    "batchnorm": {
        "solution": (None, {}, True),
        "list-form Sequential": ({"model": lenet_source("conv", style="list")}, {}, True),
        "keras.Input first": ({"model": lenet_source("conv", input_layer=True)}, {}, True),
        "input_shape= on the first conv": ({"model": lenet_source(first_extra=", input_shape=(32, 32, 1)")}, {},
                                           True),
        "BN with its defaults spelled out": (
            {"model": lenet_source("conv").replace(BN_LINE, "layers.BatchNormalization(axis=-1, momentum=0.99, "
                                                            "epsilon=0.001)")}, {}, True),
        "tf.keras spelling": ({"model": "import tensorflow as tf\n\n" + lenet_source("conv").replace(
            BN_LINE, "tf.keras.layers.BatchNormalization()")}, {}, True),
        "model.summary() cell added": (None, {"model": "model.summary()"}, True),
        "no BN": ({"model": lenet_source("none")}, {}, False),
        "BN after the poolings": ({"model": lenet_source("pool")}, {}, False),
        "extra BN after a dense layer": ({"model": WITH_DENSE_BN}, {}, False),
        "two BN only": ({"model": TWO_BN}, {}, False),
        "10 000 training images": ({"model": "train_images, train_labels = train_images[:10000], "
                                             "train_labels[:10000]\n" + lenet_source("conv")}, {}, False),
    },
    "shuffle": {
        "solution": (None, {}, True),
        "keywords and batch_size=32": (
            fit_sources("x=train_images, y=train_labels, batch_size=32, epochs=5, shuffle=False",
                        "x=train_images, y=train_labels, batch_size=32, epochs=5, shuffle=True"), {}, True),
        "renamed History": ({"fit_no_shuffle": "history = model.fit(train_images, train_labels, epochs=5, "
                                               "shuffle=False)\nresults_no_shuffle = history",
                             "fit_shuffle": "history = model.fit(train_images, train_labels, epochs=5, "
                                            "shuffle=True)\nresults_shuffle = history"}, {}, True),
        "shuffle=0 / shuffle=1": (fit_sources("train_images, train_labels, epochs=5, shuffle=0",
                                              "train_images, train_labels, epochs=5, shuffle=1"), {}, True),
        "verbose=2 and a cell added": (
            fit_sources("train_images, train_labels, epochs=5, shuffle=False, verbose=2",
                        "train_images, train_labels, epochs=5, shuffle=True, verbose=2"),
            {"fit_shuffle": "print(results_shuffle.history['loss'])"}, True),
        "flags swapped": (fit_sources("train_images, train_labels, epochs=5, shuffle=True",
                                      "train_images, train_labels, epochs=5, shuffle=False"), {}, False),
        "shuffle omitted": (fit_sources("train_images, train_labels, epochs=5",
                                        "train_images, train_labels, epochs=5"), {}, False),
        "first flag omitted": (fit_sources("train_images, train_labels, epochs=5",
                                           "train_images, train_labels, epochs=5, shuffle=True"), {}, False),
        "3 epochs": (fit_sources("train_images, train_labels, epochs=3, shuffle=False",
                                 "train_images, train_labels, epochs=3, shuffle=True"), {}, False),
    },
}


def solution_text(source: str) -> str:
    """A source answer cell as a student who solved it would leave it: the solution, no markers."""
    return "\n".join(line for line in source.split("\n") if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def student_notebook(course: Path, assignment: str, answers: dict | None = None, before: dict | None = None,
                     extra_after: dict | None = None, edit: dict | None = None,
                     kernel: str | None = None) -> nbformat.NotebookNode:
    """A student's notebook made from ``release/``: answer cells by grade_id (``answers`` None: the solution
    from ``source/``; a grade_id left out: the stub), code put ``before`` an answer, cells added after a
    grade_id, given/test cells edited (``edit``: new source, or None to delete), another kernel name."""
    before, extra_after, edit = before or {}, extra_after or {}, edit or {}
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    source = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: solution_text(c.source) for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    cells = []
    for cell in release.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            if answers is None:
                cell.source = solutions[grade_id]
            elif grade_id in answers:
                cell.source = answers[grade_id]
            if grade_id in before:
                cell.source = before[grade_id] + "\n" + cell.source
        if grade_id in edit:
            if edit[grade_id] is None:
                continue
            cell.source = edit[grade_id]
        cells.append(cell)
        if grade_id in extra_after:
            cells.append(nbformat.v4.new_code_cell(extra_after[grade_id], id=f"extra-after-{grade_id}"))
    release.cells = cells
    if kernel:
        release.metadata.kernelspec = {"display_name": f"Python [{kernel}]", "language": "python", "name": kernel}
    return release


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def sweep(thread_settings: list[int], workers: int, out: str, assignments: list[str] | None = None) -> int:
    from helpers.grade import nbgrader, sandbox_ready
    from helpers.parallel import cluster_client, grade_assignment

    sandbox_ready()
    results = []  # (assignment, variant, threads, correct, score, max)
    start = time.monotonic()
    client, cluster = cluster_client(workers, None)
    try:
        for threads in thread_settings:
            with tempfile.TemporaryDirectory(prefix="sweep-") as scratch:
                course = Path(scratch)
                shutil.copy(COURSE / "nbgrader_config.py", course)
                shutil.copytree(COURSE / "source", course / "source")
                for assignment, variants in VARIANTS.items():
                    if assignments and assignment not in assignments:
                        continue
                    nbgrader(course, "generate_assignment", assignment, "--force")
                    for name, (answers, extra, _) in variants.items():
                        folder = course / "submitted" / slug(name) / assignment
                        folder.mkdir(parents=True)
                        nbformat.write(student_notebook(course, assignment, answers, extra_after=extra),
                                       folder / f"{assignment}.ipynb")
                        for data in (course / "release" / assignment).iterdir():
                            if data.suffix != ".ipynb":
                                shutil.copy(data, folder)
                    print(f"$ sweep {assignment}: {len(variants)} variants, {threads} thread(s) per kernel", flush=True)
                    grade_assignment(course, assignment, client, workers, threads, 1800)
                    scores = _scores(course, assignment)
                    for name, (_, _, correct) in variants.items():
                        score, max_score = scores[slug(name)]
                        results.append((assignment, name, threads, correct, score, max_score))
    finally:
        client.close()
        cluster.close()

    false_negatives = [r for r in results if r[3] and r[4] < r[5]]
    false_positives = [r for r in results if not r[3] and r[4] >= r[5]]
    lines = [f"## {time.strftime('%Y-%m-%d %H:%M')}  course sweep --threads {' '.join(map(str, thread_settings))} "
             f"--workers {workers}" + (f" --assignments {' '.join(assignments)}" if assignments else ""),
             f"machine: {platform.machine()}, {os.cpu_count()} cores; {len(results)} gradings in "
             f"{time.monotonic() - start:.0f} s; every grading: sandbox kernel, tamper screen, nbgrader's scores",
             f"{'assignment':<10} {'variant':<34} {'threads':>7} {'expected':<9} {'score':>7}  verdict"]
    for assignment, name, threads, correct, score, max_score in results:
        verdict = ("FALSE NEGATIVE" if correct and score < max_score else
                   "FALSE POSITIVE" if not correct and score >= max_score else "ok")
        lines.append(f"{assignment:<10} {name:<34} {threads:>7} {'correct' if correct else 'wrong':<9} "
                     f"{score:>3g}/{max_score:<3g}  {verdict}")
    lines.append(f"false negatives: {len(false_negatives)}   false positives: {len(false_positives)}   "
                 f"(correct: full marks expected; wrong: anything below full marks)")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as file:
        file.write(text + "\n")
    return 1 if false_negatives or false_positives else 0


def _scores(course: Path, assignment: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {s.student_id: (s.score, s.max_score) for s in gradebook.assignment_submissions(assignment)}
