"""Retention of everything biometric a workspace holds, enforced by the stores themselves.

=========================  ==========================================  ========================
what                       kept for                                    setting (environment)
=========================  ==========================================  ========================
alert captures and names   24 hours after the alert                    LFR_ALERT_RETENTION_HOURS
expired watchlist subject  not searched; deleted 7 days after expiry   LFR_WATCHLIST_GRACE_DAYS
exports (``exports/``)     30 days after they were written             LFR_EXPORT_RETENTION_DAYS
evaluation embedding cache 90 days after an entry was computed         LFR_CACHE_RETENTION_DAYS
=========================  ==========================================  ========================

Each store also purges on its own (the alert store on open and on every add, the watchlist on
open); :func:`purge_workspace` runs them all at once, for ``lfr-eval purge`` from cron and for
the app's timer (:func:`start_purge_timer`). Its log, ``<workspace>/purge-log.jsonl``, records
counts only: never a face, a name, an id or a file name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lfr_eval.atrest import private_dir, private_file, write_private
from lfr_eval.errors import ConfigError
from lfr_eval.wording import plural
from lfr_eval.workspace import workspace_dir

LOGGER = logging.getLogger("lfr_eval.retention")

ENV_ALERT_HOURS = "LFR_ALERT_RETENTION_HOURS"
ENV_WATCHLIST_GRACE_DAYS = "LFR_WATCHLIST_GRACE_DAYS"
ENV_EXPORT_DAYS = "LFR_EXPORT_RETENTION_DAYS"
ENV_CACHE_DAYS = "LFR_CACHE_RETENTION_DAYS"

#: Folder of the workspace where the app writes exported bundles and deployment configs.
EXPORTS_DIR = "exports"
PURGE_LOG = "purge-log.jsonl"


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None
    if not 0 <= value <= 10 * 365 * 24:
        raise ConfigError(f"{name}={text!r} is out of range (0 to 87600)")
    return value


@dataclass(frozen=True)
class RetentionSettings:
    """How long each kind of biometric data is kept.

    Attributes
    ----------
    alert_capture : timedelta
        Alerts and their captures (default 24 h, the force's published policy).
    watchlist_expiry_grace : timedelta
        How long a subject past its expiry stays (unsearched) before deletion (default 7 days).
    exports : timedelta
        Files and folders under ``<workspace>/exports`` (default 30 days).
    embedding_cache : timedelta
        Entries of the evaluation embedding cache (default 90 days).
    """

    alert_capture: timedelta = timedelta(hours=24)
    watchlist_expiry_grace: timedelta = timedelta(days=7)
    exports: timedelta = timedelta(days=30)
    embedding_cache: timedelta = timedelta(days=90)

    @classmethod
    def from_env(cls) -> RetentionSettings:
        """Settings from the environment variables in the module table (defaults otherwise)."""
        return cls(
            alert_capture=timedelta(hours=_env_number(ENV_ALERT_HOURS, 24)),
            watchlist_expiry_grace=timedelta(days=_env_number(ENV_WATCHLIST_GRACE_DAYS, 7)),
            exports=timedelta(days=_env_number(ENV_EXPORT_DAYS, 30)),
            embedding_cache=timedelta(days=_env_number(ENV_CACHE_DAYS, 90)),
        )


@dataclass(frozen=True)
class PurgeSummary:
    """What one :func:`purge_workspace` deleted: counts only.

    Attributes
    ----------
    at : datetime
        The ``now`` of the purge (UTC).
    alerts, watchlist_subjects, exports, cache_entries : int
        Alerts (with captures), watchlist subjects (with templates), export files or folders,
        and embedding-cache entries deleted.
    skipped : tuple of str
        Stores that could not be purged, with the reason (no personal data in it).
    """

    at: datetime
    alerts: int = 0
    watchlist_subjects: int = 0
    exports: int = 0
    cache_entries: int = 0
    skipped: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return self.alerts + self.watchlist_subjects + self.exports + self.cache_entries

    def describe(self) -> str:
        """What was purged, in words: "1 alert, 0 watchlist subjects, 2 exports, ..."."""
        return ", ".join(
            [
                plural(self.alerts, "alert"),
                plural(self.watchlist_subjects, "watchlist subject"),
                plural(self.exports, "export"),
                plural(self.cache_entries, "cache entry"),
            ]
        )

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["skipped"] = list(self.skipped)
        return data


def _purge_exports(folder: Path, cutoff: datetime) -> int:
    if not folder.is_dir():
        return 0
    # bundles hold names and embeddings in clear: the folder is the owner's alone
    private_dir(folder)
    removed = 0
    for entry in sorted(folder.iterdir()):
        # an entry's age is its own modification time; links are removed, never followed
        modified = datetime.fromtimestamp(entry.lstat().st_mtime, timezone.utc)
        if modified > cutoff:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed += 1
    return removed


def purge_workspace(
    workspace: str | os.PathLike[str] | None = None,
    settings: RetentionSettings | None = None,
    *,
    now: datetime | None = None,
    actor: str | None = None,
) -> PurgeSummary:
    """Delete everything in a workspace that is past its retention period.

    Parameters
    ----------
    workspace : path, optional
        The workspace (default :func:`lfr_eval.workspace.workspace_dir`).
    settings : RetentionSettings, optional
        Default :meth:`RetentionSettings.from_env`.
    now : datetime, optional
        The current moment, aware (tests inject one); default the clock.
    actor : str, optional
        Recorded in the watchlist's audit log for the deletions (default the OS user).

    Returns
    -------
    PurgeSummary
        Counts per store; also appended to ``<workspace>/purge-log.jsonl``.
    """
    from lfr_eval.datasets._cache import CACHE_FILE_NAME, EmbeddingCache
    from lfr_eval.errors import LfrError
    from lfr_eval.live._alerts import ALERTS_DB, AlertStore
    from lfr_eval.watchlist._store import DEFAULT_WATCHLIST_NAME, Watchlist

    root = workspace_dir(workspace)
    settings = settings or RetentionSettings.from_env()
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    counts: dict[str, int] = {}
    skipped: list[str] = []

    alerts_path = root / ALERTS_DB
    if alerts_path.is_file():
        try:
            store = AlertStore(alerts_path, retention=settings.alert_capture, clock=lambda: moment)
            # the store purges on open: count that and anything this call still finds
            counts["alerts"] = store.purged_on_open.count + store.purge_expired().count
        except LfrError as exc:
            skipped.append(f"alert store: {exc}")
    watchlist_path = root / DEFAULT_WATCHLIST_NAME
    if watchlist_path.is_file():
        try:
            wl = Watchlist(
                watchlist_path,
                create=False,
                actor=actor,
                clock=lambda: moment,
                expiry_grace=settings.watchlist_expiry_grace,
            )
            counts["watchlist_subjects"] = len(wl.purged_on_open)
        except LfrError as exc:
            skipped.append(f"watchlist: {exc}")
    counts["exports"] = _purge_exports(root / EXPORTS_DIR, moment - settings.exports)
    cache_path = root / "cache" / CACHE_FILE_NAME
    if cache_path.is_file():
        try:
            with EmbeddingCache(cache_path) as cache:
                counts["cache_entries"] = cache.purge_older_than(moment - settings.embedding_cache)
        except LfrError as exc:
            skipped.append(f"embedding cache: {exc}")
    summary = PurgeSummary(moment, skipped=tuple(skipped), **counts)
    _append_log(root / PURGE_LOG, summary)
    if summary.total:
        LOGGER.info("purged %s", summary.describe())
    return summary


def _append_log(path: Path, summary: PurgeSummary) -> None:
    line = json.dumps(summary.to_dict(), sort_keys=True) + "\n"
    if not path.exists():
        write_private(path, b"")
    private_file(path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)


def read_purge_log(workspace: str | os.PathLike[str] | None = None) -> list[dict[str, object]]:
    """The workspace's purge log, oldest first (counts only)."""
    path = workspace_dir(workspace) / PURGE_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


class _WorkspaceTimer(threading.Thread):
    def __init__(self, workspace: Path, interval: timedelta) -> None:
        super().__init__(name="lfr-workspace-purge", daemon=True)
        self.workspace = workspace
        self.interval = interval
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(max(self.interval.total_seconds(), 0.01)):
            try:
                purge_workspace(self.workspace)
            except Exception:  # noqa: BLE001 - a timer must survive one bad tick, loudly
                LOGGER.exception("scheduled purge of workspace %s failed", self.workspace)


_TIMERS: dict[str, _WorkspaceTimer] = {}
_TIMERS_LOCK = threading.Lock()


def start_purge_timer(
    workspace: str | os.PathLike[str] | None = None, interval: timedelta = timedelta(minutes=5)
) -> None:
    """Run :func:`purge_workspace` every ``interval`` while this process runs (one per workspace).

    The app calls it on every page; calling it again is a no-op while the timer is alive.
    """
    root = workspace_dir(workspace).resolve()
    with _TIMERS_LOCK:
        timer = _TIMERS.get(str(root))
        if timer is not None and timer.is_alive():
            return
        timer = _WorkspaceTimer(root, interval)
        _TIMERS[str(root)] = timer
        timer.start()


def stop_purge_timer(workspace: str | os.PathLike[str] | None = None) -> None:
    """Stop the workspace's purge timer in this process, if one runs."""
    root = workspace_dir(workspace).resolve()
    with _TIMERS_LOCK:
        timer = _TIMERS.pop(str(root), None)
    if timer is not None:
        timer.stop.set()
        timer.join(timeout=10)
