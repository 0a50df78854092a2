# The course's two commands: `make demo` and `make test` (see README.md).
VENV ?= .venv
BIN := $(VENV)/bin
ASSIGNMENTS := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard source/*/*.ipynb)))))
export TF_CPP_MIN_LOG_LEVEL ?= 3
# nbgrader runs `alembic` from PATH when it creates a gradebook: the venv's bin must be on it.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup mnist release demo test test-fast lint calibrate sweep bench sample-class lab clean

$(BIN)/course: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet -e '.[dev]'
	$(BIN)/course install-sandbox
	touch $@

setup: $(BIN)/course

# Put a verified mnist.npz where Keras reads it (set COURSE_MNIST_FILE to use a local copy).
mnist: setup
	$(BIN)/course fetch-mnist

# Regenerate release/ (the student versions) from source/.
release: setup
	for a in $(ASSIGNMENTS); do $(BIN)/nbgrader generate_assignment $$a --force || exit 1; done

# Generate the release, autograde the sample class in submitted/, write feedback/ and grades.csv, print grades.
# The sample class has deliberately stuck submissions: short limits (a real class: the defaults, 600 s per
# cell from nbgrader_config.py and 1800 s per submission) keep the demo short.
DEMO_LIMITS := --cell-timeout 120 --timeout 300
demo: mnist
	$(BIN)/course grade $(DEMO_LIMITS)

test: mnist lint
	$(BIN)/pytest -ra

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
