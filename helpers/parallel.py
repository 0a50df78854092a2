"""Grade a whole class on N workers, with a progress bar, and still get exactly nbgrader's gradebook.

nbgrader autogrades one submission after another (upstream #174, #1456). Here, for one assignment:

1. **Jobs.** Each student becomes one job: a small bundle with only what ``nbgrader autograde`` needs for
   that student (``nbgrader_config.py``, a gradebook holding the assignment but no submissions, the data
   files of ``source/<assignment>/`` without its notebooks, and ``submitted/<student>/<assignment>/``).
   A Dask worker unpacks it into a scratch folder, runs plain ``nbgrader autograde <assignment> --student
   <student>`` there under a wall-time limit, and sends back the executed notebooks. Bundles travel as
   bytes, so the workers need the course's Python environment and MNIST, not the course folder:
   the same code runs on an embedded ``LocalCluster`` (default) or on a real Dask cluster.
2. **One writer.** The course's gradebook is then written by a single ``nbgrader autograde <assignment>
   --force`` in the course folder, with nbgrader's ``Execute`` preprocessor replaced by ``ReplayExecution``,
   which takes every cell's outputs from the worker's executed notebook instead of running a kernel. The
   scores are computed by nbgrader's own ``SaveAutoGrades``, as in a serial run, and no two processes
   ever write the SQLite gradebook at once.

A job that exceeds its wall time gets an error output in every test cell, so all its tests score 0; a job
that nbgrader could not finish (kernel died, worker lost) fails in the replay too, as it would serially;
either way the grade report names the reason.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Unicode

from helpers.grade import nbgrader_env

STOPPED = "GradingStopped"  # the ename of the error put into the cells of a job that did not finish


# --- running one command and watching its processes ---------------------------------------------------

@dataclass
class Watched:
    returncode: int | None  # None: killed at the wall-time limit
    output: str
    seconds: float
    peak_kernel_mb: float  # the largest resident memory of any Jupyter kernel started by the command


def run_watched(command: list[str], cwd: Path, env: dict, timeout: float) -> Watched:
    """Run a command in its own process group; kill the whole group at ``timeout`` seconds; sample the
    resident memory of the kernels it starts twice a second."""
    import psutil

    start = time.monotonic()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    peak = 0.0
    returncode = None
    while time.monotonic() - start < timeout:
        try:
            returncode = process.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            pass
        try:
            for child in psutil.Process(process.pid).children(recursive=True):
                if "ipykernel" in " ".join(child.cmdline()):
                    peak = max(peak, child.memory_info().rss / 2**20)
        except psutil.Error:
            pass
    if returncode is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.seek(0)
    output = log.read().decode(errors="replace")
    log.close()
    return Watched(returncode, output, time.monotonic() - start, round(peak, 1))


def thread_env(threads: int | None) -> dict:
    """Environment that limits TensorFlow and oneDNN to ``threads`` threads (None: TensorFlow's default).

    The calibration measured the expected values with one thread too (helpers/expected.json), so the
    grades do not depend on this choice."""
    if not threads:
        return {}
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(threads)}


# --- bundles -----------------------------------------------------------------------------------------------

def pack(files: dict[str, Path]) -> bytes:
    """A gzipped tar of {name in the archive: file or folder}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, path in files.items():
            tar.add(path, arcname=name)
    return buffer.getvalue()


def unpack(data: bytes, target: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(target, filter="data")


def empty_gradebook(course: Path, target: Path) -> Path:
    """A copy of the course's gradebook with its assignments and notebooks but no students or submissions."""
    from nbgrader.api import Gradebook

    shutil.copy(course / "gradebook.db", target)
    with Gradebook(f"sqlite:///{target}") as gradebook:
        for student in list(gradebook.students):
            gradebook.remove_student(student.id)
    with sqlite3.connect(target) as db:
        db.execute("VACUUM")
    return target


def job_bundle(course: Path, gradebook: Path, assignment: str, student: str) -> bytes:
    files = {"nbgrader_config.py": course / "nbgrader_config.py", "gradebook.db": gradebook,
             f"submitted/{student}/{assignment}": course / "submitted" / student / assignment}
    for path in (course / "source" / assignment).rglob("*"):  # data files, never the instructor's notebooks
        if path.is_file() and path.suffix != ".ipynb" and ".ipynb_checkpoints" not in path.parts:
            files[f"source/{assignment}/{path.relative_to(course / 'source' / assignment)}"] = path
    return pack(files)


# --- the job a worker runs ------------------------------------------------------------------------------------

def grade_one(bundle: bytes, assignment: str, student: str, threads: int | None, timeout: float,
              extra: tuple[str, ...] = ()) -> dict:
    """On a worker: plain ``nbgrader autograde`` of one student in a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
        root = Path(scratch)
        unpack(bundle, root)
        (root / "tmp").mkdir()  # the sandbox's private folders go here, and go away with the job
        env = dict(nbgrader_env(), TMPDIR=str(root / "tmp"), **thread_env(threads))
        run = run_watched([sys.executable, "-m", "nbgrader", "autograde", assignment, "--student", student,
                           *extra], root, env, timeout)
        folder = root / "autograded" / student / assignment
        notebooks = {p.name: p.read_bytes() for p in folder.glob("*.ipynb")} if run.returncode == 0 else {}
        if run.returncode is None:
            status, reason = "timeout", f"grading stopped after the wall-time limit of {timeout:g} s"
        elif run.returncode != 0:
            status, reason = "error", _last_error(run.output)
        else:
            status, reason = "ok", ""
        return {"student": student, "status": status, "reason": reason, "seconds": round(run.seconds, 1),
                "peak_kernel_mb": run.peak_kernel_mb, "notebooks": notebooks, "log": run.output[-4000:]}


def _last_error(log: str) -> str:
    """The reason to show the instructor: the sandbox's own message if it stopped the kernel, else the last
    error line of nbgrader's log."""
    lines = log.splitlines()
    sandbox = [line.strip() for line in lines if line.startswith("course-sandbox:")]
    errors = [line.strip() for line in lines if "[ERROR]" in line or "Error" in line]
    return (sandbox or errors or ["nbgrader autograde failed"])[-1][:300]


# --- replaying a worker's outputs in the course ------------------------------------------------------------

class ReplayExecution(Preprocessor):
    """Autograde preprocessor used in place of nbgrader's ``Execute``: each code cell gets the outputs it
    produced on the worker. A job stopped at its wall time: every test cell gets an error output with the
    reason, so every test scores 0. A job where nbgrader failed (kernel died, worker lost): it fails here
    too, so nbgrader records it exactly as a serial run would."""

    enabled = True
    folder = Unicode(help="where the workers' notebooks are: <folder>/<student>/<notebook>.ipynb "
                          "and <folder>/<student>/REASON").tag(config=True)

    def preprocess(self, nb, resources):
        student, name = resources["nbgrader"]["student"], resources["nbgrader"]["notebook"]
        executed = Path(self.folder) / student / f"{name}.ipynb"
        failed = Path(self.folder) / student / "FAILED"
        if failed.exists():  # nbgrader failed on the worker (e.g. the kernel died): fail here too, as serially
            raise RuntimeError(failed.read_text())
        if not executed.exists():
            reason_file = Path(self.folder) / student / "REASON"
            reason = reason_file.read_text() if reason_file.exists() else "the submission was not graded"
            for cell in nb.cells:
                if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                    cell.outputs = [nbformat.v4.new_output("error", ename=STOPPED, evalue=reason,
                                                           traceback=[f"{STOPPED}: {reason}"])]
            return nb, resources
        done = nbformat.read(executed, as_version=4)
        if [c.source for c in done.cells] != [c.source for c in nb.cells]:
            raise ValueError(f"{executed}: the worker's notebook does not match the submission's cells")
        for cell, ran in zip(nb.cells, done.cells):
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
                if "execution" in ran.metadata:  # nbclient's timestamps of the run
                    cell.metadata.execution = ran.metadata.execution
        if "language_info" in done.metadata:
            nb.metadata.language_info = done.metadata.language_info
        return nb, resources


def replay(course: Path, assignment: str, folder: Path) -> subprocess.CompletedProcess:
    """Write the gradebook, autograded/ and the scores: one ``nbgrader autograde --force`` that replays."""
    code = ("import sys; from helpers.parallel import _replay_main; sys.exit(_replay_main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, assignment, str(folder)], cwd=course, env=nbgrader_env(),
                          capture_output=True, text=True)


def _replay_main(argv: list[str]) -> int:
    from nbgrader.apps.autogradeapp import AutogradeApp
    from nbgrader.converters import Autograde
    from traitlets.config import Config

    assignment, folder = argv
    app = AutogradeApp()
    app.initialize([assignment, "--force"])
    from nbgrader.preprocessors import Execute

    config = Config()
    configured = app.config.Autograde.get("autograde_preprocessors")  # the course's own list, if it has one
    preprocessors = configured or Autograde.class_traits()["autograde_preprocessors"].default()
    if not any(isinstance(p, type) and issubclass(p, Execute) for p in preprocessors):
        raise SystemExit("the course's Autograde.autograde_preprocessors has no Execute step to replay")
    config.Autograde.autograde_preprocessors = [
        ReplayExecution if isinstance(p, type) and issubclass(p, Execute) else p for p in preprocessors]
    config.ReplayExecution.folder = folder
    app.update_config(config)
    try:
        app.start()
    except SystemExit as stop:
        return stop.code or 0
    return 0


# --- the whole class ---------------------------------------------------------------------------------------

@dataclass
class Progress:
    """One line per finished job; on a terminal, also a bar that ticks every second."""

    total: int
    label: str
    done: int = 0
    start: float = field(default_factory=time.monotonic)
    live: bool = field(default_factory=lambda: sys.stdout.isatty())

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        width = 24
        bar = "#" * round(width * self.done / self.total) + "." * (width - round(width * self.done / self.total))
        eta_text = f"{eta:4.0f} s" if self.done else "   ? s"
        return f"{self.label} [{bar}] {self.done}/{self.total}  elapsed {elapsed:4.0f} s  ETA {eta_text}"

    def finished(self, message: str) -> None:
        self.done += 1
        print(("\r\033[K" if self.live else "") + f"  {message}", flush=True)
        print(self.line(), end="" if self.live else "\n", flush=True)

    def tick(self, stop: threading.Event) -> None:
        while self.live and not stop.wait(1.0):
            print("\r\033[K" + self.line(), end="", flush=True)


def cluster_client(workers: int, scheduler: str | None):
    """A Dask client: the cluster at ``scheduler``, or an embedded LocalCluster of ``workers`` processes."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


class Jobs(dict):
    """{student: job summary}, and how long the single writer (``replay``) took."""

    replay_seconds: float = 0.0


def grade_assignment(course: Path, assignment: str, client, workers: int, threads: int | None,
                     timeout: float, extra: list[str] | None = None) -> dict:
    """Autograde every student of ``submitted/`` for one assignment on the Dask client; write the course's
    gradebook and autograded/ through ``replay``. Returns the jobs (see ``Jobs``)."""
    from distributed import as_completed

    students = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}") if p.is_dir())
    with tempfile.TemporaryDirectory(prefix=f"parallel-{assignment}-") as scratch:
        scratch = Path(scratch)
        gradebook = empty_gradebook(course, scratch / "gradebook.db")
        futures = {client.submit(grade_one, job_bundle(course, gradebook, assignment, s), assignment, s, threads,
                                 timeout, tuple(extra or ()), key=f"autograde-{assignment}-{s}-{time.time_ns()}",
                                 pure=False, retries=1): s
                   for s in students}
        progress = Progress(len(students), f"{assignment}: {workers} workers")
        stop = threading.Event()
        threading.Thread(target=progress.tick, args=(stop,), daemon=True).start()
        jobs = Jobs()
        try:
            for future in as_completed(futures):
                student = futures[future]
                try:
                    job = future.result()
                except Exception as error:  # the worker died (e.g. out of memory) twice
                    job = {"student": student, "status": "error", "seconds": 0, "peak_kernel_mb": 0,
                           "reason": f"the grading worker failed: {type(error).__name__}: {error}"[:300],
                           "notebooks": {}, "log": ""}
                jobs[student] = job
                folder = scratch / "executed" / student
                folder.mkdir(parents=True)
                for name, data in job.pop("notebooks").items():
                    (folder / name).write_bytes(data)
                if job["status"] != "ok":  # a timeout zeroes the tests; an nbgrader failure is replayed as one
                    (folder / ("REASON" if job["status"] == "timeout" else "FAILED")).write_text(job["reason"])
                note = "" if job["status"] == "ok" else f"  {job['status'].upper()}: {job['reason']}"
                progress.finished(f"{student:<20} {job['seconds']:6.1f} s{note}")
        finally:
            stop.set()
        if progress.live:
            print(flush=True)
        start = time.monotonic()
        done = replay(course, assignment, scratch / "executed")
        jobs.replay_seconds = round(time.monotonic() - start, 1)
        print(f"{assignment}: {len(jobs)} submissions written to the gradebook by one nbgrader process in "
              f"{jobs.replay_seconds:.1f} s", flush=True)
        (course / "logs").mkdir(exist_ok=True)
        log = course / "logs" / f"autograde-{assignment}.log"
        log.write_text("".join(f"===== {s} ({j['status']}, {j['seconds']} s)\n{j['log']}\n"
                               for s, j in sorted(jobs.items())) + "===== replay\n" + done.stdout + done.stderr)
        if done.returncode != 0:
            print(f"nbgrader autograde reported errors for {assignment}; see {log}", file=sys.stderr)
    return jobs
