"""Seeded simulations with known truth: how well the workbench's statistics hold under clustering.

Real LFR test data cluster by person (the NPL design: about 400 volunteers × 10 passes). These
simulations draw data sets whose true error rate is known and count how often an interval
covers it, how often a false claim is called "supported", and how often a group test rejects
equal rates. They back the method choices of :mod:`lfr_eval.metrics` and :mod:`lfr_eval.claims`;
``tests/test_stats_simulation.py`` runs a small subset in CI and
``benchmarks/bench_stats_grid.py`` the full grid.

The model: person i has error rate ``p_i ~ Beta(a, b)`` with mean ``rate`` and intra-person
correlation ``icc = 1 / (a + b + 1)`` (0: every person has the same rate and searches are
independent), and ``e_i ~ Binomial(n_i, p_i)`` errors in ``n_i`` searches. ``n_i`` is the same
for everyone or, with ``unequal=True``, varies (1 + Poisson with a gamma-distributed mean,
coefficient of variation about 0.7) as crowd tracking gives some faces many captures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from lfr_eval.metrics._clustered import (
    SMALL_SAMPLE_RULES_COMPARED,
    ClusterSummary,
    SmallSampleRule,
    design_effect_interval,
    design_effect_jeffreys,
    design_effect_jeffreys_from_summary,
    korn_graubard,
    korn_graubard_from_summary,
    summarise_clusters,
)
from lfr_eval.metrics._intervals import clopper_pearson


@dataclass(frozen=True)
class ClusterDesign:
    """One cell of the simulation grid.

    Attributes
    ----------
    n_people : int
        People (clusters), >= 1.
    searches_per_person : float
        Mean searches per person, >= 1.
    icc : float
        Intra-person correlation of errors in [0, 1).
    rate : float
        True (search-weighted) error rate in (0, 1).
    unequal : bool
        Searches per person vary between people.
    """

    n_people: int
    searches_per_person: float
    icc: float
    rate: float
    unequal: bool = False

    def __post_init__(self) -> None:
        if self.n_people < 1 or self.searches_per_person < 1:
            raise ValueError("a design needs at least one person and one search per person")
        if not 0 <= self.icc < 1 or not 0 < self.rate < 1:
            raise ValueError("icc must be in [0, 1) and rate in (0, 1)")

    @property
    def expected_errors(self) -> float:
        return self.n_people * self.searches_per_person * self.rate


def draw_trials(design: ClusterDesign, rng: np.random.Generator) -> np.ndarray:
    """Searches per person, shape (n_people,), each >= 1."""
    m = design.searches_per_person
    if not design.unequal or m <= 1:
        return np.full(design.n_people, max(1, round(m)), np.int64)
    means = rng.gamma(2.0, (m - 1) / 2.0, size=design.n_people)
    return 1 + rng.poisson(means).astype(np.int64)


def draw_person_rates(
    design: ClusterDesign, size: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Per-person error rates with mean ``design.rate`` and correlation ``design.icc``."""
    if design.icc == 0:
        return np.full(size, design.rate)
    scale = (1 - design.icc) / design.icc
    return rng.beta(design.rate * scale, (1 - design.rate) * scale, size=size)


def draw_errors(
    design: ClusterDesign, trials: np.ndarray, n_datasets: int, rng: np.random.Generator
) -> np.ndarray:
    """Errors of each person in each of ``n_datasets`` data sets, shape (n_people, n_datasets)."""
    p = draw_person_rates(design, (trials.shape[0], n_datasets), rng)
    return rng.binomial(trials[:, None], p)


def draw_batches(
    design: ClusterDesign, n_datasets: int, batches: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(trials (s,), errors (s, size))`` for ``n_datasets`` data sets in ``batches`` batches;
    the searches per person are redrawn for each batch."""
    sizes = np.diff(np.linspace(0, n_datasets, batches + 1).astype(int))
    for size in sizes:
        if size == 0:
            continue
        trials = draw_trials(design, rng)
        yield trials, draw_errors(design, trials, int(size), rng)


#: ``interval(errors (s, R), trials (s,), confidence, sided) -> (low (R,), high (R,))``
IntervalFunction = Callable[[np.ndarray, np.ndarray, float, str], tuple[np.ndarray, np.ndarray]]


def design_effect_jeffreys_interval(
    errors: np.ndarray, trials: np.ndarray, confidence: float, sided: str
) -> tuple[np.ndarray, np.ndarray]:
    """The workbench default for rates (:func:`lfr_eval.metrics.design_effect_jeffreys`)."""
    r = design_effect_jeffreys(errors, trials, confidence, sided=sided)
    return r.ci_low, r.ci_high


def korn_graubard_interval(
    errors: np.ndarray, trials: np.ndarray, confidence: float, sided: str
) -> tuple[np.ndarray, np.ndarray]:
    """The exact clustered interval claims use (:func:`lfr_eval.metrics.korn_graubard`)."""
    r = korn_graubard(errors, trials, confidence, sided=sided)
    return r.ci_low, r.ci_high


def independent_clopper_pearson(
    errors: np.ndarray, trials: np.ndarray, confidence: float, sided: str
) -> tuple[np.ndarray, np.ndarray]:
    """Clopper–Pearson over searches (ignores clustering), for comparison."""
    return clopper_pearson(errors.sum(axis=0), trials.sum(), confidence, sided=sided)  # type: ignore[arg-type]


def _jeffreys_variant(rule: SmallSampleRule) -> IntervalFunction:
    """The design-effect Jeffreys interval with another small-sample rule (for the grid)."""

    def interval(
        errors: np.ndarray, trials: np.ndarray, confidence: float, sided: str
    ) -> tuple[np.ndarray, np.ndarray]:
        r = design_effect_jeffreys_from_summary(
            summarise_clusters(errors, trials), confidence, sided=sided, small_sample=rule
        )
        return r.ci_low, r.ci_high

    return interval


def _plain_korn_graubard(
    errors: np.ndarray, trials: np.ndarray, confidence: float, sided: str
) -> tuple[np.ndarray, np.ndarray]:
    """Korn–Graubard with the one-sided bound *not* made monotone in the errors (the bound
    before :func:`lfr_eval.metrics.monotone_upper_bound`), for comparison on the grid."""
    r = design_effect_interval(summarise_clusters(errors, trials), confidence, sided=sided)
    return r.ci_low, r.ci_high


def _jeffreys_monotone_upper(
    errors: np.ndarray, trials: np.ndarray, confidence: float, sided: str
) -> tuple[np.ndarray, np.ndarray]:
    """The default with its two-sided upper end monotone in the errors (compared on the grid)."""
    r = design_effect_jeffreys_from_summary(
        summarise_clusters(errors, trials), confidence, sided=sided, monotone_upper=True
    )
    return r.ci_low, r.ci_high


#: Name of the default with a monotone two-sided upper end, on the grid.
MONOTONE_UPPER_END = "design-effect-jeffreys [monotone upper end]"
#: Name of the plain (not monotone) Korn–Graubard one-sided bound, on the grid.
PLAIN_KORN_GRAUBARD = "korn-graubard [not monotone]"

INTERVALS: dict[str, IntervalFunction] = {
    "design-effect-jeffreys": design_effect_jeffreys_interval,
    **{
        f"design-effect-jeffreys [{name}]": _jeffreys_variant(rule)
        for name, rule in SMALL_SAMPLE_RULES_COMPARED.items()
    },
    MONOTONE_UPPER_END: _jeffreys_monotone_upper,
    "korn-graubard": korn_graubard_interval,
    PLAIN_KORN_GRAUBARD: _plain_korn_graubard,
    "clopper-pearson (independence)": independent_clopper_pearson,
}


#: ``interval(summary, confidence, sided) -> (low (R,), high (R,))``: the same interval as the
#: method of :data:`INTERVALS` with that name, from the clustered sufficient statistics of R data
#: sets (:func:`lfr_eval.metrics.summarise_clusters`), so a summary is made once per batch.
SummaryInterval = Callable[[ClusterSummary, float, str], tuple[np.ndarray, np.ndarray]]


def _jeffreys_from_summary(
    rule: SmallSampleRule | None = None, *, monotone_upper: bool = False
) -> SummaryInterval:
    def interval(
        summary: ClusterSummary, confidence: float, sided: str
    ) -> tuple[np.ndarray, np.ndarray]:
        if rule is None:
            r = design_effect_jeffreys_from_summary(
                summary, confidence, sided=sided, monotone_upper=monotone_upper
            )
        else:
            r = design_effect_jeffreys_from_summary(
                summary, confidence, sided=sided, small_sample=rule, monotone_upper=monotone_upper
            )
        return r.ci_low, r.ci_high

    return interval


def _korn_graubard_from_summary(
    summary: ClusterSummary, confidence: float, sided: str
) -> tuple[np.ndarray, np.ndarray]:
    r = korn_graubard_from_summary(summary, confidence, sided=sided)
    return r.ci_low, r.ci_high


def _plain_korn_graubard_from_summary(
    summary: ClusterSummary, confidence: float, sided: str
) -> tuple[np.ndarray, np.ndarray]:
    r = design_effect_interval(summary, confidence, sided=sided)
    return r.ci_low, r.ci_high


def _independent_from_summary(
    summary: ClusterSummary, confidence: float, sided: str
) -> tuple[np.ndarray, np.ndarray]:
    # the summary's error sums are float64 sums of integers: exact, so the counts are the same
    errors = np.rint(summary.errors).astype(np.int64)
    return clopper_pearson(errors, int(round(summary.trials)), confidence, sided=sided)  # type: ignore[arg-type]


#: The methods of :data:`INTERVALS` from clustered summaries, by the same names.
SUMMARY_INTERVALS: dict[str, SummaryInterval] = {
    "design-effect-jeffreys": _jeffreys_from_summary(),
    **{
        f"design-effect-jeffreys [{name}]": _jeffreys_from_summary(rule)
        for name, rule in SMALL_SAMPLE_RULES_COMPARED.items()
    },
    MONOTONE_UPPER_END: _jeffreys_from_summary(monotone_upper=True),
    "korn-graubard": _korn_graubard_from_summary,
    PLAIN_KORN_GRAUBARD: _plain_korn_graubard_from_summary,
    "clopper-pearson (independence)": _independent_from_summary,
}
#: Methods whose one-sided upper bound *is* another method's, by that method's name: every
#: design-effect Jeffreys variant's one-sided bound is the exact Korn–Graubard envelope
#: (:func:`lfr_eval.metrics.design_effect_jeffreys_from_summary`), the costly part of a grid
#: cell, so :func:`interval_coverages` computes it once per batch for all of them.
SHARED_UPPER_BOUND: dict[str, str] = {
    name: "korn-graubard" for name in SUMMARY_INTERVALS if name.startswith("design-effect-")
}


@dataclass(frozen=True)
class CoverageResult:
    """Measured coverage of one interval method in one design.

    Attributes
    ----------
    design : ClusterDesign
    method : str
    n_datasets : int
    two_sided : float
        Share of data sets whose two-sided interval holds the true rate.
    upper : float
        Share whose one-sided upper bound is at or above the true rate.
    miss_below, miss_above : float
        Two-sided misses with the truth below the interval / above it.
    median_relative_width : float
        Median of (high - low) / rate of the two-sided interval.
    no_errors : float
        Share of data sets with no error at all. Any interval that keeps the one-sided
        guarantee must reach above the true rate there (its upper end is then about 3 / people
        or more), so two-sided coverage is at least this share for every such method: above
        0.97 the 0.93-0.97 band is out of reach by discreteness alone.
    people_with_errors : float
        Mean number of people with at least one error per data set: the information about
        the between-person spread (with strong clustering, many errors can sit in very few
        people, and the interval then rests on those few).
    """

    design: ClusterDesign
    method: str
    n_datasets: int
    two_sided: float
    upper: float
    miss_below: float
    miss_above: float
    median_relative_width: float
    no_errors: float = float("nan")
    people_with_errors: float = float("nan")

    def standard_error(self, coverage: float = 0.95) -> float:
        """Monte-Carlo standard error of a coverage estimate near ``coverage``."""
        return float(np.sqrt(coverage * (1 - coverage) / self.n_datasets))


#: Share of people who are lambs, and their rate relative to the others (:func:`draw_lambs`).
LAMB_SHARE, LAMB_FACTOR = 0.05, 20.0


def draw_lambs(
    people: int, searches: int, rate: float, n: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Data sets of the "lambs" model (Doddington et al. 1998): 5% of people draw false matches
    20 times as often as the others, a two-point person model off the beta-binomial grid.

    Mean rate ``rate`` (0-1); searches per person 1 + Poisson(Gamma(2, (searches - 1) / 2)),
    redrawn for each of 8 batches of ``n // 8`` data sets (as the grid's unequal designs).
    Yields ``(trials (s,), errors (s, n // 8), lamb (s, n // 8) bool)`` per batch.

    Raises
    ------
    ValueError
        ``rate`` would give the lambs a rate above 1 (``rate > 0.0975``), or is not positive, or
        ``people``, ``searches`` or ``n // 8`` is below 1.
    """
    base = rate / (1 - LAMB_SHARE + LAMB_SHARE * LAMB_FACTOR)
    if not rate > 0 or LAMB_FACTOR * base > 1:
        top = (1 - LAMB_SHARE + LAMB_SHARE * LAMB_FACTOR) / LAMB_FACTOR
        raise ValueError(
            f"lambs model: the mean rate must be in (0, {top:g}] so that the lambs' rate "
            f"({LAMB_FACTOR:g} times the others') is at most 1; got {rate!r}"
        )
    if people < 1 or searches < 1 or n // 8 < 1:
        raise ValueError(
            f"lambs model needs people >= 1, searches >= 1 and n >= 8 data sets; got "
            f"people={people}, searches={searches}, n={n}"
        )
    rng = np.random.default_rng(seed)
    for _ in range(8):
        trials = 1 + rng.poisson(rng.gamma(2.0, (searches - 1) / 2.0, people))
        lamb = rng.random((people, n // 8)) < LAMB_SHARE
        errors = rng.binomial(trials[:, None], np.where(lamb, LAMB_FACTOR * base, base))
        yield trials, errors, lamb


def lambs_coverage(
    method: str, people: int, searches: int, rate: float, n: int, seed: int
) -> float:
    """Two-sided 95% coverage of the interval ``method`` (a key of :data:`INTERVALS`) in the
    lambs model (:func:`draw_lambs`, whose arguments these are). Returns a share in [0, 1]."""
    inside = 0
    for trials, errors, _ in draw_lambs(people, searches, rate, n, seed):
        low, high = INTERVALS[method](errors, trials, 0.95, "two-sided")
        inside += int(np.count_nonzero((low <= rate) & (rate <= high)))
    return inside / (n // 8 * 8)


#: The kinds of lambs data set :func:`lambs_misses` splits the misses by.
LAMB_KINDS = (
    "no lamb among the people",
    "lambs, none with 2+ errors",
    "one lamb with 2+ errors",
    "two or more lambs with 2+ errors",
)


@dataclass(frozen=True)
class LambsMisses:
    """Where a two-sided interval misses in the lambs model, by what the data show of lambs.

    Attributes
    ----------
    method : str
    n_datasets : int
    coverage, miss_above, miss_below : float
        Shares of all data sets.
    share : dict of str to float
        Share of data sets of each kind (:data:`LAMB_KINDS`): no lamb among the people; lambs
        but none with 2 or more errors (they look like everyone else); one lamb with 2 or more
        errors; two or more.
    miss_above_in : dict of str to float
        Share of the data sets of that kind whose upper end is below the true rate.
    median_design_effect, median_carriers : dict of str to float
        Medians over the data sets of that kind of the estimated design effect and of the
        number of people carrying the variance (degrees of freedom + 1) the interval uses.
    """

    method: str
    n_datasets: int
    coverage: float
    miss_above: float
    miss_below: float
    share: dict[str, float]
    miss_above_in: dict[str, float]
    median_design_effect: dict[str, float]
    median_carriers: dict[str, float]


def lambs_misses(
    method: str, people: int, searches: int, rate: float, n: int, seed: int
) -> LambsMisses:
    """:func:`lambs_coverage`'s data sets (the same draws), with the misses above the upper end
    split by what the data show of lambs (:class:`LambsMisses`): whether a data-driven upper
    end *could* see the heterogeneity it misses."""
    kinds: list[np.ndarray] = []
    above, below, deff, carriers = [], [], [], []
    for trials, errors, lamb in draw_lambs(people, searches, rate, n, seed):
        low, high = INTERVALS[method](errors, trials, 0.95, "two-sided")
        above.append(high < rate)
        below.append(low > rate)
        present = lamb.sum(axis=0)
        seen = (lamb & (errors >= 2)).sum(axis=0)
        kinds.append(np.select([present == 0, seen == 0, seen == 1], [0, 1, 2], 3))
        s = summarise_clusters(errors, trials)
        r = design_effect_interval(s)
        deff.append(r.design_effect)
        carriers.append(s.df + 1.0)
    kind, up, down = np.concatenate(kinds), np.concatenate(above), np.concatenate(below)
    d, c = np.concatenate(deff), np.concatenate(carriers)
    share, miss, med_d, med_c = {}, {}, {}, {}
    for j, name in enumerate(LAMB_KINDS):
        sel = kind == j
        share[name] = float(sel.mean())
        nan = float("nan")
        miss[name] = float(up[sel].mean()) if sel.any() else nan
        finite = sel & np.isfinite(d)
        med_d[name] = float(np.median(d[finite])) if finite.any() else nan
        med_c[name] = float(np.median(c[sel])) if sel.any() else nan
    return LambsMisses(
        method,
        int(kind.size),
        float(1 - up.mean() - down.mean()),
        float(up.mean()),
        float(down.mean()),
        share,
        miss,
        med_d,
        med_c,
    )


def interval_coverage(
    design: ClusterDesign,
    method: str = "design-effect-jeffreys",
    *,
    n_datasets: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    batches: int = 8,
) -> CoverageResult:
    """Coverage of ``method`` (a key of :data:`INTERVALS`) over simulated data sets.

    The searches per person are redrawn for each of ``batches`` batches of data sets.
    """
    interval = INTERVALS[method]
    rng = np.random.default_rng(seed)
    inside = upper_ok = below = above = none = carriers = 0
    widths = []
    for trials, errors in draw_batches(design, n_datasets, batches, rng):
        none += int(np.count_nonzero(errors.sum(axis=0) == 0))
        carriers += int(np.count_nonzero(errors))
        low, high = interval(errors, trials, confidence, "two-sided")
        _, ub = interval(errors, trials, confidence, "upper")
        p = design.rate
        inside += int(np.count_nonzero((low <= p) & (p <= high)))
        below += int(np.count_nonzero(p < low))
        above += int(np.count_nonzero(p > high))
        upper_ok += int(np.count_nonzero(p <= ub))
        widths.append((high - low) / p)
    return CoverageResult(
        design=design,
        method=method,
        n_datasets=n_datasets,
        two_sided=inside / n_datasets,
        upper=upper_ok / n_datasets,
        miss_below=below / n_datasets,
        miss_above=above / n_datasets,
        median_relative_width=float(np.median(np.concatenate(widths))),
        no_errors=none / n_datasets,
        people_with_errors=carriers / n_datasets,
    )


def interval_coverages(
    design: ClusterDesign,
    methods: tuple[str, ...] = ("design-effect-jeffreys",),
    *,
    n_datasets: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    batches: int = 8,
    upper: bool = True,
) -> dict[str, CoverageResult]:
    """:func:`interval_coverage` of several methods on the same data sets, by method name.

    The data sets are those :func:`interval_coverage` draws with the same ``seed`` and
    ``batches``, and each method's result equals its result there. What is shared is computed
    once per batch: the clustered summary of the data sets and each one-sided upper bound that
    several methods have in common (:data:`SHARED_UPPER_BOUND`: the Korn–Graubard envelope of
    every design-effect Jeffreys variant), so a grid cell costs one envelope, not one per
    method. ``methods`` are keys of :data:`SUMMARY_INTERVALS` (all of :data:`INTERVALS`).
    ``upper=False``: no one-sided bound is computed and ``CoverageResult.upper`` is NaN (the
    two-sided columns cost a small part of a cell).
    """
    unknown = [m for m in methods if m not in SUMMARY_INTERVALS]
    if unknown:
        raise KeyError(f"unknown interval methods {unknown}; known: {sorted(SUMMARY_INTERVALS)}")
    rng = np.random.default_rng(seed)
    p = design.rate
    counts = {m: np.zeros(4, np.int64) for m in methods}  # inside, below, above, upper_ok
    widths: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    none = carriers = 0
    for trials, errors in draw_batches(design, n_datasets, batches, rng):
        none += int(np.count_nonzero(errors.sum(axis=0) == 0))
        carriers += int(np.count_nonzero(errors))
        summary = summarise_clusters(errors, trials)
        uppers: dict[str, np.ndarray] = {}
        for method in methods:
            low, high = SUMMARY_INTERVALS[method](summary, confidence, "two-sided")
            key = SHARED_UPPER_BOUND.get(method, method)
            if upper and key not in uppers:
                uppers[key] = SUMMARY_INTERVALS[key](summary, confidence, "upper")[1]
            counts[method] += np.array(
                [
                    np.count_nonzero((low <= p) & (p <= high)),
                    np.count_nonzero(p < low),
                    np.count_nonzero(p > high),
                    np.count_nonzero(p <= uppers[key]) if upper else 0,
                ],
                dtype=np.int64,
            )
            widths[method].append((high - low) / p)
    return {
        method: CoverageResult(
            design=design,
            method=method,
            n_datasets=n_datasets,
            two_sided=int(c[0]) / n_datasets,
            upper=int(c[3]) / n_datasets if upper else float("nan"),
            miss_below=int(c[1]) / n_datasets,
            miss_above=int(c[2]) / n_datasets,
            median_relative_width=float(np.median(np.concatenate(widths[method]))),
            no_errors=none / n_datasets,
            people_with_errors=carriers / n_datasets,
        )
        for method, c in counts.items()
    }


@dataclass(frozen=True)
class ClaimSupportResult:
    """How often "FPIR <= bound" is called supported when the true FPIR is ``design.rate``.

    With ``design.rate >= bound`` every "supported" is a false verdict (the false-support
    rate, to be <= 1 - confidence); with ``design.rate < bound`` it is the power.
    """

    design: ClusterDesign
    bound: float
    method: str
    n_datasets: int
    supported: float


def claim_support_rate(
    design: ClusterDesign,
    bound: float,
    method: str = "korn-graubard",
    *,
    n_datasets: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    batches: int = 8,
) -> ClaimSupportResult:
    """Share of simulated data sets in which the claim checker's one-sided bound is <= ``bound``.

    ``method="korn-graubard"`` is the bound :func:`lfr_eval.claims.check_fpir_claim` uses with
    subject ids (:func:`lfr_eval.claims.fpir_upper_bound`); ``"clopper-pearson
    (independence)"`` the search-level bound it used before.
    """
    interval = INTERVALS[method]
    rng = np.random.default_rng(seed)
    supported = 0
    for trials, errors in draw_batches(design, n_datasets, batches, rng):
        _, upper = interval(errors, trials, confidence, "upper")
        supported += int(np.count_nonzero(upper <= bound))
    return ClaimSupportResult(design, bound, method, n_datasets, supported / n_datasets)


@dataclass(frozen=True)
class GroupTestResultSim:
    """How often the group comparison calls some pair of groups different.

    With equal true rates this is the family-wise false-positive rate (size, to be 0.03–0.07
    at a nominal 5%); with unequal rates it is the power to detect a difference, and
    ``extreme_pair`` the share of data sets where the highest-vs-lowest pair is called different.
    ``ratio_excludes_one`` is the share of data sets in which some group's interval of its
    ratio to the lowest group (:func:`lfr_eval.metrics.simultaneous_ratio_intervals`, as
    :meth:`IdentificationFrame.ratio` gives it) excludes 1:
    a false "differs" with equal rates, power otherwise. ``overall_ratio_excludes_one``: the
    same for the intervals of each group's ratio to the overall rate
    (:func:`lfr_eval.metrics.simultaneous_ratio_to_overall`).
    """

    designs: tuple[ClusterDesign, ...]
    n_datasets: int
    any_pair: float
    extreme_pair: float
    ratio_excludes_one: float = float("nan")
    overall_ratio_excludes_one: float = float("nan")


#: The group tests :func:`group_test_rejection` runs by name (the first is its default).
GROUP_TESTS = ("bootstrap", "permutation", "rao-scott")


def group_test_rejection(
    designs: list[ClusterDesign],
    *,
    n_datasets: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    test: str | None = "bootstrap",
    n_permutations: int = 199,
    ratios: bool = True,
    pooled_rate: str = "all",
    n_replicates: int | None = None,
) -> GroupTestResultSim:
    """Rejection rates of a many-group comparison over simulated groups.

    Each design is one group (its own people, searches per person, clustering and rate), so
    groups can differ in searches per person, as crowd captures do. The tests by name
    (:data:`GROUP_TESTS`): ``"bootstrap"`` (default):
    :func:`lfr_eval.metrics.bootstrap_compare_groups` (the parametric null bootstrap-t over
    people that :meth:`IdentificationFrame.compare_groups` and the demographic page run on
    per-person data, and on an aggregate from its sums over people,
    :func:`lfr_eval.metrics.bootstrap_compare_groups_from_sums`, with the same p-values);
    ``"permutation"``: :func:`lfr_eval.metrics.permutation_compare_groups`
    (the studentized permutation test over people, by name); ``"rao-scott"``:
    :func:`lfr_eval.metrics.compare_group_rates` (from clustered summaries only, as the
    demographic page runs it on an aggregate written before the sums were kept); ``None``: no
    test, only the ratios
    (``any_pair`` and ``extreme_pair`` are then NaN). ``n_permutations`` (relabellings) and
    ``n_replicates`` (bootstrap replicates, default ``n_permutations``) of 199 give an exact
    5% level (10 / 200) at a fraction of the defaults' cost. ``ratios``: also measure the
    simultaneous ratio-to-lowest and ratio-to-overall intervals. ``pooled_rate``: the Rao–Scott
    test's ``pooled_rate`` (``"all"``, its default, or ``"pair"``).
    """
    from lfr_eval.metrics._clustered import summarise_clusters
    from lfr_eval.metrics._group_tests import (
        bootstrap_compare_groups,
        compare_group_rates,
        permutation_compare_groups,
        simultaneous_ratio_intervals,
        simultaneous_ratio_to_overall,
    )

    if test not in (*GROUP_TESTS, None):
        raise ValueError(f"test must be one of {GROUP_TESTS} or None, got {test!r}")
    if test is None and not ratios:
        raise ValueError("nothing to measure: no test and no ratios")
    rng = np.random.default_rng(seed)
    summaries, per_person = [], []
    for design in designs:
        trials = draw_trials(design, rng)
        errors = draw_errors(design, trials, n_datasets, rng)
        per_person.append((trials, errors))
        summaries.append(summarise_clusters(errors, trials))
    any_pair = extreme = ratio_out = overall_out = 0
    for r in range(n_datasets):
        groups = {f"g{g}": s.column(r) for g, s in enumerate(summaries)}
        rates = {name: float(s.errors[0]) / s.trials for name, s in groups.items()}
        high, low = max(rates, key=rates.get), min(rates, key=rates.get)  # type: ignore[arg-type]
        if test is not None:
            if test == "bootstrap":
                result = bootstrap_compare_groups(
                    {f"g{g}": e[:, r] for g, (_, e) in enumerate(per_person)},
                    {f"g{g}": t for g, (t, _) in enumerate(per_person)},
                    n_replicates=n_permutations if n_replicates is None else n_replicates,
                    seed=r,
                )
            elif test == "permutation":
                result = permutation_compare_groups(
                    {f"g{g}": e[:, r] for g, (_, e) in enumerate(per_person)},
                    {f"g{g}": t for g, (t, _) in enumerate(per_person)},
                    n_permutations=n_permutations,
                    seed=r,
                )
            else:
                result = compare_group_rates(
                    groups,
                    n_draws=4000,
                    seed=r,
                    pooled_rate=pooled_rate,  # type: ignore[arg-type]
                )
            any_pair += any(p.p_adjusted <= alpha for p in result.pairs)
            if high != low:
                extreme += result.pair(high, low).p_adjusted <= alpha
        if ratios:
            intervals = simultaneous_ratio_intervals(groups, 1 - alpha, n_draws=4000, seed=r)
            j = intervals.index(low)
            ratio_out += bool(np.any((intervals.low[:, j] > 1) | (intervals.high[:, j] < 1)))
            overall = simultaneous_ratio_to_overall(groups, 1 - alpha, n_draws=4000, seed=r)
            overall_out += bool(np.any((overall.low > 1) | (overall.high < 1)))
    tested = test is not None
    return GroupTestResultSim(
        tuple(designs),
        n_datasets,
        any_pair / n_datasets if tested else float("nan"),
        extreme / n_datasets if tested else float("nan"),
        ratio_out / n_datasets if ratios else float("nan"),
        overall_out / n_datasets if ratios else float("nan"),
    )


@dataclass(frozen=True)
class MultiplicityResultSim:
    """Step-down against single-step max-|t| on the same relabellings, with known truth.

    Per adjustment (``"step-down"``, ``"single-step"``), shares of the ``n_datasets`` data sets:

    Attributes
    ----------
    designs : tuple of ClusterDesign
        One per group; pairs whose true rates are equal are true nulls.
    n_datasets : int
    n_true_null, n_false_null : int
        Pairs with equal / different true rates.
    family_wise_error : dict of str to float
        Some pair with equal true rates called different (the family-wise error; with all
        rates equal it is the size, with some unequal it checks strong control).
    any_pair : dict of str to float
        Some pair called different.
    found : dict of str to float
        Mean share of the pairs with different true rates called different (average power;
        NaN when every rate is equal).
    all_found : dict of str to float
        All pairs with different true rates called different (NaN when every rate is equal).
    """

    designs: tuple[ClusterDesign, ...]
    n_datasets: int
    n_true_null: int
    n_false_null: int
    family_wise_error: dict[str, float]
    any_pair: dict[str, float]
    found: dict[str, float]
    all_found: dict[str, float]


def multiplicity_rejection(
    designs: list[ClusterDesign],
    *,
    n_datasets: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
    n_permutations: int = 199,
) -> MultiplicityResultSim:
    """Family-wise error and power of the step-down and the single-step adjustments of
    :func:`lfr_eval.metrics.permutation_compare_groups`, both from one run of relabellings
    per data set (so the two columns differ by the adjustment alone).

    Each design is one group, as in :func:`group_test_rejection`; groups drawn with the same
    true rate make the true null pairs.
    """
    from lfr_eval.metrics._group_tests import _permutation_p_values

    rng = np.random.default_rng(seed)
    per_person = []
    for design in designs:
        trials = draw_trials(design, rng)
        per_person.append((trials, draw_errors(design, trials, n_datasets, rng)))
    names = [f"g{g:02d}" for g in range(len(designs))]  # sorted as the test sorts them
    i_idx, j_idx = np.triu_indices(len(designs), 1)
    truth = np.array([d.rate for d in designs])
    null_pair = np.isclose(truth[i_idx], truth[j_idx], rtol=1e-12, atol=0)
    kinds = ("step-down", "single-step")
    fwe = dict.fromkeys(kinds, 0)
    anyp = dict.fromkeys(kinds, 0)
    found = dict.fromkeys(kinds, 0.0)
    every = dict.fromkeys(kinds, 0)
    for r in range(n_datasets):
        p = _permutation_p_values(
            {n: e[:, r] for n, (_, e) in zip(names, per_person, strict=True)},
            {n: t for n, (t, _) in zip(names, per_person, strict=True)},
            n_permutations=n_permutations, seed=r, stratify=True, engine="auto",
        )  # fmt: skip
        for kind, adjusted in (("step-down", p.step_down), ("single-step", p.single)):
            called = adjusted <= alpha
            fwe[kind] += bool(np.any(called & null_pair))
            anyp[kind] += bool(np.any(called))
            if (~null_pair).any():
                found[kind] += float(np.mean(called[~null_pair]))
                every[kind] += bool(np.all(called[~null_pair]))
    alternatives = bool((~null_pair).any())
    return MultiplicityResultSim(
        designs=tuple(designs),
        n_datasets=n_datasets,
        n_true_null=int(null_pair.sum()),
        n_false_null=int((~null_pair).sum()),
        family_wise_error={k: fwe[k] / n_datasets for k in kinds},
        any_pair={k: anyp[k] / n_datasets for k in kinds},
        found={k: found[k] / n_datasets if alternatives else float("nan") for k in kinds},
        all_found={k: every[k] / n_datasets if alternatives else float("nan") for k in kinds},
    )


@dataclass(frozen=True)
class FalseAlertCoverage:
    """How often :func:`lfr_eval.operational.expected_false_alerts`' intervals hold the truth.

    Attributes
    ----------
    evaluation, deployment : ClusterDesign
        The evaluation's non-mated searches and one deployment's non-mated faces, drawn from
        the same model (same rate and clustering, fresh people).
    n_datasets : int
    expected : float
        Share of data sets whose interval for the expected count holds ``F * rate`` (F: the
        deployment's faces).
    predicted : float
        Share whose prediction interval holds the count the fresh deployment realized.
    median_predicted_width : float
        Median of ``predicted_high - predicted_low`` (alerts).
    """

    evaluation: ClusterDesign
    deployment: ClusterDesign
    n_datasets: int
    expected: float
    predicted: float
    median_predicted_width: float


def false_alert_coverage(
    evaluation: ClusterDesign,
    deployment: ClusterDesign,
    *,
    n_datasets: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> FalseAlertCoverage:
    """Coverage of both intervals of ``expected_false_alerts`` with known truth.

    Each data set draws an evaluation (per-person errors and searches), makes its FPIR
    estimate with the workbench's default clustered interval (design-effect Jeffreys, as the
    frames and aggregates give it), and a fresh deployment of other people from the same
    model; the expected count's interval should hold ``F * rate`` and the prediction interval
    the deployment's realized count, each in about ``confidence`` of the data sets.
    """
    from lfr_eval.metrics._intervals import RateEstimate
    from lfr_eval.operational import expected_false_alerts

    if evaluation.rate != deployment.rate or evaluation.icc != deployment.icc:
        raise ValueError("the evaluation and the deployment must share the rate and the ICC")
    rng = np.random.default_rng(seed)
    expected = predicted = 0
    widths = []
    for _ in range(n_datasets):
        trials = draw_trials(evaluation, rng)
        errors = draw_errors(evaluation, trials, 1, rng)
        r = design_effect_jeffreys(errors, trials, confidence)
        k, n = int(errors.sum()), int(trials.sum())
        estimate = RateEstimate(
            k, n, k / n, float(r.ci_low[0]), float(r.ci_high[0]), "design-effect-jeffreys",
            confidence,
        )  # fmt: skip
        faces = draw_trials(deployment, rng)
        seen = int(draw_errors(deployment, faces, 1, rng).sum())
        total = int(faces.sum())
        e = expected_false_alerts(estimate, total, confidence=confidence)
        expected += e.expected_ci_low <= total * deployment.rate <= e.expected_ci_high
        predicted += e.predicted_low <= seen <= e.predicted_high
        widths.append(e.predicted_high - e.predicted_low)
    return FalseAlertCoverage(
        evaluation, deployment, n_datasets, expected / n_datasets, predicted / n_datasets,
        float(np.median(widths)),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Watchlist-size scaling: scaled FPIR from filler counts, with known truth
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalingDesign:
    """One cell of the scaled-FPIR simulation grid.

    Each non-mated search j of person i has its own false-match rate
    ``f_ij = expit(logit(median_fmr) + u_i + e_ij)`` with ``u_i ~ N(0, spread^2 * person_share)``
    (shared by the person's searches: the clustering) and ``e_ij ~ N(0, spread^2 *
    (1 - person_share))``; it meets ``c_ij ~ Binomial(n_fillers, f_ij)`` of the fillers. The
    true FPIR at watchlist size N is ``E[1 - (1 - f)^N]`` over the population of searches.

    Attributes
    ----------
    n_people : int
    searches_per_person : int
    n_fillers : int
        F, the filler gallery measured.
    watchlist_size : int
        N, the deployed size (N > F is an extrapolation).
    median_fmr : float
        Median per-search false-match rate, in (0, 1).
    spread : float
        Standard deviation of the logit false-match rate between searches (0: all equal).
    person_share : float
        Share of that variance between people, in [0, 1] (0: searches independent; 1: every
        search of a person has the same rate).
    """

    n_people: int
    searches_per_person: int
    n_fillers: int
    watchlist_size: int
    median_fmr: float
    spread: float = 1.0
    person_share: float = 0.5

    def __post_init__(self) -> None:
        if min(self.n_people, self.searches_per_person, self.n_fillers, self.watchlist_size) < 1:
            raise ValueError("a scaling design needs people, searches, fillers and a watchlist")
        if not 0 < self.median_fmr < 1 or self.spread < 0 or not 0 <= self.person_share <= 1:
            raise ValueError("median_fmr in (0, 1), spread >= 0, person_share in [0, 1]")

    @property
    def extrapolation(self) -> float:
        """N / F (above 1: beyond the fillers)."""
        return self.watchlist_size / self.n_fillers

    def true_fpir(self, watchlist_size: int | None = None) -> float:
        """``E[1 - (1 - f)^N]`` by quadrature over the normal logit (to ~1e-10)."""
        n = self.watchlist_size if watchlist_size is None else int(watchlist_size)
        mu = float(np.log(self.median_fmr / (1 - self.median_fmr)))
        z = np.linspace(-10.0, 10.0, 8001)
        weight = np.exp(-0.5 * z**2)
        weight /= weight.sum()
        logit = mu + self.spread * z
        # log(1 - f) = -log(1 + e^logit), stable for large N and tiny f
        values = -np.expm1(-n * np.logaddexp(0.0, logit))
        return float(np.sum(weight * values))


def draw_filler_counts(
    design: ScalingDesign, n_datasets: int, rng: np.random.Generator
) -> np.ndarray:
    """Fillers met by each search in each data set, shape (n_searches, n_datasets)."""
    s, m = design.n_people, design.searches_per_person
    mu = np.log(design.median_fmr / (1 - design.median_fmr))
    person = rng.normal(0.0, design.spread * np.sqrt(design.person_share), (s, n_datasets))
    search = rng.normal(0.0, design.spread * np.sqrt(1 - design.person_share), (s * m, n_datasets))
    logit = mu + np.repeat(person, m, axis=0) + search
    counts: np.ndarray = rng.binomial(design.n_fillers, 1.0 / (1.0 + np.exp(-logit)))
    return counts


@dataclass(frozen=True)
class ScalingCoverageResult:
    """Measured behaviour of the scaled-FPIR estimate and interval in one design.

    Attributes
    ----------
    design : ScalingDesign
    method : str
        The interval as the scaling table names it.
    truth : float
        True FPIR(N).
    n_datasets : int
    two_sided, upper : float
        Share of data sets whose two-sided interval holds the truth / whose one-sided upper
        bound is at or above it.
    miss_below, miss_above : float
        Two-sided misses with the truth below / above the interval.
    relative_bias : float
        Mean estimate / truth - 1 (the per-person model's beyond F).
    relative_bias_se : float
        Monte-Carlo standard error of ``relative_bias``: the estimates' standard deviation over
        data sets / sqrt(n_datasets) / truth. An unbiased estimator shows ``|relative_bias|``
        of about this size; a real bias is one many of these beyond 0.
    pooled_relative_bias : float
        The pooled model's, beyond F (NaN within).
    median_relative_width : float
    matching_people : float
        Mean over data sets of the people with at least one search meeting at least one filler
        (the information behind the figure: at N <= F a search's P(alert) is 0 without one).
    """

    design: ScalingDesign
    method: str
    truth: float
    n_datasets: int
    two_sided: float
    upper: float
    miss_below: float
    miss_above: float
    relative_bias: float
    relative_bias_se: float
    pooled_relative_bias: float
    median_relative_width: float
    matching_people: float

    def bias_z(self) -> float:
        """``relative_bias / relative_bias_se``: beyond about 3.5 in a handful of cells, real."""
        return self.relative_bias / self.relative_bias_se if self.relative_bias_se > 0 else 0.0


#: Searches x data sets drawn at a time by :func:`scaled_fpir_coverage` (memory: a few arrays
#: of this many float64).
SCALING_BATCH_CELLS = 2_000_000


def scaling_batches(
    design: ScalingDesign, n_datasets: int, rng: np.random.Generator, batches: int = 4
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``n_datasets`` seeded data sets of filler counts, in batches of at most
    :data:`SCALING_BATCH_CELLS` counts (at least ``batches`` batches): for each batch
    ``(counts (n_searches, 1 group, size), matching (size,))``, ``matching`` the people with a
    search that met some filler in each data set. One loop for :func:`scaled_fpir_coverage`
    and the benchmarks that compare interval rules on the same data sets."""
    n_searches = design.n_people * design.searches_per_person
    batches = max(batches, -(-n_searches * n_datasets // SCALING_BATCH_CELLS))
    for size in np.diff(np.linspace(0, n_datasets, batches + 1).astype(int)):
        if size == 0:
            continue
        counts = draw_filler_counts(design, int(size), rng)[:, None, :]  # (n, 1 group, R)
        matching = (
            (counts[:, 0, :] > 0)
            .reshape(design.n_people, design.searches_per_person, int(size))
            .any(axis=1)
            .sum(axis=0)
        )
        yield counts, matching


def scaled_fpir_coverage(
    design: ScalingDesign,
    *,
    n_datasets: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    batches: int = 4,
) -> ScalingCoverageResult:
    """Coverage of the scaling table's interval (the code :func:`~lfr_eval.protocols.scale_fpir`
    runs) over simulated data sets with known truth; data sets are the columns of one call."""
    from lfr_eval.protocols._scaling import (
        clustered_scaled_interval,
        extrapolation_range,
        per_search_fpir,
        pooled_interval,
        zero_exponent,
    )

    rng = np.random.default_rng(seed)
    truth = design.true_fpir()
    sizes, shares, n = np.array([design.n_fillers]), np.array([1.0]), design.watchlist_size
    subjects = np.repeat(np.arange(design.n_people), design.searches_per_person)
    exponent = zero_exponent(n, sizes, shares)
    inside = upper_ok = below = above = 0
    estimates, pooled_estimates, widths, methods, matching = [], [], [], set(), []
    for counts, matched in scaling_batches(design, n_datasets, rng, batches):
        matching.append(matched)
        values, _ = per_search_fpir(counts, sizes, shares, n)
        interval = clustered_scaled_interval(values, subjects, exponent, confidence)
        if design.watchlist_size > design.n_fillers:
            pooled = pooled_interval(counts, sizes, shares, n, subjects, exponent, confidence)
            pooled_estimates.append(pooled.fpir)
            interval = extrapolation_range(interval, pooled)
        methods |= set(interval.method)
        inside += int(np.count_nonzero((interval.lower <= truth) & (truth <= interval.upper)))
        below += int(np.count_nonzero(truth < interval.lower))
        above += int(np.count_nonzero(truth > interval.upper))
        upper_ok += int(np.count_nonzero(truth <= interval.upper_bound))
        estimates.append(interval.fpir)
        widths.append((interval.upper - interval.lower) / truth)
    pooled_bias = (
        float(np.mean(np.concatenate(pooled_estimates)) / truth - 1)
        if pooled_estimates
        else float("nan")
    )
    estimate = np.concatenate(estimates)
    spread = float(np.std(estimate, ddof=1)) if len(estimate) > 1 else float("nan")
    return ScalingCoverageResult(
        design=design,
        method=" / ".join(sorted(methods)),
        truth=truth,
        n_datasets=n_datasets,
        two_sided=inside / n_datasets,
        upper=upper_ok / n_datasets,
        miss_below=below / n_datasets,
        miss_above=above / n_datasets,
        relative_bias=float(np.mean(estimate) / truth - 1),
        relative_bias_se=spread / np.sqrt(len(estimate)) / truth,
        pooled_relative_bias=pooled_bias,
        median_relative_width=float(np.median(np.concatenate(widths))),
        matching_people=float(np.mean(np.concatenate(matching))),
    )


# --------------------------------------------------------------------------------------------
# Tail model: impostor scores with a known generalised Pareto tail
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TailDesign:
    """Impostor scores whose upper tail is known exactly, for testing the GPD tail model.

    Search j of person i exceeds ``tail_start`` against a filler with probability
    ``q_ij = median_rate * exp(u_i)``, ``u_i ~ N(0, spread^2)`` (people differ; a person's
    searches share it); an exceeding score is ``tail_start + GPD(shape, scale)``, the others
    are uniform on [-0.2, tail_start). So ``FMR_ij(T) = q_ij * S_GPD(T - tail_start)`` and the
    true FPIR of the drawn searches is ``mean [1 - (1 - FMR(T))^N]``.
    """

    n_people: int = 200
    searches_per_person: int = 3
    n_fillers: int = 2000
    median_rate: float = 3e-3
    spread: float = 0.7
    tail_start: float = 0.55
    shape: float = -0.2
    scale: float = 0.05


def draw_tail_scores(
    design: TailDesign, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores (searches, fillers) float32, subjects, per-search exceedance probability)."""
    from scipy import stats

    n = design.n_people * design.searches_per_person
    person = rng.normal(0.0, design.spread, design.n_people)
    q = np.minimum(design.median_rate * np.exp(np.repeat(person, design.searches_per_person)), 1)
    exceed = rng.random((n, design.n_fillers)) < q[:, None]
    scores = rng.uniform(-0.2, design.tail_start, (n, design.n_fillers))
    tail = stats.genpareto.rvs(
        design.shape, 0.0, design.scale, size=int(exceed.sum()), random_state=rng
    )
    scores[exceed] = design.tail_start + tail
    subjects = np.repeat(np.arange(design.n_people), design.searches_per_person).astype(str)
    return scores.astype(np.float32), subjects.astype(object), q


def true_tail_fpir(
    design: TailDesign, rates: np.ndarray, watchlist_size: int, threshold: float
) -> float:
    """The drawn searches' true FPIR(N, T) under :class:`TailDesign`."""
    from scipy import stats

    survival = stats.genpareto.sf(
        max(threshold - design.tail_start, 0.0), design.shape, 0.0, design.scale
    )
    return float(np.mean(-np.expm1(watchlist_size * np.log1p(-rates * survival))))
