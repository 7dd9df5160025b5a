"""Resource limits for everything LFR Workbench reads from files it did not write itself.

A configuration, a bundle manifest or a results file can come from anyone. Python's ``json``
module parses whatever it is given: 100,000 nested brackets end in a ``RecursionError``, a
5,000-digit integer in a ``ValueError`` (Python's int-to-string limit), ``1e999`` becomes
infinity. :func:`load_json` parses with limits on depth, number size and total size and turns
every violation into the caller's :class:`~lfr_eval.errors.LfrError` subclass, so the user sees
one clear message and the documented exit code, never a traceback.
"""

from __future__ import annotations

import json
import math
from typing import Any

from lfr_eval.errors import LfrError

#: Deepest nesting of arrays and objects accepted. Our own documents nest at most 6 levels.
MAX_JSON_DEPTH = 64
#: Longest integer literal accepted, in digits. 2**64 has 20; counts and sizes need fewer.
MAX_JSON_INT_DIGITS = 30
#: Longest float literal accepted, in characters (a float64 repr needs at most 24).
MAX_JSON_FLOAT_CHARS = 40
#: Largest JSON text accepted by default, in bytes (a manifest of a million templates is
#: about 300 MB; everything else we read is far smaller).
MAX_JSON_BYTES = 512 << 20

MSG_JSON_LIMIT = "{source} refused: {what} (limit {limit})"


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        raise _JsonLimit(f"an integer with {digits:,} digits", f"{MAX_JSON_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_JSON_FLOAT_CHARS:
        raise _JsonLimit(
            f"a number written with {len(text):,} characters", f"{MAX_JSON_FLOAT_CHARS}"
        )
    value = float(text)
    if not math.isfinite(value):
        raise _JsonLimit(f"the number {text[:20]} is out of range", "finite float64")
    return value


def _parse_constant(text: str) -> float:
    raise _JsonLimit(f"{text} is not a JSON number", "finite numbers only")


class _JsonLimit(Exception):
    def __init__(self, what: str, limit: str) -> None:
        super().__init__(what)
        self.what, self.limit = what, limit


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            stack.extend((v, depth) for v in item.values())
        elif isinstance(item, list):
            depth += 1
            stack.extend((v, depth) for v in item)
        deepest = max(deepest, depth)
    return deepest


def load_json(
    text: str | bytes,
    *,
    source: str,
    error: type[LfrError] = LfrError,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON with limits on size, nesting depth and number size.

    Parameters
    ----------
    text : str or bytes
        The document (bytes are decoded as UTF-8).
    source : str
        What the document is, for messages (a path or "bundle X manifest.json").
    error : type of LfrError
        The exception raised on any problem (e.g. ``ConfigError`` for a deployment config), so
        each kind of file keeps its own exit code.
    max_bytes : int
        Largest document accepted, in bytes.
    max_depth : int
        Deepest nesting of arrays and objects accepted.

    Raises
    ------
    LfrError
        (of type ``error``) Not UTF-8, not JSON, too big, too deep, an integer of more than
        :data:`MAX_JSON_INT_DIGITS` digits, or a non-finite number.
    """
    size = len(text)
    if size > max_bytes:
        raise error(
            MSG_JSON_LIMIT.format(
                source=source, what=f"the file is {size:,} bytes", limit=f"{max_bytes:,} bytes"
            )
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{source} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except _JsonLimit as exc:
        raise error(MSG_JSON_LIMIT.format(source=source, what=exc.what, limit=exc.limit)) from None
    except RecursionError:
        raise error(
            MSG_JSON_LIMIT.format(
                source=source, what="arrays or objects nested too deeply", limit=max_depth
            )
        ) from None
    except json.JSONDecodeError as exc:
        raise error(f"{source} is not valid JSON ({exc})") from None
    depth = json_depth(value)
    if depth > max_depth:
        raise error(
            MSG_JSON_LIMIT.format(
                source=source, what=f"arrays or objects nested {depth} deep", limit=max_depth
            )
        )
    return value
