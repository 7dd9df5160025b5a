"""The dlib engine's default embedder: dlib's ResNet as ONNX on onnxruntime, against dlib itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lfr_eval.datasets import engine_cache_key
from lfr_eval.faces import load_engine, load_image, sha256_file
from lfr_eval.faces._dlib_models import RECOGNITION_RESNET, default_models_folder
from lfr_eval.faces._dlib_onnx import (
    OnnxResNet,
    available_cpus,
    cpu_threads,
    resnet_onnx,
    set_cpu_threads,
)
from lfr_eval.faces.dlib_convert import DlibFormatError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reference_engine():
    return load_engine("dlib", embedder="dlib")


@pytest.fixture(scope="module")
def chips(insightface_images, reference_engine) -> list[np.ndarray]:
    """Six real faces (insightface's group photo) and two synthetic chips."""
    faces = reference_engine.analyze(load_image(insightface_images / "t1.jpg"), embed=False)
    rng = np.random.default_rng(7)
    noise = [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(2)]
    return [f.crop for f in faces] + noise


def test_onnx_descriptors_match_dlib(dlib_engine, reference_engine, chips):
    assert dlib_engine.embedder == "onnxruntime" and reference_engine.embedder == "dlib"
    expected = reference_engine.raw_descriptors(chips)
    got = dlib_engine.raw_descriptors(chips, batch_size=3)
    assert np.abs(got - expected).max() < 2e-6
    np.testing.assert_allclose(
        dlib_engine.embed_crops(chips), reference_engine.embed_crops(chips), atol=1e-6
    )


def test_whole_analysis_matches_dlib(dlib_engine, reference_engine, insightface_images):
    image = load_image(insightface_images / "t1.jpg")
    ours, theirs = dlib_engine.analyze(image), reference_engine.analyze(image)
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a.box, b.box)
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-6)


def test_engine_ids_name_what_runs(dlib_engine, reference_engine):
    ours, theirs = dlib_engine.engine_id, reference_engine.engine_id
    # one embedding space (the .dat's key), two cache keys (the ONNX graph is listed)
    assert ours.recognizer_key == theirs.recognizer_key
    assert engine_cache_key(dlib_engine) != engine_cache_key(reference_engine)
    onnx_model = next(m for m in ours.models if m.role == "recognizer_onnx")
    assert onnx_model.sha256 == sha256_file(dlib_engine.model_paths["recognizer_onnx"])
    assert dlib_engine.runtime.name == "onnxruntime"
    assert "dlib" in dlib_engine.runtime.version  # dlib still detects and aligns
    assert reference_engine.runtime.name == "dlib"
    assert {m.role for m in theirs.models} == {"landmarks", "recognizer"}


def test_threads_do_not_change_descriptors(tmp_path, chips):
    model = resnet_onnx(default_models_folder() / RECOGNITION_RESNET, cache_dir=tmp_path)
    one, two = OnnxResNet(model, threads=1), OnnxResNet(model, threads=2)
    np.testing.assert_array_equal(one(chips), two(chips))
    assert one.threads == 1
    set_cpu_threads(1)
    try:
        assert cpu_threads() == 1 and OnnxResNet(model).threads == 1
    finally:
        set_cpu_threads(None)
    assert cpu_threads() == available_cpus()
    with pytest.raises(ValueError):
        set_cpu_threads(0)


def test_cache_is_keyed_by_source_and_repairs_itself(tmp_path):
    source = default_models_folder() / RECOGNITION_RESNET
    first = resnet_onnx(source, cache_dir=tmp_path)
    assert first.path.parent.name == sha256_file(source)
    assert first.sha256 == sha256_file(first.path)
    stamp = first.path.stat().st_mtime_ns
    again = resnet_onnx(source, cache_dir=tmp_path)
    assert again == first and again.path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    first.path.write_bytes(b"damaged")
    repaired = resnet_onnx(source, cache_dir=tmp_path)
    assert repaired.sha256 == first.sha256  # the build is deterministic
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_wrong_source_file_refused(tmp_path):
    wrong = tmp_path / RECOGNITION_RESNET
    wrong.write_bytes(b"\x01\x02not a dlib network")
    with pytest.raises(DlibFormatError):
        resnet_onnx(wrong, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / sha256_file(wrong)).exists()


def test_default_engine_never_imports_torch(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "import lfr_eval.faces, lfr_eval.datasets, lfr_eval.cli\n"
        "from lfr_eval.faces import load_engine\n"
        "e = load_engine('dlib')\n"
        "e.embed_crops([np.zeros((150, 150, 3), np.uint8)])\n"
        "assert e.runtime.name == 'onnxruntime'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx2torch')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**_env(), "LFR_MODELS": str(tmp_path)},
        check=True,
    )
    assert out.stdout.strip() == "[]", out.stdout


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_pool_worker_session_has_its_share_of_threads_and_no_spinning():
    """A pool worker (embed_manifest --workers N) builds its engine with cores / N onnxruntime
    intra-op threads, one inter-op thread and spinning off, as its session really reports."""
    import functools

    from lfr_eval.datasets import _embedding

    factory = functools.partial(load_engine, "dlib", upsample=0)
    key = engine_cache_key(factory(), "central")
    try:
        _embedding._init_worker(factory, key, "central", 1)
        options = _embedding._worker_engine._onnx._session.get_session_options()
    finally:
        set_cpu_threads(None)
        _embedding._worker_engine = None
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
