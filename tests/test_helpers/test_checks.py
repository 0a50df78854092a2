"""Checking answers: each check passes the right thing and fails the wrong one with a Korean message."""

import json

import keras
import numpy as np
import pytest
from keras import layers

from helpers import checks


def lenet(bn_after="conv", input_layer=False):
    stack = [layers.Input(shape=(32, 32, 1))] if input_layer else []
    for filters, pool in ((6, True), (16, True), (120, False)):
        stack.append(layers.Conv2D(filters, (5, 5), strides=(1, 1), activation="tanh"))
        if bn_after == "conv":
            stack.append(layers.BatchNormalization())
        stack.append(layers.AveragePooling2D((2, 2), strides=(2, 2)) if pool else layers.Flatten())
        if bn_after == "pool":
            stack.append(layers.BatchNormalization())
    stack += [layers.Dense(84, activation="tanh"), layers.Dense(10, activation="softmax")]
    return keras.Sequential(stack)


@pytest.mark.parametrize("input_layer", [False, True])
def test_correct_model_passes_every_structure_check(input_layer):
    model = lenet(input_layer=input_layer)
    checks.bn_after_each_conv(model)
    checks.lenet_structure(model)


def test_model_without_bn_fails_with_the_count():
    with pytest.raises(AssertionError, match="BatchNormalization 층은 3개여야 합니다. 지금은 0개"):
        checks.bn_after_each_conv(lenet("none"))


def test_bn_made_but_never_added_points_at_model_add(monkeypatch):
    sources = ["model = models.Sequential()\nmodel.add(layers.Conv2D(6, (5, 5)))\nlayers.BatchNormalization()\n"]
    assert checks.bare_layer_calls(sources) == 1
    assert checks.bare_layer_calls(["model.add(layers.BatchNormalization())", "x = layers.BatchNormalization()"]) == 0
    import IPython  # a kernel whose cell history holds that cell

    monkeypatch.setattr(IPython, "get_ipython", lambda: type("Shell", (), {"user_ns": {"In": sources}})())
    with pytest.raises(AssertionError, match=r"model\.add\(layers\.BatchNormalization\(\)\)처럼 model\.add"):
        checks.bn_after_each_conv(lenet("none"))


def test_public_check_says_when_it_passes(capsys):
    checks.bn_after_each_conv(lenet())
    checks.public_passed()
    assert capsys.readouterr().out.strip() == "공개 점검 통과 — 숨은 테스트는 채점 때 실행됩니다."


def test_result_points_need_a_bn_layer_and_honest_values():
    checks.bn_added(lenet("pool"))
    with pytest.raises(AssertionError, match="BatchNormalization 층이 없습니다"):
        checks.bn_added(lenet("none"))
    checks.reported_honestly(0.0823, 0.9734, 0.0823, 0.9734)
    with pytest.raises(AssertionError, match="값을 직접 적지 마세요"):
        checks.reported_honestly(0.08, 0.97, 0.0823, 0.9734)
    checks.given_data(np.zeros((5, 32, 32, 1)), np.zeros((2, 32, 32, 1)), 5, 2)
    with pytest.raises(AssertionError, match="train_images가 주어진 5장"):
        checks.given_data(np.zeros((4, 32, 32, 1)), np.zeros((2, 32, 32, 1)), 5, 2)


def test_bn_in_the_wrong_place_names_the_convolutions():
    with pytest.raises(AssertionError, match="1, 2, 3번째 합성곱 층 바로 뒤에"):
        checks.bn_after_each_conv(lenet("pool"))
    with pytest.raises(AssertionError, match="층 구성이 과제와 다릅니다"):
        checks.lenet_structure(lenet("pool"))


def test_changed_setting_is_named_without_the_answer():
    broken = keras.Sequential([layers.Conv2D(6, (3, 3), strides=(1, 1), activation="tanh")] + lenet().layers[1:])
    with pytest.raises(AssertionError, match="1번째 층\\(Conv2D\\)의 설정 kernel_size"):
        checks.lenet_structure(broken)


def test_extra_bn_after_dense_fails_structure():
    model = lenet()
    model.add(layers.BatchNormalization())
    checks.bn_after_each_conv(keras.Sequential(lenet().layers))
    with pytest.raises(AssertionError):
        checks.bn_after_each_conv(model)
    with pytest.raises(AssertionError):
        checks.lenet_structure(model)


def test_expected_file_says_how_it_was_measured():
    expected = json.loads(checks.EXPECTED_FILE.read_text())
    assert "course calibrate" in expected["how"]
    for name in ("batchnorm", "shuffle"):
        runs = expected["assignments"][name]["runs"]
        assert any(r["correct"] is True for r in runs) and any(r["correct"] is False for r in runs)
        assert all(r["accepted"] == r["correct"] for r in runs if r["correct"] is not None)


def test_calibrated_tolerance_separates_bn_from_no_bn():
    values = checks.expected("batchnorm")["values"]
    no_bn = next(r for r in checks.expected("batchnorm")["runs"] if r["variant"] == "no BN")["values"]
    checks.close_to_expected("loss", values["test_loss"]["expected"], "batchnorm", "test_loss")
    with pytest.raises(AssertionError, match="범위를 벗어났습니다"):
        checks.close_to_expected("loss", no_bn["test_loss"], "batchnorm", "test_loss")


def test_curve_check_reports_the_epochs_that_are_off():
    curve = checks.expected("shuffle")["values"]["shuffle_loss"]["expected"]
    checks.curve_close_to_expected("results_shuffle", curve, "shuffle", "shuffle_loss")
    with pytest.raises(AssertionError, match="epoch 1, 2"):
        checks.curve_close_to_expected("results_shuffle", [2.3, 2.3] + curve[2:], "shuffle", "shuffle_loss")
    with pytest.raises(AssertionError, match="epoch 수가 5가 아닙니다"):
        checks.curve_close_to_expected("results_shuffle", curve[:3], "shuffle", "shuffle_loss")


def test_values_are_recorded_for_the_feedback_before_they_are_judged(capsys):
    """Outside a kernel the record is its text line; in one it is a display with the JSON the report reads."""
    checks.record_values("batchnorm", test_loss=0.2, test_acc=0.97)
    checks.record_values("shuffle", shuffle_loss=(0.5, 0.2, 0.1, 0.08, 0.05))
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["측정값 test_loss: 0.2 (기대값 0.08, 허용 오차 ±0.01)",
                     "측정값 test_acc: 0.97 (기대값 0.97, 허용 오차 ±0.01)",
                     "측정값 shuffle_loss: 0.5, 0.2, 0.1, 0.08, 0.05 (기대값 0.4255, 0.2052, 0.1247, 0.0809, 0.0528, "
                     "허용 오차 ±0.05)"]


def test_history_check_wants_a_real_fit():
    fake = keras.callbacks.History()
    fake.history = {"loss": [1.0] * 5}
    with pytest.raises(AssertionError, match="실제 학습에서 나온 History가 아닙니다"):
        checks.history_of_fit(fake, epochs=5, steps=157, name="results_shuffle")
    with pytest.raises(AssertionError, match="History 객체를 저장해야"):
        checks.history_of_fit(None, epochs=5, steps=157, name="results_shuffle")

    model = keras.Sequential([layers.Input(shape=(2,)), layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd")
    history = model.fit(np.zeros((64, 2)), np.zeros(64), epochs=2, verbose=0)
    checks.history_of_fit(history, epochs=2, steps=2, name="h")
    with pytest.raises(AssertionError, match="5 epoch"):
        checks.history_of_fit(history, epochs=5, steps=2, name="h")
    with pytest.raises(AssertionError, match="train_cnt"):
        checks.history_of_fit(history, epochs=2, steps=157, name="h")


SOURCES = [
    "import numpy",
    "results_no_shuffle = None\n# 여기에 코드를 작성하세요",
    "results_no_shuffle = model.fit(train_images, train_labels, epochs=5, shuffle=False)",
    "results_shuffle = model.fit(x=train_images, y=train_labels, epochs=5)",
    "this is not python (",
]


def test_shuffle_flag_reads_the_last_fit_written():
    checks.shuffle_flag(SOURCES, "results_no_shuffle", False)
    with pytest.raises(AssertionError, match="shuffle 값이 지시사항과 다릅니다"):
        checks.shuffle_flag(SOURCES, "results_no_shuffle", True)
    with pytest.raises(AssertionError, match="shuffle 인자를 직접 적어"):
        checks.shuffle_flag(SOURCES, "results_shuffle", True)
    with pytest.raises(AssertionError, match="형태의 코드를 찾지 못했습니다"):
        checks.shuffle_flag(SOURCES[:2], "results_no_shuffle", False)
    swapped_later = SOURCES + ["results_no_shuffle = model.fit(train_images, train_labels, epochs=5, shuffle=True)"]
    with pytest.raises(AssertionError):
        checks.shuffle_flag(swapped_later, "results_no_shuffle", False)


def test_shuffle_flag_follows_a_rename_and_accepts_zero_one():
    renamed = ["results_no_shuffle = None\nh = model.fit(train_images, train_labels, epochs=5, shuffle=0)\n"
               "results_no_shuffle = h"]
    checks.shuffle_flag(renamed, "results_no_shuffle", False)
    with pytest.raises(AssertionError, match="shuffle 값이"):
        checks.shuffle_flag(renamed, "results_no_shuffle", True)
    with pytest.raises(AssertionError, match="shuffle 값이"):
        checks.shuffle_flag(["r = model.fit(x, y, epochs=5, shuffle='batch')"], "r", True)
    with pytest.raises(AssertionError, match="찾지 못했습니다"):
        checks.shuffle_flag(["a = b", "b = a"], "a", True)  # a rename loop is not a fit


def test_shuffle_flag_follows_a_reused_name_to_the_fit_before_the_rename():
    """Found by the validity sweep: `history` holds the first fit when results_no_shuffle = history runs."""
    cells = ["history = model.fit(train_images, train_labels, epochs=5, shuffle=False)\nresults_no_shuffle = history",
             "history = model.fit(train_images, train_labels, epochs=5, shuffle=True)\nresults_shuffle = history"]
    checks.shuffle_flag(cells, "results_no_shuffle", False)
    checks.shuffle_flag(cells, "results_shuffle", True)
