"""Benchmark the app's first page against a hello-world Streamlit app, in the same run.

For each app (``hello``: a one-line ``st.title`` script; ``home``: ``app/Home.py`` on a fresh
workspace with the default engine), a Streamlit server is started headless on a free loopback
port and Chromium (``/usr/bin/chromium`` through Playwright) opens the page. Reported, per app,
medians over ``--repeats`` alternating runs:

- ``server_s``: from starting ``streamlit run`` to its health endpoint answering;
- ``first_page_s``: from starting ``streamlit run`` to the page fully rendered in the browser
  (the last element the script writes is visible and Streamlit's "running" indicator is gone);
- ``engine_shown_s`` (``home`` only): from starting ``streamlit run`` to the Home page showing
  the loaded engine (Home draws first, while the engine loads in a background thread, then
  shows the engine once it is ready);
- ``warm_page_s``: a second browser session on the running server (Streamlit's module and
  resource caches are warm: the engine is loaded once per server).

The target (issue 13): ``home`` ``first_page_s`` within 2x ``hello``'s.

Examples
--------
Check that the script works (one run each)::

    python benchmarks/bench_app_start.py --repeats 1

The figures for benchmarks/RESULTS.md::

    python benchmarks/bench_app_start.py --repeats 3 --json app-start.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
HELLO = 'import streamlit as st\n\nst.title("Hello world")\n'
#: Text of the last element each script writes: visible once the whole page is rendered.
LAST_TEXT = {"hello": "Hello world", "home": "as a verified deployment"}
#: Text Home shows once the engine is loaded (a metric's label in its engine section).
ENGINE_TEXT = "Embedding size"


@dataclass(frozen=True)
class StartTiming:
    """One start of one app, seconds from launching ``streamlit run``."""

    app: str
    server_s: float
    first_page_s: float
    warm_page_s: float
    engine_shown_s: float | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(port: int, server: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("streamlit did not answer its health check")


def _render(  # type: ignore[no-untyped-def]
    browser, url: str, last_text: str, then_text: str | None = None
) -> tuple[float, float | None]:
    """Open ``url`` in a new context and wait until ``last_text`` shows and the run ended, then
    (if given) until ``then_text`` shows. Returns the two moments (``time.monotonic()``)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url)
        page.get_by_text(last_text, exact=False).last.wait_for(state="visible", timeout=120_000)
        # the status widget shows "Running..." while the script runs
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
            " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText"
            ".includes('Running')",
            timeout=120_000,
        )
        drawn = time.monotonic()
        if then_text is None:
            return drawn, None
        page.get_by_text(then_text, exact=False).first.wait_for(state="visible", timeout=300_000)
        return drawn, time.monotonic()
    finally:
        context.close()


def time_start(app: str, script: Path, browser, work: Path) -> StartTiming:  # type: ignore[no-untyped-def]
    """Start ``script`` in a fresh server, open it twice, stop the server."""
    port = _free_port()
    workspace = Path(tempfile.mkdtemp(prefix="ws-", dir=work))
    env = {**os.environ, "LFR_WORKSPACE": str(workspace), "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    start = time.monotonic()
    server = subprocess.Popen(
        command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    try:
        _wait_healthy(port, server)
        healthy = time.monotonic() - start
        url = f"http://127.0.0.1:{port}/"
        drawn, shown = _render(browser, url, LAST_TEXT[app], ENGINE_TEXT if app == "home" else None)
        first = drawn - start
        engine_shown = None if shown is None else shown - start
        warm_start = time.monotonic()
        _render(browser, url, LAST_TEXT[app])
        warm = time.monotonic() - warm_start
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return StartTiming(app, healthy, first, warm, engine_shown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per app (alternating)")
    parser.add_argument("--json", type=Path, default=None, help="write the timings here")
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        print(f"needs {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    timings: list[StartTiming] = []
    with tempfile.TemporaryDirectory(prefix="lfr-app-start-") as tmp, sync_playwright() as pw:
        work = Path(tmp)
        hello = work / "hello.py"
        hello.write_text(HELLO)
        scripts = {"hello": hello, "home": ROOT / "app" / "Home.py"}
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            # one untimed start of each first: the OS file cache holds both apps' modules
            for app, script in scripts.items():
                time_start(app, script, browser, work)
            for _ in range(args.repeats):
                for app, script in scripts.items():
                    timing = time_start(app, script, browser, work)
                    timings.append(timing)
                    engine = (
                        ""
                        if timing.engine_shown_s is None
                        else f"  engine shown {timing.engine_shown_s:5.2f} s"
                    )
                    print(
                        f"{app:5s} server {timing.server_s:5.2f} s  first page "
                        f"{timing.first_page_s:5.2f} s  warm page {timing.warm_page_s:5.2f} s"
                        f"{engine}",
                        flush=True,
                    )
        finally:
            browser.close()
    summary: dict[str, dict[str, float]] = {}
    for app in ("hello", "home"):
        rows = [t for t in timings if t.app == app]
        fields = ("server_s", "first_page_s", "warm_page_s")
        if app == "home":
            fields += ("engine_shown_s",)
        summary[app] = {
            field: statistics.median(getattr(t, field) for t in rows) for field in fields
        }
    ratio = summary["home"]["first_page_s"] / summary["hello"]["first_page_s"]
    print(
        f"median first page: home {summary['home']['first_page_s']:.2f} s, hello "
        f"{summary['hello']['first_page_s']:.2f} s: {ratio:.2f}x (target: at most 2x); warm: "
        f"home {summary['home']['warm_page_s']:.2f} s, "
        f"hello {summary['hello']['warm_page_s']:.2f} s; home showed the loaded engine at "
        f"{summary['home']['engine_shown_s']:.2f} s"
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"runs": [asdict(t) for t in timings], "median": summary, "ratio": ratio},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
