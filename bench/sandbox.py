"""Benchmark: what the grading sandbox costs per kernel (start, one cell, shutdown), today and at a git revision.

Runs the same tiny notebook (``import numpy``; one cell) ``--repeat`` times in turn through nbclient with
three kernels: plain ``python3`` (no sandbox), the ``course-sandbox`` kernel of this checkout, and the
``course-sandbox`` launcher of ``--before`` (a git revision; its launcher is taken from git into a scratch
folder with its own kernel spec). No TensorFlow: only the sandbox's own cost is measured. Appends the table
to ``bench/results/sandbox.txt``.

    .venv/bin/python bench/sandbox.py [--repeat 5] [--before 2bff99b]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course.runner import ROOT, nbgrader_env
from course.sandbox import install


def old_launcher(revision: str, scratch: Path) -> str:
    """A kernel spec (in ``scratch``) that runs the sandbox launcher as it was at ``revision``."""
    for path in ("course/sandbox.py", "helpers/sandbox.py"):
        done = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, capture_output=True, text=True)
        if done.returncode == 0:
            break
    else:
        raise SystemExit(f"no sandbox launcher at {revision}")
    (scratch / "old_sandbox.py").write_text(done.stdout)
    spec = scratch / "kernels" / "course-sandbox-before"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(scratch / "old_sandbox.py"), "{connection_file}"],
        "display_name": "before", "language": "python", "interrupt_mode": "message"}))
    return "course-sandbox-before"


def run(kernel: str, folder: Path, env: dict) -> float:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import numpy\nprint(numpy.ones(3).sum())")])
    start = time.perf_counter()
    NotebookClient(notebook, timeout=120, kernel_name=kernel, resources={"metadata": {"path": str(folder)}}
                   ).execute(env=env)
    assert "3.0" in notebook.cells[0].outputs[0]["text"], notebook.cells[0].outputs
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", default="2bff99b", help="the git revision to compare with")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "sandbox.txt"))
    args = parser.parse_args()
    install()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as scratch:
        scratch = Path(scratch)
        folder = scratch / "course" / "autograded" / "someone" / "tiny"
        folder.mkdir(parents=True)
        (scratch / "course" / "nbgrader_config.py").write_text("# a course\n")
        before = old_launcher(args.before, scratch)
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(scratch), os.environ.get("JUPYTER_PATH", "")])
        env = nbgrader_env(PYTHONPATH=str(ROOT))  # the old launcher imports helpers from this checkout
        kernels = {"python3 (no sandbox)": "python3", f"sandbox at {args.before}": before,
                   "sandbox now": "course-sandbox"}
        times: dict[str, list[float]] = {label: [] for label in kernels}
        for round_ in range(args.repeat):
            for label, kernel in kernels.items():
                times[label].append(run(kernel, folder, env))
                print(f"round {round_ + 1}: {label:<28} {times[label][-1]:5.2f} s", flush=True)
    base = statistics.median(times["python3 (no sandbox)"])
    lines = [f"## {time.strftime('%Y-%m-%d %H:%M')}  bench/sandbox.py --repeat {args.repeat} --before {args.before}",
             f"machine: {platform.machine()}, {os.cpu_count()} cores, as uid {os.geteuid()}; seconds per kernel "
             "(start, one cell, shutdown), median (min-max)"]
    for label, values in times.items():
        lines.append(f"{label:<28} {statistics.median(values):5.2f} ({min(values):.2f}-{max(values):.2f})  "
                     f"+{statistics.median(values) - base:.2f} s over no sandbox")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "a", encoding="utf-8") as file:
        file.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
