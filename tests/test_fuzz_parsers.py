"""Property tests (hypothesis) over every parser of outside input: deployment configs, bundle
manifests, CSV manifests and image headers.

The property is the same for all: whatever the input, the parser either succeeds or raises the
documented :class:`~lfr_eval.errors.LfrError` subclass — never another exception (a traceback
for the user) — and a refused bundle leaves the watchlist file byte-identical. Memory bounds for
the bomb cases are measured in ``test_limits.py``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lfr_eval.datasets import read_manifest  # noqa: E402
from lfr_eval.deployment import DeploymentConfig, make_config, parse_config  # noqa: E402
from lfr_eval.errors import ConfigError, ImageError, ManifestError, WatchlistError  # noqa: E402
from lfr_eval.faces import EngineId, ModelFile  # noqa: E402
from lfr_eval.faces._image import decode_image  # noqa: E402
from lfr_eval.watchlist import SubjectInfo, Watchlist, import_bundle  # noqa: E402

ENGINE = EngineId(
    backend="test",
    embedding_dim=8,
    models=(ModelFile(role="recognizer", name="r.onnx", sha256="a" * 64),),
)
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)


def _paths(document: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            found += _paths(value, (*prefix, i))
    return found


def _replace(document: object, path: tuple, value: object) -> object:
    if not path:
        return value
    document = copy.deepcopy(document)
    target = document
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    return document


@pytest.fixture(scope="module")
def watchlist_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-wl")
    wl = Watchlist(folder / "wl.sqlite")
    rng = np.random.default_rng(0)
    for i in range(2):
        wl.add_subject(SubjectInfo(f"case-{i}", reason="fuzz"))
        v = rng.standard_normal(8).astype(np.float32)
        wl.add_template(f"case-{i}", v / np.linalg.norm(v), ENGINE)
    return wl.path


@pytest.fixture(scope="module")
def config_document(watchlist_file: Path) -> dict:
    config = make_config(threshold=0.6, engine=ENGINE, watchlist=Watchlist(watchlist_file))
    return config.to_dict()


# ---------------------------------------------------------------------- deployment configs


@FUZZ
@given(value=json_values)
def test_any_json_document_is_a_config_or_a_config_error(value: object) -> None:
    with contextlib.suppress(ConfigError):  # refused with this error: fine
        parse_config(json.dumps(value), source="fuzz.json")


@FUZZ
@given(data=st.data(), value=json_values)
def test_a_config_with_any_field_replaced_parses_or_is_refused(
    config_document: dict, data: st.DataObject, value: object
) -> None:
    path = data.draw(st.sampled_from(_paths(config_document)))
    mutated = _replace(config_document, path, value)
    try:
        config = parse_config(json.dumps(mutated), source="fuzz.json")
    except ConfigError:
        return
    assert isinstance(config, DeploymentConfig)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_any_bytes_are_a_config_or_a_config_error(raw: bytes) -> None:
    with contextlib.suppress(ConfigError):  # refused with this error: fine
        parse_config(raw, source="fuzz.bin")


# ---------------------------------------------------------------------- bundle manifests


@pytest.fixture(scope="module")
def bundle_members(watchlist_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("fuzz-bundle") / "bundle"
    Watchlist(watchlist_file).export_bundle(folder)
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _import_mutated(
    bundle_members: dict, tmp_path_factory: pytest.TempPathFactory, path: tuple, value: object
) -> None:
    """Import the bundle with one manifest field replaced: refused, or the store unchanged."""
    manifest = json.loads(bundle_members["manifest.json"])
    mutated = _replace(manifest, path, value)
    folder = tmp_path_factory.mktemp("case")
    bundle = folder / "bundle"
    bundle.mkdir()
    for name, content in bundle_members.items():
        (bundle / name).write_bytes(content)
    (bundle / "manifest.json").write_text(json.dumps(mutated))
    target = Watchlist(folder / "target.sqlite")
    target.add_subject(SubjectInfo("case-0"))  # so a valid import would clash, not change it
    before = hashlib.sha256(target.path.read_bytes()).hexdigest()
    with contextlib.suppress(WatchlistError):  # refused with this error: fine
        import_bundle(target, bundle, allow_unsigned=True)
    assert hashlib.sha256(target.path.read_bytes()).hexdigest() == before


@FUZZ
@given(data=st.data(), value=json_values)
def test_a_manifest_with_any_field_replaced_is_refused_and_the_store_unchanged(
    bundle_members: dict, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, value
) -> None:
    manifest = json.loads(bundle_members["manifest.json"])
    path = data.draw(st.sampled_from(_paths(manifest)))
    _import_mutated(bundle_members, tmp_path_factory, path, value)


def test_a_manifest_whose_engine_lists_no_models_is_refused(
    bundle_members: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # found by the fuzz test above: an engine without a recognizer raised a bare ValueError
    _import_mutated(bundle_members, tmp_path_factory, ("engines", 0, "models"), [])


@FUZZ
@given(raw=st.binary(max_size=600))
def test_any_bytes_as_a_bundle_zip_are_refused_cleanly(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    folder = tmp_path_factory.mktemp("zip")
    (folder / "b.zip").write_bytes(b"PK\x03\x04" + raw)
    target = Watchlist(folder / "t.sqlite")
    before = hashlib.sha256(target.path.read_bytes()).hexdigest()
    with pytest.raises(WatchlistError):
        import_bundle(target, folder / "b.zip", allow_unsigned=True)
    assert hashlib.sha256(target.path.read_bytes()).hexdigest() == before


# ---------------------------------------------------------------------- CSV manifests

csv_cells = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@FUZZ
@given(
    header=st.lists(st.sampled_from(["path", "subject_id", "group", "", "x,y", '"']), max_size=4),
    rows=st.lists(st.lists(csv_cells, max_size=4), max_size=6),
)
def test_any_csv_is_a_manifest_or_a_manifest_error(
    tmp_path_factory: pytest.TempPathFactory, header: list[str], rows: list[list[str]]
) -> None:
    path = tmp_path_factory.mktemp("csv") / "m.csv"
    lines = [",".join(header)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines), encoding="utf-8")
    with contextlib.suppress(ManifestError):  # refused with this error: fine
        read_manifest(path, check_files=False)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_bytes_as_a_csv_are_a_manifest_or_a_manifest_error(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    path = tmp_path_factory.mktemp("csvb") / "m.csv"
    path.write_bytes(raw)
    with contextlib.suppress(ManifestError):  # refused with this error: fine
        read_manifest(path, check_files=False)


# ---------------------------------------------------------------------- image headers


def _encoded(fmt: str, size: tuple[int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 80, 40)).save(buffer, fmt)
    return buffer.getvalue()


SAMPLES = {fmt: _encoded(fmt, (64, 48)) for fmt in ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")}


@FUZZ
@given(
    fmt=st.sampled_from(sorted(SAMPLES)),
    cut=st.integers(min_value=0, max_value=200),
    flips=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
)
def test_damaged_image_headers_decode_or_raise_image_error(
    fmt: str, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(SAMPLES[fmt])
    for at, value in flips:
        if at < len(data):
            data[at] = value
    data = data[: max(len(data) - cut, 0)]
    try:
        image = decode_image(bytes(data), f"fuzz.{fmt.lower()}")
    except ImageError:
        return
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.shape[0] * image.shape[1] <= 50_000_000


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_bytes_decode_or_raise_image_error(raw: bytes) -> None:
    with contextlib.suppress(ImageError):  # refused with this error: fine
        decode_image(raw, "fuzz.bin")
