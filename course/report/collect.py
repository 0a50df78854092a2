"""Everything the class report shows, read once from what grading left behind: the gradebook (scores per
test, lateness), the autograded notebooks (each failed test's reason, what each value test measured), the
course's ``source/`` notebooks (each test's Korean docstring) and, after a parallel run, ``logs/jobs-<a>.json``
(time and worker per submission). Nothing is recomputed."""

from __future__ import annotations

import ast
import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade

from course.preprocessors.replay_execution import STOPPED
from course.preprocessors.screen_student_code import TAMPERING
from course.report.table import Row, is_file_note, rows
from course.runner import load_costs, students
from helpers import MEASURED_MIMETYPE

KINDS = ("ungradable", "tampering suspected", "values just outside the band", "late", "files to look at")
VALUE_CHECKS = ("close_to_expected", "curve_close_to_expected")  # the checks that judge a measured value


@dataclass
class GradeCell:
    name: str
    points: float
    doc: str  # the test cell's one-line docstring, as the student reads it in the feedback
    judges_values: bool  # calls one of VALUE_CHECKS: it passes or fails on a measured number


@dataclass
class Measured:
    key: str
    value: float | list[float]
    expected: float | list[float]
    tolerance: float

    def outside_by(self) -> float:
        """How far the value lies outside the band (0 inside); the largest epoch's distance for a curve."""
        values = self.value if isinstance(self.value, list) else [self.value]
        wanted = self.expected if isinstance(self.expected, list) else [self.expected]
        if len(values) != len(wanted):
            return float("inf")
        return max(max(0.0, abs(v - w) - self.tolerance) for v, w in zip(values, wanted))


@dataclass
class Student:
    row: Row  # the grade table's row: score and points per test, failed tests with reasons, notes, lateness
    measured: dict[str, Measured] = field(default_factory=dict)
    seconds: float | None = None  # grading time of the submission
    worker: str = ""
    graded: bool = True  # nbgrader wrote an autograded notebook
    stopped: str = ""  # why the grading job did not finish (parallel grading), "" if it did

    @property
    def name(self) -> str:
        return self.row.student

    @property
    def scores(self) -> dict[str, float]:
        return self.row.scores

    def passed(self, test: GradeCell) -> bool:
        return test.name not in self.row.failed

    def why(self) -> str:
        """One line: the reasons of the failed tests, as in the grade table."""
        return "; ".join(sorted({reason or "not run" for reason in self.row.failed.values()}))


@dataclass
class ClassReport:
    assignment: str
    tests: list[GradeCell]
    students: list[Student]
    bands: dict[str, dict]  # value key -> {"expected": ..., "tolerance": ...} from helpers/expected.json
    max_score: float
    workers: int = 0  # Dask workers that graded (0: graded serially)
    written: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))

    def scores(self) -> list[float]:
        return [s.row.score for s in self.students]

    def summary(self) -> dict:
        scores = self.scores()
        return {"count": len(scores), "mean": round(statistics.fmean(scores), 2) if scores else 0.0,
                "median": statistics.median(scores) if scores else 0.0,
                "zero": sum(score == 0 for score in scores),
                "full": sum(score == self.max_score for score in scores)}

    def pass_counts(self) -> dict[str, int]:
        return {test.name: sum(s.passed(test) for s in self.students) for test in self.tests}

    def failure_groups(self) -> list[tuple[str, list[str], list[str]]]:
        """The failure reasons, most common first: (reason, the tests failing with it, the students)."""
        groups: dict[str, tuple[set, set]] = {}
        for s in self.students:
            for test, reason in s.row.failed.items():
                tests, names = groups.setdefault(reason or "not run (no error output)", (set(), set()))
                tests.add(test)
                names.add(s.name)
        order = [t.name for t in self.tests]
        found = [(reason, sorted(tests, key=lambda t: order.index(t) if t in order else len(order)), sorted(names))
                 for reason, (tests, names) in groups.items()]
        return sorted(found, key=lambda g: (-len(g[2]), g[0]))

    def needs_human(self) -> list[tuple[str, str, str]]:
        """(student, kind, why) for every submission an instructor should open, the most urgent kind first."""
        return sorted(self._needs_human(), key=lambda h: (KINDS.index(h[1]), h[0]))

    def _needs_human(self) -> list[tuple[str, str, str]]:
        found = []
        for s in self.students:
            reasons = list(s.row.failed.values())
            stopped = sorted({r for r in reasons if r.startswith(STOPPED)})
            if not s.graded or s.stopped or stopped:
                why = [n for n in s.row.notes if not is_file_note(n) and " h late " not in n]
                why = why or ([s.stopped] if s.stopped else stopped) or ["nbgrader could not grade the notebook"]
                found.append((s.name, "ungradable", "; ".join(dict.fromkeys(why))))
            tampering = sorted({r for r in reasons if r.startswith(TAMPERING)})
            if tampering:
                found.append((s.name, "tampering suspected", tampering[0]))
            near = self.near_miss(s)
            if near:
                found.append((s.name, "values just outside the band", near))
            if s.row.seconds_late > 0:
                found.append((s.name, "late", f"{s.row.seconds_late / 3600:.1f} h late, "
                                              f"penalty {s.row.penalty:g} points"))
            files = [n for n in s.row.notes if is_file_note(n)]
            if files:
                found.append((s.name, "files to look at", "; ".join(files)))
        return found

    def trusted(self) -> list[Student]:
        """The students whose measured values mean something: not suspected of tampering (a student who
        replaced ``round`` makes the test measure whatever it returns)."""
        return [s for s in self.students if not any(r.startswith(TAMPERING) for r in s.row.failed.values())]

    def near_miss(self, s: Student) -> str:
        """A failed value test while every other test passed: the work looks right, the numbers are off."""
        failed = [t for t in self.tests if not s.passed(t)]
        if not failed or not all(t.judges_values for t in failed):
            return ""
        off = [m for m in s.measured.values() if m.outside_by() > 0]
        return ", ".join(f"{m.key} outside by {m.outside_by():.3g}" for m in off)

    def seconds(self) -> list[float]:
        return [s.seconds for s in self.students if s.seconds is not None]


def docstring(source: str) -> str:
    """The first line of a test cell's docstring ('' if it has none or does not parse)."""
    try:
        doc = ast.get_docstring(ast.parse(source)) or ""
    except SyntaxError:
        return ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def tests_of(course: Path, assignment: str) -> list[GradeCell]:
    """The assignment's test cells in notebook order, from the instructor's source notebooks."""
    found = []
    for path in sorted((course / "source" / assignment).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and is_grade(cell):
                meta = cell.metadata.nbgrader
                found.append(GradeCell(meta.grade_id, float(meta.get("points", 0)), docstring(cell.source),
                                  any(f"{name}(" in cell.source for name in VALUE_CHECKS)))
    return found


def measured(path: Path) -> dict[str, Measured]:
    """What the value tests recorded in an autograded notebook (``helpers.checks.record``), by value key. Only
    test cells count: their code is the instructor's (autograde restores it)."""
    found = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or not is_grade(cell):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(MEASURED_MIMETYPE)
            if isinstance(data, dict) and {"key", "value", "expected", "tolerance"} <= set(data):
                found[data["key"]] = Measured(data["key"], data["value"], data["expected"], data["tolerance"])
    return found


def notebook_seconds(path: Path) -> float | None:
    """The kernel's time on a notebook: from the first cell's start to the last cell's end (nbclient's
    ``execution`` timestamps, kept in the autograded notebook)."""
    starts, ends = [], []
    for cell in nbformat.read(path, as_version=4).cells:
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            starts.append(datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00")))
            ends.append(datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00")))
    return round((max(ends) - min(starts)).total_seconds(), 1) if starts else None


def bands(assignment: str) -> dict[str, dict]:
    import helpers

    path = Path(helpers.__file__).with_name("expected.json")
    return json.loads(path.read_text(encoding="utf-8"))["assignments"].get(assignment, {}).get("values", {})


def collect(course: Path, assignment: str) -> ClassReport:
    """The class report of one graded assignment."""
    tests = tests_of(course, assignment)
    max_score = sum(t.points for t in tests)
    jobs = load_costs(course, assignment)
    stopped = {(name, assignment): job["reason"] for name, job in jobs.items() if job.get("status") != "ok"}
    found = []
    for row in rows(course, [assignment], stopped):
        student = Student(row)
        notebooks = sorted((course / "autograded" / row.student / assignment).glob("*.ipynb"))
        student.graded = bool(notebooks)
        for path in notebooks:
            student.measured.update(measured(path))
            if student.seconds is None:
                student.seconds = notebook_seconds(path)
        job = jobs.get(row.student)
        if job:
            student.seconds, student.worker = job.get("seconds"), job.get("worker", "")
            student.stopped = job.get("reason", "") if job.get("status") != "ok" else ""
        found.append(student)
    missing = set(students(course, assignment)) - {s.name for s in found}
    for name in sorted(missing):  # handed in, never reached the gradebook
        found.append(Student(Row(name, assignment, 0.0, max_score, notes=["not in the gradebook: not graded"]),
                             graded=False))
    workers = len({job.get("worker") for job in jobs.values() if job.get("worker")})
    return ClassReport(assignment, tests, found, bands(assignment), max_score, workers)
