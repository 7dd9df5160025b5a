"""Exception hierarchy of LFR Workbench.

Every error a user can cause (bad image, bad model file, tampered bundle, malformed manifest…)
is raised as a subclass of :class:`LfrError` with a message that says what was wrong and what to
do. The CLI turns these into one-line messages and stable exit codes; anything else is a bug.

Message templates are module constants so tests can match on them.
"""

from __future__ import annotations


class LfrError(Exception):
    """Base class for errors caused by input, configuration or environment (not bugs)."""

    #: process exit code used by the CLI for this kind of error
    exit_code: int = 2


class ImageError(LfrError):
    """An image could not be read: missing, zero bytes, not an image, corrupt or too large."""

    exit_code = 3


class FaceCountError(LfrError):
    """An image held no face, or several faces where exactly one was required."""

    exit_code = 4


class ModelError(LfrError):
    """A model file is missing, of the wrong kind, or does not match its expected hash."""

    exit_code = 5


class RuntimeUnavailableError(LfrError):
    """A requested runtime (e.g. CUDA) is not active. We never fall back silently."""

    exit_code = 6


class WatchlistError(LfrError):
    """A watchlist operation was refused (unknown subject, engine mismatch, tampered bundle…)."""

    exit_code = 7


class ManifestError(LfrError):
    """A dataset manifest is malformed (missing columns, unknown paths, duplicates…)."""

    exit_code = 8


class ConfigError(LfrError):
    """A deployment configuration is invalid or does not match the artefacts it names."""

    exit_code = 9


# Exit code 10 belongs to lfr_eval.live's AlertError (the alert store).


class ResultError(LfrError):
    """A results folder is missing, unreadable, of another layout version, or altered."""

    exit_code = 11


class CacheError(LfrError):
    """The embedding cache file cannot be used (corrupt, or written by an incompatible version)."""

    exit_code = 12


class ProtocolError(LfrError):
    """A protocol cannot be built from this manifest with these settings."""

    exit_code = 13


class MetricInputError(LfrError, ValueError):
    """Scores, labels, thresholds, targets or claims given to a metric are malformed.

    Also a :class:`ValueError`, so code that validates numbers the usual Python way catches it.
    """

    exit_code = 14


class SignatureError(LfrError):
    """A signature is missing, invalid or made with an untrusted or revoked key; or a signing
    key or the trusted-key list cannot be used."""

    exit_code = 15


class AccessError(LfrError):
    """Refused for safety: a path outside the allowed folders, an exposed server without users,
    an unknown user or a wrong password."""

    exit_code = 18


# Exit code 17 is lfr_eval.atrest's DataKeyError (the data-at-rest key).
# Exit code 16 is a file-system error (an unreadable or unwritable path): the CLI turns any
# OSError that reaches it into a one-line message with that code.


MSG_IMAGE_MISSING = "image not found: {path}"
MSG_IMAGE_EMPTY = "image file is empty (0 bytes): {path}"
MSG_IMAGE_UNREADABLE = "not a readable image (corrupt or unsupported format): {path}"
MSG_IMAGE_TOO_LARGE = (
    "image is too large: {width}x{height} pixels exceeds the limit of {limit} pixels: {path}"
)
MSG_NO_FACE = "no face found in {source}"
MSG_SEVERAL_FACES = (
    "{count} faces found in {source}; exactly one is needed "
    "(use --largest-face to take the biggest one)"
)
