"""Does this grading worker compute what the calibration computed? Its versions and a fingerprint run.

A worker with another TensorFlow, Keras, numpy or Python, or another arithmetic (CPU, thread settings, a
package shadowed on ``PYTHONPATH``, no MNIST), can put correct students outside the calibrated bands and
fail them silently. Before a worker grades (``course.parallel``), it reports:

* its **versions**: Python, TensorFlow, Keras (and its backend), numpy, and the thread settings its
  kernels get (``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS``, ``OMP_NUM_THREADS``, and the
  ``TF_ENABLE_ONEDNN_OPTS`` and ``TF_DETERMINISTIC_OPS`` switches);
* the **fingerprint loss**: the shuffle assignment's BN LeNet-5 (``build_model()`` of its source notebook,
  rebuilt here) trained from ``keras.utils.set_random_seed(1)`` for 20 batches of 32 of MNIST's first
  training images (one epoch, no shuffling), then evaluated on those 640 images: a few seconds.

Both are measured in a fresh Python process (``python -m course.fingerprint``) with the environment a
grading kernel gets: the sandbox's filtered environment (``course.sandbox.kernel_env``) with the worker's
thread settings, and a private home that sees only Keras' MNIST cache. :func:`compare` checks them against
the record ``course calibrate`` wrote into ``helpers/expected.json`` (key ``fingerprint``): the versions
must be equal (Python: major.minor), the loss within the recorded tolerance.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import helpers

EXPECTED = Path(helpers.__file__).resolve().parent / "expected.json"  # what the kernels' hidden tests read
IMAGES, BATCH_SIZE, SEED = 640, 32, 1  # 20 training steps
THREAD_SETTINGS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS",
                   "TF_DETERMINISTIC_OPS")
COMPARED = ("python", "tensorflow", "keras", "keras_backend", "numpy")  # must equal the record's
HOW = (f"The shuffle assignment's BN LeNet-5 (build_model()) from keras.utils.set_random_seed({SEED}), trained one "
       f"epoch on MNIST's first {IMAGES} training images ({IMAGES // BATCH_SIZE} batches of {BATCH_SIZE}, "
       f"shuffle=False), then evaluated on them; in a fresh process with a grading kernel's environment "
       "(course.fingerprint).")


# --- in the fresh process --------------------------------------------------------------------------------

def versions() -> dict:
    """This process's Python, TensorFlow, Keras, numpy, and thread settings (None: not set)."""
    import keras
    import numpy
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "keras_backend": keras.backend.backend(), "numpy": numpy.__version__,
            "threads": {name: os.environ.get(name) for name in THREAD_SETTINGS},
            "machine": platform.machine(), "cpu_count": os.cpu_count()}


def build_model():
    """The BN LeNet-5 of source/shuffle/shuffle.ipynb's ``build_model()``, seeded the same way."""
    from keras import layers, losses, metrics, models, optimizers, utils

    utils.set_random_seed(SEED)
    model = models.Sequential([
        layers.Input(shape=(32, 32, 1)),
        layers.Conv2D(6, kernel_size=(5, 5), strides=(1, 1), activation="tanh"),
        layers.BatchNormalization(),
        layers.AveragePooling2D(pool_size=(2, 2), strides=(2, 2)),
        layers.Conv2D(16, kernel_size=(5, 5), strides=(1, 1), activation="tanh"),
        layers.BatchNormalization(),
        layers.AveragePooling2D(pool_size=(2, 2), strides=(2, 2)),
        layers.Conv2D(120, kernel_size=(5, 5), strides=(1, 1), activation="tanh"),
        layers.BatchNormalization(),
        layers.Flatten(),
        layers.Dense(84, activation="tanh"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss=losses.sparse_categorical_crossentropy, optimizer=optimizers.Adam(),
                  metrics=[metrics.sparse_categorical_accuracy], steps_per_execution=32)
    return model


def fingerprint_run() -> dict:
    """Train the reference model for a few steps on real MNIST; its loss after them (and the fit's)."""
    from helpers.data import is_valid, keras_cache_path, lenet_mnist

    if not is_valid(keras_cache_path()):  # a kernel could not load MNIST either (and must not download it)
        raise RuntimeError(f"MNIST is not in place at {keras_cache_path()}: run `course fetch-mnist` on this worker")
    (images, labels), _ = lenet_mnist(IMAGES, 0)
    model = build_model()
    fit = model.fit(images, labels, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    loss, _ = model.evaluate(images, labels, batch_size=BATCH_SIZE, verbose=0)
    return {"loss": float(loss), "fit_loss": float(fit.history["loss"][0])}


def main() -> int:
    start = time.perf_counter()
    report = {"versions": versions()}
    report.update(fingerprint_run())
    report["seconds"] = round(time.perf_counter() - start, 2)
    print("FINGERPRINT " + json.dumps(report), flush=True)
    return 0


# --- on the worker: one fresh process with a kernel's environment ----------------------------------------

def kernel_like_env(home: Path, extra: dict) -> dict:
    """The environment a grading kernel gets on this machine (``extra``: the thread settings ``course.parallel``
    gives it): the sandbox's filtered environment, or the whole one when the sandbox is off."""
    from course import sandbox
    from course.runner import nbgrader_env

    env = nbgrader_env(**extra)
    return sandbox.kernel_env(home, env) if sandbox.enabled() else env


def measure(extra_env: dict | None = None, timeout: float = 300) -> dict:
    """Versions and fingerprint loss from a fresh ``python -m course.fingerprint`` with a kernel's environment
    (``extra_env`` on top of this process's), whose home sees only this machine's Keras MNIST cache, as the
    sandbox binds it."""
    from helpers.data import is_valid, keras_cache_path

    mnist = keras_cache_path()
    if not is_valid(mnist):
        raise RuntimeError(f"MNIST is not in place at {mnist} (the kernels read it there): "
                           "run `course fetch-mnist` on this worker")
    with tempfile.TemporaryDirectory(prefix="fingerprint-") as scratch:
        home = Path(scratch) / "home"
        (home / ".keras").mkdir(parents=True)
        (home / ".keras" / "datasets").symlink_to(mnist.parent)
        env = kernel_like_env(home, dict(extra_env or {}))
        env.update(HOME=str(home), TMPDIR=scratch, MPLCONFIGDIR=str(home / ".config" / "matplotlib"))
        env.pop("KERAS_HOME", None)
        done = subprocess.run([sys.executable, "-m", "course.fingerprint"], cwd=scratch, env=env,
                              capture_output=True, text=True, timeout=timeout)
    for line in done.stdout.splitlines():
        if line.startswith("FINGERPRINT "):
            return json.loads(line.removeprefix("FINGERPRINT "))
    output = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    raise RuntimeError(f"the fingerprint run failed (exit {done.returncode}): "
                       + (output[-1] if output else "no output")[:300])


def precision_env(folder: Path, policy: str) -> dict:
    """An environment that really computes differently: ``PYTHONPATH`` with a ``sitecustomize`` that sets Keras'
    dtype policy (``mixed_float16``, ``float64``) in every Python process, kernels included (the sandbox keeps
    ``PYTHONPATH``). ``course calibrate`` measures it to show that the tolerance rejects it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(f"import keras\nkeras.mixed_precision.set_global_policy({policy!r})\n")
    return {"PYTHONPATH": str(folder)}


# --- comparing with the calibration's record ----------------------------------------------------------------

def recorded(path: Path = EXPECTED) -> dict:
    """The fingerprint record of ``helpers/expected.json``: versions, loss, tolerance."""
    from course.runner import CourseError

    record = json.loads(Path(path).read_text(encoding="utf-8")).get("fingerprint")
    if not record:
        raise CourseError(f"{path} has no fingerprint to verify the grading workers against: "
                          "run `course calibrate --fingerprint-only`")
    return record


def compare(measured: dict, record: dict) -> list[str]:
    """What differs between a worker's measurement and the record, one short phrase each (empty: it matches)."""
    problems = []
    mine, theirs = measured.get("versions", {}), record["versions"]
    for name in COMPARED:
        have, want = mine.get(name), theirs.get(name)
        if name == "python" and have and want:
            have, want = ".".join(have.split(".")[:2]), ".".join(want.split(".")[:2])
        if have != want:
            problems.append(f"{name} {have}, expected {want}")
    loss, expected, tolerance = measured.get("loss"), record["loss"], record["tolerance"]
    if not isinstance(loss, (int, float)):
        problems.append(f"fingerprint loss {loss}, expected {expected:.9g} +/- {tolerance:g}")
    elif not abs(loss - expected) <= tolerance:  # NaN fails too
        problems.append(f"fingerprint loss {loss:.9g} (off by {abs(loss - expected):.2g}), "
                        f"expected {expected:.9g} +/- {tolerance:g}")
    return problems


@dataclass
class WorkerCheck:
    """One worker's verification: passed or not, why not, and what it measured."""

    worker: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    loss: float | None = None
    versions: dict = field(default_factory=dict)
    seconds: float = 0.0

    def line(self, label: str = "") -> str:
        """One line for the instructor: ``worker <label or address> verified: ...`` or ``... excluded: <why>``."""
        if self.ok:
            return f"worker {label or self.worker} verified: {self.summary()}"
        return f"worker {label or self.worker} excluded: " + "; ".join(self.problems)

    def summary(self) -> str:
        """What it measured, for the job records."""
        loss = f"fingerprint loss {self.loss:.9f}" if self.loss is not None else "no fingerprint loss"
        return f"{loss}, {versions_text(self.versions)}" + ("" if self.ok else " (excluded)")


def versions_text(v: dict) -> str:
    threads = ", ".join(f"{k}={x}" for k, x in (v.get("threads") or {}).items() if x is not None) or "default threads"
    return (f"python {v.get('python')}, tensorflow {v.get('tensorflow')}, keras {v.get('keras')}, "
            f"numpy {v.get('numpy')}, {threads}")


def check_worker(record: dict, extra_env: dict | None = None, timeout: float = 300) -> WorkerCheck:
    """On a worker: measure (``extra_env``: the thread settings its kernels get) and compare with ``record``;
    a crash of the check is a failed check."""
    from course.parallel import worker_address

    start = time.monotonic()
    try:
        measured = measure(extra_env, timeout)
    except Exception as error:
        return WorkerCheck(worker_address(), False, [f"the check crashed: {type(error).__name__}: {error}"[:400]],
                           seconds=round(time.monotonic() - start, 1))
    problems = compare(measured, record)
    return WorkerCheck(worker_address(), not problems, problems, measured.get("loss"), measured.get("versions", {}),
                       round(time.monotonic() - start, 1))


if __name__ == "__main__":
    sys.exit(main())
