"""What importing each entry point loads: the import set, not the time (timing belongs in
benchmarks). Each check runs in a fresh interpreter so earlier tests' imports do not count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Heavy top-level packages an entry point must not load unless it needs them.
HEAVY = (
    "numpy",
    "pandas",
    "pyarrow",
    "cv2",
    "scipy.stats",
    "plotly",
    "torch",
    "onnxruntime",
    "onnx",
    "dlib",
    "streamlit",
    "insightface",
    "faiss",
    "sklearn",
    "jsonschema",
    "dask",
)


def loaded_after(code: str, *, path: tuple[Path, ...] = ()) -> set[str]:
    """The :data:`HEAVY` modules present in ``sys.modules`` after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *map(str, path)])}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_cli_help_imports_only_click() -> None:
    code = (
        "import contextlib, io\n"
        "from lfr_eval.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
    )
    assert loaded_after(code) == set()


def test_one_command_imports_its_own_module_only() -> None:
    """``lfr-eval config --help`` must not load the evaluation or the watchlist commands."""
    code = (
        "import contextlib, io, sys\n"
        "from lfr_eval.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['config', '--help'])\n"
        "assert 'lfr_eval.cli._evaluate' not in sys.modules, 'evaluate loaded'\n"
        "assert 'lfr_eval.cli._embed' not in sys.modules, 'embed loaded'\n"
    )
    assert not loaded_after(code) & {"pandas", "cv2", "scipy.stats", "torch", "streamlit"}


def test_metrics_do_not_load_opencv_or_scipy_stats() -> None:
    # pandas stays: the group frames are pandas tables
    loaded = loaded_after("import lfr_eval.metrics")
    assert not loaded & {"cv2", "scipy.stats", "torch", "onnxruntime", "streamlit", "sklearn"}


def test_faces_types_do_not_load_opencv_or_runtimes() -> None:
    loaded = loaded_after("import lfr_eval.faces")
    assert not loaded & {"cv2", "torch", "onnxruntime", "onnx", "dlib", "insightface", "pandas"}


def test_report_does_not_load_scipy_stats() -> None:
    loaded = loaded_after("import lfr_eval.report")
    assert not loaded & {"scipy.stats", "cv2", "torch", "streamlit"}


def test_app_shared_helpers_load_no_science_stack() -> None:
    """Every page imports ``_shared``: the report and scipy come only when a page reads results."""
    pytest.importorskip("streamlit")
    loaded = loaded_after("import _shared", path=(REPO / "app",))
    assert "streamlit" in loaded  # (streamlit itself imports plotly)
    assert not loaded & {"scipy.stats", "pandas", "cv2", "torch", "onnxruntime"}


#: What loading the face engine imports: Home's first run must leave it to the loader thread.
ENGINE_MODULES = {"dlib", "onnxruntime", "onnx", "cv2", "torch", "insightface"}
#: What Home's first run must not import itself: the engine's modules, and scipy.stats (about
#: 1 s; the results summary's enrolment interval needs only scipy.special).
HOME_FIRST_RUN_AVOIDS = ENGINE_MODULES | {"scipy.stats"}
#: Seconds the test holds the engine's load back (Home's first run takes a few).
HOLD_S = 120


def test_home_draws_while_the_engine_loads_in_the_background(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Home's first run finishes with the engine's load still held back, and imports none of the
    engine's modules (nor scipy.stats) itself; once the load is let go, a rerun shows the engine.

    The load is held (the real :meth:`EngineChoice.load`, started only when the test says, or
    after :data:`HOLD_S` seconds) so the check does not depend on which thread wins a race: a
    Home page that waited for the engine would show the engine, not its loading status, at the
    end of its first run.
    """
    pytest.importorskip("streamlit")
    code = f"""
import json, os, sys, threading, traceback
from streamlit.testing.v1 import AppTest
from lfr_eval.faces import EngineChoice

release = threading.Event()
real_load = EngineChoice.load
def held_load(self, workspace=None):
    # held until Home's first run is over, for {HOLD_S} s at most: a Home page that waited for
    # the engine then finishes its run showing the engine, which fails the check below
    release.wait({HOLD_S})
    return real_load(self, workspace)
EngineChoice.load = held_load

def check():
    at = AppTest.from_file({str(REPO / "app" / "Home.py")!r}, default_timeout=2 * {HOLD_S})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Loading the face engine" in i.value for i in at.info), [i.value for i in at.info]
    assert any("never stored" in m.value for m in at.markdown), "Home did not draw to its end"
    loaded = sorted(m for m in {sorted(HOME_FIRST_RUN_AVOIDS)!r} if m in sys.modules)
    print("HOME-IMPORTED", json.dumps(loaded))
    release.set()
    for _ in range(600):
        at.run()
        if {{m.label for m in at.metric}} >= {{"Backend", "Runs on"}}:
            break
        threading.Event().wait(0.5)
    assert not at.exception, [e.value for e in at.exception]
    assert {{m.label: m.value for m in at.metric}}["Backend"] == "dlib"
    assert not any("Loading the face engine" in i.value for i in at.info)

try:
    check()
except BaseException:
    traceback.print_exc()
    code = 1
else:
    code = 0
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)  # without waiting for Streamlit's threads
"""
    monkeypatch.setenv("LFR_WORKSPACE", str(workspace))
    for name in ("LFR_ENGINE", "LFR_DETECTOR", "LFR_RUNTIME", "LFR_DEVICE", "LFR_MODEL_PACK"):
        monkeypatch.delenv(name, raising=False)  # the default engine, dlib
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "app")])}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    marked = [line for line in proc.stdout.splitlines() if line.startswith("HOME-IMPORTED ")]
    imported_by_home = set(json.loads(marked[0].split(" ", 1)[1]))
    assert imported_by_home == set(), f"Home's first run imported {imported_by_home} itself"


def test_lazy_command_table_matches_the_modules() -> None:
    """Every command a module registers is in ``COMMANDS`` under that module, and back."""
    import importlib

    import click

    from lfr_eval.cli import COMMANDS

    registered: dict[str, str] = {}
    for module in dict.fromkeys(m for m, _ in COMMANDS.values()):
        group = click.Group()
        importlib.import_module(f"lfr_eval.cli.{module}").register(group)
        registered.update(dict.fromkeys(group.commands, module))
    assert registered == {name: module for name, (module, _) in COMMANDS.items()}
    assert all(
        help_text.endswith(".") and len(help_text) <= 60 for _, help_text in COMMANDS.values()
    )


def test_every_command_resolves_through_the_group() -> None:
    from click.testing import CliRunner

    from lfr_eval.cli import COMMANDS, cli

    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
    listing = runner.invoke(cli, ["--help"]).output
    assert all(name in listing for name in COMMANDS)
