"""Every grading worker is verified before it grades (course.fingerprint, course.parallel.verified_workers):
the comparison with the calibration's record, the committed record itself, and real workers whose
environment computes differently or lacks MNIST, excluded while the others grade."""

import json
import math
import re
import time

import pytest
import tomllib
from conftest import COURSE
from tiny import dask_cluster, grade, gradebook_rows, tiny_course

from course import fingerprint
from course.fingerprint import WorkerCheck, check_worker, compare, recorded
from course.parallel import verified_workers
from course.runner import CourseError, nbgrader_env

VERSIONS = {"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1", "keras_backend": "tensorflow",
            "numpy": "2.4.6"}
RECORD = {"versions": VERSIONS, "loss": 1.785224, "tolerance": 1e-4}


def measured(loss=1.785224, **versions):
    return {"versions": dict(VERSIONS, threads={"TF_NUM_INTRAOP_THREADS": "1"}, **versions), "loss": loss}


# --- the comparison ----------------------------------------------------------------------------------------

def test_the_same_versions_and_loss_pass():
    assert compare(measured(), RECORD) == []
    assert compare(measured(1.785224 + 0.9e-4), RECORD) == []
    assert compare(measured(1.785224 - 0.9e-4, python="3.11.9"), RECORD) == []  # a Python bug-fix release


def test_each_version_that_differs_is_named():
    assert compare(measured(keras="3.14.0"), RECORD) == ["keras 3.14.0, expected 3.15.1"]
    assert compare(measured(numpy="2.3.5", tensorflow="2.20.0"), RECORD) == [
        "tensorflow 2.20.0, expected 2.21.0", "numpy 2.3.5, expected 2.4.6"]
    assert compare(measured(python="3.12.1"), RECORD) == ["python 3.12, expected 3.11"]
    assert compare(measured(keras_backend="jax"), RECORD) == ["keras_backend jax, expected tensorflow"]


def test_a_loss_outside_the_tolerance_is_named():
    assert compare(measured(1.785224 + 1.1e-4), RECORD) == [
        "fingerprint loss 1.785334 (off by 0.00011), expected 1.785224 +/- 0.0001"]
    assert compare(measured(1.8147), RECORD) == ["fingerprint loss 1.8147 (off by 0.029), expected 1.785224 +/- 0.0001"]
    assert compare(measured(math.nan), RECORD)[0].startswith("fingerprint loss nan")
    assert compare({"versions": VERSIONS}, RECORD) == ["fingerprint loss None, expected 1.785224 +/- 0.0001"]


def test_an_excluded_worker_gets_one_line_with_its_address_and_what_differed():
    problems = compare(measured(1.9, keras="3.14.0"), RECORD)
    check = WorkerCheck("tcp://10.0.0.7:4100", not problems, problems, 1.9, measured()["versions"])
    assert check.line() == ("worker tcp://10.0.0.7:4100 excluded: keras 3.14.0, expected 3.15.1; "
                            "fingerprint loss 1.9 (off by 0.11), expected 1.785224 +/- 0.0001")
    assert "\n" not in check.line()
    good = WorkerCheck("tcp://10.0.0.8:4100", True, [], 1.785224, measured()["versions"])
    assert good.line("tcp://10.0.0.8:4100 (gpu-box)") == (
        "worker tcp://10.0.0.8:4100 (gpu-box) verified: fingerprint loss 1.785224000, python 3.11.7, "
        "tensorflow 2.21.0, keras 3.15.1, numpy 2.4.6, TF_NUM_INTRAOP_THREADS=1")


def test_a_worker_without_mnist_fails_its_check(tmp_path, monkeypatch):
    """Its kernels could not load MNIST either (the sandbox has no network): the check fails, naming the file."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    check = check_worker(RECORD)
    assert not check.ok
    assert check.problems == [f"the check crashed: RuntimeError: MNIST is not in place at "
                              f"{tmp_path / 'keras' / 'datasets' / 'mnist.npz'} (the kernels read it there): "
                              "run `course fetch-mnist` on this worker"]


def test_a_calibration_file_without_a_fingerprint_is_an_error(tmp_path):
    (tmp_path / "expected.json").write_text(json.dumps({"assignments": {}}))
    with pytest.raises(CourseError, match=r"has no fingerprint .* `course calibrate --fingerprint-only`"):
        recorded(tmp_path / "expected.json")


def test_the_recorded_fingerprint_has_the_pinned_versions_and_its_measurements():
    record = recorded()
    pinned = dict(line.split("==") for line in tomllib.loads((COURSE / "pyproject.toml").read_text())
                  ["project"]["dependencies"])
    assert record["versions"]["tensorflow"] == pinned["tensorflow-cpu"]
    assert record["versions"]["keras"] == pinned["keras"] and record["versions"]["numpy"] == pinned["numpy"]
    assert record["versions"]["keras_backend"] == "tensorflow"
    runs = record["runs"]
    assert {r["setting"] for r in runs} >= {"1 thread", "2 threads", "default", "oneDNN off", "op determinism"}
    assert sum(r["setting"] == "1 thread" for r in runs) >= 3 and sum(r["setting"] == "2 threads" for r in runs) >= 3
    correct, different = [r for r in runs if r["correct"]], [r for r in runs if not r["correct"]]
    assert all(r["accepted"] for r in correct) and different and not any(r["accepted"] for r in different)
    spread = max(abs(r["loss"] - record["loss"]) for r in correct)
    assert spread < record["tolerance"] < min(abs(r["loss"] - record["loss"]) for r in different)
    assert f"{spread:.2g}" in record["how"]  # the description states what was measured


@pytest.mark.slow
def test_the_fingerprint_model_is_the_shuffle_notebooks_build_model():
    """Same layers, same initial weights from the same seed, same compile settings as source/shuffle's build_model()."""
    import nbformat
    import numpy as np

    notebook = nbformat.read(COURSE / "source" / "shuffle" / "shuffle.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "build_model")
    namespace = {}
    exec("from keras import layers, losses, metrics, models, optimizers, utils\n" + cell.source, namespace)
    theirs, ours = namespace["build_model"](), fingerprint.build_model()

    def layers(model):
        return [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"})
                for layer in model.layers]

    assert layers(ours) == layers(theirs)
    assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), theirs.get_weights()))
    assert len(ours.get_weights()) == len(theirs.get_weights())
    assert type(ours.optimizer) is type(theirs.optimizer) and ours.loss is theirs.loss
    assert ours.optimizer.get_config() | {"name": ""} == theirs.optimizer.get_config() | {"name": ""}
    assert ours.steps_per_execution == theirs.steps_per_execution


# --- real workers ------------------------------------------------------------------------------------------

def test_with_no_worker_left_grading_stops(tmp_path, monkeypatch, capsys):
    """A worker that fails its real check (here: no MNIST where its kernels read it) is excluded; with none left,
    a CourseError; each worker is checked once per client."""
    from distributed import Client, LocalCluster

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
                      ) as cluster, Client(cluster) as client:
        address = next(iter(client.scheduler_info()["workers"]))
        with pytest.raises(CourseError, match=r"no grading worker passed the verification \(1 checked"):
            verified_workers(client, 1, RECORD)
        lines = [line.strip() for line in capsys.readouterr().out.splitlines() if "excluded" in line]
        assert lines == [f"worker {address} excluded: the check crashed: RuntimeError: MNIST is not in place at "
                         f"{tmp_path / 'keras' / 'datasets' / 'mnist.npz'} (the kernels read it there): "
                         "run `course fetch-mnist` on this worker"]
        with pytest.raises(CourseError):
            verified_workers(client, 1, RECORD)
        assert "excluded" not in capsys.readouterr().out  # not checked again


def test_jobs_for_verified_workers_that_all_left_are_cancelled():
    """A job pinned to verified workers none of which is still in the cluster would wait forever: it is cancelled."""
    import threading

    from distributed import Client, LocalCluster

    from course.parallel import cancel_without_workers

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
                      ) as cluster, Client(cluster) as client:
        future = client.submit(sum, [1, 2], workers=["tcp://192.0.2.1:1"], allow_other_workers=False, pure=False)
        stop, gone = threading.Event(), threading.Event()
        start = time.monotonic()
        cancel_without_workers(client, [future], {"tcp://192.0.2.1:1"}, stop, gone, every=0.2)
        assert gone.is_set() and future.cancelled() and time.monotonic() - start < 5
        live = set(client.scheduler_info()["workers"])  # a verified worker still there: nothing is cancelled
        busy = client.submit(time.sleep, 1.5, workers=sorted(live), allow_other_workers=False, pure=False)
        stop, gone = threading.Event(), threading.Event()
        watcher = threading.Thread(target=cancel_without_workers, args=(client, [busy], live, stop, gone),
                                   kwargs={"every": 0.2})
        watcher.start()
        time.sleep(1.0)
        stop.set()
        watcher.join()
        assert not gone.is_set() and not busy.cancelled()
        assert busy.result(timeout=10) is None


@pytest.mark.slow
def test_workers_whose_environment_differs_are_excluded_and_the_others_grade(tmp_path, real_mnist):
    """A scheduler and two worker processes, as on a cluster: one as the course sets it up, one whose PYTHONPATH
    carries a sitecustomize that switches Keras to mixed_float16 (its kernels would compute in half precision).
    Nothing is mocked: each worker runs the real check, and only the first one grades."""
    half = fingerprint.precision_env(tmp_path / "f16", "mixed_float16")
    with dask_cluster(tmp_path, {"good": nbgrader_env(), "half": nbgrader_env(**half)}) as (address, workers):
        course = tiny_course(tmp_path / "course", {"right": "answer = 42", "wrong": "answer = 41.0"})
        done = grade(course, "--scheduler", address)
    out = done.stdout
    verdicts = {line.split()[2].strip("()"): line.strip() for line in out.splitlines()
                if re.match(r"\s+worker \S+ \(\w+\) (verified|excluded):", line)}
    assert set(verdicts) == {"good", "half"}, out
    assert re.fullmatch(rf"worker {workers['half']} \(half\) excluded: fingerprint loss [\d.]+ \(off by [\d.e-]+\), "
                        rf"expected [\d.]+ \+/- [\d.e-]+", verdicts["half"]), verdicts["half"]
    assert verdicts["good"].startswith(f"worker {workers['good']} (good) verified: fingerprint loss ")
    assert "tiny: 1 worker [########################] 2/2" in out
    jobs = json.loads((course / "logs" / "jobs-tiny.json").read_text())
    assert {job["worker"] for job in jobs.values()} == {workers["good"]}
    assert all(job["worker_check"].startswith("fingerprint loss ") for job in jobs.values())
    rows = gradebook_rows(course)
    assert [rows[(s, "test_value")][0] for s in ("right", "wrong")] == [2, 0]
