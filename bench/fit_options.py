"""Benchmark: the graded training under options that cut Keras' per-step overhead, and what they compute.

For each assignment's graded training (batchnorm: the BN LeNet, 1 epoch on 50 000 images, batch 32;
shuffle: two fresh BN LeNets, 5 epochs each on the 5 000 sorted images, shuffle=False then True), each
configuration runs in a fresh Python process (TensorFlow import not timed; only ``fit``), ``--repeat``
times, configurations alternating, never two at once. Records the median fit time (min-max) and the exact
results: batchnorm's test loss/accuracy, shuffle's final epoch losses. Writes
``bench/results/fit_options.txt``.

    .venv/bin/python bench/fit_options.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    "batchnorm": {
        "as released (per-batch recorders)": {"recorders": True},
        "no recorders": {},
        "no recorders, steps_per_execution=32": {"steps_per_execution": 32},
        "no recorders, steps_per_execution=32, jit_compile": {"steps_per_execution": 32, "jit_compile": True},
    },
    "shuffle": {
        "as released": {},
        "steps_per_execution=32": {"steps_per_execution": 32},
        "steps_per_execution=32, jit_compile": {"steps_per_execution": 32, "jit_compile": True},
    },
}

RUN = r"""
import json, sys, time
import numpy
from tensorflow.keras import layers, losses, metrics, models, optimizers, utils
from helpers import data, plots

assignment, options = sys.argv[1], json.loads(sys.argv[2])

def build():
    utils.set_random_seed(1)
    model = models.Sequential([layers.Input(shape=(32, 32, 1))])
    for filters in (6, 16, 120):
        model.add(layers.Conv2D(filters, (5, 5), strides=(1, 1), activation='tanh'))
        model.add(layers.BatchNormalization())
        if filters != 120:
            model.add(layers.AveragePooling2D((2, 2), strides=(2, 2)))
    model.add(layers.Flatten())
    model.add(layers.Dense(84, activation='tanh'))
    model.add(layers.Dense(10, activation='softmax'))
    model.compile(loss=losses.sparse_categorical_crossentropy, optimizer=optimizers.Adam(),
                  metrics=[metrics.sparse_categorical_accuracy],
                  steps_per_execution=options.get("steps_per_execution", 1),
                  jit_compile=options.get("jit_compile", "auto"))
    return model

result = {}
if assignment == "batchnorm":
    (x, y), (tx, ty) = data.lenet_mnist(50000, 10000)
    model = build()
    callbacks = [plots.LossRecorder(), plots.BlockOutputs(tx[:256])] if options.get("recorders") else []
    start = time.perf_counter()
    model.fit(x, y, epochs=1, callbacks=callbacks, verbose=0)
    result["fit_seconds"] = time.perf_counter() - start
    loss, acc = model.evaluate(tx, ty, verbose=0)
    result["values"] = {"test_loss": float(loss), "test_acc": float(acc)}
else:
    (x, y), _ = data.lenet_mnist(5000, 1000)
    x, y = data.sort_by_label(x, y)
    seconds, values = 0.0, {}
    for flag in (False, True):
        model = build()
        start = time.perf_counter()
        history = model.fit(x, y, epochs=5, shuffle=flag, verbose=0)
        seconds += time.perf_counter() - start
        values[f"shuffle={flag} losses"] = [float(v) for v in history.history["loss"]]
    result["fit_seconds"], result["values"] = seconds, values
print("RESULT " + json.dumps(result))
"""


def run(assignment: str, options: dict) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", RUN, assignment, json.dumps(options)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fit_options.txt"))
    args = parser.parse_args()
    lines = [f"# bench/fit_options.py --repeat {args.repeat}: {time.strftime('%Y-%m-%d %H:%M')}, "
             f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, default threads",
             "# fit seconds: median (min-max) of the repeats; values: exact, from the first run (all runs of a "
             "configuration gave the same values unless noted)"]
    for assignment, configs in CONFIGS.items():
        seconds: dict[str, list[float]] = {name: [] for name in configs}
        values: dict[str, list] = {name: [] for name in configs}
        for round_ in range(args.repeat):
            names = list(configs) if round_ % 2 == 0 else list(configs)[::-1]
            for name in names:
                result = run(assignment, configs[name])
                seconds[name].append(result["fit_seconds"])
                values[name].append(result["values"])
                print(f"round {round_ + 1}: {assignment} {name}: {result['fit_seconds']:.1f} s {result['values']}",
                      flush=True)
        baseline = statistics.median(seconds[next(iter(configs))])
        lines.append(f"## {assignment}")
        for name in configs:
            median = statistics.median(seconds[name])
            same = all(v == values[name][0] for v in values[name])
            identical = values[name][0] == values[next(iter(configs))][0]
            lines.append(f"{name:<58} {median:6.1f} s ({min(seconds[name]):.1f}-{max(seconds[name]):.1f})  "
                         f"x{median / baseline:4.2f}  {'bit-identical to the first' if identical else 'DIFFERENT'}"
                         f"{'' if same else ' (runs differ)'}: {json.dumps(values[name][0])}")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
