"""Claim checker: does the data support a published error-rate claim?

A claim such as "FPIR is at most 1 in 6,000 with a 10,000-person watchlist at threshold 0.60" is
supported at confidence ``c`` when a one-sided upper confidence bound of the measured FPIR is at
or below the claimed bound. The bound is **clustered by person** whenever subject ids are known
(the Korn–Graubard design-effect Clopper–Pearson bound of :func:`lfr_eval.metrics.korn_graubard`:
repeat passes of one person are not independent), raised to its **envelope over fewer false
positives** (:func:`lfr_eval.metrics.monotone_upper_bound`: the largest plain bound over the same
data with fewer of them among the people with the most, so one more false positive rarely lowers
it, and then slightly, where the plain bound could fall 3×; from an aggregate written before
that, the verdict says its bound is not monotone) and **capped at the bound counted by people**
(:func:`lfr_eval.metrics._clustered.capped_by_people`: the bound in as many trials as the
searches over the most searches one person has, which no data of independent people can
exceed; without it one person with several false positives put the bound at "1 in 2" where
the two-sided interval's upper end was 1 in 11); only bare counts without subjects get the
search-level Clopper–Pearson bound, and the verdict says so. Measured by seeded simulation
(``benchmarks/bench_stats_grid.py``), a false claim is called "supported" at most about 5% of the
time across clustering levels (a search-level bound did so in up to 77% of data sets).

The check also says what the data *does* support (the smallest bound: the upper bound itself)
and how much more data a firm answer would need — counted in **people** for clustered data (more
searches of the same people add little when their searches correlate).

With zero false positives, supporting "1 in 6,000" at 95% takes about 18,000 independent
non-mated searches (rule of three); with 7 false positives about 79,000 (domain brief, §5). With
zero false positives in clustered data the bound is counted by people (about 3 / people).

**Watchlist size.** FPIR at N is the mean over searches of ``1 - (1 - FMR_i)^N``; how it changes
with N depends on how false-match rates differ between people. Scaling a bound measured at N₀ up
to a larger N with a single pooled FMR (``1 - (1 - u)^(N/N₀)``) is conservative: for every
person ``1 - (1 - y)^r`` is concave in y when r > 1 (Jensen). Scaling *down* with a pooled FMR is
anti-conservative (one realistic model called a false claim supported every time), so by default
a claim about a smaller watchlist is checked against the bound at the size measured (FPIR cannot
fall faster than that bound allows only if every search has the same FMR; the honest bound is
FPIR(N) <= FPIR(N₀) for N <= N₀). ``scaling="pooled"`` uses the pooled figure anyway and says it
is optimistic, next to the conservative one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike

from lfr_eval.metrics._clustered import (
    KORN_GRAUBARD_ALL_ERRORS,
    KORN_GRAUBARD_MONOTONE,
    KORN_GRAUBARD_NOT_MONOTONE,
    KORN_GRAUBARD_ONE_PERSON,
    PEOPLE_CAP_SUFFIX,
    ClusteredRate,
    ClusterSummary,
    korn_graubard,
    korn_graubard_from_summary,
)
from lfr_eval.metrics._intervals import clopper_pearson, count_at_or_above_by_subject
from lfr_eval.metrics._searches import SearchSet
from lfr_eval.metrics._validation import MetricInputError, check_confidence, check_rate
from lfr_eval.operational import one_in_n
from lfr_eval.wording import plural

if TYPE_CHECKING:
    import pandas as pd

    from lfr_eval.protocols import ScaledFpir
    from lfr_eval.report import AggregateResult

MSG_WATCHLIST_MISMATCH = (
    "the claim is about a watchlist of {claim:,} but the searches ran against {data:,}; pass "
    "{option} to scale the bound (the results' filler-gallery scaling at that N where they hold "
    "it, else FPIR(N) = 1 - (1 - FMR)^N with one pooled rate), or measure at the claimed size"
)
#: How the Python API names the switch that allows scaling (the CLI names its flag instead).
SCALE_OPTION_API = "scale_watchlist=True"
#: The CLI flag that allows scaling, for messages raised from ``lfr-eval claim``.
SCALE_OPTION_CLI = "--scale-watchlist"
MSG_NEED_COUNTS = (
    "give either a SearchSet or both false_positives and non_mated_searches to check a claim"
)
MSG_NEED_THRESHOLD = "the claim names no threshold; it is needed to count false positives"


@dataclass(frozen=True)
class Claim:
    """A published upper bound on FPIR at a watchlist size and threshold.

    Attributes
    ----------
    bound : float
        The claimed FPIR upper limit, in (0, 1), e.g. ``1 / 6000``.
    watchlist_size : int or None
        N the claim is about.
    threshold : float or None
        Similarity threshold in [-1, 1].
    confidence : float
        Confidence at which to test the claim (one-sided).
    metric : str
        Only ``"fpir"`` for now.
    source : str
        Where the claim comes from (free text, for reports).
    """

    bound: float
    watchlist_size: int | None = None
    threshold: float | None = None
    confidence: float = 0.95
    metric: Literal["fpir"] = "fpir"
    source: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.bound < 1:
            raise MetricInputError(f"a claimed bound must be a rate in (0, 1), got {self.bound}")
        check_confidence(self.confidence)
        if self.metric != "fpir":
            raise MetricInputError("only FPIR claims can be checked so far (metric='fpir')")

    @classmethod
    def one_in(cls, n: float, **kwargs: object) -> Claim:
        """A claim of "at most 1 in n", e.g. ``Claim.one_in(6000, watchlist_size=10_000)``."""
        return cls(bound=1.0 / n, **kwargs)  # type: ignore[arg-type]

    def describe(self) -> str:
        parts = [f"FPIR <= {one_in_n(self.bound)}"]
        if self.watchlist_size is not None:
            parts.append(f"at N = {self.watchlist_size:,}")
        if self.threshold is not None:
            parts.append(f"T = {self.threshold:g}")
        return ", ".join(parts)


ScalingModel = Literal["conservative", "pooled"]

#: ``ClaimCheck.scaling`` values.
SCALED_UP = "up: pooled FMR (conservative)"
SCALED_DOWN_CONSERVATIVE = "down: bound at the size measured (conservative)"
SCALED_DOWN_POOLED = "down: pooled FMR (optimistic)"
#: Prefix of ``ClaimCheck.scaling`` when the bound is the filler-gallery scaled FPIR's.
SCALED_FILLER = "filler gallery"

#: Method label where only counts (no subject ids) were given.
INDEPENDENT_BOUND = "clopper-pearson (searches assumed independent: no subject ids given)"


@dataclass(frozen=True)
class ClaimCheck:
    """Verdict on a :class:`Claim` from measured non-mated searches.

    Attributes
    ----------
    claim : Claim
    supported : bool
        Whether the one-sided upper bound (at the claimed N) is at or below the claimed bound.
    false_positives, non_mated_searches : int
        The counts the verdict rests on.
    observed_rate : float
        ``false_positives / non_mated_searches`` at the size measured.
    upper_bound : float
        One-sided upper confidence bound at ``claim.confidence`` at the claimed watchlist size
        (scaled if ``watchlist_scaled``). It is also the smallest "FPIR <= x" claim these data
        support.
    method : str
        How the bound was made: ``"korn-graubard"`` (clustered by person), one of its edge
        cases (e.g. no errors: counted by people), or :data:`INDEPENDENT_BOUND`.
    tested_watchlist_size : int or None
        N the searches ran against.
    watchlist_scaled : bool
        True when the claim's N differs from the N measured.
    scaling : str
        ``"none"``, ``"up: pooled FMR (conservative)"``, ``"down: bound at the size measured
        (conservative)"`` or ``"down: pooled FMR (optimistic)"``.
    optimistic_upper_bound : float or None
        Scaling down: the pooled-FMR figure, which is only valid if every search had the same
        false-match rate (shown for comparison; the verdict uses it only with
        ``scaling="pooled"``).
    searches_needed_if_no_more_errors : int
        Total non-mated searches at which the claim would be supported if the extra searches
        brought no further false positives (for clustered data: people needed times searches
        per person).
    additional_searches_needed : int
        ``max(0, searches_needed_if_no_more_errors - non_mated_searches)``.
    searches_needed_at_observed_rate : int or None
        Total searches needed if false positives keep occurring at the observed rate; ``None``
        when the observed rate is at or above the bound (no number of searches would do).
    n_subjects : int or None
        Distinct people among the non-mated searches, when known.
    design_effect : float or None
        Variance of the rate over its variance were searches independent (>= 1 used); None
        without subjects or with no errors (then the worst case, searches per person, is used).
    effective_searches : float or None
        The independent-search equivalent the bound rests on.
    people_needed_if_no_more_errors, additional_people_needed : int or None
        For clustered data: people (at the same searches per person) needed for support if no
        further false positives came, and how many more than measured.
    people_needed_at_observed_rate : int or None
        The same if false positives keep occurring at the observed rate.
    measured_upper_bound : float or None
        The bound at the watchlist size measured (before any scaling).
    scaled_fpir : ScaledFpir or None
        The filler-gallery figure at the claimed N whose one-sided bound the verdict used
        (``scaling`` starts with ``"filler gallery"``), as the report's scaling table shows it.
    """

    claim: Claim
    supported: bool
    false_positives: int
    non_mated_searches: int
    observed_rate: float
    upper_bound: float
    tested_watchlist_size: int | None
    watchlist_scaled: bool
    searches_needed_if_no_more_errors: int
    additional_searches_needed: int
    searches_needed_at_observed_rate: int | None
    n_subjects: int | None = None
    method: str = INDEPENDENT_BOUND
    scaling: str = "none"
    optimistic_upper_bound: float | None = None
    design_effect: float | None = None
    effective_searches: float | None = None
    people_needed_if_no_more_errors: int | None = None
    additional_people_needed: int | None = None
    people_needed_at_observed_rate: int | None = None
    measured_upper_bound: float | None = None
    scaled_fpir: ScaledFpir | None = None

    @property
    def smallest_supported_rate(self) -> float:
        """The lowest FPIR bound the data support at the claim's confidence."""
        return self.upper_bound

    @property
    def clustered(self) -> bool:
        return self.method != INDEPENDENT_BOUND

    def supported_claim_text(self, symbol: str = "<=") -> str:
        """The smallest claim these data support, in words ("FPIR <= 1 in 3,100"), or that they
        support no useful bound when the upper bound reaches one half (:mod:`lfr_eval.plain`'s
        rule: such a bound bounds nothing; "FPIR <= every one" would mean nothing)."""
        from lfr_eval.plain import UNBOUNDED_SHARE

        if self.upper_bound < UNBOUNDED_SHARE:
            return f"FPIR {symbol} {one_in_n(self.upper_bound)}"
        return "no useful bound (FPIR could be near or above one half)"

    def bound_method(self, *, explain: bool = True) -> str:
        """How :attr:`upper_bound` was made, in words: the one name every output of the bound
        uses (:meth:`summary`, the ``claim --by`` group lines of
        :meth:`GroupClaimChecks.summary`, the report and the explorer).

        ``"one-sided 95% upper bound, clustered by person (Korn–Graubard design-effect
        Clopper–Pearson, envelope over fewer false positives)"`` and its variants: counted by
        people where no false positive was seen, NOT monotone from an old aggregate,
        Clopper–Pearson with searches independent without subject ids; where the bound was
        scaled to the claim's watchlist size, how (the filler-gallery scaling's one-sided
        bound and its method, or the pooled-FMR map). ``explain=False`` leaves out the
        envelope's explanation (for one line per group).
        """
        pct = f"{self.claim.confidence:.0%}"
        how = (
            "clustered by person (Korn–Graubard design-effect Clopper–Pearson"
            + _bound_note(self.method, explain=explain)
            + ")"
            if self.clustered
            else "Clopper–Pearson, treating searches as independent (no subject ids given)"
        )
        text = f"one-sided {pct} upper bound, {how}"
        if self.scaling.startswith(SCALED_FILLER) and self.scaled_fpir is not None:
            return (
                f"one-sided {pct} upper bound of the filler-gallery scaling to "
                f"N = {self.scaled_fpir.watchlist_size:,} ({self.scaled_fpir.interval})"
            )
        if self.scaling.startswith("up"):
            return f"{text}, scaled up from N = {self.tested_watchlist_size:,} (pooled FMR)"
        if self.scaling.startswith("down: bound"):
            return f"{text}, at the N = {self.tested_watchlist_size:,} measured"
        if self.scaling.startswith("down: pooled"):
            return (
                f"{text}, scaled down from N = {self.tested_watchlist_size:,} (pooled FMR, "
                "optimistic)"
            )
        return text

    def summary(self) -> str:
        """A few plain sentences for a report."""
        verdict = "support" if self.supported else "do not support"
        observed = f" ({one_in_n(self.observed_rate)})" if self.false_positives else ""
        people = f" from {plural(self.n_subjects, 'person')}" if self.n_subjects is not None else ""
        # the measured bound's method; how it was scaled follows in its own sentence below
        measured = replace(self, scaling="none", scaled_fpir=None)
        method = measured.bound_method()
        lines = [
            f"Claim: {self.claim.describe()}.",
            (
                f"Observed {self.false_positives} false positives in {self.non_mated_searches:,} "
                f"non-mated searches{people}{observed}."
            ),
            (
                f"{method[0].upper()}{method[1:]}: {one_in_n(self.upper_bound)} "
                f"({self.upper_bound:.3g}); the data {verdict} the claim; they support "
                f"{self.supported_claim_text()}."
            ),
        ]
        if not self.supported:
            if self.people_needed_if_no_more_errors is not None:
                lines.append(
                    f"With no further false positives, about "
                    f"{plural(self.people_needed_if_no_more_errors, 'person')} in all "
                    f"({self.additional_people_needed:,} more, at the same searches per person: "
                    f"{plural(self.searches_needed_if_no_more_errors, 'search')}) would support "
                    "it."
                )
            else:
                lines.append(
                    "With no further false positives, "
                    f"{plural(self.searches_needed_if_no_more_errors, 'search')} in all "
                    f"({self.additional_searches_needed:,} more) would support it."
                )
            if self.searches_needed_at_observed_rate is None:
                lines.append("At the observed rate no number of searches would support it.")
            elif self.people_needed_at_observed_rate is not None:
                lines.append(
                    "At the observed rate, about "
                    f"{plural(self.people_needed_at_observed_rate, 'person')} in all would be "
                    "needed."
                )
            else:
                lines.append(
                    "At the observed rate, "
                    f"{plural(self.searches_needed_at_observed_rate, 'search')} in all would be "
                    "needed."
                )
        if self.scaling.startswith(SCALED_FILLER) and self.scaled_fpir is not None:
            lines.append(
                f"The bound at N = {self.scaled_fpir.watchlist_size:,} is the one-sided bound of "
                "the filler-gallery scaling (the report's scaling table): "
                + self.scaled_fpir.describe()
                + "."
            )
        elif self.scaling.startswith("up"):
            lines.append(
                f"The bound was scaled up from a watchlist of {self.tested_watchlist_size:,} with "
                "one pooled false-match rate, which overstates FPIR when people differ "
                "(conservative), assuming comparisons with further entries behave like those "
                "measured."
            )
        elif self.scaling.startswith("down: bound"):
            lines.append(
                f"The claim is about a smaller watchlist than the {self.tested_watchlist_size:,} "
                "measured; FPIR cannot exceed its value at the larger size, so that bound is used "
                "(conservative). Scaling it down with one pooled false-match rate would give "
                f"{one_in_n(self.optimistic_upper_bound or 0.0)}, valid only if every search had "
                "the same false-match rate."
            )
        elif self.scaling.startswith("down: pooled"):
            lines.append(
                f"WARNING: the bound was scaled down from a watchlist of "
                f"{self.tested_watchlist_size:,} with one pooled false-match rate; that is "
                "optimistic when people differ in how often they draw false matches. The "
                f"conservative bound is the one at the size measured, "
                f"{one_in_n(self.conservative_upper_bound)}."
            )
        if not self.clustered and self.n_subjects is not None and (
            self.n_subjects < self.non_mated_searches
        ):
            lines.append(
                f"The searches come from {plural(self.n_subjects, 'person')}; the bound assumes "
                "independent searches, so it is optimistic if one person's searches correlate. "
                "Give per-person counts (or the SearchSet) for a clustered bound."
            )
        return " ".join(lines)

    @property
    def conservative_upper_bound(self) -> float:
        """The bound valid whatever the spread of false-match rates between people."""
        if self.scaling.startswith("down: pooled") and self.measured_upper_bound is not None:
            return self.measured_upper_bound
        return self.upper_bound


def _upper(k: float, n: float, confidence: float) -> float:
    """One-sided Clopper–Pearson upper bound; ``k`` may be fractional (expected errors)."""
    from scipy import stats  # imported here: ~1 s, and not every caller needs it

    if k >= n:
        return 1.0
    return float(stats.beta.ppf(confidence, k + 1, n - k))


def searches_needed(false_positives: int, bound: float, confidence: float = 0.95) -> int:
    """Smallest n with one-sided Clopper–Pearson upper bound of ``false_positives / n`` <= bound.

    Examples
    --------
    >>> searches_needed(0, 1 / 6000)
    17973
    >>> round(searches_needed(7, 1 / 6000), -3)
    79000
    """
    check_rate(bound, "bound")
    conf = check_confidence(confidence)
    k = int(false_positives)
    if k < 0:
        raise MetricInputError("false_positives must be >= 0")
    if k == 0:  # closed form: (1 - bound)^n <= 1 - confidence
        return int(np.ceil(np.log1p(-conf) / np.log1p(-bound)))
    lo, hi = k + 1, max(k + 2, int(2 * (k + 3) / bound))
    while _upper(k, hi, conf) > bound:
        hi *= 2
    while lo < hi:  # the bound falls as n grows: bisect for the first n that meets it
        mid = (lo + hi) // 2
        if _upper(k, mid, conf) <= bound:
            hi = mid
        else:
            lo = mid + 1
    return int(lo)


def searches_needed_at_rate(rate: float, bound: float, confidence: float = 0.95) -> int | None:
    """Searches needed if false positives occur at ``rate``; None if ``rate >= bound``."""
    check_rate(rate, "rate")
    check_rate(bound, "bound")
    conf = check_confidence(confidence)
    if rate == 0:
        return searches_needed(0, bound, conf)
    if rate >= bound:
        return None
    lo, hi = 1, 2
    while _upper(rate * hi, hi, conf) > bound:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _upper(rate * mid, mid, conf) <= bound:
            hi = mid
        else:
            lo = mid + 1
    return int(lo)


def _trials_needed(k: float, bound: float, confidence: float) -> int:
    """Smallest n whose one-sided Clopper–Pearson bound for k (maybe fractional) errors <= bound."""
    if k <= 0:
        return int(np.ceil(np.log1p(-confidence) / np.log1p(-bound)))
    lo, hi = int(np.ceil(k)) + 1, max(int(np.ceil(k)) + 2, int(2 * (k + 3) / bound))
    while _upper(k, hi, confidence) > bound:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _upper(k, mid, confidence) <= bound:
            hi = mid
        else:
            lo = mid + 1
    return int(lo)


def fpir_upper_bound(
    subject_false_positives: ArrayLike,
    subject_searches: ArrayLike,
    confidence: float = 0.95,
) -> ClusteredRate:
    """One-sided upper confidence bound on FPIR clustered by person: what a claim is checked with.

    Parameters
    ----------
    subject_false_positives : array_like of int, shape (s,) or (s, m)
        False positives of each person (at each of m thresholds or data sets).
    subject_searches : array_like of int, shape (s,)
        Non-mated searches of each person.
    confidence : float
        One-sided coverage.

    Returns
    -------
    ClusteredRate
        ``ci_high`` is the bound (Korn–Graubard, ``sided="upper"``, raised to its envelope over
        fewer errors: :func:`lfr_eval.metrics.monotone_upper_bound`).
    """
    return korn_graubard(subject_false_positives, subject_searches, confidence, sided="upper")


def _scaled(upper: float, tested: int, claimed: int) -> float:
    """``1 - (1 - upper)^(claimed / tested)``: the pooled-FMR map between watchlist sizes."""
    if upper >= 1.0:
        return 1.0
    return float(-np.expm1(claimed / tested * np.log1p(-upper)))


def _scale_bound(
    claim: Claim, measured: float, tested: int, scaling: str
) -> tuple[str, float, float, float | None]:
    """(how, upper bound at the claim's N, claimed bound at the tested N, optimistic figure)."""
    claimed = int(claim.watchlist_size)  # type: ignore[arg-type]
    pooled_upper = _scaled(measured, tested, claimed)
    pooled_bound = _scaled(claim.bound, claimed, tested)
    if claimed > tested:
        return SCALED_UP, pooled_upper, pooled_bound, None
    if scaling == "pooled":
        return SCALED_DOWN_POOLED, pooled_upper, pooled_bound, pooled_upper
    return SCALED_DOWN_CONSERVATIVE, measured, claim.bound, pooled_upper


def _filler_bound(claim: Claim, figure: ScaledFpir) -> tuple[str, float]:
    """(``ClaimCheck.scaling``, bound) from a filler-gallery scaled FPIR at the claim's N."""
    if figure.watchlist_size != claim.watchlist_size:
        raise MetricInputError(
            f"the scaled FPIR is for N = {figure.watchlist_size:,}, the claim for "
            f"N = {claim.watchlist_size:,}"
        )
    if claim.threshold is not None and abs(figure.threshold - claim.threshold) > 1e-6:
        raise MetricInputError(
            f"the scaled FPIR is at threshold {figure.threshold:g}, the claim at "
            f"{claim.threshold:g}"
        )
    if not np.isnan(figure.confidence) and abs(figure.confidence - claim.confidence) > 1e-9:
        raise MetricInputError(
            f"the scaled FPIR's bound is at {figure.confidence:.0%}, the claim at "
            f"{claim.confidence:.0%}"
        )
    if np.isfinite(figure.upper_bound):
        return f"{SCALED_FILLER}: one-sided {figure.interval}", float(figure.upper_bound)
    # a table made before one-sided bounds were stored: the two-sided upper end is higher
    return f"{SCALED_FILLER}: two-sided upper end (conservative), {figure.interval}", float(
        figure.upper
    )


def _per_person_counts(
    claim: Claim,
    searches: SearchSet | None,
    subject_false_positives: ArrayLike | None,
    subject_searches: ArrayLike | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(false positives, searches) per person at the claim's threshold, if the data have them."""
    if searches is not None:
        if claim.threshold is None:
            raise MetricInputError(MSG_NEED_THRESHOLD)
        best = np.asarray(searches.non_mated_best, dtype=np.float64)
        _, trials, hits = count_at_or_above_by_subject(
            np.asarray(searches.non_mated_subjects).astype(str), best, np.array([claim.threshold])
        )
        return hits[:, 0], trials
    if subject_false_positives is None and subject_searches is None:
        return None
    if subject_false_positives is None or subject_searches is None:
        raise MetricInputError(
            "give both subject_false_positives and subject_searches (one entry per person)"
        )
    return (
        np.asarray(subject_false_positives, dtype=np.int64).ravel(),
        np.asarray(subject_searches, dtype=np.int64).ravel(),
    )


def _clustered_needs(
    k: int, n: int, n_eff: float, n_subjects: int, bound: float, confidence: float
) -> tuple[int, int | None, int, int | None]:
    """(searches needed, searches at observed rate, people needed, people at observed rate).

    Each search is worth ``n_eff / n`` independent searches (1 / design effect; the worst case,
    1 / searches per person, when no false positive shows the clustering); new people are
    assumed to bring the same searches per person and the same clustering.
    """
    per_search = n_eff / n
    per_person = n / max(n_subjects, 1)
    searches = int(np.ceil(_trials_needed(k * per_search, bound, confidence) / per_search))
    people = int(np.ceil(searches / per_person))
    independent_at_rate = searches_needed_at_rate(k / n, bound, confidence)
    if independent_at_rate is None:
        return searches, None, people, None
    at_rate = int(np.ceil(independent_at_rate / per_search))
    return searches, at_rate, people, int(np.ceil(at_rate / per_person))


def check_fpir_claim(
    claim: Claim,
    searches: SearchSet | None = None,
    *,
    false_positives: int | None = None,
    non_mated_searches: int | None = None,
    watchlist_size: int | None = None,
    n_subjects: int | None = None,
    subject_false_positives: ArrayLike | None = None,
    subject_searches: ArrayLike | None = None,
    cluster_summary: ClusterSummary | None = None,
    scale_watchlist: bool = False,
    scaling: ScalingModel = "conservative",
    scale_option: str = SCALE_OPTION_API,
    scaled_fpir: ScaledFpir | None = None,
) -> ClaimCheck:
    """Check an FPIR claim against measured non-mated searches.

    Parameters
    ----------
    claim : Claim
        The bound, watchlist size, threshold and confidence.
    searches : SearchSet, optional
        Searches to count false positives in at ``claim.threshold`` (best non-mated score
        >= threshold), per person. Its watchlist size and subjects are used: the bound is
        clustered by person.
    false_positives, non_mated_searches : int, optional
        Counts, instead of ``searches``. Without per-person counts the bound treats searches
        as independent (the verdict says so).
    watchlist_size : int, optional
        N of the counts (ignored with ``searches``).
    n_subjects : int, optional
        Distinct people behind bare counts (ignored otherwise; only for the warning).
    subject_false_positives, subject_searches : array_like of int, optional
        Per-person counts, instead of ``searches``: a clustered bound.
    cluster_summary : ClusterSummary, optional
        The clustered bound's sufficient statistics (from an aggregate's rates row, see
        :func:`lfr_eval.report.cluster_summary`), with the counts: a clustered bound without
        the per-person data.
    scale_watchlist : bool
        Allow a claim about another watchlist size (see the module notes).
    scaling : {"conservative", "pooled"}
        For a claim about a *smaller* watchlist than measured: ``"conservative"`` (default)
        uses the bound at the size measured; ``"pooled"`` scales it down with one pooled
        false-match rate, which is optimistic when people differ, and says so. A larger
        watchlist is always scaled with the pooled rate (conservative).
    scale_option : str
        How the caller names the ``scale_watchlist`` switch in the error raised when the
        watchlist sizes differ (the CLI passes :data:`SCALE_OPTION_CLI`).
    scaled_fpir : ScaledFpir, optional
        The filler-gallery scaled FPIR at the claimed N and threshold
        (:func:`lfr_eval.protocols.scaled_fpir` of the results' scaling table or filler
        counts). When the claim's N differs from the N measured, its one-sided clustered bound
        is the verdict's bound (in either direction: the hypergeometric estimate is unbiased
        for a smaller watchlist, and beyond the fillers the bound is the pooled model's high
        end), and the check says so. Giving it allows the scaling.

    Raises
    ------
    MetricInputError
        Counts are impossible, no threshold to count at, the claim is about another
        watchlist size and scaling was not allowed (the message names ``scale_option``), or
        ``scaled_fpir`` is for another N, threshold or confidence than the claim.

    Examples
    --------
    >>> c = check_fpir_claim(Claim.one_in(6000), false_positives=0, non_mated_searches=18_000)
    >>> c.supported, c.searches_needed_if_no_more_errors
    (True, 17973)
    """
    if scaling not in ("conservative", "pooled"):
        raise MetricInputError(f"scaling must be 'conservative' or 'pooled', got {scaling!r}")
    conf = claim.confidence
    per_person = _per_person_counts(claim, searches, subject_false_positives, subject_searches)
    watchlist_size = int(searches.watchlist_size) if searches is not None else watchlist_size
    if per_person is None and cluster_summary is None and None in (
        false_positives,
        non_mated_searches,
    ):
        raise MetricInputError(MSG_NEED_COUNTS)
    clustered: ClusteredRate | None = None
    if per_person is not None:
        clustered = fpir_upper_bound(per_person[0], per_person[1], conf)
    elif cluster_summary is not None:
        clustered = korn_graubard_from_summary(cluster_summary, conf, sided="upper")
    if clustered is not None:
        k, n = int(clustered.errors[0]), int(clustered.trials)
        n_subjects = clustered.n_subjects
    else:
        k, n = int(false_positives), int(non_mated_searches)  # type: ignore[arg-type]
    if n <= 0 or not 0 <= k <= n:
        raise MetricInputError(
            f"need 0 <= false_positives <= non_mated_searches and at least one search; "
            f"got {k} of {n}"
        )
    if clustered is not None:
        measured = float(clustered.ci_high[0])
        method = str(clustered.method[0])
        n_eff = float(clustered.effective_trials[0])
        deff = float(clustered.design_effect[0])
    else:
        measured = float(clopper_pearson(k, n, conf, sided="upper")[1])
        method, n_eff, deff = INDEPENDENT_BOUND, float(n), float("nan")
    scaled = (
        claim.watchlist_size is not None
        and watchlist_size is not None
        and claim.watchlist_size != watchlist_size
    )
    figure = scaled_fpir if scaled else None
    if scaled and not scale_watchlist and figure is None:
        raise MetricInputError(
            MSG_WATCHLIST_MISMATCH.format(
                claim=claim.watchlist_size, data=watchlist_size, option=scale_option
            )
        )
    how, upper, bound_at_tested, optimistic = (
        _scale_bound(claim, measured, int(watchlist_size), scaling)  # type: ignore[arg-type]
        if scaled
        else ("none", measured, claim.bound, None)
    )
    if figure is not None:
        how, upper = _filler_bound(claim, figure)
        optimistic = None
    if clustered is None:
        needed = searches_needed(k, bound_at_tested, conf)
        at_rate = searches_needed_at_rate(k / n, bound_at_tested, conf)
        people_needed = people_at_rate = None
    else:
        needed, at_rate, people_needed, people_at_rate = _clustered_needs(
            k, n, n_eff, int(n_subjects or 1), bound_at_tested, conf
        )
    people_more = (
        None if people_needed is None else max(0, people_needed - int(n_subjects or 0))
    )
    return ClaimCheck(
        claim=claim,
        supported=upper <= claim.bound,
        false_positives=k,
        non_mated_searches=n,
        observed_rate=k / n,
        upper_bound=upper,
        tested_watchlist_size=watchlist_size,
        watchlist_scaled=scaled,
        searches_needed_if_no_more_errors=needed,
        additional_searches_needed=max(0, needed - n),
        searches_needed_at_observed_rate=at_rate,
        n_subjects=n_subjects,
        method=method,
        scaling=how,
        optimistic_upper_bound=optimistic,
        design_effect=None if not np.isfinite(deff) else max(1.0, deff),
        effective_searches=n_eff if clustered is not None else None,
        people_needed_if_no_more_errors=people_needed,
        additional_people_needed=people_more,
        people_needed_at_observed_rate=people_at_rate,
        measured_upper_bound=measured,
        scaled_fpir=figure,
    )


def _bound_note(method: str, *, explain: bool = True) -> str:
    """What the bound's name adds about the clustered bound's variant (``ClaimCheck.method``);
    ``explain=False``: the name without the explanation."""
    if method.endswith(PEOPLE_CAP_SUFFIX):
        # before "counted by people" below: this bound saw false positives
        base = _bound_note(method[: -len(PEOPLE_CAP_SUFFIX)], explain=explain)
        if not explain:
            return base + ", at most the bound counted by people"
        return base + (
            ", at most the bound counted by people (as many trials as the searches over the "
            "most searches of one person): independent people cannot make the rate vary more"
        )
    # not "people" alone: the envelope's own label ends "(top people)"
    if method == KORN_GRAUBARD_ALL_ERRORS:
        return ", counted by people as every search was a false positive"
    if "counted by people" in method:
        return ", counted by people as no false positive was seen"
    if method == KORN_GRAUBARD_ONE_PERSON:
        # one person's searches are one cluster: they count as one independent search
        return ", one person: the searches count as one"
    if method == KORN_GRAUBARD_MONOTONE:
        if not explain:
            return ", envelope over fewer false positives"
        return (
            ", envelope over fewer false positives: the largest over the same data with fewer "
            "of them among the people with the most, so one more false positive rarely lowers "
            "it, and then slightly"
        )
    if method == KORN_GRAUBARD_NOT_MONOTONE:
        if not explain:
            return "; NOT monotone in the false positives"
        return (
            "; NOT monotone in the false positives: these results keep no per-person top "
            "counts, and with one or two people holding them, one more false positive can "
            "lower this bound"
        )
    return ""


@dataclass(frozen=True)
class GroupClaimChecks:
    """A claim checked overall and within each group of one attribute.

    Attributes
    ----------
    overall : ClaimCheck
    attribute : str
    groups : dict of str to ClaimCheck
        Every group of the attribute with non-mated searches, ``"unknown"`` included.
    small_groups : tuple of str
        Groups with fewer than ``min_subjects`` people (checked and reported like the others;
        with few people a clustered bound is wide, so they rarely support a claim).
    """

    overall: ClaimCheck
    attribute: str
    groups: dict[str, ClaimCheck]
    small_groups: tuple[str, ...] = ()

    @property
    def failing_groups(self) -> list[str]:
        """Groups whose data do not support the claim."""
        return [label for label, check in self.groups.items() if not check.supported]

    @property
    def supported(self) -> bool:
        """True only when the claim is supported overall **and** in every reported group."""
        return self.overall.supported and not self.failing_groups

    def summary(self) -> str:
        lines = [self.overall.summary()]
        for label, check in self.groups.items():
            verdict = "supported" if check.supported else "NOT supported"
            small = " (small group)" if label in self.small_groups else ""
            from lfr_eval.plain import UNBOUNDED_SHARE

            # an upper bound reaching one half bounds nothing (lfr_eval.plain's rule); the
            # bound is named as the overall summary names it (counted by people, envelope, ...)
            value = (
                f"{one_in_n(check.upper_bound)} ({check.upper_bound:.3g})"
                if check.upper_bound < UNBOUNDED_SHARE
                else "no useful bound (FPIR could be near or above one half)"
            )
            bound = f"{check.bound_method(explain=False)}: {value}"
            lines.append(
                f"{self.attribute} = {label}{small}: "
                f"{plural(check.false_positives, 'false positive')} in "
                f"{plural(check.non_mated_searches, 'search')} from "
                f"{plural(check.n_subjects or 0, 'person')}; {bound}: {verdict}."
            )
        if self.failing_groups:
            lines.append(
                "The claim is not supported for every group: " + ", ".join(self.failing_groups)
                + "."
            )
        return "\n".join(lines)


def check_fpir_claim_by_group(
    claim: Claim,
    searches: SearchSet,
    attribute: str,
    *,
    min_subjects: int = 20,
    scale_watchlist: bool = False,
    scaling: ScalingModel = "conservative",
    scale_option: str = SCALE_OPTION_API,
    scaling_table: pd.DataFrame | None = None,
) -> GroupClaimChecks:
    """Check a claim overall and within every group of ``attribute`` (clustered by person).

    The claim holds for the population only where it holds for each group, so
    :attr:`GroupClaimChecks.supported` is False when any reported group fails (the CLI's
    ``lfr-eval claim --by`` then exits non-zero). No group is dropped: small groups and
    ``"unknown"`` labels are checked and listed. With ``scaling_table`` (the results' scaling
    table) a claim about another N uses each group's filler-gallery figure where the table has
    one (:func:`lfr_eval.protocols.scaled_fpir`).

    Raises
    ------
    MetricInputError
        The non-mated searches carry no such attribute (or the checks' own errors).
    """
    groups = searches.non_mated_groups
    if attribute not in groups.columns:
        raise MetricInputError(
            f"no attribute {attribute!r} among the non-mated searches; they have "
            f"{list(groups.columns)}"
        )
    options = {"scale_watchlist": scale_watchlist, "scaling": scaling, "scale_option": scale_option}
    if claim.watchlist_size is None or claim.watchlist_size == searches.watchlist_size:
        scaling_table = None  # nothing to scale
    overall = check_fpir_claim(
        claim, searches, scaled_fpir=claim_scaled_fpir(scaling_table, claim, "all", "all"),
        **options,  # type: ignore[arg-type]
    )  # fmt: skip
    labels = groups[attribute].astype(object)
    labels = labels.where(labels.notna(), "unknown").astype(str).to_numpy()
    checks: dict[str, ClaimCheck] = {}
    small = []
    for label in sorted(set(labels)):
        part = searches.subset(non_mated_mask=labels == label)
        figure = claim_scaled_fpir(scaling_table, claim, attribute, label)
        checks[label] = check_fpir_claim(
            claim, part, scaled_fpir=figure, **options  # type: ignore[arg-type]
        )
        if (checks[label].n_subjects or 0) < min_subjects:
            small.append(label)
    return GroupClaimChecks(overall, attribute, checks, tuple(small))


def aggregate_claim_threshold(claim: Claim, grid: ArrayLike) -> float:
    """The threshold of an aggregate's grid a claim is checked at: the claim's own when the grid
    holds it, else the nearest grid value **below** it. An aggregate keeps counts at its grid
    only, and a lower threshold can only add false positives, so the check is conservative
    (never the value above, which would drop some).

    Raises
    ------
    MetricInputError
        The claim names no threshold, or it lies below the grid's lowest threshold.
    """
    if claim.threshold is None:
        raise MetricInputError("the claim names no threshold to count false positives at")
    values = np.sort(np.asarray(grid, dtype=np.float64))
    at_or_below = values[values <= float(claim.threshold) + 1e-9]
    if at_or_below.size == 0:
        raise MetricInputError(
            f"the claim's threshold {claim.threshold:g} is below the aggregate's lowest "
            f"threshold {values[0]:g}: it holds no count there (aggregate the results again "
            "with a wider grid)"
        )
    return float(at_or_below[-1])


def check_fpir_claim_on_aggregate(
    claim: Claim,
    aggregate: AggregateResult,
    *,
    attribute: str | None = None,
    scale_watchlist: bool = False,
    scale_option: str = SCALE_OPTION_API,
) -> ClaimCheck | GroupClaimChecks:
    """Check a claim against an aggregate's figures alone (no per-person data), overall or, with
    ``attribute``, overall and within each of its groups (as :func:`check_fpir_claim_by_group`).

    The bound is clustered by person from each rates row's sufficient statistics (variance,
    degrees of freedom, Kish's effective people, the top people's counts), so it equals the
    bound checked from the full results at the same threshold; an aggregate written before they
    were recorded gives the bound for independent searches, and the check says so. The
    threshold is :func:`aggregate_claim_threshold` (the claim's, or the grid value just below);
    a claim about another N reads the aggregate's scaling table at that N
    (:func:`claim_scaled_fpir`). Groups the aggregate withheld (too few people) cannot be
    checked; :attr:`AggregateResult.withheld` names them.

    Raises
    ------
    MetricInputError
        No threshold, one below the grid, an attribute the aggregate does not hold, or the
        checks' own errors (another N without ``scale_watchlist``).
    """
    from dataclasses import replace as _replace

    from lfr_eval.report import ALL

    at = aggregate_claim_threshold(claim, aggregate.thresholds)
    claim = _replace(claim, threshold=at)
    if attribute is not None and attribute not in aggregate.attributes:
        raise MetricInputError(
            f"no attribute {attribute!r} in this aggregate; it has {list(aggregate.attributes)}"
        )
    same_n = claim.watchlist_size is None or claim.watchlist_size == aggregate.watchlist_size
    # another N only when allowed, as check_fpir_claim asks of the full results
    table = aggregate.scaling if scale_watchlist and not same_n else None

    def one(attr: str, group: str) -> ClaimCheck:
        rows = aggregate.at_threshold(at)
        row = rows[
            (rows["metric"] == "fpir") & (rows["attribute"] == attr) & (rows["group"] == group)
        ]
        if not len(row):
            raise MetricInputError(f"the aggregate holds no FPIR row for {attr} = {group}")
        r = row.iloc[0]
        return check_fpir_claim(
            claim,
            false_positives=int(r["errors"]),
            non_mated_searches=int(r["n_searches"]),
            watchlist_size=int(aggregate.watchlist_size),
            n_subjects=int(r["n_subjects"]),
            cluster_summary=aggregate.cluster_summary(at, "fpir", attr, group),
            scale_watchlist=scale_watchlist,
            scale_option=scale_option,
            scaled_fpir=claim_scaled_fpir(table, claim, attr, group),
        )

    overall = one(ALL, ALL)
    if attribute is None:
        return overall
    rates = aggregate.rates
    labels = rates[(rates["metric"] == "fpir") & (rates["attribute"] == attribute)]["group"]
    checks = {str(g): one(attribute, str(g)) for g in sorted(set(labels.astype(str)))}
    # the same rule as check_fpir_claim_by_group's default
    small = tuple(g for g, c in checks.items() if (c.n_subjects or 0) < 20)
    return GroupClaimChecks(overall, attribute, checks, small)


def claim_scaled_fpir(
    table: pd.DataFrame | None, claim: Claim, attribute: str = "all", group: str = "all"
) -> ScaledFpir | None:
    """The scaling table's figure at a claim's N, threshold and confidence, for
    ``check_fpir_claim(..., scaled_fpir=...)``: :func:`lfr_eval.protocols.scaled_fpir`.

    None when there is no table, the claim names no N or threshold, or the table holds no
    figure for that N. Raises :class:`MetricInputError` where the table cannot give one (the
    threshold is below its grid, or it holds intervals at another confidence).
    """
    if table is None or claim.watchlist_size is None or claim.threshold is None:
        return None
    from lfr_eval.protocols import ProtocolError, scaled_fpir

    try:
        return scaled_fpir(
            table, claim.watchlist_size, claim.threshold, attribute=attribute, group=group,
            confidence=claim.confidence,
        )  # fmt: skip
    except ProtocolError as exc:
        raise MetricInputError(str(exc)) from None
