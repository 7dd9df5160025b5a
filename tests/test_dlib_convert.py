"""dlib's networks converted to PyTorch/ONNX: file reader, exactness against dlib, cache, engine.

Every comparison is against dlib itself, run live on real faces (LFW, insightface's t1.jpg).
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import dlib
import numpy as np
import pytest
import torch

from lfr_eval.errors import ModelError, RuntimeUnavailableError
from lfr_eval.faces import load_engine, load_image, sha256_file
from lfr_eval.faces._dlib_models import locate_dlib_models
from lfr_eval.faces.dlib_convert import (
    MMOD_SPEC,
    RESNET_SPEC,
    DescriptorRunner,
    DlibFormatError,
    MmodRunner,
    convert_dlib_model,
    parse_network,
    read_network,
)
from lfr_eval.faces.dlib_convert._cache import MANIFEST
from lfr_eval.faces.dlib_convert._mmod import _DevicePlan, _resize_plan, pyramid_up_rgb
from lfr_eval.faces.dlib_convert._serialize import (
    AffineLayer,
    ConvLayer,
    DlibReader,
    FcLayer,
    SkipLayer,
    TagLayer,
)

N_LFW_IMAGES = 200  # at least this many distinct LFW images, from the pairs of fold 1


# ----------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dlib_paths():
    return locate_dlib_models(need_cnn=True)


@pytest.fixture(scope="session")
def convert_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dlib-converted")


@pytest.fixture(scope="session")
def converted_resnet(dlib_paths, convert_cache):
    return convert_dlib_model(dlib_paths.recognizer, "resnet", cache_dir=convert_cache)


@pytest.fixture(scope="session")
def converted_mmod(dlib_paths, convert_cache):
    return convert_dlib_model(dlib_paths.cnn_detector, "mmod", cache_dir=convert_cache)


@pytest.fixture(scope="session")
def lfw_subset(lfw_dir):
    """The first k mated and k non-mated pairs of LFW's fold 1, k the smallest giving 200
    distinct images, and those images."""
    from lfr_eval.datasets import read_lfw_pairs

    pairs = read_lfw_pairs(lfw_dir)
    frame = pairs.frame[pairs.frame["fold"] == 0]
    for k in range(N_LFW_IMAGES // 4, 301):
        chosen = frame.groupby("mated", sort=False).head(k).reset_index(drop=True)
        paths = sorted(set(chosen["path_a"]) | set(chosen["path_b"]))
        if len(paths) >= N_LFW_IMAGES:
            break
    return chosen, [pairs.root / p for p in paths], paths


@pytest.fixture(scope="session")
def lfw_chips(lfw_subset, dlib_engine):
    """dlib's own 150x150 chips (HOG detection, 5 landmarks, get_face_chip) of the subset."""
    _, files, _ = lfw_subset
    chips = []
    for path in files:
        image = load_image(path)
        boxes = dlib_engine.detect(image).boxes
        if len(boxes) == 0:  # LFW faces are centred: fall back to the middle of the image
            boxes = np.array([[70.0, 70.0, 180.0, 180.0]])
        chips.append(dlib_engine.align(image, boxes[:1])[0][1])
    return np.stack(chips)


@pytest.fixture(scope="session")
def dlib_descriptors(lfw_chips, dlib_engine):
    return dlib_engine.raw_descriptors(list(lfw_chips), batch_size=64)


@pytest.fixture(scope="session")
def cnn_detector(dlib_paths):
    return dlib.cnn_face_detection_model_v1(str(dlib_paths.cnn_detector))


@pytest.fixture(scope="session")
def t1_image(insightface_images):
    return load_image(insightface_images / "t1.jpg")


@pytest.fixture(scope="session")
def dlib_t1_boxes(cnn_detector, t1_image):
    return _dlib_cnn(cnn_detector, t1_image, 0)


def _dlib_cnn(detector, image: np.ndarray, upsample: int) -> tuple[np.ndarray, np.ndarray]:
    found = detector(image, upsample)
    rects = np.array(
        [[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in found]
    ).reshape(-1, 4)
    return rects, np.array([d.confidence for d in found])


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ----------------------------------------------------------------------------------------
# the file format
# ----------------------------------------------------------------------------------------


def _int(value: int) -> bytes:
    """dlib's integer encoding: size/sign byte, then the magnitude little-endian."""
    magnitude = abs(value)
    payload = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(payload) | (0x80 if value < 0 else 0)]) + payload


def _float(value: float) -> bytes:
    """dlib's float encoding: integer mantissa and exponent, value = m * 2**e."""
    mantissa, exponent = math.frexp(value)
    return _int(int(mantissa * (1 << 24))) + _int(exponent - 24)


def test_scalar_encodings_decode():
    data = (
        _int(2)
        + _int(-300)
        + _int(70000)
        + _float(0.04)
        + _float(-122.782)
        + b"1"
        + b"0"
        + _int(5)
        + b"con_6"
        + _int(2)
        + _int(1)
        + _int(2)
        + _int(1)
        + _int(3)
        + np.arange(6, dtype="<f4").tobytes()
    )
    reader = DlibReader(data, "<test>", what="test", expected="nothing")
    assert reader.integer() == 2
    assert reader.integer() == -300
    assert reader.unsigned() == 70000
    assert reader.real() == pytest.approx(0.04, rel=1e-7)
    assert reader.real() == pytest.approx(-122.782, rel=1e-7)
    assert reader.boolean() is True and reader.boolean() is False
    assert reader.string() == "con_6"
    np.testing.assert_array_equal(
        reader.tensor(), np.arange(6, dtype=np.float32).reshape(1, 2, 1, 3)
    )
    assert reader.remaining == 0
    with pytest.raises(DlibFormatError, match="file ends inside"):
        reader.integer()


def test_recognizer_file_is_read_layer_by_layer(dlib_paths):
    net = read_network(dlib_paths.recognizer, RESNET_SPEC)
    convs = [layer for layer in net.layers if isinstance(layer, ConvLayer)]
    assert len(convs) == 29
    assert convs[0].weight.shape == (32, 3, 7, 7) and convs[0].stride == (2, 2)
    assert convs[-1].weight.shape == (256, 256, 3, 3)
    assert sum(isinstance(layer, AffineLayer) for layer in net.layers) == 29
    assert sum(isinstance(layer, SkipLayer) for layer in net.layers) == 4
    assert sum(isinstance(layer, TagLayer) for layer in net.layers) == 18
    fc = net.layers[-1]
    assert isinstance(fc, FcLayer) and fc.weight.shape == (128, 256) and fc.bias is None
    assert net.input.size == (150, 150)
    # dlib's default channel means, and the metric loss's settings as float32 values
    np.testing.assert_allclose(net.input.mean_rgb, (122.782, 117.001, 104.298), rtol=1e-6)
    assert net.loss.margin == pytest.approx(0.04) and net.loss.distance_threshold == pytest.approx(
        0.6
    )
    assert all(np.isfinite(c.weight).all() for c in convs)


def test_detector_file_is_read_layer_by_layer(dlib_paths):
    net = read_network(dlib_paths.cnn_detector, MMOD_SPEC)
    convs = [layer for layer in net.layers if isinstance(layer, ConvLayer)]
    assert [c.weight.shape[0] for c in convs] == [16, 32, 32, 45, 45, 45, 1]
    assert [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)] * 4
    # the file stores batch-norm layers; they are folded into affines
    affines = [layer for layer in net.layers if isinstance(layer, AffineLayer)]
    assert len(affines) == 6 and all(a.mode == "conv" for a in affines)
    assert [(w.width, w.height) for w in net.loss.windows] == [(80, 80)]
    assert 0.3 < net.loss.nms_iou < 0.4 and net.loss.nms_percent_covered == 1.0
    assert (net.input.pyramid_padding, net.input.pyramid_outer_padding) == (10, 11)


@pytest.fixture(scope="session")
def recognizer_bytes(dlib_paths) -> bytes:
    return Path(dlib_paths.recognizer).read_bytes()


def _flip_layer_name(data: bytes) -> bytes:
    at = data.index(b"affine_")
    return data[:at] + b"affinX_" + data[at + 7 :]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: b"", "too short"),
        (lambda d: d[: len(d) // 2], "file ends inside"),
        (lambda d: d + b"\x00\x01", "unexpected bytes after the last layer"),
        (lambda d: b"\xff\xd8\xff\xe0" + d[4:4000], "bad control byte|version"),
        (_flip_layer_name, "expected an affine layer"),
        (lambda d: d[:40] + bytes(200) + d[240:], "version"),
    ],
    ids=["empty", "truncated", "trailing", "jpeg-header", "renamed-layer", "zeroed"],
)
def test_corrupt_recognizer_file_gives_clear_error(recognizer_bytes, damage, message):
    with pytest.raises(DlibFormatError, match=message) as info:
        parse_network(damage(recognizer_bytes), RESNET_SPEC, "bad.dat")
    text = str(info.value)
    assert "bad.dat" in text and RESNET_SPEC.expected_file in text and "byte" in text
    assert isinstance(info.value, ModelError)


def test_other_dlib_files_are_refused(dlib_paths, tmp_path):
    with pytest.raises(DlibFormatError, match="MMOD|loss|expected"):
        read_network(dlib_paths.cnn_detector, RESNET_SPEC)
    with pytest.raises(DlibFormatError, match="metric|loss|expected"):
        read_network(dlib_paths.recognizer, MMOD_SPEC)
    with pytest.raises(DlibFormatError):
        read_network(dlib_paths.shape_predictor, RESNET_SPEC)
    with pytest.raises(ModelError, match="not found"):
        read_network(tmp_path / "missing.dat", RESNET_SPEC)


# ----------------------------------------------------------------------------------------
# the recognizer
# ----------------------------------------------------------------------------------------


@pytest.mark.lfw
@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_descriptors_match_dlib_on_lfw(converted_resnet, lfw_chips, dlib_descriptors, runtime):
    assert len(lfw_chips) >= N_LFW_IMAGES
    runner = DescriptorRunner(converted_resnet, runtime, "cpu")
    ours = runner(lfw_chips, batch_size=64)
    assert ours.shape == dlib_descriptors.shape == (len(lfw_chips), 128)
    assert np.max(np.abs(ours - dlib_descriptors)) <= 1e-4
    assert _cosine(ours, dlib_descriptors).min() >= 0.99999
    assert not runner.runtime_info.gpu_active and runner.runtime_info.name == runtime


@pytest.mark.lfw
def test_onnx_batch_is_dynamic(converted_resnet, lfw_chips):
    runner = DescriptorRunner(converted_resnet, "onnxruntime", "cpu")
    one_by_one = np.concatenate([runner(lfw_chips[i : i + 1]) for i in range(7)])
    np.testing.assert_allclose(runner(lfw_chips[:7], batch_size=7), one_by_one, atol=1e-5)
    import onnx

    model = onnx.load(str(converted_resnet.onnx_path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [150, 150, 3]


@pytest.mark.lfw
def test_lfw_pairs_decisions_equal_dlib(converted_resnet, lfw_subset, lfw_chips, dlib_descriptors):
    """Same pairs accuracy and the very same decisions, with one threshold rule for both."""
    pairs, _, paths = lfw_subset
    index = {p: i for i, p in enumerate(paths)}
    a = pairs["path_a"].map(index).to_numpy()
    b = pairs["path_b"].map(index).to_numpy()
    mated = pairs["mated"].to_numpy(dtype=bool)
    ours = DescriptorRunner(converted_resnet, "onnxruntime")(lfw_chips)

    def scores(d):
        unit = d / np.linalg.norm(d, axis=1, keepdims=True)
        return np.sum(unit[a] * unit[b], axis=1)

    def best_threshold(s):
        ordered = np.sort(s)  # thresholds halfway between consecutive scores
        candidates = (ordered[1:] + ordered[:-1]) / 2
        accuracy = [np.mean((s >= t) == mated) for t in candidates]
        return candidates[int(np.argmax(accuracy))]

    s_dlib, s_ours = scores(dlib_descriptors), scores(ours)
    assert np.max(np.abs(s_dlib - s_ours)) < 1e-5
    # dlib's own rule: raw descriptors closer than 0.6 (Euclidean) are the same person
    same_dlib = np.linalg.norm(dlib_descriptors[a] - dlib_descriptors[b], axis=1) < 0.6
    same_ours = np.linalg.norm(ours[a] - ours[b], axis=1) < 0.6
    np.testing.assert_array_equal(same_ours, same_dlib)
    # cosine with the threshold that is best for dlib's scores, applied to both
    threshold = best_threshold(s_dlib)
    np.testing.assert_array_equal(s_ours >= threshold, s_dlib >= threshold)
    accuracy_dlib = np.mean((s_dlib >= threshold) == mated)
    assert np.mean((s_ours >= best_threshold(s_ours)) == mated) == accuracy_dlib
    assert accuracy_dlib > 0.9  # real faces, a working recognizer


# ----------------------------------------------------------------------------------------
# the detector
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(250, 250, 208, 208), (480, 640, 400, 533), (31, 47, 25, 39)])
def test_pyramid_resize_is_bit_exact(shape):
    h, w, rows, cols = shape
    image = np.random.default_rng(1).normal(size=(h, w)).astype(np.float32)
    plan = _DevicePlan(_resize_plan(h, w, rows, cols), torch.device("cpu"))
    ours = plan.apply(torch.from_numpy(image)[None, None])[0, 0].numpy()
    np.testing.assert_array_equal(ours, dlib.resize_image(image, rows, cols))


def test_upsampling_is_bit_exact(t1_image):
    crop = np.ascontiguousarray(t1_image[60:190, 890:1033])
    h, w = crop.shape[:2]
    ours = pyramid_up_rgb(torch.from_numpy(crop)[None])[0].numpy()
    np.testing.assert_array_equal(ours, dlib.resize_image(crop, 2 * h + 1, 2 * w + 2))


def _assert_same_boxes(ours, theirs) -> None:
    rects, scores = theirs
    assert len(ours.rects) == len(rects)
    if len(rects):
        # compare as sets of boxes: order only differs for equal scores
        ours_sorted = ours.rects[np.lexsort(ours.rects.T[::-1])]
        theirs_sorted = rects[np.lexsort(rects.T[::-1])]
        assert np.abs(ours_sorted - theirs_sorted).max() <= 2
        np.testing.assert_allclose(np.sort(ours.scores), np.sort(scores), atol=1e-4)


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_detector_matches_dlib_on_group_photo(converted_mmod, t1_image, dlib_t1_boxes, runtime):
    runner = MmodRunner(converted_mmod, runtime, "cpu")
    found = runner.detect(t1_image)
    assert len(found.rects) == 6
    _assert_same_boxes(found, dlib_t1_boxes)


@pytest.mark.lfw
def test_detector_matches_dlib_on_lfw(converted_mmod, cnn_detector, lfw_subset):
    _, files, _ = lfw_subset
    runner = MmodRunner(converted_mmod, "onnxruntime", "cpu")
    images = [load_image(p) for p in files[::40][:5]]
    for image in images:
        _assert_same_boxes(runner.detect(image), _dlib_cnn(cnn_detector, image, 0))
    # one image with dlib's upsampling, and a batch of same-size images at once
    _assert_same_boxes(runner.detect(images[0], upsample=1), _dlib_cnn(cnn_detector, images[0], 1))
    batch = runner.detect_batch(np.stack(images[:3]))
    for found, image in zip(batch, images[:3]):
        np.testing.assert_array_equal(found.rects, runner.detect(image).rects)


def test_detector_on_images_without_faces(converted_mmod, cnn_detector):
    runner = MmodRunner(converted_mmod, "onnxruntime")
    for shape in [(40, 30, 3), (200, 300, 3)]:
        blank = np.full(shape, 127, np.uint8)
        assert len(runner.detect(blank).rects) == len(cnn_detector(blank, 0)) == 0
    # narrower than the pyramid padding: dlib fails an internal check, we report no face
    assert len(runner.detect(np.full((8, 8, 3), 127, np.uint8)).rects) == 0


# ----------------------------------------------------------------------------------------
# the conversion cache
# ----------------------------------------------------------------------------------------


def test_conversion_is_cached_by_source_hash(dlib_paths, converted_resnet, convert_cache):
    assert converted_resnet.onnx_path.parent == convert_cache / sha256_file(dlib_paths.recognizer)
    assert converted_resnet.export_max_abs_diff < 1e-4
    start = time.perf_counter()
    again = convert_dlib_model(dlib_paths.recognizer, "resnet", cache_dir=convert_cache)
    assert time.perf_counter() - start < 3  # no re-export
    assert again == converted_resnet
    assert sha256_file(again.onnx_path) == again.onnx_sha256


def test_damaged_cache_entry_is_rebuilt(dlib_paths, tmp_path):
    cache = tmp_path / "cache"
    first = convert_dlib_model(dlib_paths.cnn_detector, "mmod", cache_dir=cache)
    first.onnx_path.write_bytes(b"not onnx")
    rebuilt = convert_dlib_model(dlib_paths.cnn_detector, "mmod", cache_dir=cache)
    assert sha256_file(rebuilt.onnx_path) == rebuilt.onnx_sha256
    (rebuilt.onnx_path.parent / MANIFEST).write_text("{")
    assert convert_dlib_model(dlib_paths.cnn_detector, "mmod", cache_dir=cache).onnx_path.is_file()


def test_corrupt_source_is_refused_and_not_cached(dlib_paths, tmp_path):
    bad = tmp_path / "mmod_human_face_detector.dat"
    data = Path(dlib_paths.cnn_detector).read_bytes()
    bad.write_bytes(data[: len(data) - 1000])
    cache = tmp_path / "cache"
    with pytest.raises(DlibFormatError, match="mmod_human_face_detector.dat"):
        convert_dlib_model(bad, "mmod", cache_dir=cache)
    assert not any(p.is_dir() and not p.name.startswith(".") for p in cache.iterdir())


def test_unwritable_cache_is_a_model_error(dlib_paths, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match="cannot write the converted model cache"):
        convert_dlib_model(dlib_paths.cnn_detector, "mmod", cache_dir=blocker / "cache")


# ----------------------------------------------------------------------------------------
# the engine
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def torch_engine_cnn(convert_cache):
    return load_engine("dlib-torch", detector="cnn", upsample=0, cache_dir=convert_cache)


def test_engine_identity_and_runtime(
    torch_engine_cnn, dlib_engine, converted_resnet, converted_mmod
):
    engine_id = torch_engine_cnn.engine_id
    assert engine_id.backend == "dlib-torch" and engine_id.embedding_dim == 128
    # same source weights as the dlib engine: templates mix
    assert engine_id.recognizer_key == dlib_engine.engine_id.recognizer_key
    assert engine_id.key != dlib_engine.engine_id.key
    roles = {m.role: m for m in engine_id.models}
    assert roles["recognizer_converted"].sha256 == converted_resnet.onnx_sha256
    assert roles["detector_converted"].sha256 == converted_mmod.onnx_sha256
    assert roles["detector"].sha256 == converted_mmod.source_sha256
    runtime = torch_engine_cnn.runtime
    assert runtime.name == "onnxruntime" and runtime.providers == ("CPUExecutionProvider",)
    assert not runtime.gpu_requested and not runtime.gpu_active


def test_engine_cnn_matches_dlib_cnn(torch_engine_cnn, t1_image, dlib_t1_boxes):
    boxes = torch_engine_cnn.detect(t1_image).boxes
    rects, _ = dlib_t1_boxes
    theirs = np.sort(np.c_[rects[:, :2], rects[:, 2:] + 1].astype(float), axis=0)
    np.testing.assert_allclose(np.sort(boxes, axis=0), theirs, atol=2)
    faces = torch_engine_cnn.analyze(t1_image)
    assert len(faces) == 6
    assert all(abs(np.linalg.norm(f.embedding) - 1) < 1e-5 for f in faces)


@pytest.mark.lfw
def test_engine_embeddings_equal_dlib_engine(convert_cache, dlib_engine, lfw_subset):
    engine = load_engine("dlib-torch", runtime="torch", cache_dir=convert_cache)
    _, files, _ = lfw_subset
    for path in files[:3]:
        image = load_image(path)
        ours, theirs = engine.analyze(image), dlib_engine.analyze(image)
        assert len(ours) == len(theirs) >= 1
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.box, b.box)
            np.testing.assert_array_equal(a.crop, b.crop)
            assert float(a.embedding @ b.embedding) >= 0.99999


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_cuda_without_gpu_is_refused(convert_cache, runtime):
    with pytest.raises(RuntimeUnavailableError, match="CUDA"):
        load_engine("dlib-torch", runtime=runtime, device="cuda", cache_dir=convert_cache)


def test_fp16_outside_torch_cuda_is_refused(convert_cache):
    with pytest.raises(RuntimeUnavailableError, match="fp16"):
        load_engine("dlib-torch", runtime="torch", precision="fp16", cache_dir=convert_cache)


def test_missing_model_folder_is_a_model_error(tmp_path, convert_cache):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(ModelError, match="not found"):
        load_engine("dlib-torch", models_folder=folder, cache_dir=convert_cache)
    for name in (
        "shape_predictor_5_face_landmarks.dat",
        "dlib_face_recognition_resnet_model_v1.dat",
    ):
        shutil.copy(locate_dlib_models().shape_predictor.parent / name, folder / name)
    (folder / "mmod_human_face_detector.dat").write_bytes(b"\x01\x01" + bytes(100))
    with pytest.raises(DlibFormatError, match="mmod_human_face_detector.dat"):
        load_engine("dlib-torch", detector="cnn", models_folder=folder, cache_dir=convert_cache)
