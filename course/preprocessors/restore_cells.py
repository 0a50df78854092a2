"""Autograde sanitize preprocessor: nbgrader's ``OverwriteCells``, made to survive what editors and students
do to a notebook's structure."""

import re

import nbformat
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.preprocessors import OverwriteCells

REPAIRS = "course_repairs"  # notebook metadata key: what was restored, one line each (read by the grade table)
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.M | re.S)


def comparable(source: str) -> str:
    """A cell's source as the student received it (hidden tests removed), whitespace-insensitive at line ends."""
    return "\n".join(line.rstrip() for line in HIDDEN.sub("", source).strip().splitlines())


class RestoreCells(OverwriteCells):
    """In place of ``OverwriteCells`` (same options, ``add_missing_cells`` included), before it does its work:

    - **nbformat 4.4** (no cell ids, as older Jupyter and editors save): upgraded to 4.5 first, else nbgrader
      fails on a 4.4 notebook as soon as it must restore a cell's type (``'id' is a required property``);
    - **copies of a cell** (copy-paste, a split cell): nbgrader's ``DeduplicateIds`` keeps the last copy and
      leaves the others an empty ``nbgrader`` entry, which nbgrader's own metadata check then takes for an
      old format and stops the *whole batch* on (``SchemaTooOldError``); the empty entries are removed, so
      the other copies run as the student's own cells. Metadata of a format nbgrader cannot read is removed
      the same way (the cell it belonged to is then restored or re-inserted as below);
    - **stripped metadata** (an editor or converter dropped the cells' ``nbgrader`` metadata): a cell without it
      whose source is, as released, that of a given or test cell missing from the notebook gets that cell's
      metadata back; then the one unmarked cell between the restored neighbours of a missing answer cell
      becomes that answer cell again;
    - **cells out of order**: the instructor's cells go back to the released order, each carrying the cells
      the student added after it (a test moved above the answer would otherwise run before it);
    - **deleted test cells** (``add_missing_cells``): re-inserted after the nearest cell before them in the
      release that is still there. nbgrader's own version puts them after the previous answer or test cell
      only, and fails (``KeyError``) when that cell is a given cell, as in both assignments here;
    - a **deleted answer cell** is left deleted (the student's work is not invented): what needs it fails.

    Each repair is listed in the notebook's metadata (``course_repairs``) for the grade table."""

    def preprocess(self, nb, resources):
        notebook_id, assignment_id = resources["nbgrader"]["notebook"], resources["nbgrader"]["assignment"]
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            source_nb = gb.find_notebook(notebook_id, assignment_id)
            self._order = [c.name for c in source_nb.source_cells]  # the release's order (saved in that order)
            self._cells = {c.name: (c.cell_type, c.locked, c.source, c.checksum) for c in source_nb.source_cells}
            self._points = {c.name: c.max_score for c in source_nb.grade_cells}
            self._solutions = {c.name for c in source_nb.solution_cells}
        self._changed = []
        if nb.nbformat_minor < 5:  # nbformat 4.4 and older have no cell ids; nbgrader's cell checks expect them
            nbformat.v4.upgrade(nb, from_version=4, from_minor=nb.nbformat_minor)
        repairs = self.clean_metadata(nb) + self.restore_metadata(nb) + self.restore_order(nb)
        add, self.add_missing_cells = self.add_missing_cells, False  # nbgrader's version is replaced below
        try:
            nb, resources = super().preprocess(nb, resources)
        finally:
            self.add_missing_cells = add
        repairs += [f"{kind} cell {name} was {old}: graded as {new}" for name, old, new in self._changed
                    for kind in ["answer" if name in self._solutions else "given or test"]]
        if add:
            repairs += self.reinsert_tests(nb)
        present = set(self.ids(nb))
        repairs += [f"answer cell {name} is missing from the submission: what needs it fails"
                    for name in self._order if name in self._solutions and name not in present]
        if repairs:
            nb.metadata[REPAIRS] = repairs
            for line in repairs:
                self.log.warning(line)
        return nb, resources

    def report_change(self, name, attr, old, new):
        super().report_change(name, attr, old, new)
        if attr == "cell_type":
            self._changed.append((name, new, old))

    @staticmethod
    def ids(nb) -> list[str]:
        return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade_id")]

    @staticmethod
    def clean_metadata(nb) -> list[str]:
        copies, unreadable, validator = 0, [], MetadataValidator()
        for index, cell in enumerate(nb.cells):
            meta = cell.metadata.get("nbgrader")
            if meta is None:
                continue
            if not meta:  # emptied by DeduplicateIds
                copies += 1
                del cell.metadata["nbgrader"]
                continue
            try:
                validator.upgrade_cell_metadata(cell)
                readable = cell.metadata["nbgrader"].get("schema_version") == validator.schema_version
            except Exception:  # any malformed entry
                readable = False
            if not readable:
                unreadable.append(str(meta.get("grade_id", f"cell {index + 1}")) if isinstance(meta, dict)
                                  else f"cell {index + 1}")
                cell.metadata.pop("nbgrader", None)
        found = []
        if copies:
            found.append(f"{copies} copied or split cell(s) repeat an instructor or answer cell: the last copy is "
                         f"graded as that cell, the others run as the student's own cells")
        if unreadable:
            found.append(f"nbgrader metadata nbgrader cannot read on {', '.join(unreadable)}: removed")
        return found

    def metadata_of(self, name: str) -> dict:
        cell_type, locked, _, checksum = self._cells[name]
        meta = {"grade": name in self._points, "solution": name in self._solutions, "locked": locked,
                "grade_id": name, "schema_version": 3, "task": False, "checksum": checksum}
        if name in self._points:
            meta["points"] = self._points[name]
        return meta

    def restore_metadata(self, nb) -> list[str]:
        present = set(self.ids(nb))
        by_source = {}
        for name in self._order:
            cell_type, locked, source, _ = self._cells[name]
            if name not in present and locked and name not in self._solutions:
                by_source.setdefault((cell_type, comparable(source)), name)
        restored = []
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id"):
                continue
            name = by_source.pop((cell.cell_type, comparable(cell.source)), None)
            if name:
                cell.metadata["nbgrader"] = self.metadata_of(name)
                restored.append(name)
        answers = []
        for name in self._order:  # the one unmarked cell between the restored neighbours of an answer cell
            if name not in self._solutions or name in self.ids(nb):
                continue
            where = {n: i for i, c in enumerate(nb.cells) for n in [c.metadata.get("nbgrader", {}).get("grade_id")]
                     if n}
            index = self._order.index(name)
            lo = max((where[n] for n in self._order[:index] if n in where), default=-1)
            hi = min((where[n] for n in self._order[index + 1:] if n in where), default=len(nb.cells))
            between = [c for c in nb.cells[lo + 1:hi] if not c.metadata.get("nbgrader", {}).get("grade_id")
                       and c.cell_type == self._cells[name][0]]
            if restored and len(between) == 1:
                between[0].metadata["nbgrader"] = self.metadata_of(name)
                answers.append(name)
        if not restored and not answers:
            return []
        return [f"nbgrader metadata missing from {len(restored) + len(answers)} cells: restored by matching "
                f"the released notebook ({', '.join(restored + answers)})"]

    def restore_order(self, nb) -> list[str]:
        rank = {name: i for i, name in enumerate(self._order)}
        blocks, current = [], []
        for cell in nb.cells:  # each instructor cell with the student's cells that follow it
            name = cell.metadata.get("nbgrader", {}).get("grade_id")
            if name in rank and current:
                blocks.append(current)
                current = []
            current.append(cell)
        if current:
            blocks.append(current)

        def key(block):
            name = block[0].metadata.get("nbgrader", {}).get("grade_id")
            return rank.get(name, -1)

        ordered = sorted(blocks, key=key)  # stable: the first block (cells before any instructor cell) stays first
        if ordered == blocks:
            return []
        moved, latest = [], -1
        for block in blocks:  # the cells that came after a cell released later than them
            if key(block) < latest:
                moved.append(block[0].metadata["nbgrader"]["grade_id"])
            latest = max(latest, key(block))
        nb.cells = [cell for block in ordered for cell in block]
        return [f"cells out of the released order ({', '.join(moved)}): graded in the released order"]

    def reinsert_tests(self, nb) -> list[str]:
        added = []
        for name in self._order:
            if name not in self._points or name in self.ids(nb):
                continue
            present = {n: i for i, c in enumerate(nb.cells)
                       for n in [c.metadata.get("nbgrader", {}).get("grade_id")] if n}
            earlier = [present[n] for n in self._order[:self._order.index(name)] if n in present]
            cell_type, locked, source, checksum = self._cells[name]
            cell = self.missing_cell_transform(_Source(name, cell_type, locked, source, checksum), self._points[name],
                                               is_solution=name in self._solutions)
            nb.cells.insert(max(earlier, default=-1) + 1, nbformat.from_dict(cell))
            added.append(name)
        if not added:
            return []
        return [f"test cell {', '.join(added)} was deleted: re-inserted from the release and run"]


class _Source:
    """The fields of a gradebook source cell that ``missing_cell_transform`` reads."""

    def __init__(self, name, cell_type, locked, source, checksum):
        self.name, self.cell_type, self.locked, self.source, self.checksum = name, cell_type, locked, source, checksum

