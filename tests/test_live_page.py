"""The Live page's logic with streamlit.testing (AppTest).

AppTest cannot run the streamlit-webrtc component (it needs a browser and the server runtime),
so ``webrtc_streamer`` is replaced by a recorder that hands back the page's own frame callback.
The tests then push real video frames (real faces, as ``av.VideoFrame``) through that callback
as the browser would, with the real dlib engine, watchlist and alert store behind it. The real
browser path is covered by ``test_live_browser.py``.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest
import streamlit_webrtc
from conftest import REPO_ROOT
from live_support import LivePeople, build_synthetic_pack
from streamlit.testing.v1 import AppTest

from lfr_eval.live import AlertStore, FaceAppearance, LiveAlert, SceneScript
from lfr_eval.live._duty import live_engine_threads
from lfr_eval.watchlist import Watchlist

PAGE = REPO_ROOT / "app" / "pages" / "1_Live.py"
RUN_TIMEOUT = 120


class WebRtcRecorder:
    """Stands in for ``webrtc_streamer``: records each call and reports the stream state."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.playing = False

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return SimpleNamespace(state=SimpleNamespace(playing=self.playing))

    @property
    def last(self) -> dict:
        return self.calls[-1]

    def send(self, rgb: np.ndarray) -> np.ndarray:
        """Pass one RGB frame through the page's frame callback, as the browser stream does."""
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        # as aiortc delivers them: 90 kHz RTP clock
        frame.pts, frame.time_base = int(time.monotonic() * 90_000), Fraction(1, 90_000)
        return self.last["video_frame_callback"](frame).to_ndarray(format="rgb24")


@pytest.fixture()
def webrtc(monkeypatch: pytest.MonkeyPatch) -> WebRtcRecorder:
    recorder = WebRtcRecorder()
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", recorder)
    return recorder


@pytest.fixture()
def page(workspace: Path, webrtc: WebRtcRecorder, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LFR_WORKSPACE", str(workspace))
    monkeypatch.delenv("LFR_ICE_SERVERS", raising=False)
    monkeypatch.delenv("LFR_ALERT_RETENTION_HOURS", raising=False)
    monkeypatch.syspath_prepend(str(REPO_ROOT / "app"))
    at = AppTest.from_file(str(PAGE), default_timeout=RUN_TIMEOUT)
    yield at
    pipeline = at.session_state.get("live_pipeline")
    if pipeline is not None:
        pipeline.close()
    sys.modules.pop("_shared", None)


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def camera_frame(people: LivePeople, *, listed: bool = True) -> np.ndarray:
    photo = people.camera_photo if listed else people.strangers[0]
    return SceneScript((FaceAppearance(photo, 0, 1, 200, 100),), 1.0).render(0.5)


def enrol_by_photo(at: AppTest, people: LivePeople) -> None:
    at.file_uploader(key="live_photo").set_value(
        ("listed.jpg", jpeg(people.enrol_photo), "image/jpeg")
    )
    at.text_input(key="live_photo_name").input(people.listed_name)
    at.text_input(key="live_photo_id").input("listed-1")
    at.button(key="live_enrol_photo").click().run()
    assert not at.exception


def stream_until_alert(
    webrtc: WebRtcRecorder, frame: np.ndarray, store: AlertStore, seconds: float = 20.0
) -> list:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        webrtc.send(frame)
        alerts = store.alerts()
        if alerts:
            return alerts
        time.sleep(0.05)
    return []


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_page_starts_with_loopback_ice_and_engine_threshold(page: AppTest, webrtc) -> None:
    page.run()
    assert not page.exception
    assert page.title[0].value == "Live"
    assert webrtc.last["rtc_configuration"] == {"iceServers": []}
    assert webrtc.last["mode"] == streamlit_webrtc.WebRtcMode.SENDRECV
    assert callable(webrtc.last["video_frame_callback"])
    assert page.slider(key="live_threshold").value == pytest.approx(0.92)
    captions = " ".join(c.value for c in page.caption)
    assert (
        "alert data kept **24 h**" in captions and "non-matching captures never stored" in captions
    )
    assert "No alerts in this session yet." in captions
    assert "Remote use (ICE servers)" in [e.label for e in page.sidebar.expander]


def test_ice_servers_are_configurable_for_remote_use(page: AppTest, webrtc, monkeypatch) -> None:
    turn = '[{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]'
    monkeypatch.setenv("LFR_ICE_SERVERS", turn)
    page.run()
    assert webrtc.last["rtc_configuration"]["iceServers"][0]["urls"] == [
        "turn:turn.example.org:3478"
    ]
    page.text_area(key="live_ice").input("{not json").run()
    assert "ICE servers must be a JSON list" in page.error[0].value
    assert webrtc.last["rtc_configuration"] == {"iceServers": []}


def test_threshold_slider_reaches_the_running_stream(page: AppTest) -> None:
    page.run()
    settings = page.session_state["live_settings"]
    pipeline = page.session_state["live_pipeline"]
    assert pipeline.settings is settings
    page.slider(key="live_threshold").set_value(0.97).run()
    assert settings.threshold == pytest.approx(0.97)
    assert pipeline.settings.snapshot().threshold == pytest.approx(0.97)


def test_recognition_share_is_set_on_the_page_and_shown(page: AppTest, monkeypatch) -> None:
    monkeypatch.setenv("LFR_LIVE_CPU_SHARE", "0.3")
    page.run()
    assert not page.exception
    assert page.slider(key="live_cpu_share").value == pytest.approx(0.3)
    pipeline = page.session_state["live_pipeline"]
    assert pipeline.settings.snapshot().recognition_cpu_share == pytest.approx(0.3)
    # the worker embeds on one thread (its own session); the shared engine keeps its threads
    assert live_engine_threads(pipeline.engine) == 1
    page.slider(key="live_cpu_share").set_value(0.7).run()
    assert pipeline.settings.snapshot().recognition_cpu_share == pytest.approx(0.7)
    captions = " ".join(c.value for c in page.caption)
    assert "busy at most **70%** of the time on 1 thread (≤ 70% of one core)" in captions
    assert "recognition steps/s (last 5 s)" in captions


def test_a_bad_recognition_share_is_refused_with_its_reason(page: AppTest, monkeypatch) -> None:
    monkeypatch.setenv("LFR_LIVE_CPU_SHARE", "2")
    page.run()
    assert not page.exception
    assert "LFR_LIVE_CPU_SHARE='2'" in page.error[0].value
    assert "live_pipeline" not in page.session_state


def test_enrol_photo_alert_review_and_results(
    page: AppTest, webrtc, people, threshold, workspace: Path
) -> None:
    page.run()
    page.slider(key="live_threshold").set_value(threshold).run()
    enrol_by_photo(page, people)
    assert "Enrolled" in page.success[0].value
    assert [s.subject_id for s in Watchlist.open(workspace=workspace).subjects()] == ["listed-1"]

    store = AlertStore.open(workspace)
    # a stranger in front of the camera: boxes, but no alert and nothing stored
    stranger = camera_frame(people, listed=False)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        webrtc.send(stranger)
        time.sleep(0.05)
    assert store.alerts() == []
    # the stranger walks off (the track ends), then the listed person comes:
    # an alert, with a red box drawn on the returned frame
    empty = SceneScript((), 1.0).render(0.0)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        webrtc.send(empty)
        time.sleep(0.05)
    alerts = stream_until_alert(webrtc, camera_frame(people), store)
    assert len(alerts) == 1 and alerts[0].subject_id == "listed-1"
    drawn = webrtc.send(camera_frame(people))
    assert ((drawn[..., 0] > 200) & (drawn[..., 1] < 80)).sum() > 100

    page.run()
    assert f"**Alert #1** · **{people.listed_name}**" in markdown_text(page)
    page.button(key=f"confirmed-{alerts[0].alert_id}").click().run()
    assert "Enter the reviewing officer" in page.warning[0].value
    assert store.get(alerts[0].alert_id).decision is None
    page.text_input(key="live_reviewer").input("PC 1234").run()
    page.button(key=f"confirmed-{alerts[0].alert_id}").click().run()
    record = store.get(alerts[0].alert_id)
    assert record.decision == "confirmed" and record.reviewer == "PC 1234"
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Alerts"] == "1" and metrics["Confirmed"] == "1" and metrics["Rejected"] == "0"
    assert int(metrics["Faces seen"]) >= 2
    assert "**confirmed** by PC 1234" in markdown_text(page)

    old_session = page.session_state["live_session"].session_id
    page.text_input(key="live_deployment").input("Training room 2")
    page.button(key="live_end").click().run()
    table = page.table[0].value
    assert table.loc["Deployment", "value"] == "Training room 2"
    assert table.loc["Alerts", "value"] == "1"
    assert table.loc["True alerts (confirmed by the reviewing officer)", "value"] == "1"
    assert int(table.loc["Faces scanned", "value"]) >= 2
    assert "faces scanned" in table.loc["False alert rate (false alerts per face scanned)", "value"]
    assert page.session_state["live_session"].session_id != old_session
    # no file but the two stores (and the engine's converted model cache under models/, which
    # holds network weights only): no stranger's capture, no uploaded photo
    files = sorted(
        p.relative_to(workspace).as_posix()
        for p in workspace.rglob("*")
        if p.is_file() and not p.relative_to(workspace).as_posix().startswith("models/dlib-onnx/")
    )
    assert files == ["live/alerts.sqlite", "watchlist.sqlite"]


def test_enrol_from_a_snapshot_of_the_stream(page: AppTest, webrtc, people, workspace) -> None:
    page.run()
    page.button(key="live_take_snapshot").click().run()
    assert "Start the stream first" in page.warning[0].value
    webrtc.send(camera_frame(people))
    page.button(key="live_take_snapshot").click().run()
    captions = " ".join(c.value for c in page.caption)
    assert "1 face found in the snapshot; the largest is enrolled." in captions
    page.text_input(key="live_snap_name").input("Trainer Two")
    page.button(key="live_enrol_snapshot").click().run()
    assert not page.exception
    (subject,) = Watchlist.open(workspace=workspace).subjects()
    assert (subject.subject_id, subject.display_name) == ("trainer-two", "Trainer Two")
    holder = page.session_state["live_holder"]
    assert holder().size == 1
    assert page.session_state["live_snapshot"] is None  # the snapshot is dropped after use


def test_expired_alerts_are_purged_and_the_purge_is_shown(page: AppTest, workspace, people) -> None:
    store = AlertStore.open(workspace)
    raised = datetime.now(timezone.utc) - timedelta(hours=25)
    store.add(
        LiveAlert(
            "old-alert",
            "earlier-session",
            1,
            "listed-1",
            "Listed",
            0.95,
            0.92,
            raised,
            0.4,
            people.camera_photo[60:190, 60:190],
        )
    )
    page.run()
    assert store.alerts() == []
    captions = " ".join(c.value for c in page.caption)
    assert "purged automatically this session: **1**" in captions
    log = page.dataframe[0].value
    assert list(log["alert"]) == ["old-alert"] and list(log["decision"]) == ["not reviewed"]


def test_retention_follows_the_setting(page: AppTest, monkeypatch) -> None:
    monkeypatch.setenv("LFR_ALERT_RETENTION_HOURS", "2")
    page.run()
    assert "alert data kept **2 h**" in " ".join(c.value for c in page.caption)


def test_video_file_mode_plays_from_memory(page: AppTest, webrtc, people, tmp_path) -> None:
    from lfr_eval.live import write_y4m

    page.run()
    page.radio(key="live_source").set_value("Video file").run()
    assert any("Choose a video file" in i.value for i in page.info)
    scene = SceneScript((FaceAppearance(people.camera_photo, 0, 1, 200, 100),), 1.0, fps=5)
    video = write_y4m(tmp_path / "clip.y4m", scene.frames(), scene.fps).read_bytes()
    page.file_uploader(key="live_video").set_value(("clip.y4m", video, "video/x-yuv4mpeg"))
    page.run()
    call = webrtc.last
    assert call["mode"] == streamlit_webrtc.WebRtcMode.RECVONLY
    assert call["rtc_configuration"] == {"iceServers": []}
    player = call["player_factory"]()
    assert player.video is not None and player.audio is None

    async def play(n: int) -> list[int]:
        return [(await player.video.recv()).pts for _ in range(n)]

    import asyncio

    pts = asyncio.run(play(8))  # past the end of the 5-frame clip: it plays on
    assert player.video.passes == 1 and pts == sorted(pts) and len(set(pts)) == 8
    player.video.stop()


def test_threshold_chosen_on_another_page_is_adopted_once(page: AppTest) -> None:
    page.session_state["lfr_chosen_threshold"] = 0.915  # Threshold explorer / verified config
    page.run()
    assert page.slider(key="live_threshold").value == pytest.approx(0.915)
    assert page.session_state["live_settings"].threshold == pytest.approx(0.915)
    page.slider(key="live_threshold").set_value(0.95).run()
    assert page.session_state["live_settings"].threshold == pytest.approx(0.95)
    page.session_state["lfr_chosen_threshold"] = 0.93
    page.run()
    assert page.session_state["live_settings"].threshold == pytest.approx(0.93)


def test_settings_survive_a_visit_to_another_page(page: AppTest) -> None:
    app = AppTest.from_file(str(REPO_ROOT / "app" / "Home.py"), default_timeout=RUN_TIMEOUT)
    app.run()
    app.switch_page("pages/1_Live.py").run()
    assert app.title[0].value == "Live"
    app.slider(key="live_threshold").set_value(0.96).run()
    app.text_input(key="live_reviewer").input("PC 77").run()
    # Streamlit drops a page's widget state when the user opens another page
    app.switch_page("pages/2_Watchlist.py").run()
    assert not app.exception and app.title[0].value == "Watchlist"
    app.switch_page("pages/1_Live.py").run()
    try:
        assert app.slider(key="live_threshold").value == pytest.approx(0.96)
        assert app.text_input(key="live_reviewer").value == "PC 77"
        assert app.session_state["live_settings"].threshold == pytest.approx(0.96)
    finally:
        app.session_state["live_pipeline"].close()


def test_a_signed_in_officer_is_recorded_as_the_reviewer(
    page: AppTest, webrtc, people, threshold, workspace: Path
) -> None:
    """With users configured, decisions carry the signed-in user, not a typed name; and the
    watchlist audit records who enrolled."""
    import _shared

    from lfr_eval.users import Role, UserStore

    user = UserStore().add("officer7", "a long enough password", [Role.TRAINER])
    page.session_state[_shared.STATE_USER] = _shared.SignedInUser(user.username, user.roles)
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    assert not any(w.key == "live_reviewer" for w in page.text_input)
    assert any("**officer7** (signed in)" in c.value for c in page.sidebar.caption)
    page.slider(key="live_threshold").set_value(threshold).run()
    enrol_by_photo(page, people)
    store = AlertStore.open(workspace)
    alerts = stream_until_alert(webrtc, camera_frame(people), store)
    assert alerts
    page.run()
    page.button(key=f"rejected-{alerts[0].alert_id}").click().run()
    record = store.get(alerts[0].alert_id)
    assert record.decision == "rejected" and record.reviewer == "officer7"
    audit = Watchlist.open(workspace=workspace).audit_log()
    assert any(e.action != "create" and e.actor == "officer7" for e in audit)


def _coloured_capture(n: int) -> np.ndarray:
    """A capture told apart from every other by its colour (n-th of many), 120x100 px."""
    rng = np.random.default_rng(n)
    image = np.empty((120, 100, 3), np.uint8)
    image[:] = rng.integers(30, 226, size=3)
    return image


def _cards(at: AppTest) -> list[tuple[str, np.ndarray, str]]:
    """(alert id in the <img>, decoded image, the card's text) of every alert card, in order."""
    import base64
    import re

    cards = []
    values = [m.value for m in at.markdown]
    for i, value in enumerate(values):
        found = re.search(r'data-alert-id="([0-9a-z-]+)".*base64,([A-Za-z0-9+/=]+)"', value)
        if found:
            data = np.frombuffer(base64.b64decode(found.group(2)), np.uint8)
            rgb = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            cards.append((found.group(1), rgb, values[i + 1]))
    return cards


def test_alert_cards_show_their_own_capture_after_many_rapid_alerts(
    page: AppTest, workspace: Path
) -> None:
    """Alerts arrive in bursts between refreshes; every card shown must hold its own alert's
    capture (never the picture drawn in that place at the previous refresh), newest first, with
    paging and filters; the queue is read from the session, not from the store."""
    page.run()
    session = page.session_state["live_session"]
    now = datetime.now(timezone.utc)
    numbers: dict[str, int] = {}
    colours: dict[str, np.ndarray] = {}
    n = 0
    for burst in range(8):
        for _ in range(3 + burst % 3):
            n += 1
            alert_id = f"alert-{n:03d}"
            capture = _coloured_capture(n)
            session.on_alert(
                LiveAlert(
                    alert_id,
                    session.session_id,
                    n,
                    "listed-1",
                    "Listed",
                    0.95,
                    0.92,
                    now + timedelta(seconds=n),
                    0.3,
                    capture,
                )
            )
            numbers[alert_id], colours[alert_id] = n, capture[0, 0]
        page.run()
        assert not page.exception
        cards = _cards(page)
        assert [numbers[a] for a, _, _ in cards] == list(range(n, max(0, n - 5), -1))
        for alert_id, image, text in cards:
            assert f"**Alert #{numbers[alert_id]}**" in text
            # the image is this alert's capture (JPEG: colour within a few levels)
            assert np.abs(image[60, 50].astype(int) - colours[alert_id]).max() <= 6, alert_id
    assert session.flush()
    assert len(AlertStore.open(workspace).alerts()) == n

    # paging: older alerts, their captures read back once from memory or the store
    page.button(key="live_alerts_older").click().run()
    older = _cards(page)
    assert [numbers[a] for a, _, _ in older] == list(range(n - 5, n - 10, -1))
    for alert_id, image, _ in older:
        assert np.abs(image[60, 50].astype(int) - colours[alert_id]).max() <= 6
    assert any("alerts 6–10 of" in c.value for c in page.caption)

    # filters: review one (first unreviewed has the keyboard shortcut), then show confirmed only
    page.text_input(key="live_reviewer").input("PC 7").run()
    page.radio(key="live_alert_filter").set_value("Unreviewed").run()
    first = _cards(page)[0][0]
    assert numbers[first] == n  # the filter went back to the first page
    page.button(key=f"confirmed-{first}").click().run()
    page.radio(key="live_alert_filter").set_value("Confirmed").run()
    assert [a for a, _, _ in _cards(page)] == [first]
    page.radio(key="live_alert_filter").set_value("Rejected").run()
    assert _cards(page) == [] and "No rejected alerts." in [c.value for c in page.caption]
    assert AlertStore.open(workspace).get(first).decision == "confirmed"


@pytest.mark.parametrize(
    ("backend", "runtime"),
    [
        ("dlib-torch", "torch"),
        ("dlib-torch", "onnxruntime"),
        ("dlib", ""),
        ("insightface", "torch"),
    ],
)
def test_gpu_asked_for_and_absent_is_refused_not_run_on_the_cpu(
    page: AppTest, webrtc, monkeypatch, tmp_path: Path, backend: str, runtime: str
) -> None:
    """``--device cuda`` on a machine without a usable GPU: the page says why and starts no
    stream (no silent CPU fallback). On a GPU machine this test does not apply. InsightFace
    runs through the PyTorch runtime here (the synthetic pack stands in for buffalo_l)."""
    import torch

    if torch.cuda.is_available() and backend != "dlib":
        pytest.skip("a GPU is available here: the refusal cannot be shown")
    if backend == "insightface":
        monkeypatch.setenv("LFR_MODEL_PACK", str(build_synthetic_pack(tmp_path / "pack")))
    monkeypatch.setenv("LFR_ENGINE", backend)
    monkeypatch.setenv("LFR_DEVICE", "cuda")
    if runtime:
        monkeypatch.setenv("LFR_RUNTIME", runtime)
    page.run()
    assert not page.exception
    errors = " ".join(e.value for e in page.error)
    assert "cuda" in errors.lower() and "RuntimeUnavailableError" in errors
    assert webrtc.calls == []  # no stream was started on the CPU instead
