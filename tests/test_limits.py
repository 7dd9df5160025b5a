"""Resource limits and clean failures: JSON bombs, zip bombs, image decompression bombs,
unwritable paths. Memory is measured (peak RSS of a fresh process) for the bomb cases.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lfr_eval.errors import ConfigError, ImageError, LfrError, WatchlistError
from lfr_eval.faces import EngineId, ModelFile
from lfr_eval.limits import load_json
from lfr_eval.watchlist import BundleLimits, SubjectInfo, Watchlist, read_bundle

REPO = Path(__file__).resolve().parents[1]
ENGINE = EngineId(
    backend="test",
    embedding_dim=8,
    models=(ModelFile(role="recognizer", name="r.onnx", sha256="a" * 64),),
)
#: Peak memory a refused bomb may add to the process, in MiB. Before the limits a 3 MB zip
#: allocated 4-5 GB and a 0.5 MB GIF 2-3 GB.
RSS_BUDGET_MIB = 120


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    from cli_support import run

    code, out, err = run(capsys, *args)
    return code, out + err


def _peak_rss_growth_mib(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter after the imports; its peak RSS growth in MiB."""
    script = (
        "import resource, sys, numpy, PIL.Image, cv2\n"
        "import lfr_eval.watchlist, lfr_eval.faces._image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "    print('NO ERROR')\n"
        "except lfr_eval.errors.LfrError as exc:\n"
        "    print('REFUSED', type(exc).__name__, exc)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print('GROWTH_KIB', after - before)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "LFR_CONFIG_DIR": "/nonexistent"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    growth = int(proc.stdout.rsplit("GROWTH_KIB", 1)[1].strip()) / 1024
    return growth, proc.stdout


# ---------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[" * 65 + "]" * 65, "nested 65 deep"),
        ('{"n": ' + "9" * 5000 + "}", "5,000 digits"),
        ('{"x": 1e999}', "out of range"),
        ('{"x": NaN}', "not a JSON number"),
        ("[1,", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_hostile_json_is_refused_with_the_callers_error(text: str | bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_json(text, source="test.json", error=ConfigError)


def test_cli_refuses_hostile_configs_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, text in {
        "deep": "[" * 100_000 + "]" * 100_000,
        "digits": '{"threshold": ' + "1" * 5000 + "}",
        "huge": " " * (2 << 20),
    }.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        code, out = _cli(capsys, "config", "verify", path)
        assert code == 9, (name, out)
        assert "Traceback" not in out and "refused" in out


def test_unwritable_path_is_exit_16_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wl = Watchlist(tmp_path / "wl.sqlite")
    wl.add_subject(SubjectInfo("case-1"))
    wl.add_template("case-1", np.eye(8, dtype=np.float32)[0], ENGINE)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, out = _cli(
        capsys, "watchlist", "export", blocker / "bundle", "--watchlist", wl.path, "--unsigned"
    )
    assert code == 16, out
    assert "Traceback" not in out and str(blocker) in out


# ---------------------------------------------------------------------- zip bombs


def _bundle_zip(tmp_path: Path) -> tuple[Path, dict]:
    wl = Watchlist(tmp_path / "src.sqlite")
    wl.add_subject(SubjectInfo("case-1"))
    wl.add_template("case-1", np.eye(8, dtype=np.float32)[0], ENGINE)
    path = tmp_path / "real.zip"
    wl.export_bundle(path)
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    return path, members


def test_zip_bomb_is_refused_before_reading_with_bounded_memory(tmp_path: Path) -> None:
    _, members = _bundle_zip(tmp_path)
    bomb = tmp_path / "bomb.zip"
    # 1 GiB of zeros deflates to about 1 MB: listed under a real member name.
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", members["manifest.json"])
        with archive.open("embeddings.npy", "w", force_zip64=True) as member:
            chunk = bytes(16 << 20)
            for _ in range(64):
                member.write(chunk)
    assert bomb.stat().st_size < 3 << 20
    growth, out = _peak_rss_growth_mib(
        f"lfr_eval.watchlist.read_bundle({str(bomb)!r}, allow_unsigned=True)"
    )
    assert "REFUSED WatchlistError" in out and "zip bomb" in out, out
    assert growth < RSS_BUDGET_MIB, f"peak RSS grew {growth:.0f} MiB"


def test_zip_limits_on_members_total_size_and_unlisted_members(tmp_path: Path) -> None:
    real, members = _bundle_zip(tmp_path)
    with pytest.raises(WatchlistError, match="members"):
        read_bundle(real, allow_unsigned=True, limits=BundleLimits(max_members=1))
    with pytest.raises(WatchlistError, match="add up to"):
        read_bundle(real, allow_unsigned=True, limits=BundleLimits(max_total_bytes=100))
    with pytest.raises(WatchlistError, match=r"manifest\.json is"):
        read_bundle(real, allow_unsigned=True, limits=BundleLimits(max_manifest_bytes=10))

    # An unlisted member is refused without being read: this one is corrupt (bad CRC), and
    # reading it would fail with "corrupt zip member" instead.
    sneaky = tmp_path / "sneaky.zip"
    with zipfile.ZipFile(sneaky, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("extra.bin", b"A" * 1000)
    raw = bytearray(sneaky.read_bytes())
    at = raw.rfind(b"A" * 1000)
    raw[at] = ord("B")
    sneaky.write_bytes(bytes(raw))
    with pytest.raises(WatchlistError, match="unlisted file"):
        read_bundle(sneaky, allow_unsigned=True)

    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as archive, pytest.warns(UserWarning):
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", members["manifest.json"])
    with pytest.raises(WatchlistError, match="appears twice"):
        read_bundle(twice, allow_unsigned=True)


def test_embeddings_larger_than_the_manifest_says_are_refused_unread(tmp_path: Path) -> None:
    _, members = _bundle_zip(tmp_path)
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w") as archive:
        archive.writestr("manifest.json", members["manifest.json"])
        archive.writestr("embeddings.npy", bytes(1 << 20))
    with pytest.raises(WatchlistError, match="larger than 1 template of dimension"):
        read_bundle(big, allow_unsigned=True)


# ---------------------------------------------------------------------- image bombs


def _bomb(fmt: str, size: tuple[int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    options = {"compression": "tiff_deflate"} if fmt == "TIFF" else {}
    Image.new("L", size).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "size"),
    [
        ("GIF", (8000, 8000)),
        ("TIFF", (8000, 8000)),
        ("WEBP", (8000, 8000)),
        ("PNG", (8000, 8000)),
        ("JPEG", (8000, 8000)),
    ],
)
def test_image_bombs_are_refused_from_the_header_with_bounded_memory(
    tmp_path: Path, fmt: str, size: tuple[int, int]
) -> None:
    data = _bomb(fmt, size)
    assert len(data) < 2 << 20  # small files that decode to 64 MP (192 MB as RGB)
    path = tmp_path / f"bomb.{fmt.lower()}"
    path.write_bytes(data)
    growth, out = _peak_rss_growth_mib(f"lfr_eval.faces._image.load_image({str(path)!r})")
    assert "REFUSED ImageError" in out and "too large" in out, out
    assert growth < RSS_BUDGET_MIB, f"{fmt}: peak RSS grew {growth:.0f} MiB"


def test_jpeg_with_fill_bytes_before_the_frame_header_is_still_sized() -> None:
    """Fill bytes (0xFF runs, legal between segments) threw the old hand-written parser off."""
    data = _bomb("JPEG", (8000, 8000))
    padded = data[:2] + b"\xff" * 7 + data[2:]
    with pytest.raises(ImageError, match="too large"):
        from lfr_eval.faces._image import decode_image

        decode_image(padded, "padded.jpg")


def test_unidentifiable_or_giant_headers_are_refused_before_opencv_sees_them() -> None:
    from lfr_eval.faces._image import decode_image

    with pytest.raises(ImageError, match="not a readable image"):
        decode_image(b"\x00\x01not an image at all" * 10, "garbage.bin")
    with pytest.raises(ImageError, match="too large"):
        decode_image(b"P6\n60000 60000\n255\n" + bytes(100), "bomb.ppm")


def test_lfr_error_subclasses_keep_their_exit_codes() -> None:
    from lfr_eval.errors import AccessError, SignatureError

    assert (SignatureError.exit_code, AccessError.exit_code, LfrError.exit_code) == (15, 18, 2)
    assert json.dumps  # the module stays importable without the app extras
