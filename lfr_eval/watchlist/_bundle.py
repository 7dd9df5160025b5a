"""Watchlist bundles: a portable, verifiable copy of one watchlist version.

A bundle is a directory, or a ``.zip`` file with the same members:

- ``manifest.json`` — format name and version, the engines (with model file hashes), subjects,
  templates (row in ``embeddings.npy``, subject, engine, image sha256, quality), the sha256 of
  every other member, and the watchlist's content hash;
- ``embeddings.npy`` — float32 ``(n_templates, d)`` matrix of unit-norm embeddings;
- ``images/<n><suffix>`` — source images, only when the export asked for them.

Import verifies everything before writing anything: the manifest's structure, every member's
sha256 (and that no unlisted member is present), the embeddings' shape, type and norms, that all
engines share one embedding space, that it matches the watchlist's, and that the content hash
recomputed from the data equals the manifest's (and the one the user expects, when given). Any
mismatch raises :class:`WatchlistError` naming what was wrong, and the watchlist is unchanged.

A content hash in the manifest only proves the bundle is self-consistent: someone who edits
the data can also rewrite the hash. Bundles are therefore signed: ``signature.json`` holds an
Ed25519 signature (:mod:`lfr_eval.signing`) of the manifest's sha256, and the manifest lists the
sha256 of every other member, so the signature covers everything. Import refuses an unsigned
bundle, or one signed with a key that is not trusted, unless unsigned bundles are explicitly
allowed. The hash you were given through another channel (``expected_content_hash``,
``lfr-eval watchlist import --expect-hash``) can be checked as well.

Reading is bounded (:class:`BundleLimits`): the zip's directory is checked (member count, total
and per-member uncompressed size, compression ratio) before any member is read, the manifest is
read first and parsed with JSON limits, and a member the manifest does not list is refused
before it is read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from zlib import error as zlib_error

import jsonschema
import numpy as np

from lfr_eval import __version__
from lfr_eval.errors import SignatureError, WatchlistError
from lfr_eval.faces._types import EngineId, FaceQuality
from lfr_eval.limits import load_json
from lfr_eval.signing import PURPOSE_BUNDLE, KeyRing, Signature, SignatureCheck, SigningKey
from lfr_eval.watchlist import _hashing
from lfr_eval.watchlist._store import Watchlist, check_embedding
from lfr_eval.watchlist._types import BundleInfo, SubjectInfo, from_iso, to_iso, utc_now
from lfr_eval.wording import plural

BUNDLE_FORMAT = "lfr-watchlist-bundle"
BUNDLE_VERSION = 1
MANIFEST_NAME = "manifest.json"
EMBEDDINGS_NAME = "embeddings.npy"
SIGNATURE_NAME = "signature.json"
#: Every member name a bundle can hold: the three above and ``images/<n><suffix>``.
_IMAGE_DIR = "images"


@dataclass(frozen=True)
class BundleLimits:
    """What a bundle may hold before anything is read into memory.

    Attributes
    ----------
    max_members : int
        Files in the bundle (manifest, embeddings, signature and one image per template).
    max_total_bytes : int
        Sum of the members' uncompressed sizes, in bytes.
    max_manifest_bytes : int
        Size of ``manifest.json``, in bytes (about 300 bytes per template).
    max_ratio : float
        Largest uncompressed/compressed size ratio of a zip member above 1 MiB. Our exports
        store images and embeddings uncompressed and deflate only the manifest (about 5:1);
        a zip bomb needs ratios in the hundreds.
    """

    max_members: int = 250_000
    max_total_bytes: int = 4 << 30
    max_manifest_bytes: int = 256 << 20
    max_ratio: float = 50.0


DEFAULT_LIMITS = BundleLimits()

_SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_TIME = {"type": "string", "minLength": 20}

#: JSON schema of ``manifest.json`` (format version 1).
MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "format",
        "format_version",
        "watchlist_id",
        "content_hash",
        "content_hash_version",
        "embedding_dim",
        "engines",
        "subjects",
        "templates",
        "files",
    ],
    "properties": {
        "format": {"const": BUNDLE_FORMAT},
        "format_version": {"const": BUNDLE_VERSION},
        "watchlist_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "content_hash": _SHA,
        "content_hash_version": {"const": _hashing.CONTENT_HASH_VERSION},
        "embedding_space": {"type": ["string", "null"]},
        "embedding_dim": {"type": ["integer", "null"], "minimum": 1},
        "engines": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["backend", "embedding_dim", "models"],
                "properties": {
                    "backend": {"type": "string"},
                    "embedding_dim": {"type": "integer", "minimum": 1},
                    "models": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["role", "name", "sha256"],
                            "properties": {
                                "role": {"type": "string"},
                                "name": {"type": "string"},
                                "sha256": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
        "subjects": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "display_name", "category", "reason", "created", "expires"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "display_name": {"type": "string", "minLength": 1},
                    "category": {"type": "string"},
                    "reason": {"type": "string"},
                    "created": _TIME,
                    "expires": {"anyOf": [_TIME, {"type": "null"}]},
                },
            },
        },
        "templates": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["row", "subject_id", "engine", "image_sha256", "created"],
                "properties": {
                    "row": {"type": "integer", "minimum": 0},
                    "subject_id": {"type": "string"},
                    "engine": {"type": "integer", "minimum": 0},
                    "image_sha256": {"anyOf": [_SHA, {"type": "null"}]},
                    "quality": {"type": ["object", "null"]},
                    "created": _TIME,
                    "image": {"type": ["string", "null"]},
                },
            },
        },
        "files": {"type": "object", "additionalProperties": _SHA},
    },
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------- export
MSG_NOT_A_BUNDLE = (
    "{path} exists and is not a watchlist bundle ({why}); overwriting only replaces a previous "
    "bundle. Choose another destination"
)


def _bundle_member_name(name: str) -> bool:
    """True for a member name our exports write."""
    if name in (MANIFEST_NAME, EMBEDDINGS_NAME, SIGNATURE_NAME):
        return True
    parts = PurePosixPath(name).parts
    return len(parts) == 2 and parts[0] == _IMAGE_DIR and parts[1][:1].isdigit()


def _folder_listing(dest: Path) -> tuple[list[str], bytes] | str:
    """A bundle folder's file names and manifest bytes, or why it cannot be one of ours."""
    names = []
    for file in dest.rglob("*"):
        if file.is_symlink():
            return f"it holds a symbolic link {file.relative_to(dest)}"
        if file.is_file():
            names.append(file.relative_to(dest).as_posix())
        elif file.is_dir() and file.relative_to(dest).as_posix() != _IMAGE_DIR:
            return f"it holds a folder {file.relative_to(dest)}"
    manifest_path = dest / MANIFEST_NAME
    if not manifest_path.is_file():
        return f"no {MANIFEST_NAME}"
    if manifest_path.stat().st_size > DEFAULT_LIMITS.max_manifest_bytes:
        return f"{MANIFEST_NAME} is too large"
    return names, manifest_path.read_bytes()


def _zip_listing(dest: Path) -> tuple[list[str], bytes] | str:
    """A bundle zip's file names and manifest bytes, or why it cannot be one of ours."""
    if not zipfile.is_zipfile(dest):
        return "a file that is not a zip"
    with zipfile.ZipFile(dest) as archive:
        names = [i.filename for i in archive.infolist() if not i.is_dir()]
        if MANIFEST_NAME not in names:
            return f"no {MANIFEST_NAME}"
        info = archive.getinfo(MANIFEST_NAME)
        if info.file_size > DEFAULT_LIMITS.max_manifest_bytes:
            return f"{MANIFEST_NAME} is too large"
        return names, archive.read(info)


def _why_not_a_bundle(dest: Path) -> str | None:
    """None when ``dest`` is a bundle this module wrote; else why it is not."""
    try:
        if dest.is_symlink():
            return "a symbolic link"
        if dest.is_dir():
            listing = _folder_listing(dest)
        elif dest.is_file():
            listing = _zip_listing(dest)
        else:
            return "not a file or folder"
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, zipfile.error) as exc:
        return f"unreadable: {exc}"
    if isinstance(listing, str):
        return listing
    names, manifest_bytes = listing
    strangers = sorted(n for n in names if not _bundle_member_name(n))
    if strangers:
        shown = ", ".join(strangers[:3]) + (" …" if len(strangers) > 3 else "")
        return f"it holds other files: {shown}"
    try:
        manifest = load_json(manifest_bytes, source=MANIFEST_NAME, error=WatchlistError)
    except WatchlistError as exc:
        return str(exc)
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        return f"its {MANIFEST_NAME} is not a bundle manifest"
    return None


def export_bundle(
    watchlist: Watchlist,
    destination: str | os.PathLike[str],
    *,
    include_images: bool = False,
    overwrite: bool = False,
    signing_key: SigningKey | None = None,
) -> BundleInfo:
    """Write the watchlist (all subjects, expired ones included) as a bundle.

    Parameters
    ----------
    watchlist : Watchlist
    destination : path-like
        A ``.zip`` path writes a zip file; anything else a directory.
    include_images : bool
        Include the source images the watchlist kept (default: embeddings only). Images are never
        exported unless asked for, because they are biometric data beyond what search needs.
    overwrite : bool
        Replace an existing destination, *if it is a previous bundle* (a directory or zip holding
        only bundle files and a bundle manifest). Anything else is never deleted.
    signing_key : SigningKey, optional
        Sign the bundle (``signature.json``); see :mod:`lfr_eval.signing`. Unsigned bundles are
        refused on import unless explicitly allowed.

    Returns
    -------
    BundleInfo

    Raises
    ------
    WatchlistError
        The destination exists and ``overwrite`` is False, or it is not a previous bundle.
    """
    dest = Path(destination).expanduser()
    if dest.exists() or dest.is_symlink():
        if not overwrite:
            raise WatchlistError(f"{dest} already exists; choose another path or allow overwriting")
        why = _why_not_a_bundle(dest)
        if why is not None:
            raise WatchlistError(MSG_NOT_A_BUNDLE.format(path=dest, why=why))
    members, info = _collect(watchlist, include_images, str(dest))
    if signing_key is not None:
        signature = signing_key.sign(PURPOSE_BUNDLE, _sha256(members[MANIFEST_NAME]))
        members[SIGNATURE_NAME] = (json.dumps(signature.to_dict(), indent=1) + "\n").encode()
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the destination and move into place, so a failed export leaves no partial
    # bundle that could later be mistaken for a complete one.
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        if dest.suffix.lower() == ".zip":
            staged = staging / dest.name
            with zipfile.ZipFile(staged, "w") as archive:
                for name, data in members.items():
                    method = zipfile.ZIP_DEFLATED if name == MANIFEST_NAME else zipfile.ZIP_STORED
                    archive.writestr(name, data, compress_type=method)
            if dest.exists() and dest.is_dir():
                shutil.rmtree(dest)
            os.replace(staged, dest)
        else:
            staged = staging / "bundle"
            for name, data in members.items():
                target = staged / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            if dest.exists():
                shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
            os.replace(staged, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with watchlist._write() as tx:
        tx.log(
            "export_bundle",
            path=str(dest.resolve()),
            include_images=include_images,
            bundle_content_hash=info.content_hash,
            subjects=info.n_subjects,
            templates=info.n_templates,
            signed_by=None if signing_key is None else signing_key.public.key_id,
        )
    return info


def _collect(
    watchlist: Watchlist, include_images: bool, path: str
) -> tuple[dict[str, bytes], BundleInfo]:
    """Read one consistent snapshot of the store into bundle members."""
    with watchlist._read() as con:
        # decrypted and checked against the file's MAC: a tampered watchlist is not exported
        snapshot = watchlist._snapshot(con)
        subjects = [
            (s.subject_id, s.display_name, s.category, s.reason, s.created, s.expires)
            for s in sorted(snapshot.subjects, key=lambda s: s.subject_id)
        ]
        engine_rows = con.execute(
            "SELECT id, engine_json, recognizer_key, embedding_dim FROM engines "
            "WHERE id IN (SELECT DISTINCT engine FROM templates) ORDER BY id"
        ).fetchall()
        templates = []
        for t in snapshot.templates:
            image = watchlist._image_bytes(con, t.template_id) if include_images else None
            templates.append(
                (
                    t.template_id,
                    t.subject_id,
                    t.engine,
                    t.embedding,
                    t.image_sha256,
                    t.quality,
                    t.created,
                    None,
                    None if image is None else image[0],
                    None if image is None else image[1],
                )
            )
        content = snapshot.content_hash
        watchlist_id = con.execute("SELECT value FROM meta WHERE key = 'watchlist_id'").fetchone()[
            0
        ]
    engine_index = {row[0]: i for i, row in enumerate(engine_rows)}
    space = engine_rows[0][2] if engine_rows else None
    dim = int(engine_rows[0][3]) if engine_rows else None
    members: dict[str, bytes] = {}
    manifest_templates = []
    n_images = 0
    for row, (_, sid, engine, _blob, sha, quality, created, _, image_data, ext) in enumerate(
        templates
    ):
        entry: dict[str, Any] = {
            "row": row,
            "subject_id": sid,
            "engine": engine_index[engine],
            "image_sha256": sha,
            "quality": json.loads(quality) if quality else None,
            "created": created,
            "image": None,
        }
        if image_data is not None:
            name = f"images/{row}{ext or ''}"
            members[name] = bytes(image_data)
            entry["image"] = name
            n_images += 1
        manifest_templates.append(entry)
    if templates:
        matrix = np.frombuffer(b"".join(t[3] for t in templates), dtype="<f4").reshape(
            len(templates), -1
        )
    else:
        matrix = np.empty((0, dim or 0), dtype="<f4")
    buffer = io.BytesIO()
    np.save(buffer, matrix, allow_pickle=False)
    members[EMBEDDINGS_NAME] = buffer.getvalue()
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "watchlist_id": watchlist_id,
        "created": to_iso(utc_now()),
        "created_by": f"lfr-eval {__version__}",
        "content_hash": content,
        "content_hash_version": _hashing.CONTENT_HASH_VERSION,
        "embedding_space": space,
        "embedding_dim": dim,
        "engines": [json.loads(r[1]) for r in engine_rows],
        "subjects": [
            {
                "id": s[0],
                "display_name": s[1],
                "category": s[2],
                "reason": s[3],
                "created": s[4],
                "expires": s[5],
            }
            for s in subjects
        ],
        "templates": manifest_templates,
        "files": {name: _sha256(data) for name, data in sorted(members.items())},
    }
    members[MANIFEST_NAME] = json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")
    info = BundleInfo(path, content, space, len(subjects), len(templates), n_images)
    return members, info


# ---------------------------------------------------------------------- reading and verifying
@dataclass(frozen=True, eq=False)
class Bundle:
    """A bundle read into memory and fully verified (see :func:`read_bundle`)."""

    path: str
    manifest: dict[str, Any]
    engines: tuple[EngineId, ...]
    embeddings: np.ndarray
    images: dict[str, bytes]
    signature: SignatureCheck = SignatureCheck(signed=False)

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])

    @property
    def embedding_space(self) -> str | None:
        return self.manifest.get("embedding_space")

    def info(self) -> BundleInfo:
        return BundleInfo(
            self.path,
            self.content_hash,
            self.embedding_space,
            len(self.manifest["subjects"]),
            len(self.manifest["templates"]),
            len(self.images),
        )


def _refuse(path: str, what: str) -> WatchlistError:
    return WatchlistError(f"bundle {path} refused: {what}; the watchlist was not changed")


class _Members:
    """The members of a bundle directory or zip, listed (with sizes) before any is read."""

    def __init__(self, path: Path, limits: BundleLimits) -> None:
        self.path, self.limits, self.label = path, limits, str(path)
        self._archive: zipfile.ZipFile | None = None
        self.sizes: dict[str, int] = {}
        if path.is_dir():
            self._list_directory()
        elif path.is_file():
            self._list_zip()
        else:
            raise WatchlistError(f"bundle not found: {path}")

    def _list_directory(self) -> None:
        for count, file in enumerate(self.path.rglob("*"), 1):
            if count > self.limits.max_members + 1:  # +1: the images/ folder itself
                limit = self.limits.max_members
                raise _refuse(self.label, f"it holds more than {limit:,} files")  # plural: >= 2
            if file.is_symlink():
                raise _refuse(
                    self.label, f"it contains a symbolic link ({file.relative_to(self.path)})"
                )
            if file.is_file():
                self.sizes[file.relative_to(self.path).as_posix()] = file.stat().st_size
        self._check_total()

    def _list_zip(self) -> None:
        try:
            self._archive = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
            raise _refuse(
                self.label, f"not a bundle directory or a readable zip file ({exc})"
            ) from None
        infos = self._archive.infolist()
        if len(infos) > self.limits.max_members:
            raise _refuse(
                self.label, f"it holds {len(infos):,} members (limit {self.limits.max_members:,})"
            )
        for item in infos:
            if item.is_dir():
                continue
            name = PurePosixPath(item.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in item.filename:
                raise _refuse(self.label, f"unsafe member name {item.filename!r}")
            key = str(name)
            if key in self.sizes:
                raise _refuse(self.label, f"member {key!r} appears twice")
            ratio = item.file_size / max(item.compress_size, 1)
            if item.file_size > (1 << 20) and ratio > self.limits.max_ratio:
                raise _refuse(
                    self.label,
                    f"member {key!r} would expand {ratio:,.0f} times "
                    f"(limit {self.limits.max_ratio:g}; a zip bomb?)",
                )
            self.sizes[key] = item.file_size
        self._check_total()

    def _check_total(self) -> None:
        total = sum(self.sizes.values())
        if total > self.limits.max_total_bytes:
            raise _refuse(
                self.label,
                f"its files add up to {total:,} bytes (limit {self.limits.max_total_bytes:,})",
            )

    def read(self, name: str) -> bytes:
        try:
            if self._archive is None:
                data = (self.path / name).read_bytes()
            else:
                data = self._archive.read(name)
        except zipfile.error as exc:  # e.g. CRC error on a corrupted member
            raise _refuse(self.label, f"corrupt zip member ({exc})") from None
        except (OSError, EOFError, zlib_error) as exc:
            raise _refuse(self.label, f"member {name} cannot be read ({exc})") from None
        # A zip member's declared size bounds what zipfile returns; check it anyway.
        if len(data) != self.sizes[name]:
            raise _refuse(self.label, f"member {name} is not the size its directory says")
        return data

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()


def _member_json(data: bytes, name: str, label: str, max_bytes: int) -> Any:
    try:
        return load_json(data, source=name, error=WatchlistError, max_bytes=max_bytes)
    except WatchlistError as exc:
        raise _refuse(label, str(exc)) from None


def read_bundle(
    source: str | os.PathLike[str],
    *,
    keyring: KeyRing | None = None,
    allow_unsigned: bool = False,
    limits: BundleLimits = DEFAULT_LIMITS,
) -> Bundle:
    """Read a bundle and verify it completely (limits, signature, hashes, structure, content).

    Parameters
    ----------
    source : path-like
        Bundle directory or ``.zip``.
    keyring : KeyRing, optional
        Trusted keys to check the signature against (default: this installation's).
    allow_unsigned : bool
        Accept a bundle without ``signature.json``. A bad signature, or one by an untrusted or
        revoked key, is refused regardless.
    limits : BundleLimits
        Bounds checked before reading (member count, sizes, compression ratio).

    Raises
    ------
    WatchlistError
        Missing, too large, unsigned, untrusted, malformed, tampered or inconsistent bundle; the
        message names what was wrong.
    """
    path = Path(source).expanduser()
    label = str(path)
    listing = _Members(path, limits)
    try:
        return _verify(listing, label, keyring, allow_unsigned, limits)
    finally:
        listing.close()


def _verify(
    listing: _Members,
    label: str,
    keyring: KeyRing | None,
    allow_unsigned: bool,
    limits: BundleLimits,
) -> Bundle:
    # Each stage refuses the whole bundle (WatchlistError) before the next reads anything more.
    manifest_bytes, manifest = _verified_manifest(listing, label, limits)
    _check_listing(listing, manifest, label)
    check = _checked_signature(listing, manifest_bytes, label, keyring, allow_unsigned)
    members = _verified_members(listing, manifest, label)
    embeddings, engines = _verified_embeddings(members, manifest, label)
    images = _verified_templates(manifest, members, engines, label)
    _check_content_hash(manifest, embeddings, engines, label)
    return Bundle(label, manifest, engines, embeddings, images, check)


def _verified_manifest(
    listing: _Members, label: str, limits: BundleLimits
) -> tuple[bytes, dict[str, Any]]:
    """The manifest's bytes and document, within the size limit and valid under the schema."""
    if MANIFEST_NAME not in listing.sizes:
        raise _refuse(label, f"no {MANIFEST_NAME}")
    if listing.sizes[MANIFEST_NAME] > limits.max_manifest_bytes:
        raise _refuse(
            label,
            f"{MANIFEST_NAME} is {listing.sizes[MANIFEST_NAME]:,} bytes "
            f"(limit {limits.max_manifest_bytes:,})",
        )
    manifest_bytes = listing.read(MANIFEST_NAME)
    manifest = _member_json(manifest_bytes, MANIFEST_NAME, label, limits.max_manifest_bytes)
    try:
        jsonschema.validate(manifest, MANIFEST_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "top level"
        raise _refuse(label, f"{MANIFEST_NAME} is malformed at {where}: {exc.message}") from None
    return manifest_bytes, manifest


def _check_listing(listing: _Members, manifest: dict[str, Any], label: str) -> None:
    """Refuse anything the manifest does not name, before reading it, and any name our exports
    never write."""
    listed = manifest["files"]
    unlisted = sorted(set(listing.sizes) - set(listed) - {MANIFEST_NAME, SIGNATURE_NAME})
    if unlisted:
        files = plural(len(unlisted), "file", number=False)
        raise _refuse(label, f"unlisted {files} {', '.join(unlisted[:5])}")
    for name in sorted(listed):
        if name in (MANIFEST_NAME, SIGNATURE_NAME) or not _bundle_member_name(name):
            raise _refuse(label, f"the manifest lists an unexpected file {name!r}")


def _checked_signature(
    listing: _Members,
    manifest_bytes: bytes,
    label: str,
    keyring: KeyRing | None,
    allow_unsigned: bool,
) -> SignatureCheck:
    """The signature over the manifest, checked against the trusted keys."""
    signature = None
    if SIGNATURE_NAME in listing.sizes:
        if listing.sizes[SIGNATURE_NAME] > 4096:
            raise _refuse(label, f"{SIGNATURE_NAME} is too large to be a signature")
        document = _member_json(listing.read(SIGNATURE_NAME), SIGNATURE_NAME, label, 4096)
        try:
            signature = Signature.from_dict(document, source=SIGNATURE_NAME)
        except SignatureError as exc:
            raise _refuse(label, str(exc)) from None
    try:
        return (keyring if keyring is not None else KeyRing()).check(
            signature,
            purpose=PURPOSE_BUNDLE,
            sha256=_sha256(manifest_bytes),
            what="the bundle",
            allow_unsigned=allow_unsigned,
        )
    except SignatureError as exc:
        raise WatchlistError(
            f"bundle {label} refused: {exc}; the watchlist was not changed"
        ) from None


def _verified_members(listing: _Members, manifest: dict[str, Any], label: str) -> dict[str, bytes]:
    """Every listed file, read once its size is plausible, with the sha256 the manifest gives."""
    listed = manifest["files"]
    if EMBEDDINGS_NAME not in listed:
        raise _refuse(label, f"no {EMBEDDINGS_NAME}")
    n_templates, dim = len(manifest["templates"]), manifest["embedding_dim"] or 0
    if listing.sizes.get(EMBEDDINGS_NAME, 0) > 4096 + 4 * n_templates * dim:
        raise _refuse(
            label,
            f"{EMBEDDINGS_NAME} is larger than {plural(n_templates, 'template')} of dimension "
            f"{dim}",
        )
    members: dict[str, bytes] = {}
    for name, expected in sorted(listed.items()):
        if name not in listing.sizes:
            raise _refuse(label, f"file {name} is missing")
        members[name] = listing.read(name)
        if _sha256(members[name]) != expected:
            raise _refuse(label, f"sha256 of {name} does not match the manifest (tampered?)")
    return members


def _verified_embeddings(
    members: dict[str, bytes], manifest: dict[str, Any], label: str
) -> tuple[np.ndarray, tuple[EngineId, ...]]:
    """The embeddings array and the engines, the array's shape matching the templates and the
    engines sharing one embedding space."""
    try:
        embeddings = np.load(io.BytesIO(members[EMBEDDINGS_NAME]), allow_pickle=False)
    except ValueError as exc:
        raise _refuse(label, f"{EMBEDDINGS_NAME} is not a numpy array file ({exc})") from exc
    templates = manifest["templates"]
    engines = tuple(EngineId.from_dict(e) for e in manifest["engines"])
    dim = manifest["embedding_dim"]
    if embeddings.dtype != np.dtype("<f4") or embeddings.ndim != 2:
        raise _refuse(label, f"{EMBEDDINGS_NAME} must be a 2-D little-endian float32 array")
    if embeddings.shape[0] != len(templates) or (templates and embeddings.shape[1] != dim):
        raise _refuse(
            label,
            f"{EMBEDDINGS_NAME} has shape {embeddings.shape}, the manifest lists "
            f"{plural(len(templates), 'template')} of dimension {dim}",
        )
    if any(not any(m.role == "recognizer" for m in e.models) for e in engines):
        raise _refuse(label, "an engine lists no recognizer model (its embedding space is unknown)")
    keys = {e.recognizer_key for e in engines}
    if len(keys) > 1:
        raise _refuse(label, f"templates from different embedding spaces ({sorted(keys)})")
    if templates and keys != {manifest.get("embedding_space")}:
        raise _refuse(label, "embedding_space does not match the engines' recognizer")
    if any(e.embedding_dim != dim for e in engines):
        raise _refuse(label, "an engine's embedding_dim differs from the bundle's")
    return embeddings, engines


def _verified_templates(
    manifest: dict[str, Any],
    members: dict[str, bytes],
    engines: tuple[EngineId, ...],
    label: str,
) -> dict[str, bytes]:
    """Check subjects and templates against each other; returns the templates' images."""
    subject_ids = [s["id"] for s in manifest["subjects"]]
    if len(set(subject_ids)) != len(subject_ids):
        raise _refuse(label, "a subject id appears twice")
    known = set(subject_ids)
    templates = manifest["templates"]
    rows = sorted(t["row"] for t in templates)
    if rows != list(range(len(templates))):
        raise _refuse(label, "template rows must number the embeddings 0..n-1 once each")
    images: dict[str, bytes] = {}
    for t in templates:
        if t["subject_id"] not in known:
            raise _refuse(label, f"a template belongs to unknown subject {t['subject_id']!r}")
        if t["engine"] >= len(engines):
            raise _refuse(label, f"template row {t['row']} names engine {t['engine']}, not listed")
        if t.get("image"):
            if t["image"] not in members:
                raise _refuse(label, f"image {t['image']} is missing")
            if _sha256(members[t["image"]]) != t["image_sha256"]:
                raise _refuse(label, f"image {t['image']} does not match its image_sha256")
            images[t["image"]] = members[t["image"]]
        if t.get("quality") is not None:
            try:
                FaceQuality(**t["quality"])
            except TypeError:
                raise _refuse(label, f"template row {t['row']} has a malformed quality") from None
    return images


def _check_content_hash(
    manifest: dict[str, Any],
    embeddings: np.ndarray,
    engines: tuple[EngineId, ...],
    label: str,
) -> None:
    """The content hash recomputed from the data itself (never taken from the manifest) must be
    the manifest's."""
    subjects, templates = manifest["subjects"], manifest["templates"]
    try:
        subject_digests = [
            _hashing.subject_digest(
                SubjectInfo(s["id"]).subject_id,
                s["display_name"],
                s["category"],
                s["reason"],
                to_iso(from_iso(s["expires"])) if s["expires"] else None,
            )
            for s in subjects
        ]
        for s in subjects:
            from_iso(s["created"])
        for t in templates:
            from_iso(t["created"])
    except (ValueError, WatchlistError) as exc:
        raise _refuse(label, f"a subject has an invalid id or timestamp ({exc})") from None
    template_digests = []
    for t in templates:
        vector = embeddings[t["row"]]
        engine = engines[t["engine"]]
        try:
            check_embedding(vector, engine)
        except WatchlistError as exc:
            raise _refuse(label, f"template row {t['row']}: {exc}") from None
        template_digests.append(
            _hashing.template_digest(
                t["subject_id"],
                engine.recognizer_key,
                t["image_sha256"],
                _hashing.embedding_bytes(vector),
            )
        )
    recomputed = _hashing.content_hash(subject_digests, template_digests)
    if recomputed != manifest["content_hash"]:
        raise _refuse(
            label,
            f"its content does not match its content hash (manifest says "
            f"{manifest['content_hash'][:16]}…, data gives {recomputed[:16]}…)",
        )


# ---------------------------------------------------------------------- import
def import_bundle(
    watchlist: Watchlist,
    source: str | os.PathLike[str],
    *,
    expected_content_hash: str | None = None,
    include_images: bool = True,
    keyring: KeyRing | None = None,
    allow_unsigned: bool = False,
    limits: BundleLimits = DEFAULT_LIMITS,
) -> BundleInfo:
    """Verify a bundle and add its subjects and templates to the watchlist, all or nothing.

    Parameters
    ----------
    watchlist : Watchlist
    source : path-like
        Bundle directory or ``.zip``.
    expected_content_hash : str, optional
        The content hash you were given for this watchlist version (through a channel other than
        the bundle itself). Refused if the bundle's differs.
    include_images : bool
        Store the bundle's images (if it has any) in the watchlist.
    keyring, allow_unsigned, limits
        As for :func:`read_bundle`: the signature must be by a trusted key unless unsigned
        bundles are explicitly allowed.

    Returns
    -------
    BundleInfo

    Raises
    ------
    WatchlistError
        The bundle failed verification, its embedding space differs from the watchlist's, or a
        subject id is already on the watchlist. The watchlist is left unchanged.
    """
    bundle = read_bundle(source, keyring=keyring, allow_unsigned=allow_unsigned, limits=limits)
    label = bundle.path
    if expected_content_hash is not None and bundle.content_hash != expected_content_hash.lower():
        raise _refuse(
            label,
            f"its content hash {bundle.content_hash} is not the expected {expected_content_hash}",
        )
    manifest = bundle.manifest
    with watchlist._write() as tx:
        was_empty = (
            tx.con.execute("SELECT COUNT(*) FROM subjects").fetchone()[0] == 0
            and tx.con.execute("SELECT COUNT(*) FROM templates").fetchone()[0] == 0
        )
        # Never changed since creation: importing makes it a copy of the bundle's watchlist.
        fresh = was_empty and (
            tx.con.execute("SELECT COUNT(*) FROM audit WHERE action != 'create'").fetchone()[0] == 0
        )
        if bundle.engines:
            try:
                watchlist._check_space(tx.con, bundle.engines[0])
            except WatchlistError as exc:
                raise _refuse(label, str(exc)) from None
        clashes = [s["id"] for s in manifest["subjects"] if watchlist._has_subject(tx.con, s["id"])]
        if clashes:
            shown = ", ".join(repr(c) for c in clashes[:5])
            more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
            raise _refuse(
                label,
                f"{plural(len(clashes), 'subject', number=False)} {shown}{more} already on this "
                "watchlist; remove them first",
            )
        for s in manifest["subjects"]:
            watchlist._insert_subject(
                tx,
                SubjectInfo(
                    subject_id=s["id"],
                    display_name=s["display_name"],
                    category=s["category"],
                    reason=s["reason"],
                    expires=from_iso(s["expires"]) if s["expires"] else None,
                ),
                created=from_iso(s["created"]),
            )
        for t in sorted(manifest["templates"], key=lambda t: t["row"]):
            image = bundle.images.get(t["image"]) if include_images and t.get("image") else None
            watchlist._insert_template(
                tx,
                t["subject_id"],
                bundle.embeddings[t["row"]],
                bundle.engines[t["engine"]],
                image_sha256=t["image_sha256"],
                quality=FaceQuality(**t["quality"]) if t.get("quality") else None,
                image=image,
                image_ext=PurePosixPath(t["image"]).suffix if image is not None else None,
                created=from_iso(t["created"]),
            )
        if was_empty and watchlist._content_hash(tx.con) != bundle.content_hash:
            # Cannot happen unless store and bundle hash differently: a bug, not input.
            raise RuntimeError("imported watchlist does not reproduce the bundle's hash")
        if fresh:
            tx.con.execute(
                "UPDATE meta SET value = ? WHERE key = 'watchlist_id'", (manifest["watchlist_id"],)
            )
        tx.log(
            "import_bundle",
            path=label,
            bundle_watchlist_id=manifest["watchlist_id"],
            adopted_watchlist_id=fresh,
            bundle_content_hash=bundle.content_hash,
            subjects=len(manifest["subjects"]),
            templates=len(manifest["templates"]),
            signed_by=bundle.signature.key_id,
        )
    return bundle.info()
