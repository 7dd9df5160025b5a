"""Watchlist-size scaling estimators: FPIR(N) from each search's false matches among F fillers.

A non-mated search that meets ``c`` of the F fillers at threshold T raises an alert on a watchlist
of N of those fillers (drawn without replacement) with probability
``1 - C(F - c, N) / C(F, N)`` (hypergeometric: no matching filler among the N drawn). Averaged
over searches this is the **exact expectation of gallery resampling** and an unbiased estimate of
FPIR(N) for N <= F, whatever the spread of false-match rates between people. The older plug-in
``1 - (1 - c / F)^N`` is biased low (Jensen) even when comparisons are independent.

Beyond F the data cannot tell how false-match rates differ between people (a person's rate is
seen only through F comparisons). Two models bracket FPIR(N): the per-person plug-in (each search
keeps its own rate ``c / F``: the low end) and one pooled rate for everyone (the high end, by
Jensen). Both are extrapolations by a factor N / F and are labelled so.
"""

from __future__ import annotations

import numpy as np

#: ``method`` of the per-search (hypergeometric, N <= F; plug-in beyond) rows
ANALYTIC = "analytic"
#: ``method`` of the pooled-rate rows beyond F (the high end of the extrapolation range)
POOLED = "analytic-pooled"


def draws_per_group(n: int, shares: np.ndarray) -> np.ndarray:
    """Fillers of each group in a watchlist of ``n``: ``round(n * w_g)``."""
    return np.round(int(n) * np.asarray(shares, dtype=np.float64)).astype(np.int64)


def within_fillers(n: int, sizes: np.ndarray, shares: np.ndarray) -> bool:
    """Whether a watchlist of ``n`` can be drawn from the fillers (every group's share fits)."""
    return bool(np.all(draws_per_group(n, shares) <= np.asarray(sizes)))


def _log_choose_ratio(total: np.ndarray, matched: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """log(C(total - matched, draws) / C(total, draws)); -inf where total - matched < draws."""
    from scipy.special import gammaln  # imported here: scipy is slow to import

    free = total - matched
    ok = free >= draws
    safe_free = np.where(ok, free, draws)
    out = (
        gammaln(safe_free + 1.0)
        - gammaln(safe_free - draws + 1.0)
        - gammaln(total + 1.0)
        + gammaln(total - draws + 1.0)
    )
    return np.where(ok, out, -np.inf)


def hypergeometric_fpir(
    counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int
) -> np.ndarray:
    """Per-search P(alert) on a watchlist of ``n`` fillers drawn without replacement.

    Parameters
    ----------
    counts : ndarray of shape (n_searches, n_groups, n_thresholds)
        Fillers of each group at or above each threshold, per search.
    sizes : ndarray of shape (n_groups,)
        Fillers in each group, F_g.
    shares : ndarray of shape (n_groups,)
        Each group's share of the watchlist (sum 1); group g contributes ``round(n w_g)``.
    n : int
        Watchlist size, with every ``round(n w_g) <= F_g``.

    Returns
    -------
    ndarray of shape (n_searches, n_thresholds)
        ``1 - prod_g C(F_g - c_g, d_g) / C(F_g, d_g)``.
    """
    draws = draws_per_group(n, shares).astype(np.float64)
    total = np.asarray(sizes, dtype=np.float64)
    logs = _log_choose_ratio(
        total[None, :, None], np.asarray(counts, dtype=np.float64), draws[None, :, None]
    )
    return -np.expm1(logs.sum(axis=1))


def plug_in_fpir(counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int) -> np.ndarray:
    """Per-search ``1 - prod_g (1 - c_g / F_g)^(n w_g)`` (each search keeps its own rate)."""
    fmr = np.asarray(counts, dtype=np.float64) / np.asarray(sizes, dtype=np.float64)[None, :, None]
    with np.errstate(divide="ignore"):
        log_no_match = np.log1p(-np.minimum(fmr, 1.0))
    exponent = (int(n) * np.asarray(shares, dtype=np.float64))[None, :, None]
    total = np.where(exponent > 0, exponent * log_no_match, 0.0).sum(axis=1)
    return -np.expm1(total)


def pooled_fpir(counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int) -> np.ndarray:
    """``1 - prod_g (1 - FMR_g)^(n w_g)`` with one pooled FMR per filler group, shape (n_thr,)."""
    c = np.asarray(counts, dtype=np.float64)
    fmr = c.sum(axis=0) / (c.shape[0] * np.asarray(sizes, dtype=np.float64)[:, None])
    with np.errstate(divide="ignore"):
        log_no_match = np.log1p(-np.minimum(fmr, 1.0))
    exponent = (int(n) * np.asarray(shares, dtype=np.float64))[:, None]
    return -np.expm1(np.where(exponent > 0, exponent * log_no_match, 0.0).sum(axis=0))


def per_search_fpir(
    counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int
) -> tuple[np.ndarray, str]:
    """Per-search P(alert) at watchlist size ``n`` and how it was made.

    Hypergeometric (unbiased) where the watchlist fits in the fillers; the per-person plug-in
    beyond, labelled ``"extrapolation x{n/F}"``.
    """
    if within_fillers(n, sizes, shares):
        return hypergeometric_fpir(counts, sizes, shares, n), "hypergeometric (exact for N <= F)"
    factor = int(n) / float(np.sum(sizes))
    return plug_in_fpir(counts, sizes, shares, n), f"extrapolation x{factor:.3g} (per-person model)"

