import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.runner import ROOT, assignments, nbgrader_env, scratch_course

COURSE = ROOT
ASSIGNMENTS = assignments(COURSE)
DEMO_LIMITS = ["--cell-timeout", "120", "--timeout", "300"]  # as in the Makefile


@pytest.fixture(scope="session")
def real_mnist() -> Path:
    """A verified copy of Keras' mnist.npz: the configured file, else the Keras cache (`make test` fills it)."""
    from helpers.data import is_valid, keras_cache_path

    for candidate in (os.environ.get("COURSE_MNIST_FILE"), keras_cache_path()):
        if candidate and is_valid(Path(candidate)):
            return Path(candidate)
    pytest.fail("no verified MNIST: run `course fetch-mnist` (make test does) or set COURSE_MNIST_FILE")


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory, real_mnist) -> Path:
    """The sample class graded once per test run by `course grade` (what `make demo` runs)."""
    course = scratch_course(tmp_path_factory.mktemp("graded") / "course", submitted=COURSE / "submitted")
    # the limits of `make demo`: the hostile class's stuck submissions are stopped after 120 s per cell / 300 s
    done = subprocess.run([sys.executable, "-m", "course.cli", "grade", *ASSIGNMENTS, *DEMO_LIMITS],
                          cwd=course, env=nbgrader_env(),
                          capture_output=True, text=True)
    (course / "grade-output.txt").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return course


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each test's outcome to its fixtures (for the failure screenshot)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
