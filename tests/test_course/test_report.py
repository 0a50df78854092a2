"""The class report's arithmetic and page, on a small made-up class (the sample class's real report is checked
against its gradebook in test_grade.py, and rendered in Chromium in test_browser.py)."""

import csv

import nbformat
import pytest

from course.preprocessors.replay_execution import STOPPED
from course.preprocessors.screen_student_code import TAMPERING
from course.report import summary, write_csv
from course.report.collect import ClassReport, GradeCell, Measured, Student, docstring, measured, notebook_seconds
from course.report.page import render
from course.report.table import Row
from helpers import MEASURED_MIMETYPE

TESTS = [GradeCell("test_structure", 2, "모델의 층 순서를 확인합니다.", False),
         GradeCell("test_values", 3, "값이 허용 오차 안에 있는지 확인합니다.", True)]
BANDS = {"test_loss": {"expected": 0.08, "tolerance": 0.01}, "test_acc": {"expected": 0.97, "tolerance": 0.01}}
VALUE_ERROR = "AssertionError: round(test_loss, 2)이(가) 범위를 벗어났습니다."


def student(name, score, failed=None, notes=None, loss=0.08, acc=0.97, seconds=10.0, late=0.0, graded=True):
    values = {} if loss is None else {"test_loss": Measured("test_loss", loss, 0.08, 0.01),
                                      "test_acc": Measured("test_acc", acc, 0.97, 0.01)}
    failed = failed or {}
    row = Row(name, "bn", score, 5, failed=failed, notes=notes or [], seconds_late=late, penalty=1.0 if late else 0.0,
              scores={t.name: (0 if t.name in failed else t.points) for t in TESTS})
    return Student(row, values, seconds, "tcp://w1", graded=graded)


@pytest.fixture
def report():
    return ClassReport("bn", TESTS, [
        student("ada", 5),
        student("bo", 5, seconds=30.0),
        student("cy", 2, failed={"test_values": VALUE_ERROR}, loss=0.1),  # right structure, value off: near miss
        student("di", 3, failed={"test_structure": "AssertionError: 층 구성이 다릅니다"}),
        student("ed", 0, failed={"test_structure": f"{STOPPED}: stopped after 300 s",
                                 "test_values": f"{STOPPED}: stopped after 300 s"}, loss=None, seconds=300.0),
        student("fi", 0, failed={"test_structure": f"{TAMPERING}: changed round", "test_values": VALUE_ERROR},
                late=7200.0),
        student("gu", 0, failed={"test_structure": "", "test_values": ""}, notes=["no bn.ipynb handed in"],
                loss=None, seconds=None, graded=False),
    ], BANDS, 5, workers=1)


def test_summary_counts(report):
    assert report.summary() == {"count": 7, "mean": 2.14, "median": 2, "zero": 3, "full": 2}
    assert report.pass_counts() == {"test_structure": 3, "test_values": 3}


def test_failures_are_grouped_by_reason_most_common_first(report):
    groups = report.failure_groups()
    assert groups[0] == (VALUE_ERROR, ["test_values"], ["cy", "fi"])
    assert (f"{STOPPED}: stopped after 300 s", ["test_structure", "test_values"], ["ed"]) in groups
    assert ("not run (no error output)", ["test_structure", "test_values"], ["gu"]) in groups


def test_needs_human_names_each_kind_once(report):
    kinds = {(name, kind) for name, kind, _ in report.needs_human()}
    assert kinds == {("cy", "values just outside the band"), ("ed", "ungradable"), ("gu", "ungradable"),
                     ("fi", "tampering suspected"), ("fi", "late")}
    near = [why for name, kind, why in report.needs_human() if name == "cy"]
    assert near == ["test_loss outside by 0.01"]


def test_a_wrong_structure_is_not_a_near_miss(report):
    di = next(s for s in report.students if s.name == "di")
    di.measured["test_loss"] = Measured("test_loss", 0.2, 0.08, 0.01)
    assert report.near_miss(di) == ""


def test_curve_distance_is_the_worst_epoch():
    assert Measured("loss", [1.0, 2.0, 3.5], [1.0, 2.0, 3.0], 0.1).outside_by() == pytest.approx(0.4)
    assert Measured("loss", [1.0, 2.0], [1.0, 2.0, 3.0], 0.1).outside_by() == float("inf")


def test_page_is_self_contained_and_quotes_the_tests(report):
    html = render(report)
    assert "모델의 층 순서를 확인합니다." in html and "3/7" in html
    assert html.count('src="data:image/png;base64,') == 4  # scores, pass rates, validity, cost
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "<td>ed</td><td>ungradable</td>" in html


def test_terminal_summary(report, tmp_path):
    text = summary(report, tmp_path / "bn.html")
    assert text.startswith("bn: 7 submissions, mean 2.14/5, median 2, 3 scored 0, 2 full marks")
    assert "passed: test_structure 3/7, test_values 3/7" in text
    assert "needs a human (4 students: 2 ungradable, 1 tampering suspected, 1 values just outside the band, " \
           "1 late): ed (ungradable); gu (ungradable); fi (tampering suspected); cy (values just outside the band); " \
           "fi (late)" in text


def test_csv_has_one_row_per_student_and_one_column_per_test(report, tmp_path):
    other = ClassReport("sh", [GradeCell("test_flags", 2, "", False)], [student("ada", 2)], {}, 2)
    other.students[0].row.scores = {"test_flags": 2}
    write_csv([report, other], tmp_path / "by_test.csv")
    with open(tmp_path / "by_test.csv", encoding="utf-8") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert list(rows["ada"])[:5] == ["student_id", "bn/test_structure", "bn/test_values", "bn/total", "bn/max_score"]
    assert rows["cy"]["bn/test_values"] == "0" and rows["cy"]["bn/test_structure"] == "2"
    assert rows["cy"]["bn/reason"] == VALUE_ERROR
    assert rows["gu"]["bn/reason"] == "no bn.ipynb handed in; not run"
    assert rows["ada"]["sh/total"] == "2" and rows["bo"]["sh/reason"] == "nothing handed in"


def test_measured_values_are_read_only_from_test_cells(tmp_path):
    record = {MEASURED_MIMETYPE: {"key": "test_loss", "value": 0.5, "expected": 0.08, "tolerance": 0.01},
              "text/plain": "측정값"}
    forged = dict(record, **{MEASURED_MIMETYPE: dict(record[MEASURED_MIMETYPE], key="test_acc")})
    test = nbformat.v4.new_code_cell('"""값을 확인합니다."""', metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "test_values", "points": 2}},
        outputs=[nbformat.v4.new_output("display_data", data=record)])
    test.metadata.execution = {"iopub.execute_input": "2026-01-01T00:00:01Z",
                               "shell.execute_reply": "2026-01-01T00:00:04.5Z"}
    answer = nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("display_data", data=forged)])
    answer.metadata.execution = {"iopub.execute_input": "2026-01-01T00:00:00Z",
                                 "shell.execute_reply": "2026-01-01T00:00:01Z"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[answer, test]), path)
    assert list(measured(path)) == ["test_loss"] and measured(path)["test_loss"].value == 0.5
    assert notebook_seconds(path) == 4.5


def test_docstring_first_line():
    assert docstring('"""첫 줄.\n\n둘째 줄."""\nassert True') == "첫 줄."
    assert docstring("assert True") == "" and docstring("def (") == ""
