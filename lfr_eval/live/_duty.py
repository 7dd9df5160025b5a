"""A wall-clock duty cycle for the live recognition worker: a bounded share of the CPU.

The recognition worker runs detection, landmarks, embedding and search in steps, one frame at a
time. Left alone it takes every cycle it can, and on a 2-core machine the video path (WebRTC
decode, drawing, VP8 encode) and the browser then go short. :class:`DutyCycle` holds it to a
share of the wall clock: after a step that took ``w`` seconds from start to end, the next starts
no sooner than ``w / share`` after it began. Over any run of steps the worker is then busy at
most ``share`` of the elapsed time, whatever a step costs on this machine, and with one-threaded
runtimes (the live engine's onnxruntime session and LiteRT run on the worker's own thread,
without a pool) a busy worker uses at most one core, so recognition uses at most ``share`` of
one core.

Why wall time and not the thread's CPU time (the first version of this bound): runtimes' worker
pools and spin-waits put CPU on other threads or count waiting as work, so a CPU-time bound
either missed work or throttled far below its intent (``benchmarks/RESULTS.md``). Wall time
counts everything the step waited for; on a loaded machine a step takes longer and the worker
yields more, which is the intent: the video keeps its frames.

The cycle also records what the worker actually used (busy wall time and the thread's CPU time
over the last seconds) for the Live page.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from lfr_eval.faces import FaceEngine

#: Seconds over which :meth:`DutyCycle.load` reports the share used.
LOAD_WINDOW_S = 5.0
#: Seconds of step history kept (:meth:`DutyCycle.recent_steps`; at most ~20 steps a second).
KEEP_S = 120.0


@dataclass(frozen=True)
class RecognitionLoad:
    """What the recognition worker used over the last :data:`LOAD_WINDOW_S` seconds.

    Attributes
    ----------
    share_bound : float
        The bound in force, a fraction of one core's wall time in (0, 1].
    busy_share : float
        Fraction of the window the worker spent inside steps (wall time), in [0, 1]; at most
        ``share_bound`` apart from the step in progress.
    cpu_share : float
        CPU time of the worker thread over the window, as a fraction of one core (>= 0). With
        one-threaded runtimes this is all of recognition's CPU; a runtime's own pool threads,
        if any, are not counted.
    steps_per_s : float
        Steps that ended in the window, per second.
    """

    share_bound: float
    busy_share: float
    cpu_share: float
    steps_per_s: float


class DutyCycle:
    """Keep a worker busy at most ``share`` of the wall clock (see module docstring).

    Parameters
    ----------
    clock : callable
        Monotonic wall clock, seconds.
    cpu_clock : callable
        CPU time of the calling thread, seconds (default :func:`time.thread_time`); read only
        by the worker thread, inside :meth:`step`.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._lock = threading.Lock()
        self._last_start = -float("inf")
        self._last_wall_s = 0.0
        # (start, end, cpu seconds) of recent steps
        self._steps: deque[tuple[float, float, float]] = deque()

    def pause(self, share: float, min_interval_s: float = 0.0) -> float:
        """Seconds to wait before the next step may start (<= 0: start now).

        Parameters
        ----------
        share : float
            Fraction of wall time the worker may be busy, in (0, 1].
        min_interval_s : float
            Shortest time between two step starts, seconds (>= 0).
        """
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        with self._lock:
            since = self._clock() - self._last_start
            return max(float(min_interval_s), self._last_wall_s / share) - since

    @contextmanager
    def step(self) -> Iterator[None]:
        """Time one step (wall and this thread's CPU); the next :meth:`pause` counts it."""
        start, cpu_start = self._clock(), self._cpu_clock()
        with self._lock:
            self._last_start = start
        try:
            yield
        finally:
            end, cpu = self._clock(), self._cpu_clock() - cpu_start
            with self._lock:
                self._last_wall_s = max(0.0, end - start)
                self._steps.append((start, end, max(0.0, cpu)))
                while self._steps and self._steps[0][1] < end - KEEP_S:
                    self._steps.popleft()

    def load(self, share_bound: float, window_s: float = LOAD_WINDOW_S) -> RecognitionLoad:
        """Share of the last ``window_s`` seconds the worker was busy, and its CPU share."""
        now = self._clock()
        since = now - window_s
        with self._lock:
            steps = list(self._steps)
        busy = sum(max(0.0, end - max(start, since)) for start, end, _ in steps if end > since)
        # a step's CPU time, pro rata for a step begun before the window
        cpu = sum(
            c * (end - max(start, since)) / (end - start) if end > start else c
            for start, end, c in steps
            if end > since
        )
        ended = sum(1 for _, end, _ in steps if end > since)
        return RecognitionLoad(
            share_bound=float(share_bound),
            busy_share=min(1.0, busy / window_s),
            cpu_share=cpu / window_s,
            steps_per_s=ended / window_s,
        )

    def recent_steps(self) -> list[tuple[float, float, float]]:
        """``(start, end, cpu seconds)`` of the steps of the last :data:`KEEP_S` seconds,
        oldest first (wall clock of :attr:`clock`)."""
        with self._lock:
            return list(self._steps)


#: onnxruntime threads of the live engine's embedder: one, on the worker's own thread.
LIVE_RECOGNITION_THREADS = 1


def live_engine(engine: FaceEngine) -> FaceEngine:
    """The engine the live pipeline should use: ``engine`` with one-threaded runtimes where it
    offers them, so the recognition worker's share bound (:class:`DutyCycle`) bounds its CPU.

    dlib engines with the onnxruntime ResNet get their own one-thread session
    (:meth:`lfr_eval.faces._dlib.DlibEngine.with_threads`; models shared, embeddings equal).
    Other engines are returned as they are: their runtimes' threads are their own, and the share
    bound then limits the worker's busy time, not its cores (:func:`live_engine_threads` says
    which).
    """
    from lfr_eval.faces._dlib import DlibEngine

    if isinstance(engine, DlibEngine):
        return engine.with_threads(LIVE_RECOGNITION_THREADS)
    return engine


def live_engine_threads(engine: FaceEngine) -> int | None:
    """Threads of the engine's embedding runtime when known (1 for :func:`live_engine`'s dlib
    engines), else ``None``."""
    from lfr_eval.faces._dlib import DlibEngine

    # dlib-torch engines embed with their own runner (threads not ours to count)
    if isinstance(engine, DlibEngine) and engine.backend == "dlib":
        return engine.descriptor_threads
    return None
