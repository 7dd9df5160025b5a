"""``lfr-eval models install|list``: InsightFace packs from a zip, a folder or over loopback."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from onnx_models import build_arcface_like, build_scrfd_like, paint_face_cell

from lfr_eval.cli import main
from lfr_eval.errors import ModelError
from lfr_eval.models import (
    LICENCE_INSIGHTFACE,
    MANIFEST,
    install_pack,
    list_packs,
)


@pytest.fixture(scope="module")
def pack_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like insightface's buffalo_l, with synthetic ONNX models."""
    folder = tmp_path_factory.mktemp("src") / "buffalo_t"
    folder.mkdir()
    build_scrfd_like(folder / "det_10g.onnx")
    build_arcface_like(folder / "w600k_r50.onnx")
    (folder / "README.txt").write_text("test pack\n")
    return folder


def _zip(folder: Path, archive: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, prefix + path.name)
    return archive


@pytest.fixture(scope="module")
def pack_zip(pack_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _zip(pack_source, tmp_path_factory.mktemp("zips") / "buffalo_t.zip")


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LFR_MODELS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no real ~/.insightface in listings
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(workspace: Path) -> list[str]:
    models = workspace / "models"
    return sorted(p.name for p in models.iterdir()) if models.is_dir() else []


@pytest.fixture()
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 (free port) serving a folder; yields (base URL, folder)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_zip_installs_where_the_engine_looks(pack_zip: Path, workspace: Path) -> None:
    pack = install_pack(pack_zip, workspace=workspace)
    assert pack.name == "buffalo_t" and pack.path == workspace / "models" / "buffalo_t"
    assert [(f.role, f.name) for f in pack.files] == [
        ("detector", "det_10g.onnx"),
        ("recognizer", "w600k_r50.onnx"),
    ]
    assert pack.files[0].sha256 == _sha(pack.path / "det_10g.onnx")
    assert pack.archive_sha256 == _sha(pack_zip)
    assert pack.licence == LICENCE_INSIGHTFACE and "non-commercial" in pack.licence
    record = json.loads((pack.path / MANIFEST).read_text())
    assert record["archive_sha256"] == pack.archive_sha256
    assert _leftovers(workspace) == ["buffalo_t"]  # no staging folders left


def test_installed_pack_runs_by_name(pack_zip: Path, workspace: Path) -> None:
    pytest.importorskip("insightface")
    from lfr_eval.faces import load_engine

    install_pack(pack_zip, workspace=workspace)
    engine = load_engine("insightface", model_pack="buffalo_t", workspace=workspace)
    image = np.zeros((480, 640, 3), np.uint8)
    paint_face_cell(image, col=8, row=6)
    assert len(engine.analyze(image)) == 1


def test_folder_and_nested_zip_install(pack_source: Path, workspace: Path, tmp_path: Path) -> None:
    assert install_pack(pack_source, workspace=workspace).name == "buffalo_t"
    nested = _zip(pack_source, tmp_path / "antelope_t.zip", prefix="antelope_t/")
    pack = install_pack(nested, workspace=workspace)
    assert (pack.path / "det_10g.onnx").is_file() and pack.name == "antelope_t"


def test_existing_pack_needs_force(pack_zip: Path, workspace: Path) -> None:
    first = install_pack(pack_zip, workspace=workspace)
    with pytest.raises(ModelError, match="already installed"):
        install_pack(pack_zip, workspace=workspace)
    again = install_pack(pack_zip, workspace=workspace, force=True)
    assert again.path == first.path and _leftovers(workspace) == ["buffalo_t"]


def test_wrong_local_hash_installs_nothing(pack_zip: Path, workspace: Path) -> None:
    with pytest.raises(ModelError, match="sha256 mismatch"):
        install_pack(pack_zip, sha256="0" * 64, workspace=workspace)
    assert _leftovers(workspace) == []


def test_incomplete_pack_refused(pack_source: Path, workspace: Path, tmp_path: Path) -> None:
    only_detector = tmp_path / "half"
    only_detector.mkdir()
    (only_detector / "det_10g.onnx").write_bytes((pack_source / "det_10g.onnx").read_bytes())
    with pytest.raises(ModelError, match="no recognizer"):
        install_pack(only_detector, workspace=workspace)
    assert _leftovers(workspace) == []


@pytest.mark.parametrize("member", ["../evil.onnx", "/abs/evil.onnx"])
def test_archive_escaping_the_pack_is_refused(member: str, workspace: Path, tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, b"x")
    with pytest.raises(ModelError, match="leaves the pack folder"):
        install_pack(archive, workspace=workspace)
    assert not (tmp_path / "evil.onnx").exists() and _leftovers(workspace) == []


def test_not_a_zip_is_refused(workspace: Path, tmp_path: Path) -> None:
    fake = tmp_path / "pack.zip"
    fake.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable zip"):
        install_pack(fake, workspace=workspace)
    with pytest.raises(ModelError, match="not found"):
        install_pack(tmp_path / "missing.zip", workspace=workspace)


def test_download_over_loopback_checks_the_hash(
    pack_zip: Path, workspace: Path, http_root: tuple[str, Path]
) -> None:
    base, served = http_root
    (served / "buffalo_t.zip").write_bytes(pack_zip.read_bytes())
    url = f"{base}/buffalo_t.zip"
    seen: list[tuple[int, int | None]] = []
    with pytest.raises(ModelError, match="sha256 mismatch"):
        install_pack("buffalo_t", url=url, sha256="f" * 64, workspace=workspace)
    assert _leftovers(workspace) == []
    with pytest.raises(ModelError, match="needs its sha256"):
        install_pack("buffalo_t", url=url, workspace=workspace)
    pack = install_pack(
        "buffalo_t",
        url=url,
        sha256=_sha(pack_zip).upper(),
        workspace=workspace,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert pack.source == url and pack.archive_sha256 == _sha(pack_zip)
    assert seen and seen[-1] == (pack_zip.stat().st_size, pack_zip.stat().st_size)
    assert _leftovers(workspace) == ["buffalo_t"]


def test_download_failure_is_a_model_error(workspace: Path, http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    with pytest.raises(ModelError, match="could not download"):
        install_pack("gone", url=f"{base}/gone.zip", sha256="0" * 64, workspace=workspace)
    with pytest.raises(ModelError, match="only http"):
        install_pack("x", url="file:///etc/passwd", sha256="0" * 64, workspace=workspace)
    assert _leftovers(workspace) == []


def test_list_shows_hashes_licence_and_tampering(pack_zip: Path, workspace: Path) -> None:
    install_pack(pack_zip, workspace=workspace)
    (packs,) = list_packs(workspace)
    assert packs.changed == () and packs.files[1].sha256 == _sha(packs.path / "w600k_r50.onnx")
    with open(packs.path / "det_10g.onnx", "ab") as handle:
        handle.write(b"\0")
    (tampered,) = list_packs(workspace)
    assert tampered.changed == ("det_10g.onnx",)


def test_cli_round_trip(
    pack_zip: Path,
    workspace: Path,
    http_root: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, served = http_root
    (served / "p.zip").write_bytes(pack_zip.read_bytes())

    def run(*argv: str) -> int:
        try:
            main(list(argv))
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    ws = ["--workspace", str(workspace)]
    bad = run("models", "install", "buffalo_t", "--url", f"{base}/p.zip", "--sha256", "1" * 64, *ws)
    assert bad == 5 and "sha256 mismatch" in capsys.readouterr().err
    good = run("models", "install", "buffalo_t", "--url", f"{base}/p.zip", "--sha256",
               _sha(pack_zip), *ws)  # fmt: skip
    out = capsys.readouterr().out
    assert good == 0 and "non-commercial research use only" in out
    assert run("models", "list", "--json", *ws) == 0
    listing = json.loads(capsys.readouterr().out)
    (pack,) = listing["packs"]
    assert pack["name"] == "buffalo_t" and os.path.isdir(pack["path"])
    assert {f["role"] for f in pack["files"]} == {"detector", "recognizer"}
    assert all(len(m["sha256"]) == 64 for m in listing["dlib"])
