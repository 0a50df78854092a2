"""Drawing plots: what the lessons record while training and the figures that compare variants.

Plot labels are in English on purpose: matplotlib's default font has no Hangul glyphs, and the
course must render the same on every student's machine.
"""

from __future__ import annotations

import os
import time

import keras
import matplotlib.pyplot as plt
import numpy as np


def grading() -> bool:
    """True while nbgrader runs the notebook (autograde, or the Validate button: it sets
    ``NBGRADER_EXECUTION``). The lessons then skip what no test reads: comparisons, recordings, figures."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def skipped(what: str) -> None:
    """In place of a skipped comparison or figure: say that it was skipped at grading, and how to see it."""
    print(f"[채점 중에는 건너뜀] {what}: 채점과 관계없는 부분이라 채점할 때에는 실행하지 않았습니다. "
          "보려면 노트북을 직접 실행하세요 (Run All).")


def unless_grading(callbacks: list) -> list:
    """The recorders when a person runs the notebook; none while nbgrader grades it. Recording never changes
    what training computes, so the graded values are the same either way."""
    return [] if grading() else list(callbacks)


class LossRecorder(keras.callbacks.Callback):
    """Records the loss of every training batch (Keras logs a running mean; we undo the mean) and the time of
    each training step alone.

    Put it first in ``callbacks``: a step is timed from this callback's ``on_train_batch_begin`` to its
    ``on_train_batch_end``, so the work other recorders do between steps is not counted.
    """

    def __init__(self):
        super().__init__()
        self.running, self.step_seconds, self._began = [], [], None

    def on_train_batch_begin(self, batch, logs=None):
        self._began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.running.append(float(logs["loss"]))
        if self._began is not None:
            self.step_seconds.append(time.perf_counter() - self._began)

    def ms_per_step(self) -> float:
        """The median time of one training step, in milliseconds (the first steps compile: the median
        ignores them)."""
        return float(np.median(self.step_seconds) * 1000) if self.step_seconds else float("nan")

    def per_batch(self) -> np.ndarray:
        mean = np.asarray(self.running, dtype=np.float64)
        steps = np.arange(1, len(mean) + 1)
        return np.diff(np.concatenate([[0.0], mean * steps]))


class BlockOutputs(keras.callbacks.Callback):
    """Every ``every`` batches, the mean and spread of what each convolution block hands on.

    A block's output is the output of the layer just before each pooling / Flatten: the conv (tanh)
    without BN, the BN layer with it. ``probe`` is a fixed batch of images, passed forward as in a
    training step (BN normalises with the batch's own statistics, as the next layer sees it while
    learning) but without changing any weight or BN moving average, so training is unchanged.
    """

    def __init__(self, probe, every: int = 50):
        super().__init__()
        self.probe, self.every = probe, every
        self.steps, self.means, self.stds, self.final = [], [], [], None

    def _outputs(self):
        outputs, x = [], np.asarray(self.probe, dtype=np.float32)
        layers = self.model.layers
        for layer, following in zip(layers, layers[1:] + [None]):
            if isinstance(layer, keras.layers.BatchNormalization):  # training mode, the layer's state untouched
                x, _ = layer.stateless_call(layer.trainable_variables, layer.non_trainable_variables, x, training=True)
            else:
                x = layer(x)
            x = keras.ops.convert_to_numpy(x)
            if following is not None and type(following).__name__ in ("AveragePooling2D", "Flatten"):
                outputs.append(x.ravel())
        return outputs

    def _record(self, step):
        outputs = self._outputs()
        self.steps.append(step)
        self.means.append([float(o.mean()) for o in outputs])
        self.stds.append([float(o.std()) for o in outputs])
        return outputs

    def on_train_batch_end(self, batch, logs=None):
        if batch % self.every == 0:
            self._record(batch)

    def on_train_end(self, logs=None):
        self.final = self._outputs()


def smooth(values, window: int = 25) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if len(values) < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def batch_loss_curves(recorders: dict, window: int = 25):
    """Per-batch training loss of several runs on one figure (raw, faint; moving average, bold)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, recorder in recorders.items():
        losses = recorder.per_batch()
        (line,) = ax.plot(losses, alpha=0.2)
        ax.plot(np.arange(window - 1, len(losses)), smooth(losses, window), color=line.get_color(),
                label=f"{label} (moving average of {window})")
    ax.set(xlabel="training batch", ylabel="loss", title="Training loss per batch", yscale="log")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def block_output_drift(trackers: dict):
    """For each conv block: mean +/- std of its output over training, one line per run."""
    first = next(iter(trackers.values()))
    blocks = len(first.means[0])
    fig, axes = plt.subplots(1, blocks, figsize=(4 * blocks, 3.5), sharey=False)
    for label, tracker in trackers.items():
        means, stds = np.asarray(tracker.means), np.asarray(tracker.stds)
        for b, ax in enumerate(np.atleast_1d(axes)):
            (line,) = ax.plot(tracker.steps, means[:, b], label=label)
            ax.fill_between(tracker.steps, means[:, b] - stds[:, b], means[:, b] + stds[:, b],
                            color=line.get_color(), alpha=0.2)
            ax.set(title=f"conv block {b + 1} output", xlabel="training batch")
    np.atleast_1d(axes)[0].set_ylabel("mean +/- std")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    return fig


def block_output_histograms(trackers: dict, bins: int = 60):
    """For each conv block: the distribution of its output at the end of training, runs overlaid on the same
    bins (so the bars compare) and a log density axis (so block 1's peak at the blank background does not hide
    the rest). The title gives, for each tanh output (every value within [-1, 1]), the share at the limits
    (|x| > 0.99), where tanh saturates; one legend, in the first panel, away from the peaks at +/-1."""
    first = next(iter(trackers.values()))
    blocks = len(first.final)
    fig, axes = plt.subplots(1, blocks, figsize=(4 * blocks, 3.4))
    for b, ax in enumerate(np.atleast_1d(axes)):
        values = [np.asarray(tracker.final[b]) for tracker in trackers.values()]
        low, high = np.percentile(np.concatenate(values), [0.1, 99.9])
        edges = np.linspace(min(low, -1.05), max(high, 1.05), bins + 1)
        saturated = []
        for label, data in zip(trackers, values):
            ax.hist(np.clip(data, edges[0], edges[-1]), bins=edges, alpha=0.5, density=True, label=label)
            if np.abs(data).max() <= 1:
                saturated.append(f"{label}: {np.mean(np.abs(data) > 0.99):.0%} at |x| > 0.99")
        ax.set(title="\n".join([f"conv block {b + 1} output", *saturated]), xlabel="value", yscale="log")
    np.atleast_1d(axes)[0].set_ylabel("density (log)")
    np.atleast_1d(axes)[0].legend(loc="upper left")
    fig.tight_layout()
    return fig


def epoch_loss_curves(panels: dict):
    """Per-epoch training loss, one panel per data order: ``panels`` maps a panel's title to
    ``{label: History}``; the same y-axis, so the panels compare, and no curve hides another."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), sharey=True, squeeze=False)
    for ax, (title, histories) in zip(axes[0], panels.items()):
        for label, history in histories.items():
            losses = history.history["loss"]
            style = "-o" if "shuffle=True" in label else "--s"
            ax.plot(range(1, len(losses) + 1), losses, style, label=label)
            ax.set_xticks(range(1, len(losses) + 1))
        ax.set(xlabel="epoch", title=title)
        ax.legend()
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("training loss")
    fig.tight_layout()
    return fig


def bn_modes(model, image, batch):
    """What a BN model predicts for one ``image`` three ways (the model's weights and moving averages are
    not changed): alone in training mode (BN uses the statistics of a batch of one), inside ``batch`` in
    training mode (the statistics of that batch), and in inference mode (the moving averages, as
    ``predict`` and ``evaluate`` do). Returns ``{mode: probabilities}``."""
    trainable = [v.value for v in model.trainable_variables]
    moving = [v.value for v in model.non_trainable_variables]

    def call(x, training):
        out, _ = model.stateless_call(trainable, moving, np.asarray(x, dtype=np.float32), training=training)
        return keras.ops.convert_to_numpy(out)

    image = np.asarray(image).reshape((1, 32, 32, 1))
    return {"training mode, image alone": call(image, True)[0],
            "training mode, inside a batch": call(np.concatenate([image, batch]), True)[0],
            "inference mode (moving averages)": call(image, False)[0]}


def accuracy_with_batch_statistics(model, images, labels, batch_size: int = 100) -> float:
    """Test accuracy when every BN layer normalises with the statistics of the test batch itself (training
    mode), instead of the moving averages learned in training; nothing in the model changes."""
    trainable = [v.value for v in model.trainable_variables]
    moving = [v.value for v in model.non_trainable_variables]
    correct = 0
    for start in range(0, len(images), batch_size):
        x = np.asarray(images[start:start + batch_size], dtype=np.float32)
        out, _ = model.stateless_call(trainable, moving, x, training=True)
        correct += int(np.sum(np.argmax(keras.ops.convert_to_numpy(out), axis=1) == labels[start:start + batch_size]))
    return correct / len(images)


def results_table(rows: dict, columns: list[str]) -> str:
    """A small aligned text table: ``rows`` maps a run's name to its values, in ``columns`` order."""
    width = max(len(name) for name in rows) + 2
    lines = [" " * width + "".join(f"{c:>14}" for c in columns)]
    for name, values in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{v:>14.4f}" if isinstance(v, float) else f"{v!s:>14}"
                                                  for v in values))
    return "\n".join(lines)
