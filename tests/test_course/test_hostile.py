"""Students who attack the grading machine itself (README "Threat model"), graded as root and as an ordinary
instructor account, serially and on 2 Dask workers, in the tiny assignment (no TensorFlow). Each attack
must end within its limits with a fair score, a neighbour's score must be exactly as when graded alone,
and nothing may be written, killed or read outside the sandbox: every marker file an attack tries to
create on the host is looked for afterwards."""

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import COURSE
from tiny import SOLVED, account, give, grade, gradebook_rows, tiny_course

from course.runner import unsafe_entries
from helpers.data import is_valid

pytestmark = pytest.mark.slow

MARK = "ESCAPED-"  # every file an attack tries to write outside its folder starts with this (and a run's token)

PROC_WRITE = """import os

written = []
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
    for via in ("root/tmp", "root/root", "root", "cwd", "cwd/..", "cwd/../../.."):
        path = f"/proc/{pid}/{via}/ESCAPED-proc-{pid}"
        try:
            with open(path, "w") as f:
                f.write("escaped")
            written.append(path)
        except OSError:
            pass
print("processes seen:", len([p for p in os.listdir("/proc") if p.isdigit()]), "written:", written)
"""
REMOUNT = """import os
import subprocess

for command in (["mount", "-o", "remount,rw", "/"], ["mount", "-o", "remount,rw,bind", "/", "/"],
                ["mount", "-t", "tmpfs", "none", "/tmp"], ["unshare", "-m", "true"]):
    done = subprocess.run(command, capture_output=True, text=True)
    print(" ".join(command), "->", done.returncode)
for path in ("/ESCAPED-remount", "/etc/ESCAPED-remount", "/usr/ESCAPED-remount"):
    try:
        open(path, "w").write("escaped")
        print("wrote", path)
    except OSError as error:
        print("could not write", path, type(error).__name__)
"""
MKNOD = """import os
import stat

for name, major, minor in (("ESCAPED-disk", 8, 0), ("ESCAPED-nvme", 259, 0), ("ESCAPED-mem", 1, 1)):
    try:
        os.mknod(name, 0o600 | stat.S_IFBLK, os.makedev(major, minor))
        with open(name, "rb") as device:
            print("read", len(device.read(512)), "bytes of", name)
    except OSError as error:
        print("mknod", name, type(error).__name__)
"""
SNOOP = """import os

for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
    for what in ("environ", "cmdline"):
        try:
            text = open(f"/proc/{pid}/{what}", "rb").read().replace(b"\\0", b" ").decode(errors="replace")
            print("SNOOP", pid, what, text[:300])
        except OSError as error:
            print("SNOOP", pid, what, type(error).__name__)
"""
KILL = """import os
import signal

for pid in sorted((int(p) for p in os.listdir("/proc") if p.isdigit()), reverse=True):
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
            print("killed", pid)
        except OSError as error:
            print("could not kill", pid, type(error).__name__)
os.kill(-1, signal.SIGKILL)
"""
PTRACE = """import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
    attached = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    print("ptrace", pid, attached, os.strerror(ctypes.get_errno()))
"""
FORK_BOMB = """import subprocess
import threading
import time

children = []
try:
    while len(children) < 100000:
        children.append(subprocess.Popen(["sleep", "3600"]))
except OSError as error:
    print("processes stopped after", len(children), type(error).__name__)
for child in children:
    child.kill()
    child.wait()
threads = 0
try:
    while threads < 100000:
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
        threads += 1
except RuntimeError as error:
    print("threads stopped after", threads, error)
"""
FILL_TMP = """written = 0
try:
    while written < 100000:
        with open(f"/tmp/fill-{written}", "wb") as f:
            f.write(b"x" * 2**20)
        written += 1
except OSError as error:
    print("tmp full after", written, "MB:", type(error).__name__)
"""
FILL_INODES = """files = 0
while files < 10**8:  # empty files cost no space, only the host's memory: the watchdog stops the kernel
    open(f"/tmp/empty-{files}", "w").close()
    files += 1
"""
KERNEL_LINKS = """import os

# links in its own (writable) folder that the grader, as root, would follow after the kernel has run
os.remove("tiny.ipynb")
os.symlink("/etc/ESCAPED-notebook-target", "tiny.ipynb")
os.symlink("/etc/shadow", "leak-shadow.txt")
os.symlink("/", "root-folder")
answer = 42
"""

KERNEL_TRICKS = """import os
import shutil
import sys

# a setuid copy of Python (a root grader's kernel is host uid 0), a folder tree too deep for recursive walks,
# and a folder closed to its owner, all in its own folder; then the right answer
home = os.getcwd()
shutil.copy(os.path.realpath(sys.executable), "ESCAPED-setuid-python")
os.chmod("ESCAPED-setuid-python", 0o4755)
path = "deep"
for _ in range(1500):
    os.mkdir(path)
    os.chdir(path)
    path = "d"
os.chdir(home)
os.mkdir("closed")
open("closed/x", "w").close()
os.chmod("closed", 0o300)
answer = 42
"""

ATTACKS = {"proc_write": PROC_WRITE, "remount": REMOUNT, "mknod": MKNOD, "snoop": SNOOP, "kill": KILL,
           "ptrace": PTRACE, "fork_bomb": FORK_BOMB, "fill_tmp": FILL_TMP, "fill_inodes": FILL_INODES,
           "kernel_links": KERNEL_LINKS, "kernel_tricks": KERNEL_TRICKS}
# A fair instructor's grade: attack code is no answer (0); the one that also answers is screened for nothing
# it may not do, so it keeps its points; a kernel that killed itself has nothing to grade.
SCORES = {name: {"test_value": 0, "test_type": 0} for name in ATTACKS}
SCORES["kernel_links"] = SCORES["kernel_tricks"] = {"test_value": 2, "test_type": 1}
SCORES["neighbour"] = SCORES["submitted_links"] = {"test_value": 2, "test_type": 1}


def link_submission(course: Path) -> None:
    """A correct notebook handed in with links to what it must never reach: the gradebook, source/,
    another student's notebook, /etc/shadow, and a hard link to the gradebook."""
    folder = course / "submitted" / "submitted_links" / "tiny"
    shutil.copytree(course / "submitted" / "neighbour" / "tiny", folder)
    for name, target in {"gradebook.txt": course / "gradebook.db", "source": course / "source",
                         "other.ipynb": course / "submitted" / "neighbour" / "tiny" / "tiny.ipynb",
                         "shadow.txt": Path("/etc/shadow")}.items():
        (folder / name).symlink_to(target)
    os.link(course / "gradebook.db", folder / "hardlink-gradebook.db")


def grader_account(mnist: Path) -> str | None:
    """An ordinary account to grade as, when the tests run as root (created once; None if not root). It must
    be able to run the course's Python: where a folder above it is closed to other accounts (pyenv under a
    0700 /root), others are given the right to pass through it (o+x, not to list it), as an instructor's
    machine would have it; the account's Keras cache gets ``mnist`` (a verified MNIST)."""
    if os.geteuid() != 0:
        return None
    name = "coursegrader"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    for place in (Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), COURSE):
        for folder in reversed(place.parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                print(f"letting other accounts pass through {folder} (o+x) to run the course's Python")
                folder.chmod(folder.stat().st_mode | stat.S_IXOTH)
    subprocess.run([sys.executable, "-c", "import course.cli"], check=True, cwd="/", **account(name))
    # MNIST in the account's Keras cache, as `course fetch-mnist` leaves it on an instructor's machine: each
    # grading worker checks it before it takes jobs (course.fingerprint)
    account_home = Path(pwd.getpwnam(name).pw_dir)
    datasets = account_home / ".keras" / "datasets"
    if not is_valid(datasets / "mnist.npz"):
        datasets.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mnist, datasets / "mnist.npz")
        for path in (account_home / ".keras", datasets, datasets / "mnist.npz"):
            os.chown(path, pwd.getpwnam(name).pw_uid, pwd.getpwnam(name).pw_gid)
    return name


def markers_outside(mark: str, courses: list[Path]) -> list[str]:
    """Every ``mark``* file on this machine except in the attackers' own folders (inside their sandbox)."""
    done = subprocess.run(["find", "/", "(", "-path", "/proc", "-o", "-path", "/sys", "-o", "-path", "/dev", ")",
                           "-prune", "-o", "-name", f"{mark}*", "-print"], capture_output=True, text=True)
    own = tuple(f"{course / kind}/" for course in courses for kind in ("autograded", "feedback"))
    return [line for line in done.stdout.splitlines() if not line.startswith(own)]


@pytest.fixture(scope="module", params=["root", "instructor"])
def graded(request, tmp_path_factory, real_mnist):
    """The hostile tiny class graded serially and on 2 workers, as root or as an ordinary account; a canary
    process of the grader's account runs throughout."""
    user = None if request.param == "root" else grader_account(real_mnist)
    if request.param == "instructor" and user is None:
        pytest.skip("already an ordinary account: the root run covers the other case")
    root = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if user:  # a folder the account can reach (pytest's own is 0700 root)
        root = Path(tempfile.mkdtemp(prefix="hostile-instructor-", dir="/tmp"))
        root.chmod(0o755)
    runs, mark = {}, f"{MARK}{request.param}-{time.time_ns()}-"
    attacks = {name: code.replace(MARK, mark) for name, code in ATTACKS.items()}
    for mode in ("serial", "parallel"):
        course = tiny_course(root / mode, {"neighbour": SOLVED, **attacks})
        link_submission(course)
        give(course, user)
        canary = subprocess.Popen(["sleep", "600"], **account(user))
        try:
            done = grade(course, "--serial" if mode == "serial" else "--workers=2", user=user,
                         COURSE_SANDBOX_TMP_FILES="20000")  # reached well inside the 5 s cell timeout
            alive = canary.poll() is None
        finally:
            canary.kill()
        runs[mode] = {"course": course, "output": done.stdout + done.stderr, "canary_alive": alive}
    alone = tiny_course(root / "alone", {"neighbour": SOLVED}, owner=user)
    grade(alone, "--serial", user=user)
    return {"runs": runs, "alone": gradebook_rows(alone),
            "markers": markers_outside(mark, [run["course"] for run in runs.values()])}


def scores(course: Path) -> dict:
    return {key: value[0] for key, value in gradebook_rows(course).items() if key[1] != "timestamp"}


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_every_attacker_gets_a_fair_score(graded, mode):
    expected = {(student, test): score for student, tests in SCORES.items() for test, score in tests.items()}
    assert scores(graded["runs"][mode]["course"]) == expected


def test_nothing_is_written_outside_the_sandbox(graded):
    assert graded["markers"] == []


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_the_graders_processes_survive(graded, mode):
    assert graded["runs"][mode]["canary_alive"]


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_the_neighbour_scores_as_when_graded_alone(graded, mode):
    rows = gradebook_rows(graded["runs"][mode]["course"])
    assert {k: v[0] for k, v in rows.items() if k[0] == "neighbour" and k[1] != "timestamp"} == {
        k: v[0] for k, v in graded["alone"].items() if k[1] != "timestamp"}


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_the_course_and_the_gradebook_are_untouched(graded, mode):
    course = graded["runs"][mode]["course"]
    assert (course / "nbgrader_config.py").exists() and (course / "source" / "tiny" / "tiny.ipynb").exists()
    assert (course / "submitted" / "neighbour" / "tiny" / "tiny.ipynb").read_text().startswith("{")
    assert not list(Path("/etc").glob(f"{MARK}*"))


def outputs(graded, mode: str, student: str) -> str:
    import nbformat

    path = graded["runs"][mode]["course"] / "autograded" / student / "tiny" / "tiny.ipynb"
    answer = nbformat.read(path, as_version=4).cells[1]  # what the attack printed
    return "".join(o.get("text", "") + o.get("evalue", "") for o in answer.get("outputs", []))


def test_the_kernel_sees_only_its_own_processes_and_no_privilege(graded):
    printed = outputs(graded, "serial", "snoop")
    assert "nbgrader" not in printed and "dask" not in printed and "course.cli" not in printed
    assert "processes seen: " in outputs(graded, "serial", "proc_write")
    traced = [int(line.split()[1]) for line in outputs(graded, "serial", "ptrace").splitlines()]
    assert traced and max(traced) < 10  # bwrap's init in its own PID namespace, nothing of the host
    assert "read " not in outputs(graded, "serial", "mknod")
    remount = outputs(graded, "serial", "remount")
    assert "-> 0" not in remount.replace("unshare -m true -> 0", "") and "wrote" not in remount


def test_a_fork_bomb_and_a_full_tmp_are_stopped_at_their_limits(graded):
    assert "processes stopped after" in outputs(graded, "serial", "fork_bomb")
    assert "tmp full after" in outputs(graded, "serial", "fill_tmp")
    for run in graded["runs"].values():
        assert "files in /tmp, more than its limit of 20000" in run["output"]


def test_links_never_reach_outside_the_submission(graded):
    for mode in ("serial", "parallel"):
        course = graded["runs"][mode]["course"]
        for kind in ("autograded", "feedback"):
            folder = course / kind / "submitted_links" / "tiny"
            left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
            assert not {"gradebook.txt", "source", "other.ipynb", "shadow.txt", "hardlink-gradebook.db"} & set(left)
            kernel = course / kind / "kernel_links" / "tiny"
            assert not any(p.is_symlink() for p in kernel.iterdir()), kind
            tricks = course / kind / "kernel_tricks" / "tiny"
            assert unsafe_entries(tricks) == [], kind  # "closed" stays only where the grader can list it: root
        kept = course / "quarantine" / "submitted_links" / "tiny"  # moved aside, never lost
        assert sorted(p.name for p in kept.iterdir()) == [
            "gradebook.txt", "hardlink-gradebook.db", "other.ipynb", "shadow.txt", "source"]
        table = graded["runs"][mode]["output"].split("failed tests")[-1]
        row = next(line for line in table.splitlines() if line.startswith("submitted_links "))
        assert "moved to quarantine/, not graded: " in row and "gradebook.txt is a symbolic link to" in row
        assert "hardlink-gradebook.db is a hard link" in row
