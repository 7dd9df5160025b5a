"""Claim checker: does the data support a published error-rate claim?

A claim such as "FPIR is at most 1 in 6,000 with a 10,000-person watchlist at threshold 0.60" is
supported at confidence ``c`` when the one-sided Clopper–Pearson upper confidence bound of the
measured FPIR is at or below the claimed bound. The check also says what the data *does*
support (the smallest bound it supports: the upper bound itself) and how many non-mated searches
would be needed for the claim to be supported.

With zero false positives, supporting "1 in 6,000" at 95% takes about 18,000 independent
non-mated searches (rule of three); with 7 false positives about 79,000 (domain brief, §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from lfr_eval.metrics._intervals import clopper_pearson
from lfr_eval.metrics._searches import SearchSet
from lfr_eval.metrics._validation import MetricInputError, check_confidence, check_rate
from lfr_eval.operational import fmr_from_fpir, fpir_at_watchlist_size, one_in_n

MSG_WATCHLIST_MISMATCH = (
    "the claim is about a watchlist of {claim:,} but the searches ran against {data:,}; pass "
    "{option} to scale the bound with FPIR(N) = 1 - (1 - FMR)^N, or measure at the claimed size"
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


@dataclass(frozen=True)
class ClaimCheck:
    """Verdict on a :class:`Claim` from measured non-mated searches.

    Attributes
    ----------
    claim : Claim
    supported : bool
        Whether the one-sided upper bound is at or below the claimed bound.
    false_positives, non_mated_searches : int
        The counts the verdict rests on.
    observed_rate : float
        ``false_positives / non_mated_searches``.
    upper_bound : float
        One-sided Clopper–Pearson upper bound at ``claim.confidence``, at the claimed
        watchlist size (scaled if ``watchlist_scaled``). It is also the smallest "FPIR <= x"
        claim these data support.
    tested_watchlist_size : int or None
        N the searches ran against.
    watchlist_scaled : bool
        True when the bound was scaled from ``tested_watchlist_size`` to the claim's N.
    searches_needed_if_no_more_errors : int
        Total non-mated searches at which the claim would be supported if the extra searches
        brought no further false positives (the "18,000 for 0, 79,000 for 7" figure).
    additional_searches_needed : int
        ``max(0, searches_needed_if_no_more_errors - non_mated_searches)``.
    searches_needed_at_observed_rate : int or None
        Total searches needed if false positives keep occurring at the observed rate; ``None``
        when the observed rate is at or above the bound (no number of searches would do).
    n_subjects : int or None
        Distinct people among the non-mated searches, when known. Clopper–Pearson treats
        searches as independent; if people repeat, the effective sample is smaller.
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

    @property
    def smallest_supported_rate(self) -> float:
        """The lowest FPIR bound the data support at the claim's confidence."""
        return self.upper_bound

    def summary(self) -> str:
        """A few plain sentences for a report."""
        pct = f"{self.claim.confidence:.0%}"
        verdict = "support" if self.supported else "do not support"
        observed = f" ({one_in_n(self.observed_rate)})" if self.false_positives else ""
        lines = [
            f"Claim: {self.claim.describe()}.",
            (
                f"Observed {self.false_positives} false positives in {self.non_mated_searches:,} "
                f"non-mated searches{observed}."
            ),
            (
                f"One-sided {pct} upper bound: {one_in_n(self.upper_bound)} "
                f"({self.upper_bound:.3g}); the data {verdict} the claim; "
                + (
                    f"they support FPIR <= {one_in_n(self.upper_bound)}."
                    if self.upper_bound < 0.5
                    else "they support no useful bound (FPIR could be near or above one half)."
                )
            ),
        ]
        if not self.supported:
            lines.append(
                f"With no further false positives, {self.searches_needed_if_no_more_errors:,} "
                f"searches in all ({self.additional_searches_needed:,} more) would support it."
            )
            if self.searches_needed_at_observed_rate is None:
                lines.append("At the observed rate no number of searches would support it.")
            else:
                lines.append(
                    f"At the observed rate, {self.searches_needed_at_observed_rate:,} searches "
                    "in all would be needed."
                )
        if self.watchlist_scaled:
            lines.append(
                f"The bound was scaled from a watchlist of {self.tested_watchlist_size:,} "
                "assuming independent comparisons."
            )
        if self.n_subjects is not None and self.n_subjects < self.non_mated_searches:
            lines.append(
                f"The searches come from {self.n_subjects:,} people; the bound assumes "
                "independent searches, so it is optimistic if one person's searches correlate."
            )
        return " ".join(lines)


def _upper(k: float, n: float, confidence: float) -> float:
    """One-sided Clopper–Pearson upper bound; ``k`` may be fractional (expected errors)."""
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


def check_fpir_claim(
    claim: Claim,
    searches: SearchSet | None = None,
    *,
    false_positives: int | None = None,
    non_mated_searches: int | None = None,
    watchlist_size: int | None = None,
    n_subjects: int | None = None,
    scale_watchlist: bool = False,
    scale_option: str = SCALE_OPTION_API,
) -> ClaimCheck:
    """Check an FPIR claim against measured non-mated searches.

    Parameters
    ----------
    claim : Claim
        The bound, watchlist size, threshold and confidence.
    searches : SearchSet, optional
        Searches to count false positives in at ``claim.threshold`` (best non-mated score
        >= threshold). Its watchlist size and subjects are used.
    false_positives, non_mated_searches : int, optional
        Counts, instead of ``searches``.
    watchlist_size : int, optional
        N of the counts (ignored with ``searches``).
    n_subjects : int, optional
        Distinct people behind the counts (ignored with ``searches``).
    scale_watchlist : bool
        Allow a claim about another watchlist size: the upper bound is scaled with
        ``FPIR(N) = 1 - (1 - FMR)^N`` (a monotone map, so the coverage is kept, under the
        independence model).
    scale_option : str
        How the caller names the ``scale_watchlist`` switch in the error raised when the
        watchlist sizes differ (the CLI passes :data:`SCALE_OPTION_CLI`).

    Raises
    ------
    MetricInputError
        Counts are impossible, no threshold to count at, or the claim is about another
        watchlist size and scaling was not allowed (the message names ``scale_option``).

    Examples
    --------
    >>> c = check_fpir_claim(Claim.one_in(6000), false_positives=0, non_mated_searches=18_000)
    >>> c.supported, c.searches_needed_if_no_more_errors
    (True, 17973)
    """
    if searches is not None:
        if claim.threshold is None:
            raise MetricInputError(MSG_NEED_THRESHOLD)
        best = np.asarray(searches.non_mated_best, dtype=np.float64)
        false_positives = int(np.count_nonzero(best >= claim.threshold))
        non_mated_searches = int(best.shape[0])
        watchlist_size = int(searches.watchlist_size)
        n_subjects = int(np.unique(np.asarray(searches.non_mated_subjects)).shape[0])
    elif false_positives is None or non_mated_searches is None:
        raise MetricInputError(MSG_NEED_COUNTS)
    k, n = int(false_positives), int(non_mated_searches)
    if n <= 0 or not 0 <= k <= n:
        raise MetricInputError(
            f"need 0 <= false_positives <= non_mated_searches and at least one search; "
            f"got {k} of {n}"
        )
    conf = claim.confidence
    _, upper = clopper_pearson(k, n, conf, sided="upper")
    upper = float(upper)
    bound_at_tested = claim.bound
    scaled = False
    if (
        claim.watchlist_size is not None
        and watchlist_size is not None
        and claim.watchlist_size != watchlist_size
    ):
        if not scale_watchlist:
            raise MetricInputError(
                MSG_WATCHLIST_MISMATCH.format(
                    claim=claim.watchlist_size, data=watchlist_size, option=scale_option
                )
            )
        scaled = True
        fmr_upper = fmr_from_fpir(upper, watchlist_size)
        upper = float(fpir_at_watchlist_size(fmr_upper, claim.watchlist_size))
        # The claimed bound expressed at the size the searches were run at.
        bound_at_tested = float(
            fpir_at_watchlist_size(fmr_from_fpir(claim.bound, claim.watchlist_size), watchlist_size)
        )
    needed = searches_needed(k, bound_at_tested, conf)
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
        searches_needed_at_observed_rate=searches_needed_at_rate(k / n, bound_at_tested, conf),
        n_subjects=n_subjects,
    )
