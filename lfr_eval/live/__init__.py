"""Live facial recognition: the matching pipeline behind the Live page, alerts and retention.

- :class:`LivePipeline` turns video frames into tracked faces, watchlist matches and alerts,
  with recognition on a worker thread so the video stays smooth on a CPU;
- :class:`LiveSettings` is the lock-protected object the page and the video threads share
  (threshold and other settings act on the running stream at once);
- :class:`FaceTracker` follows faces between detections so each face is embedded once, not per
  frame;
- :class:`AlertWriter` stores alerts on its own thread with retries, so storage never stalls
  recognition;
- :class:`AlertStore` keeps alert captures for the retention period (24 h by default) and purges
  them; captures of faces that do not match are never written;
- :class:`LiveSession` counts faces, alerts, officer decisions, frame rate and latency, and makes
  the end-of-deployment :class:`DeploymentSummary` in the forces' published style.

Similarities are cosine similarities in [-1, 1]; an alert is raised at ``score >= threshold``.
"""

from __future__ import annotations

from lfr_eval.faces._choice import DEFAULT_THRESHOLDS, default_threshold
from lfr_eval.live._alerts import (
    ALERTS_DB,
    DEFAULT_RETENTION,
    MSG_ALREADY_REVIEWED,
    MSG_BELOW_THRESHOLD,
    MSG_UNKNOWN_ALERT,
    AlertError,
    AlertRecord,
    AlertStore,
    Decision,
    LiveAlert,
    PurgeEntry,
    PurgeReport,
    ReviewCounts,
    encode_capture,
)
from lfr_eval.live._detector import (
    ENV_LIVE_DETECTOR,
    LIVE_DETECTORS,
    LiveDetectorChoice,
    choose_live_detector,
    live_detector_from_env,
)
from lfr_eval.live._duty import DutyCycle, RecognitionLoad, live_engine
from lfr_eval.live._pipeline import (
    FrameResult,
    LivePipeline,
    LiveWatchlist,
    TrackView,
    WatchlistHolder,
    crop_capture,
    draw_tracks,
)
from lfr_eval.live._scene import FaceAppearance, SceneScript, write_y4m
from lfr_eval.live._session import (
    ALERT_FILTERS,
    AlertEntry,
    AlertPage,
    DeploymentSummary,
    LiveSession,
    LiveStats,
)
from lfr_eval.live._settings import (
    DEFAULT_RECOGNITION_SHARE,
    DEFAULT_THRESHOLD,
    LiveConfig,
    LiveSettings,
    default_same_face_similarity,
    recognition_share_from_env,
)
from lfr_eval.live._tracker import FaceTracker, TrackState, TrackUpdate, box_iou
from lfr_eval.live._writer import AlertWriter, WriterStatus

__all__ = [
    "ALERTS_DB",
    "ALERT_FILTERS",
    "DEFAULT_RECOGNITION_SHARE",
    "DEFAULT_RETENTION",
    "DEFAULT_THRESHOLD",
    "DEFAULT_THRESHOLDS",
    "ENV_LIVE_DETECTOR",
    "LIVE_DETECTORS",
    "MSG_ALREADY_REVIEWED",
    "MSG_BELOW_THRESHOLD",
    "MSG_UNKNOWN_ALERT",
    "AlertEntry",
    "AlertError",
    "AlertPage",
    "AlertRecord",
    "AlertStore",
    "AlertWriter",
    "Decision",
    "DutyCycle",
    "DeploymentSummary",
    "FaceAppearance",
    "FaceTracker",
    "FrameResult",
    "LiveAlert",
    "LiveConfig",
    "LiveDetectorChoice",
    "LivePipeline",
    "LiveSession",
    "LiveSettings",
    "LiveStats",
    "LiveWatchlist",
    "PurgeEntry",
    "PurgeReport",
    "RecognitionLoad",
    "ReviewCounts",
    "SceneScript",
    "TrackState",
    "TrackUpdate",
    "TrackView",
    "WatchlistHolder",
    "WriterStatus",
    "box_iou",
    "choose_live_detector",
    "crop_capture",
    "default_same_face_similarity",
    "default_threshold",
    "draw_tracks",
    "encode_capture",
    "live_detector_from_env",
    "live_engine",
    "recognition_share_from_env",
    "write_y4m",
]
