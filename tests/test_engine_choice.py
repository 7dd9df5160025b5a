"""One place turns a user's engine choice into an engine, and one default threshold per engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from lfr_eval.errors import LfrError, RuntimeUnavailableError
from lfr_eval.faces import DEFAULT_THRESHOLDS, EngineChoice, default_threshold

APP = Path(__file__).resolve().parents[1] / "app"


def test_environment_round_trip() -> None:
    choice = EngineChoice("insightface", "hog", "buffalo_l", "torch", "cuda")
    assert EngineChoice.from_env(choice.to_env()) == choice
    assert EngineChoice.from_env({}) == EngineChoice()
    assert choice.describe() == "insightface, model_pack=buffalo_l, runtime=torch, device=cuda"


def test_impossible_combinations_are_refused_before_loading() -> None:
    with pytest.raises(RuntimeUnavailableError, match="CPU only"):
        EngineChoice("dlib", device="cuda").load()
    with pytest.raises(LfrError, match="dlib-torch --runtime torch"):
        EngineChoice("dlib", runtime="torch").load()
    with pytest.raises(LfrError, match="only for --engine dlib"):
        EngineChoice("insightface", runtime="dlib").load()


def test_a_background_load_gives_the_engine_or_its_error() -> None:
    """The app's Home page draws while the engine loads (EngineLoading); a page that waits gets
    the same engine as a direct load, or the load's own error, never nothing."""
    loading = EngineChoice("dlib").load_in_background()
    engine = loading.wait(timeout=300)
    assert loading.done and not loading.failed
    assert engine.engine_id == EngineChoice("dlib").load().engine_id
    assert loading.wait(timeout=0) is engine  # loaded once: later waits return at once
    assert loading.elapsed_s == loading.elapsed_s > 0  # frozen once done

    refused = EngineChoice("dlib", device="cuda").load_in_background()
    with pytest.raises(RuntimeUnavailableError, match="CPU only"):
        refused.wait(timeout=60)
    assert refused.done and refused.failed
    with pytest.raises(RuntimeUnavailableError):  # kept, not lost after the first wait
        refused.wait(timeout=0)


def test_one_default_threshold(dlib_engine) -> None:
    from lfr_eval.live import default_threshold as live_default

    assert default_threshold(dlib_engine) == default_threshold("dlib") == DEFAULT_THRESHOLDS["dlib"]
    assert live_default("insightface") == default_threshold("insightface")
    assert -1.0 <= min(DEFAULT_THRESHOLDS.values()) <= max(DEFAULT_THRESHOLDS.values()) <= 1.0


def test_app_uses_the_library_not_the_cli() -> None:
    for page in [APP / "_shared.py", *sorted((APP / "pages").glob("*.py"))]:
        assert "lfr_eval.cli" not in page.read_text(), page.name


def test_open_dataset_is_shared_by_cli_and_page(tmp_path: Path) -> None:
    from lfr_eval.datasets import default_face_choice, open_dataset
    from tests.test_datasets import _write_noise_jpeg

    for person in ("ann", "bob", "cy"):
        for i in range(2):
            _write_noise_jpeg(tmp_path / "data" / person / f"{i}.jpg", i)
    opened = open_dataset(tmp_path / "data", limit=4, seed=1)
    assert opened.layout == "folder" and opened.face_choice == "largest"
    assert opened.manifest.n_images == 4 and opened.manifest.n_subjects == 2  # whole subjects
    assert (
        opened.describe().startswith("dataset ") and "4 images of 2 subjects" in opened.describe()
    )
    assert default_face_choice("lfw") == "central"
    assert default_face_choice("lfw", "largest") == "largest"
