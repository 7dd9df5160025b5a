"""Signed deployment configs and watchlist bundles (Ed25519), keys and trust, export overwrite.

Real keys (``cryptography``), real configs made by :func:`make_config` from a real watchlist,
real bundles. Attacks are the ones a content hash alone cannot stop: edit a field and recompute
the hash; re-sign with a key of one's own; replay a bundle signature; use a revoked key.
"""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lfr_eval.deployment import (
    DeploymentConfig,
    _canonical_sha256,
    check_signature,
    export_config,
    load_config,
    make_config,
    sign_config,
)
from lfr_eval.errors import ConfigError, SignatureError, WatchlistError
from lfr_eval.faces import EngineId, ModelFile
from lfr_eval.signing import PURPOSE_BUNDLE, KeyRing, PublicKey
from lfr_eval.watchlist import SubjectInfo, Watchlist, read_bundle

ENGINE = EngineId(
    backend="test",
    embedding_dim=8,
    models=(ModelFile(role="recognizer", name="r.onnx", sha256="a" * 64),),
)


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(8).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture()
def watchlist(tmp_path: Path) -> Watchlist:
    wl = Watchlist(tmp_path / "wl.sqlite")
    rng = np.random.default_rng(0)
    for i in range(3):
        wl.add_subject(SubjectInfo(f"case-{i}", reason="test"))
        wl.add_template(f"case-{i}", _unit(rng), ENGINE)
    return wl


@pytest.fixture()
def ring(tmp_path: Path) -> KeyRing:
    ring = KeyRing(tmp_path / "keys")
    ring.generate("Evaluation team")
    return ring


@pytest.fixture()
def other_ring(tmp_path: Path) -> KeyRing:
    other = KeyRing(tmp_path / "attacker-keys")
    other.generate("Evaluation team")  # same name, different key
    return other


def _config(watchlist: Watchlist) -> DeploymentConfig:
    return make_config(threshold=0.62, engine=ENGINE, watchlist=watchlist, approved_by="Insp. A")


def _rehash(document: dict) -> dict:
    body = {k: v for k, v in document.items() if k not in ("config_sha256", "signature")}
    return {**body, "config_sha256": _canonical_sha256(body), "signature": document["signature"]}


# ---------------------------------------------------------------------- keys


def test_generated_key_is_private_and_trusted(ring: KeyRing) -> None:
    assert stat.S_IMODE(ring.private_key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ring.folder.stat().st_mode) == 0o700
    key = ring.signing_key()
    [trusted] = ring.trusted()
    assert trusted.key_id == key.public.key_id and trusted.revoked is None
    with pytest.raises(SignatureError, match="already exists"):
        ring.generate("Again")


def test_keys_live_outside_the_workspace_by_default(private_config: Path) -> None:
    from lfr_eval.workspace import default_workspace

    folder = KeyRing().folder
    assert folder == private_config
    assert not folder.resolve().is_relative_to(default_workspace().resolve())


def test_a_readable_private_key_is_refused(ring: KeyRing) -> None:
    ring.private_key_path.chmod(0o644)
    with pytest.raises(SignatureError, match="can be read by other users"):
        ring.signing_key()


# ---------------------------------------------------------------------- configs


def test_signed_config_verifies_and_names_the_signer(
    watchlist: Watchlist, ring: KeyRing, tmp_path: Path
) -> None:
    path = export_config(sign_config(_config(watchlist), ring.signing_key()), tmp_path / "c.json")
    check = check_signature(load_config(path), keyring=ring)
    assert check.signed and check.signer == "Evaluation team"


def test_tampered_and_rehashed_config_is_refused(
    watchlist: Watchlist, ring: KeyRing, tmp_path: Path
) -> None:
    path = export_config(sign_config(_config(watchlist), ring.signing_key()), tmp_path / "c.json")
    for field, value in (
        ("threshold", 0.5),
        ("approved_by", "Chief Constable"),
        ("created", "2020-01-01T00:00:00+00:00"),
        ("notes", "changed"),
    ):
        document = json.loads(path.read_text())
        document[field] = value
        if field == "threshold":
            document["retention"]["alert_capture_hours"] = 8760
        forged = tmp_path / f"forged-{field}.json"
        forged.write_text(json.dumps(_rehash(document)))
        config = load_config(forged)  # self-consistent: the hash alone cannot tell
        with pytest.raises(ConfigError, match="invalid signature"):
            check_signature(config, keyring=ring)


def test_config_resigned_with_an_untrusted_key_is_refused(
    watchlist: Watchlist, ring: KeyRing, other_ring: KeyRing, tmp_path: Path
) -> None:
    document = sign_config(_config(watchlist), ring.signing_key()).to_dict()
    document["threshold"] = 0.5
    body = {k: v for k, v in document.items() if k not in ("config_sha256", "signature")}
    forged = DeploymentConfig.from_dict({**body, "config_sha256": _canonical_sha256(body)})
    resigned = sign_config(forged, other_ring.signing_key())
    path = export_config(resigned, tmp_path / "resigned.json")
    with pytest.raises(ConfigError, match="not in your trusted keys"):
        check_signature(load_config(path), keyring=ring)


def test_unsigned_config_needs_allow_unsigned(
    watchlist: Watchlist, ring: KeyRing, tmp_path: Path
) -> None:
    path = export_config(_config(watchlist), tmp_path / "unsigned.json")
    with pytest.raises(ConfigError, match="not signed"):
        check_signature(load_config(path), keyring=ring)
    assert not check_signature(load_config(path), keyring=ring, allow_unsigned=True).signed


def test_revoked_key_is_refused(watchlist: Watchlist, ring: KeyRing, tmp_path: Path) -> None:
    signed = sign_config(_config(watchlist), ring.signing_key())
    ring.revoke(signed.signature.key_id[:10])
    with pytest.raises(ConfigError, match="revoked"):
        check_signature(signed, keyring=ring)
    with pytest.raises(SignatureError, match="stays revoked"):
        ring.trust(ring.signing_key().public)


def test_trusting_another_teams_key_accepts_their_configs(
    watchlist: Watchlist, ring: KeyRing, other_ring: KeyRing
) -> None:
    theirs = sign_config(_config(watchlist), other_ring.signing_key())
    line = other_ring.public_key_path.read_text()
    ring.trust(PublicKey.from_line(line), replace_existing=False)
    assert check_signature(theirs, keyring=ring).signed


def test_cli_verify_refuses_forged_and_unsigned_configs(
    watchlist: Watchlist, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli_support import run as run_cli

    def run(*args: object) -> tuple[int, str]:
        code, out, err = run_cli(capsys, *args)
        return code, out + err

    keys = ["--keys-dir", tmp_path / "k"]
    assert run("keys", "generate", "--name", "Team A", *keys)[0] == 0
    ring = KeyRing(tmp_path / "k")
    good = export_config(sign_config(_config(watchlist), ring.signing_key()), tmp_path / "g.json")
    document = json.loads(good.read_text())
    document["approved_by"] = "someone else"
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(_rehash(document)))
    code, out = run("config", "verify", forged, *keys, "--watchlist", watchlist.path)
    assert code == 9 and "invalid signature" in out and "Traceback" not in out
    unsigned = export_config(_config(watchlist), tmp_path / "u.json")
    code, out = run("config", "verify", unsigned, *keys, "--watchlist", watchlist.path)
    assert code == 9 and "not signed" in out
    code, out = run("keys", "list", *keys)
    assert code == 0 and "Team A" in out and "this installation" in out


# ---------------------------------------------------------------------- bundles


@pytest.mark.parametrize("name", ["bundle", "bundle.zip"])
def test_signed_bundle_imports_and_unsigned_needs_allow(
    watchlist: Watchlist, ring: KeyRing, tmp_path: Path, name: str
) -> None:
    signed = tmp_path / f"signed-{name}"
    watchlist.export_bundle(signed, signing_key=ring.signing_key())
    bundle = read_bundle(signed, keyring=ring)
    assert bundle.signature.signed and bundle.signature.signer == "Evaluation team"
    unsigned = tmp_path / f"unsigned-{name}"
    watchlist.export_bundle(unsigned)
    with pytest.raises(WatchlistError, match="not signed"):
        read_bundle(unsigned, keyring=ring)
    assert not read_bundle(unsigned, keyring=ring, allow_unsigned=True).signature.signed


def test_bundle_edited_and_rehashed_or_resigned_is_refused(
    watchlist: Watchlist, ring: KeyRing, other_ring: KeyRing, tmp_path: Path
) -> None:
    original = tmp_path / "b"
    watchlist.export_bundle(original, signing_key=ring.signing_key())
    manifest = json.loads((original / "manifest.json").read_text())
    manifest["subjects"][0]["reason"] = "changed"
    # the signature covers the manifest's bytes, and the manifest every other file's sha256
    (original / "manifest.json").write_text(json.dumps(manifest))
    target = Watchlist(tmp_path / "target.sqlite")
    before = target.content_hash()
    with pytest.raises(WatchlistError, match="invalid signature"):
        target.import_bundle(original, keyring=ring)
    # re-signed by a key of one's own: untrusted
    digest = hashlib.sha256((original / "manifest.json").read_bytes()).hexdigest()
    attacker = other_ring.signing_key().sign(PURPOSE_BUNDLE, digest)
    (original / "signature.json").write_text(json.dumps(attacker.to_dict()))
    with pytest.raises(WatchlistError, match="not in your trusted keys"):
        target.import_bundle(original, keyring=ring)
    assert target.content_hash() == before and len(target) == 0


def test_a_config_signature_cannot_be_replayed_on_a_bundle(
    watchlist: Watchlist, ring: KeyRing, tmp_path: Path
) -> None:
    bundle = tmp_path / "b"
    watchlist.export_bundle(bundle)
    digest = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    from lfr_eval.signing import PURPOSE_CONFIG

    wrong = ring.signing_key().sign(PURPOSE_CONFIG, digest)
    (bundle / "signature.json").write_text(json.dumps(wrong.to_dict()))
    with pytest.raises(WatchlistError, match="invalid signature"):
        read_bundle(bundle, keyring=ring)


# ---------------------------------------------------------------------- export --overwrite


def test_overwrite_replaces_only_a_previous_bundle(watchlist: Watchlist, tmp_path: Path) -> None:
    previous = tmp_path / "previous"
    watchlist.export_bundle(previous)
    watchlist.export_bundle(previous, overwrite=True)  # a bundle: replaced
    zipped = tmp_path / "previous.zip"
    watchlist.export_bundle(zipped)
    watchlist.export_bundle(zipped, overwrite=True)

    precious = tmp_path / "home"
    (precious / "documents").mkdir(parents=True)
    (precious / "documents" / "thesis.tex").write_text("years of work")
    (precious / "manifest.json").write_text('{"format": "lfr-watchlist-bundle"}')
    with pytest.raises(WatchlistError, match="not a watchlist bundle"):
        watchlist.export_bundle(precious, overwrite=True)
    assert (precious / "documents" / "thesis.tex").read_text() == "years of work"

    other_zip = tmp_path / "photos.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("holiday.jpg", b"not really")
    with pytest.raises(WatchlistError, match="not a watchlist bundle"):
        watchlist.export_bundle(other_zip, overwrite=True)
    assert zipfile.ZipFile(other_zip).namelist() == ["holiday.jpg"]

    plain = tmp_path / "notes.txt"
    plain.write_text("keep me")
    with pytest.raises(WatchlistError, match="not a watchlist bundle"):
        watchlist.export_bundle(plain, overwrite=True)
    assert plain.read_text() == "keep me"
