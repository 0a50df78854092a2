"""The course installs from its own files: pins in one place, mirrored for conda, CI calls make test."""

from pathlib import Path

import tomllib

COURSE = Path(__file__).resolve().parents[1]


def test_environment_yml_mirrors_pyproject_pins():
    pins = tomllib.loads((COURSE / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = [line.strip()[2:] for line in (COURSE / "environment.yml").read_text().splitlines()
             if line.startswith("      - ") and "==" in line]
    assert conda == pins


def test_every_dependency_is_pinned():
    pyproject = tomllib.loads((COURSE / "pyproject.toml").read_text())["project"]
    for requirement in pyproject["dependencies"] + pyproject["optional-dependencies"]["dev"]:
        assert "==" in requirement, requirement


def test_ci_runs_the_readme_test_command():
    assert "make test" in (COURSE / ".ci" / "run").read_text()
    readme = (COURSE / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_mnist_is_never_committed():
    ignored = (COURSE / ".gitignore").read_text().split()
    assert "*.npz" in ignored and "gradebook.db" in ignored


def test_graded_outputs_are_not_committed():
    """`make demo` writes them anew on every run: a committed copy would only go stale."""
    ignored = (COURSE / ".gitignore").read_text().split()
    assert {"autograded/", "feedback/", "grades.csv", "logs/"} <= set(ignored)


def test_helpers_imports_nothing_of_the_instructors_package():
    """The student kernel imports helpers; the course package stays out of its reach."""
    for module in (COURSE / "helpers").glob("*.py"):
        assert "course." not in module.read_text() and "import course" not in module.read_text(), module.name
