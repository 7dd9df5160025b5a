"""Ed25519 signatures for deployment configs and watchlist bundles, and the keys behind them.

A content hash only shows a file is self-consistent: whoever edits a config can recompute its
``config_sha256``. A signature shows *who* produced it. Each workbench installation has one
signing key (``lfr-eval keys generate``) and a list of trusted public keys (its own, and those of
other teams added with ``lfr-eval keys trust``). Importing refuses a signature made with a key
that is not trusted, or was revoked, unless the user explicitly allows unsigned artefacts.

What is signed is a short canonical JSON statement::

    {"algorithm": "ed25519", "key_id": ..., "purpose": "deployment-config",
     "sha256": <hash of the artefact's canonical content>, "signed_at": ..., "signer": ...}

so the signer's name and the signing time are covered by the signature, and a bundle signature
cannot be replayed as a config signature (``purpose``).

Files (in :func:`keys_dir`, outside the workspace by default):

- ``signing-key.pem``  — the private key, PKCS#8 PEM, mode 0600;
- ``signing-key.pub``  — its public key, one line ``lfr-ed25519 <base64> <name>``;
- ``trusted-keys.json`` — trusted public keys, with when they were added and revoked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lfr_eval.errors import SignatureError
from lfr_eval.limits import load_json
from lfr_eval.workspace import config_dir, private_dir, write_private_file

ALGORITHM = "ed25519"
PUBLIC_KEY_PREFIX = "lfr-ed25519"
ENV_KEYS_DIR = "LFR_KEYS_DIR"
PRIVATE_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub"
TRUST_FILE = "trusted-keys.json"
TRUST_FORMAT = "lfr-trusted-keys"

#: What a signature is for; part of the signed statement.
PURPOSE_CONFIG = "deployment-config"
PURPOSE_BUNDLE = "watchlist-bundle"

_NAME = re.compile(r"^[\w .@'()-]{1,80}$")

MSG_UNSIGNED = (
    "{what} is not signed. Ask its author to export it signed, or accept it knowingly with "
    "--allow-unsigned"
)
MSG_UNTRUSTED = (
    "{what} is signed by key {key_id} ({signer!r}), which is not in your trusted keys. If you "
    "know this key belongs to {signer!r}, trust it with 'lfr-eval keys trust FILE'"
)
MSG_REVOKED = "{what} is signed by key {key_id} ({signer!r}), which was revoked on {revoked}"
MSG_BAD_SIGNATURE = "{what} has an invalid signature for key {key_id}: it was changed after signing"
MSG_NO_KEY = (
    "no signing key in {folder}; create one with 'lfr-eval keys generate --name \"Your team\"'"
)


def keys_dir() -> Path:
    """Folder of the signing key and trusted keys: ``$LFR_KEYS_DIR`` or ``<config dir>``."""
    env = os.environ.get(ENV_KEYS_DIR)
    return Path(env).expanduser() if env else config_dir()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SignatureError(f"{what} is not valid base64") from None


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the byte form that is hashed and signed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key and the name of whoever holds its private key.

    Attributes
    ----------
    raw : bytes
        The 32-byte public key.
    name : str
        Who holds the private key (a team, a person), as given at generation.
    """

    raw: bytes
    name: str

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise SignatureError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> str:
        """First 16 bytes of the sha256 of the raw key, in hex (32 characters)."""
        return hashlib.sha256(self.raw).hexdigest()[:32]

    def to_line(self) -> str:
        """``lfr-ed25519 <base64> <name>``, the form shared with others."""
        return f"{PUBLIC_KEY_PREFIX} {_b64(self.raw)} {self.name}"

    @classmethod
    def from_line(cls, line: str, *, source: str = "public key") -> PublicKey:
        parts = line.strip().split(" ", 2)
        if len(parts) < 2 or parts[0] != PUBLIC_KEY_PREFIX:
            raise SignatureError(
                f"{source} is not an LFR public key (expected '{PUBLIC_KEY_PREFIX} <base64> "
                "<name>', as written by 'lfr-eval keys export')"
            )
        raw = _unb64(parts[1], source)
        if len(raw) != 32:
            raise SignatureError(f"{source} is not a 32-byte Ed25519 public key")
        return cls(raw=raw, name=parts[2] if len(parts) == 3 else "")

    def verify(self, signature: bytes, message: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class TrustedKey:
    """A public key in the trusted list, with when it was added and (maybe) revoked."""

    key: PublicKey
    added: str
    revoked: str | None = None

    @property
    def key_id(self) -> str:
        return self.key.key_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.key.name,
            "public_key": _b64(self.key.raw),
            "added": self.added,
            "revoked": self.revoked,
        }


@dataclass(frozen=True)
class Signature:
    """A detached signature and the signed statement's provenance fields.

    Attributes
    ----------
    key_id : str
        Which key signed (see :attr:`PublicKey.key_id`).
    signer : str
        The key holder's name, as recorded in the key.
    signed_at : str
        UTC time of signing, ISO 8601.
    value : bytes
        The 64-byte Ed25519 signature of :meth:`statement`.
    algorithm : str
        Always ``"ed25519"``.
    """

    key_id: str
    signer: str
    signed_at: str
    value: bytes
    algorithm: str = ALGORITHM

    def statement(self, purpose: str, sha256: str) -> bytes:
        """The bytes that are signed: purpose, artefact hash and every provenance field."""
        return canonical_json(
            {
                "algorithm": self.algorithm,
                "key_id": self.key_id,
                "purpose": purpose,
                "sha256": sha256,
                "signed_at": self.signed_at,
                "signer": self.signer,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "signer": self.signer,
            "signed_at": self.signed_at,
            "value": _b64(self.value),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "signature") -> Signature:
        if not isinstance(data, dict):
            raise SignatureError(f"{source} is not a signature object")
        missing = [
            k for k in ("algorithm", "key_id", "signer", "signed_at", "value") if k not in data
        ]
        if missing:
            raise SignatureError(f"{source} lacks {', '.join(missing)}")
        if data["algorithm"] != ALGORITHM:
            raise SignatureError(f"{source} uses {data['algorithm']!r}; only ed25519 is accepted")
        for key in ("key_id", "signer", "signed_at", "value"):
            if not isinstance(data[key], str):
                raise SignatureError(f"{source}: {key} must be a string")
        return cls(
            key_id=data["key_id"],
            signer=data["signer"],
            signed_at=data["signed_at"],
            value=_unb64(data["value"], f"{source} value"),
        )


@dataclass(frozen=True)
class SigningKey:
    """The private key of this installation (see :meth:`KeyRing.signing_key`)."""

    private_bytes: bytes
    public: PublicKey

    def sign(self, purpose: str, sha256: str) -> Signature:
        """Sign the statement for an artefact whose canonical content hashes to ``sha256``."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        unsigned = Signature(
            key_id=self.public.key_id, signer=self.public.name, signed_at=_now(), value=b""
        )
        key = Ed25519PrivateKey.from_private_bytes(self.private_bytes)
        return replace(unsigned, value=key.sign(unsigned.statement(purpose, sha256)))


@dataclass(frozen=True)
class SignatureCheck:
    """Outcome of :meth:`KeyRing.check`: who signed, or that unsigned was accepted."""

    signed: bool
    key_id: str | None = None
    signer: str | None = None
    signed_at: str | None = None

    def describe(self) -> str:
        if not self.signed:
            return "NOT signed (accepted because unsigned artefacts were allowed)"
        return f"signed by {self.signer!r} (key {self.key_id}) at {self.signed_at}"


class KeyRing:
    """This installation's signing key and trusted public keys, in one folder.

    Parameters
    ----------
    folder : path-like, optional
        Default :func:`keys_dir`.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder).expanduser() if folder is not None else keys_dir()

    @property
    def private_key_path(self) -> Path:
        return self.folder / PRIVATE_KEY_FILE

    @property
    def public_key_path(self) -> Path:
        return self.folder / PUBLIC_KEY_FILE

    @property
    def trust_path(self) -> Path:
        return self.folder / TRUST_FILE

    # ------------------------------------------------------------------ own key
    def has_signing_key(self) -> bool:
        return self.private_key_path.is_file()

    def generate(self, name: str, *, overwrite: bool = False) -> PublicKey:
        """Create this installation's signing key (0600) and trust its public key.

        Raises
        ------
        SignatureError
            A key exists and ``overwrite`` is False, or the name is unusable.
        """
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not _NAME.match(name):
            raise SignatureError(
                f"key name {name!r} must be 1-80 letters, digits, spaces or . @ ' ( ) - _"
            )
        if self.has_signing_key() and not overwrite:
            raise SignatureError(
                f"a signing key already exists in {self.folder}; keep it, or replace it with "
                "--overwrite (configs and bundles signed with the old key then verify only "
                "where the old public key stays trusted)"
            )
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        raw_public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        public = PublicKey(raw=raw_public, name=name)
        private_dir(self.folder)
        write_private_file(self.private_key_path, pem)
        self.public_key_path.write_text(public.to_line() + "\n", encoding="utf-8")
        self.trust(public, replace_existing=True)
        return public

    def signing_key(self) -> SigningKey:
        """Load the private key.

        Raises
        ------
        SignatureError
            No key, a key file others can read, or a file that is not an Ed25519 key.
        """
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path = self.private_key_path
        if not path.is_file():
            raise SignatureError(MSG_NO_KEY.format(folder=self.folder))
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise SignatureError(
                f"signing key {path} can be read by other users (mode "
                f"{path.stat().st_mode & 0o777:o}); run 'chmod 600 {path}' or generate a new key"
            )
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"{path} is not a usable private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError(f"{path} is not an Ed25519 key")
        raw_public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        name = ""
        if self.public_key_path.is_file():
            stored = PublicKey.from_line(
                self.public_key_path.read_text(encoding="utf-8"), source=str(self.public_key_path)
            )
            if stored.raw == raw_public:
                name = stored.name
        private = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return SigningKey(private_bytes=private, public=PublicKey(raw=raw_public, name=name))

    # ------------------------------------------------------------------ trust
    def trusted(self) -> list[TrustedKey]:
        """Every key in the trusted list (revoked ones included, with their date)."""
        path = self.trust_path
        if not path.is_file():
            return []
        data = load_json(path.read_bytes(), source=str(path), error=SignatureError)
        if not isinstance(data, dict) or data.get("format") != TRUST_FORMAT:
            raise SignatureError(f"{path} is not a trusted-keys file")
        keys = []
        for i, entry in enumerate(data.get("keys", [])):
            where = f"{path} key {i}"
            if not isinstance(entry, dict):
                raise SignatureError(f"{where} is not an object")
            try:
                public = PublicKey(
                    raw=_unb64(str(entry["public_key"]), where), name=str(entry.get("name", ""))
                )
                keys.append(
                    TrustedKey(public, added=str(entry["added"]), revoked=entry.get("revoked"))
                )
            except KeyError as exc:
                raise SignatureError(f"{where} lacks {exc.args[0]}") from None
        return keys

    def _save_trusted(self, keys: Sequence[TrustedKey]) -> None:
        document = {"format": TRUST_FORMAT, "keys": [k.to_dict() for k in keys]}
        write_private_file(
            self.trust_path, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
        )

    def trust(self, public: PublicKey, *, replace_existing: bool = False) -> TrustedKey:
        """Add ``public`` to the trusted keys (a revoked key is trusted again only by
        ``replace_existing``)."""
        keys = self.trusted()
        for existing in keys:
            if existing.key_id == public.key_id:
                if existing.revoked and not replace_existing:
                    raise SignatureError(
                        f"key {public.key_id} was revoked on {existing.revoked}; it stays revoked"
                    )
                if not replace_existing:
                    return existing
        entry = TrustedKey(public, added=_now())
        self._save_trusted([k for k in keys if k.key_id != public.key_id] + [entry])
        return entry

    def revoke(self, key_id: str) -> TrustedKey:
        """Mark a trusted key revoked: nothing it signed is accepted any more.

        ``key_id`` may be a unique prefix (at least 8 characters).
        """
        keys = self.trusted()
        matches = [k for k in keys if len(key_id) >= 8 and k.key_id.startswith(key_id.lower())]
        if len(matches) != 1:
            raise SignatureError(
                f"no single trusted key matches {key_id!r}; see 'lfr-eval keys list'"
            )
        revoked = replace(matches[0], revoked=matches[0].revoked or _now())
        self._save_trusted([revoked if k.key_id == revoked.key_id else k for k in keys])
        return revoked

    # ------------------------------------------------------------------ verify
    def check(
        self,
        signature: Signature | None,
        *,
        purpose: str,
        sha256: str,
        what: str,
        allow_unsigned: bool = False,
    ) -> SignatureCheck:
        """Check a signature over an artefact hash against the trusted keys.

        Parameters
        ----------
        signature : Signature or None
            None for an unsigned artefact.
        purpose : str
            :data:`PURPOSE_CONFIG` or :data:`PURPOSE_BUNDLE`.
        sha256 : str
            Hash of the artefact's canonical content, recomputed by the caller from the data.
        what : str
            Names the artefact in messages.
        allow_unsigned : bool
            Accept an unsigned artefact (the result says it was not signed). A *bad* signature
            or an untrusted key is refused regardless.

        Raises
        ------
        SignatureError
            Unsigned (and not allowed), signed with an unknown or revoked key, or invalid.
        """
        if signature is None:
            if allow_unsigned:
                return SignatureCheck(signed=False)
            raise SignatureError(MSG_UNSIGNED.format(what=what))
        trusted = {k.key_id: k for k in self.trusted()}
        entry = trusted.get(signature.key_id)
        fields = {"what": what, "key_id": signature.key_id, "signer": signature.signer}
        if entry is None:
            raise SignatureError(MSG_UNTRUSTED.format(**fields))
        if entry.revoked:
            raise SignatureError(MSG_REVOKED.format(**fields, revoked=entry.revoked))
        if not entry.key.verify(signature.value, signature.statement(purpose, sha256)):
            raise SignatureError(MSG_BAD_SIGNATURE.format(**fields))
        return SignatureCheck(
            signed=True,
            key_id=signature.key_id,
            # the name this installation trusts the key under, not the one the signer claims
            signer=entry.key.name or signature.signer,
            signed_at=signature.signed_at,
        )
