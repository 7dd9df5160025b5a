"""Authenticated encryption of single fields: AES-256-GCM with a fresh nonce per value.

A sealed value is ``version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)``. The
associated data names the table, the row and every clear column that must not change without
the key (e.g. a template's id, subject and engine), so a sealed value moved to another row, or a
row whose clear columns were edited, fails to open instead of decrypting to the wrong person.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEAL_VERSION = b"\x01"
_NONCE = 12


class SealError(Exception):
    """A sealed value does not open: wrong key, edited bytes, or moved to another row."""


def associated_data(*parts: object) -> bytes:
    """Unambiguous bytes of ``parts`` (each part's text, length-prefixed)."""
    out = bytearray()
    for part in parts:
        text = b"" if part is None else str(part).encode("utf-8")
        out += len(text).to_bytes(4, "big") + text
    return bytes(out)


class Sealer:
    """Seals and opens values with one AES-256-GCM key.

    Parameters
    ----------
    key : bytes
        32 bytes.
    """

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, ad: bytes) -> bytes:
        """Encrypt ``plaintext`` bound to ``ad`` (see :func:`associated_data`)."""
        nonce = os.urandom(_NONCE)
        return SEAL_VERSION + nonce + self._aead.encrypt(nonce, plaintext, ad)

    def open(self, sealed: bytes, ad: bytes) -> bytes:
        """Decrypt a value from :meth:`seal`; :class:`SealError` if it does not authenticate."""
        data = bytes(sealed)
        if len(data) < 1 + _NONCE + 16 or data[:1] != SEAL_VERSION:
            raise SealError("not a sealed value")
        try:
            return self._aead.decrypt(data[1 : 1 + _NONCE], data[1 + _NONCE :], ad)
        except InvalidTag:
            raise SealError("does not authenticate") from None
