"""Live: the camera (or a video file) searched against the watchlist, with alerts and review.

The page is a thin layer over :mod:`lfr_eval.live`. The video frame callback runs on
streamlit-webrtc's thread and only calls :meth:`LivePipeline.render`; the page talks to it through
the lock-protected :class:`LiveSettings` (threshold…) and :class:`WatchlistHolder`, and reads
results back from :class:`LiveSession` and the :class:`AlertStore`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from datetime import datetime, timedelta, timezone

import _shared
import av
import pandas as pd
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from lfr_eval.errors import LfrError
from lfr_eval.faces import decode_image, select_one_face
from lfr_eval.live import (
    AlertEntry,
    AlertStore,
    LivePipeline,
    LiveSession,
    LiveSettings,
    LiveWatchlist,
    WatchlistHolder,
    choose_live_detector,
    default_threshold,
    encode_capture,
    live_detector_from_env,
    live_engine,
    recognition_share_from_env,
)
from lfr_eval.live._duty import live_engine_threads
from lfr_eval.live._framelog import FrameLog
from lfr_eval.live._video_file import VideoFilePlayer
from lfr_eval.watchlist import SubjectInfo
from lfr_eval.wording import plural

#: JSON list of RTCIceServer objects for remote use, e.g.
#: ``[{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]``.
#: Default: none, so the browser and the server connect directly (same machine or LAN).
ENV_ICE_SERVERS = "LFR_ICE_SERVERS"

#: How often the statistics and the alerts panel refresh while the stream plays, seconds.
REFRESH_S = 1.0
#: Step of the threshold slider (cosine similarity).
THRESHOLD_STEP = 0.0025
#: Alerts per page of the officers' queue.
ALERTS_PER_PAGE = 5
#: Filters of the queue: label shown -> LiveSession.alert_page status.
ALERT_FILTER_LABELS = {
    "All": "all",
    "Unreviewed": "unreviewed",
    "Confirmed": "confirmed",
    "Rejected": "rejected",
}

st.set_page_config(page_title="Live · LFR Workbench", page_icon="🎥", layout="wide")
_shared.require_role(*_shared.ROLES_LIVE)
st.title("Live")
st.write(
    "Every face the camera sees is searched against the watchlist; an **alert** is raised when "
    "its best similarity is at or above the face-match threshold, and the reviewing officer "
    "confirms or rejects it. Faces that do not match are never stored."
)

engine = _shared.engine_or_stop()
workspace = _shared.workspace()
state = st.session_state
#: a deployment config verified on the Export page sets the threshold and the retention
config = state.get(_shared.STATE_CONFIG)
try:
    watchlist = _shared.open_watchlist()
    retention_hours = (
        config.retention.alert_capture_hours
        if config is not None
        else _shared.retention_policy().alert_capture_hours
    )
except LfrError as exc:
    _shared.show_error(exc)
    st.stop()
store = AlertStore.open(workspace, retention=timedelta(hours=retention_hours))
store.start_purge_timer()  # purges while the page is open, not only when it reruns


# ---------------------------------------------------------------------- per-browser state
def _new_session() -> None:
    """Start a live session: settings are kept, counts and tracks start afresh."""
    old = state.get("live_pipeline")
    if old is not None:
        old.close()
    session = LiveSession(store, deployment=state.get("live_deployment", ""))
    state["live_session"] = session
    if state.get("live_source_engine") is not engine:
        # one-threaded runtimes for the recognition worker, so its CPU share is bounded; the
        # other pages keep the shared engine (models are shared, not reloaded)
        state["live_source_engine"] = engine
        state["live_engine"] = live_engine(engine)
    # one detector per pipeline (a LiteRT interpreter serves one thread); see lfr_eval.live
    live = choose_live_detector(engine, live_detector_from_env(), workspace=workspace)
    state["live_detector_choice"] = live
    state["live_pipeline"] = LivePipeline(
        state["live_engine"],
        state["live_holder"],
        state["live_settings"],
        session=session,
        detector=live.detector,
    )


if "live_settings" not in state:
    try:
        share = recognition_share_from_env()
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
    state["live_settings"] = LiveSettings(
        threshold=default_threshold(engine.engine_id.backend), recognition_cpu_share=share
    )
    state["live_holder"] = WatchlistHolder()
    state["live_watchlist_hash"] = None
# A threshold chosen on another page (Threshold explorer, or a config verified on the Export page)
# is adopted once, when it changes; the slider can move away from it afterwards.
chosen = state.get(_shared.STATE_THRESHOLD)
if chosen is not None and chosen != state.get("live_adopted_threshold"):
    state["live_adopted_threshold"] = chosen
    state["live_settings"].update(threshold=float(chosen))
    state.pop("live_threshold", None)
# Streamlit forgets widget values when the user visits another page: restore them from the
# settings object and plain keys, which survive.
for widget_key, saved in (
    ("live_threshold", state["live_settings"].threshold),
    ("live_cpu_share", state["live_settings"].snapshot().recognition_cpu_share),
    ("live_reviewer", state.get("live_reviewer_saved", "")),
    ("live_deployment", state.get("live_deployment_saved", "")),
):
    if widget_key not in state:
        state[widget_key] = saved
if state.get("live_pipeline") is None or state.get("live_source_engine") is not engine:
    _new_session()
settings: LiveSettings = state["live_settings"]
holder: WatchlistHolder = state["live_holder"]
session: LiveSession = state["live_session"]
pipeline: LivePipeline = state["live_pipeline"]


def _refresh_watchlist(force: bool = False) -> None:
    """Give the video threads a new snapshot of the watchlist when its content changed."""
    content = watchlist.content_hash()
    if force or content != state.get("live_watchlist_hash"):
        try:
            holder.set(LiveWatchlist.from_watchlist(watchlist, engine))
        except LfrError as exc:
            holder.set(None)
            _shared.show_error(exc)
            return
        state["live_watchlist_hash"] = content


_refresh_watchlist()

# ---------------------------------------------------------------------- sidebar: settings
with st.sidebar:
    st.header("Live settings")
    st.slider(
        "Face-match threshold (cosine similarity)",
        min_value=0.0,
        max_value=1.0,
        # fine enough for a verified config's threshold (e.g. 0.9525); arrow keys move one step
        step=THRESHOLD_STEP,
        format="%.4f",
        key="live_threshold",
        help="An alert is raised when a face's best watchlist similarity is at or above this. "
        f"Cosine similarity in [-1, 1]; each engine needs its own value "
        f"(start for {engine.engine_id.backend}: {default_threshold(engine.engine_id.backend)}). "
        "Takes effect on the running stream at once.",
    )
    recheck = st.number_input(
        "Re-check each tracked face every (s)",
        0.2,
        10.0,
        1.0,
        0.1,
        help="A tracked face is embedded once, then searched again this often (or when it moves "
        "a lot), so the video stays smooth on a CPU.",
    )
    st.slider(
        "Recognition's share of one core",
        min_value=0.1,
        max_value=1.0,
        step=0.05,
        key="live_cpu_share",
        help="The recognition worker (detection, embedding, search) is busy at most this "
        "fraction of the time, so the video keeps the CPU it needs to stay smooth; lower it if "
        "the video stutters, raise it if boxes come late. 1.0 = no bound.",
    )
    show_non_matches = st.checkbox("Draw faces that do not match", value=True)
    show_scores = st.checkbox("Show scores", value=True)
    settings.update(
        threshold=float(state["live_threshold"]),
        recheck_interval_s=float(recheck),
        recognition_cpu_share=float(state["live_cpu_share"]),
        show_non_matches=show_non_matches,
        show_scores=show_scores,
    )
    if _shared.current_actor() is None:
        st.text_input("Reviewing officer", key="live_reviewer", placeholder="name or number")
    else:
        # signed in: decisions are recorded under the signed-in user, not a typed name
        st.caption(f"Reviewing officer: **{_shared.current_actor()}** (signed in)")
    st.text_input(
        "Deployment (for the results)", key="live_deployment", placeholder="e.g. training room 2"
    )
    state["live_reviewer_saved"] = state["live_reviewer"]
    state["live_deployment_saved"] = state["live_deployment"]
    session.deployment = state["live_deployment"]
    source = st.radio(
        "Video source",
        ["Camera (browser)", "Video file"],
        key="live_source",
        help="Use a video file in rooms without a camera.",
    )
    with st.expander("Remote use (ICE servers)"):
        st.caption(
            "Default: no ICE servers, for a browser on this machine or the local network. A "
            "remote browser needs HTTPS and usually a TURN server: give a JSON list of "
            'RTCIceServer objects, e.g. `[{"urls": ["turn:turn.example.org:3478"], '
            '"username": "u", "credential": "p"}]`. Environment: ' + f"`{ENV_ICE_SERVERS}`."
        )
        ice_text = st.text_area(
            "ICE servers (JSON)", os.environ.get(ENV_ICE_SERVERS, "[]"), key="live_ice"
        )
    try:
        ice_servers = json.loads(ice_text or "[]")
        if not isinstance(ice_servers, list):
            raise TypeError("not a list")
    except (ValueError, TypeError) as exc:
        st.error(f"ICE servers must be a JSON list of RTCIceServer objects ({exc}); using none.")
        ice_servers = []

# ---------------------------------------------------------------------- retention
# the store purges when opened (above) and on its timer; count what this rerun's open removed
purged = store.purged_on_open.count + store.purge_expired().count
if purged:
    state["live_purged_total"] = state.get("live_purged_total", 0) + purged
_detection = state.get("live_detector_choice") or choose_live_detector(engine, "engine")
st.caption(
    f"Watchlist: **{plural(holder().size if holder() else 0, 'searchable subject')}** · engine "
    f"`{engine.engine_id.key}` on {engine.runtime.describe()} · detection: "
    f"{_detection.description} · retention"
    f"{' (from the verified deployment config)' if config is not None else ''}: "
    f"alert data kept **{retention_hours} h**, "
    f"non-matching captures never stored · purged automatically this session: "
    f"**{state.get('live_purged_total', 0)}**"
)
if _detection.note:
    st.caption(f"Detection: {_detection.note}.")
if holder() is not None and holder().size == 0:
    st.info(
        "The watchlist is empty: enrol a face below (from the stream or a photo) or on the "
        "**Watchlist** page."
    )


# ---------------------------------------------------------------------- the stream
#: benchmark mode only (LFR_LIVE_FRAME_LOG): frame stamps and drawn boxes, no face data
frame_log = FrameLog.from_env()


def _video_callback(frame: av.VideoFrame) -> av.VideoFrame:
    # Runs on streamlit-webrtc's thread: no Streamlit calls here, only the pipeline.
    image = frame.to_ndarray(format="rgb24")
    annotated, result = pipeline.render(image)
    if frame_log is not None:
        frame_log.record(image, [track.box for track in result.tracks])
    out = av.VideoFrame.from_ndarray(annotated, format="rgb24")
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


video_col, side_col = st.columns([3, 2])
with video_col:
    rtc_configuration = {"iceServers": ice_servers}
    if source == "Camera (browser)":
        context = webrtc_streamer(
            key="live-camera",
            mode=WebRtcMode.SENDRECV,
            rtc_configuration=rtc_configuration,
            media_stream_constraints={"video": True, "audio": False},
            video_frame_callback=_video_callback,
            async_processing=True,
        )
    else:
        upload = st.file_uploader(
            "Video file (played in a loop)",
            type=["mp4", "webm", "mov", "mkv", "avi", "y4m"],
            key="live_video",
        )
        if upload is None:
            context = None
            st.info("Choose a video file to play it through the pipeline.")
        else:
            video_bytes = upload.getvalue()

            def _player() -> VideoFilePlayer:
                # played from memory (the footage is not copied to disk), in real time, in a
                # loop that does not break off after the first pass (aiortc's own loop does)
                return VideoFilePlayer(video_bytes, loop=True)

            context = webrtc_streamer(
                key="live-file",
                mode=WebRtcMode.RECVONLY,
                rtc_configuration=rtc_configuration,
                media_stream_constraints={"video": True, "audio": False},
                player_factory=_player,
                video_frame_callback=_video_callback,
                async_processing=True,
            )
    playing = bool(context is not None and context.state.playing)


@st.fragment(run_every=REFRESH_S if playing else None)
def _stats_panel() -> None:
    stats = session.stats()
    if pipeline.error:
        st.error(pipeline.error)
    cols = st.columns(4)
    cols[0].metric(
        "Displayed fps",
        f"{stats.display_fps:.1f}",
        help="Frames per second through the video callback.",
    )
    cols[1].metric(
        "Frame latency",
        "–" if stats.frame_latency_ms is None else f"{stats.frame_latency_ms:.1f} ms",
        help="Time spent in the frame callback per frame (median; 95th percentile "
        + ("–" if stats.frame_latency_p95_ms is None else f"{stats.frame_latency_p95_ms:.1f}")
        + " ms).",
    )
    cols[2].metric(
        "Recognitions/s",
        f"{stats.recognition_fps:.1f}",
        help="Detection and tracking steps per second on the recognition thread.",
    )
    cols[3].metric(
        "Recog. latency",
        "–" if stats.recognition_latency_ms is None else f"{stats.recognition_latency_ms:.0f} ms",
        help="From a frame's arrival to its faces being detected, tracked and searched (median).",
    )
    cols = st.columns(4)
    cols[0].metric("Faces seen", stats.faces_seen, help="Distinct tracked faces.")
    cols[1].metric("Alerts", stats.alerts)
    cols[2].metric("Confirmed", stats.confirmed)
    cols[3].metric("Rejected", stats.rejected)
    decision = stats.median_time_to_decision_s
    to_alert = stats.median_time_to_alert_s
    st.caption(
        f"Median time to decision: {'–' if decision is None else f'{decision:.0f} s'} · "
        f"median time from a face appearing to its alert: "
        f"{'–' if to_alert is None else f'{to_alert:.2f} s'} · threshold in force: "
        f"{settings.threshold:.4f}"
    )
    load = pipeline.recognition_load()
    threads = live_engine_threads(pipeline.engine)
    st.caption(
        f"Recognition worker: busy at most **{load.share_bound:.0%}** of the time"
        + (
            f" on {plural(threads, 'thread')} (≤ {load.share_bound:.0%} of one core)"
            if threads
            else ""
        )
        + f" · used: busy {load.busy_share:.0%}, CPU {load.cpu_share:.0%} of a core · "
        f"{load.steps_per_s:.1f} recognition steps/s (last 5 s)"
    )
    writer = session.writer_status()
    if writer is not None and writer.lost:
        st.error(
            f"{plural(writer.lost, 'alert')} could not be stored: {writer.last_error}. "
            "Recognition goes on; check the workspace's disk and alert database."
        )
    elif writer is not None and writer.retrying:
        st.warning(
            f"The alert store is failing ({writer.last_error}); "
            f"{plural(writer.pending, 'alert')} waiting, retrying. Recognition goes on and no "
            "alert is dropped."
        )


def _review(alert_id: str, decision: str) -> None:
    """Button callback: record the officer's decision before the panel is drawn again."""
    reviewer = _shared.current_actor() or (state.get("live_reviewer") or "").strip()
    if not reviewer:
        state["live_review_message"] = "Enter the reviewing officer in the sidebar first."
        return
    try:
        session.review(alert_id, decision, reviewer)  # type: ignore[arg-type]
    except LfrError as exc:
        state["live_review_message"] = f"{type(exc).__name__}: {exc}"
    else:
        state["live_review_message"] = None
        state["live_reviewed"] = True


def _capture_html(entry: AlertEntry, cache: dict[str, str]) -> str | None:
    """The alert's own capture as an <img> tagged with its alert id (None once purged).

    The image travels inside the card itself (a data URI), keyed by alert id: a card can never
    show another alert's picture while a new image loads, whatever was drawn in its place at the
    previous refresh. Captures come from the session's memory (recent alerts) or, for older
    ones, from the store once; only the shown page's images are kept.
    """
    alert_id = entry.alert_id
    if entry.alert.raised_at + store.retention <= datetime.now(timezone.utc):
        cache.pop(alert_id, None)
        return None
    if alert_id not in cache:
        try:
            if entry.alert.capture.size:
                jpeg = encode_capture(entry.alert.capture)
            else:
                jpeg = store.capture_jpeg(alert_id)
        except LfrError:
            return None
        cache[alert_id] = base64.b64encode(jpeg).decode("ascii")
    return (
        f'<img class="lfr-alert-capture" data-alert-id="{alert_id}" width="110" '
        f'alt="capture of alert {entry.number}" src="data:image/jpeg;base64,{cache[alert_id]}">'
    )


def _move_page(step: int) -> None:
    state["live_alert_offset"] = max(0, state.get("live_alert_offset", 0) + step)


@st.fragment(run_every=REFRESH_S if playing else None)
def _alerts_panel() -> None:
    if state.pop("live_reviewed", False):
        # a decision changes the counts in the statistics panel too: redraw the whole page
        st.rerun()
    st.subheader("Alerts")
    if state.get("live_review_message"):
        st.warning(state["live_review_message"])
    label = st.radio(
        "Show",
        list(ALERT_FILTER_LABELS),
        key="live_alert_filter",
        horizontal=True,
        on_change=lambda: state.update(live_alert_offset=0),
        label_visibility="collapsed",
    )
    # read from the session's memory: nothing touches the store on a refresh
    page = session.alert_page(
        ALERT_FILTER_LABELS[label or "All"],
        offset=state.get("live_alert_offset", 0),
        limit=ALERTS_PER_PAGE,
    )
    state["live_alert_offset"] = page.offset
    if page.total == 0:
        st.caption(
            "No alerts in this session yet."
            if label in (None, "All") or session.stats().alerts == 0
            else f"No {label.lower()} alerts."  # plural: not a count
        )
        return
    cache: dict[str, str] = state.setdefault("live_capture_cache", {})
    shown = {e.alert_id for e in page.entries}
    for stale in [k for k in cache if k not in shown]:
        del cache[stale]
    first_pending = next((e.alert_id for e in page.entries if e.decision is None), None)
    for entry in page.entries:
        alert = entry.alert
        with st.container(border=True, key=f"alert-{alert.alert_id}"):
            image_col, text_col = st.columns([1, 3])
            html = _capture_html(entry, cache)
            if html is None:
                image_col.caption("capture purged")
            else:
                image_col.markdown(html, unsafe_allow_html=True)
            raised = alert.raised_at.astimezone().strftime("%H:%M:%S")
            text_col.markdown(
                f"**Alert #{entry.number}** · **{alert.subject_name}** (`{alert.subject_id}`) · "
                f"score {alert.score:.3f} (threshold {alert.threshold:.4f}) · {raised} · "
                f"{alert.time_to_alert_s:.2f} s after the face appeared"
            )
            if entry.decision is None:
                keys = entry.alert_id == first_pending
                buttons = text_col.columns(2)
                buttons[0].button(
                    "Confirm (Y)" if keys else "Confirm",
                    key=f"confirmed-{alert.alert_id}",
                    on_click=_review,
                    args=(alert.alert_id, "confirmed"),
                    shortcut="Y" if keys else None,
                    help="Keyboard: Y confirms the newest unreviewed alert." if keys else None,
                )
                buttons[1].button(
                    "Reject (N)" if keys else "Reject",
                    key=f"rejected-{alert.alert_id}",
                    on_click=_review,
                    args=(alert.alert_id, "rejected"),
                    shortcut="N" if keys else None,
                    help="Keyboard: N rejects the newest unreviewed alert." if keys else None,
                )
            else:
                text_col.markdown(
                    f"**{entry.decision}** by {entry.reviewer} after "
                    f"{entry.time_to_decision_s:.0f} s"
                )
    last = page.offset + len(page.entries)
    nav = st.columns([1, 2, 1])
    nav[0].button(
        "◀ Newer",
        key="live_alerts_newer",
        disabled=page.offset == 0,
        on_click=_move_page,
        args=(-ALERTS_PER_PAGE,),
    )
    nav[1].caption(f"alerts {page.offset + 1}–{last} of {page.total}, newest first")
    nav[2].button(
        "Older ▶",
        key="live_alerts_older",
        disabled=last >= page.total,
        on_click=_move_page,
        args=(ALERTS_PER_PAGE,),
    )


with video_col:
    _stats_panel()
with side_col:
    _alerts_panel()


# ---------------------------------------------------------------------- enrolment
# Actions run as button callbacks: a callback finishes before the page runs again, whereas
# work in the script body can be cut short by the next rerun (the video component asks for
# reruns of its own), which would lose a click.
def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _message(kind: str, text: str) -> None:
    state["live_message"] = (kind, text)


def _enrol(face, name: str, subject_id: str, image_sha256: str | None) -> bool:
    """Put one face on the watchlist and hand the new watchlist to the stream."""
    name = (name or "").strip()
    subject_id = (subject_id or "").strip() or _slug(name)
    if not name or not subject_id:
        _message("warning", "Give the person's name.")
        return False
    try:
        watchlist.enrol_faces(
            SubjectInfo(
                subject_id, name, category="test volunteer", reason="enrolled on the Live page"
            ),
            [face],
            engine.engine_id,
            image_sha256=image_sha256,
        )
    except LfrError as exc:
        _message("error", f"{type(exc).__name__}: {exc}")
        return False
    _refresh_watchlist(force=True)
    _message("success", f"Enrolled {name} ({subject_id}); the live stream searches for them now.")
    return True


def _take_snapshot() -> None:
    frame = pipeline.snapshot()
    if frame is None:
        _message("warning", "Start the stream first: there is no frame yet.")
        return
    state["live_snapshot"] = (frame, engine.analyze(frame))
    state["live_message"] = None


def _enrol_snapshot() -> None:
    frame, faces = state["live_snapshot"]
    face = select_one_face(faces, "the snapshot", largest=True)
    digest = hashlib.sha256(frame.tobytes()).hexdigest()
    if _enrol(face, state.get("live_snap_name", ""), state.get("live_snap_id", ""), digest):
        state["live_snapshot"] = None


def _enrol_photo() -> None:
    photo = state.get("live_photo")
    if photo is None:
        _message("warning", "Choose a photo first.")
        return
    data = photo.getvalue()
    try:
        face = select_one_face(
            engine.analyze(decode_image(data, photo.name)), photo.name, largest=True
        )
    except LfrError as exc:
        _message("error", f"{type(exc).__name__}: {exc}")
        return
    _enrol(
        face,
        state.get("live_photo_name", ""),
        state.get("live_photo_id", ""),
        hashlib.sha256(data).hexdigest(),
    )


if state.get("live_message"):
    # shown outside the expander, which folds away once someone is enrolled
    kind, text = state["live_message"]
    {"success": st.success, "warning": st.warning, "error": st.error}[kind](text)
with st.expander("Enrol a face", expanded=holder() is None or holder().size == 0):
    snap_tab, photo_tab = st.tabs(["Snapshot of the live stream", "Photo"])
    with snap_tab:
        st.caption("Takes the current frame of the stream (kept in memory only).")
        st.button("Take snapshot", key="live_take_snapshot", on_click=_take_snapshot)
        snapshot = state.get("live_snapshot")
        if snapshot is not None:
            frame, faces = snapshot
            st.image(frame, width=320)
            st.caption(
                f"{plural(len(faces), 'face')} found in the snapshot"
                + ("; the largest is enrolled." if faces else ": take another one.")
            )
            if faces:
                st.text_input("Name", key="live_snap_name")
                st.text_input("Subject id (default: from the name)", key="live_snap_id")
                st.button(
                    "Enrol from snapshot", key="live_enrol_snapshot", on_click=_enrol_snapshot
                )
    with photo_tab:
        st.file_uploader(
            "Photo of the person", type=["jpg", "jpeg", "png", "webp"], key="live_photo"
        )
        st.text_input("Name", key="live_photo_name")
        st.text_input("Subject id (default: from the name)", key="live_photo_id")
        st.button("Enrol photo", key="live_enrol_photo", on_click=_enrol_photo)


# ---------------------------------------------------------------------- end of session
def _end_session() -> None:
    session.deployment = state.get("live_deployment", "")
    current = holder()
    state["live_summary"] = session.summary(
        watchlist_size=0 if current is None else current.size,
        threshold=settings.threshold,
        engine=engine.engine_id.key,
        ended_at=datetime.now(timezone.utc),
    )
    _new_session()


st.divider()
st.button("End session and show the deployment results", key="live_end", on_click=_end_session)
summary = state.get("live_summary")
if summary is not None:
    st.subheader("Deployment results")
    st.table(pd.DataFrame(summary.lines(), columns=["", "value"]).set_index(""))
    st.caption(
        "False alert rate here is false alerts per face scanned (the figure forces publish), "
        "not FPIR."
    )
    st.download_button(
        "Download the results (text)",
        summary.to_text(),
        file_name="deployment-results.txt",
        key="live_summary_download",
    )

with st.expander("Purge log (alerts removed after the retention period)"):
    log = store.purge_log()
    if log:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "alert": e.alert_id,
                        "raised (UTC)": e.raised_at,
                        "purged (UTC)": e.purged_at,
                        "decision": e.decision or "not reviewed",
                    }
                    for e in log
                ]
            ),
            hide_index=True,
        )
    else:
        st.caption("Nothing purged yet.")
