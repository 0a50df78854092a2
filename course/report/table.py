"""What grading found, per student: the score, each failed test with the first line of its message, and notes
for the instructor (a missing or broken notebook, an ignored extra notebook, the first error in the
student's own cells, a job stopped at its limit). Read from the gradebook and the autograded notebooks;
``course grade`` prints it as a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade, is_locked

from course.intake import notes_of
from course.preprocessors.restore_cells import REPAIRS
from course.runner import gradebook, unsafe_entries

FILE_NOTES = ("quarantine", "extra notebook", "originals/", "restored", "re-inserted", "released order",
              "graded as")  # notes on what was handed in, not on why the notebook could not be graded


@dataclass
class Row:
    student: str
    assignment: str
    score: float
    max_score: float
    failed: dict[str, str] = field(default_factory=dict)  # test cell -> first line of its error ("" if none)
    notes: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # test cell -> points given
    seconds_late: float = 0.0
    penalty: float = 0.0


def failures(notebook_path: Path) -> dict[str, str]:
    """The failed test cells of an autograded notebook: grade_id -> the error's first message line."""
    found = {}
    for cell in nbformat.read(notebook_path, as_version=4).cells:
        if cell.cell_type != "code" or not is_grade(cell):
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                message = (output.evalue or output.ename).strip().splitlines()
                found[cell.metadata.nbgrader.grade_id] = f"{output.ename}: {message[0] if message else ''}".strip()
                break
    return found


def student_errors(notebook_path: Path) -> list[str]:
    """The first error in a cell the student wrote (answer cells, added cells): where the trouble began."""
    for cell in nbformat.read(notebook_path, as_version=4).cells:
        if cell.cell_type != "code" or is_locked(cell):
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                message = (output.evalue or "").strip().splitlines()
                where = cell.metadata.get("nbgrader", {}).get("grade_id") or "a cell the student added"
                return [f"{where} raised {output.ename}{': ' + message[0][:120] if message else ''}"]
    return []


def is_file_note(note: str) -> bool:
    """A note on what was handed in and what grading did about it (renamed, unpacked, repaired, moved aside)."""
    return any(word in note for word in FILE_NOTES)


def repairs(notebook_path: Path) -> list[str]:
    """What ``RestoreCells`` repaired in the notebook before it ran (stripped metadata, order, deleted cells)."""
    return list(nbformat.read(notebook_path, as_version=4).metadata.get(REPAIRS, []))


def handed_in(course: Path, student: str, assignment: str, names: list[str]) -> list[str]:
    """Notes on the files themselves: what the collect step did (``course.intake``), a missing or unreadable
    notebook, extra notebooks that were ignored."""
    folder = course / "submitted" / student / assignment
    notes = notes_of(course, student, assignment)
    for name in names:
        path = folder / f"{name}.ipynb"
        if not path.exists():
            notes.append(f"no {name}.ipynb handed in")
            continue
        try:
            nbformat.read(path, as_version=4)
        except Exception as error:  # nbformat raises several kinds for a broken file
            notes.append(f"{name}.ipynb is not a valid notebook ({type(error).__name__})")
    quarantine = course / "quarantine" / student / assignment
    links = [f"{path.relative_to(quarantine)} is a {why}" for path, why in unsafe_entries(quarantine)]
    if links:
        notes.append("moved to quarantine/, not graded: " + "; ".join(links))
    extras = sorted(p.name for p in folder.glob("*.ipynb") if p.stem not in names)
    if extras:
        notes.append(f"extra notebook ignored: {', '.join(extras)}")
    return notes


def rows(course: Path, assignments: list[str], stopped: dict | None = None) -> list[Row]:
    """One row per (student, assignment). ``stopped``: {(student, assignment): reason} from the parallel grader."""
    found = []
    with gradebook(course) as book:
        for assignment in assignments:
            names = [n.name for n in book.find_assignment(assignment).notebooks]
            for submission in book.assignment_submissions(assignment):
                student = submission.student_id
                penalty = submission.late_submission_penalty or 0.0
                # the score is the grade after the late penalty, as in grades.csv's score minus its penalty
                row = Row(student, assignment, submission.score - penalty, submission.max_score,
                          notes=handed_in(course, student, assignment, names),
                          scores={g.name: g.score or 0.0 for nb in submission.notebooks for g in nb.grades},
                          seconds_late=submission.total_seconds_late or 0.0, penalty=penalty)
                if row.seconds_late > 0:
                    row.notes.append(f"{row.seconds_late / 3600:.1f} h late (due {submission.duedate:%Y-%m-%d %H:%M} "
                                     f"UTC): late penalty {penalty:g} points")
                for notebook in submission.notebooks:
                    path = course / "autograded" / student / assignment / f"{notebook.name}.ipynb"
                    if path.exists():
                        row.notes += repairs(path)
                        row.failed.update(failures(path))
                        row.notes += student_errors(path)
                    for grade in notebook.grades:  # a failed test without an error output (e.g. never run)
                        if grade.max_score and (grade.score or 0) < grade.max_score:
                            row.failed.setdefault(grade.name, "")
                why = (stopped or {}).get((student, assignment))
                if why and not row.notes and not any(why in reason for reason in row.failed.values()):
                    row.notes.append(why)  # the files were fine, the grading job was not
                found.append(row)
    return sorted(found, key=lambda r: (r.assignment, r.student))


def table(found: list[Row]) -> str:
    """The grade table: tests that failed for the same reason are listed together."""
    width = max([len(r.student) for r in found] + [7])
    lines = [f"{'student':<{width}}  {'assignment':<10}  {'score':>9}  failed tests  [notes]"]
    for r in found:
        by_reason: dict[str, list[str]] = {}
        for name, why in r.failed.items():
            by_reason.setdefault(why, []).append(name)
        failed = "; ".join(f"{', '.join(names)} ({why})" if why else ", ".join(names)
                           for why, names in by_reason.items()) or "-"
        notes = f"  [{'; '.join(r.notes)}]" if r.notes else ""
        lines.append(f"{r.student:<{width}}  {r.assignment:<10}  {r.score:>4g}/{r.max_score:<4g}  {failed}{notes}")
    return "\n".join(lines)
