"""The grading sandbox: a Jupyter kernel that runs inside bubblewrap with resource limits.

nbgrader runs the student's code in a Jupyter kernel with the grader's rights. The course's
``nbgrader_config.py`` makes every autograde and Validate kernel the ``course-sandbox`` kernel spec
(``course install-sandbox`` writes it into this Python environment), whose command is this module:

    python -m course.sandbox {connection_file}

It starts the ordinary ``ipykernel`` under ``bwrap`` (Debian's ``bubblewrap``):

* **no network**: a new network namespace that has only its own loopback;
* **files**: the whole system read-only; the kernel's working folder (the submission's own folder)
  writable; ``/tmp`` and ``$HOME`` private and empty (except Keras' MNIST cache and matplotlib's font
  cache, read-only); the course folder (the nearest folder with ``nbgrader_config.py``: ``source/``,
  ``gradebook.db``, ``release/``, other students' folders) replaced by an empty folder, with only the
  Python environment and ``helpers/`` (what the notebooks import, nothing of the instructor's ``course``
  package) visible in it;
* **limits**: resident memory ``COURSE_SANDBOX_MEMORY_MB`` (default 6144; a watchdog stops the kernel
  when it passes, and an address-space limit 8 GiB above it is the backstop); with ``setrlimit``, inherited
  by the kernel: CPU time ``COURSE_SANDBOX_CPU_SECONDS`` (default 3600) and the size of any file written
  ``COURSE_SANDBOX_FILE_MB`` (default 512). Wall time is nbgrader's ``Execute.timeout`` per cell and
  ``course grade --timeout`` per submission.

The kernel's network namespace cannot reach the TCP ports the Jupyter client chose, so this process
stays outside, listens on those ports itself and relays each connection, byte for byte, to the kernel's
ZeroMQ sockets, which listen on Unix sockets in a private folder bound into the sandbox (ZeroMQ speaks
the same protocol over both). Interrupts travel as messages (``interrupt_mode: message``).

``COURSE_SANDBOX=off`` in the grader's environment starts the kernel without the sandbox, with a loud
warning; a missing ``bwrap`` is an error that says how to install it.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import helpers

KERNEL_NAME = "course-sandbox"
CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def enabled() -> bool:
    """False when the grader's environment says ``COURSE_SANDBOX=off`` (or 0/no/false)."""
    return os.environ.get("COURSE_SANDBOX", "on").lower() not in ("off", "0", "no", "false")


def limits() -> dict[str, int]:
    return {"memory_mb": int(os.environ.get("COURSE_SANDBOX_MEMORY_MB", 6144)),
            "cpu_seconds": int(os.environ.get("COURSE_SANDBOX_CPU_SECONDS", 3600)),
            "file_mb": int(os.environ.get("COURSE_SANDBOX_FILE_MB", 512))}


# Address space is only the backstop: TensorFlow alone maps ~3.5 GB, and an allocation that fails in one of
# its threads (rather than in the student's numpy call) aborts the kernel at a random point. The memory
# limit proper is the watchdog in ``serve``, which stops the kernel when its resident memory passes it.
ADDRESS_SPACE_MARGIN_MB = 8192


def set_limits() -> None:
    """Runs in the child before exec: the limits hold for bwrap and everything it starts."""
    limit = limits()
    resource.setrlimit(resource.RLIMIT_AS, ((limit["memory_mb"] + ADDRESS_SPACE_MARGIN_MB) * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (limit["cpu_seconds"], limit["cpu_seconds"] + 10))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit["file_mb"] * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def course_root(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` that holds an nbgrader course (``nbgrader_config.py``)."""
    for candidate in (folder, *folder.parents):
        if (candidate / "nbgrader_config.py").exists():
            return candidate
    return None


def bwrap_command(work: Path, private: Path, home: Path, kernel_argv: list[str]) -> list[str]:
    """The bwrap command line. ``work``: the kernel's writable folder; ``private``: the folder with the
    kernel's connection file and sockets; ``home``: the kernel's (private, writable) home."""
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    hidden = {Path("/tmp"), Path.home().resolve()}
    root = course_root(work)
    if root is not None and root not in (Path("/"), work):
        hidden.add(root)
    hidden = sorted(h for h in hidden if h not in (Path("/"), work))
    for folder in hidden:  # parents before children
        args += ["--tmpfs", str(folder)]
    python = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}  # a venv and the Python it links to
    for keep in sorted(python | {Path(helpers.__file__).resolve().parent}):
        if any(h in keep.parents for h in hidden):  # the Python environment and helpers/ stay readable
            args += ["--ro-bind", str(keep), str(keep)]
    args += ["--bind", str(private), str(private)]  # holds the kernel's home, connection file and sockets
    datasets = keras_home / "datasets"
    if datasets.is_dir():
        args += ["--ro-bind", str(datasets), str(home / ".keras" / "datasets")]
    args += ["--bind", str(work), str(work),
             "--setenv", "HOME", str(home), "--setenv", "TMPDIR", "/tmp", "--unsetenv", "KERAS_HOME",
             "--setenv", "MPLCONFIGDIR", str(home / ".config" / "matplotlib"),
             "--chdir", str(work), "--", *kernel_argv]
    return args


def prepare_home(home: Path) -> None:
    """A fresh home with a copy of matplotlib's font cache (else every kernel rebuilds it)."""
    (home / ".keras" / "datasets").mkdir(parents=True)
    (home / ".config" / "matplotlib").mkdir(parents=True)
    cache = Path(os.environ.get("MPLCONFIGDIR", Path.home() / ".cache" / "matplotlib"))
    for font_list in cache.glob("fontlist-*.json"):
        shutil.copy(font_list, home / ".config" / "matplotlib")


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(connection: dict, socket_prefix: str, command: list[str]) -> int:
    """Listen on the client's TCP ports, relay to the kernel's Unix sockets, run the kernel, return its code."""

    async def connect(port: int, reader, writer):
        path = f"{socket_prefix}-{port}"
        try:
            for _ in range(600):  # the kernel may still be starting (TensorFlow imports take seconds)
                try:
                    kernel_reader, kernel_writer = await asyncio.open_unix_connection(path)
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            else:
                writer.close()
                return
            await asyncio.gather(relay(reader, kernel_writer), relay(kernel_reader, writer))
        except asyncio.CancelledError:  # the kernel has exited and the relay is shutting down
            writer.close()

    servers = []
    for channel in CHANNELS:
        port = connection[channel]
        servers.append(await asyncio.start_server(lambda r, w, p=port: connect(p, r, w), connection["ip"], port))
    process = await asyncio.create_subprocess_exec(*command, preexec_fn=set_limits)
    # Jupyter stops a kernel with SIGTERM when it does not answer a shutdown request: stop everything in the
    # sandbox, then return normally, so that the private folder is removed
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop_all, process.pid)
    watchdog = asyncio.create_task(watch_memory(process.pid, limits()["memory_mb"]))
    code = await process.wait()
    watchdog.cancel()
    for server in servers:
        server.close()
    return code


async def watch_memory(pid: int, limit_mb: int) -> None:
    """Stop the kernel (every process under bwrap) when their resident memory together passes the limit."""
    import psutil

    try:
        sandbox = psutil.Process(pid)
        while True:
            await asyncio.sleep(0.2)
            try:
                processes = sandbox.children(recursive=True)
                used = sum(p.memory_info().rss for p in processes) / 2**20
            except psutil.Error:
                continue
            if used > limit_mb:
                print(f"course-sandbox: the kernel used {used:.0f} MB, more than its limit of {limit_mb} MB "
                      "(COURSE_SANDBOX_MEMORY_MB), and was stopped", file=sys.stderr, flush=True)
                stop_all(pid)
                return
    except (psutil.Error, asyncio.CancelledError):
        return


def stop_all(pid: int) -> None:
    """Kill bwrap's children (the kernel and whatever it started); bwrap then exits."""
    import psutil

    try:
        processes = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass


def main(argv: list[str]) -> int:
    connection_file = Path(argv[0])
    kernel = [sys.executable, "-m", "ipykernel_launcher"]
    if not enabled():
        print("WARNING: COURSE_SANDBOX=off: this kernel runs WITHOUT the grading sandbox "
              "(network, files and memory unrestricted)", file=sys.stderr, flush=True)
        os.execv(sys.executable, [*kernel, "-f", str(connection_file)])
    if shutil.which("bwrap") is None:
        print("error: the course-sandbox kernel needs bubblewrap: `apt-get install -y bubblewrap` "
              "(or set COURSE_SANDBOX=off to grade without a sandbox, unsafe)", file=sys.stderr, flush=True)
        return 1
    connection = json.loads(connection_file.read_text())
    if connection.get("transport", "tcp") != "tcp":
        print("error: the course-sandbox kernel relays TCP connections only", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="sandbox-") as private:
        private = Path(private)
        home = private / "home"
        prepare_home(home)
        inside = dict(connection, transport="ipc", ip=str(private / "kernel"))
        (private / "kernel.json").write_text(json.dumps(inside))
        command = bwrap_command(Path.cwd().resolve(), private, home,
                                [*kernel, "-f", str(private / "kernel.json"), *argv[1:]])
        return asyncio.run(serve(connection, str(private / "kernel"), command))


def install() -> Path:
    """Write the ``course-sandbox`` kernel spec into this Python environment (sys.prefix)."""
    folder = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "course.sandbox", "{connection_file}"],
            "display_name": "Python 3 (course sandbox)", "language": "python", "interrupt_mode": "message",
            "metadata": {"debugger": False}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    return folder


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
