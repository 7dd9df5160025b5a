"""Persisting alerts off the recognition thread: a bounded queue and one writer thread.

The recognition worker must never wait for storage: writing an alert (JPEG encoding, encryption,
an SQLite insert that can wait up to 30 s for a lock held by another process) used to run on it,
so a locked database stalled recognition and a failed write killed the worker and lost the alert.
Now the worker hands the alert to :meth:`AlertWriter.submit` (never blocks) and carries on; the
writer thread stores it with :meth:`AlertStore.add`, retrying with back-off when a write fails,
and reports its state (:class:`WriterStatus`) for the page to show.

An alert is lost only when the queue is full (``capacity`` alerts waiting: the store has been
failing for a long time) or when it still cannot be written after ``max_attempts``; both are
counted in :attr:`WriterStatus.lost` and logged, never silent.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lfr_eval.live._alerts import AlertError, AlertRecord, LiveAlert
from lfr_eval.wording import plural

LOGGER = logging.getLogger("lfr_eval.live")

#: Alerts waiting to be written before new ones are refused (and counted as lost).
DEFAULT_CAPACITY = 1000
#: First retry after this many seconds; doubles on each failure up to :data:`RETRY_MAX_S`.
RETRY_INITIAL_S = 0.2
RETRY_MAX_S = 5.0
#: The writer thread ends after this many seconds with nothing to write (restarted on demand).
IDLE_EXIT_S = 5.0
#: Attempts per alert before it is given up (about ten minutes at the maximum back-off).
DEFAULT_MAX_ATTEMPTS = 120


class _Store(Protocol):
    def add(self, alert: LiveAlert) -> AlertRecord: ...

    def get(self, alert_id: str) -> AlertRecord: ...


@dataclass(frozen=True)
class WriterStatus:
    """What the alert writer has done so far.

    Attributes
    ----------
    pending : int
        Alerts raised and not yet stored (queued, or being retried).
    written : int
        Alerts stored.
    failed_attempts : int
        Write attempts that failed (each is retried).
    lost : int
        Alerts given up: queue full, or still failing after the maximum attempts.
    last_error : str or None
        The most recent write failure, ``None`` if there was none.
    retrying : bool
        The writer is waiting to retry a failed write now.
    """

    pending: int
    written: int
    failed_attempts: int
    lost: int
    last_error: str | None
    retrying: bool

    @property
    def healthy(self) -> bool:
        """No alert lost and none waiting on a failed write."""
        return self.lost == 0 and not self.retrying


class AlertWriter:
    """Stores alerts on its own thread, in the order raised, retrying failed writes.

    Parameters
    ----------
    store : AlertStore
        Anything with the store's ``add`` and ``get`` methods.
    capacity : int
        Most alerts waiting at once (> 0).
    max_attempts : int
        Attempts per alert before it is counted as lost (> 0).
    retry_initial_s, retry_max_s : float
        Back-off between attempts, seconds: starts at ``retry_initial_s``, doubles, capped.
    on_written : callable, optional
        ``on_written(record)`` after each alert is stored (on the writer thread).
    """

    def __init__(
        self,
        store: _Store,
        *,
        capacity: int = DEFAULT_CAPACITY,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_initial_s: float = RETRY_INITIAL_S,
        retry_max_s: float = RETRY_MAX_S,
        on_written: Callable[[AlertRecord], None] | None = None,
    ) -> None:
        if capacity <= 0 or max_attempts <= 0:
            raise ValueError("capacity and max_attempts must be positive")
        self.store = store
        self.max_attempts = int(max_attempts)
        self.retry_initial_s = float(retry_initial_s)
        self.retry_max_s = float(retry_max_s)
        self.on_written = on_written
        self._queue: queue.Queue[LiveAlert] = queue.Queue(maxsize=int(capacity))
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: set[str] = set()
        self._written_ids: set[str] = set()
        self._written = 0
        self._failed = 0
        self._lost = 0
        self._last_error: str | None = None
        self._retrying = False

    # ------------------------------------------------------------------ caller side
    def submit(self, alert: LiveAlert) -> bool:
        """Queue an alert to be stored; returns at once.

        Returns
        -------
        bool
            False when the queue is full: the alert is counted as lost and logged.
        """
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("the alert writer is closed")
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                self._lost += 1
                self._last_error = (
                    f"alert {alert.alert_id} not stored: {plural(self._queue.maxsize, 'alert')} "
                    "already waiting for the alert store"
                )
                LOGGER.error(self._last_error)
                return False
            self._pending.add(alert.alert_id)
            if self._thread is None:
                # started on demand; it ends itself after IDLE_EXIT_S without work
                self._thread = threading.Thread(
                    target=self._run, name="lfr-live-alert-writer", daemon=True
                )
                self._thread.start()
        return True

    def is_pending(self, alert_id: str) -> bool:
        """The alert was submitted and is not stored yet (nor given up)."""
        with self._lock:
            return alert_id in self._pending

    def is_written(self, alert_id: str) -> bool:
        with self._lock:
            return alert_id in self._written_ids

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every submitted alert is stored or given up; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining if remaining is None else min(remaining, 0.5))
            return True

    def status(self) -> WriterStatus:
        with self._lock:
            return WriterStatus(
                pending=len(self._pending),
                written=self._written,
                failed_attempts=self._failed,
                lost=self._lost,
                last_error=self._last_error,
                retrying=self._retrying,
            )

    def close(self, timeout: float = 10.0) -> WriterStatus:
        """Write what is queued (for up to ``timeout`` seconds), then stop the thread.

        Alerts still unwritten when the time is up are counted as lost and logged.
        """
        self.flush(timeout)
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        with self._lock:
            if self._pending:
                self._lost += len(self._pending)
                LOGGER.error(
                    "%s not stored when the live session closed: %s",
                    plural(len(self._pending), "alert"),
                    self._last_error,
                )
                self._pending.clear()
                self._idle.notify_all()
        return self.status()

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        idle_since = time.monotonic()
        while not self._stop.is_set():
            try:
                alert = self._queue.get(timeout=0.5)
            except queue.Empty:
                with self._lock:
                    # submit() queues under this lock, so nothing can slip in between
                    if self._queue.empty() and time.monotonic() - idle_since > IDLE_EXIT_S:
                        self._thread = None
                        return
                continue
            self._write(alert)
            idle_since = time.monotonic()
        with self._lock:
            self._thread = None

    def _write(self, alert: LiveAlert) -> None:
        delay = self.retry_initial_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                record = self.store.add(alert)
            except AlertError as exc:
                # the store refused this alert itself (e.g. below its threshold): retrying
                # cannot help, unless the alert is in fact stored (a failure after the insert)
                if self._already_stored(alert):
                    self._done(alert, None)
                    return
                self._give_up(alert, f"the alert store refused alert {alert.alert_id}: {exc}")
                return
            except Exception as exc:  # noqa: BLE001 - any storage failure is retried
                if attempt > 1 and self._already_stored(alert):
                    self._done(alert, None)
                    return
                message = f"alert {alert.alert_id} not stored yet ({type(exc).__name__}: {exc})"
                with self._lock:
                    self._failed += 1
                    self._last_error = message
                    self._retrying = True
                LOGGER.warning("%s; attempt %d, retrying in %.1f s", message, attempt, delay)
                if self._stop.wait(delay):
                    return  # closing: close() counts it as lost
                delay = min(self.retry_max_s, delay * 2)
                continue
            self._done(alert, record)
            return
        self._give_up(
            alert, f"alert {alert.alert_id} not stored after {plural(self.max_attempts, 'try')}"
        )

    def _already_stored(self, alert: LiveAlert) -> bool:
        try:
            self.store.get(alert.alert_id)
        except Exception:  # noqa: BLE001 - unknown alert or store still failing
            return False
        return True

    def _done(self, alert: LiveAlert, record: AlertRecord | None) -> None:
        with self._lock:
            self._pending.discard(alert.alert_id)
            self._written_ids.add(alert.alert_id)
            self._written += 1
            self._retrying = False
            self._idle.notify_all()
        if record is not None and self.on_written is not None:
            self.on_written(record)

    def _give_up(self, alert: LiveAlert, message: str) -> None:
        with self._lock:
            self._pending.discard(alert.alert_id)
            self._lost += 1
            self._last_error = message
            self._retrying = False
            self._idle.notify_all()
        LOGGER.error(message)
