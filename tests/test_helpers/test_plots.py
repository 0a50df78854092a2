"""Drawing plots: what the recorders compute, and that each figure draws every run."""

import matplotlib

matplotlib.use("Agg")

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
    fig = plots.epoch_loss_curves({"shuffle=True": history, "shuffle=False": history})
    assert len(fig.axes[0].get_lines()) == 2


def test_results_table_aligns_numbers():
    table = plots.results_table({"BN": [0.08241, 0.9734, 14.2], "no BN": [0.1378, 0.9572, 9.1]},
                                ["test_loss", "test_acc", "seconds"])
    lines = table.splitlines()
    assert len(lines) == 3 and "0.0824" in lines[1] and "0.9572" in lines[2]
    assert len({len(line) for line in lines}) == 1
