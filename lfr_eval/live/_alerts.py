"""Alerts of the live page, their captures, officer review, and retention.

Retention follows the operational rules in the project's domain brief (from a force's public
page): captures of faces that do not match the watchlist are never written anywhere (they live
only in memory while the face is tracked); alert data is kept for a retention period (24 hours
by default) and then purged automatically and irretrievably. Only :class:`AlertStore` writes
captures, and it refuses any capture whose score is below the threshold it was raised at.

The store is one SQLite file in the workspace, ``<workspace>/live/alerts.sqlite`` (0600, in a
0700 folder). Captures are JPEG blobs inside it rather than loose files, sealed with AES-256-GCM
together with the subject's id and name (:mod:`lfr_eval.atrest`); every connection sets SQLite's
``secure_delete`` so a purged capture's bytes are overwritten with zeros in the file, not just
unlinked from an index. Expired alerts are never returned and are purged on open, on every add,
by a timer while the app runs and by ``lfr-eval purge``. A purge leaves a line in a purge log
(which alert, when raised, when purged, the officer's decision) with no face, no score and no
subject, so deployment counts survive the purge and the purge itself can be audited.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import statistics
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, overload

import cv2
import numpy as np

from lfr_eval.atrest import (
    Sealer,
    SealError,
    associated_data,
    check_actor,
    check_key_outside,
    file_keys,
    load_key_ring,
    private_dir,
    private_file,
)
from lfr_eval.errors import LfrError
from lfr_eval.wording import plural
from lfr_eval.workspace import workspace_dir

LOGGER = logging.getLogger("lfr_eval.live")

#: How long alert data is kept: 24 hours, as the force's public page states.
DEFAULT_RETENTION = timedelta(hours=24)

#: File of the alert store, relative to the workspace.
ALERTS_DB = Path("live") / "alerts.sqlite"

Decision = Literal["confirmed", "rejected"]
DECISIONS: tuple[str, ...] = ("confirmed", "rejected")

MSG_BELOW_THRESHOLD = (
    "refusing to store the capture of alert {alert_id}: score {score:.4f} is below the threshold "
    "{threshold:.4f}; captures of faces that do not match are never written"
)
MSG_UNKNOWN_ALERT = (
    "no alert {alert_id} in the alert store (it may have been purged after the retention period)"
)
MSG_ALREADY_REVIEWED = (
    "alert {alert_id} was already {decision} by {reviewer}; a review cannot be changed"
)
MSG_BAD_DECISION = "decision must be 'confirmed' or 'rejected', got {decision!r}"
MSG_NO_REVIEWER = "give the reviewing officer's name or number to record a decision"


class AlertError(LfrError):
    """An alert operation was refused (non-matching capture, unknown alert, second review…)."""

    exit_code = 10


def _utc(moment: datetime | float | None) -> datetime:
    if moment is None:
        return datetime.now(timezone.utc)
    if isinstance(moment, (int, float)):
        return datetime.fromtimestamp(float(moment), timezone.utc)
    if moment.tzinfo is None:
        raise AlertError(f"time {moment!r} has no time zone; give an aware datetime (UTC)")
    return moment.astimezone(timezone.utc)


@overload
def _from_epoch(value: float) -> datetime: ...
@overload
def _from_epoch(value: float | None) -> datetime | None: ...
def _from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


@dataclass(frozen=True)
class LiveAlert:
    """An alert as the live pipeline raises it: best watchlist score at or above the threshold.

    Attributes
    ----------
    alert_id : str
        Unique id (hex).
    session_id : str
        The live session that raised it.
    track_id : int
        The tracked face that raised it (one alert per track and subject).
    subject_id, subject_name : str
        The watchlist subject matched, and the name shown to the officer.
    score : float
        Cosine similarity in [-1, 1] of the face to the subject's best template.
    threshold : float
        Face-match threshold in force when the alert was raised (cosine similarity).
    raised_at : datetime
        When the alert was raised (UTC).
    time_to_alert_s : float
        Seconds from the frame in which the face was first detected to the alert.
    capture : ndarray (H, W, 3) uint8 RGB
        Crop of the frame around the face, shown to the reviewing officer.
    """

    alert_id: str
    session_id: str
    track_id: int
    subject_id: str
    subject_name: str
    score: float
    threshold: float
    raised_at: datetime
    time_to_alert_s: float
    capture: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class AlertRecord:
    """An alert as stored, with its review.

    Attributes
    ----------
    alert_id, session_id, track_id, subject_id, subject_name, score, threshold, raised_at,
    time_to_alert_s
        As in :class:`LiveAlert`.
    expires_at : datetime
        When the alert and its capture are purged (UTC).
    decision : {"confirmed", "rejected"} or None
        The officer's decision; ``None`` while awaiting review.
    reviewer : str or None
        Who decided.
    decided_at : datetime or None
        When (UTC).
    """

    alert_id: str
    session_id: str
    track_id: int
    subject_id: str
    subject_name: str
    score: float
    threshold: float
    raised_at: datetime
    time_to_alert_s: float
    expires_at: datetime
    decision: Decision | None = None
    reviewer: str | None = None
    decided_at: datetime | None = None

    @property
    def time_to_decision_s(self) -> float | None:
        """Seconds from the alert to the officer's decision; ``None`` while pending."""
        if self.decided_at is None:
            return None
        return (self.decided_at - self.raised_at).total_seconds()


@dataclass(frozen=True)
class PurgeEntry:
    """One purged alert in the purge log: no face, no subject, no score.

    Attributes
    ----------
    alert_id, session_id : str
    raised_at, purged_at : datetime
        UTC.
    decision : {"confirmed", "rejected"} or None
        The review outcome at purge time (``None``: never reviewed).
    time_to_decision_s : float or None
    """

    alert_id: str
    session_id: str
    raised_at: datetime
    purged_at: datetime
    decision: Decision | None
    time_to_decision_s: float | None


@dataclass(frozen=True)
class PurgeReport:
    """What one :meth:`AlertStore.purge_expired` call removed.

    Attributes
    ----------
    purged_at : datetime
        The ``now`` of the purge (UTC).
    alert_ids : tuple of str
        Alerts whose data and capture were deleted.
    retention : timedelta
        The store's retention period.
    """

    purged_at: datetime
    alert_ids: tuple[str, ...]
    retention: timedelta

    @property
    def count(self) -> int:
        return len(self.alert_ids)


@dataclass(frozen=True)
class ReviewCounts:
    """Officer-review figures of one live session (purged alerts included).

    Attributes
    ----------
    alerts : int
        Alerts raised and stored.
    confirmed, rejected, pending : int
        Alerts the officer confirmed (true alerts), rejected (false alerts), not yet reviewed.
    decision_times_s : tuple of float
        Seconds from alert to decision, one per reviewed alert.
    """

    alerts: int
    confirmed: int
    rejected: int
    pending: int
    decision_times_s: tuple[float, ...] = ()

    @property
    def median_time_to_decision_s(self) -> float | None:
        """Median seconds from alert to decision; ``None`` when nothing was reviewed."""
        if not self.decision_times_s:
            return None
        return float(statistics.median(self.decision_times_s))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    score REAL NOT NULL,
    threshold REAL NOT NULL,
    raised_at REAL NOT NULL,
    time_to_alert_s REAL NOT NULL,
    expires_at REAL NOT NULL,
    sealed BLOB NOT NULL,
    capture BLOB NOT NULL,
    decision TEXT CHECK (decision IN ('confirmed', 'rejected')),
    reviewer TEXT,
    decided_at REAL,
    CHECK (score >= threshold)
);
CREATE INDEX IF NOT EXISTS alerts_expiry ON alerts (expires_at);
CREATE TABLE IF NOT EXISTS purge_log (
    alert_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    raised_at REAL NOT NULL,
    purged_at REAL NOT NULL,
    decision TEXT,
    time_to_decision_s REAL
);
"""

FORMAT_NAME = "lfr-alerts"
#: 1 (no meta table): subject and capture in clear; 2: sealed with AES-256-GCM.
SCHEMA_VERSION = 2

_COLUMNS = (
    "alert_id, session_id, track_id, score, threshold, raised_at, time_to_alert_s, expires_at, "
    "sealed, decision, reviewer, decided_at"
)

MSG_ALERTS_DAMAGED = (
    "alert store {path} is damaged or was changed outside lfr-eval ({why}); it is not used. "
    "Move it aside (alerts in it are lost) and a new store is made"
)


def _identity_ad(row: tuple[Any, ...]) -> bytes:
    # Everything that decides what an officer sees and when the alert goes is bound to the sealed
    # subject: an edited score, session or expiry makes the alert unreadable, not misleading.
    alert_id, session_id, track_id, score, threshold, raised_at, _, expires_at = row[:8]
    return associated_data(
        "alert",
        alert_id,
        session_id,
        int(track_id),
        repr(float(score)),
        repr(float(threshold)),
        repr(float(raised_at)),
        repr(float(expires_at)),
    )


def _capture_ad(alert_id: str) -> bytes:
    return associated_data("capture", alert_id)


def encode_capture(capture: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 crop."""
    image = np.asarray(capture)
    if (
        image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
        or min(image.shape[:2]) < 1
    ):
        raise AlertError(f"an alert capture must be an RGB uint8 image; got {image.shape}")
    ok, buffer = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise AlertError("could not encode the alert capture as JPEG")
    return buffer.tobytes()


class AlertStore:
    """SQLite store of live alerts with retention and officer review; safe across threads.

    Subject ids, names and capture JPEGs are sealed with AES-256-GCM (see
    :mod:`lfr_eval.atrest`); the file is 0600 in a 0700 folder. Expired alerts are never
    returned, and are purged when the store opens, before every :meth:`add`, by
    :meth:`purge_expired` (``lfr-eval purge`` from cron) and by :meth:`start_purge_timer`
    while an app runs.

    Parameters
    ----------
    path : path
        The SQLite file (created with its folder if missing).
    retention : timedelta
        How long an alert and its capture are kept (0: purged at the next purge).
    actor : str, optional
        The reviewing officer recorded when :meth:`review` names none (default: the OS user or
        ``$LFR_EVAL_ACTOR``; the app passes its signed-in user).
    clock : callable, optional
        Returns the current time as an aware datetime (tests inject one); default the system
        clock.

    Use :meth:`open` to get the store of a workspace.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        actor: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if retention < timedelta(0):
            raise ValueError(f"retention must not be negative, got {retention}")
        self.path = Path(path)
        self.retention = retention
        self.actor = check_actor(actor)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._timer: _PurgeTimer | None = None
        if not self.path.parent.exists():
            private_dir(self.path.parent)
        check_key_outside(self.path.parent)
        if not self.path.exists():
            # created 0600 before SQLite opens it: the umask must not make captures readable
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        private_file(self.path)
        self._open_file()
        #: What opening the store purged (expired alerts are never kept past an open).
        self.purged_on_open: PurgeReport = self.purge_expired()

    @classmethod
    def open(
        cls,
        workspace: str | Path | None = None,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        actor: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> AlertStore:
        """The alert store of a workspace (default: :func:`lfr_eval.workspace.workspace_dir`)."""
        return cls(
            workspace_dir(workspace) / ALERTS_DB, retention=retention, actor=actor, clock=clock
        )

    def _now(self, moment: datetime | float | None = None) -> datetime:
        return _utc(self._clock() if moment is None else moment)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                db = sqlite3.connect(self.path, timeout=30)
            except sqlite3.Error as exc:
                raise AlertError(f"cannot open alert store {self.path}: {exc}") from exc
            try:
                # Overwrite deleted content with zeros so a purged capture cannot be recovered
                # from the file's free pages.
                db.execute("PRAGMA secure_delete = ON")
                with db:
                    yield db
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.IntegrityError):
                    raise
                raise AlertError(MSG_ALERTS_DAMAGED.format(path=self.path, why=exc)) from exc
            finally:
                db.close()

    def _open_file(self) -> None:
        with self._connect() as db:
            problems = [r[0] for r in db.execute("PRAGMA quick_check") if r[0] != "ok"]
            if problems:
                raise AlertError(MSG_ALERTS_DAMAGED.format(path=self.path, why=problems[0]))
            columns = {r[1] for r in db.execute("PRAGMA table_info(alerts)")}
            has_meta = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
        if columns and not has_meta:
            self._migrate_v1()
            return
        with self._connect() as db:
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT key, value FROM meta"))
            if not meta:
                meta = {
                    "format": FORMAT_NAME,
                    "schema_version": str(SCHEMA_VERSION),
                    "store_id": uuid.uuid4().hex,
                    "key_id": load_key_ring().current,
                }
                db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
        if meta.get("format") != FORMAT_NAME or meta.get("schema_version") != str(SCHEMA_VERSION):
            raise AlertError(
                f"{self.path} is not an alert store this version of lfr-eval reads "
                f"(format {meta.get('format')!r}, version {meta.get('schema_version')!r}); "
                "move it aside and a new store is made"
            )
        self._use_keys(meta["store_id"], meta["key_id"])

    def _use_keys(self, store_id: str, key_id: str) -> None:
        self._store_id = store_id
        self._keys = file_keys(store_id, key_id, what=f"alert store {self.path}")
        self._sealer = Sealer(self._keys.seal)

    def _migrate_v1(self) -> None:
        """Seal a schema-1 store (subject and capture in clear) in place, then vacuum it."""
        store_id = uuid.uuid4().hex
        self._use_keys(store_id, load_key_ring().current)
        with self._connect() as db:
            db.execute("ALTER TABLE alerts RENAME TO alerts_v1")
            db.execute("DROP INDEX IF EXISTS alerts_expiry")
            db.executescript(
                _SCHEMA.replace("IF NOT EXISTS ", "").replace(
                    "CREATE TABLE purge_log", "CREATE TABLE IF NOT EXISTS purge_log"
                )
            )
            rows = db.execute(
                "SELECT alert_id, session_id, track_id, score, threshold, raised_at, "
                "time_to_alert_s, expires_at, subject_id, subject_name, capture, decision, "
                "reviewer, decided_at FROM alerts_v1"
            ).fetchall()
            for row in rows:
                head = row[:8]
                sealed = self._seal_identity(head, row[8], row[9])
                capture = self._sealer.seal(bytes(row[10]), _capture_ad(row[0]))
                db.execute(
                    f"INSERT INTO alerts ({_COLUMNS}, capture) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*head, sealed, *row[11:14], capture),
                )
            db.execute("DROP TABLE alerts_v1")
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("format", FORMAT_NAME),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("store_id", store_id),
                    ("key_id", self._keys.key_id),
                ],
            )
        with self._connect() as db:
            db.isolation_level = None
            db.execute("VACUUM")  # no clear capture left in the file's free pages

    def _seal_identity(self, head: tuple[Any, ...], subject_id: str, subject_name: str) -> bytes:
        payload = json.dumps({"id": subject_id, "name": subject_name}, ensure_ascii=False)
        return self._sealer.seal(payload.encode("utf-8"), _identity_ad(head))

    def _record(self, row: tuple[Any, ...]) -> AlertRecord:
        try:
            identity = json.loads(self._sealer.open(row[8], _identity_ad(row)))
        except SealError as exc:
            raise AlertError(
                MSG_ALERTS_DAMAGED.format(path=self.path, why=f"alert {row[0]} {exc}")
            ) from None
        return AlertRecord(
            alert_id=row[0],
            session_id=row[1],
            track_id=int(row[2]),
            subject_id=identity["id"],
            subject_name=identity["name"],
            score=float(row[3]),
            threshold=float(row[4]),
            raised_at=_from_epoch(row[5]),
            time_to_alert_s=float(row[6]),
            expires_at=_from_epoch(row[7]),
            decision=row[9],
            reviewer=row[10],
            decided_at=_from_epoch(row[11]),
        )

    def _kept(self, now: datetime | None = None) -> tuple[str, tuple[float, float]]:
        """SQL condition (and its values) of alerts still inside their retention period."""
        moment = self._now(now)
        return (
            "expires_at > ? AND raised_at > ?",
            (moment.timestamp(), (moment - self.retention).timestamp()),
        )

    # ------------------------------------------------------------------ writing
    def add(self, alert: LiveAlert) -> AlertRecord:
        """Store an alert and its capture (expired alerts are purged first).

        Raises
        ------
        AlertError
            The score is below the alert's threshold (a non-matching capture is never written),
            or the capture is not an RGB image.
        """
        if not alert.score >= alert.threshold:
            raise AlertError(
                MSG_BELOW_THRESHOLD.format(
                    alert_id=alert.alert_id, score=alert.score, threshold=alert.threshold
                )
            )
        jpeg = encode_capture(alert.capture)
        self.purge_expired()
        raised = _utc(alert.raised_at)
        expires = raised + self.retention
        head = (
            alert.alert_id,
            alert.session_id,
            int(alert.track_id),
            float(alert.score),
            float(alert.threshold),
            raised.timestamp(),
            float(alert.time_to_alert_s),
            expires.timestamp(),
        )
        sealed = self._seal_identity(head, alert.subject_id, alert.subject_name)
        capture = self._sealer.seal(jpeg, _capture_ad(alert.alert_id))
        with self._connect() as db:
            db.execute(
                "INSERT INTO alerts (alert_id, session_id, track_id, score, threshold, raised_at, "
                "time_to_alert_s, expires_at, sealed, capture) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*head, sealed, capture),
            )
        return self._get(alert.alert_id, kept_only=False)

    def review(
        self,
        alert_id: str,
        decision: Decision,
        reviewer: str | None = None,
        *,
        now: datetime | float | None = None,
    ) -> AlertRecord:
        """Record the reviewing officer's decision on an alert (once; it cannot be changed).

        Parameters
        ----------
        alert_id : str
        decision : {"confirmed", "rejected"}
            Confirmed: the officer judged the capture to be the listed person (a true alert).
            Rejected: not that person (a false alert).
        reviewer : str, optional
            Officer's name or number; default the store's :attr:`actor` (the signed-in user).
        now : datetime or float, optional
            Time of the decision (UTC datetime or epoch seconds); default the store's clock.

        Raises
        ------
        AlertError
            Unknown, expired or purged alert, a second review, a bad decision or an empty
            reviewer.
        """
        if decision not in DECISIONS:
            raise AlertError(MSG_BAD_DECISION.format(decision=decision))
        reviewer = self.actor if reviewer is None else reviewer.strip()
        if not reviewer:
            raise AlertError(MSG_NO_REVIEWER)
        decided = self._now(now)
        kept, args = self._kept()
        with self._connect() as db:
            row = db.execute(
                f"SELECT decision, reviewer FROM alerts WHERE alert_id = ? AND {kept}",
                (alert_id, *args),
            ).fetchone()
            if row is None:
                raise AlertError(MSG_UNKNOWN_ALERT.format(alert_id=alert_id))
            if row[0] is not None:
                raise AlertError(
                    MSG_ALREADY_REVIEWED.format(alert_id=alert_id, decision=row[0], reviewer=row[1])
                )
            db.execute(
                "UPDATE alerts SET decision = ?, reviewer = ?, decided_at = ? WHERE alert_id = ?",
                (decision, reviewer, decided.timestamp(), alert_id),
            )
        return self._get(alert_id, kept_only=False)

    def purge_expired(self, now: datetime | float | None = None) -> PurgeReport:
        """Delete every alert, with its capture, whose retention period has ended.

        That is every alert past the expiry set when it was stored, and every alert older than
        this store's retention (so shortening the retention purges older alerts at once).

        Parameters
        ----------
        now : datetime or float, optional
            The current time (UTC datetime or epoch seconds); default the store's clock.

        Returns
        -------
        PurgeReport
            The purged alert ids (their count is logged at INFO on the ``lfr_eval.live``
            logger; ids, times and decisions are kept in :meth:`purge_log`).
        """
        moment = self._now(now)
        stamp = moment.timestamp()
        # An alert goes when the period it was stored under ends, or sooner if the store's
        # retention has since been shortened (a stricter policy applies to data already held).
        oldest_kept = (moment - self.retention).timestamp()
        with self._connect() as db:
            rows = db.execute(
                "SELECT alert_id, session_id, raised_at, decision, decided_at FROM alerts "
                "WHERE expires_at <= ? OR raised_at <= ? ORDER BY raised_at",
                (stamp, oldest_kept),
            ).fetchall()
            db.executemany(
                "INSERT OR REPLACE INTO purge_log VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (a, s, raised, stamp, dec, None if at is None else at - raised)
                    for a, s, raised, dec, at in rows
                ],
            )
            db.executemany("DELETE FROM alerts WHERE alert_id = ?", [(r[0],) for r in rows])
        report = PurgeReport(moment, tuple(r[0] for r in rows), self.retention)
        if report.count:
            LOGGER.info(
                "purged %s and their captures older than %s from %s",
                plural(report.count, "alert"),
                self.retention,
                self.path,
            )
        return report

    def start_purge_timer(self, interval: timedelta = timedelta(minutes=1)) -> None:
        """Purge expired alerts every ``interval`` on a daemon thread until stopped.

        One timer per store file per process: starting it again (a Streamlit rerun opens a new
        store object) moves the one timer to this store and its retention.
        """
        key = str(self.path.resolve())
        with _TIMERS_LOCK:
            timer = _TIMERS.get(key)
            if timer is None or not timer.is_alive():
                timer = _PurgeTimer(self, interval)
                _TIMERS[key] = timer
                timer.start()
            else:
                timer.store, timer.interval = self, interval
            self._timer = timer

    def stop_purge_timer(self) -> None:
        """Stop this store file's purge timer (if one runs in this process)."""
        key = str(self.path.resolve())
        with _TIMERS_LOCK:
            timer = _TIMERS.pop(key, None)
        if timer is not None:
            timer.stop.set()
            timer.join(timeout=5)
        self._timer = None

    # ------------------------------------------------------------------ reading
    def _get(self, alert_id: str, *, kept_only: bool = True) -> AlertRecord:
        kept, args = self._kept() if kept_only else ("1", ())
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM alerts WHERE alert_id = ? AND {kept}", (alert_id, *args)
            ).fetchone()
        if row is None:
            raise AlertError(MSG_UNKNOWN_ALERT.format(alert_id=alert_id))
        return self._record(row)

    def get(self, alert_id: str) -> AlertRecord:
        """One alert (without its capture); never an expired one.

        Raises
        ------
        AlertError
            Unknown, expired or purged alert.
        """
        return self._get(alert_id)

    def alerts(self, session_id: str | None = None) -> list[AlertRecord]:
        """Alerts inside their retention period, newest first; one session's if given."""
        kept, bounds = self._kept()
        query = f"SELECT {_COLUMNS} FROM alerts WHERE {kept}"
        args: tuple[object, ...] = bounds
        if session_id is not None:
            query += " AND session_id = ?"
            args = (*bounds, session_id)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY raised_at DESC, alert_id", args).fetchall()
        return [self._record(r) for r in rows]

    def capture_jpeg(self, alert_id: str) -> bytes:
        """The JPEG bytes of an alert's capture (decrypted); never an expired one.

        Raises
        ------
        AlertError
            Unknown, expired or purged alert.
        """
        kept, args = self._kept()
        with self._connect() as db:
            row = db.execute(
                f"SELECT capture FROM alerts WHERE alert_id = ? AND {kept}", (alert_id, *args)
            ).fetchone()
        if row is None:
            raise AlertError(MSG_UNKNOWN_ALERT.format(alert_id=alert_id))
        try:
            return self._sealer.open(row[0], _capture_ad(alert_id))
        except SealError as exc:
            raise AlertError(
                MSG_ALERTS_DAMAGED.format(path=self.path, why=f"capture of {alert_id} {exc}")
            ) from None

    def capture(self, alert_id: str) -> np.ndarray:
        """The capture of an alert, RGB uint8; never an expired one.

        Raises
        ------
        AlertError
            Unknown, expired or purged alert, or a capture that does not decode.
        """
        jpeg = self.capture_jpeg(alert_id)
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise AlertError(
                MSG_ALERTS_DAMAGED.format(
                    path=self.path, why=f"the capture of alert {alert_id} is not a JPEG"
                )
            )
        return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def purge_log(self, session_id: str | None = None) -> list[PurgeEntry]:
        """Purged alerts, most recently purged first (no face, subject or score)."""
        query = "SELECT alert_id, session_id, raised_at, purged_at, decision, time_to_decision_s "
        query += "FROM purge_log"
        args: tuple[str, ...] = ()
        if session_id is not None:
            query += " WHERE session_id = ?"
            args = (session_id,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY purged_at DESC, raised_at DESC", args).fetchall()
        return [PurgeEntry(a, s, _from_epoch(r), _from_epoch(p), d, t) for a, s, r, p, d, t in rows]

    def review_counts(self, session_id: str | None = None) -> ReviewCounts:
        """Confirmed, rejected and pending alerts of a session (or all), purged ones included."""
        where = "" if session_id is None else " WHERE session_id = ?"
        args: tuple[str, ...] = () if session_id is None else (session_id,)
        with self._connect() as db:
            live = db.execute(
                f"SELECT decision, decided_at - raised_at FROM alerts{where}", args
            ).fetchall()
            purged = db.execute(
                f"SELECT decision, time_to_decision_s FROM purge_log{where}", args
            ).fetchall()
        rows = live + purged
        decisions = [d for d, _ in rows]
        return ReviewCounts(
            alerts=len(rows),
            confirmed=decisions.count("confirmed"),
            rejected=decisions.count("rejected"),
            pending=decisions.count(None),
            decision_times_s=tuple(float(t) for d, t in rows if d is not None and t is not None),
        )

    # ------------------------------------------------------------------ key rotation
    def rekey(self) -> int:
        """Re-seal every alert under the installation's current data key; returns the count."""
        ring = load_key_ring()
        if self._keys.key_id == ring.current:
            return 0
        old_sealer = self._sealer
        with self._connect() as db:
            rows = db.execute(f"SELECT {_COLUMNS}, capture FROM alerts").fetchall()
            new_keys = file_keys(self._store_id, ring.current, what=f"alert store {self.path}")
            new_sealer = Sealer(new_keys.seal)
            for row in rows:
                identity = old_sealer.open(row[8], _identity_ad(row))
                jpeg = old_sealer.open(row[12], _capture_ad(row[0]))
                db.execute(
                    "UPDATE alerts SET sealed = ?, capture = ? WHERE alert_id = ?",
                    (
                        new_sealer.seal(identity, _identity_ad(row)),
                        new_sealer.seal(jpeg, _capture_ad(row[0])),
                        row[0],
                    ),
                )
            db.execute("UPDATE meta SET value = ? WHERE key = 'key_id'", (new_keys.key_id,))
        self._keys, self._sealer = new_keys, new_sealer
        with self._connect() as db:
            db.isolation_level = None
            db.execute("VACUUM")
        return len(rows)


class _PurgeTimer(threading.Thread):
    """Daemon thread purging one alert store file at a fixed interval."""

    def __init__(self, store: AlertStore, interval: timedelta) -> None:
        super().__init__(name=f"lfr-alert-purge:{store.path.name}", daemon=True)
        self.store = store
        self.interval = interval
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(max(self.interval.total_seconds(), 0.01)):
            try:
                self.store.purge_expired()
            except (AlertError, sqlite3.Error, OSError):
                # reported, never silent: the next tick tries again
                LOGGER.exception("scheduled purge of %s failed", self.store.path)


_TIMERS: dict[str, _PurgeTimer] = {}
_TIMERS_LOCK = threading.Lock()
