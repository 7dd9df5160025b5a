"""The live matching pipeline: detect, track, embed, search the watchlist, raise alerts.

Two threads share the work so the video stays smooth on a CPU:

- the **video thread** (streamlit-webrtc's frame callback) calls :meth:`LivePipeline.process`
  for every frame. It only hands the frame to the worker (replacing any frame the worker has not
  started on: stale frames are dropped, never queued) and returns the current tracks with their
  boxes moved to where the faces should be now. It never waits for recognition.
- the **recognition worker** takes the newest frame, detects faces (on a downscaled copy), updates
  the :class:`~lfr_eval.live.FaceTracker`, and embeds and searches only the faces that need it: a
  new track, a track last checked more than ``recheck_interval_s`` ago (``new_face_recheck_s``
  during the first moments of a face not matched yet), one whose box moved a lot, or every track
  after the watchlist changed. A face is not re-embedded every frame.

An alert is raised when a track's best watchlist similarity is at or above the threshold in
force, once per passage of a person: once per track and subject, and not again while the
subject was matched within ``alert_cooldown_s`` (a face lost for a moment comes back on a new
track). Alerts are stored by the session's writer thread, never on the recognition thread.
The threshold is read from :class:`LiveSettings` on every frame and every worker step, so
moving the slider acts at once. A track's capture (a crop of the frame around the face) stays in
memory; it reaches disk only through the session's alert store, and only for an alert.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol, cast

import cv2
import numpy as np
from typing_extensions import Self

from lfr_eval.faces import Detections, FaceEngine, ensure_rgb_uint8
from lfr_eval.live._alerts import LiveAlert
from lfr_eval.live._duty import DutyCycle, RecognitionLoad
from lfr_eval.live._session import LiveSession
from lfr_eval.live._settings import LiveConfig, LiveSettings, default_same_face_similarity
from lfr_eval.live._tracker import FaceTracker, TrackState, box_iou
from lfr_eval.search import SearchIndex

if TYPE_CHECKING:
    from lfr_eval.watchlist import Watchlist

LOGGER = logging.getLogger("lfr_eval.live")

#: Margin added around a face box for the alert capture, as a fraction of the box size.
CAPTURE_MARGIN = 0.3

#: A track matched by the latest detection step is drawn for up to this long after that step:
#: on a busy CPU the next step can come late, and the face is still there until a step says
#: otherwise. Past it (recognition stalled), boxes go.
DRAW_STALE_S = 2.0


def _drawn(track: TrackState, t: float, config: LiveConfig) -> bool:
    """Whether a track is drawn on the frame at stream time ``t``.

    Matched by the latest detection step: drawn (up to :data:`DRAW_STALE_S`). Missed by the
    latest steps: drawn at its predicted place until ``config.hold_unseen_s`` after it was
    last detected, so a face the detector skips for a frame or two does not flicker; past that
    it is hidden (the face has probably left), though the track is kept until ``max_missing_s``
    in case the detector missed it.
    """
    unseen = t - track.last_seen_t
    if track.misses == 0:
        return unseen <= DRAW_STALE_S
    return unseen <= config.hold_unseen_s


@dataclass(frozen=True)
class LiveWatchlist:
    """The searchable watchlist as the live threads see it: an immutable snapshot.

    Attributes
    ----------
    index : SearchIndex
        Templates to search (see :meth:`lfr_eval.watchlist.Watchlist.search_index`).
    names : mapping of str to str
        Display name of each subject id (the id itself when missing).
    label : str
        What the operator calls this watchlist (file name, deployment…).
    """

    index: SearchIndex
    names: Mapping[str, str] = field(default_factory=dict)
    label: str = ""

    @property
    def size(self) -> int:
        """N, the number of distinct subjects searched."""
        return self.index.watchlist_size

    def name(self, subject_id: str) -> str:
        return self.names.get(subject_id, subject_id)

    @classmethod
    def from_watchlist(cls, watchlist: Watchlist, engine: FaceEngine) -> LiveWatchlist:
        """Snapshot a :class:`lfr_eval.watchlist.Watchlist` for ``engine``'s embedding space.

        Expired subjects are left out (they are not searched).

        Raises
        ------
        WatchlistError
            The watchlist holds templates of another embedding space.
        """
        index = watchlist.search_index(engine.engine_id)
        names = {s.subject_id: s.display_name for s in watchlist.subjects()}
        return cls(index=index, names=names, label=str(watchlist.path.name))


class WatchlistHolder:
    """Thread-safe slot holding the current :class:`LiveWatchlist` (or ``None``).

    Pass it as the pipeline's ``index_provider``; the page calls :meth:`set` after an enrolment
    and the worker picks the new snapshot up on its next step.
    """

    def __init__(self, watchlist: LiveWatchlist | None = None) -> None:
        self._lock = threading.Lock()
        self._watchlist = watchlist

    def set(self, watchlist: LiveWatchlist | None) -> None:
        with self._lock:
            self._watchlist = watchlist

    def __call__(self) -> LiveWatchlist | None:
        with self._lock:
            return self._watchlist


IndexProvider = Callable[[], "LiveWatchlist | SearchIndex | None"]


class FaceDetector(Protocol):
    """A detector the pipeline can use instead of the engine's (see ``LivePipeline(detector=)``)."""

    def detect(self, image: np.ndarray) -> Detections: ...


#: Engines whose :meth:`~lfr_eval.faces.FaceEngine.crops` align from the box alone (dlib's
#: shape predictor), so any detector's boxes will do.
BOX_ALIGNED_BACKENDS = frozenset({"dlib", "dlib-torch"})


@dataclass(frozen=True)
class TrackView:
    """One tracked face as drawn on a frame.

    Attributes
    ----------
    track_id : int
    box : ndarray of shape (4,)
        ``(x1, y1, x2, y2)`` predicted for the frame's time, pixels.
    subject_id, subject_name : str or None
        Best watchlist candidate at the last check; ``None`` before the first check or with an
        empty watchlist.
    score : float or None
        Its cosine similarity in [-1, 1].
    alert : bool
        ``score >= threshold`` with the threshold in force for this frame.
    """

    track_id: int
    box: np.ndarray
    subject_id: str | None
    subject_name: str | None
    score: float | None
    alert: bool


@dataclass(frozen=True)
class FrameResult:
    """What :meth:`LivePipeline.process` returns for one frame.

    Attributes
    ----------
    t : float
        Stream time of the frame, seconds.
    tracks : tuple of TrackView
    threshold : float
        Face-match threshold used for this frame (cosine similarity).
    watchlist_size : int
        Subjects searched (0 when no watchlist is loaded).
    error : str or None
        Why recognition stopped, if the worker failed (shown to the operator).
    """

    t: float
    tracks: tuple[TrackView, ...]
    threshold: float
    watchlist_size: int
    error: str | None = None

    @property
    def n_alerting(self) -> int:
        """Tracks at or above the threshold in this frame."""
        return sum(1 for tr in self.tracks if tr.alert)


@dataclass
class _Recognition:
    """Recognition state of one track (worker-owned; copied out under the lock)."""

    checked_t: float | None = None
    checked_box: np.ndarray | None = None
    watchlist: object | None = None
    subject_id: str | None = None
    subject_name: str | None = None
    score: float | None = None
    capture: np.ndarray | None = None
    embedding: np.ndarray | None = None
    alerted_subjects: set[str] = field(default_factory=set)
    #: the track was found again after its box had been hidden: who it shows is unknown (not
    #: drawn as the person last checked) until it is checked again
    pending: bool = False


def _as_live_watchlist(value: LiveWatchlist | SearchIndex | None) -> LiveWatchlist | None:
    if value is None or isinstance(value, LiveWatchlist):
        return value
    if isinstance(value, SearchIndex):
        return LiveWatchlist(index=value)
    raise TypeError(
        f"the index provider must return a LiveWatchlist, a SearchIndex or None, not {type(value)}"
    )


#: Other faces inside a capture are blanked over their box enlarged by this fraction each side
#: (detector boxes are tight: hair, ears and chin would otherwise stay recognisable).
BLANK_MARGIN = 0.2


def crop_capture(
    frame: np.ndarray,
    box: np.ndarray,
    margin: float = CAPTURE_MARGIN,
    *,
    others: np.ndarray | None = None,
) -> np.ndarray:
    """Copy of the frame around a face box, with ``margin`` (fraction of box size) each side.

    Parameters
    ----------
    frame : ndarray (H, W, 3) uint8
    box : array of 4 floats
        ``(x1, y1, x2, y2)`` of the face that alerted, in frame pixels.
    margin : float
        Fraction of the box's width/height added on each side.
    others : ndarray (n, 4), optional
        Boxes of the other faces detected in the frame. Those inside the crop are blanked
        (filled black, over the box enlarged by :data:`BLANK_MARGIN`): a capture keeps only the
        face that raised the alert, never a bystander's. The alerting face's own box is kept.

    Returns
    -------
    ndarray (h, w, 3) uint8
        A new array (never a view of ``frame``).
    """
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = int(max(0, np.floor(x1 - mx))), int(max(0, np.floor(y1 - my)))
    right, bottom = int(min(width, np.ceil(x2 + mx))), int(min(height, np.ceil(y2 + my)))
    capture: np.ndarray = np.ascontiguousarray(frame[top:bottom, left:right]).copy()
    if others is None or len(others) == 0:
        return capture
    for ox1, oy1, ox2, oy2 in np.asarray(others, dtype=float).reshape(-1, 4):
        bx, by = (ox2 - ox1) * BLANK_MARGIN, (oy2 - oy1) * BLANK_MARGIN
        c1, r1 = int(max(left, np.floor(ox1 - bx))), int(max(top, np.floor(oy1 - by)))
        c2, r2 = int(min(right, np.ceil(ox2 + bx))), int(min(bottom, np.ceil(oy2 + by)))
        if c2 > c1 and r2 > r1:
            capture[r1 - top : r2 - top, c1 - left : c2 - left] = 0
    # where a bystander's enlarged box overlapped the alerting face, keep that face whole
    f1, g1 = int(max(left, np.floor(x1))), int(max(top, np.floor(y1)))
    f2, g2 = int(min(right, np.ceil(x2))), int(min(bottom, np.ceil(y2)))
    if f2 > f1 and g2 > g1:
        capture[g1 - top : g2 - top, f1 - left : f2 - left] = frame[g1:g2, f1:f2]
    return capture


class LivePipeline:
    """Per-stream matching pipeline (see module docstring).

    Parameters
    ----------
    engine : FaceEngine
        Any engine; used only through the engine contract (``detect``, ``crops``,
        ``embed_crops``): detection on a copy scaled to ``detection_width``, crops cut from the
        full frame.
    index_provider : callable
        Returns the current :class:`LiveWatchlist` (or a bare :class:`SearchIndex`, or ``None``
        when nothing is enrolled); called on every worker step, e.g. a :class:`WatchlistHolder`.
    settings : LiveSettings, optional
        Shared with the UI (default: a new one with default values).
    session : LiveSession, optional
        Counts faces, alerts and timings and stores alerts (default: a new session without an
        alert store: alerts are counted but not kept).
    background : bool
        Run recognition on a worker thread (default). With ``False``, :meth:`process` runs
        recognition on every call itself (for offline video processing and tests).
    clock : callable
        Monotonic clock in seconds; stream times ``t`` given to :meth:`process` must use it.
    idle_exit_s : float
        The worker thread ends after this many seconds without a frame (and forgets its tracks);
        the next frame starts it again. Streamlit gives no signal when a browser goes away, so
        this keeps abandoned sessions from holding threads.
    detector : object with ``detect(image) -> Detections``, optional
        Finds the faces instead of the engine's own detector, on the full frame (e.g.
        :class:`~lfr_eval.faces.BlazeFaceDetector`, which scales frames to its own input);
        ``detection_width`` then does not apply. Only for engines that align from a box
        (dlib, dlib-torch): its detections carry no landmarks.
    """

    def __init__(
        self,
        engine: FaceEngine,
        index_provider: IndexProvider,
        settings: LiveSettings | None = None,
        *,
        session: LiveSession | None = None,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
        idle_exit_s: float = 60.0,
        detector: FaceDetector | None = None,
    ) -> None:
        if detector is not None and engine.engine_id.backend not in BOX_ALIGNED_BACKENDS:
            raise ValueError(
                f"a separate detector gives boxes only; the {engine.engine_id.backend} engine "
                f"aligns from its own detector's landmarks (box-aligned engines: "
                f"{', '.join(sorted(BOX_ALIGNED_BACKENDS))})"
            )
        self.engine = engine
        self.detector = detector
        self.idle_exit_s = float(idle_exit_s)
        self.index_provider = index_provider
        self.settings = settings if settings is not None else LiveSettings()
        self.session = session if session is not None else LiveSession(clock=clock)
        self.background = background
        self._clock = clock
        config = self.settings.snapshot()
        self._tracker = FaceTracker(max_missing_s=config.max_missing_s)
        self._recognition: dict[int, _Recognition] = {}
        #: stream time each subject was last matched at or above the threshold (cool-down)
        self._subject_matched_t: dict[str, float] = {}
        self._state_lock = threading.Lock()
        self._watchlist_size = 0
        self._error: str | None = None
        self._last_frame: tuple[np.ndarray, float] | None = None
        # frame slot: the newest frame not yet taken by the worker
        self._slot_cond = threading.Condition()
        self._slot: tuple[np.ndarray, float] | None = None
        self._stop = False
        #: holds the worker to ``recognition_cpu_share`` of the wall clock (see _duty)
        self.duty_cycle = DutyCycle(clock=clock)
        self._worker: threading.Thread | None = None
        # compile the search kernel before frames arrive (else the first face searched waits
        # for numba on the recognition thread and its box goes stale)
        from lfr_eval.search._kernel import warm_up

        warm_up()
        if background:
            self._ensure_worker()

    # ------------------------------------------------------------------ video thread
    def process(self, frame_rgb: np.ndarray, t: float | None = None) -> FrameResult:
        """Hand a frame to recognition and return the tracks to draw on it.

        Parameters
        ----------
        frame_rgb : ndarray (H, W, 3) uint8, RGB
            The frame. It is kept (not copied) until the next frame arrives: do not draw on it
            in place; :func:`draw_tracks` draws on a copy.
        t : float, optional
            Stream time of the frame on the pipeline's clock (default: now).

        Returns
        -------
        FrameResult
        """
        start = self._clock()
        result = self._process(frame_rgb, start if t is None else float(t))
        self.session.on_frame(start, self._clock() - start)
        return result

    def render(
        self, frame_rgb: np.ndarray, t: float | None = None
    ) -> tuple[np.ndarray, FrameResult]:
        """:meth:`process` and :func:`draw_tracks` in one call; latency covers both."""
        start = self._clock()
        result = self._process(frame_rgb, start if t is None else float(t))
        annotated = draw_tracks(frame_rgb, result, self.settings.snapshot())
        self.session.on_frame(start, self._clock() - start)
        return annotated, result

    def _process(self, frame_rgb: np.ndarray, t: float) -> FrameResult:
        frame = ensure_rgb_uint8(frame_rgb)
        self._last_frame = (frame, t)
        if self.background:
            if self._worker is None:
                self._ensure_worker()
            with self._slot_cond:
                self._slot = (frame, t)
                self._slot_cond.notify()
        elif self._error is None:
            self._recognise(frame, t)
        return self._result(t, self.settings.snapshot())

    def _result(self, t: float, config: LiveConfig) -> FrameResult:
        views = []
        with self._state_lock:
            for track in self._tracker.tracks:
                if not _drawn(track, t, config):
                    continue  # kept a little longer for association, but not drawn
                rec = self._recognition.get(track.track_id)
                if rec is not None and rec.pending:
                    rec = None  # drawn as "checking", not as whoever stood there before
                score = None if rec is None else rec.score
                views.append(
                    TrackView(
                        track_id=track.track_id,
                        box=track.predict(t, max_extrapolation_s=config.hold_unseen_s),
                        subject_id=None if rec is None else rec.subject_id,
                        subject_name=None if rec is None else rec.subject_name,
                        score=score,
                        alert=score is not None and score >= config.threshold,
                    )
                )
            size = self._watchlist_size
        return FrameResult(
            t=t,
            tracks=tuple(views),
            threshold=config.threshold,
            watchlist_size=size,
            error=self._error,
        )

    def snapshot(self) -> np.ndarray | None:
        """A copy of the latest frame (RGB), e.g. to enrol a face from the live stream.

        The copy lives in memory only; nothing is written.
        """
        last = self._last_frame
        return None if last is None else last[0].copy()

    @property
    def error(self) -> str | None:
        """Why recognition stopped, if the worker failed; ``None`` while it runs."""
        return self._error

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker and forget all tracks and in-memory captures."""
        with self._slot_cond:
            self._stop = True
            self._slot = None
            self._slot_cond.notify_all()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout)
        with self._state_lock:
            self._recognition.clear()
        self._last_frame = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ worker
    def _ensure_worker(self) -> None:
        """Start the recognition thread if it is not running (it stops itself when idle)."""
        with self._slot_cond:
            if self._stop or self._error is not None:
                return
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._run_worker, name="lfr-live-recognition", daemon=True
                )
                self._worker.start()

    def _run_worker(self) -> None:
        idle_since = self._clock()
        while True:
            with self._slot_cond:
                while self._slot is None and not self._stop:
                    self._slot_cond.wait(timeout=0.25)
                    if self._slot is None and not self._stop:
                        now = self._clock()
                        self._expire(now)
                        if now - idle_since > self.idle_exit_s:
                            # The stream stopped (or the browser left without closing the page):
                            # end the thread and drop tracks and in-memory captures; the next
                            # frame starts a new thread.
                            self._forget_tracks()
                            self._worker = None
                            return
                if self._stop:
                    return
            idle_since = self._clock()
            # Throttle detection so the video thread keeps a core on small machines; the frame
            # taken after the pause is the newest one, older ones are simply dropped.
            pause = self._pause_before_step(self.settings.snapshot())
            if pause > 0:
                time.sleep(pause)
            with self._slot_cond:
                item, self._slot = self._slot, None
            if item is None:
                continue
            try:
                with self.duty_cycle.step():
                    self._recognise(*item)
            except Exception as exc:
                LOGGER.exception("live recognition stopped")
                self._error = f"recognition stopped: {type(exc).__name__}: {exc}"
                return

    def _pause_before_step(self, config: LiveConfig) -> float:
        """Seconds to wait before the next worker step (<= 0: none).

        At least ``min_detection_interval_s`` between step starts, and the worker busy at most
        ``recognition_cpu_share`` of the wall clock (:class:`~lfr_eval.live._duty.DutyCycle`):
        after a step that took ``w`` seconds, the next starts no sooner than ``w / share``
        after it began. Cheap steps (detection only) come often; expensive ones (a face
        embedded) are followed by a longer pause, so the video path keeps the CPU it needs.
        """
        return self.duty_cycle.pause(config.recognition_cpu_share, config.min_detection_interval_s)

    def recognition_load(self) -> RecognitionLoad:
        """What recognition used over the last seconds (share bound, busy and CPU share)."""
        return self.duty_cycle.load(self.settings.snapshot().recognition_cpu_share)

    def _forget_tracks(self) -> None:
        with self._state_lock:
            self._tracker.expire(np.inf)
            self._recognition.clear()

    def _expire(self, now: float) -> None:
        with self._state_lock:
            for track_id in self._tracker.expire(now):
                self._recognition.pop(track_id, None)

    def _detect(self, frame: np.ndarray, config: LiveConfig) -> Detections:
        """Faces in ``frame`` (full-frame coordinates) through the engine contract.

        With ``detection_width`` set, the detector sees a downscaled copy; boxes and landmarks
        are scaled back, and crops are always cut from the full frame.
        """
        if self.detector is not None:
            return self.detector.detect(frame)
        height, width = frame.shape[:2]
        if config.detection_width is None or width <= config.detection_width:
            return self.engine.detect(frame)
        scale = config.detection_width / width
        size = (round(width * scale), round(height * scale))
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        return self.engine.detect(small).scaled(width / size[0])

    def _needs_check(
        self,
        rec: _Recognition | None,
        track: TrackState,
        t: float,
        config: LiveConfig,
        watchlist: LiveWatchlist | None,
    ) -> bool:
        if (
            rec is None
            or rec.pending
            or rec.checked_t is None
            or rec.checked_box is None
            or rec.watchlist is not watchlist
        ):
            return True
        if track.reacquired:
            return True  # hidden for a moment: is it still the same person?
        # a new face not matched yet gets a few quick second looks (see LiveConfig)
        young = t - track.first_seen_t < config.new_face_window_s and not (
            rec.score is not None and rec.score >= config.threshold
        )
        interval = config.new_face_recheck_s if young else config.recheck_interval_s
        if t - rec.checked_t >= min(interval, config.recheck_interval_s):
            return True
        iou = box_iou(track.box[None], rec.checked_box[None])[0, 0]
        return bool(iou < config.recheck_iou)

    def _recognise(self, frame: np.ndarray, t: float) -> None:
        """One worker step on one frame (runs on the worker, or inline without background)."""
        config = self.settings.snapshot()
        step_start = self._clock()
        # On the worker, a frame "arrives" at its stream time t (same clock); run inline (offline
        # video, tests) it arrives when this step starts, whatever time base t uses.
        arrival = t if self.background else step_start
        watchlist = _as_live_watchlist(self.index_provider())
        detections = self._detect(frame, config)
        boxes = detections.boxes

        with self._state_lock:
            self._tracker.max_missing_s = config.max_missing_s
            update = self._tracker.update(boxes, t)
            for track_id in update.ended_track_ids:
                self._recognition.pop(track_id, None)  # its capture is dropped from memory
            # every id in the update is a live track of the tracker's
            tracks = {tid: cast(TrackState, self._tracker.get(tid)) for tid in update.track_ids}
            recs = {tid: self._recognition.get(tid) for tid in update.track_ids}
            for tid, rec in recs.items():
                # hidden longer than the hold window, then found in its place: maybe someone
                # else (another group stepping in); until checked it shows nobody's name
                if rec is not None and tracks[tid].unseen_before_s > config.hold_unseen_s:
                    rec.pending = True
            self._watchlist_size = 0 if watchlist is None else watchlist.size
        for track_id in update.new_track_ids:
            self.session.on_new_face(track_id, t)

        due = [
            i
            for i, tid in enumerate(update.track_ids)
            if self._needs_check(recs[tid], tracks[tid], t, config, watchlist)
        ]

        # Faces never checked go first, then faces seen again after a gap, then routine
        # re-checks; each face is searched and can alert before the next one is embedded, so a
        # listed person entering with strangers is not kept waiting for their embeddings.
        def urgency(i: int) -> tuple[bool, bool]:
            rec, track = recs[update.track_ids[i]], tracks[update.track_ids[i]]
            return rec is not None, not (track.reacquired or (rec is not None and rec.pending))

        due.sort(key=urgency)
        searchable = watchlist is not None and watchlist.size > 0
        if searchable:
            # A few faces per step, most urgent first; the rest stay due for the next step. A
            # step that embedded a whole group at once would hold up detection (and so every
            # box) for as long on a busy CPU.
            due = due[: config.max_faces_per_step]
        for i in due:
            track_id = update.track_ids[i]
            if not searchable or watchlist is None:
                # Nothing to search: remember the check so the face is not embedded again.
                rec = _Recognition(
                    checked_t=t, checked_box=tracks[track_id].box.copy(), watchlist=watchlist
                )
            else:
                embedding = self.engine.embed_crops(self.engine.crops(frame, detections, [i]))
                found = watchlist.index.search(
                    embedding, k=1, embedding_space=self.engine.engine_id.recognizer_key
                )
                subject = str(found.subject_ids[0, 0])
                rec = _Recognition(
                    checked_t=t,
                    checked_box=tracks[track_id].box.copy(),
                    watchlist=watchlist,
                    subject_id=subject,
                    subject_name=watchlist.name(subject),
                    score=float(found.scores[0, 0]),
                    capture=crop_capture(frame, boxes[i], others=np.delete(boxes, i, axis=0)),
                    embedding=embedding[0],
                )
            self._store_check(track_id, rec, t, config)
            self._raise_alerts(config, t, arrival)
        if not due:
            self._raise_alerts(config, t, arrival)  # the threshold may have been lowered
        self.session.on_recognition(
            t, self._clock() - arrival, n_faces=len(boxes), n_embedded=len(due) if searchable else 0
        )

    def _store_check(self, track_id: int, rec: _Recognition, t: float, config: LiveConfig) -> None:
        """Keep a check's result; split the track if it now shows someone else."""
        same_face = config.same_face_similarity
        if same_face is None:
            same_face = default_same_face_similarity(self.engine.engine_id.backend)
        new_face = None
        with self._state_lock:
            if self._tracker.get(track_id) is None:
                return
            old = self._recognition.get(track_id)
            # Two checks that both match the same listed subject are that person, however much
            # blur or pose moved the embedding: never a reason for a second alert.
            same_match = (
                old is not None
                and old.subject_id is not None
                and old.subject_id == rec.subject_id
                and old.score is not None
                and rec.score is not None
                and min(old.score, rec.score) >= config.threshold
            )
            if (
                same_face is not None
                and not same_match
                and old is not None
                and old.embedding is not None
                and rec.embedding is not None
                and float(rec.embedding @ old.embedding) < same_face
            ):
                # someone else stepped into the tracked place: a new face, whose alerts are
                # independent of the previous person's
                self._recognition.pop(track_id)
                track_id = new_face = self._tracker.split(track_id, t)
            elif old is not None:
                rec.alerted_subjects = old.alerted_subjects
            self._recognition[track_id] = rec
        if new_face is not None:
            self.session.on_new_face(new_face, t)

    def _raise_alerts(self, config: LiveConfig, t: float, arrival: float) -> None:
        """Alert once per passage: once per track and subject, and not again for a subject
        matched within ``alert_cooldown_s`` (the same person on a new track after a miss)."""
        due: list[tuple[int, _Recognition, str, float, TrackState]] = []
        with self._state_lock:
            for track_id, rec in self._recognition.items():
                if (
                    rec.pending  # who stands there now is not known yet
                    or rec.score is None
                    or rec.score < config.threshold
                    or rec.subject_id is None
                ):
                    continue
                subject = rec.subject_id
                seen = rec.checked_t if rec.checked_t is not None else t
                last = self._subject_matched_t.get(subject)
                if subject not in rec.alerted_subjects:
                    rec.alerted_subjects.add(subject)
                    if last is None or seen - last > config.alert_cooldown_s:
                        # a recognition entry belongs to a live track (ended ones are dropped)
                        track = cast(TrackState, self._tracker.get(track_id))
                        due.append((track_id, rec, subject, rec.score, track))
                self._subject_matched_t[subject] = seen if last is None else max(last, seen)
        # stream time now: the frame's time plus how long it has been in the pipeline
        now = t + (self._clock() - arrival)
        for track_id, rec, subject, score, track in due:
            alert = LiveAlert(
                alert_id=uuid.uuid4().hex,
                session_id=self.session.session_id,
                track_id=track_id,
                subject_id=subject,
                subject_name=rec.subject_name or subject,
                score=float(score),
                threshold=float(config.threshold),
                raised_at=datetime.now(timezone.utc),
                time_to_alert_s=max(0.0, now - track.first_seen_t),
                # a match (score set) always comes with its capture (see _recognise)
                capture=cast(np.ndarray, rec.capture),
            )
            self.session.on_alert(alert)


# ---------------------------------------------------------------------- drawing
_RED = (230, 40, 40)
_GREY = (170, 170, 170)
_AMBER = (240, 170, 0)


def draw_tracks(
    frame_rgb: np.ndarray, result: FrameResult, config: LiveConfig | None = None
) -> np.ndarray:
    """Draw boxes, names and scores on a copy of the frame.

    Alerts (score at or above the threshold) are red with the subject's name; other faces grey
    (or not drawn when ``show_non_matches`` is off); faces not checked yet amber.
    """
    config = config or LiveConfig()
    out = np.array(frame_rgb, copy=True)
    height, width = out.shape[:2]
    scale = max(0.4, min(width, height) / 800)
    thickness = max(1, round(scale * 2))
    for track in result.tracks:
        if track.score is None:
            colour, label = _AMBER, "checking"
            if not config.show_non_matches:
                continue
        elif track.alert:
            colour = _RED
            label = f"ALERT {track.subject_name}"
            if config.show_scores:
                label += f" {track.score:.2f}"
        else:
            if not config.show_non_matches:
                continue
            colour = _GREY
            label = f"no match {track.score:.2f}" if config.show_scores else "no match"
        x1, y1, x2, y2 = (round(float(v)) for v in track.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness + (1 if track.alert else 0))
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        ty = y1 - 4 if y1 - th - base - 4 > 0 else y2 + th + 4
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 4, ty + base), colour, -1)
        cv2.putText(
            out,
            label,
            (x1 + 2, ty),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
    return out
