"""Grading the version the students received (`course release` records it, `course grade` checks it), and
regrading one student (`course grade A --student S`), on the tiny assignment."""

import json
import subprocess
import sys

import nbformat
import pytest
from conftest import COURSE
from tiny import SOLVED, TINY, grade, gradebook_rows, tiny_course

from course import release
from course.runner import nbgrader_env


def change_test(course, source='"""the answer is 43"""\nassert answer == 43, "not 43"'):
    path = course / "source" / "tiny" / "tiny.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[2].source = source
    nbformat.write(notebook, path)


def course_command(course, *args):
    return subprocess.run([sys.executable, "-m", "course.cli", *args], cwd=course, env=nbgrader_env(),
                          capture_output=True, text=True, timeout=900)


def test_changes_name_each_changed_added_and_removed_cell(tmp_path):
    (tmp_path / "source" / "tiny").mkdir(parents=True)
    nbformat.write(TINY, tmp_path / "source" / "tiny" / "tiny.ipynb")
    assert release.changes(tmp_path, "tiny") is None  # never released
    release.remember(tmp_path, "tiny")
    assert release.changes(tmp_path, "tiny") == []
    change_test(tmp_path)
    notebook = nbformat.read(tmp_path / "source" / "tiny" / "tiny.ipynb", as_version=4)
    notebook.cells[3].metadata.nbgrader.points = 5  # the same test worth more is a change too
    added = nbformat.v4.new_code_cell("assert True", metadata={"nbgrader": dict(
        notebook.cells[3].metadata.nbgrader, grade_id="test_new")})
    notebook.cells = [notebook.cells[1], notebook.cells[2], notebook.cells[3], added]  # the given cell removed
    nbformat.write(notebook, tmp_path / "source" / "tiny" / "tiny.ipynb")
    assert release.changes(tmp_path, "tiny") == ["tiny.ipynb cell test_value changed",
                                                 "tiny.ipynb cell test_type changed",
                                                 "tiny.ipynb cell given removed", "tiny.ipynb cell test_new added"]


def test_an_answer_cell_is_not_part_of_the_record(tmp_path):
    (tmp_path / "source" / "tiny").mkdir(parents=True)
    nbformat.write(TINY, tmp_path / "source" / "tiny" / "tiny.ipynb")
    assert set(release.fingerprints(tmp_path, "tiny")["tiny"]) == {"given", "test_value", "test_type"}


def test_the_committed_record_matches_the_source():
    """released.json is what release/ holds: `course release` after changing a notebook (make release)."""
    record = json.loads((COURSE / release.RECORD).read_text())
    for assignment, notebooks in record["assignments"].items():
        assert notebooks == release.fingerprints(COURSE, assignment), f"run `course release {assignment}`"


@pytest.mark.slow
def test_grading_refuses_a_source_changed_after_release(tmp_path):
    course = tiny_course(tmp_path / "course", {"right": SOLVED})
    done = course_command(course, "release", "tiny")
    assert done.returncode == 0 and (course / release.RECORD).exists(), done.stderr
    change_test(course)
    refused = course_command(course, "grade", "tiny", "--serial")
    assert refused.returncode == 2
    assert "source/tiny changed after it was released (tiny.ipynb cell test_value changed)" in refused.stderr
    assert "--regrade-changed-source" in refused.stderr
    assert not (course / "autograded").exists()  # nothing was graded
    # the instructor decides to grade everyone against the new test: the right answer to the old one fails it
    graded = grade(course, "--serial", "--regrade-changed-source")
    assert "grading against the new version as asked" in graded.stdout
    assert gradebook_rows(course)[("right", "test_value")][0] == 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", [["--serial"], ["--workers", "2"]])
def test_one_student_is_regraded_alone(tmp_path, mode):
    course = tiny_course(tmp_path / "course", {"right": SOLVED, "fixed": "answer = 41"})
    grade(course, *mode)
    before = gradebook_rows(course)
    assert before[("fixed", "test_value")][0] == 0
    untouched = (course / "autograded" / "right" / "tiny" / "tiny.ipynb").stat().st_mtime_ns
    notebook = nbformat.read(course / "submitted" / "fixed" / "tiny" / "tiny.ipynb", as_version=4)
    notebook.cells[1].source = SOLVED  # the student's corrected resubmission
    nbformat.write(notebook, course / "submitted" / "fixed" / "tiny" / "tiny.ipynb")
    done = grade(course, *mode, "--student", "fixed")
    after = gradebook_rows(course)
    assert after[("fixed", "test_value")][0] == 2 and after[("fixed", "test_type")][0] == 1
    assert {k: v for k, v in after.items() if k[0] == "right"} == {k: v for k, v in before.items() if k[0] == "right"}
    assert (course / "autograded" / "right" / "tiny" / "tiny.ipynb").stat().st_mtime_ns == untouched
    assert "fixed" in done.stdout and "right " not in done.stdout[:done.stdout.index("failed tests")]


@pytest.mark.slow
def test_an_unknown_student_is_a_clear_error(tmp_path):
    course = tiny_course(tmp_path / "course", {"right": SOLVED})
    done = course_command(course, "grade", "tiny", "--student", "nobody")
    assert done.returncode == 2 and "no submitted/nobody/tiny" in done.stderr
