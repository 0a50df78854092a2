"""End to end: real `nbgrader generate_assignment / autograde / generate_feedback / export` on the sample
class (graded once per run, see conftest.graded_course), asserting every student's exact score per test."""

import csv
import re
import subprocess
from pathlib import Path

import pytest
from conftest import COURSE
from sample_class import CLASS, HOSTILE

from course.runner import gradebook

pytestmark = pytest.mark.slow

EXPECTED = [(student, assignment, submission) for student, assignments in CLASS.items()
            for assignment, submission in assignments.items()]


@pytest.mark.parametrize("student, assignment, submission", EXPECTED, ids=[f"{s}-{a}" for s, a, _ in EXPECTED])
def test_exact_score_per_test_cell(graded_course, student, assignment, submission):
    with gradebook(graded_course) as book:
        notebook = book.find_submission_notebook(assignment, assignment, student)
        scores = {grade.name: grade.score for grade in notebook.grades if grade.max_score}
    assert scores == submission.scores


def test_reference_scores_full_marks(graded_course):
    with gradebook(graded_course) as book:
        for assignment in ("batchnorm", "shuffle"):
            submission = book.find_submission(assignment, "reference")
            assert submission.score == submission.max_score == 10


def test_grades_csv_lists_every_submission(graded_course):
    with open(graded_course / "grades.csv") as f:
        rows = {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f)}
    for student, assignment, submission in EXPECTED:
        assert rows[(student, assignment)] == sum(submission.scores.values())


def test_grade_table_gives_a_reason_per_failed_test(graded_course):
    output = (graded_course / "grade-output.txt").read_text()
    table = output[output.index("failed tests"):]
    assert re.search(r"^reference\s+batchnorm\s+10/10\s+-$", table, re.M)
    assert re.search(r"^blank\s+shuffle\s+0/10\s+test_histories", table, re.M)
    assert "no_bn" in table and "test_structure (AssertionError: 모델의 층 구성이 과제와 다릅니다" in table
    assert "test_flags (AssertionError: results_no_shuffle을(를) 만드는 fit 호출의 shuffle 값이" in table


@pytest.mark.parametrize("assignment", ["batchnorm", "shuffle"])
def test_feedback_is_written_without_hidden_tests(graded_course, assignment):
    for student, assignments in CLASS.items():
        if assignment in assignments:
            path = graded_course / "feedback" / student / assignment / f"{assignment}.html"
            # feedback is made from the graded notebook: an ungradable submission has none (the table says why)
            assert path.exists() != assignments[assignment].ungradable, student
            html = path.read_text() if path.exists() else ""
            assert "BEGIN HIDDEN TESTS" not in html
            # the hidden tests' calls (a hostile student's own code may name these functions, not call them)
            assert "checks.lenet_structure(" not in html and "checks.shuffle_flag(In" not in html


def test_autograde_restores_the_shipped_image(graded_course):
    shipped = (graded_course / "source" / "batchnorm" / "2.png").read_bytes()
    assert (graded_course / "autograded" / "reference" / "batchnorm" / "2.png").read_bytes() == shipped


# --- the hostile class (tests/sample_class.py HOSTILE): safe, exact, and explained ---

def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_grading_leaves_source_release_submissions_and_config_intact(graded_course):
    for folder in ("source", "release", "submitted"):
        assert files(graded_course / folder) == files(COURSE / folder), folder
    assert (graded_course / "nbgrader_config.py").read_bytes() == (COURSE / "nbgrader_config.py").read_bytes()


def test_gradebook_holds_exactly_the_class(graded_course):
    with gradebook(graded_course) as book:
        assert sorted(s.id for s in book.students) == sorted(CLASS)
        for assignment in ("batchnorm", "shuffle"):
            graded = sorted(s.student_id for s in book.assignment_submissions(assignment))
            assert graded == sorted(s for s, a in CLASS.items() if assignment in a)
            for submission in book.assignment_submissions(assignment):
                assert not submission.needs_manual_grade, submission.student_id


HOSTILE_ROWS = [(s, a, sub) for s, a, sub in EXPECTED if s in HOSTILE]


@pytest.mark.parametrize("student, assignment, submission", HOSTILE_ROWS, ids=[f"{s}-{a}" for s, a, _ in HOSTILE_ROWS])
def test_grade_table_says_why_in_one_line(graded_course, student, assignment, submission):
    output = (graded_course / "grade-output.txt").read_text()
    table = output[output.index("failed tests"):].splitlines()
    rows = [line for line in table if re.match(rf"^{student}\s+{assignment}\s", line)]
    assert len(rows) == 1
    assert submission.reason in rows[0]


def test_megabytes_of_output_are_cut_in_the_graded_notebook(graded_course):
    notebook = graded_course / "autograded" / "hostile_output" / "batchnorm" / "batchnorm.ipynb"
    assert notebook.stat().st_size < 2_000_000
    assert "... Output truncated ..." in notebook.read_text()


def test_escape_attempts_in_the_real_pipeline_stay_in_the_sandbox(graded_course):
    """hostile_escape, through the real batchnorm pipeline: it sees only its own processes and writes nothing
    outside its own folder (every attack is also graded as root and as an ordinary account in test_hostile)."""
    done = subprocess.run(["find", "/", "(", "-path", "/proc", "-o", "-path", "/sys", "-o", "-path", "/dev", ")",
                           "-prune", "-o", "-name", "ESCAPED-batchnorm-*", "-print"], capture_output=True, text=True)
    own = tuple(f"{graded_course / kind / 'hostile_escape'}/" for kind in ("autograded", "feedback"))
    assert [path for path in done.stdout.splitlines() if not path.startswith(own)] == []
    notebook = graded_course / "autograded" / "hostile_escape" / "batchnorm" / "batchnorm.ipynb"
    assert "processes seen: [1, 2" in notebook.read_text()


# --- the class report (`course report`, written at the end of `course grade`) ---

@pytest.mark.parametrize("assignment", ["batchnorm", "shuffle"])
def test_report_numbers_match_the_gradebook(graded_course, assignment):
    from course.report.collect import collect

    report = collect(graded_course, assignment)
    expected = {s: a[assignment] for s, a in CLASS.items() if assignment in a}
    assert {s.name: s.scores for s in report.students} == {s: sub.scores for s, sub in expected.items()}
    totals = [sum(sub.scores.values()) for sub in expected.values()]
    assert report.summary()["count"] == len(expected)
    assert report.summary()["zero"] == totals.count(0) and report.summary()["full"] == totals.count(10)
    points = {t.name: t.points for t in report.tests}
    assert report.pass_counts() == {t: sum(sub.scores[t] == points[t] for sub in expected.values()) for t in points}
    page = (graded_course / "reports" / f"{assignment}.html").read_text()
    for test, passed in report.pass_counts().items():
        assert f"<td>{test}</td>" in page and f"{passed}/{len(expected)}" in page


def test_report_groups_failures_and_lists_who_needs_a_human(graded_course):
    from course.report.collect import collect

    report = collect(graded_course, "batchnorm")
    groups = {reason: names for reason, _, names in report.failure_groups()}
    # the same message with another layer count is another group: "(층 8개)" without BN, "(층 11개)" misplaced
    without_bn = next(names for reason, names in groups.items() if "과제와 다릅니다 (층 8개)" in reason)
    assert {"blank", "no_bn", "hostile_hardcoded_line"} <= set(without_bn)
    assert next(names for reason, names in groups.items() if "(층 11개)" in reason) == ["bn_after_pool"]
    human = {(name, kind) for name, kind, _ in report.needs_human()}
    ungradable = {s for s, a in CLASS.items() if a.get("batchnorm") and a["batchnorm"].ungradable}
    assert {name for name, kind in human if kind == "ungradable"} == ungradable
    assert {name for name, kind in human if kind == "tampering suspected"} == {
        "hostile_monkeypatch", "hostile_swallow_errors"}
    assert ("hostile_extra_notebook", "files to look at") in human
    assert not {name for name, kind in human if kind == "values just outside the band"}  # none in this class


def test_report_validity_values_come_from_the_graded_notebooks(graded_course):
    from course.report.collect import collect

    batchnorm = {s.name: s for s in collect(graded_course, "batchnorm").students}
    reference = batchnorm["reference"].measured
    assert reference["test_loss"].outside_by() == 0 and reference["test_acc"].outside_by() == 0
    # the value the hidden test judged is the one the graded line printed (rounded to 2 places)
    printed = (graded_course / "autograded" / "reference" / "batchnorm" / "batchnorm.ipynb").read_text()
    assert f"{reference['test_loss'].value:g}" in printed
    # a model without BN is measured all the same, and lies outside the band: the scatter shows why it failed
    assert batchnorm["no_bn"].measured["test_loss"].outside_by() > 0
    assert {"test_loss", "test_acc"} <= set(batchnorm["no_bn"].measured)  # both recorded before either is judged
    shuffle = {s.name: s for s in collect(graded_course, "shuffle").students}
    assert len(shuffle["reference"].measured["shuffle_loss"].value) == 5
    assert shuffle["flags_swapped"].measured["no_shuffle_loss"].outside_by() > 0


def test_grades_by_test_csv_matches_the_gradebook(graded_course):
    with open(graded_course / "grades_by_test.csv", encoding="utf-8") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(CLASS)
    for student, assignments in CLASS.items():
        for assignment, submission in assignments.items():
            for test, score in submission.scores.items():
                assert float(rows[student][f"{assignment}/{test}"]) == score, (student, test)
            assert float(rows[student][f"{assignment}/total"]) == sum(submission.scores.values())
    assert rows["no_bn"]["shuffle/reason"] == "nothing handed in"
    assert "모델의 층 구성이 과제와 다릅니다" in rows["no_bn"]["batchnorm/reason"]
