"""The sample class in ``submitted/``: what each student handed in and the exact scores it must get.

Data only: the variants and how a folder is written are ``course.variants``'. Run
``python tests/sample_class.py`` (``make sample-class``) to rewrite ``submitted/`` from ``release/`` after
changing a notebook; ``tests/test_course_folder.py`` checks that the committed class matches this file.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from course.variants import VARIANTS, Submission, Variant, fits, lenet_source, write_class

BN, SHUFFLE = VARIANTS["batchnorm"], VARIANTS["shuffle"]


BN_FULL = {"test_bn_positions": 3, "test_structure": 2, "test_prediction": 2, "test_values": 3}
# Every point is for the BN the student added or what their BN model computes: the given model without BN trains
# and reads 2.png as 2, but earns nothing (the prediction and value tests are gated on a BN layer).
BN_ZERO = dict.fromkeys(BN_FULL, 0)
BN_NO_BN = BN_ZERO
SHUFFLE_FULL = {"test_histories": 2, "test_flags": 2, "test_no_shuffle": 3, "test_shuffle": 3}


# --- accidents (issue 14) ---
def nbformat44(assignment: str) -> str:
    """The solution as an older Jupyter saves it: nbformat 4.4, no cell ids (nbformat itself would add them)."""
    import json

    import nbformat

    from course.variants import student_notebook

    notebook = json.loads(nbformat.writes(student_notebook(assignment, Variant())))
    notebook["nbformat_minor"] = 4
    for cell in notebook["cells"]:
        cell.pop("id", None)
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
# --- end of accidents (issue 14) ---


CLASS: dict[str, dict[str, Submission]] = {
    "reference": {
        "batchnorm": Submission(BN_FULL),
        "shuffle": Submission(SHUFFLE_FULL),
    },
    "blank": {  # opened the notebook and handed it in untouched
        "batchnorm": Submission(BN_ZERO, Variant(answers={})),
        "shuffle": Submission(dict.fromkeys(SHUFFLE_FULL, 0), Variant(answers={})),
    },
    # deleted the placeholders, added nothing; saved from a conda env whose kernel the grader lacks (upstream
    # #1375): autograde's OverwriteKernelspec restores the course's kernelspec, the grade must not change
    "no_bn": {
        "batchnorm": Submission(BN_NO_BN, replace(BN["no BN"], kernel="conda-env-dl-py")),
    },
    # three BN layers, each in the wrong place; it trains to numbers within tolerance (see expected.json)
    "bn_after_pool": {
        "batchnorm": Submission(dict(BN_FULL, test_bn_positions=0, test_structure=0), BN["BN after the poolings"]),
    },
    "hardcoded": {  # no real work; typed the expected numbers in
        "batchnorm": Submission(BN_ZERO, replace(
            BN["no BN"], extra_after={"train": "test_loss, test_acc = 0.08, 0.97"})),
        "shuffle": Submission(dict.fromkeys(SHUFFLE_FULL, 0), Variant(answers={
            "fit_no_shuffle": "from tensorflow.keras.callbacks import History\n"
                              "results_no_shuffle = History()\n"
                              "results_no_shuffle.history = {'loss': [2.225, 2.328, 2.2, 2.136, 2.016]}",
            "fit_shuffle": "results_shuffle = History()\n"
                           "results_shuffle.history = {'loss': [0.425, 0.205, 0.125, 0.081, 0.053]}",
        }, extra_after={"graded_line": "print(2.016, 0.053)"})),
    },
    "flags_swapped": {
        "shuffle": Submission(dict(SHUFFLE_FULL, test_flags=0, test_no_shuffle=0, test_shuffle=0),
                              SHUFFLE["flags swapped"]),
    },
    "shuffle_omitted": {  # Keras' default is shuffle=True: the first run is shuffled too
        "shuffle": Submission(dict(SHUFFLE_FULL, test_flags=0, test_no_shuffle=0), SHUFFLE["shuffle omitted"]),
    },
    "wrong_epochs": {
        "shuffle": Submission(dict(SHUFFLE_FULL, test_histories=0, test_no_shuffle=0, test_shuffle=0),
                              SHUFFLE["3 epochs"]),
    },
    # --- accidents (issue 14): ordinary broken submissions (README "When a submission arrives broken"); every case,
    # the renamed ones included, is also graded serially and in parallel on the tiny assignment (test_accidents.py)
    "accident_deleted_test": {  # deleted the first test cell: re-inserted from the release and run, not 0
        "batchnorm": Submission(BN_FULL, replace(BN["solution"], edit={"test_bn_positions": None}),
                                reason="test cell test_bn_positions was deleted: re-inserted from the release and run"),
    },
    "accident_nbformat44": {  # the solution saved by an older Jupyter: nbformat 4.4, no cell ids
        "batchnorm": Submission(BN_FULL, raw=nbformat44("batchnorm")),
    },
    # --- end of accidents (issue 14) ---
}

# --- the hostile class: submissions that try to break, fool or damage the grader (README "Threat model") ---
BN_NO_MODEL = BN_ZERO  # the answer cell never made `model`
SHUFFLE_ZERO = dict.fromkeys(SHUFFLE_FULL, 0)
PATCHES = """import builtins

import keras
numpy.isclose = numpy.allclose = lambda *args, **kwargs: True
builtins.round = lambda value, digits=None: 0.08
checks.close_to_expected = checks.lenet_structure = checks.untouched = lambda *args, **kwargs: None
keras.Model.evaluate = lambda self, *args, **kwargs: [0.08, 0.97]
"""
SWALLOW_ERRORS = """def quiet(shell, etype, evalue, tb, tb_offset=None):
    return None  # every later error, the hidden tests' included, shows nothing

get_ipython().set_custom_exc((BaseException,), quiet)
"""
HOSTILE: dict[str, dict[str, Submission]] = {
    "hostile_exception": {  # a bug: the answer cell raises before it builds the model
        "batchnorm": Submission(BN_NO_MODEL, Variant(before={"model": "raise ValueError('unfinished')"}),
                                reason="ValueError: unfinished"),
        # the flags are written right in the code (test_flags reads the code); nothing else ran
        "shuffle": Submission(dict(SHUFFLE_ZERO, test_flags=2),
                              Variant(before={"fit_no_shuffle": "raise ValueError('unfinished')"}),
                              reason="ValueError: unfinished"),
    },
    "hostile_loop": {  # never ends; the cell timeout interrupts it and grading goes on
        "batchnorm": Submission(BN_NO_MODEL, Variant(before={"model": "while True:\n    pass"}),
                                reason="KeyboardInterrupt"),
    },
    "hostile_sleep": {  # sleeps past every limit and ignores the interrupt: nbgrader gives up on the notebook
        "batchnorm": Submission(BN_ZERO, Variant(before={"model": "import signal\nimport time\n\n"
                                                                  "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                                                  "time.sleep(10**6)"}),
                                reason="CellTimeoutError", ungradable=True),
    },
    "hostile_output": {  # a correct answer that also prints 40 MB: the grade is the answer's, the output is cut
        "batchnorm": Submission(BN_FULL, Variant(before={"model": "for _ in range(400_000):\n    print('x' * 100)"})),
    },
    "hostile_memory": {  # allocates 1 GB after 1 GB: the sandbox stops the kernel at its memory limit
        "batchnorm": Submission(BN_ZERO, Variant(before={"model": "hog = []\nwhile True:\n"
                                                                  "    hog.append(numpy.ones(2**27))"}),
                                reason="more than its limit of 6144 MB", ungradable=True),
    },
    "hostile_hardcoded_line": {  # no BN, and the expected line printed by hand under the graded one
        "batchnorm": Submission(BN_NO_BN, replace(BN["no BN"], extra_after={"graded_line": "print('[2] 0.08 0.97')"})),
    },
    "hostile_monkeypatch": {  # no BN; replaces what the tests call so that everything "passes"
        "batchnorm": Submission(BN_ZERO, Variant({"model": PATCHES + lenet_source("none")}),
                                reason="TamperingSuspected"),
        "shuffle": Submission(SHUFFLE_ZERO, Variant(fits(no_shuffle=", shuffle=True"), before={
            "fit_no_shuffle": "checks.curve_close_to_expected = checks.shuffle_flag = lambda *args, **kwargs: None"}),
            reason="TamperingSuspected"),
    },
    "hostile_swallow_errors": {  # no BN; hides every later error so that failed tests look passed
        "batchnorm": Submission(BN_ZERO, Variant({"model": SWALLOW_ERRORS + lenet_source("none")}),
                                reason="TamperingSuspected"),
        "shuffle": Submission(SHUFFLE_ZERO, Variant({}, before={"fit_no_shuffle": SWALLOW_ERRORS}),
                              reason="TamperingSuspected"),
    },
    "hostile_read_source": {  # builds the model from the instructor's solution in source/ (no exec, no patching)
        "batchnorm": Submission(BN_NO_MODEL, Variant(answers={"model": """import json

solution = json.load(open("../../../source/batchnorm/batchnorm.ipynb"))
answer = next("".join(c["source"]) for c in solution["cells"] if "BEGIN SOLUTION" in "".join(c["source"]))
utils.set_random_seed(1)
model = models.Sequential()
for line in answer.splitlines():
    if line.startswith("model.add(layers.Conv2D"):
        filters = int(line.split("(")[2].split(",")[0])
        model.add(layers.Conv2D(filters, (5, 5), strides=(1, 1), activation='tanh'))
    elif line.startswith("model.add(layers.BatchNormalization"):
        model.add(layers.BatchNormalization())
    elif line.startswith("model.add(layers.AveragePooling2D"):
        model.add(layers.AveragePooling2D((2, 2), strides=(2, 2)))
    elif line.startswith("model.add(layers.Flatten"):
        model.add(layers.Flatten())
    elif line.startswith("model.add(layers.Dense"):
        model.add(layers.Dense(int(line.split("(")[2].split(",")[0]), activation=line.split("'")[1]))
"""}), reason="FileNotFoundError"),
    },
    "hostile_vandal": {  # writes to the gradebook, another student's notebook and release/, deletes source/,
        #                 then dials out; hands in no answer
        "batchnorm": Submission(BN_NO_MODEL, Variant(answers={"model": """import os
import shutil
import socket

for target in ["../../../gradebook.db", "../../reference/batchnorm/batchnorm.ipynb",
               "../../../release/batchnorm/batchnorm.ipynb"]:
    try:
        with open(target, "w") as f:
            f.write("vandalised")
        print("wrote", target)
    except OSError as error:
        print("could not write", target, error)
shutil.rmtree("../../../source", ignore_errors=True)
shutil.rmtree("../../../submitted", ignore_errors=True)
try:
    os.remove("../../../nbgrader_config.py")
except OSError as error:
    print(error)
for host, port in [("pypi.org", 443), ("1.1.1.1", 53), ("127.0.0.1", 8888)]:
    try:
        socket.create_connection((host, port), timeout=5)
        print("connected to", host)
    except OSError as error:
        print("no connection to", host, error)
"""}), reason="NameError"),
    },
    # tries to leave the sandbox (README "Threat model"): writes through /proc/<pid>/root and /cwd of every
    # process it sees, remounts / read-write, makes the disk's device node, reads other processes' environment,
    # kills every other process it sees; hands in no answer. Every attack also runs as root and as an ordinary
    # account in tests/test_course/test_hostile.py.
    "hostile_escape": {
        "batchnorm": Submission(BN_NO_MODEL, Variant({"model": """import os
import signal
import stat
import subprocess

pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("processes seen:", pids)
for pid in pids:
    for via in ("root/tmp", "root", "cwd/../../..", f"root{os.getcwd()}/../../.."):
        try:
            with open(f"/proc/{pid}/{via}/ESCAPED-batchnorm-{pid}", "w") as f:
                f.write("escaped")
        except OSError as error:
            print("no write via", pid, via, type(error).__name__)
    try:
        print(pid, open(f"/proc/{pid}/environ", "rb").read().count(b"="), "variables")
    except OSError as error:
        print(pid, "environ", type(error).__name__)
print(subprocess.run(["mount", "-o", "remount,rw", "/"], capture_output=True).returncode)
try:
    os.mknod("ESCAPED-batchnorm-disk", 0o600 | stat.S_IFBLK, os.makedev(8, 0))
except OSError as error:
    print("mknod", type(error).__name__)
for pid in pids:
    if pid not in (1, os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError as error:
            print("kill", pid, type(error).__name__)
"""}), reason="NameError"),
    },
    "hostile_invalid_json": {  # the file is not a notebook at all
        "batchnorm": Submission(BN_ZERO, raw='{"cells": [ this is not JSON', reason="not a valid notebook",
                                ungradable=True),
    },
    "hostile_missing": {  # the folder without the notebook
        "batchnorm": Submission(BN_ZERO, missing=True, reason="no batchnorm.ipynb", ungradable=True),
    },
    "hostile_edited_tests": {  # no BN; empties the public test, deletes the value test
        "batchnorm": Submission(BN_NO_BN, replace(BN["no BN"], edit={"test_bn_positions": '"""BN check"""\npass',
                                                                    "test_values": None}),
                                reason="test_bn_positions"),
    },
    "hostile_extra_notebook": {  # a correct answer plus a stray copy of the notebook
        "batchnorm": Submission(BN_FULL, extra_notebook="batchnorm-Copy1.ipynb", reason="extra notebook"),
    },
}
CLASS.update(HOSTILE)


if __name__ == "__main__":
    write_class(CLASS, *(Path(arg) for arg in sys.argv[1:2]))
