"""``course report``: where the class stands and whether the grader is right, from a graded course.

- ``table``: the grade table ``course grade`` prints (one row per student and assignment, with reasons);
- ``collect``: everything else the report shows, read from the gradebook and the autograded notebooks;
- ``figures`` and ``page``: ``reports/<assignment>.html``, one self-contained page per assignment;
- here: the terminal summary and ``grades_by_test.csv`` (one row per student, one column per test cell),
  beside nbgrader's own ``grades.csv``.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from course.report.collect import ClassReport, collect
from course.runner import CourseError

CSV_NAME = "grades_by_test.csv"
SHOWN = 8  # students named in the terminal summary's "needs a human" line


def summary(report: ClassReport, path: Path) -> str:
    """The report's headline in a few terminal lines."""
    s, passed, n = report.summary(), report.pass_counts(), len(report.students)
    lines = [f"{report.assignment}: {s['count']} submissions, mean {s['mean']:g}/{report.max_score:g}, median "
             f"{s['median']:g}, {s['zero']} scored 0, {s['full']} full marks",
             "  passed: " + ", ".join(f"{t.name} {passed[t.name]}/{n}" for t in report.tests)]
    groups = report.failure_groups()
    if groups:
        reason, tests, names = groups[0]
        lines.append(f"  most common failure ({len(names)} students, {', '.join(tests)}): {reason[:100]}")
    human = report.needs_human()
    if human:
        kinds = Counter(kind for _, kind, _ in human)
        named = [f"{name} ({kind})" for name, kind, _ in human[:SHOWN]]
        more = f"; … {len(human) - SHOWN} more in the report" if len(human) > SHOWN else ""
        lines.append(f"  needs a human ({len({h[0] for h in human})} students: "
                     + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()) + "): " + "; ".join(named) + more)
    lines.append(f"  report: {path}")
    return "\n".join(lines)


def write_csv(reports: list[ClassReport], path: Path) -> None:
    """One row per student; per assignment, one column per test cell (its points), the total and the reason."""
    header = ["student_id"]
    for r in reports:
        header += [f"{r.assignment}/{t.name}" for t in r.tests] + [f"{r.assignment}/{k}" for k in
                                                                    ("total", "max_score", "reason")]
    rows: dict[str, dict] = {}
    for r in reports:
        for s in r.students:
            row = rows.setdefault(s.name, {"student_id": s.name})
            row.update({f"{r.assignment}/{t.name}": f"{s.scores.get(t.name, 0.0):g}" for t in r.tests})
            row[f"{r.assignment}/total"] = f"{s.row.score:g}"
            row[f"{r.assignment}/max_score"] = f"{r.max_score:g}"
            row[f"{r.assignment}/reason"] = "; ".join([*s.row.notes, s.why()] if s.why() else s.row.notes)
    for r in reports:  # a student who handed nothing in for this assignment
        for row in rows.values():
            if f"{r.assignment}/total" not in row:
                row.update({f"{r.assignment}/total": "0", f"{r.assignment}/max_score": f"{r.max_score:g}",
                            f"{r.assignment}/reason": "nothing handed in"})
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows[name] for name in sorted(rows))


def write(course: Path, assignments: list[str]) -> list[ClassReport]:
    """Write ``reports/<assignment>.html`` and ``grades_by_test.csv``; print the summary."""
    from course.report import page

    if not (course / "gradebook.db").exists():
        raise CourseError(f"{course} has no gradebook.db: grade the class first (`course grade`)")
    reports = [collect(course, assignment) for assignment in assignments]
    (course / "reports").mkdir(exist_ok=True)
    for report in reports:
        path = course / "reports" / f"{report.assignment}.html"
        path.write_text(page.render(report), encoding="utf-8")
        print(summary(report, path.relative_to(course)), flush=True)
    write_csv(reports, course / CSV_NAME)
    print(f"{CSV_NAME}: one row per student, one column per test cell", flush=True)
    return reports


def main(*, course: str, assignments: list[str]) -> int:
    write(Path(course).resolve(), assignments)
    return 0
