"""Feedback preprocessor: a failed test shows its message only, never the hidden test code."""

from nbconvert.preprocessors import Preprocessor
from nbgrader.utils import is_grade


class HideTestCode(Preprocessor):
    """A failed test cell's error keeps its message and loses its traceback.

    nbgrader's feedback shows the autograded notebook as graded, hidden tests included (upstream #917,
    #1363); ``ClearHiddenTests`` removes them from the cells' source, and this removes them from the
    tracebacks, which quote the failing line. The student sees the test's docstring and its message.
    """

    enabled = True  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
