"""The data-at-rest key: where it lives, how it is made, rotated and turned into per-file keys.

One installation holds a small key ring: a *current* 256-bit master key and, after a rotation,
the retired keys that files not yet re-encrypted still need. It is kept

1. in the OS keyring (service ``lfr-eval``, user ``data-keys``) when the optional ``keyring``
   package is installed and finds a real back end (macOS Keychain, Windows Credential Locker,
   Secret Service), else
2. in a key file, ``<user config dir>/lfr-eval/data-keys.json`` (``~/.config/lfr-eval`` on
   Linux), mode 0600 in a 0700 folder; ``LFR_EVAL_DATA_KEY_FILE`` names another path.

A key file that already exists always wins over the keyring, so installing ``keyring`` later
never hides the key the data was written with. The key must not sit beside the data it protects:
a store refuses a key file inside its own folder (a copied workspace would carry its key).

Each file gets its own keys, derived with HKDF-SHA256 from the master key, the file's random id
and a purpose (``seal``: AES-256-GCM; ``ref``: HMAC-SHA256 pseudonyms; ``mac``: the content
MAC), so rows copied between two files never decrypt and one file's pseudonyms say nothing about
another's.

**A lost key means lost data.** Without the key ring, templates, names and captures cannot be
decrypted by anyone, including the operator; re-enrol from the source images. Back the key file
up separately from the workspace (never inside it).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import platformdirs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lfr_eval.atrest._files import private_dir, write_private
from lfr_eval.errors import LfrError

#: Environment variable naming the key file (overrides the keyring and the default path).
ENV_KEY_FILE = "LFR_EVAL_DATA_KEY_FILE"
KEYRING_SERVICE = "lfr-eval"
KEYRING_USER = "data-keys"
KEY_RING_FORMAT = "lfr-eval-data-keys"
KEY_FILE_NAME = "data-keys.json"

MSG_LOST_KEY = (
    "{what} was encrypted with data key {key_id}, which is not in the key ring ({where}). "
    "Without that key its templates, names and captures cannot be read by anyone: restore the "
    "key file from its backup (or set {env} to it); otherwise delete the file and re-enrol"
)
MSG_KEY_BESIDE_DATA = (
    "the data key file {key} is inside {folder}, beside the data it protects; move it out "
    "(e.g. to {default}) and set {env} to its new path"
)
MSG_BAD_KEY_FILE = "data key file {path} is unreadable ({why}); restore it from its backup"


class DataKeyError(LfrError):
    """The data-at-rest key is missing, unreadable, or misplaced."""

    exit_code = 17


def default_key_file() -> Path:
    """``LFR_EVAL_DATA_KEY_FILE`` or ``<user config dir>/lfr-eval/data-keys.json``."""
    env = os.environ.get(ENV_KEY_FILE)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir("lfr-eval", appauthor=False)) / KEY_FILE_NAME


def _keyring_backend() -> object | None:
    """The OS keyring module when a real back end is available, else None."""
    try:
        import keyring  # optional dependency
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring install means "no keyring"
        return None
    if isinstance(backend, fail.Keyring) or "null" in type(backend).__module__.lower():
        return None
    if getattr(backend, "priority", 1) <= 0:
        return None
    module: object = keyring
    return module


@dataclass
class KeyRing:
    """The installation's data keys: the current one and retired ones still needed.

    Attributes
    ----------
    current : str
        Id (16 hex) of the key new data is encrypted with.
    keys : dict of str to bytes
        Every key by id (32 bytes each).
    retired : dict of str to str
        Ids of retired keys and when (ISO UTC) they were retired.
    location : str
        Where the ring is kept (``"keyring:lfr-eval"`` or a file path), for messages.
    """

    current: str
    keys: dict[str, bytes]
    retired: dict[str, str] = field(default_factory=dict)
    location: str = ""

    # -------------------------------------------------------------- persistence
    def to_json(self) -> str:
        return json.dumps(
            {
                "format": KEY_RING_FORMAT,
                "version": 1,
                "current": self.current,
                "keys": {
                    kid: base64.b64encode(key).decode("ascii") for kid, key in self.keys.items()
                },
                "retired": self.retired,
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, location: str) -> KeyRing:
        try:
            data = json.loads(text)
            if data.get("format") != KEY_RING_FORMAT:
                raise ValueError("not an lfr-eval key ring")
            keys = {str(k): base64.b64decode(v, validate=True) for k, v in data["keys"].items()}
            current = str(data["current"])
            if current not in keys or any(len(k) != 32 for k in keys.values()):
                raise ValueError("current key missing or a key of the wrong length")
            retired = {str(k): str(v) for k, v in dict(data.get("retired", {})).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataKeyError(MSG_BAD_KEY_FILE.format(path=location, why=exc)) from None
        return cls(current, keys, retired, location)

    def key(self, key_id: str, what: str) -> bytes:
        """The key ``key_id``; :class:`DataKeyError` naming ``what`` needs it if it is gone."""
        try:
            return self.keys[key_id]
        except KeyError:
            raise DataKeyError(
                MSG_LOST_KEY.format(what=what, key_id=key_id, where=self.location, env=ENV_KEY_FILE)
            ) from None


def _new_key() -> tuple[str, bytes]:
    key = secrets.token_bytes(32)
    return hashlib.sha256(b"lfr-eval key id\0" + key).hexdigest()[:16], key


class _Store:
    """Reads and writes the key ring in the keyring or the key file."""

    def __init__(self) -> None:
        self.file = default_key_file()
        self.keyring = None
        if ENV_KEY_FILE not in os.environ and not self.file.exists():
            self.keyring = _keyring_backend()

    @property
    def location(self) -> str:
        return f"keyring:{KEYRING_SERVICE}" if self.keyring is not None else str(self.file)

    def load(self) -> KeyRing | None:
        if self.keyring is not None:
            text = self.keyring.get_password(KEYRING_SERVICE, KEYRING_USER)  # type: ignore[attr-defined]
            return None if text is None else KeyRing.from_json(text, self.location)
        try:
            text = self.file.read_text("utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DataKeyError(MSG_BAD_KEY_FILE.format(path=self.file, why=exc)) from None
        return KeyRing.from_json(text, self.location)

    def save(self, ring: KeyRing) -> None:
        if self.keyring is not None:
            self.keyring.set_password(KEYRING_SERVICE, KEYRING_USER, ring.to_json())  # type: ignore[attr-defined]
            return
        private_dir(self.file.parent)
        write_private(self.file, ring.to_json().encode("utf-8"))


_CACHE: dict[str, KeyRing] = {}


@contextlib.contextmanager
def _ring_lock(store: _Store) -> Iterator[None]:
    """Serialise creation/rotation of a key file across processes (POSIX advisory lock)."""
    if store.keyring is not None:
        yield
        return
    private_dir(store.file.parent)
    lock_path = store.file.with_name(store.file.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # Windows: one process at a time is the user's job
            pass
        yield
    finally:
        os.close(fd)


def load_key_ring(*, create: bool = True) -> KeyRing:
    """The installation's key ring, made (one new key) on first use when ``create``.

    Raises
    ------
    DataKeyError
        No key ring and ``create`` is False, or the key file is unreadable.
    """
    store = _Store()
    cached = _CACHE.get(store.location)
    if cached is not None:
        return cached
    ring = store.load()
    if ring is None:
        if not create:
            raise DataKeyError(f"no data key at {store.location}")
        with _ring_lock(store):
            ring = store.load()  # another process may have made it meanwhile
            if ring is None:
                kid, key = _new_key()
                ring = KeyRing(kid, {kid: key}, {}, store.location)
                store.save(ring)
    _CACHE[store.location] = ring
    return ring


def rotate_key_ring() -> tuple[KeyRing, str]:
    """Make a new current key; the old one stays, retired, until :func:`forget_retired`.

    Returns
    -------
    (KeyRing, str)
        The new ring and the id of the key that was current before.
    """
    store = _Store()
    with _ring_lock(store):
        ring = store.load()
        if ring is None:
            raise DataKeyError(f"no data key at {store.location}; nothing to rotate")
        old = ring.current
        kid, key = _new_key()
        ring.keys[kid] = key
        ring.retired[old] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        ring.current = kid
        store.save(ring)
    _CACHE[store.location] = ring
    return ring, old


def forget_retired(key_ids: list[str]) -> KeyRing:
    """Delete retired keys from the ring (data still encrypted with them becomes unreadable)."""
    store = _Store()
    with _ring_lock(store):
        ring = store.load()
        if ring is None:
            raise DataKeyError(f"no data key at {store.location}")
        for kid in key_ids:
            if kid == ring.current:
                raise DataKeyError(f"key {kid} is the current key; rotate first")
            ring.keys.pop(kid, None)
            ring.retired.pop(kid, None)
        store.save(ring)
    _CACHE[store.location] = ring
    return ring


def check_key_outside(folder: Path) -> None:
    """Refuse a key file stored inside ``folder`` (the folder of the data it protects)."""
    store = _Store()
    if store.keyring is not None:
        return
    default = Path(platformdirs.user_config_dir("lfr-eval", appauthor=False)) / KEY_FILE_NAME
    if store.file.resolve() == default.resolve():
        # the per-user config folder is never part of a workspace, even when a workspace is
        # set to the home folder that contains it
        return
    try:
        store.file.resolve().relative_to(folder.resolve())
    except ValueError:
        return
    raise DataKeyError(
        MSG_KEY_BESIDE_DATA.format(key=store.file, folder=folder, default=default, env=ENV_KEY_FILE)
    )


@dataclass(frozen=True)
class FileKeys:
    """The keys of one store file, derived from a master key and the file's id.

    Attributes
    ----------
    key_id : str
        Id of the master key they come from.
    seal : bytes
        AES-256-GCM key for the file's encrypted fields.
    ref : bytes
        HMAC-SHA256 key for pseudonyms (subject refs, image refs, audit).
    mac : bytes
        HMAC-SHA256 key for the file's content MAC.
    """

    key_id: str
    seal: bytes = field(repr=False)
    ref: bytes = field(repr=False)
    mac: bytes = field(repr=False)

    def pseudonym(self, kind: str, value: str) -> str:
        """Keyed hash (hex HMAC-SHA256) of ``value``: stable within the file, opaque outside."""
        message = kind.encode() + b"\0" + value.encode("utf-8")
        # 128 bits: collision-free for any watchlist, short enough to show in an audit table
        return hmac.new(self.ref, message, "sha256").hexdigest()[:32]

    def content_mac(self, text: str) -> str:
        return hmac.new(self.mac, text.encode("utf-8"), "sha256").hexdigest()


def _derive(master: bytes, salt: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"lfr-eval/" + purpose.encode()
    ).derive(master)


def file_keys(file_id: str, key_id: str | None = None, *, what: str = "this file") -> FileKeys:
    """The keys of the file with random id ``file_id`` under master key ``key_id`` (current)."""
    ring = load_key_ring()
    if key_id is not None and key_id not in ring.keys:
        _CACHE.clear()  # another process may have rotated the key since this one read it
        ring = load_key_ring()
    kid = key_id or ring.current
    master = ring.key(kid, what)
    salt = file_id.encode("utf-8")
    return FileKeys(
        kid,
        _derive(master, salt, "seal"),
        _derive(master, salt, "ref"),
        _derive(master, salt, "mac"),
    )


def clear_cache() -> None:
    """Forget key rings read in this process (tests switch key files)."""
    _CACHE.clear()
