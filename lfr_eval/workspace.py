"""Where LFR Workbench keeps its files: watchlists, caches, converted models, alert captures.

The workspace is a directory the user chooses with ``--workspace`` or the ``LFR_WORKSPACE``
environment variable; by default it is the per-user data directory (e.g.
``~/.local/share/lfr-workbench`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_WORKSPACE = "LFR_WORKSPACE"
ENV_MODELS = "LFR_MODELS"


def default_workspace() -> Path:
    """The workspace directory to use when none is given (not created here)."""
    env = os.environ.get(ENV_WORKSPACE)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("lfr-workbench", appauthor=False))


def workspace_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the workspace directory (``path`` or the default), creating it if needed."""
    root = Path(path).expanduser() if path is not None else default_workspace()
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir(workspace: str | os.PathLike[str] | None = None) -> Path:
    """Directory searched for InsightFace model packs and cached converted models.

    ``LFR_MODELS`` overrides it; otherwise ``<workspace>/models``.
    """
    env = os.environ.get(ENV_MODELS)
    if env:
        return Path(env).expanduser()
    return workspace_dir(workspace) / "models"
