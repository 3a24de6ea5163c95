"""Browser test: run the notebook in a real JupyterLab, in Chromium, and check its live views.

How it works:

1. The notebook is copied, with an untrusted twin, into a temporary root directory:
   JupyterLab never sees the repository's copy, so it cannot save over it (the kernel
   imports ``summarizer`` from the editable install). ``python -m jupyterlab`` serves
   that root on a free port of 127.0.0.1, with no token and temporary settings,
   workspaces, runtime, config and data directories. The settings turn notebook
   windowing off (JupyterLab 4 skips rendering off-screen cells otherwise) and start the
   notebook's kernel without a "Select Kernel" dialog; the news prompt is off by the
   project's own ``overrides.json``, which ``make`` installs into the venv. The copy is
   trusted first, as ``make lab`` trusts the notebooks, so the stored widget views
   render.
2. Playwright drives Debian's Chromium (never a downloaded browser). It first opens a
   copy nobody trusted (it differs in its metadata: trust goes by content), in a
   workspace of its own, and checks what a reader sees there before running anything:
   no widget's text repr, the users table and the stored dashboard, from the views'
   static HTML. Then it opens the trusted notebook, waits until the kernel is idle,
   checks the same (from the stored widget state), installs a
   recorder in the page (a MutationObserver that notes every total the live counts view
   shows and whether the supervision tree's Mermaid diagram rendered) and clicks Run >
   Run All Cells.
3. While the cells run, ``SETTLE_MS`` after the third flush shows in the counts, with the
   tree drawn, the page holds back the kernel's messages for the moment it takes to save
   the live screenshots (``live_views.png``, ``live_counts.png``, ``sup_tree.png`` in
   ``artifacts/browser/``), so that they show one consistent moment of the run; then it
   receives them all, in order. (The notebook stops its tree and closes the dashboard at
   the end of its Run section, so only a screenshot taken during the run shows it live.)
4. It waits, within a bound, until no cell shows ``[*]`` and the kernel is idle, saves
   ``users_table.png`` and checks: no cell shows an error or was left unrun; the users
   table has its 5 rows; the live counts climbed through at least 3 totals before the
   recorded events, showed those with the right count per user and ended, closed, at
   exactly 100,000, the kernel's own ``dash.total()`` and ``dash.totals()`` (asked over
   the kernel's connection file: the notebook's ``dash`` and ``expected``); the tree
   rendered as a diagram, the message trace as a sequence diagram, and no Mermaid
   failed; the log panel received the flushers' lines; the news prompt never showed;
   and the repository's notebook is byte-identical to before.

``test_make_lab_answers_on_the_url_it_prints`` runs ``make lab`` itself (as root it adds
``--allow-root``) and checks that the server answers on the URL it prints.

The JavaScript run in the page is in ``test_browser.js``, one section per snippet.

The server, its kernel and the browser are stopped whatever happens. Every failed check
says what was missing; all of them are reported together.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "supervisor_replication.ipynb"
ARTIFACTS = REPO / "artifacts" / "browser"


def _load_js(path: Path) -> dict[str, str]:
    """Return the snippets of ``path`` by name: each starts at a line ``// @name``."""
    snippets: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("// @"):
            lines = snippets.setdefault(line[4:].strip(), [])
        else:
            lines.append(line)
    return {name: "\n".join(body).strip() for name, body in snippets.items()}


JS = _load_js(Path(__file__).with_suffix(".js"))

BUDGET = 170.0  # seconds for the whole test: server, browser, run, checks
SERVER_START = 60.0  # seconds for `jupyter lab` to answer /api
OPEN_TIMEOUT = 60.0  # seconds for the notebook to render and its kernel to be idle
RUN_START = 30.0  # seconds for Run All Cells to queue the cells
POLL = 0.1  # seconds between looks at the page while the cells run
SETTLE_MS = 300  # after the first flush is shown, wait this long before the live screenshots
OPENED_TIMEOUT = 20.0  # seconds for the stored views (and, after the run, Mermaid) to draw
USERS_ROWS = 5
UNTRUSTED = "untrusted-"  # the name prefix of the copy opened as a reader who did not trust it
RUN_EVENTS = 100_000  # the Run section's events: the closed dashboard's final total
CLIMB = 3  # distinct totals the dashboard must show on its way to RUN_EVENTS

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]

# JupyterLab user settings, by plugin id (checked against the installed schemas).
LAB_SETTINGS = {
    # "none": attach every cell to the DOM; autoStartDefaultKernel: no "Select Kernel" dialog
    "@jupyterlab/notebook-extension/tracker": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
}


@dataclass
class Lab:
    """A running `jupyter lab`: where it answers, and what it needs to be stopped."""

    url: str
    root: Path
    runtime_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]


@dataclass
class Run:
    """What the browser saw."""

    timings: dict[str, float] = field(default_factory=dict)
    recorder: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    kernel: dict[str, Any] | None = None
    kernel_error: str = ""
    opened: dict[str, Any] = field(default_factory=dict)
    opened_untrusted: dict[str, Any] = field(default_factory=dict)
    mermaid: dict[str, Any] = field(default_factory=dict)
    screenshots: dict[str, Path] = field(default_factory=dict)
    live_shots: bool = False
    console_errors: list[str] = field(default_factory=list)


# -- the server -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _pids_running_with(text: str) -> list[int]:
    """Return the pids whose command line contains ``text`` (this run's unique temp path)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
    return [pid for pid in pids if pid != os.getpid()]


def _lab_command(root: Path, port: int) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={root}",
        "--LabApp.extension_manager=readonly",  # no PyPI queries
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    return cmd


def _answers(lab: Lab, limit: float) -> bool:
    """Poll ``/api`` until the server answers (True) or exits on a taken port (False)."""
    while True:
        if lab.proc.poll() is not None:
            log = _tail(lab.log_path)
            if "is already in use" in log:
                return False
            pytest.fail(
                f"jupyter lab exited with code {lab.proc.returncode} before answering "
                f"{lab.url}/api; its log ends:\n{log}"
            )
        try:
            _get_json(f"{lab.url}/api", timeout=2)
            return True
        except (OSError, ValueError):
            if time.monotonic() > limit:
                pytest.fail(
                    f"jupyter lab did not answer {lab.url}/api within {SERVER_START:.0f} s; "
                    f"its log ends:\n{_tail(lab.log_path)}"
                )
            time.sleep(0.2)  # paces the polling of /api


@contextlib.contextmanager
def jupyter_lab(tmp: Path, notebook: Path, deadline: float) -> Iterator[Lab]:
    """Serve a copy of ``notebook``, alone in a temp root, with `jupyter lab`; stop it after."""
    root = tmp / "root"
    root.mkdir()
    shutil.copy2(notebook, root / notebook.name)
    # A copy nobody trusted: trust goes by content, so this one differs in its metadata.
    content = json.loads(notebook.read_text())
    content["metadata"]["summarizer_untrusted_copy"] = True
    (root / f"{UNTRUSTED}{notebook.name}").write_text(json.dumps(content, indent=1))
    settings = tmp / "lab-settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    dirs = {name: tmp / name for name in ("workspaces", "runtime", "config", "data")}
    for d in dirs.values():
        d.mkdir()
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),  # where `jupyter trust` keeps its signatures
    )
    trust = [str(Path(sys.executable).with_name("jupyter")), "trust", str(root / notebook.name)]
    subprocess.run(trust, env=env, check=True, capture_output=True, timeout=60)  # as make lab
    limit = min(deadline, time.monotonic() + SERVER_START)
    for attempt in range(3):  # another program may take the free port before the server does
        port = _free_port()
        log_path = tmp / f"jupyter-lab-{attempt}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                _lab_command(root, port),
                cwd=root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        lab = Lab(f"http://127.0.0.1:{port}", root, dirs["runtime"], log_path, proc)
        try:
            if not _answers(lab, limit):
                continue
            yield lab
            return
        finally:
            _stop_lab(lab)
    pytest.fail(f"jupyter lab found each of 3 free ports taken; its last log:\n{_tail(log_path)}")


def _stop_lab(lab: Lab) -> None:
    """Shut the kernels down through the API, then the server's process group; by pid."""
    with contextlib.suppress(OSError, ValueError):
        for session in _get_json(f"{lab.url}/api/sessions", timeout=2):
            request = urllib.request.Request(
                f"{lab.url}/api/sessions/{session['id']}", method="DELETE"
            )
            urllib.request.urlopen(request, timeout=10).close()
    if lab.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(lab.proc.pid, signal.SIGTERM)
        try:
            lab.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(lab.proc.pid, signal.SIGKILL)
            lab.proc.wait(5)
    # A kernel runs in a session of its own; one still alive is found by this run's temp dir.
    for pid in _pids_running_with(str(lab.runtime_dir)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- the kernel's own numbers ----------------------------------------------------

TRUTH_EXPR = (
    "__import__('json').dumps({'total': dash.total(), 'totals': dash.totals(),"
    " 'expected': dict(expected)}, default=str)"
)


def _kernel_truth(lab: Lab, notebook_name: str) -> dict[str, Any]:
    """Ask the notebook's kernel, beside the browser, for the dashboard's final numbers."""
    sessions = _get_json(f"{lab.url}/api/sessions")
    kernel_ids = [s["kernel"]["id"] for s in sessions if s.get("path") == notebook_name]
    if not kernel_ids:
        raise LookupError(f"no kernel session for {notebook_name}: {sessions}")
    client = BlockingKernelClient(
        connection_file=str(lab.runtime_dir / f"kernel-{kernel_ids[0]}.json")
    )
    client.load_connection_file()
    client.start_channels()
    try:
        reply = client.execute(
            "",
            silent=True,
            store_history=False,
            user_expressions={"truth": TRUTH_EXPR},
            reply=True,
            timeout=20,
        )
    finally:
        client.stop_channels()
    value = reply["content"]["user_expressions"]["truth"]
    if value.get("status") != "ok":
        raise LookupError(f"{value.get('ename')}: {value.get('evalue')}")
    truth: dict[str, Any] = json.loads(ast.literal_eval(value["data"]["text/plain"]))
    return truth


# -- the browser ---------------------------------------------------------------------


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the browser test needs Debian's chromium, and `chromium` is not on PATH: "
            "install it with `sudo apt-get install chromium` (`make test` does this through "
            "its system-deps step); the project never runs `playwright install`"
        )
    return path


def _wait(page: Page, js: str, what: str, timeout: float) -> None:
    try:
        page.wait_for_function(js, timeout=max(timeout, 1.0) * 1000)
    except PlaywrightError as e:
        pytest.fail(f"{what} within {timeout:.0f} s ({type(e).__name__}: {str(e)[:200]})")


def _clip(
    box: dict[str, float], within: dict[str, float]
) -> tuple[float, float, float, float] | None:
    """Return ``box`` cut to ``within`` as (x, y, width, height), or None if nothing is left."""
    x, y = max(box["x"], within["x"]), max(box["y"], within["y"])
    right = min(box["x"] + box["width"], within["x"] + within["width"])
    bottom = min(box["y"] + box["height"], within["y"] + within["height"])
    if right - x < 1 or bottom - y < 1:
        return None
    return x, y, right - x, bottom - y


def _shoot_live(page: Page, run: Run) -> bool:
    """Save the notebook area at the dashboard (live_views.png), the counts and the tree.

    Clips of page screenshots: they do not wait for the views to hold still, so the
    three are taken within a fraction of a second, while the cells keep running.
    """
    with contextlib.suppress(PlaywrightError):
        boxes = page.evaluate(JS["live_boxes"])
        if not boxes:
            return False
        area = boxes["live_views"]
        for name, box in boxes.items():
            clip = _clip(box, area)
            if clip:
                x, y, width, height = clip
                path = ARTIFACTS / f"{name}.png"
                page.screenshot(
                    path=str(path),
                    clip={"x": x, "y": y, "width": width, "height": height},
                    animations="disabled",
                    timeout=5000,
                )
                run.screenshots[name] = path
        return {"live_views", "live_counts", "sup_tree"} <= set(run.screenshots)
    return False


def _shoot_element(page: Page, run: Run, name: str, selector: str) -> None:
    """Save an element screenshot of ``selector`` (its first match) as <name>.png."""
    path = ARTIFACTS / f"{name}.png"
    with contextlib.suppress(PlaywrightError):
        page.locator(selector).first.screenshot(path=str(path), timeout=10000)
        run.screenshots[name] = path


def drive(lab: Lab, notebook_name: str, cells: int, deadline: float) -> Run:
    """Open the notebook, Run All Cells, watch the live views, then read the result."""
    run = Run()
    t0 = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            run.opened_untrusted = _open_untrusted(browser.new_page(), lab, notebook_name, cells)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.add_init_script(JS["gate"])
            page.on(
                "console",
                lambda m: run.console_errors.append(m.text[:200]) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: run.console_errors.append(str(e)[:200]))
            try:
                _run_in_page(page, lab, notebook_name, cells, deadline, run, t0)
            except BaseException:
                with contextlib.suppress(PlaywrightError):
                    page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
                raise
        finally:
            browser.close()
    return run


def _open_untrusted(page: Page, lab: Lab, notebook_name: str, cells: int) -> dict[str, Any]:
    """Open the untrusted copy in a workspace of its own; return what it shows, unrun."""
    name = f"{UNTRUSTED}{notebook_name}"
    try:
        page.goto(f"{lab.url}/lab/workspaces/untrusted/tree/{name}", timeout=OPEN_TIMEOUT * 1000)
        _wait(
            page,
            f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length >= {cells}",
            f"the untrusted copy did not render its {cells} cells",
            OPEN_TIMEOUT,
        )
        with contextlib.suppress(PlaywrightError):
            page.wait_for_function(
                "() => !!document.querySelector('table.summarizer-users')"
                " && !!document.querySelector('.summarizer-live-counts')",
                timeout=OPENED_TIMEOUT * 1000,
            )
        opened: dict[str, Any] = page.evaluate(JS["opened"])
        with contextlib.suppress(PlaywrightError):
            page.locator(".jp-OutputArea-output:has(.summarizer-live-counts)").first.screenshot(
                path=str(ARTIFACTS / "opened_untrusted.png"), timeout=10000
            )
        return opened
    finally:
        page.close()


def _run_in_page(
    page: Page, lab: Lab, notebook_name: str, cells: int, deadline: float, run: Run, t0: float
) -> None:
    page.goto(f"{lab.url}/lab/tree/{notebook_name}", timeout=OPEN_TIMEOUT * 1000)
    remaining = min(OPEN_TIMEOUT, deadline - time.monotonic())
    _wait(
        page,
        f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length >= {cells}",
        f"the notebook did not render its {cells} cells",
        remaining,
    )
    # Accept a "Select Kernel" dialog, should the settings not have prevented it.
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    with contextlib.suppress(PlaywrightError):
        if dialog.count():
            dialog.first.click(timeout=2000)
    _wait(
        page,
        r"""() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
                 .some((e) => /\|\s*Idle$/.test(e.textContent.trim()))""",
        "the notebook's kernel did not become idle (status bar '... | Idle')",
        min(OPEN_TIMEOUT, deadline - time.monotonic()),
    )
    run.timings["open"] = time.monotonic() - t0
    # Before running anything: the stored views render (a bounded wait; check() says if not).
    with contextlib.suppress(PlaywrightError):
        page.wait_for_function(
            "() => !!document.querySelector('table.summarizer-users')"
            " && !!document.querySelector('.summarizer-live-counts')",
            timeout=OPENED_TIMEOUT * 1000,
        )
    run.opened = page.evaluate(JS["opened"])
    _shoot_element(page, run, "static_tree", ".jp-MarkdownCell .jp-RenderedMermaid")
    _shoot_element(
        page, run, "opened_users_table", ".jp-OutputArea-output:has(table.summarizer-users)"
    )
    # More room for the notebook: collapse the left sidebar (click its current tab).
    with contextlib.suppress(PlaywrightError):
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click(
            timeout=2000
        )

    page.evaluate(JS["recorder"], SETTLE_MS)
    started = time.monotonic()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel").get_by_text(
        "Run All Cells", exact=True
    ).click()

    seen_busy = False
    try:
        while True:
            state = page.evaluate(JS["state"])
            if state["frozen"]:  # the recorder chose the moment and holds the page there
                run.live_shots = _shoot_live(page, run)
                page.evaluate("() => window.__summarizerGate.release()")
                continue
            now = time.monotonic()
            if state["busy"]:
                seen_busy = True
            elif seen_busy and state["status"].endswith("Idle"):
                break
            if not seen_busy and now - started > RUN_START:
                pytest.fail(f"Run > Run All Cells queued no cell ([*]) within {RUN_START:.0f} s")
            if now > deadline:
                pytest.fail(
                    f"the notebook was still running after {now - started:.0f} s: "
                    f"{state['busy']} cells still show [*], kernel status '{state['status']}'"
                )
            time.sleep(POLL)  # paces the polling of the page
    finally:
        with contextlib.suppress(PlaywrightError):
            page.evaluate("() => window.__summarizerGate.release()")
    run.timings["run"] = time.monotonic() - started

    # Mermaid draws asynchronously: give the last diagrams a bounded moment to appear.
    with contextlib.suppress(PlaywrightError):
        page.wait_for_function(
            f"() => ({JS['mermaid']})().drawn.includes('sequence')",
            timeout=OPENED_TIMEOUT * 1000,
        )
    run.mermaid = page.evaluate(JS["mermaid"])
    with contextlib.suppress(PlaywrightError):
        path = ARTIFACTS / "seq_trace.png"
        cell = page.locator(".jp-CodeCell", has_text="seq_trace(t)").last
        cell.locator(".jp-OutputArea-output").first.screenshot(path=str(path), timeout=10000)
        run.screenshots["seq_trace"] = path
    run.recorder = page.evaluate("() => window.__summarizerRecorder")
    run.result = page.evaluate(JS["result"])
    try:
        run.kernel = _kernel_truth(lab, notebook_name)
    except Exception as e:
        run.kernel_error = f"{type(e).__name__}: {e}"
    if not run.live_shots:
        _shoot_live(page, run)  # the final state, better than none
    # The users table is drawn once, early; the whole widget: sort controls, table, row count.
    _shoot_element(page, run, "users_table", ".jp-OutputArea-output:has(table.summarizer-users)")
    run.timings["total"] = time.monotonic() - t0


# -- the checks ------------------------------------------------------------------------


def _number(text: str) -> int | None:
    digits = text.replace(",", "").strip()
    return int(digits) if digits.isdigit() else None


def _run_totals(run: Run) -> list[dict[str, Any]]:
    """Return what the counts showed from the run's own dashboard on (the first "live")."""
    totals: list[dict[str, Any]] = run.recorder.get("totals", [])
    first = next((i for i, t in enumerate(totals) if t["state"] == "live"), len(totals))
    return totals[first:]


def _shown(run: Run) -> list[int]:
    """Return the totals the run's live counts showed, in order, each once."""
    totals = [t["total"] for t in _run_totals(run)]
    return [t for i, t in enumerate(totals) if i == 0 or totals[i - 1] != t]


def check_opened(opened: dict[str, Any]) -> list[str]:
    """Return what is wrong with the notebook as a reader sees it on opening it."""
    if not opened:
        return []
    problems = [f"on open, a cell shows a widget's text repr: {r!r}" for r in opened["reprs"]]
    if opened["usersRows"] != USERS_ROWS or not opened["usersVisible"]:
        problems.append(
            f"on open, the users table is not visible with its {USERS_ROWS} rows "
            f"(rows: {opened['usersRows']}, visible: {opened['usersVisible']})"
        )
    counts = opened["counts"] or ""
    if not re.search(rf"\(closed\): {RUN_EVENTS:,}\b", counts):
        problems.append(
            f"on open, the stored dashboard does not show the Run's last state "
            f"'(closed): {RUN_EVENTS:,}'; it shows: {counts!r}"
        )
    return problems


def check(run: Run) -> list[str]:
    """Return one message per failed check, saying what was missing."""
    problems: list[str] = []
    for trust, opened in (("trusted", run.opened), ("untrusted", run.opened_untrusted)):
        if not opened:
            problems.append(f"the {trust} notebook was not read on open")
        problems += [f"{trust}: {problem}" for problem in check_opened(opened)]
    result, rec = run.result, run.recorder

    # Cells: none shows an error, and each ran ([n]:).
    cells = result.get("cells", [])
    for c in cells:
        for text in c["errors"]:
            problems.append(
                f"code cell #{c['index']} ({c['source']!r}) shows an error: {text[:400]}"
            )
        for text in c["widgetErrors"]:
            problems.append(
                f"code cell #{c['index']} ({c['source']!r}) failed to show a widget: {text[:200]}"
            )
    unrun = [c for c in cells if not re.fullmatch(r"\[\d+\]:", c["prompt"])]
    if unrun:
        first = unrun[0]
        problems.append(
            f"{len(unrun)} of {len(cells)} code cells did not run, the first being "
            f"#{first['index']} ({first['source']!r}): "
            + ", ".join(f"#{c['index']} {c['prompt'] or '[ ]:'}" for c in unrun)
        )

    # The users table.
    table = result.get("usersTable")
    if table is None:
        problems.append(
            f"users table did not render: found no <table class='summarizer-users'>, "
            f"expected one with {USERS_ROWS} rows"
        )
    elif table["rows"] != USERS_ROWS:
        problems.append(
            f"users table did not render: found {table['rows']} rows, expected {USERS_ROWS} "
            f"(ids shown: {table['ids']})"
        )

    # The live counts: every total shown, in order, against the kernel's numbers.
    totals = _run_totals(run)
    shown = _shown(run)
    if not totals:
        problems.append(
            "live counts view did not render: no .summarizer-live-counts said '(live)' in the page"
        )
    else:
        climb = [t for t in shown if 0 < t < RUN_EVENTS]
        if len(climb) < CLIMB:
            problems.append(
                f"live counts did not climb: they showed {len(climb)} totals between 0 and "
                f"{RUN_EVENTS:,} (totals shown: {shown}), expected at least {CLIMB}"
            )
        if shown != sorted(shown):
            problems.append(f"live counts went backwards: totals shown in order: {shown}")
        final = totals[-1]
        if (final["state"], final["total"]) != ("closed", RUN_EVENTS):
            problems.append(
                f"the Run's dashboard ended {final['state']} at {final['total']:,} events, "
                f"expected closed at exactly {RUN_EVENTS:,} (totals shown: {shown})"
            )
    if run.kernel is None:
        problems.append(
            f"could not read the dashboard's numbers from the kernel "
            f"(dash.total(), dash.totals(), expected): {run.kernel_error}"
        )
    elif totals:
        expected = {str(k): v for k, v in run.kernel["expected"].items()}
        recorded = sum(expected.values())
        at_recorded = [t for t in totals if t["total"] == recorded]
        if not at_recorded:
            problems.append(
                f"live counts never showed the {recorded:,} recorded events (totals shown: {shown})"
            )
        else:
            users = {row[0]: _number(row[-1]) for row in at_recorded[0]["users"] if row}
            if users != expected:
                problems.append(
                    f"live counts at {recorded:,} events showed per user {users}, "
                    f"expected {expected}"
                )
        final, truth = totals[-1], run.kernel
        if final["total"] != truth["total"]:
            problems.append(
                f"live counts ended at {final['total']:,} events, but the kernel's "
                f"dash.total() is {truth['total']:,} (totals shown: {shown})"
            )
        final_users = {row[0]: _number(row[-1]) for row in final["users"] if row}
        truth_users = {str(k): v for k, v in truth["totals"].items()}
        if final_users != truth_users:
            problems.append(
                f"live counts ended showing per user {final_users}, but the kernel's "
                f"dash.totals() is {truth_users}"
            )

    # The supervision tree: a Mermaid diagram of the running tree.
    if rec.get("treeErrors"):
        problems.append(f"supervision tree: Mermaid failed to render: {rec['treeErrors']}")
    if not rec.get("treeRendered"):
        problems.append(
            "supervision tree did not render: no svg (inline, or Mermaid's "
            "<img src='data:image/svg+xml,...'>) ever appeared in .summarizer-sup-tree"
        )
    else:
        missing = [
            name
            for name in ("SummarizerSupervisor", "EventCollector", "EventFlusher")
            if name not in rec["treeText"]
        ]
        if missing:
            problems.append(f"supervision tree rendered without the nodes {missing}")

    # Every Mermaid diagram drew; the message trace as a sequence diagram.
    mermaid = run.mermaid or {"drawn": [], "warnings": []}
    if mermaid["warnings"]:
        problems.append(f"Mermaid failed to render: {mermaid['warnings']}")
    if "sequence" not in mermaid["drawn"]:
        problems.append(
            f"the message trace did not render as a sequence diagram (SVG); "
            f"diagrams drawn: {mermaid['drawn']}"
        )

    # JupyterLab's news prompt: off by the project's overrides.json.
    if rec.get("news") or result.get("news"):
        problems.append(
            "JupyterLab's news prompt ('official Jupyter news') showed; the venv's "
            "share/jupyter/lab/settings/overrides.json should turn it off (run `make venv`)"
        )

    # The log panel.
    log = result.get("log")
    if log is None:
        problems.append("log panel did not render: no .summarizer-log in the page")
    elif "Flushed data" not in log and "events flushed" not in log:
        problems.append(
            "log panel received no flusher lines ('Flushed data' or 'events flushed'); "
            f"it ends: {log[-300:]!r}"
        )
    return problems


# -- the test ----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_notebook(notebook: Path, tmp: Path) -> tuple[Run, list[str]]:
    """Serve ``notebook`` (a temp copy), run it in Chromium; return what was seen and problems."""
    deadline = time.monotonic() + BUDGET
    _chromium()  # fail first, and clearly, when the browser is missing
    cells = len(json.loads(notebook.read_text())["cells"])
    started = time.monotonic()
    with jupyter_lab(tmp, notebook, deadline) as lab:
        server = time.monotonic() - started
        try:
            run = drive(lab, notebook.name, cells, deadline)
            run.timings = {"server": server, **run.timings}
        finally:
            with contextlib.suppress(OSError):
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shutil.copy(lab.log_path, ARTIFACTS / "jupyter-lab.log")
    problems = check(run)
    if problems and run.console_errors:
        problems.append(f"(browser console errors, for context: {run.console_errors[:5]})")
    return run, problems


def test_notebook_live_views_in_jupyterlab(tmp_path: Path) -> None:
    assert NOTEBOOK.exists(), f"the notebook {NOTEBOOK} is missing"
    before = _sha256(NOTEBOOK)
    run, problems = run_notebook(NOTEBOOK, tmp_path)
    print(
        "browser test timings (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in run.timings.items())
        + f"; totals shown: {_shown(run)}"
        + f"; live screenshots at: {run.recorder.get('froze')}"
        + f"; screenshots: {sorted(str(p) for p in run.screenshots.values())}"
    )
    if not run.live_shots:
        warnings.warn(
            "the live screenshots show the notebook's final state: the tree was never drawn "
            "after the first flush while the cells ran",
            stacklevel=1,
        )
    assert _sha256(NOTEBOOK) == before, (
        f"{NOTEBOOK} changed during the browser test; JupyterLab served only a temp copy, "
        "so another program wrote it (run the test again once it is done)"
    )
    assert not problems, "the notebook's views in JupyterLab:\n- " + "\n- ".join(problems)
    missing = {"live_views", "live_counts", "sup_tree", "users_table"} - set(run.screenshots)
    assert not missing, f"screenshots not saved in {ARTIFACTS}: {sorted(missing)}"


def test_make_lab_answers_on_the_url_it_prints(tmp_path: Path) -> None:
    port = _free_port()
    dirs = {name: tmp_path / name for name in ("runtime", "config", "data")}
    for d in dirs.values():
        d.mkdir()
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
    )
    lab_args = (
        f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
        "--LabApp.extension_manager=readonly"
    )
    log_path = tmp_path / "make-lab.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["make", "-C", str(REPO), "lab", f"LAB_ARGS={lab_args}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START
        pattern = re.compile(rf"http://127\.0\.0\.1:{port}/lab\?token=\w+")
        while not (found := pattern.search(log_path.read_text(errors="replace"))):
            if proc.poll() is not None:
                pytest.fail(f"make lab exited with code {proc.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"make lab printed no URL within {SERVER_START:.0f} s:\n{_tail(log_path)}"
                )
            time.sleep(0.2)  # paces the polling of the server's log
        while True:  # printed as it starts listening: a refused connection may come first
            try:
                with urllib.request.urlopen(found.group(0), timeout=10) as response:
                    assert response.status == 200
                    assert b"JupyterLab" in response.read()
                break
            except urllib.error.URLError as e:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{found.group(0)} did not answer ({e}):\n{_tail(log_path)}")
                time.sleep(0.2)  # paces the retries
        text = log_path.read_text(errors="replace")
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        assert ("--allow-root" in text) == as_root, text[:2000]
        assert "Signing notebook" in text or "already signed" in text, text[:2000]
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
