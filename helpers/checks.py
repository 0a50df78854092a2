"""Checking answers: one-line checks for the notebooks' public and hidden tests.

Each check raises ``AssertionError`` with a Korean message that says what is wrong, not the answer.
Expected values and tolerances come from ``expected.json`` (written by ``course calibrate``).

Every check first calls ``untouched()``: the functions the tests rely on (``round``, ``abs``,
``isinstance``, ``numpy.isclose``/``allclose``/``argmax``, ``keras.Model.fit``/``evaluate``/``predict``,
Keras' ``History``, and these checks themselves) must still be the objects captured when the notebook's
first (given, locked) cell imported this module. This is the in-kernel half of the defence; the other half,
outside the kernel, is ``helpers.screen``.
"""

from __future__ import annotations

import ast
import builtins
import json
import sys
from functools import lru_cache
from pathlib import Path

import keras
import numpy

from helpers import MEASURED_MIMETYPE

EXPECTED_FILE = Path(__file__).with_name("expected.json")

# LeNet-5 (C1-S2-C3-S4-C5-F6-output) as the lessons build it, with BN after each of the three convolutions.
BN_LENET = [
    ("Conv2D", {"filters": 6, "kernel_size": (5, 5), "strides": (1, 1), "activation": "tanh"}),
    ("BatchNormalization", {}),
    ("AveragePooling2D", {"pool_size": (2, 2), "strides": (2, 2)}),
    ("Conv2D", {"filters": 16, "kernel_size": (5, 5), "strides": (1, 1), "activation": "tanh"}),
    ("BatchNormalization", {}),
    ("AveragePooling2D", {"pool_size": (2, 2), "strides": (2, 2)}),
    ("Conv2D", {"filters": 120, "kernel_size": (5, 5), "strides": (1, 1), "activation": "tanh"}),
    ("BatchNormalization", {}),
    ("Flatten", {}),
    ("Dense", {"units": 84, "activation": "tanh"}),
    ("Dense", {"units": 10, "activation": "softmax"}),
]


def _relied_on() -> dict:
    return {"round": builtins.round, "abs": builtins.abs, "isinstance": builtins.isinstance, "len": builtins.len,
            "float": builtins.float, "numpy.isclose": numpy.isclose, "numpy.allclose": numpy.allclose,
            "numpy.argmax": numpy.argmax, "keras.Model.fit": keras.Model.fit,
            "keras.Model.evaluate": keras.Model.evaluate, "keras.Model.predict": keras.Model.predict,
            "keras.Sequential.fit": keras.Sequential.fit, "keras.Sequential.evaluate": keras.Sequential.evaluate,
            "keras.Sequential.predict": keras.Sequential.predict, "keras.callbacks.History": keras.callbacks.History}


_ORIGINALS = _relied_on()  # captured at import: the notebook's first cell, before any student code


def untouched() -> None:
    """Hidden tests: stop if anything the tests rely on was replaced after the notebook imported this module."""
    now = _relied_on()
    changed = [name for name, original in _ORIGINALS.items() if now[name] is not original]
    module = sys.modules[__name__]
    changed += [f"checks.{name}" for name, code in _CODE.items()
                if getattr(getattr(module, name, None), "__code__", None) is not code]
    assert not changed, (f"채점에 쓰이는 함수가 바뀌었습니다 ({', '.join(changed)}). "
                         "기본 함수나 채점 도구를 바꾸는 코드를 지우고 다시 제출하세요.")


@lru_cache(maxsize=None)
def expected(assignment: str) -> dict:
    """The calibrated expected values of one assignment (see ``expected.json`` for how measured)."""
    return json.loads(EXPECTED_FILE.read_text(encoding="utf-8"))["assignments"][assignment]


def layer_kinds(model) -> list[str]:
    """The class names of the model's layers, in order (an explicit Input is not a layer here)."""
    return [type(layer).__name__ for layer in model.layers if type(layer).__name__ != "InputLayer"]


PASSED = "공개 점검 통과 — 숨은 테스트는 채점 때 실행됩니다."


def public_passed() -> None:
    """The last line of a public self-check: say plainly that it passed (silence reads as "all passed")."""
    print(PASSED)


def bare_layer_calls(sources, name: str = "BatchNormalization") -> int:
    """How many statements in the given cell sources (IPython's ``In``) only create a ``name`` layer, as in
    ``layers.BatchNormalization()`` on its own line: the layer is made and thrown away, never added."""
    count = 0
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            call = node.value if isinstance(node, ast.Expr) else None
            if isinstance(call, ast.Call) and getattr(call.func, "attr", getattr(call.func, "id", None)) == name:
                count += 1
    return count


def _cell_sources() -> list[str]:
    """The sources of the cells run so far in this kernel (empty outside IPython)."""
    from IPython import get_ipython

    shell = get_ipython()
    return list(shell.user_ns.get("In", [])) if shell is not None else []


def bn_after_each_conv(model) -> None:
    """Public self-check: exactly three BN layers, each directly after one of the three Conv2D."""
    untouched()
    kinds = layer_kinds(model)
    convs = [i for i, kind in enumerate(kinds) if kind == "Conv2D"]
    bns = [i for i, kind in enumerate(kinds) if kind == "BatchNormalization"]
    assert len(convs) == 3, (f"합성곱(Conv2D) 층은 3개여야 합니다. 지금은 {len(convs)}개입니다. "
                             "주어진 층을 지우지 마세요.")
    if not bns and bare_layer_calls(_cell_sources()):
        raise AssertionError("layers.BatchNormalization()만 쓰면 층이 만들어지기만 하고 모델에는 들어가지 않습니다. "
                             "model.add(layers.BatchNormalization())처럼 model.add(...) 안에 넣으세요.")
    assert len(bns) == 3, (f"BatchNormalization 층은 3개여야 합니다. 지금은 {len(bns)}개입니다. "
                           "세 합성곱 층 뒤에 model.add(layers.BatchNormalization())를 하나씩 추가하세요.")
    following = kinds[1:] + [None]
    misplaced = [n + 1 for n, conv in enumerate(convs) if following[conv] != "BatchNormalization"]
    assert not misplaced, (f"{', '.join(map(str, misplaced))}번째 합성곱 층 바로 뒤에 BatchNormalization이 없습니다. "
                           "BN은 합성곱 바로 다음, 풀링(또는 Flatten) 앞에 와야 합니다.")


def bn_added(model) -> None:
    """Hidden tests, a gate: the points for a trained model's results are for the student's model, one with
    BN in it; the given model without BN earns none of them."""
    untouched()
    assert "BatchNormalization" in layer_kinds(model), (
        "모델에 BatchNormalization 층이 없습니다. 이 점수는 BN을 넣은 모델의 결과에만 주어집니다.")


def given_data(train_images, test_images, train_cnt: int, test_cnt: int) -> None:
    """Hidden tests, a gate: the data is the given number of 32x32 images (the result is only comparable
    on the same data)."""
    untouched()
    assert train_images.shape == (train_cnt, 32, 32, 1), (
        f"train_images가 주어진 {train_cnt}장의 32x32 이미지가 아닙니다. 데이터 셀을 바꾸지 마세요.")
    assert test_images.shape == (test_cnt, 32, 32, 1), (
        f"test_images가 주어진 {test_cnt}장의 32x32 이미지가 아닙니다. 데이터 셀을 바꾸지 마세요.")


def reported_honestly(test_loss, test_acc, fresh_loss: float, fresh_acc: float) -> None:
    """Hidden tests, a gate: the printed results are ``model.evaluate``'s, not typed in."""
    untouched()
    assert abs(test_loss - fresh_loss) < 1e-5 and abs(test_acc - fresh_acc) < 1e-5, (
        "test_loss, test_acc가 지금 모델을 model.evaluate로 평가한 값과 다릅니다. 값을 직접 적지 마세요.")


def predicts_2png(model, confidence) -> None:
    """Hidden test: the model reads ``2.png`` as 2, and ``confidence`` is that model's ``predict``."""
    untouched()
    fresh = predict_2png_fresh(model)
    assert numpy.argmax(fresh) == 2, "모델이 2.png를 2로 예측하지 못했습니다."
    assert numpy.allclose(confidence, fresh, atol=1e-6), "confidence가 지금 모델의 model.predict 결과가 아닙니다."


def lenet_structure(model, spec=BN_LENET) -> None:
    """Hidden test: the exact layer sequence and settings of the lesson's model."""
    untouched()
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds == [kind for kind, _ in spec], (
        f"모델의 층 구성이 과제와 다릅니다 (층 {len(kinds)}개). 주어진 층은 그대로 두고, "
        "세 합성곱 층 바로 뒤에 BatchNormalization만 추가하세요.")
    for number, (layer, (kind, settings)) in enumerate(zip(layers, spec), start=1):
        config = layer.get_config()
        for key, want in settings.items():
            got = config.get(key)
            got = tuple(got) if isinstance(got, list) else got
            assert got == want, f"{number}번째 층({kind})의 설정 {key}이(가) 주어진 코드와 다릅니다."


def record_values(assignment: str, **values) -> None:
    """Hidden tests, before judging: leave every measured value (a number or a per-epoch curve, by its key in
    ``expected.json``) in the cell's outputs, so that the feedback and the class report show all of them even
    when the first judged one fails."""
    untouched()
    for key, value in values.items():
        value = [float(v) for v in value] if isinstance(value, (list, tuple)) else float(value)
        _record(key, value, expected(assignment)["values"][key])


def _record(key: str, value, entry: dict) -> None:
    """One text line for the student and the same as JSON for the class report."""
    shown = (", ".join(f"{v:.4g}" for v in value) if isinstance(value, list) else f"{value:.4g}")
    wanted = (", ".join(f"{v:.4g}" for v in entry["expected"]) if isinstance(entry["expected"], list)
              else f"{entry['expected']:.4g}")
    data = {"text/plain": f"측정값 {key}: {shown} (기대값 {wanted}, 허용 오차 ±{entry['tolerance']:.4g})",
            MEASURED_MIMETYPE: {"key": key, "value": value, "expected": entry["expected"],
                                "tolerance": entry["tolerance"]}}
    from IPython import get_ipython

    if get_ipython() is None:  # outside a kernel (unit tests): the text line only
        print(data["text/plain"])
        return
    from IPython.display import publish_display_data

    publish_display_data(data)


def close_to_expected(name: str, value: float, assignment: str, key: str) -> None:
    """Hidden test: a rounded result lies within the calibrated tolerance of the expected value."""
    untouched()
    entry = expected(assignment)["values"][key]
    assert abs(value - entry["expected"]) <= entry["tolerance"] + 1e-9, (
        f"{name}이(가) 정답 모델로 학습했을 때의 범위를 벗어났습니다. 모델 구조와 학습 코드를 다시 확인하세요.")


def curve_close_to_expected(name: str, losses, assignment: str, key: str) -> None:
    """Hidden test: every epoch's loss lies within the calibrated tolerance of the expected curve."""
    untouched()
    entry = expected(assignment)["values"][key]
    losses = [float(x) for x in losses]
    assert len(losses) == len(entry["expected"]), f"{name}의 epoch 수가 {len(entry['expected'])}가 아닙니다."
    off = [n + 1 for n, (got, want) in enumerate(zip(losses, entry["expected"]))
           if abs(got - want) > entry["tolerance"] + 1e-9]
    assert not off, (f"{name}의 epoch {', '.join(map(str, off))} loss가 기대한 학습 곡선에서 벗어났습니다. "
                     "fit의 인자(데이터, epochs, shuffle)를 다시 확인하세요.")


def history_of_fit(history, epochs: int, steps: int, name: str) -> None:
    """Hidden test: ``history`` is the Keras History that a real ``fit`` of this length returned."""
    untouched()
    assert isinstance(history, keras.callbacks.History), (
        f"{name}에는 model.fit(...)이 돌려준 History 객체를 저장해야 합니다.")
    assert isinstance(getattr(history, "model", None), keras.Model), (
        f"{name}이(가) 실제 학습에서 나온 History가 아닙니다.")
    params = getattr(history, "params", None) or {}
    assert params.get("epochs") == epochs and len(history.epoch) == epochs, (
        f"{name}은(는) {epochs} epoch 학습이어야 합니다.")
    assert params.get("steps") == steps, f"{name}의 학습 데이터 수가 주어진 train_cnt와 다릅니다."
    assert len(history.history.get("loss", [])) == epochs, (
        f"{name}에 epoch별 loss가 {epochs}개 기록되어 있지 않습니다.")


def _assignments(sources) -> list[tuple[tuple[int, int], str, ast.expr]]:
    """Every ``name = value`` in the given cell sources (e.g. IPython's ``In``): (position, name, value), in
    execution order."""
    found = []
    for number, source in enumerate(sources):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                found += [((number, node.lineno), t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
    return sorted(found, key=lambda f: f[0])


def fit_call(sources, target: str) -> ast.Call | None:
    """The ``X.fit(...)`` call whose result ``target`` holds at the end, following plain renames
    (``history = model.fit(...)`` then ``target = history``, the ``history`` assigned before that line,
    even if the name is reused later); None if there is none."""
    assignments, name, before, seen = _assignments(sources), target, None, set()
    while name not in seen:
        seen.add(name)
        found = [(position, value) for position, n, value in assignments
                 if n == name and (before is None or position < before)]
        if not found:
            return None
        before, value = found[-1]
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "fit":
            return value
        if not isinstance(value, ast.Name):
            return None
        name = value.id
    return None


def shuffle_flag(sources, target: str, want: bool) -> None:
    """Hidden test: the ``fit`` call that made ``target`` passes ``shuffle=<want>`` explicitly."""
    untouched()
    call = fit_call(sources, target)
    assert call is not None, f"{target} = model.fit(...) 형태의 코드를 찾지 못했습니다."
    flags = [kw.value for kw in call.keywords if kw.arg == "shuffle"]
    assert flags, f"{target}을(를) 만드는 fit 호출에 shuffle 인자를 직접 적어 주세요 (기본값에 기대지 마세요)."
    value = flags[0].value if isinstance(flags[0], ast.Constant) else None
    assert type(value) in (bool, int) and bool(value) is want, (  # shuffle=0 / 1 mean False / True too
        f"{target}을(를) 만드는 fit 호출의 shuffle 값이 지시사항과 다릅니다.")


def evaluate_fresh(model, test_cnt: int):
    """``model.evaluate`` on a fresh copy of the first ``test_cnt`` test images, out of the student's reach."""
    untouched()
    from helpers.data import lenet_mnist

    _, (images, labels) = lenet_mnist(0, test_cnt)
    # the class's method as imported, not whatever ``model.evaluate`` now points to
    loss, accuracy = _ORIGINALS["keras.Model.evaluate"](model, images, labels, verbose=0)
    return float(loss), float(accuracy)


def predict_2png_fresh(model):
    """The model's confidences for ``2.png`` as shipped (rebuilt from MNIST, not the file in the student's
    folder, which the student's code could replace), through ``predict`` as imported."""
    untouched()
    from helpers.data import digit_png

    image = (digit_png() / 255.0).reshape((1, 32, 32, 1))
    return _ORIGINALS["keras.Model.predict"](model, image, verbose=0)


# The code of every function above, as imported: untouched() compares against it.
_CODE = {name: value.__code__ for name, value in list(globals().items())
         if callable(value) and getattr(value, "__module__", None) == __name__ and hasattr(value, "__code__")}
