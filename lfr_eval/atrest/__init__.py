"""Biometric data at rest: encryption keys, sealed fields, private files, acting users.

Watchlists and the alert store keep templates, names and captures sealed with AES-256-GCM under
per-file keys derived from one installation key ring (the OS keyring or a 0600 key file outside
the workspace, see :mod:`lfr_eval.atrest._keys`); their files are 0600 in 0700 folders; audit
entries name subjects and images only by keyed hashes (HMAC) and record the acting user.
"""

from __future__ import annotations

from lfr_eval.atrest._actor import ENV_ACTOR, check_actor, default_actor
from lfr_eval.atrest._files import is_private, private_dir, private_file, write_private
from lfr_eval.atrest._keys import (
    ENV_KEY_FILE,
    DataKeyError,
    FileKeys,
    KeyRing,
    check_key_outside,
    clear_cache,
    default_key_file,
    file_keys,
    forget_retired,
    load_key_ring,
    rotate_key_ring,
)
from lfr_eval.atrest._seal import Sealer, SealError, associated_data

__all__ = [
    "ENV_ACTOR",
    "ENV_KEY_FILE",
    "DataKeyError",
    "FileKeys",
    "KeyRing",
    "SealError",
    "Sealer",
    "associated_data",
    "check_actor",
    "check_key_outside",
    "clear_cache",
    "default_actor",
    "default_key_file",
    "file_keys",
    "forget_retired",
    "is_private",
    "load_key_ring",
    "private_dir",
    "private_file",
    "rotate_key_ring",
    "write_private",
]
