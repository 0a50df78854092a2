# The course's two commands: `make demo` and `make test` (see README.md).
VENV ?= .venv
BIN := $(VENV)/bin
ASSIGNMENTS := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard source/*/*.ipynb)))))
export TF_CPP_MIN_LOG_LEVEL ?= 3
# nbgrader runs `alembic` from PATH when it creates a gradebook: the venv's bin must be on it.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup bwrap browser mnist release demo test test-fast lint calibrate sweep bench sample-class lab clean

$(BIN)/course: pyproject.toml | bwrap
	python3 -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet -e '.[dev]'
	$(BIN)/course install-sandbox
	touch $@

setup: $(BIN)/course

# Grading runs every student's kernel in bubblewrap (course/sandbox.py): install it where we can (root with
# apt-get), else stop with the one command to run.
bwrap:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (the grading sandbox) with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) || exit 1; \
	  else \
	    echo "error: grading needs bubblewrap: run  sudo apt-get install -y bubblewrap  then make again" >&2; exit 1; \
	  fi; }

# Put a verified mnist.npz where Keras reads it (set COURSE_MNIST_FILE to use a local copy).
mnist: setup
	$(BIN)/course fetch-mnist

# Regenerate release/ (the student versions) from source/ and record what it holds (released.json: `course
# grade` refuses to grade against a source changed since).
release: setup
	$(BIN)/course release

# Generate the release, autograde the sample class in submitted/, write feedback/ and grades.csv, print grades.
# The sample class has deliberately stuck submissions: short limits (a real class: the defaults, 600 s per
# cell from nbgrader_config.py and 1800 s per submission) keep the demo short.
DEMO_LIMITS := --cell-timeout 120 --timeout 300
demo: mnist
	$(BIN)/course grade $(DEMO_LIMITS)

test: mnist lint browser
	$(BIN)/pytest -ra

# The browser test drives Debian's Chromium (Nanum fonts for Korean): installed where we can (root with
# apt-get); elsewhere that one test is skipped with a loud reason.
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi nanum; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and fonts-nanum (the browser test) with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-nanum >/dev/null) \
	      || echo "!!! could not install chromium: the browser test will be SKIPPED !!!"; \
	  else \
	    echo "!!! chromium missing (sudo apt-get install -y chromium fonts-nanum): the browser test will be SKIPPED !!!"; \
	  fi; }

# Unit tests only (no TensorFlow training, no nbgrader runs): seconds.
test-fast: setup lint
	$(BIN)/pytest -ra -m "not slow"

lint: setup
	$(BIN)/ruff check .

# Instructor: re-measure the expected values and tolerances (helpers/expected.json), ~10 minutes.
calibrate: mnist
	$(BIN)/course calibrate

# Instructor: measure the grader (false negatives/positives over correct and wrong variants), ~25 minutes;
# appends to bench/results/sweep.txt.
sweep: mnist
	$(BIN)/course sweep

# Benchmarks (not tests): Run-All vs the original listings, and serial vs parallel grading; append/write
# bench/results/.
bench: mnist
	$(BIN)/python bench/runall.py
	$(BIN)/python bench/parallel.py

# Rewrite submitted/ from release/ and tests/sample_class.py (after changing a notebook).
sample-class: setup
	$(BIN)/python tests/sample_class.py

clean:
	rm -rf $(VENV) gradebook.db .pytest_cache

# JupyterLab on localhost for the course, with nbgrader's extensions (assignment list, Validate, formgrader).
lab: mnist
	$(BIN)/jupyter lab --allow-root --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) \
		--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate
