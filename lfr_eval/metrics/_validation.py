"""Argument checks shared by the metric modules, with one clear message each."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lfr_eval.errors import MetricInputError as MetricInputError  # re-exported (mypy strict)

MSG_NOT_FINITE = (
    "{what} contains NaN or infinite values; similarities must be finite cosine scores in [-1, 1]"
)
MSG_NOT_1D = "{what} must be one-dimensional, got shape {shape}"
MSG_EMPTY = "{what} is empty; at least one {unit} is needed"
MSG_CONFIDENCE = "confidence must be strictly between 0 and 1 (e.g. 0.95), got {value}"
MSG_RATE = "{what} must be a rate in [0, 1], got {value}"
MSG_COUNTS = (
    "error counts must be integers with 0 <= errors <= trials; got errors={errors}, trials={trials}"
)
MSG_SIDED = "sided must be 'two-sided', 'upper' or 'lower', got {value!r}"


def as_scores(
    values: ArrayLike, what: str, *, allow_empty: bool = True, allow_failed: bool = False
) -> np.ndarray:
    """Return ``values`` as a 1-D floating array of finite similarities (checked).

    With ``allow_failed``, ``-inf`` (a search that failed to acquire: never at or above any
    threshold) is accepted too; NaN and ``+inf`` never are.
    """
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise MetricInputError(f"{what} must be numeric similarities, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if arr.ndim != 1:
        raise MetricInputError(MSG_NOT_1D.format(what=what, shape=arr.shape))
    if not allow_empty and arr.size == 0:
        raise MetricInputError(MSG_EMPTY.format(what=what, unit="score"))
    ok = np.isfinite(arr) | (arr == -np.inf) if allow_failed else np.isfinite(arr)
    if not np.all(ok):
        raise MetricInputError(MSG_NOT_FINITE.format(what=what))
    return arr


def as_thresholds(thresholds: ArrayLike) -> np.ndarray:
    """Return thresholds as a float64 array (any shape, scalars allowed), checked finite."""
    arr = np.asarray(thresholds, dtype=np.float64)
    if arr.size == 0:
        raise MetricInputError(MSG_EMPTY.format(what="thresholds", unit="threshold"))
    if not np.all(np.isfinite(arr)):
        raise MetricInputError("thresholds must be finite similarities in [-1, 1]")
    return arr


def check_confidence(confidence: float) -> float:
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise MetricInputError(MSG_CONFIDENCE.format(value=confidence))
    return value


def check_rate(value: float, what: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise MetricInputError(MSG_RATE.format(what=what, value=value))
    return rate


def check_counts(errors: ArrayLike, trials: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast and check (errors, trials) count arrays; returned as float64 for scipy."""
    k = np.asarray(errors, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    k, n = np.broadcast_arrays(k, n)
    bad = (k < 0) | (k > n) | (k != np.round(k)) | (n != np.round(n)) | ~np.isfinite(n)
    if np.any(bad):
        raise MetricInputError(MSG_COUNTS.format(errors=errors, trials=trials))
    return k, n


def check_sided(sided: str) -> str:
    if sided not in ("two-sided", "upper", "lower"):
        raise MetricInputError(MSG_SIDED.format(value=sided))
    return sided
