"""Autograde preprocessor: zero the tests of a notebook whose student code tampers with what they rely on."""

import nbformat
from nbconvert.preprocessors import Preprocessor
from nbgrader.utils import is_grade, is_solution

from course.screen import findings, split_cells

TAMPERING = "TamperingSuspected"


class ScreenStudentCode(Preprocessor):
    """Runs in nbgrader after execution, before the scores are saved: if ``course.screen.findings`` reports
    anything in the code the student wrote, every test cell gets an error output with the reason (first, so
    feedback and the grade report show it), and so scores 0."""

    enabled = True

    def preprocess(self, nb, resources):
        given, student = split_cells(nb)
        reasons = [f"{label}, {reason}" for label, code in student for reason in findings(code, given)]
        if not reasons:
            return nb, resources
        message = ("the student's code changes what the tests rely on, so the tests cannot be trusted: "
                   + "; ".join(reasons[:3]) + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""))
        error = nbformat.v4.new_output("error", ename=TAMPERING, evalue=message, traceback=[f"{TAMPERING}: {message}"])
        for cell in nb.cells:
            if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
                # once, also when the outputs come from a run that was already screened (the parallel replay)
                cell.outputs = [error] + [o for o in cell.outputs if o.get("ename") != TAMPERING]
        return nb, resources
