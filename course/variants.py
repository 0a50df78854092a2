"""Answers to the assignments as students write them: one list that calibration, the validity sweep, the
sample class and the browser test all draw from.

A ``Variant`` says what a student changed in the released notebook (answer cells, code added before an
answer or as new cells, edited or deleted given cells, the kernel name their Jupyter saved) and whether
the answer is correct. ``student_notebook`` builds the notebook such a student hands in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course.runner import ROOT

BN_LINE = "layers.BatchNormalization()"


def lenet_source(bn_after: str = "conv", first_extra: str = "", style: str = "add", input_layer: bool = False) -> str:
    """The batchnorm answer cell in a given spelling; ``bn_after`` is 'conv', 'pool' (and Flatten) or 'none'."""
    body = ["layers.Input(shape=(32, 32, 1))"] if input_layer else []
    for filters, closing in ((6, "layers.AveragePooling2D((2, 2), strides=(2, 2))"),
                             (16, "layers.AveragePooling2D((2, 2), strides=(2, 2))"), (120, "layers.Flatten()")):
        extra = first_extra if filters == 6 else ""
        body.append(f"layers.Conv2D({filters}, (5, 5), strides=(1, 1), activation='tanh'{extra})")
        body += [BN_LINE] if bn_after == "conv" else []
        body.append(closing)
        body += [BN_LINE] if bn_after == "pool" else []
    body += ["layers.Dense(84, activation='tanh')", "layers.Dense(10, activation='softmax')"]
    if style == "list":
        return "utils.set_random_seed(1)\nmodel = models.Sequential([\n" + "".join(f"    {b},\n" for b in body) + "])"
    return "utils.set_random_seed(1)\nmodel = models.Sequential()\n" + "".join(f"model.add({b})\n" for b in body)


# The given first line of each shuffle answer cell: every run of the cell starts from a fresh model.
FRESH_MODEL = "model = build_model()  # 주어진 코드: 같은 초기 가중치의 새 모델에서 시작합니다.\n"


def fit_sources(no_shuffle: str, shuffle: str) -> dict:
    """The shuffle answer cells with the given ``fit`` arguments (the given fresh-model line kept)."""
    return {"fit_no_shuffle": f"{FRESH_MODEL}results_no_shuffle = model.fit({no_shuffle})",
            "fit_shuffle": f"{FRESH_MODEL}results_shuffle = model.fit({shuffle})"}


def fits(epochs: int = 5, no_shuffle: str = ", shuffle=False", shuffle: str = ", shuffle=True") -> dict:
    """``fit_sources`` for the usual positional data with ``epochs`` and the given flag texts."""
    data = f"train_images, train_labels, epochs={epochs}"
    return fit_sources(data + no_shuffle, data + shuffle)


@dataclass(frozen=True)
class Variant:
    """What a student changed in the released notebook, and whether it is a correct answer."""

    answers: dict[str, str] | None = None  # answer cells by grade_id; None: the solution, a missing id: the stub
    correct: bool = True  # full marks expected (the sweep); a correct run's values set the tolerance (calibration)
    calibrate: bool = False  # also run by ``course calibrate``
    values_may_pass: bool = False  # calibration: a wrong answer whose graded values may fall inside the tolerance
    before: dict[str, str] = field(default_factory=dict)  # grade_id -> code put at the top of that answer cell
    extra_after: dict[str, str] = field(default_factory=dict)  # grade_id -> a code cell the student added after it
    edit: dict[str, str | None] = field(default_factory=dict)  # grade_id -> new source of a given cell, None: deleted
    kernel: str | None = None  # the kernelspec name the student's Jupyter saved, when not the course's

    @property
    def must_be_accepted(self) -> bool | None:
        """Calibration: True, its values must be within the tolerance; False, outside; None, only recorded."""
        return True if self.correct else None if self.values_may_pass else False


_MODEL = "model"
WITH_DENSE_BN = lenet_source().replace("model.add(layers.Dense(84, activation='tanh'))\n",
                                       f"model.add(layers.Dense(84, activation='tanh'))\nmodel.add({BN_LINE})\n")
TWO_BN = "".join(lenet_source().rsplit(f"model.add({BN_LINE})\n", 1))  # no BN after the third convolution

VARIANTS: dict[str, dict[str, Variant]] = {
    "batchnorm": {
        "solution": Variant(calibrate=True),
        "list-form Sequential": Variant({_MODEL: lenet_source(style="list")}, calibrate=True),
        "keras.Input first": Variant({_MODEL: lenet_source(input_layer=True)}, calibrate=True),
        "input_shape= on the first conv": Variant({_MODEL: lenet_source(first_extra=", input_shape=(32, 32, 1)")},
                                                  calibrate=True),
        "BN with its defaults spelled out": Variant({_MODEL: lenet_source().replace(
            BN_LINE, "layers.BatchNormalization(axis=-1, momentum=0.99, epsilon=0.001)")}),
        "tf.keras spelling": Variant({_MODEL: "import tensorflow as tf\n\n" + lenet_source().replace(
            BN_LINE, "tf.keras.layers.BatchNormalization()")}),
        "model.summary() cell added": Variant(extra_after={_MODEL: "model.summary()"}),
        "no BN": Variant({_MODEL: lenet_source("none")}, correct=False, calibrate=True),
        # three BN layers, each in the wrong place: it trains to values within the tolerance (see expected.json)
        "BN after the poolings": Variant({_MODEL: lenet_source("pool")}, correct=False, calibrate=True,
                                         values_may_pass=True),
        "extra BN after a dense layer": Variant({_MODEL: WITH_DENSE_BN}, correct=False),
        "two BN only": Variant({_MODEL: TWO_BN}, correct=False),
        "10 000 training images": Variant({_MODEL: "train_images, train_labels = train_images[:10000], "
                                                   "train_labels[:10000]\n" + lenet_source()}, correct=False),
    },
    "shuffle": {
        "solution": Variant(calibrate=True),
        "keywords and batch_size=32": Variant(fit_sources(
            "x=train_images, y=train_labels, batch_size=32, epochs=5, shuffle=False",
            "x=train_images, y=train_labels, batch_size=32, epochs=5, shuffle=True"), calibrate=True),
        "renamed History": Variant({
            "fit_no_shuffle": FRESH_MODEL + "history = model.fit(train_images, train_labels, epochs=5, shuffle=False)\n"
                                            "results_no_shuffle = history",
            "fit_shuffle": FRESH_MODEL + "history = model.fit(train_images, train_labels, epochs=5, shuffle=True)\n"
                                         "results_shuffle = history"}),
        "shuffle=0 / shuffle=1": Variant(fits(no_shuffle=", shuffle=0", shuffle=", shuffle=1")),
        "verbose=2 and a cell added": Variant(fits(no_shuffle=", shuffle=False, verbose=2",
                                                   shuffle=", shuffle=True, verbose=2"),
                                              extra_after={"fit_shuffle": "print(results_shuffle.history['loss'])"}),
        "flags swapped": Variant(fits(no_shuffle=", shuffle=True", shuffle=", shuffle=False"), correct=False,
                                 calibrate=True),
        # Keras' default is shuffle=True: the first run is shuffled too
        "shuffle omitted": Variant(fits(no_shuffle="", shuffle=""), correct=False, calibrate=True),
        "first flag omitted": Variant(fits(no_shuffle=""), correct=False),
        "3 epochs": Variant(fits(epochs=3), correct=False),
    },
}


def solution_text(source: str) -> str:
    """A source answer cell as a student who solved it would leave it: the solution, no markers."""
    return "\n".join(line for line in source.split("\n") if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def student_notebook(assignment: str, variant: Variant, course: Path = ROOT) -> nbformat.NotebookNode:
    """The notebook a student hands in: ``release/``'s notebook with ``variant``'s changes (the solutions
    come from ``source/``)."""
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    source = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: solution_text(c.source) for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    cells = []
    for cell in release.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            if variant.answers is None:
                cell.source = solutions[grade_id]
            elif grade_id in variant.answers:
                cell.source = variant.answers[grade_id]
            if grade_id in variant.before:
                cell.source = variant.before[grade_id] + "\n" + cell.source
        if grade_id in variant.edit:
            if variant.edit[grade_id] is None:
                continue
            cell.source = variant.edit[grade_id]
        cells.append(cell)
        if grade_id in variant.extra_after:
            cells.append(nbformat.v4.new_code_cell(variant.extra_after[grade_id], id=f"extra-after-{grade_id}"))
    release.cells = cells
    if variant.kernel:
        release.metadata.kernelspec = {"display_name": f"Python [{variant.kernel}]", "language": "python",
                                       "name": variant.kernel}
    return release


def hand_in(folder: Path, assignment: str, notebook: nbformat.NotebookNode | str | None,
            course: Path = ROOT) -> Path:
    """Write a student's folder as they hand it in: the notebook (a notebook, raw text that is not one, or
    None for none) and the release's data files."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    if isinstance(notebook, str):
        path.write_text(notebook)
    elif notebook is not None:
        nbformat.write(notebook, path)
    for data in (course / "release" / assignment).iterdir():
        if data.suffix != ".ipynb":
            (folder / data.name).write_bytes(data.read_bytes())
    return path


@dataclass(frozen=True)
class Submission:
    """A sample student's folder for one assignment, and what grading must make of it (tests/sample_class.py)."""

    scores: dict[str, float]  # test cell -> exact score
    variant: Variant = field(default_factory=Variant)  # what the student wrote (default: the solution)
    raw: str | None = None  # the notebook file's text as handed in (not JSON at all), instead of a notebook
    missing: bool = False  # the folder was handed in without the notebook
    extra_notebook: str | None = None  # a second .ipynb in the folder (a copy of the notebook) with this name
    reason: str = ""  # what the grade table must say about this submission (a substring)
    ungradable: bool = False  # nbgrader cannot grade it (no notebook, kernel died...): 0, no feedback

    def notebook(self, assignment: str, course: Path = ROOT) -> nbformat.NotebookNode | str | None:
        """What the folder holds as ``<assignment>.ipynb``: a notebook, raw text, or None."""
        if self.missing:
            return None
        return self.raw if self.raw is not None else student_notebook(assignment, self.variant, course)


def write_class(students: dict[str, dict[str, Submission]], root: Path = ROOT) -> None:
    """Rewrite ``root/submitted/`` with these students' folders (made from ``release/``)."""
    import shutil

    for student, handed in students.items():
        for assignment, submission in handed.items():
            folder = root / "submitted" / student / assignment
            if folder.exists():
                shutil.rmtree(folder)
            path = hand_in(folder, assignment, submission.notebook(assignment))
            if submission.extra_notebook:
                shutil.copy(path, folder / submission.extra_notebook)
