"""The sample class in ``submitted/``: what each student handed in and the exact scores it must get.

Run ``python tests/sample_class.py`` to rewrite ``submitted/`` from ``release/`` (after changing a
notebook); ``tests/test_course.py`` checks that the committed class matches this file.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from helpers.calibrate import fit_sources, lenet_source

COURSE = Path(__file__).resolve().parents[1]


@dataclass
class Submission:
    """Answer cells by grade_id (None: the solution from source/), extra cells after a grade_id, scores."""

    scores: dict[str, float]
    answers: dict[str, str] | None = None
    extra_after: dict[str, str] = field(default_factory=dict)
    kernel: str | None = None  # the kernelspec name the student's JupyterLab saved, when not the course's


BN_FULL = {"test_bn_positions": 2, "test_structure": 2, "test_counts": 1, "test_reported": 2, "test_prediction": 1,
           "test_values": 2}
# A model without BN trains and predicts 2.png as 2: it keeps the points for data, honest values and prediction.
BN_NO_BN = dict(BN_FULL, test_bn_positions=0, test_structure=0, test_values=0)
SHUFFLE_FULL = {"test_histories": 2, "test_flags": 2, "test_no_shuffle": 3, "test_shuffle": 3}


CLASS: dict[str, dict[str, Submission]] = {
    "reference": {
        "batchnorm": Submission(BN_FULL),
        "shuffle": Submission(SHUFFLE_FULL),
    },
    "blank": {  # opened the notebook and handed it in untouched
        "batchnorm": Submission(BN_NO_BN, answers={}),
        "shuffle": Submission(dict.fromkeys(SHUFFLE_FULL, 0), answers={}),
    },
    # deleted the placeholders, added nothing; saved from a conda env whose kernel the grader lacks (upstream
    # #1375): autograde's OverwriteKernelspec restores the course's kernelspec, the grade must not change
    "no_bn": {
        "batchnorm": Submission(BN_NO_BN, answers={"model": lenet_source("none")}, kernel="conda-env-dl-py"),
    },
    # three BN layers, each in the wrong place; it trains to numbers within tolerance (see expected.json)
    "bn_after_pool": {
        "batchnorm": Submission(dict(BN_FULL, test_bn_positions=0, test_structure=0),
                                answers={"model": lenet_source("pool")}),
    },
    "hardcoded": {  # no real work; typed the expected numbers in
        "batchnorm": Submission(dict(BN_NO_BN, test_reported=0), answers={"model": lenet_source("none")},
                                extra_after={"train": "test_loss, test_acc = 0.08, 0.97"}),
        "shuffle": Submission(dict.fromkeys(SHUFFLE_FULL, 0), answers={
            "fit_no_shuffle": "from tensorflow.keras.callbacks import History\n"
                              "results_no_shuffle = History()\n"
                              "results_no_shuffle.history = {'loss': [2.225, 2.328, 2.2, 2.136, 2.016]}",
            "fit_shuffle": "results_shuffle = History()\n"
                           "results_shuffle.history = {'loss': [0.425, 0.205, 0.125, 0.081, 0.053]}",
        }, extra_after={"graded_line": "print(2.016, 0.053)"}),
    },
    "flags_swapped": {
        "shuffle": Submission(dict(SHUFFLE_FULL, test_flags=0, test_no_shuffle=0, test_shuffle=0),
                              answers=fit_sources("train_images, train_labels, epochs=5, shuffle=True",
                                            "train_images, train_labels, epochs=5, shuffle=False")),
    },
    "shuffle_omitted": {  # Keras' default is shuffle=True: the first run is shuffled too
        "shuffle": Submission(dict(SHUFFLE_FULL, test_flags=0, test_no_shuffle=0),
                              answers=fit_sources("train_images, train_labels, epochs=5",
                                            "train_images, train_labels, epochs=5")),
    },
    "wrong_epochs": {
        "shuffle": Submission(dict(SHUFFLE_FULL, test_histories=0, test_no_shuffle=0, test_shuffle=0),
                              answers=fit_sources("train_images, train_labels, epochs=3, shuffle=False",
                                            "train_images, train_labels, epochs=3, shuffle=True")),
    },
}


def solution_source(source: str) -> str:
    """A source answer cell as a student who solved it would leave it: the solution, no markers."""
    return "\n".join(line for line in source.split("\n") if not re.search(r"### (BEGIN|END) SOLUTION", line))


def build(student: str, assignment: str, submission: Submission) -> nbformat.NotebookNode:
    release = nbformat.read(COURSE / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    source = nbformat.read(COURSE / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: solution_source(c.source) for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    cells = []
    for cell in release.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            if submission.answers is None:
                cell.source = solutions[grade_id]
            elif grade_id in submission.answers:
                cell.source = submission.answers[grade_id]
        cells.append(cell)
        if grade_id in submission.extra_after:
            cells.append(nbformat.v4.new_code_cell(submission.extra_after[grade_id], id=f"extra-after-{grade_id}"))
    release.cells = cells
    if submission.kernel:
        release.metadata.kernelspec = {"display_name": f"Python [{submission.kernel}]", "language": "python",
                                       "name": submission.kernel}
    return release


def write_class(root: Path = COURSE) -> None:
    for student, assignments in CLASS.items():
        for assignment, submission in assignments.items():
            folder = root / "submitted" / student / assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(build(student, assignment, submission), folder / f"{assignment}.ipynb")
            for extra in (COURSE / "release" / assignment).iterdir():
                if extra.suffix != ".ipynb":
                    (folder / extra.name).write_bytes(extra.read_bytes())


if __name__ == "__main__":
    write_class(Path(sys.argv[1]) if len(sys.argv) > 1 else COURSE)
