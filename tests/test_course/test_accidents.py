"""Ordinary accidents of a real class (issue 14), on the tiny assignment (``answer = 42``; tests worth 2 + 1):
renamed notebooks, zips, late work, mangled notebooks, a dying kernel, huge and scrambled outputs. Each
student's exact score and one-line reason are asserted after serial ``course grade --serial`` and after
``course grade --workers 2``, and the two gradebooks must be identical.

How each mangled notebook is made (from the released notebook, with the tools a student's computer has):
nbconvert's ``ClearMetadataPreprocessor`` (``jupyter nbconvert --to notebook``) strips the cell metadata;
nbformat 4.4 (no cell ids, as Notebook < 6.2 and older editors save) and duplicate cell ids are written as
JSON, because nbformat itself repairs both on writing; the rest are edits of the cell list with nbformat."""

import copy
import csv
import io
import json
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from tiny import SOLVED, grade, gradebook_rows, tiny_course

from course import intake
from course.report.collect import collect
from course.runner import gradebook, nbgrader, nbgrader_env

FULL = {"test_value": 2, "test_type": 1}
ZERO = {"test_value": 0, "test_type": 0}
DUE, LATE, ON_TIME = "2026-01-01 00:00:00 UTC", "2026-01-02 01:00:00 UTC", "2025-12-31 23:00:00 UTC"
HUGE_MB = 30
COPIES = ("1 copied or split cell(s) repeat an instructor or answer cell: the last copy is graded as that cell, "
          "the others run as the student's own cells")

# student -> (points per test, [substrings of the student's line in the grade table])
EXPECTED = {
    "reference": (FULL, []),
    # renamed notebooks
    "renamed_paren": (FULL, ["graded tiny (1).ipynb as tiny.ipynb (the file as handed in is kept as "
                             "originals/renamed_paren/tiny/tiny (1).ipynb)"]),
    "renamed_copy": (FULL, ["graded tiny-Copy1.ipynb as tiny.ipynb"]),
    "renamed_case": (FULL, ["graded Tiny.ipynb as tiny.ipynb"]),
    "renamed_two": (ZERO, ["no tiny.ipynb; 2 notebooks could be it (tiny (1).ipynb, tiny (2).ipynb): not guessed, "
                           "rename the one to grade to tiny.ipynb and regrade", "no tiny.ipynb handed in"]),
    # zips
    "zipped": (FULL, ["unpacked submission.zip (2 files; the zip is in originals/zipped/tiny/submission.zip)"]),
    "zip_renamed": (FULL, ["unpacked tiny.zip (1 file;", "graded tiny (1).ipynb as tiny.ipynb"]),
    "zip_traversal": (ZERO, ["evil.zip not unpacked (../../../escaped.txt would land outside the folder): moved to "
                             "quarantine/zip_traversal/tiny/evil.zip", "no tiny.ipynb handed in"]),
    "zip_link": (ZERO, ["link.zip not unpacked (tiny.ipynb is a link or a special file)"]),
    "zip_bomb": (ZERO, ["bomb.zip not unpacked (more than 1 MB unpacked)"]),
    "zip_clash": (FULL, ["clash.zip not unpacked (it would overwrite tiny.ipynb, already in the folder)"]),
    # late work: due 2026-01-01 00:00 UTC, 1 point per started day
    "late": (FULL, ["25.0 h late (due 2026-01-01 00:00 UTC): late penalty 2 points"]),
    "on_time": (FULL, []),
    # mangled notebooks
    "stripped": (FULL, ["nbgrader metadata missing from 4 cells: restored by matching the released notebook "
                        "(given, test_value, test_type, answer)"]),
    "nbformat44": (FULL, []),
    "duplicate_ids": (FULL, []),
    "duplicated_test": (FULL, [COPIES]),
    "duplicated_answer": (FULL, [COPIES]),
    "reordered": (FULL, ["cells out of the released order (answer): graded in the released order"]),
    "markdown_answer": (FULL, ["answer cell answer was markdown: graded as code"]),
    "split_answer": (FULL, [COPIES]),
    "deleted_test": (FULL, ["test cell test_value was deleted: re-inserted from the release and run"]),
    "deleted_answer": (ZERO, ["test_value, test_type (NameError: name 'answer' is not defined)",
                              "answer cell answer is missing from the submission: what needs it fails"]),
    # the kernel and the outputs
    "dies": (ZERO, ["DeadKernelError"]),
    "huge_outputs": (FULL, []),
    "scrambled_counts": (FULL, []),
}


def released(course: Path):
    return nbformat.read(course / "release" / "tiny" / "tiny.ipynb", as_version=4)


def solved(course: Path):
    notebook = released(course)
    notebook.cells[1].source = SOLVED
    return notebook


def folder(course: Path, student: str) -> Path:
    path = course / "submitted" / student / "tiny"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(notebook: dict, path: Path) -> None:
    """Bytes as a tool that does not validate would save them (nbformat would repair what we break)."""
    path.write_text(json.dumps(notebook, indent=1))


def zip_of(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)


def hand_in(course: Path) -> None:
    """Every accident's folder, made from the released notebook."""
    good = nbformat.writes(solved(course)).encode()
    for name in ("renamed_paren", "renamed_two"):
        (folder(course, name) / "tiny (1).ipynb").write_bytes(good)
    (folder(course, "renamed_two") / "tiny (2).ipynb").write_bytes(good)
    (folder(course, "renamed_copy") / "tiny-Copy1.ipynb").write_bytes(good)
    (folder(course, "renamed_case") / "Tiny.ipynb").write_bytes(good)

    zip_of(folder(course, "zipped") / "submission.zip", {"tiny/tiny.ipynb": good, "tiny/notes.txt": b"hi",
                                                         "__MACOSX/tiny/._tiny.ipynb": b"junk"})
    zip_of(folder(course, "zip_renamed") / "tiny.zip", {"tiny (1).ipynb": good})
    zip_of(folder(course, "zip_traversal") / "evil.zip", {"tiny.ipynb": good, "../../../escaped.txt": b"x"})
    zip_of(folder(course, "zip_link") / "link.zip", {}, links={"tiny.ipynb": "/etc/shadow"})
    zip_of(folder(course, "zip_bomb") / "bomb.zip", {"tiny.ipynb": good + b" " * (2 << 20)})
    (folder(course, "zip_clash") / "tiny.ipynb").write_bytes(good)
    zip_of(folder(course, "zip_clash") / "clash.zip", {"tiny.ipynb": b"{}"})

    for name, when in (("late", LATE), ("on_time", ON_TIME)):
        (folder(course, name) / "tiny.ipynb").write_bytes(good)
        (folder(course, name) / "timestamp.txt").write_text(when)

    (folder(course, "stripped") / "tiny.ipynb").write_bytes(good)
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--inplace",
                    "--ClearMetadataPreprocessor.enabled=True", str(folder(course, "stripped") / "tiny.ipynb")],
                   check=True, capture_output=True, env=nbgrader_env())

    old = json.loads(good)
    old["nbformat_minor"] = 4
    for cell in old["cells"]:
        del cell["id"]
    write_json(old, folder(course, "nbformat44") / "tiny.ipynb")
    same = json.loads(good)
    for cell in same["cells"]:
        cell["id"] = "same-id"
    write_json(same, folder(course, "duplicate_ids") / "tiny.ipynb")

    def edited(student, change):
        notebook = solved(course)
        change(notebook.cells)
        for cell in notebook.cells:
            cell.pop("id", None)
        notebook.nbformat_minor = 4  # copies of a cell would share its id; 4.4 has none
        nbformat.write(notebook, folder(course, student) / "tiny.ipynb")

    edited("duplicated_test", lambda cells: cells.insert(2, copy.deepcopy(cells[2])))
    edited("duplicated_answer", lambda cells: [cells.insert(1, copy.deepcopy(cells[1])),
                                               setattr(cells[1], "source", "answer = 41")])
    edited("reordered", lambda cells: cells.insert(3, cells.pop(1)))  # the answer below the first test
    edited("markdown_answer", lambda cells: cells.__setitem__(1, nbformat.v4.new_markdown_cell(
        SOLVED, metadata=cells[1].metadata)))
    edited("split_answer", lambda cells: [cells.insert(1, copy.deepcopy(cells[1])),
                                          setattr(cells[1], "source", "half = 21"),
                                          setattr(cells[2], "source", "answer = half * 2")])
    edited("deleted_test", lambda cells: cells.pop(2))
    edited("deleted_answer", lambda cells: cells.pop(1))

    dies = released(course)
    dies.cells[1].source = "import os\nos._exit(1)"
    nbformat.write(dies, folder(course, "dies") / "tiny.ipynb")
    huge = solved(course)
    png = __import__("base64").b64encode(__import__("os").urandom(HUGE_MB << 20)).decode()
    huge.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
    nbformat.write(huge, folder(course, "huge_outputs") / "tiny.ipynb")
    scrambled = solved(course)
    for cell, count in zip(scrambled.cells, (7, 3, 12, 1)):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": str(count)},
                                               execution_count=count)]
    nbformat.write(scrambled, folder(course, "scrambled_counts") / "tiny.ipynb")


def accident_course(root: Path) -> Path:
    course = tiny_course(root, {"reference": SOLVED})
    nbgrader(course, "db", "assignment", "add", "tiny", f"--duedate={DUE}")
    hand_in(course)
    return course


def handed_in_bytes(course: Path) -> dict[str, bytes]:
    return {str(p.relative_to(course)): p.read_bytes() for p in (course / "submitted").rglob("*") if p.is_file()}


def grade_accidents(root: Path, *options: str):
    """The class graded with ``options``; with what each student handed in, before."""
    course = accident_course(root)
    before = handed_in_bytes(course)
    return course, grade(course, *options, COURSE_ZIP_MAX_MB="1"), before


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return grade_accidents(tmp_path_factory.mktemp("serial") / "course", "--serial")


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    return grade_accidents(tmp_path_factory.mktemp("parallel") / "course", "--workers", "2")


@pytest.fixture(params=["serial", "parallel"])
def graded(request):
    """The class graded serially, then the same class graded on 2 Dask workers."""
    return request.getfixturevalue(request.param)


def table_lines(done) -> dict[str, str]:
    table = done.stdout[done.stdout.index("student "):].splitlines()[1:]
    return {line.split()[0]: line for line in table if line.split() and line.split()[1] == "tiny"}


@pytest.mark.slow
def test_each_accident_gets_its_exact_score_and_reason(graded):
    course, done, _ = graded
    rows, lines = gradebook_rows(course), table_lines(done)
    assert {(s, t): rows[(s, t)][0] for s in EXPECTED for t in FULL} == {
        (s, t): points[t] for s, (points, _) in EXPECTED.items() for t in FULL}
    for student, (points, reasons) in EXPECTED.items():
        line = lines[student]
        for reason in reasons:
            assert reason in line, (student, line)
        net = sum(points.values()) - (2 if student == "late" else 0)
        assert f"{net:g}/3" in line, line
        if not reasons:  # nothing to say: no note, no failed test
            assert line.split()[-1] == "-", line


@pytest.mark.slow
def test_parallel_gradebook_equals_serial(serial, parallel):
    assert gradebook_rows(serial[0]) == gradebook_rows(parallel[0])


@pytest.mark.slow
def test_late_penalty_is_in_the_gradebook_csv_and_report(graded):
    course, _, _ = graded
    with gradebook(course) as book:
        late, on_time = book.find_submission("tiny", "late"), book.find_submission("tiny", "on_time")
        assert (late.total_seconds_late, late.late_submission_penalty) == (25 * 3600, 2)
        assert (on_time.total_seconds_late, on_time.late_submission_penalty) == (0, 0)
    with open(course / "grades.csv", newline="") as f:
        exported = {row["student_id"]: row for row in csv.DictReader(f)}
    assert [exported["late"][k] for k in ("timestamp", "raw_score", "late_submission_penalty", "score")] == [
        "2026-01-02 01:00:00", "3.0", "2.0", "1.0"]
    assert [exported["on_time"][k] for k in ("raw_score", "late_submission_penalty", "score")] == ["3.0", "0.0", "3.0"]
    report = collect(course, "tiny")
    assert ("late", "late", "25.0 h late, penalty 2 points") in report.needs_human()
    assert {s.name: s.row.score for s in report.students}["late"] == 1


@pytest.mark.slow
def test_report_tells_which_need_a_human(graded):
    human = {(name, kind): why for name, kind, why in collect(graded[0], "tiny").needs_human()}
    assert "not guessed" in human[("renamed_two", "ungradable")]
    assert "originals/renamed_paren/tiny/tiny (1).ipynb" in human[("renamed_paren", "files to look at")]
    assert "quarantine/zip_traversal/tiny/evil.zip" in human[("zip_traversal", "files to look at")]
    assert "re-inserted" in human[("deleted_test", "files to look at")]


@pytest.mark.slow
def test_nothing_handed_in_is_lost(graded):
    """Every file as handed in still exists, byte for byte: in submitted/ (a renamed notebook under its new
    name, and as handed in in originals/), in originals/ (an unpacked zip) or in quarantine/ (a refused zip)."""
    course, _, before = graded
    kept = {str(p.relative_to(course)): p.read_bytes() for top in ("submitted", "originals", "quarantine")
            for p in (course / top).rglob("*") if p.is_file()}
    for path, data in before.items():
        _, student, assignment, name = path.split("/", 3)
        places = [path, f"originals/{student}/{assignment}/{name}", f"quarantine/{student}/{assignment}/{name}"]
        assert any(kept.get(place) == data for place in places), path
    assert not list(course.parent.rglob("escaped.txt")) and not (course / "escaped.txt").exists()
    assert (course / "submitted" / "zipped" / "tiny" / "notes.txt").read_bytes() == b"hi"
    assert not (course / "submitted" / "zipped" / "tiny" / "__MACOSX").exists()


@pytest.mark.slow
def test_feedback_for_every_graded_accident(graded):
    """Every notebook nbgrader could grade gets feedback (a re-inserted test shows as such); the others none."""
    course, _, _ = graded
    ungradable = {"renamed_two", "zip_traversal", "zip_link", "zip_bomb", "dies"}
    for student in EXPECTED:
        path = course / "feedback" / student / "tiny" / "tiny.html"
        assert path.exists() != (student in ungradable), student
    assert "was missing from the submission" in (course / "feedback/deleted_test/tiny/tiny.html").read_text()


@pytest.mark.slow
def test_the_sample_class_accidents_say_why(graded_course):
    """The accidents of the sample class (tests/sample_class.py) on the real batchnorm notebook: their exact
    scores are test_grade.py's; here, the reason in the grade table."""
    from sample_class import CLASS

    output = (graded_course / "grade-output.txt").read_text()
    table = output[output.index("failed tests"):].splitlines()
    accidents = {s: a for s, a in CLASS.items() if s.startswith("accident_")}
    assert accidents
    for student, assignments in accidents.items():
        for assignment, submission in assignments.items():
            rows = [line for line in table if re.match(rf"^{student}\s+{assignment}\s", line)]
            assert len(rows) == 1 and submission.reason in rows[0], (student, rows)


@pytest.mark.slow
def test_a_regrade_keeps_the_notes(serial):
    """The collect step ran once; regrading a renamed student shows the same note and score again."""
    course, _, _ = serial
    done = grade(course, "--serial", "--student", "renamed_paren")
    assert "graded tiny (1).ipynb as tiny.ipynb" in table_lines(done)["renamed_paren"]
    assert gradebook_rows(course)[("renamed_paren", "test_value")][0] == 2


# --- the collect step's rules, without grading (fast) ---------------------------------------------------------

@pytest.mark.parametrize("stem", ["tiny", "Tiny", "tiny (1)", "tiny (12)", "tiny-Copy1", "tiny_copy", "Copy of tiny",
                                  "tiny - 복사본", "kimminji_12345_67890_tiny", "TINY (1)-Copy2"])
def test_download_decorations_are_taken_off(stem):
    assert intake.undecorated(stem) == "tiny"


@pytest.mark.parametrize("stem", ["tiny2", "tinyx", "my tiny", "untitled", "tiny_answers"])
def test_other_names_are_not_the_notebook(stem):
    assert intake.undecorated(stem) != "tiny"


def test_unzip_refuses_before_writing(tmp_path):
    archive = tmp_path / "a.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("ok.txt", b"fine")
        z.writestr("/etc/evil", b"x")
    archive.write_bytes(buffer.getvalue())
    target = tmp_path / "folder"
    target.mkdir()
    with pytest.raises(intake.Refused, match="would land outside the folder"):
        intake.unzip(archive, target)
    assert list(target.iterdir()) == []
    (tmp_path / "b.zip").write_bytes(b"not a zip")
    with pytest.raises(intake.Refused, match="not a readable zip"):
        intake.unzip(tmp_path / "b.zip", target)


def test_a_lying_zip_header_is_caught_while_unpacking(tmp_path, monkeypatch):
    """The size limit is counted on the bytes written, not trusted from the zip's header."""
    monkeypatch.setattr(intake, "ZIP_MAX_MB", 1)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.bin", b"\0" * (3 << 20))
    data = bytearray(archive.read_bytes())
    # the header's uncompressed size, in the local header (offset 22) and the central directory, made small
    size = (3 << 20).to_bytes(4, "little")
    for at in [i for i in range(len(data) - 3) if data[i:i + 4] == size]:
        data[at:at + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    target = tmp_path / "folder"
    target.mkdir()
    with pytest.raises(intake.Refused):
        intake.unzip(archive, target)
    assert list(target.iterdir()) == []

