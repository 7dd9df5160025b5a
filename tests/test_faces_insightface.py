"""InsightFace backend end to end with test-built SCRFD/ArcFace ONNX models (no downloads)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from onnx_models import (
    SCRFD_BOX_OFFSETS,
    SCRFD_FIRING_SCORE,
    SCRFD_KPS_OFFSETS,
    build_arcface_like,
    build_scrfd_like,
    paint_face_cell,
)

from lfr_eval.errors import ImageError, ModelError, RuntimeUnavailableError
from lfr_eval.faces import EngineId, load_engine, load_image, sha256_file
from lfr_eval.faces._insightface import InsightFaceEngine, find_model_pack

PACK = "test_pack"


@pytest.fixture(scope="session")
def models_root(tmp_path_factory) -> Path:
    """A models folder holding one pack laid out like insightface's buffalo_l."""
    root = tmp_path_factory.mktemp("models")
    pack = root / PACK
    pack.mkdir()
    build_scrfd_like(pack / "det_10g.onnx")
    build_arcface_like(pack / "w600k_r50.onnx")
    return root


@pytest.fixture(scope="session")
def pack_dir(models_root) -> Path:
    return models_root / PACK


@pytest.fixture(scope="session")
def engine(pack_dir) -> InsightFaceEngine:
    return load_engine("insightface", model_pack=str(pack_dir))


@pytest.fixture()
def isolated_roots(tmp_path, monkeypatch) -> Path:
    """No real ~/.insightface or $LFR_MODELS leaks into lookups."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LFR_MODELS", str(tmp_path / "lfr_models"))
    return tmp_path


def _frame(background: np.ndarray | None = None, size=(480, 640)) -> np.ndarray:
    if background is None:
        return np.zeros((*size, 3), np.uint8)
    return np.ascontiguousarray(background[: size[0], : size[1]]).copy()


def test_detect_align_embed_end_to_end(engine):
    image = _frame()
    anchor = paint_face_cell(image, col=8, row=6)
    (face,) = engine.analyze(image)
    expected_box = np.concatenate([anchor - SCRFD_BOX_OFFSETS[:2], anchor + SCRFD_BOX_OFFSETS[2:]])
    np.testing.assert_allclose(face.box, expected_box, atol=1e-3)
    np.testing.assert_allclose(face.landmarks, anchor + SCRFD_KPS_OFFSETS, atol=1e-3)
    assert face.det_score == pytest.approx(SCRFD_FIRING_SCORE, abs=1e-4)
    assert face.crop.shape == (112, 112, 3) and face.crop.dtype == np.uint8
    assert face.embedding.shape == (512,) and face.embedding.dtype == np.float32
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
    assert face.quality.size_px == pytest.approx(60.0)
    assert abs(face.quality.yaw_deg) < 1e-6 and abs(face.quality.roll_deg) < 1e-6


@pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")
def test_matches_insightface_own_pipeline(engine, pack_dir, insightface_images):
    """Crop and embedding are what insightface's classes give for the same landmarks."""
    from insightface.model_zoo import get_model
    from insightface.utils.face_align import norm_crop

    image = _frame(load_image(insightface_images / "t1.jpg"))
    paint_face_cell(image, col=10, row=8)
    (face,) = engine.analyze(image)
    crop = norm_crop(image, landmark=face.landmarks.astype(np.float32), image_size=112)
    np.testing.assert_array_equal(face.crop, crop)
    rec = get_model(str(pack_dir / "w600k_r50.onnx"), providers=["CPUExecutionProvider"])
    reference = rec.get_feat([crop[:, :, ::-1]])[0]  # insightface takes BGR
    np.testing.assert_allclose(face.embedding, reference / np.linalg.norm(reference), atol=1e-5)


def test_letterbox_scaling_and_several_faces(engine):
    image = np.zeros((960, 1280, 3), np.uint8)  # twice the 640 detector size
    first = paint_face_cell(image, col=4, row=4, scale=2.0)
    second = paint_face_cell(image, col=14, row=9, scale=2.0)
    faces = engine.analyze(image, embed=False)
    assert len(faces) == 2 and all(f.embedding is None for f in faces)
    found = sorted(tuple(np.round(f.landmarks[2])) for f in faces)
    expected = sorted(tuple(a + 2 * SCRFD_KPS_OFFSETS[2]) for a in (first, second))
    assert found == expected
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_no_face_and_content_sensitivity(engine, insightface_images):
    assert engine.analyze(_frame()) == []
    backgrounds = [load_image(insightface_images / n) for n in ("t1.jpg", "Tom_Hanks_54745.png")]
    embeddings = []
    for background in backgrounds:
        image = np.zeros((480, 640, 3), np.uint8)
        patch = background[:480, :640]
        image[: patch.shape[0], : patch.shape[1]] = patch
        paint_face_cell(image, col=8, row=6)
        embeddings.append(engine.analyze(image)[0].embedding)
    # the recognizer sees the pixels around the box: other pixels, other embedding
    assert float(embeddings[0] @ embeddings[1]) < 0.999


def test_batch_embedding_and_bad_crops(engine):
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(5)]
    together = engine.embed_crops(crops, batch_size=32)
    in_pairs = engine.embed_crops(crops, batch_size=2)
    one_by_one = np.stack([engine.embed_crops([c])[0] for c in crops])
    np.testing.assert_allclose(together, in_pairs, atol=1e-5)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    assert engine.embed_crops([]).shape == (0, 512)
    with pytest.raises(ImageError, match="112x112"):
        engine.embed_crops([np.zeros((150, 150, 3), np.uint8)])


def test_engine_id_hashes_and_providers(engine, pack_dir):
    eid = engine.engine_id
    assert eid.backend == "insightface" and eid.embedding_dim == 512
    files = {m.role: m for m in eid.models}
    assert files["detector"].name == "det_10g.onnx"
    assert files["detector"].sha256 == sha256_file(pack_dir / "det_10g.onnx")
    assert files["recognizer"].sha256 == sha256_file(pack_dir / "w600k_r50.onnx")
    assert EngineId.from_dict(eid.to_dict()) == eid
    assert eid.key.startswith("insightface:w600k_r50.onnx@")
    assert engine.runtime.name == "onnxruntime"
    assert engine.runtime.providers == ("CPUExecutionProvider",)
    assert engine.detector_providers == ("CPUExecutionProvider",)
    assert not engine.runtime.gpu_requested and not engine.runtime.gpu_active
    assert engine.info().model_paths["detector"] == str(pack_dir / "det_10g.onnx")


def test_same_weights_same_key_wherever_they_live(engine, pack_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(pack_dir, copy)
    other = InsightFaceEngine(model_pack=copy)
    assert other.engine_id == engine.engine_id
    build_arcface_like(copy / "w600k_r50.onnx", seed=7)
    retrained = InsightFaceEngine(model_pack=copy)
    assert retrained.engine_id.recognizer_key != engine.engine_id.recognizer_key


def test_cuda_request_never_falls_back(pack_dir):
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        engine = InsightFaceEngine(model_pack=pack_dir, device="cuda")
        assert engine.runtime.gpu_active
        assert engine.runtime.providers[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(RuntimeUnavailableError, match="onnxruntime-gpu"):
            InsightFaceEngine(model_pack=pack_dir, device="cuda")


def test_pack_lookup_by_name(models_root, isolated_roots, monkeypatch):
    monkeypatch.setenv("LFR_MODELS", str(models_root))
    assert find_model_pack(PACK) == models_root / PACK
    engine = InsightFaceEngine(model_pack=PACK)
    assert engine.engine_id.recognizer.name == "w600k_r50.onnx"
    # ~/.insightface/models is searched too
    monkeypatch.setenv("LFR_MODELS", str(isolated_roots / "empty"))
    home_models = isolated_roots / "home" / ".insightface" / "models"
    home_models.mkdir(parents=True)
    shutil.copytree(models_root / PACK, home_models / "buffalo_l")
    assert find_model_pack("buffalo_l") == home_models / "buffalo_l"
    assert InsightFaceEngine().engine_id == engine.engine_id  # buffalo_l is the default pack


def test_missing_pack_names_layout(isolated_roots):
    with pytest.raises(ModelError) as info:
        InsightFaceEngine(model_pack="buffalo_l")
    message = str(info.value)
    assert "buffalo_l" in message and "not found" in message
    assert str(isolated_roots / "lfr_models" / "buffalo_l") in message
    assert str(isolated_roots / "home" / ".insightface" / "models" / "buffalo_l") in message
    assert "det_10g.onnx" in message and "w600k_r50.onnx" in message
    assert "Nothing is downloaded" in message


def test_incomplete_pack(tmp_path, pack_dir):
    folder = tmp_path / "half"
    folder.mkdir()
    shutil.copy(pack_dir / "det_10g.onnx", folder)
    with pytest.raises(ModelError, match="has no recognizer file, an ArcFace"):
        InsightFaceEngine(model_pack=folder)


def test_unknown_file_names_classified_by_graph(tmp_path, pack_dir, engine):
    folder = tmp_path / "renamed"
    folder.mkdir()
    shutil.copy(pack_dir / "det_10g.onnx", folder / "a.onnx")
    shutil.copy(pack_dir / "w600k_r50.onnx", folder / "b.onnx")
    renamed = InsightFaceEngine(model_pack=folder)
    assert {m.name for m in renamed.engine_id.models} == {"a.onnx", "b.onnx"}
    image = _frame()
    paint_face_cell(image, col=8, row=6)
    np.testing.assert_allclose(
        renamed.analyze(image)[0].embedding, engine.analyze(image)[0].embedding, atol=1e-6
    )


def test_wrong_model_files(tmp_path, pack_dir):
    det, rec = pack_dir / "det_10g.onnx", pack_dir / "w600k_r50.onnx"
    with pytest.raises(ModelError, match="not a valid recognizer.*SCRFD"):
        InsightFaceEngine(detector_path=det, recognizer_path=det)
    with pytest.raises(ModelError, match="not a valid detector.*ArcFaceONNX"):
        InsightFaceEngine(detector_path=rec, recognizer_path=rec)
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    with pytest.raises(ModelError, match="not a valid recognizer"):
        InsightFaceEngine(detector_path=det, recognizer_path=text)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError):
        InsightFaceEngine(detector_path=empty, recognizer_path=rec)
    with pytest.raises(ModelError, match="not found"):
        InsightFaceEngine(detector_path=det, recognizer_path=tmp_path / "missing.onnx")


def test_dlib_file_as_recognizer(pack_dir):
    from lfr_eval.faces._dlib_models import RECOGNITION_RESNET, default_models_folder

    with pytest.raises(ModelError, match="not a valid recognizer"):
        InsightFaceEngine(
            detector_path=pack_dir / "det_10g.onnx",
            recognizer_path=default_models_folder() / RECOGNITION_RESNET,
        )


@pytest.mark.parametrize(
    "array",
    [np.zeros((100, 100, 3), np.float64), np.zeros((3, 3, 3), np.uint8), [[0, 1]]],
    ids=["float", "tiny", "list"],
)
def test_bad_arrays(engine, array):
    with pytest.raises(ImageError):
        engine.analyze(array)


def test_bad_options(pack_dir):
    with pytest.raises(ValueError, match="multiples of 32"):
        InsightFaceEngine(model_pack=pack_dir, det_size=(100, 100))
    with pytest.raises(ValueError, match="runtime"):
        InsightFaceEngine(model_pack=pack_dir, runtime="tensorrt")


# --- lfr-eval info ----------------------------------------------------------------------------


def test_info_cli_reports_models_and_runtime(pack_dir, capsys):
    from lfr_eval.cli import main

    main(["info", "--engine", "insightface", "--model-pack", str(pack_dir), "--json"])
    document = json.loads(capsys.readouterr().out)
    engine = document["engine"]
    assert engine["backend"] == "insightface"
    models = {m["role"]: m for m in engine["models"]}
    assert models["recognizer"]["sha256"] == sha256_file(pack_dir / "w600k_r50.onnx")
    assert models["detector"]["path"] == str(pack_dir / "det_10g.onnx")
    assert engine["runtime"]["providers"] == ["CPUExecutionProvider"]
    assert engine["runtime"]["gpu_active"] is False
    assert document["packages"]["onnxruntime"] == onnxruntime.__version__
    assert "CPUExecutionProvider" in document["gpu"]["onnxruntime_providers"]


def test_info_cli_exit_codes(pack_dir, isolated_roots, capsys):
    from lfr_eval.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["info", "--engine", "insightface", "--model-pack", "buffalo_s"])
    assert exit_info.value.code == 5
    assert "det_10g.onnx" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["info", "--device", "cuda"])  # dlib is CPU-only
    assert exit_info.value.code == 6
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "info",
                    "--engine",
                    "insightface",
                    "--model-pack",
                    str(pack_dir),
                    "--device",
                    "cuda",
                ]
            )
        assert exit_info.value.code == 6
