"""Measurement behind the shuffle lesson's section 7: why the sorted, never-shuffled run fails.

Two candidate causes: the weights (each one-class batch overwrites what the previous ones taught) or BN's moving
averages (built from one-class batches, then used by ``evaluate``). For the lesson's model with and without
BN, trained 5 epochs on the 5 000 label-sorted images with ``shuffle=False`` and ``True`` (fresh model, seed 1,
``steps_per_execution=32`` as ``build_model()``), it records the per-epoch training loss, the test accuracy
with the moving averages (``evaluate``), the test accuracy with each test batch's own statistics (BN in
training mode, ``plots.accuracy_with_batch_statistics``) and how often each digit is predicted. If the moving
averages were the cause, the batch-statistics accuracy would recover. Writes
``bench/results/shuffle_causes.txt``.

    .venv/bin/python bench/shuffle_causes.py
"""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import numpy as np
from keras import layers, losses, metrics, models, optimizers, utils

from helpers import data, plots

OUT = Path(__file__).resolve().parent / "results" / "shuffle_causes.txt"


def build(bn: bool):
    """The shuffle lesson's ``build_model()``, with or without its three BN layers."""
    utils.set_random_seed(1)
    model = models.Sequential([layers.Input(shape=(32, 32, 1))])
    for filters, closing in ((6, layers.AveragePooling2D((2, 2), strides=(2, 2))),
                             (16, layers.AveragePooling2D((2, 2), strides=(2, 2))), (120, layers.Flatten())):
        model.add(layers.Conv2D(filters, (5, 5), strides=(1, 1), activation="tanh"))
        if bn:
            model.add(layers.BatchNormalization())
        model.add(closing)
    model.add(layers.Dense(84, activation="tanh"))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(loss=losses.sparse_categorical_crossentropy, optimizer=optimizers.Adam(),
                  metrics=[metrics.sparse_categorical_accuracy], steps_per_execution=32)
    return model


def main() -> None:
    (train_images, train_labels), (test_images, test_labels) = data.lenet_mnist(5000, 1000)
    sorted_images, sorted_labels = data.sort_by_label(train_images, train_labels)
    lines = [f"# bench/shuffle_causes.py: {datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, "
             f"Python {platform.python_version()}",
             "# sorted training data (5 000), 5 epochs, batch 32; test: the first 1 000 MNIST test images"]
    for bn in (True, False):
        for shuffle in (False, True):
            model = build(bn)
            history = model.fit(sorted_images, sorted_labels, epochs=5, shuffle=shuffle, verbose=0)
            _, accuracy = model.evaluate(test_images, test_labels, verbose=0)
            predicted = np.bincount(np.argmax(model.predict(test_images, verbose=0), axis=1), minlength=10)
            line = (f"{'BN' if bn else 'no BN':<6} shuffle={shuffle!s:<5}  loss per epoch "
                    f"{[round(x, 3) for x in history.history['loss']]}  test acc (moving averages) {accuracy:.3f}")
            if bn:
                line += (f"  test acc (batch statistics, 100 per batch) "
                         f"{plots.accuracy_with_batch_statistics(model, test_images, test_labels):.3f}")
            line += f"  predicted digits {predicted.tolist()}"
            print(line, flush=True)
            lines.append(line)
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
