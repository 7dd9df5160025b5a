"""A model-based FPIR where the counts run out: a generalised Pareto tail of impostor scores.

At a high threshold few or no (search, filler) comparisons reach T, so the counts say little
about FMR(T), and beyond the fillers measured the watchlist-size scaling is only a range. In the
spirit of ISO/IEC 5152 (FMR at low rates), this module fits a **generalised Pareto
distribution** (GPD) to the impostor scores above a high threshold u (peaks over threshold:
for a wide class of score distributions, exceedances over a high u are close to GPD) and
extrapolates each search's false-match rate:

    FMR_i(T) = FMR_i(u) * S(T - u; xi, sigma),   T >= u,

with ``FMR_i(u)`` the search's own rate at u (people differ), seen through its count
``c_i(u)`` among the F fillers, and ``S`` the fitted GPD survival (one tail shape for everyone:
the model's assumption). Then ``FPIR(N, T) = mean_i E[1 - (1 - FMR_i(T))^N]`` at any N, the
expectation over a gamma distribution of the rates fitted to the counts (gamma-Poisson
empirical Bayes), because the plug-in ``c_i(u) / F`` is mostly 0 or 1 / F at a high u and the
concave map would be biased low.

The exceedances come from what the scoring kernel keeps per search: the top-k candidate scores
(:attr:`FillerCounts.top_scores`, fillers only). A search with more fillers above u than it
lists would lose its lowest exceedances, so u is chosen where the lists hold (almost) every
exceedance; the fit's diagnostics say how many exceedances there were and how complete.

This is a **model-based figure**, labelled so (:data:`TAIL_MODEL`), offered beside the
count-based scaling and never silently in its place. Its interval is a bootstrap over people
(refit per replicate), so it holds clustering by person but not model error; the diagnostics
(shape with interval, a Kolmogorov–Smirnov statistic, a threshold-stability table, a
mean-excess table and a QQ table) are there to judge the fit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lfr_eval.errors import ProtocolError
from lfr_eval.protocols._npl import FillerCounts

#: ``method`` of the model-based rows.
TAIL_MODEL = "gpd-tail-model (model-based: generalised Pareto tail of impostor scores)"
#: Exceedances captured by the top-k lists must be at least this share of those counted.
MIN_COMPLETENESS = 0.99

MSG_TOO_FEW = (
    "the tail model needs at least {need} impostor scores above a threshold where each "
    "search's top-{k} list holds (almost) every filler above it; the best threshold found "
    "({u}) gives {got}. Score with a larger top_k (run_npl_protocol(..., top_k=...)), more "
    "searches or more fillers, or give exceedance_threshold"
)
MSG_NO_TOP = (
    "the filler counts keep no top-k candidate scores: the tail model needs them (score again "
    "with top_k > 0)"
)


@dataclass(frozen=True)
class TailFit:
    """The GPD fit of impostor scores above u, with its diagnostics.

    Attributes
    ----------
    exceedance_threshold : float
        u, a similarity on the counts' grid.
    n_exceedances : int
        Impostor (search, filler) scores above u used in the fit.
    completeness : float
        Share of the comparisons counted above u that the top-k lists hold (>= 0.99 when u was
        chosen automatically).
    rate_at_u : float
        Pooled FMR at u (exceedances over comparisons).
    shape, scale : float
        GPD shape xi (negative: a bounded tail, as cosine similarity is) and scale sigma.
    shape_ci : tuple of float
        Person-bootstrap percentile interval of xi.
    ks_statistic, ks_pvalue : float
        Kolmogorov–Smirnov distance of the exceedances from the fitted GPD and its nominal
        p-value (optimistic: the parameters were fitted to the same data).
    stability : DataFrame
        Threshold choice: ``u``, ``n_exceedances``, ``completeness``, ``shape``,
        ``modified_scale`` (sigma - xi u: constant above a threshold where the GPD holds).
    mean_excess : DataFrame
        ``level``, ``n_above``, ``mean_excess`` (observed) and ``model`` ((sigma + xi (v - u))
        / (1 - xi)).
    qq : DataFrame
        ``probability``, ``empirical`` and ``model`` quantiles of the exceedances.
    confidence : float
    n_boot : int
    """

    exceedance_threshold: float
    n_exceedances: int
    completeness: float
    rate_at_u: float
    shape: float
    scale: float
    shape_ci: tuple[float, float]
    ks_statistic: float
    ks_pvalue: float
    stability: pd.DataFrame
    mean_excess: pd.DataFrame
    qq: pd.DataFrame
    confidence: float
    n_boot: int

    def survival(self, thresholds: ArrayLike) -> np.ndarray:
        """P(score >= T | score > u) under the fit, 1 at and below u."""
        from scipy import stats

        excess = np.asarray(thresholds, dtype=np.float64) - self.exceedance_threshold
        out = stats.genpareto.sf(np.maximum(excess, 0.0), self.shape, 0.0, self.scale)
        return np.where(excess <= 0, 1.0, out)

    def describe(self) -> str:
        return (
            f"GPD fit of {self.n_exceedances:,} impostor scores above u = "
            f"{self.exceedance_threshold:g} ({self.completeness:.1%} of those counted): shape "
            f"xi = {self.shape:.3f} ({self.confidence:.0%} person-bootstrap "
            f"{self.shape_ci[0]:.3f} to {self.shape_ci[1]:.3f}), scale {self.scale:.4g}; "
            f"Kolmogorov-Smirnov D = {self.ks_statistic:.3f} (nominal p = {self.ks_pvalue:.2f})"
        )


@dataclass(frozen=True)
class TailModelScaling:
    """Model-based FPIR(N, T) from a GPD tail, beside the count-based figure.

    Attributes
    ----------
    fit : TailFit
    table : DataFrame
        ``method`` (:data:`TAIL_MODEL`), ``watchlist_size``, ``threshold``, ``fpir``,
        ``lower``, ``upper`` (person-bootstrap percentiles), ``interval``, ``count_based_fpir``
        (the scaling table's own estimate at that N and T, for comparison), ``n_searches``.
    """

    fit: TailFit
    table: pd.DataFrame


def _exceedances(fc: FillerCounts) -> tuple[np.ndarray, np.ndarray]:
    """Each search's listed filler scores (-inf elsewhere), shape (n, k), and its row index."""
    if fc.top_scores is None or fc.top_fillers is None or fc.top_scores.shape[1] == 0:
        raise ProtocolError(MSG_NO_TOP)
    scores = np.where(fc.top_fillers >= 0, fc.top_scores.astype(np.float64), -np.inf)
    return scores, np.arange(fc.n_searches)


def _total_counts(fc: FillerCounts) -> np.ndarray:
    """Per search, fillers at or above each grid threshold (summed over cells), (n, T)."""
    out = np.zeros((fc.n_searches, fc.n_thresholds), np.int64)
    for a, chunk in fc.row_chunks():
        out[a : a + len(chunk)] = chunk.sum(axis=1, dtype=np.int64)
    return out


def _people(fc: FillerCounts) -> list[np.ndarray]:
    """Row indices of each person's searches (the bootstrap's clusters)."""
    codes = np.unique(np.asarray(fc.search_subjects).astype(str), return_inverse=True)[1]
    codes = codes.reshape(-1)
    return [np.flatnonzero(codes == p) for p in range(int(codes.max()) + 1)] if len(codes) else []


def _person_refits(
    fc: FillerCounts, scores: np.ndarray, u: float, n_boot: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, tuple[float, float]]]:
    """Bootstrap over people: (rows drawn, GPD (shape, scale) refitted) per replicate; a
    replicate with fewer than 10 exceedances is skipped."""
    by_person = _people(fc)
    above = scores > u
    for _ in range(n_boot):
        pick = rng.integers(0, len(by_person), len(by_person))
        rows = np.concatenate([by_person[p] for p in pick])
        sample = scores[rows][above[rows]] - u
        if len(sample) >= 10:
            yield rows, _fit_gpd(sample)


def _fit_gpd(excess: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    shape, _, scale = stats.genpareto.fit(excess, floc=0.0)
    return float(shape), float(scale)


def _stability(
    scores: np.ndarray, counts: np.ndarray, grid: np.ndarray, candidates: np.ndarray
) -> pd.DataFrame:
    rows = []
    for t in candidates:
        above = scores[scores > grid[t]]
        counted = int(counts[:, t].sum())
        if len(above) < 10:
            continue
        shape, scale = _fit_gpd(above - grid[t])
        rows.append(
            (float(grid[t]), len(above), len(above) / max(counted, 1), shape,
             scale - shape * float(grid[t]))
        )  # fmt: skip
    return pd.DataFrame(
        rows, columns=["u", "n_exceedances", "completeness", "shape", "modified_scale"]
    )


def fit_tail(
    filler_counts: FillerCounts,
    *,
    exceedance_threshold: float | None = None,
    min_exceedances: int = 200,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> TailFit:
    """Fit the GPD tail of the impostor (search, filler) scores (see the module notes).

    Parameters
    ----------
    filler_counts : FillerCounts
        With top-k candidate scores.
    exceedance_threshold : float, optional
        u, on the counts' grid. Default: the highest grid threshold with at least
        ``min_exceedances`` listed exceedances and lists at least :data:`MIN_COMPLETENESS`
        complete.
    min_exceedances : int
    n_boot : int
        Person-bootstrap replicates for the shape's interval.
    confidence : float
    seed : int

    Raises
    ------
    ProtocolError
        No top-k scores, or too few exceedances (the message says what data would do).
    """
    from scipy import stats

    scores, _ = _exceedances(filler_counts)
    counts = _total_counts(filler_counts)
    grid = filler_counts.thresholds
    listed = np.stack([(scores >= g).sum(axis=1) for g in grid], axis=1)  # (n, T)
    complete = listed.sum(axis=0) / np.maximum(counts.sum(axis=0), 1)
    n_listed = listed.sum(axis=0)
    if exceedance_threshold is None:
        ok = np.flatnonzero((complete >= MIN_COMPLETENESS) & (n_listed >= min_exceedances))
        if len(ok) == 0:
            best = int(np.argmax(np.where(complete >= MIN_COMPLETENESS, n_listed, -1)))
            raise ProtocolError(
                MSG_TOO_FEW.format(
                    need=min_exceedances, k=scores.shape[1], u=f"{grid[best]:g}",
                    got=int(n_listed[best]),
                )
            )  # fmt: skip
        t_u = int(ok.max())
    else:
        t_u = int(filler_counts.threshold_index([exceedance_threshold])[0])
    u = float(grid[t_u])
    above = scores > u
    excess = scores[above] - u
    if len(excess) < 10:
        raise ProtocolError(
            MSG_TOO_FEW.format(need=10, k=scores.shape[1], u=f"{u:g}", got=len(excess))
        )
    shape, scale = _fit_gpd(excess)
    ks = stats.kstest(excess, stats.genpareto(shape, 0.0, scale).cdf)
    # shape interval: resample people, refit
    rng = np.random.default_rng(seed)
    shapes = [fit[0] for _, fit in _person_refits(filler_counts, scores, u, n_boot, rng)]
    alpha = (1 - confidence) / 2
    shape_ci = (
        (float(np.quantile(shapes, alpha)), float(np.quantile(shapes, 1 - alpha)))
        if shapes
        else (float("nan"), float("nan"))
    )
    levels = np.quantile(excess, [0.0, 0.25, 0.5, 0.75, 0.9]) + u
    me_rows = []
    for v in levels:
        over = excess[excess > v - u] - (v - u)
        if len(over):
            model = (scale + shape * (v - u)) / (1 - shape) if shape < 1 else float("nan")
            me_rows.append((float(v), len(over), float(over.mean()), float(model)))
    mean_excess = pd.DataFrame(me_rows, columns=["level", "n_above", "mean_excess", "model"])
    probs = np.array([0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99])
    qq = pd.DataFrame(
        {
            "probability": probs,
            "empirical": np.quantile(excess, probs) + u,
            "model": stats.genpareto.ppf(probs, shape, 0.0, scale) + u,
        }
    )
    candidates = np.flatnonzero((complete >= MIN_COMPLETENESS) & (n_listed >= 10))
    candidates = candidates[candidates <= t_u + 10][-12:]
    comparisons = int(filler_counts.scored.sum()) * filler_counts.n_fillers
    return TailFit(
        exceedance_threshold=u,
        n_exceedances=len(excess),
        completeness=float(complete[t_u]),
        rate_at_u=float(counts[:, t_u].sum() / max(comparisons, 1)),
        shape=shape,
        scale=scale,
        shape_ci=shape_ci,
        ks_statistic=float(ks.statistic),
        ks_pvalue=float(ks.pvalue),
        stability=_stability(scores, counts, grid, candidates),
        mean_excess=mean_excess,
        qq=qq,
        confidence=float(confidence),
        n_boot=int(n_boot),
    )


def _tail_fpir(
    counts_u: np.ndarray, n_fillers: int, survival: np.ndarray, sizes: Sequence[int]
) -> np.ndarray:
    """``mean_i E[1 - (1 - r_i S(T))^N]``, shape (n_sizes, n_thresholds).

    Each search's rate at u, r_i, is seen only through ``c_i ~ Poisson(F r_i)``, which is
    mostly 0 or 1 at a high u: plugging ``c_i / F`` into the concave ``1 - (1 - r S)^N`` is
    biased low (Jensen) as soon as N r S is not small. So the rates get a gamma distribution
    fitted by moments to the counts (the over-dispersion beyond Poisson is the spread between
    searches; none: one pooled rate), and each search's expectation is taken over its gamma
    posterior, ``1 - (b_i / (b_i + N S))^(a_i)`` with ``a_i = a + c_i``, ``b_i = b + F``
    (``(1 - x)^N`` read as ``exp(-N x)``, exact to O(x) for the small rates of a tail).
    """
    c = np.asarray(counts_u, dtype=np.float64)
    f = float(n_fillers)
    mean = c.mean() / f
    between = (c.var() - c.mean()) / f**2 if len(c) > 1 else 0.0
    out = []
    for n in sizes:
        load = int(n) * np.asarray(survival, dtype=np.float64)[None, :]  # N S(T), (1, T)
        if mean <= 0:
            out.append(np.zeros(load.shape[1]))
        elif between <= 1e-12 * mean**2:
            out.append(-np.expm1(-load[0] * mean))
        else:
            a, b = mean**2 / between, mean / between
            post_a, post_b = (a + c)[:, None], b + f
            out.append((-np.expm1(post_a * np.log(post_b / (post_b + load)))).mean(axis=0))
    return np.stack(out)


def tail_model_fpir(
    filler_counts: FillerCounts,
    watchlist_sizes: Sequence[int],
    thresholds: ArrayLike,
    *,
    exceedance_threshold: float | None = None,
    min_exceedances: int = 200,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> TailModelScaling:
    """Model-based FPIR(N, T) from a GPD tail of impostor scores (see the module notes).

    Parameters
    ----------
    filler_counts : FillerCounts
    watchlist_sizes : sequence of int
        N, any size (the model is not limited to the fillers measured).
    thresholds : array_like
        Similarities at or above the fitted u (others are left out: below u use the counts).
    exceedance_threshold, min_exceedances : optional
        See :func:`fit_tail`.
    n_boot : int
        Person-bootstrap replicates (refit and recompute per replicate) for the interval.
    confidence : float
    seed : int

    Returns
    -------
    TailModelScaling
    """
    from lfr_eval.protocols._npl import scale_fpir

    fit = fit_tail(
        filler_counts, exceedance_threshold=exceedance_threshold,
        min_exceedances=min_exceedances, n_boot=n_boot, confidence=confidence, seed=seed,
    )  # fmt: skip
    thr = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    thr = thr[thr >= fit.exceedance_threshold - 1e-9]
    if len(thr) == 0:
        raise ProtocolError(
            f"the tail model holds above u = {fit.exceedance_threshold:g}; no threshold asked "
            "is that high (below u, the count-based scaling applies)"
        )
    scores, _ = _exceedances(filler_counts)
    u = fit.exceedance_threshold
    f = filler_counts.n_fillers
    counts_u = _total_counts(filler_counts)[:, filler_counts.threshold_index([u])[0]]
    point = _tail_fpir(counts_u, f, fit.survival(thr), watchlist_sizes)
    # person bootstrap: resample people, refit the tail, recompute FPIR
    from scipy import stats

    rng = np.random.default_rng(seed + 1)
    reps = []
    for rows, (shape, scale) in _person_refits(filler_counts, scores, u, n_boot, rng):
        surv = stats.genpareto.sf(thr - u, shape, 0.0, scale)
        reps.append(_tail_fpir(counts_u[rows], f, surv, watchlist_sizes))
    alpha = (1 - confidence) / 2
    if reps:
        stack = np.stack(reps)
        lower, upper = np.quantile(stack, alpha, axis=0), np.quantile(stack, 1 - alpha, axis=0)
    else:
        lower = upper = np.full_like(point, np.nan)
    grid_thr = [t for t in thr if np.any(np.abs(filler_counts.thresholds - t) < 1e-9)]
    counted = (
        scale_fpir(filler_counts, watchlist_sizes, grid_thr, interval="none").table
        if grid_thr
        else None
    )
    how = (
        f"person bootstrap percentile ({n_boot} refits, {confidence:.0%}; model error not "
        "included)"
    )
    out: list[tuple[object, ...]] = []
    for a, n in enumerate(watchlist_sizes):
        for b, t in enumerate(thr):
            count_based = np.nan
            if counted is not None:
                hit = counted[
                    (counted["method"] == "analytic")
                    & (counted["watchlist_size"] == int(n))
                    & np.isclose(counted["threshold"], t, rtol=0, atol=1e-9)
                ]
                count_based = float(hit["fpir"].iloc[0]) if len(hit) else np.nan
            out.append(
                (TAIL_MODEL, int(n), float(t), float(point[a, b]), float(lower[a, b]),
                 float(upper[a, b]), how, count_based, filler_counts.n_searches)
            )  # fmt: skip
    table = pd.DataFrame(
        out,
        columns=["method", "watchlist_size", "threshold", "fpir", "lower", "upper", "interval",
                 "count_based_fpir", "n_searches"],
    )  # fmt: skip
    return TailModelScaling(fit=fit, table=table)
