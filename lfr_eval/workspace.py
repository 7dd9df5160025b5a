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


# ---------------------------------------------------------------------- settings outside it

ENV_CONFIG_DIR = "LFR_CONFIG_DIR"
ENV_ALLOWED_ROOTS = "LFR_ALLOWED_ROOTS"

MSG_OUTSIDE_ROOTS = (
    "{path} is outside the folders this app may read or write ({roots}); put the data under "
    "one of them, or start the app with 'lfr-eval app --allow-root FOLDER'"
)


def config_dir() -> Path:
    """Where users, signing keys and trusted keys live: ``$LFR_CONFIG_DIR`` or the per-user
    config dir (``~/.config/lfr-eval`` on Linux).

    Deliberately *outside* the workspace: a workspace is shared, backed up and exported; a
    private key or the users file must not travel with it. Not created here.
    """
    env = os.environ.get(ENV_CONFIG_DIR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir("lfr-eval", appauthor=False))


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) readable by its owner only (0700); return it."""
    folder = Path(path).expanduser()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def write_private_file(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, readable by its owner only (0600).

    The temporary file is created 0600 from the start (never world-readable, even briefly)
    and moved into place, so a crash leaves the old file or the new one, never half of one.
    """
    path = Path(path)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def allowed_roots(workspace: str | os.PathLike[str] | None = None) -> tuple[Path, ...]:
    """Folders the app may read server-side paths from: ``$LFR_ALLOWED_ROOTS``
    (``os.pathsep``-separated) plus the workspace, resolved."""
    roots = [workspace_dir(workspace)]
    for part in os.environ.get(ENV_ALLOWED_ROOTS, "").split(os.pathsep):
        if part.strip():
            roots.append(Path(part.strip()).expanduser())
    resolved: list[Path] = []
    for root in roots:
        real = root.resolve()
        if real not in resolved:
            resolved.append(real)
    return tuple(resolved)


def confine_path(path: str | os.PathLike[str], roots: tuple[Path, ...] | None = None) -> Path:
    """``path`` resolved (symbolic links and ``..`` followed), if it lies inside one of ``roots``.

    Parameters
    ----------
    path : path-like
        A path typed by a user of the web app (absolute, or relative to the workspace).
    roots : tuple of Path, optional
        Allowed folders; default :func:`allowed_roots`.

    Raises
    ------
    AccessError
        The resolved path is outside every root.
    """
    from lfr_eval.errors import AccessError

    roots = roots if roots is not None else allowed_roots()
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    real = candidate.resolve()
    if not any(real == root or real.is_relative_to(root) for root in roots):
        raise AccessError(
            MSG_OUTSIDE_ROOTS.format(path=path, roots=", ".join(str(r) for r in roots))
        )
    return real
