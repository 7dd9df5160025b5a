"""Who is acting: recorded in every audit entry and alert decision."""

from __future__ import annotations

import getpass
import os

#: Environment variable naming the acting user for command-line runs (``lfr-eval --actor``).
ENV_ACTOR = "LFR_EVAL_ACTOR"


def default_actor() -> str:
    """Who acts when no one is named: ``$LFR_EVAL_ACTOR``, else the OS user.

    The OS user is ``uid:N`` where the uid has no passwd entry. ``lfr-eval --actor NAME`` sets
    ``LFR_EVAL_ACTOR`` for its run; the app passes its signed-in user explicitly instead.
    """
    named = os.environ.get(ENV_ACTOR, "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # getpass fails in containers whose uid has no passwd entry
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def check_actor(actor: str | None) -> str:
    """``actor`` stripped, or :func:`default_actor` when None or blank."""
    text = (actor or "").strip()
    return text or default_actor()
