"""Helpers for the AppTest-driven page tests (test_app_pages, test_security_app)."""

from __future__ import annotations

import time
from typing import Any

#: The metric Home's engine section shows once the engine is loaded.
ENGINE_METRIC = "Backend"


def engine_shown(at: Any) -> bool:
    """True when the page run shows the loaded engine's section."""
    return ENGINE_METRIC in {m.label for m in at.metric}


def run_until_engine_shown(at: Any, timeout_s: float = 120) -> Any:
    """Run a Home page (an AppTest run at least once) again until its engine section shows.

    Home draws while the engine loads in a background thread (tests/test_imports.py checks
    that), then shows the engine on a later run. Stops early on an exception or an error box
    (the caller's assertions then say what went wrong); ``timeout_s`` only bounds the wait.
    """
    deadline = time.monotonic() + timeout_s
    while not engine_shown(at) and time.monotonic() < deadline:
        if at.exception or at.error:
            break
        time.sleep(0.5)
        at.run()
    return at
