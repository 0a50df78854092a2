"""The course in a real browser: JupyterLab for students (Run All, Validate) and formgrader for instructors.

Debian's Chromium driven by Playwright (no browser download), headless, against a JupyterLab server
this test starts on 127.0.0.1 with a token. Screenshots of every step go to test-artifacts/browser/.
"""

import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import COURSE
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sample_class import CLASS

from course.runner import nbgrader_env
from course.variants import solution_text

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = COURSE / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
KERNEL_IDLE = """() => {
    const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return indicator !== null && indicator.dataset.status === 'idle';
}"""
RUN_TIMEOUT = 420_000  # ms: a Run-All or a Validate of one notebook, with margin for a slow CI machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(graded_course):
    """JupyterLab serving the graded sample course, as `make lab` starts it."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"!!! Chromium is not installed ({CHROMIUM}): the browser test did NOT run. "
                    "Install it with `apt-get install -y chromium` (.ci/run does).")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    token, port = secrets.token_hex(16), free_port()
    settings = ARTIFACTS / "lab-settings"
    # Render every cell (no windowing), so that a cell far down the notebook can be clicked; no news feed.
    for plugin, values in {"notebook-extension/tracker": '{"windowingMode": "none"}',
                           "apputils-extension/notification": '{"fetchNews": "false"}'}.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(values)
    log = open(ARTIFACTS / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={graded_course}",
         f"--LabServerApp.user_settings_dir={settings}", f"--LabServerApp.workspaces_dir={settings / 'workspaces'}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=graded_course, env=nbgrader_env(), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start; see {ARTIFACTS / 'jupyterlab.log'}") from None
            time.sleep(0.5)
    yield {"base": base, "token": token, "root": graded_course}
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, lab, request):
    """A fresh browser tab per test (one notebook open at a time); its kernels are shut down afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        shot(page, f"FAILED-{request.node.name}")
    context.close()
    headers = {"Authorization": f"token {lab['token']}"}
    with urllib.request.urlopen(urllib.request.Request(f"{lab['base']}/api/kernels", headers=headers)) as answer:
        for kernel in json.load(answer):
            urllib.request.urlopen(urllib.request.Request(f"{lab['base']}/api/kernels/{kernel['id']}",
                                                          headers=headers, method="DELETE"))


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def open_student_copy(page, lab, student: str, assignment: str):
    """A scratch copy of release/<assignment>/ for one student, opened in JupyterLab."""
    folder = lab["root"] / "students" / student / assignment
    shutil.copytree(COURSE / "release" / assignment, folder)
    page.goto(f"{lab['base']}/lab/tree/students/{student}/{assignment}/{assignment}.ipynb"
              f"?reset&token={lab['token']}")  # reset: a fresh workspace, no tabs from earlier tests
    page.locator(".validate-button").wait_for(timeout=120_000)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)


def type_answers(page, assignment: str) -> None:
    """Replace each answer cell's text with the solution, typed into the editor as a student would."""
    source = nbformat.read(COURSE / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    for index, cell in enumerate(source.cells):
        if cell.metadata.get("nbgrader", {}).get("solution"):
            editor = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
            editor.click()
            page.keyboard.press("Control+A")
            page.keyboard.insert_text(solution_text(cell.source))
            page.keyboard.press("Escape")


STARTED = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                 .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""


def run_all(page) -> None:
    """Run → Run All Cells, as a student would, then wait until every queued cell has finished.

    A click on a menu that JupyterLab has not finished wiring up is occasionally lost (seen once in CI on
    a slow machine): if no cell has started 20 s after the click, the student would click again, and so do we.
    """
    for attempt in range(3):
        page.locator(".jp-Notebook .jp-Cell").first.click()  # the notebook must be the current widget
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        # the menu item is disabled until JupyterLab knows which notebook is current
        page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(STARTED, timeout=20_000)
            break
        except PlaywrightTimeout:
            shot(page, f"run-all-click-lost-{attempt}")
            page.keyboard.press("Escape")  # close the menu if it is still open
    else:
        raise AssertionError("Run All Cells started no cell after three clicks; see the run-all-click-lost screenshots")
    page.wait_for_function(f"""() => ({KERNEL_IDLE})()
        && ![...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(p => p.textContent.includes('*'))""",
                           timeout=RUN_TIMEOUT)


def validate(page) -> str:
    """Press nbgrader's Validate button; return the result's class (validation-success / -failed / ...)."""
    page.locator(".validate-button").click()
    message = page.locator("#validation-message")
    message.wait_for(timeout=RUN_TIMEOUT)
    return message.get_attribute("class")


def close_dialog(page) -> None:
    page.locator(".jp-Dialog button", has_text="OK").first.click()


CASES = {
    "batchnorm": {"graded": "[2] 0.08 0.97", "figures": 3},
    # the class-sorted run's last loss moves in the 3rd decimal with the thread count (2.0157 / 2.0162 measured;
    # tolerance +/-0.054): the line is the two losses, the first near 2.02, the second near 0.05
    "shuffle": {"graded": re.compile(r"^(1\.9[7-9]|2\.0[0-6])\d* 0\.0[3-7]\d*$", re.M), "figures": 1},
}


@pytest.mark.parametrize("assignment", ["batchnorm", "shuffle"])
def test_student_reference_answer_runs_and_validates(page, lab, assignment):
    open_student_copy(page, lab, "browser_reference", assignment)
    type_answers(page, assignment)
    shot(page, f"{assignment}-1-answer-typed")
    run_all(page)
    graded = page.locator(".jp-OutputArea-output", has_text=CASES[assignment]["graded"])
    graded.first.scroll_into_view_if_needed()
    shot(page, f"{assignment}-2-graded-line")
    assert graded.count() >= 1
    figures = page.locator(".jp-OutputArea-output img")
    assert figures.count() >= CASES[assignment]["figures"]
    figures.last.scroll_into_view_if_needed()
    shot(page, f"{assignment}-3-figures")
    assert page.locator(".jp-OutputArea-output.jp-OutputArea-executeResult, .jp-RenderedText[data-mime-type="
                        "'application/vnd.jupyter.stderr']", has_text="Traceback").count() == 0
    result = validate(page)
    shot(page, f"{assignment}-4-validate")
    assert "validation-success" in result
    close_dialog(page)


@pytest.mark.parametrize("assignment", ["batchnorm", "shuffle"])
def test_student_blank_answer_fails_validation(page, lab, assignment):
    open_student_copy(page, lab, "browser_blank", assignment)
    run_all(page)
    shot(page, f"{assignment}-5-blank-run")
    result = validate(page)
    shot(page, f"{assignment}-6-blank-validate")
    assert "validation-failed" in result
    close_dialog(page)


def test_formgrader_lists_the_graded_class(page, lab):
    page.goto(f"{lab['base']}/login?token={lab['token']}")  # the token becomes a cookie for formgrader's API calls
    for assignment in ("batchnorm", "shuffle"):
        page.goto(f"{lab['base']}/formgrader/gradebook/{assignment}/{assignment}")
        page.locator("table a.name-shown").first.wait_for(state="attached", timeout=60_000)  # rows loaded
        page.get_by_text("Show All Names").click()
        # the graded notebooks; a submission nbgrader could not grade has none (it is in grades.csv with 0)
        students = [s for s, a in CLASS.items() if assignment in a and not a[assignment].ungradable]
        for student in students:
            page.locator("table").get_by_text(student, exact=True).wait_for(timeout=60_000)
        shot(page, f"formgrader-{assignment}")
        rows = [[cell.strip() for cell in line.split("\t")] for line in page.locator("table").inner_text().splitlines()]
        scores = {row[1]: row[2] for row in rows[1:] if len(row) > 2}
        assert scores == {s: f"{sum(CLASS[s][assignment].scores.values()):g} / 10" for s in students}


@pytest.mark.parametrize("assignment", ["batchnorm", "shuffle"])
def test_class_report_renders_offline(page, lab, assignment):
    """The class report opens from the file, with no server, and every figure has rendered."""
    report = lab["root"] / "reports" / f"{assignment}.html"
    context = page.context
    context.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "data:"))
                  else route.continue_())  # offline: anything fetched from the network would fail
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate("() => [...document.images].map(i => [i.alt, i.complete, i.naturalWidth])")
    assert len(images) == 4 and all(complete and width > 100 for _, complete, width in images), images
    assert page.locator("h1").inner_text() == f"Class report: {assignment}"
    # the student-facing docstrings, in Korean, in the test table
    assert "확인합니다" in page.locator("table").nth(0).inner_text()
    page.screenshot(path=str(ARTIFACTS / f"report-{assignment}.png"), full_page=True)
