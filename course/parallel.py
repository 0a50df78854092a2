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
   --force`` in the course folder, with nbgrader's ``Execute`` preprocessor replaced by
   ``course.preprocessors.ReplayExecution``,
   which takes every cell's outputs from the worker's executed notebook instead of running a kernel. The
   scores are computed by nbgrader's own ``SaveAutoGrades``, as in a serial run, and no two processes
   ever write the SQLite gradebook at once.

Before a worker gets any job it is **verified** (``course.fingerprint``): its Python, TensorFlow, Keras and
numpy must be the calibrated ones and a 20-step fingerprint run of the reference model, in a fresh process
with a kernel's environment, must give the loss recorded in ``helpers/expected.json`` within its
tolerance. A worker that fails is excluded with one line naming it and what differed; the jobs go to the
others (``CourseError`` when none is left). Each worker is checked once per client and thread setting.

A job that exceeds its wall time gets an error output in every test cell, so all its tests score 0; a job
that nbgrader could not finish (kernel died, worker lost) fails in the replay too, as it would serially;
either way the grade report names the reason.
"""

from __future__ import annotations

import io
import json
import logging
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
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from course.preprocessors.replay_execution import JOBS_FILE
from course.runner import CourseError, gradebook, kill_below, nbgrader_env, save_costs, students, unsafe_entries

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
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        peak, returncode = 0.0, None
        while returncode is None and time.monotonic() - start < timeout:
            try:
                returncode = process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                peak = max([peak] + kernel_rss_mb(psutil, process.pid))
        if returncode is None:  # the kernels' launchers run in sessions of their own: kill the whole tree
            kill_below(process.pid)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.seek(0)
        output = log.read().decode(errors="replace")
    return Watched(returncode, output, time.monotonic() - start, round(peak, 1))


def kernel_rss_mb(psutil, pid: int) -> list[float]:
    """The resident memory of every Jupyter kernel below ``pid``."""
    try:
        return [child.memory_info().rss / 2**20 for child in psutil.Process(pid).children(recursive=True)
                if "ipykernel" in " ".join(child.cmdline())]
    except psutil.Error:
        return []


def thread_env(threads: int | None) -> dict:
    """Environment that limits TensorFlow and oneDNN to ``threads`` threads (None: TensorFlow's default).

    The calibration measured the expected values with one thread too (helpers/expected.json), so the
    grades do not depend on this choice."""
    if not threads:
        return {}
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(threads)}


# --- bundles -----------------------------------------------------------------------------------------------

def pack(files: dict[str, Path]) -> bytes:
    """A gzipped tar of {name in the archive: regular file}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, path in files.items():
            tar.add(path, arcname=name, recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, target: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(target, filter="data")


def empty_gradebook(course: Path, target: Path) -> Path:
    """A copy of the course's gradebook with its assignments and notebooks but no students or submissions."""
    shutil.copy(course / "gradebook.db", target)
    with gradebook(target) as copy:
        for student in list(copy.students):
            copy.remove_student(student.id)
    with sqlite3.connect(target) as db:
        db.execute("VACUUM")
    return target


def job_bundle(course: Path, empty: Path, assignment: str, student: str) -> bytes:
    """What one job needs: the config, the empty gradebook, the assignment's data files (never the
    instructor's notebooks) and the student's files, without links or special files (the grader would read
    what they point to; ``CheckSubmittedFiles`` reports them in the course's own run)."""
    files = {"nbgrader_config.py": course / "nbgrader_config.py", "gradebook.db": empty}
    source, submitted = course / "source" / assignment, course / "submitted" / student / assignment
    for path in source.rglob("*"):
        if path.is_file() and path.suffix != ".ipynb" and ".ipynb_checkpoints" not in path.parts:
            files[f"source/{assignment}/{path.relative_to(source)}"] = path
    unsafe = {path for path, _ in unsafe_entries(submitted)}
    if submitted in unsafe:
        return pack(files)
    files[f"submitted/{student}/{assignment}"] = submitted  # the folder itself, even when empty
    for path in sorted(submitted.rglob("*")):
        if path not in unsafe and not unsafe & set(path.parents) and path.is_file():
            files[f"submitted/{student}/{assignment}/{path.relative_to(submitted)}"] = path
    return pack(files)


# --- the job a worker runs ------------------------------------------------------------------------------------

@dataclass
class JobResult:
    """What a worker sends back for one student."""

    student: str
    status: str  # "ok"; "timeout": stopped at the wall-time limit; "error": nbgrader could not finish
    reason: str = ""
    seconds: float = 0.0
    peak_kernel_mb: float = 0.0
    worker: str = ""  # the Dask worker's address
    worker_check: str = ""  # what that worker's verification measured (course.fingerprint)
    notebooks: dict[str, bytes] = field(default_factory=dict, repr=False)  # the executed notebooks by file name
    log: str = field(default="", repr=False)


def grade_one(bundle: bytes, assignment: str, student: str, threads: int | None, timeout: float,
              extra: tuple[str, ...] = ()) -> JobResult:
    """On a worker: plain ``nbgrader autograde`` of one student in a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
        root = Path(scratch)
        unpack(bundle, root)
        (root / "tmp").mkdir()  # the sandbox's private folders go here, and go away with the job
        env = nbgrader_env(TMPDIR=str(root / "tmp"), **thread_env(threads))
        run = run_watched([sys.executable, "-m", "nbgrader", "autograde", assignment, "--student", student,
                           *extra], root, env, timeout)
        result = JobResult(student, "ok", seconds=round(run.seconds, 1), peak_kernel_mb=run.peak_kernel_mb,
                           worker=worker_address(), log=run.output[-4000:])
        if run.returncode is None:
            result.status, result.reason = "timeout", f"grading stopped after the wall-time limit of {timeout:g} s"
        elif run.returncode != 0:
            result.status, result.reason = "error", _last_error(run.output)
        else:
            folder = root / "autograded" / student / assignment
            result.notebooks = {p.name: p.read_bytes() for p in folder.glob("*.ipynb")
                                if p.is_file() and not p.is_symlink()}
        return result


def worker_address() -> str:
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not on a Dask worker (a direct call)
        return ""


def _last_error(log: str) -> str:
    """The reason to show the instructor: the sandbox's own message if it stopped the kernel, else the last
    error line of nbgrader's log."""
    lines = log.splitlines()
    sandbox = [line.strip() for line in lines if line.startswith("course-sandbox:")]
    errors = [line.strip() for line in lines if "[ERROR]" in line or "Error" in line]
    return (sandbox or errors or ["nbgrader autograde failed"])[-1][:300]


# --- replaying the workers' outputs in the course: the single gradebook writer -------------------------------

def replay(course: Path, assignment: str, folder: Path, only: list[str] | None = None
           ) -> subprocess.CompletedProcess:
    """Write the gradebook, autograded/ and the scores: one ``nbgrader autograde --force`` that replays (for
    every student, or ``only`` this one)."""
    code = "import sys; from course.parallel import replay_main; sys.exit(replay_main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, assignment, str(folder), *(only or [])], cwd=course,
                          env=nbgrader_env(), capture_output=True, text=True)


def replay_main(argv: list[str]) -> int:
    """In the course folder: nbgrader's AutogradeApp with the course's preprocessors, Execute replaced."""
    from nbgrader.apps.autogradeapp import AutogradeApp
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    from course.preprocessors import ReplayExecution

    assignment, folder, *only = argv
    app = AutogradeApp()
    app.initialize([assignment, "--force", *(["--student", only[0]] if only else [])])
    configured = app.config.Autograde.get("autograde_preprocessors")  # the course's own list, if it has one
    preprocessors = configured or Autograde.class_traits()["autograde_preprocessors"].default()
    is_execute = [isinstance(p, type) and issubclass(p, Execute) for p in preprocessors]
    if not any(is_execute):
        raise CourseError("the course's Autograde.autograde_preprocessors has no Execute step to replay")
    config = Config()
    config.Autograde.autograde_preprocessors = [ReplayExecution if execute else p
                                                for p, execute in zip(preprocessors, is_execute)]
    config.ReplayExecution.folder = folder
    app.update_config(config)
    try:
        app.start()
    except SystemExit as stop:  # nbgrader's apps exit 1 when a submission failed
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


@contextmanager
def dask_client(workers: int, scheduler: str | None = None):
    """A Dask client: of the cluster at ``scheduler``, or of an embedded LocalCluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


_VERIFIED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # client -> {(address, threads): WorkerCheck}


def verified_workers(client, threads: int | None, record: dict | None = None, timeout: float = 600) -> dict:
    """Verify every worker of ``client`` not verified yet with these thread settings against ``record`` (default:
    the fingerprint of helpers/expected.json), one task pinned to each worker, all at once; print one line per
    worker checked now; return the workers that passed, by address. Raise ``CourseError`` when none did."""
    from distributed import wait

    from course.fingerprint import WorkerCheck, check_worker, recorded

    record = record or recorded()
    known = _VERIFIED.setdefault(client, {})
    names = {address: info.get("name") for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}
    new = [address for address in sorted(names) if (address, threads) not in known]
    if new:
        print(f"$ verify {len(new)} worker(s): versions and a fingerprint run against helpers/expected.json "
              f"(loss {record['loss']:.6f} +/- {record['tolerance']:g})", flush=True)
        start = time.monotonic()
        futures = {address: client.submit(check_worker, record, thread_env(threads), workers=[address],
                                          allow_other_workers=False, pure=False,
                                          key=f"verify-worker-{address}-{time.time_ns()}") for address in new}
        try:
            wait(list(futures.values()), timeout=timeout)
        except TimeoutError:
            pass  # the late ones fail below
        for address, future in futures.items():
            if not future.done():
                future.cancel()
                check = WorkerCheck(address, False, [f"the check did not finish within {timeout:g} s"])
            else:
                try:
                    check = future.result()
                except Exception as error:  # the worker died while checking
                    check = WorkerCheck(address, False, [f"the check crashed: {type(error).__name__}: {error}"[:300]])
            check.worker = address
            known[(address, threads)] = check
            name = names[address]
            named = isinstance(name, str) and name != address  # a cluster's own names; a LocalCluster's are 0, 1, ...
            print("  " + check.line(f"{address} ({name})" if named else address), flush=True)
        print(f"  {sum(known[(a, threads)].ok for a in new)} of {len(new)} worker(s) passed, in "
              f"{time.monotonic() - start:.0f} s", flush=True)
    passed = {address: known[(address, threads)] for address in sorted(names) if known[(address, threads)].ok}
    if not passed:
        raise CourseError(f"no grading worker passed the verification ({len(names)} checked; see the lines above): "
                          "install the pinned versions (pyproject.toml) and MNIST (`course fetch-mnist`) on the "
                          "workers, or re-measure the fingerprint with `course calibrate --fingerprint-only` if "
                          "the course's versions changed on purpose")
    return passed


@dataclass
class AssignmentRun:
    """One assignment graded on the cluster: every student's job, and how long the single writer took."""

    jobs: dict[str, JobResult]
    replay_seconds: float


def grade_assignment(course: Path, assignment: str, client, workers: int, threads: int | None,
                     timeout: float, extra: list[str] | None = None, only: list[str] | None = None) -> AssignmentRun:
    """Autograde every student of ``submitted/`` (or ``only`` these) for one assignment on the Dask client;
    write the course's gradebook and autograded/ through ``replay``."""
    checks = verified_workers(client, threads)
    with tempfile.TemporaryDirectory(prefix=f"parallel-{assignment}-") as scratch:
        executed = Path(scratch) / "executed"
        label = f"{assignment}: {len(checks)} worker{'s' * (len(checks) != 1)}"
        jobs = run_jobs(course, assignment, client, Path(scratch), label, threads=threads, timeout=timeout,
                        extra=tuple(extra or ()), only=only, checks=checks)
        for job in jobs.values():
            (executed / job.student).mkdir(parents=True)
            for name, data in job.notebooks.items():
                (executed / job.student / name).write_bytes(data)
        (executed / JOBS_FILE).write_text(json.dumps({s: {"status": j.status, "reason": j.reason}
                                                      for s, j in jobs.items()}))
        start = time.monotonic()
        done = replay(course, assignment, executed, only)
        seconds = round(time.monotonic() - start, 1)
    print(f"{assignment}: {len(jobs)} submissions written to the gradebook by one nbgrader process in "
          f"{seconds:.1f} s", flush=True)
    (course / "logs").mkdir(exist_ok=True)
    log = course / "logs" / f"autograde-{assignment}.log"
    save_costs(course, assignment, {s: {"status": j.status, "reason": j.reason, "seconds": j.seconds,
                                        "peak_kernel_mb": j.peak_kernel_mb, "worker": j.worker,
                                        "worker_check": j.worker_check}
                                    for s, j in jobs.items()}, only)  # for ``course report``
    log.write_text("".join(f"===== {s} ({j.status}, {j.seconds} s)\n{j.log}\n" for s, j in sorted(jobs.items()))
                   + "===== replay\n" + done.stdout + done.stderr)
    if done.returncode != 0:
        print(f"nbgrader autograde reported errors for {assignment}; see {log}", file=sys.stderr)
    return AssignmentRun(jobs, seconds)


def run_jobs(course: Path, assignment: str, client, scratch: Path, label: str, only: list[str] | None = None,
             checks: dict | None = None, **options) -> dict[str, JobResult]:
    """Submit one job per student (of ``submitted/``, or ``only`` these), collect the results as they finish,
    with progress; with ``checks`` (the verified workers, by address), only to those workers."""
    from distributed import as_completed

    empty = empty_gradebook(course, scratch / "gradebook.db")
    workers = sorted(checks) if checks is not None else None
    futures = {client.submit(grade_one, job_bundle(course, empty, assignment, s), assignment, s,
                             options["threads"], options["timeout"], options["extra"], pure=False, retries=1,
                             workers=workers, allow_other_workers=False,
                             key=f"autograde-{assignment}-{s}-{time.time_ns()}"): s
               for s in only or students(course, assignment)}
    progress, stop, jobs, gone = Progress(len(futures), label), threading.Event(), {}, threading.Event()
    threading.Thread(target=progress.tick, args=(stop,), daemon=True).start()
    if workers is not None:
        threading.Thread(target=cancel_without_workers, args=(client, list(futures), set(workers), stop, gone),
                         daemon=True).start()
    try:
        for future in as_completed(futures):
            student = futures[future]
            try:
                job = future.result()
            except Exception as error:  # the worker died (e.g. out of memory) twice
                reason = ("every verified grading worker left the cluster before this job ran" if gone.is_set()
                          else f"the grading worker failed: {type(error).__name__}: {error}")
                job = JobResult(student, "error", reason=reason[:300])
            if checks and job.worker in checks:
                job.worker_check = checks[job.worker].summary()
            jobs[student] = job
            note = "" if job.status == "ok" else f"  {job.status.upper()}: {job.reason}"
            progress.finished(f"{student:<20} {job.seconds:6.1f} s{note}")
    finally:
        stop.set()
    if progress.live:
        print(flush=True)
    return jobs



def cancel_without_workers(client, futures: list, allowed: set[str], stop: threading.Event, gone: threading.Event,
                           every: float = 5.0) -> None:
    """Jobs pinned to the verified workers would wait forever once all of them have left the cluster (a restarted
    worker comes back under a new, unverified address): then cancel the jobs not done and set ``gone``."""
    while not stop.wait(every):
        try:
            alive = set(client.scheduler_info(n_workers=-1)["workers"])
        except Exception:  # the scheduler is busy or going away: look again later
            continue
        if not alive & allowed:
            gone.set()
            client.cancel([future for future in futures if not future.done()])
            return
