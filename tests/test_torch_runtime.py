"""PyTorch runtime for ONNX recognizers: same embeddings as onnxruntime, honest device handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from onnx_models import build_arcface_like, build_scrfd_like, paint_face_cell

from lfr_eval.errors import ModelError, RuntimeUnavailableError
from lfr_eval.faces import load_engine
from lfr_eval.faces.torch_runtime import TorchRecognizer, crops_to_blob

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


def test_engine_torch_runtime_matches_onnxruntime(models):
    det, rec = models
    ort_engine = load_engine("insightface", detector_path=det, recognizer_path=rec)
    torch_engine = load_engine(
        "insightface", detector_path=det, recognizer_path=rec, runtime="torch"
    )
    assert torch_engine.runtime.name == "torch"
    assert torch_engine.runtime.providers == ("cpu", "CPUExecutionProvider")
    assert torch_engine.runtime.precision == "fp32"
    # same weights: same embedding space, templates mix
    assert torch_engine.engine_id == ort_engine.engine_id
    image = np.zeros((480, 640, 3), np.uint8)
    paint_face_cell(image, col=9, row=5)
    (a,) = ort_engine.analyze(image)
    (b,) = torch_engine.analyze(image)
    np.testing.assert_array_equal(a.crop, b.crop)
    assert float(a.embedding @ b.embedding) > FP32_MIN_COSINE


def test_fp16_needs_cuda(models):
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        TorchRecognizer(models[1], device="cpu", precision="fp16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_unavailable_is_an_error(models):
    with pytest.raises(RuntimeUnavailableError, match="torch.cuda.is_available"):
        TorchRecognizer(models[1], device="cuda")
    with pytest.raises(RuntimeUnavailableError):
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


def test_wrong_models(models, tmp_path):
    with pytest.raises(ModelError, match="not a face recognizer"):
        TorchRecognizer(models[0])
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ModelError):
        TorchRecognizer(junk)
    with pytest.raises(ModelError, match="not found"):
        TorchRecognizer(tmp_path / "absent.onnx")
