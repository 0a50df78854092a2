"""``course calibrate``: measure the expected values and tolerances the hidden tests use.

``course calibrate [ASSIGNMENT ...]`` runs each assignment's own source notebook (its cells up to the
graded print, tests left out) in a fresh kernel, many times:

* the solution under several numeric settings: default, one thread, oneDNN off, op determinism;
* equivalent spellings of the answer (must be accepted) and wrong answers (must be rejected): the
  variants of ``course.variants`` marked ``calibrate``.

The expected value is the solution's result under the default setting. Each tolerance is the largest
deviation any correct run showed, plus a margin (one rounding step for rounded values). The command
fails, writing nothing, if a wrong answer would be accepted. Every run is recorded in
``helpers/expected.json`` with its setting, values and time.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course.runner import CourseError
from course.variants import VARIANTS

SETTINGS = {
    "default": {},
    "one thread": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"},
    "oneDNN off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "op determinism": {"TF_DETERMINISTIC_OPS": "1"},
}

PROBES = {
    "batchnorm": ("print('CALIBRATION', json.dumps({'test_loss': round(test_loss, 2), 'test_acc': round(test_acc, 2),"
                  " 'raw_test_loss': test_loss, 'raw_test_acc': test_acc,"
                  " 'digit': int(numpy.argmax(confidence))}))"),
    "shuffle": ("print('CALIBRATION', json.dumps({'no_shuffle_loss': results_no_shuffle.history['loss'],"
                " 'shuffle_loss': results_shuffle.history['loss'],"
                " 'no_shuffle_test_acc': no_shuffle_test_acc, 'shuffle_test_acc': shuffle_test_acc}))"),
}
# The keys the hidden tests compare, and the margin added to the observed spread of correct runs.
KEYS = {
    "batchnorm": {"test_loss": 0.01, "test_acc": 0.01},
    # Right and wrong shuffle runs are far apart (loss ~2.2 vs ~0.4, accuracy ~0.06 vs ~0.96): a wide margin
    # costs nothing and absorbs another CPU's arithmetic on the chaotic class-ordered run.
    "shuffle": {"no_shuffle_loss": 0.05, "shuffle_loss": 0.05, "no_shuffle_test_acc": 0.05, "shuffle_test_acc": 0.05},
}


def graded_part(source: Path, answers: dict | None, probe: str):
    """The source notebook's code up to the graded print, answers replaced, tests dropped, probe added."""
    notebook = nbformat.read(source, as_version=4)
    cells = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        if answers and meta.get("grade_id") in answers:
            cell.source = answers[meta["grade_id"]]
        cells.append(cell)
        if meta.get("grade_id") == "graded_line":
            break
    cells.append(nbformat.v4.new_code_cell("import json\n" + probe))
    notebook.cells = cells
    return notebook


def run_once(source: Path, answers: dict | None, probe: str, env: dict) -> tuple[dict, float]:
    notebook = graded_part(source, answers, probe)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(source.parent)}}).execute(env=env)
    seconds = time.perf_counter() - start
    for output in notebook.cells[-1].outputs:
        if output.output_type == "stream" and "CALIBRATION" in output.text:
            return json.loads(output.text.split("CALIBRATION", 1)[1]), seconds
    raise CourseError(f"{source}: the calibration probe printed nothing")


def _deviation(value, expected) -> float:
    if isinstance(expected, list):
        if not isinstance(value, list) or len(value) != len(expected):
            return float("inf")
        return max(abs(v - e) for v, e in zip(value, expected))
    return abs(value - expected)


def calibrate_assignment(assignment: str, course: Path) -> dict:
    source = course / "source" / assignment / f"{assignment}.ipynb"
    runs = []
    variants = {name: v for name, v in VARIANTS[assignment].items() if v.calibrate}
    plan = [("solution", setting) for setting in SETTINGS]
    plan += [(name, "default") for name in variants if name != "solution"]
    for name, setting in plan:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **SETTINGS[setting])
        values, seconds = run_once(source, variants[name].answers, PROBES[assignment], env)
        runs.append({"variant": name, "setting": setting, "correct": variants[name].must_be_accepted,
                     "values": values, "seconds": round(seconds, 1)})
        print(f"  {assignment:<9} {name:<34} {setting:<15} {seconds:6.1f} s  {_brief(values)}", flush=True)

    reference = next(r["values"] for r in runs if r["variant"] == "solution" and r["setting"] == "default")
    values = {}
    for key, margin in KEYS[assignment].items():
        expected = reference[key]
        expected = [round(v, 4) for v in expected] if isinstance(expected, list) else round(expected, 4)
        spread = max(_deviation(r["values"][key], expected) for r in runs if r["correct"] is True)
        values[key] = {"expected": expected, "tolerance": round(spread + margin, 4)}
    for r in runs:
        r["accepted"] = all(_deviation(r["values"][k], v["expected"]) <= v["tolerance"] + 1e-9
                            for k, v in values.items())
    return {"values": values, "runs": runs}


def _brief(values: dict) -> str:
    def short(v):
        return "[" + " ".join(f"{x:.3f}" for x in v) + "]" if isinstance(v, list) else f"{v:.4g}"
    return " ".join(f"{k}={short(v)}" for k, v in values.items() if not k.startswith("raw_"))


def main(*, assignments: list[str], out: str, course: str = ".") -> int:
    course = Path(course).resolve()
    out = Path(out)
    import keras
    import tensorflow as tf

    result = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {"assignments": {}}
    result["how"] = __doc__.strip()
    result["measured_on"] = {
        "date": datetime.date.today().isoformat(), "tensorflow": tf.__version__, "keras": keras.__version__,
        "python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "settings": SETTINGS,
    }
    problems = []
    for assignment in assignments:
        measured = calibrate_assignment(assignment, course)
        for r in measured["runs"]:
            if r["correct"] is not None and r["correct"] != r["accepted"]:
                problems.append(f"{assignment}: {r['variant']} ({r['setting']}) would be "
                                f"{'accepted' if r['accepted'] else 'rejected'}")
        result["assignments"][assignment] = measured
        print(f"  {assignment}: " + "; ".join(f"{k} = {v['expected']} +/- {v['tolerance']}"
                                             for k, v in measured["values"].items()))
    if problems:
        print("calibration failed, nothing written:\n  " + "\n  ".join(problems))
        return 1
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0
