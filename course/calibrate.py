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

It also records the **fingerprint** the grading workers are verified against (``course.fingerprint``): the
versions and the loss of a 20-step run of the reference model, measured repeatedly with one and two
threads and under the other settings above, with a tolerance far above their spread; it fails if an
environment that computes differently (Keras in mixed_float16 or float64) would pass.
``course calibrate --fingerprint-only`` re-measures only that (about two minutes).
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

from course import fingerprint
from course.parallel import thread_env
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


# The fingerprint's tolerance: FINGERPRINT_FACTOR times the largest deviation of any correct run, at least
# FINGERPRINT_FLOOR. Measured: the correct settings differ by < 1e-6, Keras in another precision by > 0.01.
FINGERPRINT_REPEATS, FINGERPRINT_FACTOR, FINGERPRINT_FLOOR = 3, 100, 1e-4
DIFFERENT_PRECISIONS = ("mixed_float16", "float64")


def calibrate_fingerprint(repeats: int = FINGERPRINT_REPEATS) -> dict:
    """Measure the fingerprint run ``repeats`` times with one and with two threads, once under each other
    setting, and once in each environment that computes differently; its record for ``helpers/expected.json``."""
    import tempfile

    plan = [(f"{n} thread{'s' if n > 1 else ''}", thread_env(n), True) for n in (1, 2) for _ in range(repeats)]
    plan += [(name, env, True) for name, env in SETTINGS.items() if name != "one thread"]
    with tempfile.TemporaryDirectory(prefix="fingerprint-envs-") as scratch:
        plan += [(f"Keras {policy} (sitecustomize on PYTHONPATH)", fingerprint.precision_env(Path(scratch) / policy,
                                                                                           policy), False)
                 for policy in DIFFERENT_PRECISIONS]
        runs = []
        for setting, env, correct in plan:
            measured = fingerprint.measure(env)
            shown = env if correct else {"PYTHONPATH": f"<a sitecustomize.py: {setting}>"}  # not the scratch path
            runs.append({"setting": setting, "env": shown, "correct": correct, "loss": measured["loss"],
                         "fit_loss": measured["fit_loss"], "seconds": measured["seconds"],
                         "versions": measured["versions"]})
            print(f"  fingerprint {setting:<48} loss {measured['loss']:.9f}  {measured['seconds']:5.1f} s", flush=True)
    reference = next(r for r in runs if r["setting"] == "default")
    versions = {k: reference["versions"][k] for k in fingerprint.COMPARED}
    for r in runs:
        if r["correct"] and {k: r["versions"][k] for k in fingerprint.COMPARED} != versions:
            raise CourseError(f"the fingerprint's versions changed between runs: {r['versions']} vs {versions}")
    expected = reference["loss"]
    spread = max(abs(r["loss"] - expected) for r in runs if r["correct"])
    tolerance = float(f"{max(FINGERPRINT_FLOOR, FINGERPRINT_FACTOR * spread):.2g}")
    for r in runs:
        r["accepted"] = not fingerprint.compare({"versions": r.pop("versions"), "loss": r["loss"]},
                                                {"versions": versions, "loss": expected, "tolerance": tolerance})

    def losses(setting):
        return ", ".join(f"{r['loss']:.9f}" for r in runs if r["setting"] == setting)

    correct_text = "; ".join(f"{setting}: {losses(setting)}" for setting in dict.fromkeys(
        r["setting"] for r in runs if r["correct"]))
    different_text = "; ".join(f"{r['setting']}: {r['loss']:.6f} (off by {abs(r['loss'] - expected):.3f}, "
                               f"{'ACCEPTED' if r['accepted'] else 'rejected'})" for r in runs if not r["correct"])
    how = (f"{fingerprint.HOW} A grading worker must have the versions below (Python: major.minor) and a loss within "
           f"the tolerance, else it is excluded from grading. Expected: the default setting's loss. Measured on "
           f"{datetime.date.today().isoformat()} ({platform.machine()}, {os.cpu_count()} cores), each run a fresh "
           f"process: {correct_text}. Largest deviation of these correct runs: {spread:.2g}. Tolerance = "
           f"max({FINGERPRINT_FLOOR:g}, {FINGERPRINT_FACTOR} x that) = {tolerance:g}. Environments that compute "
           f"differently, measured the same way: {different_text}.")
    return {"how": how, "versions": versions, "loss": expected, "tolerance": tolerance, "runs": runs}


def main(*, assignments: list[str], out: str, course: str = ".", fingerprint_only: bool = False) -> int:
    course = Path(course).resolve()
    out = Path(out)
    result = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {"assignments": {}}
    if fingerprint_only:
        return _record_fingerprint(result, out)
    import keras
    import tensorflow as tf

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
    return _record_fingerprint(result, out)


def _record_fingerprint(result: dict, out: Path) -> int:
    """Measure the fingerprint into ``result`` and write it to ``out``, unless a different environment would pass."""
    result["fingerprint"] = record = calibrate_fingerprint()
    print(f"  fingerprint: loss = {record['loss']} +/- {record['tolerance']:g}")
    wrong = [r["setting"] for r in record["runs"] if r["correct"] != r["accepted"]]
    if wrong:
        print("calibration failed, nothing written: the fingerprint's tolerance would "
              + "; ".join(f"{'accept' if not r['correct'] else 'reject'} {r['setting']}"
                          for r in record["runs"] if r["setting"] in wrong))
        return 1
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0
