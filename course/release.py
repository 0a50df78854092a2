"""``course release``: hand out the assignments, and remember what was handed out.

``nbgrader generate_assignment A --force`` writes ``release/A/`` from ``source/A/``; from then on the
students' copies are fixed. nbgrader regenerates from ``source/`` before it autogrades (``course grade``
does too), so a source changed after release (a typo fixed, a test changed) silently grades the old
submissions against new given cells and tests, or fails them with checksum errors (upstream #1423,
#1961). This module records a checksum of every given (locked) and test cell of each released notebook in
``released.json``, committed beside ``release/``; ``course grade`` compares ``source/`` with it first and
refuses to grade a changed assignment unless told to regrade against the new version.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade, is_locked

from course.runner import CourseError, nbgrader

RECORD = "released.json"
HOW = ("Written by `course release`: per assignment and notebook, the sha256 of every given (locked) and "
       "test cell of source/ as released (cell type, source, points). `course grade` refuses to grade an "
       "assignment whose source no longer matches, unless given --regrade-changed-source.")


def checksum(cell) -> str:
    meta = cell.metadata.nbgrader
    text = "\0".join([cell.cell_type, cell.source, str(float(meta.get("points", 0))) if is_grade(cell) else ""])
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprints(course: Path, assignment: str) -> dict[str, dict[str, str]]:
    """{notebook: {grade_id: checksum}} of the given and test cells of ``source/<assignment>/``."""
    found = {}
    for path in sorted((course / "source" / assignment).glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        found[path.stem] = {c.metadata.nbgrader.grade_id: checksum(c) for c in cells
                            if "nbgrader" in c.metadata and (is_locked(c) or is_grade(c))}
    return found


def recorded(course: Path) -> dict:
    path = course / RECORD
    return json.loads(path.read_text()) if path.exists() else {"how": HOW, "assignments": {}}


def remember(course: Path, assignment: str) -> None:
    record = recorded(course)
    record["how"] = HOW
    record["assignments"][assignment] = fingerprints(course, assignment)
    record["assignments"] = dict(sorted(record["assignments"].items()))
    (course / RECORD).write_text(json.dumps(record, indent=1) + "\n")


def changes(course: Path, assignment: str) -> list[str] | None:
    """How ``source/<assignment>/`` differs from what was released: one line per changed, added or removed
    cell; None if the assignment was never recorded."""
    released = recorded(course)["assignments"].get(assignment)
    if released is None:
        return None
    now, found = fingerprints(course, assignment), []
    for notebook in sorted(set(released) | set(now)):
        old, new = released.get(notebook), now.get(notebook)
        if old is None or new is None:
            found.append(f"{notebook}.ipynb {'added' if old is None else 'removed'}")
            continue
        found += [f"{notebook}.ipynb cell {cell} changed" for cell in old if cell in new and old[cell] != new[cell]]
        found += [f"{notebook}.ipynb cell {cell} removed" for cell in old if cell not in new]
        found += [f"{notebook}.ipynb cell {cell} added" for cell in new if cell not in old]
    return found


def check(course: Path, assignment: str, regrade_changed_source: bool = False) -> None:
    """Before grading: stop if the source changed since release (unless told to regrade against it)."""
    found = changes(course, assignment)
    if found is None:
        remember(course, assignment)
        print(f"{assignment}: no release record in {RECORD}; recorded the current source as released", flush=True)
    elif found and not regrade_changed_source:
        raise CourseError(
            f"source/{assignment} changed after it was released ({'; '.join(found)}): the students' notebooks "
            f"have the old given cells and tests. Undo the change (git diff source/{assignment}), or grade "
            f"every submission against the new version with --regrade-changed-source "
            f"(and `course release {assignment}` if you hand the new version out)")
    elif found:
        print(f"{assignment}: source changed after release ({'; '.join(found)}); grading against the new "
              "version as asked (--regrade-changed-source)", flush=True)


def main(*, course: str, assignments: list[str]) -> int:
    """Generate ``release/`` for each assignment and record what it holds."""
    course = Path(course).resolve()
    for assignment in assignments:
        nbgrader(course, "generate_assignment", assignment, "--force")
        remember(course, assignment)
        print(f"released {assignment}: release/{assignment}/ (recorded in {RECORD})", flush=True)
    return 0

