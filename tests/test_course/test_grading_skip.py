"""While nbgrader runs a notebook (``NBGRADER_EXECUTION`` set: autograde, Validate) the lessons skip the work
no test reads: every graded value is the same with or without the skip, and the skipped cells say so."""

import os

import nbformat
import pytest
from conftest import COURSE
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

# printed after the notebook ran: the exact values the hidden tests read
PROBES = {
    "batchnorm": "print(repr(float(test_loss)), repr(float(test_acc)), confidence.tolist())",
    "shuffle": "print(results_no_shuffle.history, results_shuffle.history, no_shuffle_test_acc, shuffle_test_acc)",
}
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1",
              "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(assignment: str, grading: bool) -> nbformat.NotebookNode:
    """The instructor's notebook (the solution, with its hidden tests) with a probe cell, as nbgrader or a
    student runs it."""
    notebook = nbformat.read(COURSE / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBES[assignment]))
    env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
    env.update(ONE_THREAD, **({"NBGRADER_EXECUTION": "autograde"} if grading else {}))
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(COURSE / "source" / assignment)}}).execute(env=env)
    return notebook


def text(cell) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))


@pytest.mark.parametrize("assignment", ["batchnorm", "shuffle"])
def test_graded_values_are_the_same_with_and_without_the_skip(assignment):
    graded, full = run(assignment, grading=True), run(assignment, grading=False)
    assert text(graded.cells[-1]) == text(full.cells[-1]) != ""
    # the same test outputs (every value test records what it measured)
    tests = [i for i, c in enumerate(full.cells) if c.metadata.get("nbgrader", {}).get("grade")]
    assert [text(graded.cells[i]) for i in tests] == [text(full.cells[i]) for i in tests]
    skipped = [c for c in graded.cells if "[채점 중에는 건너뜀]" in text(c)]
    assert skipped and not any("[채점 중에는 건너뜀]" in text(c) for c in full.cells)
    assert not any(o.output_type == "display_data" and "image/png" in o.get("data", {})
                   for c in graded.cells for o in c.get("outputs", [])), "a figure was drawn while grading"
