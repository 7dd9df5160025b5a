"""The content hash: one sha256 that names a watchlist version.

Canonical form (version 1):

- each subject is digested as ``sha256(b"subject\\0" + JSON)`` where JSON is
  ``{"category", "expires", "id", "name", "reason"}`` with sorted keys, no spaces, UTF-8,
  ``expires`` as ``YYYY-MM-DDTHH:MM:SS+00:00`` (UTC) or null;
- each template is digested as ``sha256(b"template\\0" + subject id + b"\\0" + recognizer key +
  b"\\0" + image sha256 (hex, or empty) + b"\\0" + embedding as little-endian float32 bytes)``;
- the content hash is ``sha256(b"lfr-watchlist-content-v1\\n" + b"subjects\\n" + sorted subject
  digests, one per line + b"templates\\n" + sorted template digests, one per line)``, hex.

Sorting makes it independent of insertion order and row ids; creation times, the audit log,
template qualities, stored images and the backend name (dlib vs dlib-torch sharing weights) are
not part of it. Two watchlists with the same hash search identically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import numpy as np

CONTENT_HASH_VERSION = 1
_PREFIX = b"lfr-watchlist-content-v1\n"


def subject_digest(
    subject_id: str, display_name: str, category: str, reason: str, expires_iso: str | None
) -> str:
    """Hex sha256 of one subject's canonical form (see module docstring)."""
    record = {
        "category": category,
        "expires": expires_iso,
        "id": subject_id,
        "name": display_name,
        "reason": reason,
    }
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(b"subject\0" + text.encode("utf-8")).hexdigest()


def embedding_bytes(embedding: np.ndarray) -> bytes:
    """The canonical bytes of an embedding: little-endian float32."""
    return np.ascontiguousarray(embedding, dtype="<f4").tobytes()


def template_digest(
    subject_id: str, recognizer_key: str, image_sha256: str | None, embedding: bytes
) -> str:
    """Hex sha256 of one template's canonical form (see module docstring)."""
    digest = hashlib.sha256(b"template\0")
    digest.update(subject_id.encode("utf-8") + b"\0")
    digest.update(recognizer_key.encode("utf-8") + b"\0")
    digest.update((image_sha256 or "").encode("ascii") + b"\0")
    digest.update(embedding)
    return digest.hexdigest()


def content_hash(subject_digests: Iterable[str], template_digests: Iterable[str]) -> str:
    """Combine per-record digests into the watchlist's content hash (order does not matter)."""
    digest = hashlib.sha256(_PREFIX)
    digest.update(b"subjects\n")
    for item in sorted(subject_digests):
        digest.update(item.encode("ascii") + b"\n")
    digest.update(b"templates\n")
    for item in sorted(template_digests):
        digest.update(item.encode("ascii") + b"\n")
    return digest.hexdigest()
