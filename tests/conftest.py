"""Fixtures shared by the whole suite: real data locations and a real default engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the bit-identity tests (marker ``shape_stable_blas``) where this process's BLAS
    rounds a score by its place in the product (e.g. OpenBLAS's Haswell kernels on AMD Zen 2):
    there they cannot hold. ``tests/test_blas_rounding.py`` then runs them in a child process
    under a shape-stable OpenBLAS core and checks float32-rounding agreement here."""
    marked = [item for item in items if item.get_closest_marker("shape_stable_blas")]
    if not marked:
        return
    from lfr_eval.search._kernel import blas_rounding

    rounding = blas_rounding()
    if rounding.shape_stable:
        return
    skip = pytest.mark.skip(
        reason=f"{rounding.describe()}; run under a shape-stable core by test_blas_rounding.py"
    )
    for item in marked:
        item.add_marker(skip)


def lfw_root() -> Path | None:
    """The LFW folder: $LFR_LFW_DIR, else ../shared/datasets/lfw beside the repo; None if absent."""
    env = os.environ.get("LFR_LFW_DIR")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "datasets" / "lfw"
    return candidate if (candidate / "images").is_dir() else None


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    root = lfw_root()
    if root is None:
        pytest.skip("LFW not found: set LFR_LFW_DIR or place it at ../shared/datasets/lfw")
    return root


@pytest.fixture(scope="session")
def insightface_images() -> Path:
    """Sample images shipped in the insightface wheel (t1.jpg is a group photo of 6 people)."""
    import insightface

    folder = Path(insightface.__file__).parent / "data" / "images"
    if not (folder / "t1.jpg").is_file():
        pytest.skip("insightface sample images not installed")
    return folder


@pytest.fixture(scope="session")
def dlib_engine():
    from lfr_eval.faces import load_engine

    return load_engine("dlib")


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave screenshots and reports for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True, scope="session")
def _data_key_outside_home(tmp_path_factory: pytest.TempPathFactory):
    """Every test's stores are encrypted under a throw-away key ring, never the user's own.

    Set in the environment, so app and CLI subprocesses the tests start use it too.
    """
    from lfr_eval.atrest import ENV_KEY_FILE, clear_cache

    previous = os.environ.get(ENV_KEY_FILE)
    os.environ[ENV_KEY_FILE] = str(tmp_path_factory.mktemp("data-keys") / "data-keys.json")
    clear_cache()
    yield
    if previous is None:
        os.environ.pop(ENV_KEY_FILE, None)
    else:
        os.environ[ENV_KEY_FILE] = previous
    clear_cache()


@pytest.fixture(autouse=True)
def private_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Users, signing keys and trusted keys of each test live in a fresh folder, never in the
    real per-user config dir (and no allowed roots leak in from the environment)."""
    folder = tmp_path_factory.mktemp("lfr-config")
    monkeypatch.setenv("LFR_CONFIG_DIR", str(folder))
    for name in ("LFR_KEYS_DIR", "LFR_USERS_FILE", "LFR_ALLOWED_ROOTS"):
        monkeypatch.delenv(name, raising=False)
    return folder


# ---------------------------------------------------------------------- live tests' people
# Shared by test_live_pipeline, test_alert_writer and test_live_page: one listed person and
# strangers (real photos, tests/live_support.py), the threshold that separates them with dlib,
# and a watchlist holding the listed person.
@pytest.fixture(scope="session")
def people(dlib_engine, insightface_images: Path):
    from live_support import live_people

    return live_people(lfw_root(), insightface_images, dlib_engine)


@pytest.fixture(scope="session")
def threshold(dlib_engine, people) -> float:
    from live_support import separating_threshold

    return separating_threshold(dlib_engine, people)[2]


@pytest.fixture()
def watchlist(dlib_engine, people, workspace: Path):
    """The live tests' watchlist: the listed person as ``listed-1`` (a LiveWatchlist)."""
    from lfr_eval.live import LiveWatchlist
    from lfr_eval.watchlist import SubjectInfo, Watchlist

    store = Watchlist.open(workspace=workspace)
    face = max(dlib_engine.analyze(people.enrol_photo), key=lambda f: f.area)
    store.enrol_faces(SubjectInfo("listed-1", people.listed_name), [face], dlib_engine.engine_id)
    return LiveWatchlist.from_watchlist(store, dlib_engine)
