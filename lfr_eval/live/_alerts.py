"""Alerts of the live page, their captures, officer review, and retention.

Retention follows the operational rules in the project's domain brief (from a force's public
page): captures of faces that do not match the watchlist are never written anywhere (they live
only in memory while the face is tracked); alert data is kept for a retention period (24 hours
by default) and then purged automatically and irretrievably. Only :class:`AlertStore` writes
captures, and it refuses any capture whose score is below the threshold it was raised at.

The store is one SQLite file in the workspace, ``<workspace>/live/alerts.sqlite``. Captures are
JPEG blobs inside it rather than loose files, and every connection sets SQLite's
``secure_delete`` so a purged capture's bytes are overwritten with zeros in the file, not just
unlinked from an index. A purge leaves a line in a purge log (which alert, when raised, when
purged, the officer's decision) with no face, no score and no subject, so deployment counts
survive the purge and the purge itself can be audited.
"""

from __future__ import annotations

import logging
import sqlite3
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from lfr_eval.errors import LfrError
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
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    subject_id TEXT NOT NULL,
    subject_name TEXT NOT NULL,
    score REAL NOT NULL,
    threshold REAL NOT NULL,
    raised_at REAL NOT NULL,
    time_to_alert_s REAL NOT NULL,
    expires_at REAL NOT NULL,
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

_COLUMNS = (
    "alert_id, session_id, track_id, subject_id, subject_name, score, threshold, raised_at, "
    "time_to_alert_s, expires_at, decision, reviewer, decided_at"
)


def _record(row: tuple) -> AlertRecord:
    return AlertRecord(
        alert_id=row[0],
        session_id=row[1],
        track_id=int(row[2]),
        subject_id=row[3],
        subject_name=row[4],
        score=float(row[5]),
        threshold=float(row[6]),
        raised_at=_from_epoch(row[7]),
        time_to_alert_s=float(row[8]),
        expires_at=_from_epoch(row[9]),
        decision=row[10],
        reviewer=row[11],
        decided_at=_from_epoch(row[12]),
    )


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

    Parameters
    ----------
    path : path
        The SQLite file (created with its folder if missing).
    retention : timedelta
        How long an alert and its capture are kept (0: purged at the next purge).

    Use :meth:`open` to get the store of a workspace.
    """

    def __init__(self, path: str | Path, *, retention: timedelta = DEFAULT_RETENTION) -> None:
        if retention < timedelta(0):
            raise ValueError(f"retention must not be negative, got {retention}")
        self.path = Path(path)
        self.retention = retention
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def open(
        cls, workspace: str | Path | None = None, *, retention: timedelta = DEFAULT_RETENTION
    ) -> AlertStore:
        """The alert store of a workspace (default: :func:`lfr_eval.workspace.workspace_dir`)."""
        return cls(workspace_dir(workspace) / ALERTS_DB, retention=retention)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = sqlite3.connect(self.path, timeout=30)
            try:
                # Overwrite deleted content with zeros so a purged capture cannot be recovered
                # from the file's free pages.
                db.execute("PRAGMA secure_delete = ON")
                with db:
                    yield db
            finally:
                db.close()

    # ------------------------------------------------------------------ writing
    def add(self, alert: LiveAlert) -> AlertRecord:
        """Store an alert and its capture.

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
        raised = _utc(alert.raised_at)
        expires = raised + self.retention
        with self._connect() as db:
            db.execute(
                "INSERT INTO alerts (alert_id, session_id, track_id, subject_id, subject_name, "
                "score, threshold, raised_at, time_to_alert_s, expires_at, capture) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.alert_id,
                    alert.session_id,
                    int(alert.track_id),
                    alert.subject_id,
                    alert.subject_name,
                    float(alert.score),
                    float(alert.threshold),
                    raised.timestamp(),
                    float(alert.time_to_alert_s),
                    expires.timestamp(),
                    jpeg,
                ),
            )
        return self.get(alert.alert_id)

    def review(
        self,
        alert_id: str,
        decision: Decision,
        reviewer: str,
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
        reviewer : str
            Officer's name or number.
        now : datetime or float, optional
            Time of the decision (UTC datetime or epoch seconds); default the current time.

        Raises
        ------
        AlertError
            Unknown or purged alert, a second review, a bad decision or an empty reviewer.
        """
        if decision not in DECISIONS:
            raise AlertError(MSG_BAD_DECISION.format(decision=decision))
        reviewer = (reviewer or "").strip()
        if not reviewer:
            raise AlertError(MSG_NO_REVIEWER)
        decided = _utc(now)
        with self._connect() as db:
            row = db.execute(
                "SELECT decision, reviewer FROM alerts WHERE alert_id = ?", (alert_id,)
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
        return self.get(alert_id)

    def purge_expired(self, now: datetime | float | None = None) -> PurgeReport:
        """Delete every alert, with its capture, whose retention period has ended.

        That is every alert past the expiry set when it was stored, and every alert older than
        this store's retention (so shortening the retention purges older alerts at once).

        Parameters
        ----------
        now : datetime or float, optional
            The current time (UTC datetime or epoch seconds); default the clock.

        Returns
        -------
        PurgeReport
            The purged alert ids (also logged at INFO on the ``lfr_eval.live`` logger and kept
            in :meth:`purge_log`).
        """
        moment = _utc(now)
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
                "purged %d alert(s) and their captures older than %s: %s",
                report.count,
                self.retention,
                ", ".join(report.alert_ids),
            )
        return report

    # ------------------------------------------------------------------ reading
    def get(self, alert_id: str) -> AlertRecord:
        """One alert (without its capture).

        Raises
        ------
        AlertError
            Unknown or purged alert.
        """
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM alerts WHERE alert_id = ?", (alert_id,)
            ).fetchone()
        if row is None:
            raise AlertError(MSG_UNKNOWN_ALERT.format(alert_id=alert_id))
        return _record(row)

    def alerts(self, session_id: str | None = None) -> list[AlertRecord]:
        """Stored alerts, newest first; only one session's if ``session_id`` is given."""
        query = f"SELECT {_COLUMNS} FROM alerts"
        args: tuple = ()
        if session_id is not None:
            query += " WHERE session_id = ?"
            args = (session_id,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY raised_at DESC, alert_id", args).fetchall()
        return [_record(r) for r in rows]

    def capture(self, alert_id: str) -> np.ndarray:
        """The capture of an alert, RGB uint8.

        Raises
        ------
        AlertError
            Unknown or purged alert.
        """
        with self._connect() as db:
            row = db.execute(
                "SELECT capture FROM alerts WHERE alert_id = ?", (alert_id,)
            ).fetchone()
        if row is None:
            raise AlertError(MSG_UNKNOWN_ALERT.format(alert_id=alert_id))
        bgr = cv2.imdecode(np.frombuffer(row[0], np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def capture_jpeg(self, alert_id: str) -> bytes:
        """The stored JPEG bytes of an alert's capture."""
        with self._connect() as db:
            row = db.execute(
                "SELECT capture FROM alerts WHERE alert_id = ?", (alert_id,)
            ).fetchone()
        if row is None:
            raise AlertError(MSG_UNKNOWN_ALERT.format(alert_id=alert_id))
        return bytes(row[0])

    def purge_log(self, session_id: str | None = None) -> list[PurgeEntry]:
        """Purged alerts, most recently purged first."""
        query = "SELECT alert_id, session_id, raised_at, purged_at, decision, time_to_decision_s "
        query += "FROM purge_log"
        args: tuple = ()
        if session_id is not None:
            query += " WHERE session_id = ?"
            args = (session_id,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY purged_at DESC, raised_at DESC", args).fetchall()
        return [PurgeEntry(a, s, _from_epoch(r), _from_epoch(p), d, t) for a, s, r, p, d, t in rows]

    def review_counts(self, session_id: str | None = None) -> ReviewCounts:
        """Confirmed, rejected and pending alerts of a session (or all), purged ones included."""
        where = "" if session_id is None else " WHERE session_id = ?"
        args: tuple = () if session_id is None else (session_id,)
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
