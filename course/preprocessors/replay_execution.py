"""Autograde preprocessor used by ``course grade`` in place of nbgrader's ``Execute``: replay a worker's run."""

import json
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from nbgrader.utils import is_grade
from traitlets import Unicode

STOPPED = "GradingStopped"  # the ename of the error put into the test cells of a job that did not finish
JOBS_FILE = "jobs.json"  # in ``folder``: {student: {"status": "ok" | "timeout" | "error", "reason": ...}}


class ReplayExecution(Preprocessor):
    """Each code cell gets the outputs it produced on the worker (``course.parallel``), so that nbgrader's own
    preprocessors after it compute and save the scores exactly as after a serial run. A job stopped at its
    wall time: every test cell gets an error output with the reason, so every test scores 0. A job where
    nbgrader failed (kernel died, worker lost): it fails here too, as it would serially."""

    enabled = True
    folder = Unicode(help="the workers' results: <folder>/jobs.json and <folder>/<student>/<notebook>.ipynb"
                     ).tag(config=True)

    def preprocess(self, nb, resources):
        student, name = resources["nbgrader"]["student"], resources["nbgrader"]["notebook"]
        job = json.loads((Path(self.folder) / JOBS_FILE).read_text()).get(student, {})
        executed = Path(self.folder) / student / f"{name}.ipynb"
        if job.get("status") == "error":
            raise RuntimeError(job["reason"])
        if job.get("status") != "ok" or not executed.exists():
            stop_tests(nb, job.get("reason") or "the submission was not graded")
            return nb, resources
        done = nbformat.read(executed, as_version=4)
        if [c.source for c in done.cells] != [c.source for c in nb.cells]:
            raise ValueError(f"{executed}: the worker's notebook does not match the submission's cells")
        for cell, ran in zip(nb.cells, done.cells):
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
                if "execution" in ran.metadata:  # nbclient's timestamps of the run
                    cell.metadata.execution = ran.metadata.execution
        if "language_info" in done.metadata:
            nb.metadata.language_info = done.metadata.language_info
        return nb, resources


def stop_tests(nb, reason: str) -> None:
    """Every test cell's outputs become one error that names ``reason``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and is_grade(cell):
            cell.outputs = [nbformat.v4.new_output("error", ename=STOPPED, evalue=reason,
                                                   traceback=[f"{STOPPED}: {reason}"])]
