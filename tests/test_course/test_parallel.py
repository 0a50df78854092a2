"""`course grade` on N Dask workers gives exactly the gradebook, autograded/, feedback/ and grades.csv that
serial `nbgrader autograde` gives, shows progress, and stops a stuck submission at its wall time.

A tiny assignment (no TensorFlow, seconds per submission) makes exact comparisons cheap; the real
assignments are graded in parallel by conftest.graded_course and compared with serial nbgrader in
test_real_notebooks_grade_the_same_in_parallel_and_serially.
"""

import filecmp
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from conftest import COURSE
from tiny import dask_cluster, grade, gradebook_rows, tiny_course

from course.runner import gradebook, nbgrader, nbgrader_env, scratch_course

pytestmark = pytest.mark.slow


ANSWERS = {"right": "answer = 42", "wrong": "answer = 41.0", "slow": "import time\ntime.sleep(60)\nanswer = 42",
           "tamper": "round = abs\nanswer = 42", "dies": "import os\nos._exit(1)", "broken": None, "missing": None}
SCORES = {"right": {"test_value": 2, "test_type": 1}, "wrong": {"test_value": 0, "test_type": 0},
          "slow": {"test_value": 0, "test_type": 0}, "tamper": {"test_value": 0, "test_type": 0},
          "dies": {"test_value": 0, "test_type": 0}, "broken": {"test_value": 0, "test_type": 0},
          "missing": {"test_value": 0, "test_type": 0}}
STUCK = "import signal\nimport time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(10**6)"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file's bytes; in notebooks, nbclient's wall-clock timestamps of each cell (which differ between
    any two runs, serial or not) are blanked."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".ipynb":
            notebook = nbformat.read(path, as_version=4)
            for cell in notebook.cells:
                if "execution" in cell.metadata:
                    cell.metadata.execution = dict.fromkeys(cell.metadata.execution, "<time>")
            files[str(path.relative_to(folder))] = nbformat.writes(notebook).encode()
        else:
            files[str(path.relative_to(folder))] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def serial_and_parallel(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    serial, parallel = tiny_course(root / "serial", ANSWERS), tiny_course(root / "parallel", ANSWERS)
    return serial, grade(serial, "--serial"), parallel, grade(parallel, "--workers", "2")


def test_parallel_gradebook_equals_serial(serial_and_parallel):
    serial, _, parallel, _ = serial_and_parallel
    rows = gradebook_rows(serial)
    assert rows == gradebook_rows(parallel)
    assert {k: v[0] for k, v in rows.items() if k[1] != "timestamp"} == {
        (student, test): score for student, scores in SCORES.items() for test, score in scores.items()}


def test_parallel_autograded_feedback_and_csv_equal_serial(serial_and_parallel):
    serial, _, parallel, _ = serial_and_parallel
    for folder in ("autograded", "feedback"):
        assert tree(serial / folder) == tree(parallel / folder), folder
    assert filecmp.cmp(serial / "grades.csv", parallel / "grades.csv", shallow=False)


def test_progress_and_reasons_are_printed(serial_and_parallel):
    _, _, _, done = serial_and_parallel
    assert "$ autograde tiny on 2 Dask workers" in done.stdout
    assert "tiny: 2 workers [########################] 7/7" in done.stdout
    assert "ETA" in done.stdout
    table = done.stdout[done.stdout.index("failed tests"):]
    assert "tiny.ipynb is not a valid notebook" in table and "no tiny.ipynb handed in" in table
    assert "answer raised KeyboardInterrupt" in table and "TamperingSuspected" in table
    assert "DeadKernelError" in table


def test_a_dask_cluster_grades_and_stops_a_stuck_submission(tmp_path):
    """A scheduler and two workers as separate processes, as on a real cluster: `course grade --scheduler`."""
    with dask_cluster(tmp_path, {"a": nbgrader_env(), "b": nbgrader_env()}) as (address, _):
        course = tiny_course(tmp_path / "course", {"right": ANSWERS["right"], "stuck": STUCK})
        start = time.monotonic()
        # a cell timeout longer than the wall time: the stuck cell is not interrupted, the job is killed
        done = grade(course, "--scheduler", address, "--timeout", "20", "--cell-timeout", "600")
        assert time.monotonic() - start < 120
    assert "$ autograde tiny on 2 Dask workers" in done.stdout
    rows = gradebook_rows(course)
    assert (rows[("right", "test_value")][0], rows[("stuck", "test_value")][0]) == (2, 0)
    table = done.stdout[done.stdout.index("failed tests"):]
    assert "grading stopped after the wall-time limit of 20 s" in table


def test_real_notebooks_grade_the_same_in_parallel_and_serially(graded_course, tmp_path):
    """Serial plain nbgrader on two real batchnorm submissions gives the scores the parallel run gave."""
    course = scratch_course(tmp_path / "course", generate=["batchnorm"])
    for student in ("reference", "no_bn"):
        shutil.copytree(COURSE / "submitted" / student / "batchnorm", course / "submitted" / student / "batchnorm")
    nbgrader(course, "autograde", "batchnorm", "--force")

    def scores(path):
        with gradebook(path) as book:
            return {(s, g.name): g.score for s in ("reference", "no_bn")
                    for g in book.find_submission_notebook("batchnorm", "batchnorm", s).grades}

    assert scores(course) == scores(graded_course)
