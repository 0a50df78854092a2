"""The course-sandbox kernel (course.sandbox): what student code inside it can and cannot do.

Runs a small notebook (no TensorFlow) through nbclient with the kernel spec that nbgrader_config.py makes
nbgrader use, in a scratch course laid out like the real one.
"""

import json
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from course.runner import nbgrader_env
from course.sandbox import KERNEL_NAME, install

PROBES = {
    "cwd": "import os\nprint(os.getcwd())",
    "write_own": "open('mine.txt', 'w').write('ok')\nprint(open('mine.txt').read())",
    "course_root": "print(sorted(os.listdir('../../..')))",
    "gradebook": "print(os.path.exists('../../../gradebook.db'), os.path.exists('../../../source'))",
    "other_student": "print(os.path.exists('../../other'))",
    "write_etc": "try:\n    open('/etc/sandbox-probe', 'w')\nexcept OSError as error:\n    print(type(error).__name__)",
    "network": "import socket\ntry:\n    socket.create_connection(('pypi.org', 443), timeout=3)\n"
               "    print('connected')\nexcept OSError as error:\n    print(type(error).__name__)",
    "loopback_host": "try:\n    socket.create_connection(('127.0.0.1', PORT), timeout=3)\n    print('connected')\n"
                     "except OSError as error:\n    print(type(error).__name__)",
    "mnist": "import helpers\nprint(os.path.exists(os.path.expanduser('~/.keras/datasets/mnist.npz')))",
    "identity": "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
                "print(status['Uid'].split()[0], status['CapEff'].strip(), status['NoNewPrivs'].strip())",
    "processes": "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit())[:3])",
    "instructor_package": "try:\n    from course import runner\n    print('importable', runner.__file__)\n"
                          "except ImportError:\n    print('hidden')",
    "installed_course": "print(os.path.exists(os.path.join(os.path.dirname(helpers.__file__), '..', 'source')))",
    "sysctl": "try:\n    open('/proc/sys/kernel/core_pattern', 'w')\nexcept OSError as error:\n"
              "    print(type(error).__name__)",
    "environment": "print(sorted(k for k in os.environ if 'SECRET' in k or k == 'JUPYTER_TOKEN'))",
    "interrupt": "import time\ntime.sleep(600)",
    "after": "print('still alive')",
}


@pytest.fixture(scope="module")
def probed(tmp_path_factory, real_mnist):
    import socket

    install()
    course = tmp_path_factory.mktemp("sandbox") / "course"
    work = course / "autograded" / "someone" / "batchnorm"
    work.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("# a course\n")
    (course / "gradebook.db").write_text("secret")
    (course / "source").mkdir()
    (course / "autograded" / "other").mkdir()
    listener = socket.create_server(("127.0.0.1", 0))  # a service on the host's loopback, like Jupyter
    sources = {k: v.replace("PORT", str(listener.getsockname()[1])) for k, v in PROBES.items()}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources.values()])
    env = nbgrader_env(COURSE_TEST_SECRET="do not leak", JUPYTER_TOKEN="do not leak")
    NotebookClient(nb, timeout=20, kernel_name=KERNEL_NAME, allow_errors=True, interrupt_on_timeout=True,
                   resources={"metadata": {"path": str(work)}}).execute(env=env)
    listener.close()
    outputs = {}
    for name, cell in zip(PROBES, nb.cells):
        outputs[name] = "".join(o.get("text", "") if o.output_type == "stream" else f"{o.get('ename')}\n"
                                for o in cell.outputs if o.output_type in ("stream", "error")).strip()
    return {"outputs": outputs, "course": course, "work": work}


def test_kernel_runs_in_the_submission_folder_and_can_write_there(probed):
    assert probed["outputs"]["cwd"] == str(probed["work"])
    assert probed["outputs"]["write_own"] == "ok" and (probed["work"] / "mine.txt").read_text() == "ok"


def test_course_files_and_other_students_are_invisible(probed):
    assert probed["outputs"]["course_root"] == "['autograded']"
    assert probed["outputs"]["gradebook"] == "False False"
    assert probed["outputs"]["other_student"] == "False"
    assert (probed["course"] / "gradebook.db").read_text() == "secret"


def test_system_is_read_only_and_there_is_no_network(probed):
    assert probed["outputs"]["write_etc"] == "OSError"
    assert probed["outputs"]["network"] in ("gaierror", "OSError")
    assert probed["outputs"]["loopback_host"] == "ConnectionRefusedError"


def test_the_kernel_has_no_privilege_and_sees_only_its_own_processes(probed):
    assert probed["outputs"]["identity"] == "65534 0000000000000000 1"
    assert probed["outputs"]["processes"] == "[1, 2]"  # bwrap's init and the kernel, nothing of the host
    assert probed["outputs"]["sysctl"] in ("OSError", "PermissionError")


def test_the_instructors_package_and_the_installed_course_are_hidden(probed):
    """The kernel imports helpers from the course it is installed from; that course's source/ stays hidden."""
    assert probed["outputs"]["instructor_package"] == "hidden"
    assert probed["outputs"]["installed_course"] == "False"


def test_the_graders_secrets_stay_outside(probed):
    assert probed["outputs"]["environment"] == "[]"


def test_mnist_is_readable(probed):
    assert probed["outputs"]["mnist"] == "True"


def test_a_kernel_past_its_memory_limit_is_stopped(tmp_path):
    """1 GB after 1 GB: the watchdog stops the kernel at the limit (here 2 GB), not the machine's OOM killer."""
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import numpy\nhog = []\nwhile True:\n    hog.append(numpy.ones(2**27))")])
    env = dict(nbgrader_env(), COURSE_SANDBOX_MEMORY_MB="2048")
    with pytest.raises(DeadKernelError):
        NotebookClient(nb, timeout=120, kernel_name=KERNEL_NAME, resources={"metadata": {"path": str(tmp_path)}},
                       ).execute(env=env)


def test_a_cell_past_its_timeout_is_interrupted_and_the_kernel_goes_on(probed):
    assert probed["outputs"]["interrupt"] == "KeyboardInterrupt"
    assert probed["outputs"]["after"] == "still alive"


def test_kernel_spec_points_at_the_sandbox():
    spec = json.loads((install() / "kernel.json").read_text())
    assert spec["argv"][1:] == ["-m", "course.sandbox", "{connection_file}"]
    assert spec["interrupt_mode"] == "message"


def test_missing_bwrap_is_a_clear_error(monkeypatch, tmp_path, capsys):
    from course import sandbox

    monkeypatch.setattr(shutil, "which", lambda name: None)
    (tmp_path / "kernel.json").write_text("{}")
    assert sandbox.main([str(tmp_path / "kernel.json")]) == 1
    assert "apt-get install -y bubblewrap" in capsys.readouterr().err
