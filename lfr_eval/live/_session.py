"""A live session's running figures and its deployment results summary.

:class:`LiveSession` is fed by the pipeline's threads (frames, recognitions, new faces, alerts)
and by the page (officer reviews); it answers :meth:`LiveSession.stats` at any time and
:meth:`LiveSession.summary` at the end, in the style forces publish their deployment results:
faces scanned, alerts, true and false alerts, and the false alert rate *per face scanned* (the
operational figure, which is not FPIR: see :mod:`lfr_eval.operational`).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from lfr_eval.live._alerts import (
    AlertError,
    AlertRecord,
    AlertStore,
    Decision,
    LiveAlert,
    ReviewCounts,
)
from lfr_eval.live._writer import AlertWriter, WriterStatus
from lfr_eval.metrics._intervals import RateEstimate, estimate_rate
from lfr_eval.operational import FalseAlertRates, one_in_n
from lfr_eval.wording import plural

#: Seconds of history used for the frames-per-second and latency figures.
RATE_WINDOW_S = 3.0

#: Alerts whose capture the session keeps in memory for the alerts panel (newest); older ones
#: are read from the store when shown.
RECENT_CAPTURES = 50

#: Filters of the officers' alert queue.
ALERT_FILTERS = ("all", "unreviewed", "confirmed", "rejected")

MSG_NOT_STORED_YET = (
    "alert {alert_id} is not stored yet (the alert store is failing: {error}); it is being "
    "retried, review it once it is saved"
)


@dataclass
class AlertEntry:
    """One alert of this session as the officers' queue shows it (kept in memory).

    Attributes
    ----------
    number : int
        1 for the session's first alert, 2 for the next…
    alert : LiveAlert
        The alert as raised (its capture is dropped from memory once the alert is older than
        the :data:`RECENT_CAPTURES` newest and stored).
    decision, reviewer, decided_at
        The officer's decision, once made through :meth:`LiveSession.review`.
    """

    number: int
    alert: LiveAlert
    decision: Decision | None = None
    reviewer: str | None = None
    decided_at: datetime | None = None

    @property
    def alert_id(self) -> str:
        return self.alert.alert_id

    @property
    def time_to_decision_s(self) -> float | None:
        if self.decided_at is None:
            return None
        return (self.decided_at - self.alert.raised_at).total_seconds()


@dataclass(frozen=True)
class AlertPage:
    """One page of the officers' alert queue, newest first.

    Attributes
    ----------
    entries : tuple of AlertEntry
    total : int
        Alerts matching the filter.
    offset : int
        Index of the first entry in the filtered list.
    """

    entries: tuple[AlertEntry, ...]
    total: int
    offset: int


@dataclass(frozen=True)
class LiveStats:
    """Running figures of a live session.

    Attributes
    ----------
    session_id : str
    started_at : datetime
        UTC.
    duration_s : float
        Seconds since the session started.
    faces_seen : int
        Distinct faces (tracks) detected.
    alerts : int
        Alerts raised.
    confirmed, rejected, pending : int
        Officer decisions on this session's alerts (stored alerts only; 0 without a store).
    median_time_to_decision_s : float or None
        Median seconds from alert to the officer's decision; ``None`` before any decision.
    median_time_to_alert_s : float or None
        Median seconds from a face's first detection to its alert.
    display_fps : float
        Frames per second through the video callback over the last few seconds.
    frame_latency_ms, frame_latency_p95_ms : float or None
        Median and 95th percentile time spent in the frame callback per frame, milliseconds.
    recognition_fps : float
        Recognition (detection) steps per second over the last few seconds.
    recognition_latency_ms : float or None
        Median time from a frame's arrival to its recognition result, milliseconds.
    frames : int
        Frames processed since the start.
    """

    session_id: str
    started_at: datetime
    duration_s: float
    faces_seen: int
    alerts: int
    confirmed: int
    rejected: int
    pending: int
    median_time_to_decision_s: float | None
    median_time_to_alert_s: float | None
    display_fps: float
    frame_latency_ms: float | None
    frame_latency_p95_ms: float | None
    recognition_fps: float
    recognition_latency_ms: float | None
    frames: int


def _rate(times: deque[float]) -> float:
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


def _median_ms(values: deque[float] | list[float]) -> float | None:
    return float(statistics.median(values)) * 1000 if values else None


def _p95_ms(values: deque[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]) * 1000


@dataclass(frozen=True)
class DeploymentSummary:
    """Results of one live session in the style forces publish after a deployment.

    Attributes
    ----------
    deployment : str
        Name or place of the deployment.
    started_at, ended_at : datetime
        UTC.
    watchlist_size : int
        Subjects on the watchlist searched at the end of the session.
    thresholds : tuple of float
        Face-match thresholds (cosine similarity) alerts were raised at, and the one in force
        at the end.
    engine : str
        The face engine (:attr:`EngineId.key`).
    faces_scanned : int
        Distinct faces detected (tracks).
    alerts, true_alerts, false_alerts, unreviewed_alerts : int
        Alerts raised; those the reviewing officer confirmed, rejected, or did not review.
    false_alert_rate : RateEstimate
        False alerts per face scanned, with a 95% Clopper–Pearson interval
        (``insufficient_data`` when no face was scanned). This is the operational figure, not
        FPIR (false positives per non-mated search at a watchlist size).
    rates : FalseAlertRates or None
        The same counts as the three labelled "false alert rates" (per face scanned, FPIR —
        unknown without the number of listed passers-by — and false alerts per alert).
    median_time_to_decision_s, median_time_to_alert_s : float or None
    retention_hours : float or None
        Retention period of alert data (``None`` when alerts were not stored).
    """

    deployment: str
    started_at: datetime
    ended_at: datetime
    watchlist_size: int
    thresholds: tuple[float, ...]
    engine: str
    faces_scanned: int
    alerts: int
    true_alerts: int
    false_alerts: int
    unreviewed_alerts: int
    false_alert_rate: RateEstimate
    rates: FalseAlertRates | None
    median_time_to_decision_s: float | None
    median_time_to_alert_s: float | None
    retention_hours: float | None

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    def false_alert_rate_text(self) -> str:
        """E.g. ``"1 in 340 faces scanned (1 of 340; 95% CI 0.01%-1.63%)"``."""
        est = self.false_alert_rate
        if est.insufficient_data:
            return "not enough data (no faces scanned)"
        ci = f"{est.confidence:.0%} CI {est.ci_low:.2%}-{est.ci_high:.2%}"
        if est.errors == 0:
            return f"none in {plural(est.trials, 'face')} scanned ({ci})"
        return (
            f"{one_in_n(est.rate)} faces scanned "  # plural: "1 in 40 faces"
            f"({est.errors} of {est.trials:,}; {ci})"
        )

    def lines(self) -> list[tuple[str, str]]:
        """The summary as (label, value) rows, in the published order."""
        minutes = self.duration_s / 60
        thresholds = ", ".join(f"{t:.2f}" for t in self.thresholds) or "n/a"
        retention = (
            f"alert data {plural(self.retention_hours, 'hour')}; non-matching captures never stored"
            if self.retention_hours is not None
            else "alerts not stored; non-matching captures never stored"
        )
        decision = (
            "n/a"
            if self.median_time_to_decision_s is None
            else f"{self.median_time_to_decision_s:.0f} s (median)"
        )
        return [
            ("Deployment", self.deployment or "live session"),
            (
                "Date and time (UTC)",
                f"{self.started_at:%Y-%m-%d %H:%M}-{self.ended_at:%H:%M} ({minutes:.0f} min)",
            ),
            ("Watchlist size", f"{self.watchlist_size:,}"),
            ("Face-match threshold", thresholds),
            ("Faces scanned", f"{self.faces_scanned:,}"),
            ("Alerts", f"{self.alerts:,}"),
            ("True alerts (confirmed by the reviewing officer)", f"{self.true_alerts:,}"),
            ("False alerts (rejected by the reviewing officer)", f"{self.false_alerts:,}"),
            ("Alerts not reviewed", f"{self.unreviewed_alerts:,}"),
            ("False alert rate (false alerts per face scanned)", self.false_alert_rate_text()),
            ("Time from alert to officer decision", decision),
            ("Arrests", "not recorded by the workbench"),
            ("Engine", self.engine),
            ("Retention", retention),
        ]

    def to_text(self) -> str:
        """Plain text, one ``label: value`` line each, headed like a force's results page."""
        body = "\n".join(f"{label}: {value}" for label, value in self.lines())
        note = (
            "The false alert rate above is false alerts divided by faces scanned, the figure "
            "forces publish. It is not FPIR (false positives per search by a person not on the "
            "watchlist, at a given watchlist size), which an evaluation measures."
        )
        return f"Live facial recognition deployment results\n{body}\n\n{note}"

    def to_dict(self) -> dict[str, Any]:
        est = self.false_alert_rate
        return {
            "deployment": self.deployment,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "watchlist_size": self.watchlist_size,
            "thresholds": list(self.thresholds),
            "engine": self.engine,
            "faces_scanned": self.faces_scanned,
            "alerts": self.alerts,
            "true_alerts": self.true_alerts,
            "false_alerts": self.false_alerts,
            "unreviewed_alerts": self.unreviewed_alerts,
            "false_alert_rate_per_face_scanned": {
                "rate": None if est.insufficient_data else est.rate,
                "ci_low": est.ci_low,
                "ci_high": est.ci_high,
                "confidence": est.confidence,
                "method": est.method,
                "insufficient_data": est.insufficient_data,
            },
            "median_time_to_decision_s": self.median_time_to_decision_s,
            "median_time_to_alert_s": self.median_time_to_alert_s,
            "retention_hours": self.retention_hours,
        }


class LiveSession:
    """Running figures of one live stream; safe to call from several threads.

    Parameters
    ----------
    store : AlertStore, optional
        Where alerts and their captures are kept for review. Without one, alerts are counted
        and kept in memory only (:attr:`recent_alerts`).
    deployment : str
        Name or place of the deployment, for the summary.
    session_id : str, optional
        Default: a new random id.
    clock : callable
        Monotonic clock in seconds (the pipeline's clock).
    """

    def __init__(
        self,
        store: AlertStore | None = None,
        *,
        deployment: str = "",
        session_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.deployment = deployment
        self.session_id = session_id or uuid.uuid4().hex
        self.started_at = datetime.now(timezone.utc)
        self._clock = clock
        self._start_t = clock()
        self._lock = threading.Lock()
        self._faces = 0
        self._alerts = 0
        self._frames = 0
        self._frame_times: deque[float] = deque()
        self._frame_latency: deque[float] = deque(maxlen=600)
        self._recognition_times: deque[float] = deque()
        self._recognition_latency: deque[float] = deque(maxlen=200)
        self._time_to_alert: list[float] = []
        self._alert_thresholds: list[float] = []
        #: the latest alerts (with captures, in memory), newest last
        self.recent_alerts: deque[LiveAlert] = deque(maxlen=RECENT_CAPTURES)
        self._entries: list[AlertEntry] = []
        self._by_id: dict[str, AlertEntry] = {}
        self._version = 0
        #: persists alerts on its own thread (None without a store)
        self.writer: AlertWriter | None = AlertWriter(store) if store is not None else None
        self.ended_at: datetime | None = None

    # ------------------------------------------------------------------ fed by the pipeline
    def on_new_face(self, track_id: int, t: float) -> None:
        with self._lock:
            self._faces += 1

    def on_frame(self, t: float, latency_s: float) -> None:
        with self._lock:
            self._frames += 1
            self._frame_times.append(t)
            while self._frame_times and self._frame_times[0] < t - RATE_WINDOW_S:
                self._frame_times.popleft()
            self._frame_latency.append(latency_s)

    def on_recognition(self, t: float, latency_s: float, *, n_faces: int, n_embedded: int) -> None:
        now = self._clock()
        with self._lock:
            self._recognition_times.append(now)
            while self._recognition_times and self._recognition_times[0] < now - RATE_WINDOW_S:
                self._recognition_times.popleft()
            self._recognition_latency.append(latency_s)

    def on_alert(self, alert: LiveAlert) -> None:
        """Count an alert at once and hand it to the writer thread to be stored.

        Never waits for storage (see :mod:`lfr_eval.live._writer`): the recognition thread
        carries on while the alert is written, or retried if the write fails.
        """
        with self._lock:
            self._alerts += 1
            self._time_to_alert.append(alert.time_to_alert_s)
            self._alert_thresholds.append(alert.threshold)
            self.recent_alerts.append(alert)
            entry = AlertEntry(number=len(self._entries) + 1, alert=alert)
            self._entries.append(entry)
            self._by_id[alert.alert_id] = entry
            self._version += 1
            if len(self._entries) > RECENT_CAPTURES:
                old = self._entries[-RECENT_CAPTURES - 1]
                if self.writer is not None and self.writer.is_written(old.alert_id):
                    old.alert = _without_capture(old.alert)
        if self.writer is not None:
            self.writer.submit(alert)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every alert raised so far is stored; False on timeout (or no store)."""
        return self.writer.flush(timeout) if self.writer is not None else True

    def writer_status(self) -> WriterStatus | None:
        """The alert writer's state (``None`` without a store)."""
        return self.writer.status() if self.writer is not None else None

    def close(self, timeout: float = 10.0) -> WriterStatus | None:
        """Store what is still queued and stop the writer thread."""
        return self.writer.close(timeout) if self.writer is not None else None

    # ------------------------------------------------------------------ the officers' queue
    @property
    def alerts_version(self) -> int:
        """Increases whenever an alert is raised or reviewed (to redraw only on change)."""
        with self._lock:
            return self._version

    def alert_page(self, status: str = "all", *, offset: int = 0, limit: int = 5) -> AlertPage:
        """A page of this session's alerts, newest first, read from memory (no storage access).

        Parameters
        ----------
        status : {"all", "unreviewed", "confirmed", "rejected"}
        offset, limit : int
            First entry (>= 0) and page size (> 0) in the filtered list.
        """
        if status not in ALERT_FILTERS:
            raise ValueError(f"alert filter must be one of {ALERT_FILTERS}, got {status!r}")
        with self._lock:
            wanted = [
                e
                for e in reversed(self._entries)
                if status == "all"
                or (status == "unreviewed" and e.decision is None)
                or e.decision == status
            ]
        offset = max(0, min(int(offset), max(0, len(wanted) - 1)))
        return AlertPage(tuple(wanted[offset : offset + max(1, int(limit))]), len(wanted), offset)

    def entry(self, alert_id: str) -> AlertEntry | None:
        with self._lock:
            return self._by_id.get(alert_id)

    # ------------------------------------------------------------------ fed by the page
    def review(
        self, alert_id: str, decision: Decision, reviewer: str, *, now: datetime | None = None
    ) -> AlertRecord:
        """Record the reviewing officer's decision (see :meth:`AlertStore.review`)."""
        if self.store is None or self.writer is None:
            raise ValueError("this session has no alert store: its alerts cannot be reviewed")
        if self.writer.is_pending(alert_id):
            self.writer.flush(timeout=5.0)
            if self.writer.is_pending(alert_id):
                raise AlertError(
                    MSG_NOT_STORED_YET.format(
                        alert_id=alert_id, error=self.writer.status().last_error
                    )
                )
        record = self.store.review(alert_id, decision, reviewer, now=now)
        with self._lock:
            entry = self._by_id.get(alert_id)
            if entry is not None:
                entry.decision = record.decision
                entry.reviewer = record.reviewer
                entry.decided_at = record.decided_at
                self._version += 1
        return record

    def review_counts(self) -> ReviewCounts:
        """Confirmed, rejected and pending alerts of this session.

        Counted from the session's own record of its alerts and of the decisions made through
        :meth:`review` (the page's only way to decide), so the statistics refreshing every second
        never touch the store.
        """
        with self._lock:
            decisions = [e.decision for e in self._entries]
            times = tuple(
                float(e.time_to_decision_s)
                for e in self._entries
                if e.time_to_decision_s is not None
            )
            return ReviewCounts(
                alerts=self._alerts,
                confirmed=decisions.count("confirmed"),
                rejected=decisions.count("rejected"),
                pending=decisions.count(None),
                decision_times_s=times,
            )

    # ------------------------------------------------------------------ reading
    def stats(self) -> LiveStats:
        """The figures now."""
        reviews = self.review_counts()
        now = self._clock()
        with self._lock:
            return LiveStats(
                session_id=self.session_id,
                started_at=self.started_at,
                duration_s=now - self._start_t,
                faces_seen=self._faces,
                alerts=self._alerts,
                confirmed=reviews.confirmed,
                rejected=reviews.rejected,
                pending=reviews.pending,
                median_time_to_decision_s=reviews.median_time_to_decision_s,
                median_time_to_alert_s=(
                    float(statistics.median(self._time_to_alert)) if self._time_to_alert else None
                ),
                display_fps=_rate(self._frame_times),
                frame_latency_ms=_median_ms(self._frame_latency),
                frame_latency_p95_ms=_p95_ms(self._frame_latency),
                recognition_fps=_rate(self._recognition_times),
                recognition_latency_ms=_median_ms(self._recognition_latency),
                frames=self._frames,
            )

    @property
    def time_to_alert_s(self) -> tuple[float, ...]:
        """Seconds from first detection to alert, one per alert, in order."""
        with self._lock:
            return tuple(self._time_to_alert)

    def summary(
        self,
        *,
        watchlist_size: int,
        threshold: float,
        engine: str,
        ended_at: datetime | None = None,
    ) -> DeploymentSummary:
        """End-of-session results in the forces' published style.

        Parameters
        ----------
        watchlist_size : int
            Subjects searched.
        threshold : float
            Face-match threshold in force at the end (cosine similarity).
        engine : str
            Engine key, e.g. ``engine.engine_id.key``.
        ended_at : datetime, optional
            UTC; default now (and remembered as :attr:`ended_at`).
        """
        self.ended_at = ended_at or self.ended_at or datetime.now(timezone.utc)
        stats = self.stats()
        reviews = self.review_counts()
        with self._lock:
            thresholds = tuple(sorted({*self._alert_thresholds, float(threshold)}))
        faces = stats.faces_seen
        alerts = max(stats.alerts, reviews.alerts)
        rates = None
        if faces > 0 and reviews.rejected <= alerts <= faces:
            rates = FalseAlertRates.from_deployment_counts(
                faces,
                alerts,
                reviews.rejected,
                watchlist_size=watchlist_size,
                threshold=float(threshold),
            )
        retention = None if self.store is None else self.store.retention.total_seconds() / 3600
        return DeploymentSummary(
            deployment=self.deployment,
            started_at=self.started_at,
            ended_at=self.ended_at,
            watchlist_size=int(watchlist_size),
            thresholds=thresholds,
            engine=engine,
            faces_scanned=faces,
            alerts=alerts,
            true_alerts=reviews.confirmed,
            false_alerts=reviews.rejected,
            unreviewed_alerts=max(0, alerts - reviews.confirmed - reviews.rejected),
            false_alert_rate=estimate_rate(reviews.rejected, faces),
            rates=rates,
            median_time_to_decision_s=reviews.median_time_to_decision_s,
            median_time_to_alert_s=stats.median_time_to_alert_s,
            retention_hours=retention,
        )


def _without_capture(alert: LiveAlert) -> LiveAlert:
    """The alert with its in-memory capture dropped (it is in the store)."""
    import dataclasses

    import numpy as np

    return dataclasses.replace(alert, capture=np.zeros((0, 0, 3), np.uint8))
