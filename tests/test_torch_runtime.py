"""PyTorch runtime for ONNX face models: the same detections and embeddings as onnxruntime,
honest device handling (CUDA asked for and absent is an error, never the CPU instead)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from onnx_models import (
    build_arcface_like,
    build_fpn_detector_like,
    build_scrfd_like,
    paint_face_cell,
)

from lfr_eval.errors import ModelError, RuntimeUnavailableError
from lfr_eval.faces import load_engine
from lfr_eval.faces.torch_runtime import TorchRecognizer, TorchSession, crops_to_blob

torch = pytest.importorskip("torch")
pytest.importorskip("onnx2torch")

#: fp32: PyTorch and onnxruntime differ only by rounding (measured max |diff| ~1e-7 on unit
#: vectors); fp16 (CUDA only) keeps cosine similarity to the fp32 result above 0.999.
FP32_ATOL = 1e-4
FP32_MIN_COSINE = 0.99999
FP16_MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pack")
    return (
        build_scrfd_like(folder / "det_10g.onnx"),
        build_arcface_like(folder / "w600k_r50.onnx", layers=(2, 2, 2, 2), seed=3),
    )


@pytest.fixture(scope="module")
def fpn_detector(tmp_path_factory) -> Path:
    return build_fpn_detector_like(tmp_path_factory.mktemp("fpn") / "scrfd_fpn.onnx", seed=2)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (9, 112, 112, 3), dtype=np.uint8)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _onnxruntime_embeddings(path: Path, blob: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: blob})[0]


def test_signature_read_from_graph(models):
    rec = TorchRecognizer(models[1], device="cpu")
    sig = rec.signature
    assert (sig.input_size, sig.embedding_dim, sig.fixed_batch) == (112, 512, None)
    assert (sig.input_mean, sig.input_std) == (127.5, 127.5)
    assert rec.device == "cpu" and rec.precision == "fp32" and not rec.gpu_active


def test_cpu_fp32_matches_onnxruntime(models, crops):
    rec = TorchRecognizer(models[1], device="cpu", precision="fp32")
    blob = crops_to_blob(crops, 127.5, 127.5)
    ours = rec.embed(blob)
    reference = _onnxruntime_embeddings(models[1], blob)
    assert ours.shape == (9, 512) and ours.dtype == np.float32
    np.testing.assert_allclose(_unit(ours), _unit(reference), atol=FP32_ATOL)
    cosines = np.sum(_unit(ours) * _unit(reference), axis=1)
    assert cosines.min() > FP32_MIN_COSINE
    # batching does not change results
    np.testing.assert_allclose(_unit(rec.embed_crops(crops, batch_size=4)), _unit(ours), atol=1e-5)
    assert rec.embed(torch.from_numpy(blob)).shape == (9, 512)


def test_channels_last_layout_gives_the_same_embeddings(models, crops):
    """NHWC (the CUDA default) must not change what the network computes."""
    blob = crops_to_blob(crops, 127.5, 127.5)
    nchw = TorchRecognizer(models[1], device="cpu", channels_last=False)
    nhwc = TorchRecognizer(models[1], device="cpu", channels_last=True)
    assert not nchw.channels_last and nhwc.channels_last
    np.testing.assert_allclose(_unit(nhwc.embed(blob)), _unit(nchw.embed(blob)), atol=FP32_ATOL)


def _three_faces() -> np.ndarray:
    """A 1280x720 frame with three synthetic faces (the detector letterboxes it at scale 1/2)."""
    image = np.zeros((720, 1280, 3), np.uint8)
    for col, row in ((3, 4), (9, 5), (15, 3)):
        paint_face_cell(image, col=col, row=row, scale=2.0)
    return image


@pytest.mark.parametrize("which", ["synthetic", "fpn"])
def test_torch_session_outputs_match_onnxruntime(models, fpn_detector, which):
    """The detector's network, run by PyTorch behind onnxruntime's session interface, gives
    onnxruntime's outputs to float32 rounding: the synthetic SCRFD, and a random-weight one
    built from SCRFD's layer types (convolutions, feature pyramid with Resize, heads)."""
    path = models[0] if which == "synthetic" else fpn_detector
    ours = TorchSession(path, "detector")
    reference = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # what insightface's detector classes read from a session
    for mine, theirs in zip(
        ours.get_inputs() + ours.get_outputs(), reference.get_inputs() + reference.get_outputs()
    ):
        assert (mine.name, mine.shape, mine.type) == (theirs.name, theirs.shape, theirs.type)
    assert ours.get_providers() == ["cpu"] and not ours.gpu_active
    names = [o.name for o in reference.get_outputs()]
    rng = np.random.default_rng(11)
    for height, width in ((640, 640), (384, 640)):
        blob = rng.normal(0, 1, (1, 3, height, width)).astype(np.float32)
        got = ours.run(names, {"input.1": blob})
        want = reference.run(names, {"input.1": blob})
        assert len(got) == 9
        for a, b in zip(got, want):
            assert a.shape == b.shape and a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        # a subset, in the order asked for
        (first, last) = ours.run([names[8], names[0]], {"input.1": blob})
        np.testing.assert_array_equal(first, got[8])
        np.testing.assert_array_equal(last, got[0])
    assert ours.calls == 4
    with pytest.raises(ValueError, match="input.1"):
        ours.run(names, {"other": blob})
    with pytest.raises(RuntimeUnavailableError, match="cannot be moved"):
        ours.set_providers(["CUDAExecutionProvider"])


def test_torch_session_channels_last_gives_the_same_outputs(fpn_detector):
    """NHWC, the CUDA default for the detector too, must not change what the network computes
    (the graph's Transpose/Reshape tails included)."""
    nhwc = TorchSession(fpn_detector, channels_last=True)
    reference = onnxruntime.InferenceSession(str(fpn_detector), providers=["CPUExecutionProvider"])
    blob = np.random.default_rng(12).normal(0, 1, (1, 3, 320, 480)).astype(np.float32)
    for a, b in zip(nhwc.run(None, {"input.1": blob}), reference.run(None, {"input.1": blob})):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_engine_torch_runtime_matches_onnxruntime(models):
    """runtime='torch' runs the detector and the recognizer in PyTorch, and gives the same
    detections, landmarks, crops and embeddings as onnxruntime, to float32 rounding."""
    det, rec = models
    ort_engine = load_engine("insightface", detector_path=det, recognizer_path=rec)
    torch_engine = load_engine(
        "insightface", detector_path=det, recognizer_path=rec, runtime="torch"
    )
    assert torch_engine.runtime.name == "torch"
    assert torch_engine.runtime.providers == ("cpu",)
    assert torch_engine.detector_providers == ("cpu",)
    assert torch_engine.recognizer_providers == ("cpu",)
    assert torch_engine.runtime.precision == "fp32"
    assert ort_engine.detector_providers == ("CPUExecutionProvider",)
    # same weights: same embedding space, templates mix
    assert torch_engine.engine_id == ort_engine.engine_id
    image = _three_faces()
    want, got = ort_engine.detect(image), torch_engine.detect(image)
    assert len(want.boxes) == 3
    np.testing.assert_allclose(got.boxes, want.boxes, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.landmarks, want.landmarks, rtol=1e-5, atol=1e-4)
    faces_a, faces_b = ort_engine.analyze(image), torch_engine.analyze(image)
    assert len(faces_a) == len(faces_b) == 3
    for a, b in zip(faces_a, faces_b):
        np.testing.assert_array_equal(a.crop, b.crop)
        np.testing.assert_allclose(b.embedding, a.embedding, atol=FP32_ATOL)
        assert float(a.embedding @ b.embedding) > FP32_MIN_COSINE


def test_torch_runtime_runs_no_onnxruntime_session(models, monkeypatch):
    """After loading, detection and embedding never call onnxruntime (nothing runs on the
    CPU provider behind the torch runtime's back)."""
    engine = load_engine(
        "insightface", detector_path=models[0], recognizer_path=models[1], runtime="torch"
    )
    ort_engine = load_engine("insightface", detector_path=models[0], recognizer_path=models[1])

    def refuse(*args, **kwargs):
        raise AssertionError("onnxruntime ran a network under runtime='torch'")

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", refuse)
    faces = engine.analyze(_three_faces())
    assert len(faces) == 3 and all(f.embedding is not None for f in faces)
    with pytest.raises(AssertionError, match="onnxruntime ran"):
        ort_engine.detect(_three_faces())  # the check can fail: onnxruntime would be caught


def test_detector_class_that_bypasses_the_torch_session_is_refused(models, monkeypatch):
    """A detector class that would not run its network through our session (as an insightface
    release keeping sessions of its own might) is an error, not a silent onnxruntime run."""
    from insightface.model_zoo.retinaface import RetinaFace

    empty = (np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32))
    monkeypatch.setattr(RetinaFace, "detect", lambda self, img, input_size=None: empty)
    with pytest.raises(RuntimeUnavailableError, match="did not run its network"):
        load_engine(
            "insightface", detector_path=models[0], recognizer_path=models[1], runtime="torch"
        )


def test_fp16_needs_cuda(models):
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        TorchRecognizer(models[1], device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        TorchSession(models[0], device="cpu", precision="fp16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_unavailable_is_an_error(models):
    with pytest.raises(RuntimeUnavailableError, match="torch.cuda.is_available"):
        TorchRecognizer(models[1], device="cuda")
    with pytest.raises(RuntimeUnavailableError, match="torch.cuda.is_available"):
        TorchSession(models[0], device="cuda")
    with pytest.raises(RuntimeUnavailableError, match="We do not fall back to the CPU"):
        load_engine(
            "insightface",
            detector_path=models[0],
            recognizer_path=models[1],
            runtime="torch",
            device="cuda",
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_matches_onnxruntime(models, crops, precision):
    rec = TorchRecognizer(models[1], device="cuda", precision=precision)
    assert rec.gpu_active and rec.device.startswith("cuda:")
    blob = crops_to_blob(crops, 127.5, 127.5)
    cosines = np.sum(_unit(rec.embed(blob)) * _unit(_onnxruntime_embeddings(models[1], blob)), 1)
    assert cosines.min() > (FP16_MIN_COSINE if precision == "fp16" else FP32_MIN_COSINE)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_engine_reports_gpu(models):
    pytest.importorskip("insightface")
    engine = load_engine(
        "insightface",
        detector_path=models[0],
        recognizer_path=models[1],
        runtime="torch",
        device="cuda",
    )
    assert engine.runtime.gpu_active and engine.runtime.precision == "fp16"
    assert engine.runtime.providers[0].startswith("cuda:")
    assert engine.detector_providers[0].startswith("cuda:")
    assert engine.recognizer_providers[0].startswith("cuda:")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp32_detections_match_onnxruntime(models):
    pytest.importorskip("insightface")
    det, rec = models
    cpu = load_engine("insightface", detector_path=det, recognizer_path=rec)
    gpu = load_engine(
        "insightface",
        detector_path=det,
        recognizer_path=rec,
        runtime="torch",
        device="cuda",
        precision="fp32",
    )
    want, got = cpu.detect(_three_faces()), gpu.detect(_three_faces())
    assert len(got.boxes) == 3
    np.testing.assert_allclose(got.boxes, want.boxes, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(got.landmarks, want.landmarks, rtol=1e-5, atol=1e-3)


def test_wrong_models(models, tmp_path):
    with pytest.raises(ModelError, match="not a face recognizer"):
        TorchRecognizer(models[0])
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ModelError):
        TorchRecognizer(junk)
    with pytest.raises(ModelError, match="not found"):
        TorchRecognizer(tmp_path / "absent.onnx")
    with pytest.raises(ModelError, match="not found"):
        TorchSession(tmp_path / "absent.onnx")
    with pytest.raises(ModelError):
        TorchSession(junk)
    # the model zoo's checks apply to the torch runtime's detector too
    with pytest.raises(ModelError, match="not a valid detector"):
        load_engine(
            "insightface", detector_path=models[1], recognizer_path=models[1], runtime="torch"
        )
