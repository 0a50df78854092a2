"""The course folder itself: notebook conventions, release in sync with source, sample class in sync."""

import ast
import filecmp
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ASSIGNMENTS, COURSE
from sample_class import CLASS

from course.runner import scratch_course


def cells(kind, assignment):
    notebook = nbformat.read(COURSE / kind / assignment / f"{assignment}.ipynb", as_version=4)
    return notebook, [(c, c.metadata.get("nbgrader", {})) for c in notebook.cells]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_conventions(assignment):
    notebook, annotated = cells("source", assignment)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell, meta in annotated:
        assert meta.get("schema_version") == 3, cell.source[:60]
        if not meta.get("solution"):
            assert meta.get("locked"), f"given cell not locked: {cell.source[:60]}"
        if meta.get("grade"):
            docstring = ast.get_docstring(ast.parse(cell.source))
            assert docstring and "\n" not in docstring, f"test cell without a one-line docstring: {meta['grade_id']}"
            assert meta["points"] > 0
        if meta.get("solution"):
            assert not meta.get("grade"), "answer cells carry no points"


def test_answer_cells():
    answers = {a: [m["grade_id"] for _, m in cells("source", a)[1] if m.get("solution")] for a in ASSIGNMENTS}
    assert answers == {"batchnorm": ["model"], "shuffle": ["fit_no_shuffle", "fit_shuffle"]}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_graded_line_is_the_listings(assignment):
    graded = next(c for c, m in cells("source", assignment)[1] if m.get("grade_id") == "graded_line")
    line = {"batchnorm": "print(numpy.argmax(confidence, axis=1), round(test_loss, 2), round(test_acc, 2))",
            "shuffle": "print(results_no_shuffle.history['loss'][-1], results_shuffle.history['loss'][-1])"}
    assert graded.source.splitlines()[-1] == line[assignment]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_hides_solutions_and_hidden_tests(assignment):
    _, annotated = cells("release", assignment)
    text = "\n".join(c.source for c, _ in annotated)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "여기에 코드를 작성하세요" in text
    assert not any(c.get("outputs") for c, _ in annotated if c.cell_type == "code")


def test_release_is_in_sync_with_source(tmp_path):
    course = scratch_course(tmp_path / "course", generate=ASSIGNMENTS)
    comparison = filecmp.dircmp(course / "release", COURSE / "release")
    stale = []

    def walk(cmp, prefix=""):
        stale.extend(prefix + f for f in cmp.left_only + cmp.right_only + cmp.diff_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, prefix + name + "/")

    walk(comparison)
    assert not stale, f"release/ is out of sync with source/ ({stale}): run `make release`"


def test_sample_class_is_in_sync():
    for student, assignments in CLASS.items():
        for assignment, submission in assignments.items():
            path = COURSE / "submitted" / student / assignment / f"{assignment}.ipynb"
            if submission.missing:
                assert not path.exists(), f"{student}/{assignment}: run `make sample-class`"
                continue
            if submission.raw is not None:
                assert path.read_text() == submission.raw, f"{student}/{assignment}: run `make sample-class`"
                continue
            committed = nbformat.read(path, as_version=4)
            expected = submission.notebook(assignment)
            assert committed == expected, f"{student}/{assignment}: run `make sample-class`"
            if submission.extra_notebook:
                assert (path.parent / submission.extra_notebook).read_bytes() == path.read_bytes()


def test_sample_scores_add_up_to_the_points():
    for assignment in ASSIGNMENTS:
        points = {m["grade_id"]: m["points"] for _, m in cells("source", assignment)[1] if m.get("grade")}
        for student, assignments in CLASS.items():
            if assignment in assignments:
                scores = assignments[assignment].scores
                assert set(scores) == set(points), student
                assert all(0 <= scores[k] <= points[k] for k in points), student


def test_notebook_kernel_is_this_environment():
    """The notebooks' kernel name resolves to this Python, in JupyterLab and in nbgrader (upstream #1375)."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    # jupyter_client starts "python" as the Python that runs it: this venv's, for `make lab` and nbgrader alike
    assert spec.argv[:3] == ["python", "-m", "ipykernel_launcher"] or Path(spec.argv[0]).resolve() == Path(
        sys.executable).resolve()
