"""The tamper screen (course.screen, outside the kernel) and the in-kernel guard (checks.untouched)."""

import nbformat
import numpy
import pytest

from course.preprocessors.screen_student_code import TAMPERING, ScreenStudentCode
from course.screen import findings
from course.variants import fit_sources, lenet_source
from helpers import checks

GIVEN = """import time

import cv2
import matplotlib.pyplot as plt
import numpy
from tensorflow.keras import datasets, layers, losses, metrics, models, optimizers, utils

from helpers import checks, plots
"""

HONEST = {
    "solution": lenet_source("conv"),
    "list form": lenet_source("conv", style="list"),
    "keras.Input": lenet_source("conv", input_layer=True),
    "no BN (wrong, but honest)": lenet_source("none"),
    "summary": lenet_source("conv") + "\nmodel.summary()\nprint(len(model.layers))",
    "other imports": "import tensorflow as tf\nfrom tensorflow import keras\nfrom tensorflow.keras import layers\n"
                     "import numpy as np\n" + lenet_source("conv"),
    "magics": "%time x = 1\n!ls\nimport matplotlib\nplt.rcParams['figure.figsize'] = (8, 4)",
    "shuffle fits": "\n".join(fit_sources("train_images, train_labels, epochs=5, shuffle=False",
                                          "train_images, train_labels, epochs=5, shuffle=True").values()),
    "a rename": "history = model.fit(train_images, train_labels, epochs=5, shuffle=False)\n"
                "results_no_shuffle = history",
    "own helper": "def make_model():\n    m = models.Sequential()\n    m.add(layers.Flatten())\n    return m\n"
                  "model = make_model()\nfor i, layer in enumerate(model.layers):\n    print(i, layer.name)",
}

ATTACKS = {
    "numpy.isclose": "numpy.isclose = lambda *a, **k: True",
    "numpy alias": "import numpy as np\nnp.allclose = lambda *a, **k: True",
    "builtins.round": "import builtins\nbuiltins.round = lambda x, n=None: 0.08",
    "shadow round": "def round(x, n=None):\n    return 0.08",
    "assign round": "round = lambda x, n=None: 0.08",
    "checks function": "checks.close_to_expected = lambda *a: None",
    "checks code": "checks.lenet_structure.__code__ = (lambda *a: None).__code__",
    "checks rebound": "import numpy as checks",
    "keras evaluate": "import keras\nkeras.Model.evaluate = lambda self, *a, **k: [0.08, 0.97]",
    "models.Model evaluate": "models.Model.evaluate = lambda self, *a, **k: [0.08, 0.97]",
    "instance evaluate": "model.evaluate = lambda *a, **k: [0.08, 0.97]",
    "fake history": "results_shuffle.history = {'loss': [0.4, 0.2, 0.1, 0.08, 0.05]}",
    "setattr": "setattr(numpy, 'isclose', lambda *a, **k: True)",
    "exec": "exec(open('answer.py').read())",
    "custom exc": "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)",
    "In history": "In[-1] = 'results_no_shuffle = model.fit(x, y, shuffle=False)'",
    "sys.modules": "import sys\nsys.modules['numpy'].isclose = abs",
    "gc": "import gc\ngc.get_referrers(numpy.isclose)",
    "vars": "vars(numpy)['isclose'] = abs",
}


@pytest.mark.parametrize("name", HONEST)
def test_honest_code_passes_the_screen(name):
    assert findings(HONEST[name], GIVEN) == []


@pytest.mark.parametrize("name", ATTACKS)
def test_each_attack_is_found_with_its_line(name):
    reasons = findings(ATTACKS[name], GIVEN)
    assert reasons and all(reason.startswith("line ") for reason in reasons)


def test_screen_zeroes_only_the_test_cells_and_names_the_reason():
    def cell(source, **meta):
        return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta} if meta else {})

    nb = nbformat.v4.new_notebook(cells=[
        cell(GIVEN, locked=True, grade=False, solution=False, grade_id="imports"),
        cell("numpy.isclose = abs", solution=True, grade=False, grade_id="model"),
        cell("assert True", grade=True, solution=False, locked=True, grade_id="test_a", points=1),
        cell("print('added by the student')"),
    ])
    ScreenStudentCode().preprocess(nb, {})
    ScreenStudentCode().preprocess(nb, {})  # screening twice (the parallel grader's replay) changes nothing
    errors = [[o for o in c.outputs if o.output_type == "error"] for c in nb.cells]
    assert [len(e) for e in errors] == [0, 0, 1, 0]
    assert errors[2][0].ename == TAMPERING and "model, line 1: changes `numpy.isclose`" in errors[2][0].evalue


def test_guard_notices_a_patched_function_and_a_patched_check(monkeypatch):
    checks.untouched()
    with monkeypatch.context() as patch:
        patch.setattr(numpy, "isclose", lambda *a, **k: True)
        with pytest.raises(AssertionError, match="numpy.isclose"):
            checks.untouched()
    with monkeypatch.context() as patch:
        patch.setattr(checks, "close_to_expected", lambda *a, **k: None)
        with pytest.raises(AssertionError, match="checks.close_to_expected"):
            checks.bn_after_each_conv(None)
    checks.untouched()


def test_fresh_evaluation_ignores_a_patched_instance_method(real_mnist):
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
    model.evaluate = lambda *a, **k: [0.08, 0.97]
    loss, accuracy = checks.evaluate_fresh(model, 100)
    assert (round(loss, 2), round(accuracy, 2)) != (0.08, 0.97) and loss > 1
