"""Drawing plots: what the recorders compute, and that each figure draws every run."""

import matplotlib

matplotlib.use("Agg")

import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from helpers import plots  # noqa: E402


def test_per_batch_loss_undoes_keras_running_mean():
    recorder = plots.LossRecorder()
    batch_losses = [4.0, 2.0, 3.0, 1.0]
    running = np.cumsum(batch_losses) / np.arange(1, 5)
    for step, mean in enumerate(running):
        recorder.on_train_batch_end(step, {"loss": mean})
    assert np.allclose(recorder.per_batch(), batch_losses)


def test_block_outputs_match_training_mode_bn_and_leave_it_unchanged():
    model = keras.Sequential([layers.Input(shape=(8, 8, 1)), layers.Conv2D(3, (3, 3), activation="tanh"),
                              layers.BatchNormalization(), layers.AveragePooling2D((2, 2)), layers.Flatten(),
                              layers.Dense(2)])
    probe = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    tracker = plots.BlockOutputs(probe, every=1)
    tracker.set_model(model)
    bn = model.layers[1]
    before = [w.numpy() for w in bn.weights]
    output = tracker._outputs()[0]  # the BN output, handed to the pooling
    assert [np.array_equal(a, b.numpy()) for a, b in zip(before, bn.weights)] == [True] * 4
    expected = np.asarray(bn(model.layers[0](probe), training=True)).ravel()
    assert np.allclose(output, expected, atol=1e-4)
    assert abs(output.mean()) < 1e-4 and abs(output.std() - 1) < 1e-2


def test_figures_draw_every_run():
    rec_a, rec_b = plots.LossRecorder(), plots.LossRecorder()
    rec_a.running, rec_b.running = list(np.linspace(2, 0.1, 100)), list(np.linspace(2, 0.5, 100))
    fig = plots.batch_loss_curves({"BN": rec_a, "no BN": rec_b})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "BN (moving average of 25)", "no BN (moving average of 25)"]

    history = keras.callbacks.History()
    history.history = {"loss": [1.0, 0.5, 0.2]}
    fig = plots.epoch_loss_curves({"sorted": {"shuffle=True": history, "shuffle=False": history},
                                   "stored order": {"shuffle=True": history, "shuffle=False": history}})
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim()


def test_step_timer_leaves_out_what_happens_between_steps():
    recorder = plots.LossRecorder()
    for step in range(5):
        recorder.on_train_batch_begin(step)
        time.sleep(0.01)
        recorder.on_train_batch_end(step, {"loss": 1.0})
        time.sleep(0.05)  # another recorder's work between steps
    assert 10 <= recorder.ms_per_step() < 40


def bn_model():
    model = keras.Sequential([layers.Input(shape=(32, 32, 1)), layers.Conv2D(4, (5, 5), activation="tanh"),
                              layers.BatchNormalization(), layers.Flatten(), layers.Dense(10, activation="softmax")])
    bn = model.layers[1]
    bn.moving_mean.assign(np.full(4, 0.3, dtype="float32"))
    bn.moving_variance.assign(np.full(4, 2.0, dtype="float32"))
    return model, bn


def test_bn_modes_differ_and_leave_the_model_unchanged():
    model, bn = bn_model()
    images = np.random.default_rng(1).random((9, 32, 32, 1)).astype("float32")
    before = [w.numpy().copy() for w in model.weights]
    modes = plots.bn_modes(model, images[0], images[1:])
    assert [np.array_equal(a, b.numpy()) for a, b in zip(before, model.weights)] == [True] * len(before)
    inference = np.asarray(model(images[:1], training=False))[0]
    assert np.allclose(modes["inference mode (moving averages)"], inference, atol=1e-5)
    in_batch = np.asarray(model(images, training=True))[0]
    assert np.allclose(modes["training mode, inside a batch"], in_batch, atol=1e-5)
    assert not np.allclose(modes["training mode, image alone"], inference, atol=1e-3)


def test_batch_statistics_accuracy_uses_the_batch_not_the_moving_averages():
    model, bn = bn_model()
    images = np.random.default_rng(2).random((20, 32, 32, 1)).astype("float32")
    labels = np.argmax(np.asarray(model(images, training=True)), axis=1)  # what batch statistics predict
    before = [w.numpy().copy() for w in model.weights]
    assert plots.accuracy_with_batch_statistics(model, images, labels, batch_size=20) == 1.0
    assert [np.array_equal(a, b.numpy()) for a, b in zip(before, model.weights)] == [True] * len(before)


def test_results_table_aligns_numbers():
    table = plots.results_table({"BN": [0.08241, 0.9734, 14.2], "no BN": [0.1378, 0.9572, 9.1]},
                                ["test_loss", "test_acc", "seconds"])
    lines = table.splitlines()
    assert len(lines) == 3 and "0.0824" in lines[1] and "0.9572" in lines[2]
    assert len({len(line) for line in lines}) == 1
