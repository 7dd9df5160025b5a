"""Per-group FPIR and FNIR with intervals, ratios and tests: one object, like fairlearn's
MetricFrame.

:class:`IdentificationFrame` takes a :class:`~lfr_eval.metrics.SearchSet`, thresholds and the names
of sensitive features (columns of the SearchSet's group tables). Groups are the intersections of
those features (``["sex", "ethnicity"]`` gives ``("female", "black")`` ...). Every group is
reported, including ``"unknown"`` labels and groups too small to say much: those carry
``small_group=True`` rather than being dropped.

Intervals are clustered by subject by default (``ci_method="design-effect-jeffreys"``: the
design-effect Jeffreys interval of :mod:`lfr_eval.metrics._clustered`), because repeat images of
one person are not independent. The exact design-effect Clopper–Pearson (``"korn-graubard"``,
what claim verdicts use), the percentile subject bootstrap (``"subject-bootstrap"``) and the
independence intervals (``"clopper-pearson"``, ``"wilson"``) are available by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lfr_eval.metrics._clustered import (
    CLUSTERED_METHODS,
    ClusterSummary,
    clustered_interval,
    format_top_people,
    korn_graubard_from_summary,
    summary_of_row,
)
from lfr_eval.metrics._group_tests import (
    DEFAULT_ADJUSTMENT,
    SIMULTANEOUS_RATIO,
    SIMULTANEOUS_RATIO_TO_OVERALL,
    Adjustment,
    Alternative,
    GroupRatesComparison,
    GroupTestResult,
    bootstrap_compare_groups,
    compare_group_rates,
    fisher_exact_test,
    permutation_compare_groups,
    permutation_test_subjects,
    simultaneous_ratio_intervals,
    simultaneous_ratio_to_overall,
)
from lfr_eval.metrics._intervals import (
    SubjectHistogram,
    SubjectTable,
    binomial_interval,
    bootstrap_degenerate,
    subject_bootstrap_interval,
    subject_histogram,
    summarise_subjects,
)
from lfr_eval.metrics._people_sums import (
    PEOPLE_SUMS_COLUMNS,
    PeopleSumsBuilder,
    people_sums_columns,
)
from lfr_eval.metrics._searches import SearchSet
from lfr_eval.metrics._validation import MetricInputError, as_thresholds, check_confidence

if TYPE_CHECKING:
    import plotly.graph_objects as go

CiMethod = Literal[
    "design-effect-jeffreys", "korn-graubard", "subject-bootstrap", "clopper-pearson", "wilson"
]
CI_METHODS: tuple[str, ...] = (
    "design-effect-jeffreys",
    "korn-graubard",
    "subject-bootstrap",
    "clopper-pearson",
    "wilson",
)
Metric = Literal["fpir", "fnir"]
METRICS: tuple[str, ...] = ("fpir", "fnir")

#: columns of :attr:`IdentificationFrame.overall` and :attr:`IdentificationFrame.by_group`
FRAME_COLUMNS: tuple[str, ...] = (
    "n_searches",
    "n_subjects",
    "errors",
    "rate",
    "ci_low",
    "ci_high",
    "ci_method",
    "small_group",
    "insufficient_data",
    "rate_variance",
    "variance_df",
    "effective_people",
    "top_people",
    "searches_fourth_moment",
    "searches_max",
    *PEOPLE_SUMS_COLUMNS,
)

MSG_MISSING_FEATURE = (
    "sensitive feature {name!r} is not a column of the {side} group table; available: {available}"
)
MSG_UNKNOWN_METRIC = "metric must be one of {choices}, got {value!r}"
MSG_UNKNOWN_GROUP = "group {group!r} not found; groups are: {groups}"
MSG_UNKNOWN_THRESHOLD = "threshold {value} is not one of this frame's thresholds: {available}"
MSG_CI_METHOD = (
    "ci_method must be 'design-effect-jeffreys' (clustered by subject, the default), "
    "'korn-graubard' (clustered, exact ends), 'subject-bootstrap', 'clopper-pearson' or "
    "'wilson' (these two treat searches as independent), got {value!r}"
)

NO_GROUP = "all"


@dataclass(frozen=True)
class _SideCounts:
    """Counts of one metric at every threshold, per subject-within-group cluster.

    Sparse histograms, never (clusters x thresholds) matrices: a million crowd faces at a
    thousand thresholds fit (:class:`~lfr_eval.metrics.SubjectHistogram`).
    """

    cluster_group: np.ndarray  # (c,) group code of each cluster
    clusters: SubjectHistogram  # (c,) clusters; subjects are the subject labels
    overall: SubjectHistogram  # clustered by subject only, for the overall row


def _side_counts(
    subjects: np.ndarray,
    hit_scores: np.ndarray,
    group_codes: np.ndarray,
    thresholds: np.ndarray,
    *,
    error_is_hit: bool,
) -> _SideCounts:
    """Per-cluster error counts; an error is a hit (FPIR) or a non-hit (FNIR)."""
    subj_labels, subj_codes = _subject_codes(subjects)
    s = max(int(subj_labels.shape[0]), 1)
    cluster_keys = group_codes.astype(np.int64) * s + subj_codes
    by_key = subject_histogram(cluster_keys, hit_scores, thresholds, error_is_hit=error_is_hit)
    keys = by_key.subjects
    by_code = subject_histogram(subj_codes, hit_scores, thresholds, error_is_hit=error_is_hit)
    labels = subj_labels[keys % s] if len(keys) else np.array([], dtype=str)
    return _SideCounts(
        cluster_group=keys // s,
        clusters=SubjectHistogram(labels, by_key.trials, by_key.bins, thresholds, error_is_hit),
        overall=SubjectHistogram(
            subj_labels[by_code.subjects], by_code.trials, by_code.bins, thresholds, error_is_hit
        ),
    )


def _subject_codes(subjects: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(subjects.astype(str), return_inverse=True)``, the same arrays, without
    turning every search's subject into a string first where the subjects are integers: the
    unique integers are turned into strings and put in string order. At 2M searches of 1M
    people that string conversion and sort was the frame build's peak memory (609 MiB traced
    against 214 MiB; ``benchmarks/bench_group_frame.py``)."""
    values = np.asarray(subjects)
    if values.dtype.kind not in "iu":
        labels, codes = np.unique(values.astype(str), return_inverse=True)
        return labels, codes.ravel()
    unique, inverse = np.unique(values, return_inverse=True)
    text = unique.astype(str)  # distinct integers have distinct decimal strings
    order = np.argsort(text, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    return text[order], rank[inverse.ravel()]


class IdentificationFrame:
    """FPIR(N, T) and FNIR(N, R, T) overall and by group, with intervals, ratios and tests.

    Parameters
    ----------
    searches : SearchSet
        Mated and non-mated searches against one watchlist (size N).
    thresholds : array_like of float
        Similarity thresholds in [-1, 1]; an alert when score >= T. Sorted and de-duplicated.
    sensitive_features : sequence of str
        Columns of ``searches.mated_groups`` / ``non_mated_groups``. Several features give their
        intersections. Empty: one group called ``"all"``.
    rank : int
        R for FNIR (1 = the mate must be the top candidate).
    confidence : float
        Two-sided interval coverage in (0, 1).
    ci_method : str
        One of :data:`CI_METHODS`.
        ``"design-effect-jeffreys"`` (default): the Jeffreys interval for the effective number
        of searches clustered by subject (:func:`~lfr_eval.metrics.design_effect_jeffreys`:
        the small-sample t factor only on the between-person part of the variance, the
        effective number never below Kish's effective number of people, the exact interval at
        exactly one error), closer to 95% than the exact ends and with one-sided upper bounds
        still >= 0.94 by simulation.
        ``"korn-graubard"``: the same effective number with exact Clopper–Pearson ends
        (:func:`~lfr_eval.metrics.korn_graubard`; conservative). With no errors the bound
        is counted by people, not searches. ``"subject-bootstrap"``: percentile bootstrap over
        subjects within each group (it under-covers with strong clustering; where every replicate is
        identical the Korn–Graubard interval is used and ``ci_method`` says so). The binomial
        intervals treat searches as independent and are used only when named.
    n_boot : int
        Bootstrap replicates (subject bootstrap only).
    min_subjects, min_searches : int
        A group with fewer subjects or fewer searches is flagged ``small_group`` (still shown).
    seed : int
        Seed of the bootstrap, for reproducible intervals.

    Attributes
    ----------
    overall : DataFrame
        Index ``(metric, threshold)``; columns :data:`FRAME_COLUMNS`. ``rate_variance``,
        ``variance_df`` and ``effective_people`` are the cluster-robust variance of the rate,
        its degrees of freedom and Kish's effective number of people: the sufficient
        statistics of the Korn–Graubard interval (:class:`~lfr_eval.metrics.ClusterSummary`).
        ``errors_squared``, ``errors_searches``, ``errors_squared_per_search`` (sums of
        ``e^2``, ``e n``, ``e^2 / n`` over people) and ``searches_histogram`` (``"1x1200
        2x80"``: people by searches) are what the null bootstrap group test needs
        (:class:`~lfr_eval.metrics.PeopleSums`), so an aggregate runs the same test.
    by_group : DataFrame
        Index ``(metric, threshold, *sensitive_features)``; the same columns. ``n_searches``
        counts searches (non-mated for FPIR, mated for FNIR), ``n_subjects`` distinct people.

    Examples
    --------
    >>> frame = IdentificationFrame(searches, [0.56, 0.58, 0.60], ["ethnicity"])  # doctest: +SKIP
    >>> frame.by_group.loc[("fpir", 0.60)]  # doctest: +SKIP
    >>> frame.ratio("fpir", reference="lowest")  # doctest: +SKIP
    """

    def __init__(
        self,
        searches: SearchSet,
        thresholds: ArrayLike,
        sensitive_features: Sequence[str] = (),
        *,
        rank: int = 1,
        confidence: float = 0.95,
        ci_method: CiMethod = "design-effect-jeffreys",
        n_boot: int = 1000,
        min_subjects: int = 20,
        min_searches: int = 100,
        seed: int = 0,
    ) -> None:
        if not isinstance(searches, SearchSet):
            raise MetricInputError("IdentificationFrame needs a SearchSet")
        if ci_method not in CI_METHODS:
            raise MetricInputError(MSG_CI_METHOD.format(value=ci_method))
        if rank < 1:
            raise MetricInputError(f"rank must be >= 1 (1 = best candidate), got {rank}")
        if isinstance(sensitive_features, str):
            sensitive_features = [sensitive_features]
        self._features = list(sensitive_features)
        self._thresholds = np.unique(np.atleast_1d(as_thresholds(thresholds)).ravel())
        self._confidence = check_confidence(confidence)
        self._ci_method = ci_method
        self._n_boot = int(n_boot)
        self._rank = int(rank)
        self._min_subjects = int(min_subjects)
        self._min_searches = int(min_searches)
        self._seed = seed
        self._watchlist_size = int(searches.watchlist_size)

        mated_codes, non_mated_codes, self._group_keys = self._encode_groups(searches)
        thr = self._thresholds
        fnir_scores = np.where(
            np.asarray(searches.mate_ranks) <= rank,
            np.asarray(searches.mate_scores, dtype=np.float64),
            -np.inf,
        )
        self._sides = {
            "fpir": _side_counts(
                searches.non_mated_subjects,
                np.asarray(searches.non_mated_best, dtype=np.float64),
                non_mated_codes,
                thr,
                error_is_hit=True,
            ),
            "fnir": _side_counts(
                searches.mated_subjects, fnir_scores, mated_codes, thr, error_is_hit=False
            ),
        }
        seeds = np.random.SeedSequence(seed).spawn(2 * (len(self._group_keys) + 1))
        self._seeds = iter(seeds)
        self._overall = pd.concat([self._overall_table(m) for m in METRICS])
        self._by_group = pd.concat([self._group_table(m) for m in METRICS])

    # ---------------------------------------------------------------- construction helpers

    def _encode_groups(self, searches: SearchSet) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        if not self._features:
            keys = pd.DataFrame({"group": [NO_GROUP]})
            return (
                np.zeros(searches.n_mated, np.int64),
                np.zeros(searches.n_non_mated, np.int64),
                keys,
            )
        sides = []
        for side, table, n in (
            ("mated", searches.mated_groups, searches.n_mated),
            ("non-mated", searches.non_mated_groups, searches.n_non_mated),
        ):
            missing = [f for f in self._features if f not in table.columns]
            if missing and n == 0:
                table = pd.DataFrame({f: pd.Series([], dtype=object) for f in self._features})
            elif missing:
                raise MetricInputError(
                    MSG_MISSING_FEATURE.format(
                        name=missing[0], side=side, available=list(table.columns)
                    )
                )
            labels = table[self._features].astype(object)
            # Missing labels are a group of their own, never dropped.
            sides.append(labels.where(labels.notna(), "unknown").astype(str))
        combined = pd.concat(sides, ignore_index=True)
        codes = combined.groupby(self._features, sort=True).ngroup().to_numpy(np.int64)
        keys = (
            combined.assign(_code=codes)
            .drop_duplicates("_code")
            .sort_values("_code")
            .drop(columns="_code")
            .reset_index(drop=True)
        )
        n_m = searches.n_mated
        return codes[:n_m], codes[n_m:], keys

    def _interval(
        self, errors: np.ndarray, trials: int, counts: SubjectTable, summary: ClusterSummary
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(low, high, method label per threshold) for one group's (or the overall) counts."""
        m = errors.shape[0]
        seed = next(self._seeds)
        if self._ci_method in ("clopper-pearson", "wilson"):
            low, high = binomial_interval(errors, trials, self._confidence, method=self._ci_method)
            return low, high, np.full(m, self._ci_method, dtype=object)
        if trials == 0:
            return np.zeros(m), np.ones(m), np.full(m, self._ci_method, dtype=object)
        if self._ci_method in CLUSTERED_METHODS:
            chosen = clustered_interval(summary, self._confidence, method=self._ci_method)
            return chosen.ci_low, chosen.ci_high, chosen.method
        clustered = korn_graubard_from_summary(summary, self._confidence)
        if counts.n_subjects < 2:
            return clustered.ci_low, clustered.ci_high, clustered.method
        low, high = subject_bootstrap_interval(
            counts, self._confidence, n_boot=self._n_boot, seed=np.random.default_rng(seed)
        )
        # Where every replicate is the same (no errors, all errors, every subject at the same
        # rate) the percentile interval has zero width; the clustered interval stands in and
        # the label says so.
        fallback = bootstrap_degenerate(counts)
        method = np.where(fallback, clustered.method, "subject-bootstrap")
        return (
            np.where(fallback, clustered.ci_low, low),
            np.where(fallback, clustered.ci_high, high),
            method.astype(object),
        )

    def _rows(
        self,
        errors: np.ndarray,
        trials: int,
        n_subjects: int,
        counts: SubjectTable,
    ) -> dict[str, np.ndarray]:
        m = self._thresholds.shape[0]
        # The clustered interval's sufficient statistics (nothing per person): an aggregate
        # keeps them so claims checked from it match those checked from the full data.
        # the group test's sums over people from the same pass over the per-person counts
        builder = PeopleSumsBuilder(counts.trials) if np.any(counts.trials > 0) else None
        summary = summarise_subjects(counts, people_sums=builder)
        top_errors, top_trials = summary.top_errors, summary.top_trials
        assert top_errors is not None and top_trials is not None  # summarise_subjects keeps them
        low, high, method = self._interval(errors, trials, counts, summary)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = errors / trials if trials else np.full(m, np.nan)
        small = n_subjects < self._min_subjects or trials < self._min_searches
        return {
            "n_searches": np.full(m, trials, np.int64),
            "n_subjects": np.full(m, n_subjects, np.int64),
            "errors": errors.astype(np.int64),
            "rate": rate.astype(np.float64),
            "ci_low": low,
            "ci_high": high,
            "ci_method": method,
            "small_group": np.full(m, small),
            "insufficient_data": np.full(m, trials == 0),
            "rate_variance": summary.variance,
            "variance_df": summary.df,
            "effective_people": np.full(m, summary.effective_people),
            # what the one-sided bound monotone in the errors needs (no person named)
            "top_people": format_top_people(top_errors, top_trials),
            "searches_fourth_moment": np.full(m, summary.trials_fourth_moment, np.float64),
            # the most searches one person has: the people's interval's M (a count, no name)
            "searches_max": np.full(
                m, np.nan if summary.largest_trials is None else summary.largest_trials
            ),
            # what the null bootstrap group test needs (sums and a searches-per-person
            # histogram, no person named): an aggregate runs the full results' test from them
            **self._people_sums(builder),
        }

    def _people_sums(self, builder: PeopleSumsBuilder | None) -> dict[str, np.ndarray]:
        m = self._thresholds.shape[0]
        if builder is None:  # no person searched
            return {
                "errors_squared": np.zeros(m, np.int64),
                "errors_searches": np.zeros(m, np.int64),
                "errors_squared_per_search": np.zeros(m),
                "searches_histogram": np.full(m, "", dtype=object),
            }
        return people_sums_columns(builder.result())

    def _overall_table(self, metric: str) -> pd.DataFrame:
        o = self._sides[metric].overall
        trials = int(o.trials.sum())
        errors = o.error_totals()
        data = self._rows(errors, trials, o.n_subjects, o)
        index = pd.MultiIndex.from_arrays(
            [np.full(len(self._thresholds), metric), self._thresholds],
            names=["metric", "threshold"],
        )
        return pd.DataFrame(data, index=index, columns=list(FRAME_COLUMNS))

    def _group_table(self, metric: str) -> pd.DataFrame:
        side = self._sides[metric]
        m = len(self._thresholds)
        frames = []
        for code in range(len(self._group_keys)):
            counts = side.clusters.subset(side.cluster_group == code)
            trials = int(counts.trials.sum())
            errors = counts.error_totals()
            data = self._rows(errors, trials, counts.n_subjects, counts)
            key = self._group_keys.iloc[code]
            arrays = [np.full(m, metric), self._thresholds] + [
                np.full(m, key[c], dtype=object) for c in self._group_keys.columns
            ]
            index = pd.MultiIndex.from_arrays(
                arrays, names=["metric", "threshold", *self._group_keys.columns]
            )
            frames.append(pd.DataFrame(data, index=index, columns=list(FRAME_COLUMNS)))
        return pd.concat(frames).sort_index(level=["metric", "threshold"], sort_remaining=False)

    # ---------------------------------------------------------------- public attributes

    @property
    def overall(self) -> pd.DataFrame:
        """Overall rates, index ``(metric, threshold)``; columns :data:`FRAME_COLUMNS`."""
        return self._overall

    @property
    def by_group(self) -> pd.DataFrame:
        """Per-group rates, index ``(metric, threshold, *features)``; small groups flagged."""
        return self._by_group

    @property
    def thresholds(self) -> np.ndarray:
        return self._thresholds

    @property
    def sensitive_features(self) -> list[str]:
        return list(self._features)

    @property
    def groups(self) -> list[str | tuple[str, ...]]:
        """Group labels: strings for one feature, tuples for intersections."""
        if self._group_keys.shape[1] == 1:
            labels: list[str | tuple[str, ...]] = self._group_keys.iloc[:, 0].tolist()
            return labels
        return list(self._group_keys.itertuples(index=False, name=None))

    @property
    def watchlist_size(self) -> int:
        return self._watchlist_size

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def confidence(self) -> float:
        return self._confidence

    @property
    def ci_method(self) -> str:
        return self._ci_method

    def plot(
        self,
        kind: Literal["rates", "det", "ratio"] = "rates",
        metric: Metric = "fpir",
        *,
        by_group: bool = True,
        **kwargs: Any,
    ) -> go.Figure:
        """Draw this frame (scikit-learn's Display style; nothing is recomputed).

        Parameters
        ----------
        kind : {"rates", "det", "ratio"}
            ``"rates"``: ``metric`` against the threshold with interval bands
            (:class:`lfr_eval.report.RateCurveDisplay`); ``"det"``: FNIR against FPIR
            (:class:`~lfr_eval.report.DetCurveDisplay`); ``"ratio"``: each group's ``metric``
            over the lowest group's, with :meth:`ratio`'s intervals
            (:class:`~lfr_eval.report.GroupRatioDisplay`).
        metric : {"fpir", "fnir"}
        by_group : bool
            One line per group (the intersection of the sensitive features); False: overall.
        **kwargs
            Passed to the display's ``plot``.
        """
        from lfr_eval.report import DetCurveDisplay, GroupRatioDisplay, RateCurveDisplay

        attribute = " × ".join(self.sensitive_features) if by_group else None
        if kind == "rates":
            return RateCurveDisplay(self, metric, attribute).plot(**kwargs)
        if kind == "det":
            return DetCurveDisplay(self, attribute).plot()
        if kind == "ratio":
            return GroupRatioDisplay(self, metric, attribute).plot(**kwargs)
        raise MetricInputError(f"kind must be 'rates', 'det' or 'ratio', got {kind!r}")

    # ---------------------------------------------------------------- comparisons

    def _metric(self, metric: str) -> str:
        if metric not in METRICS:
            raise MetricInputError(MSG_UNKNOWN_METRIC.format(choices=list(METRICS), value=metric))
        return metric

    def _table(
        self, metric: str, include_small: bool, include_unknown: bool = True
    ) -> pd.DataFrame:
        table = self._by_group.xs(self._metric(metric), level="metric")
        keep = ~table["insufficient_data"]
        if not include_small:
            keep &= ~table["small_group"]
        if not include_unknown:
            labels = table.index.droplevel("threshold")
            rows = labels if isinstance(labels, pd.MultiIndex) else [(v,) for v in labels]
            keep &= np.array(["unknown" not in tuple(map(str, r)) for r in rows], dtype=bool)
        return table[keep]

    def rates(self, metric: Metric = "fpir") -> pd.DataFrame:
        """Rates as a table: one row per threshold, one column per group (for curves)."""
        table = self._by_group.xs(self._metric(metric), level="metric")["rate"]
        return table.unstack(list(range(1, table.index.nlevels)))

    def _group_key(self, group: str | tuple[str, ...]) -> tuple[str, ...]:
        key = (group,) if isinstance(group, str) else tuple(group)
        if key not in set(self._group_keys.itertuples(index=False, name=None)):
            raise MetricInputError(MSG_UNKNOWN_GROUP.format(group=group, groups=self.groups))
        return key

    def ratio(
        self,
        metric: Metric = "fpir",
        reference: str | tuple[str, ...] | None = "lowest",
        *,
        include_small: bool = False,
        include_unknown: bool = False,
        ci: bool = True,
    ) -> pd.DataFrame:
        """Each group's rate divided by a reference rate, at every threshold.

        Parameters
        ----------
        metric : {"fpir", "fnir"}
        reference : "lowest", None or a group label
            ``"lowest"``: the lowest group rate at that threshold (NIST's convention);
            ``None``: the overall rate; a group label (tuple for intersections): that group.
        include_small : bool
            Whether small groups take part (default False, as on the demographic page and in
            :meth:`max_min_ratio`: a two-person group at 0 would make every ratio to the lowest
            infinite).
        include_unknown : bool
            Whether the ``"unknown"`` label takes part (default False). With both False (the
            defaults) the family is the demographic page's, and the ratio-to-lowest intervals
            are the same numbers as :func:`~lfr_eval.metrics.ratio_to_lowest` gives from the
            aggregate.
        ci : bool
            Also give an interval of each ratio (``ratio_ci_low``, ``ratio_ci_high``). To the
            lowest or a named group: clustered by person and **simultaneous** over the
            included groups (:func:`~lfr_eval.metrics.simultaneous_ratio_intervals`: log ratio
            with cluster-robust variances and a max-|t| critical value over all pairs, so the
            ratio to the lowest group picked after seeing the data is covered too; where a rate
            is 0, ratios of Bonferroni Korn–Graubard bounds). Measured: with equal true rates
            some interval excludes 1 in at most ~5% of data sets (the percentile bootstrap did
            in 16%). To the overall rate (``reference=None``): the same construction for
            ``log(rate_g / overall)``, whose variance counts the group's share of the overall
            rate (:func:`~lfr_eval.metrics.simultaneous_ratio_to_overall`).

        Returns
        -------
        DataFrame
            Index ``(threshold, *features)``; columns ``rate``, ``reference_rate``, ``ratio``,
            ``small_group`` and, with ``ci``, ``ratio_ci_low``, ``ratio_ci_high`` and
            ``ratio_ci_method`` (the method's name). ``ratio`` is ``inf`` when the reference
            rate is 0 and the group's is not, NaN when both are 0 (its interval is then
            unbounded or NaN). Groups without searches are left out.
        """
        table = self._table(metric, include_small, include_unknown)
        rate = table["rate"]
        thr_level = table.index.get_level_values("threshold")
        if isinstance(reference, str) and reference == "lowest":
            ref = rate.groupby(level="threshold").transform("min")
        elif reference is None:
            overall = self._overall.xs(metric, level="metric")["rate"]
            ref = pd.Series(overall.reindex(thr_level).to_numpy(), index=rate.index)
        else:
            key = self._group_key(reference)
            full = self._by_group.xs(metric, level="metric")["rate"]
            ref_rates = full.xs(key, level=list(range(1, full.index.nlevels)))
            if isinstance(ref_rates, pd.DataFrame):  # pragma: no cover - pandas shape quirk
                ref_rates = ref_rates.iloc[:, 0]
            ref = pd.Series(ref_rates.reindex(thr_level).to_numpy(), index=rate.index)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = rate.to_numpy() / ref.to_numpy()
        out = pd.DataFrame(
            {
                "rate": rate,
                "reference_rate": ref.to_numpy(),
                "ratio": ratio,
                "small_group": table["small_group"],
            },
            index=rate.index,
        )
        if ci:
            low, high = self._ratio_interval(metric, reference, include_small, include_unknown)
            codes, t_index = self._locate(rate.index)
            out["ratio_ci_low"] = low[codes, t_index]
            out["ratio_ci_high"] = high[codes, t_index]
            out["ratio_ci_method"] = (
                SIMULTANEOUS_RATIO_TO_OVERALL if reference is None else SIMULTANEOUS_RATIO
            )
        return out

    def _locate(self, index: pd.MultiIndex) -> tuple[np.ndarray, np.ndarray]:
        """(group code, threshold position) of each row of an index (threshold, *features)."""
        keys = pd.MultiIndex.from_frame(self._group_keys.astype(str))
        labels = index.droplevel("threshold")
        if not isinstance(labels, pd.MultiIndex):
            labels = pd.MultiIndex.from_arrays([labels.astype(str)])
        codes = keys.get_indexer(labels)
        positions = np.searchsorted(self._thresholds, index.get_level_values("threshold"))
        return codes.astype(np.int64), positions.astype(np.int64)

    def _ratio_interval(
        self,
        metric: str,
        reference: str | tuple[str, ...] | None,
        include_small: bool,
        include_unknown: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Interval of each group's ratio, shape (G, m) each (NaN for groups left out), clustered
        and simultaneous over the included groups: to the lowest or a named group
        :func:`~lfr_eval.metrics.simultaneous_ratio_intervals`, to the overall rate
        :func:`~lfr_eval.metrics.simultaneous_ratio_to_overall`."""
        n_groups, m = len(self._group_keys), len(self._thresholds)
        low = np.full((n_groups, m), np.nan)
        high = np.full((n_groups, m), np.nan)
        table = self._table(metric, include_small, include_unknown)  # the groups ratio() reports
        codes, t_index = self._locate(table.index)
        if reference is None:
            for t in np.unique(t_index):
                members = sorted(set(codes[t_index == t].tolist()))
                # every group with searches makes up the overall rate, reported or not
                parts = {str(c): self._summary_at(metric, c, int(t)) for c in range(n_groups)}
                parts = {c: v for c, v in parts.items() if v.trials > 0}
                to_overall = simultaneous_ratio_to_overall(
                    parts, self._confidence, family=[str(c) for c in members]
                )
                for i, c in enumerate(members):
                    low[c, t], high[c, t] = to_overall.low[i], to_overall.high[i]
            return low, high
        named = not (isinstance(reference, str) and reference == "lowest")
        for t in np.unique(t_index):
            family = set(codes[t_index == t].tolist())
            if named:
                family.add(self._code(reference))
            at_t = {str(c): self._summary_at(metric, c, int(t)) for c in sorted(family)}
            if named:
                ref_code = self._code(reference)
            else:
                rates = {c: float(v.errors[0]) / v.trials for c, v in
                         ((int(k), v) for k, v in at_t.items()) if v.trials > 0}
                ref_code = min(rates, key=rates.__getitem__)
            # no seed: the critical value is a fixed numerical integration, so the aggregate
            # (ratio_to_lowest) gives the same interval from the same summaries
            ratios = simultaneous_ratio_intervals(at_t, self._confidence)
            j = ratios.index(str(ref_code))
            for c in family:
                i = ratios.index(str(c))
                low[c, t], high[c, t] = ratios.low[i, j], ratios.high[i, j]
        return low, high

    def _extremes(
        self, metric: str, include_small: bool, include_unknown: bool
    ) -> tuple[pd.Series, pd.Series]:
        """(highest, lowest) compared rate at each threshold, both NaN where fewer than two
        groups are compared: one group is not a comparison, and a summary measure over it
        (difference 0, ratio 1, FDR 1) would read as "perfectly fair"."""
        table = self._table(metric, include_small, include_unknown)
        rate = table["rate"].groupby(level="threshold")
        enough = rate.count() >= 2
        index = pd.Index(self._thresholds, name="threshold")
        return rate.max().where(enough).reindex(index), rate.min().where(enough).reindex(index)

    def difference(
        self, metric: Metric = "fpir", *, include_small: bool = False, include_unknown: bool = False
    ) -> pd.Series:
        """Highest minus lowest group rate at each threshold, in [0, 1].

        Small groups (``small_group``) and the ``"unknown"`` label are left out unless asked
        (``include_small``, ``include_unknown``), as on the demographic page
        (:func:`lfr_eval.explain.group_comparison`): a group of two people is not evidence of
        a difference. NaN where fewer than two groups are left (the page then says "fewer
        than two groups are large enough to compare").
        """
        high, low = self._extremes(metric, include_small, include_unknown)
        return (high - low).rename(f"{metric}_difference")

    def max_min_ratio(
        self, metric: Metric = "fpir", *, include_small: bool = False, include_unknown: bool = False
    ) -> pd.Series:
        """Highest group rate over lowest group rate at each threshold, >= 1.

        The same groups as :meth:`difference` (small groups and ``"unknown"`` out unless
        asked). NaN where fewer than two groups are left and where the lowest rate is 0: the
        ratio is then undefined, not infinite, as the demographic page and
        :class:`lfr_eval.explain.GroupComparison` give it (one answer for one figure; a
        lowest group without errors says nothing about how many times higher the others are).
        """
        high, low = self._extremes(metric, include_small, include_unknown)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = high / low.where(low > 0)
        return out.rename(f"{metric}_max_min_ratio")

    def fairness_discrepancy_rate(
        self,
        alpha: float = 0.5,
        beta: float | None = None,
        *,
        include_small: bool = False,
        include_unknown: bool = False,
    ) -> pd.Series:
        """Fairness Discrepancy Rate (de Freitas Pereira & Marcel, 2021) at each threshold.

        ``FDR(T) = 1 - (alpha * A(T) + beta * B(T))`` where ``A`` is the largest difference in
        FPIR between two groups and ``B`` the largest difference in FNIR. 1 is perfectly fair,
        0 maximally unfair. ``alpha + beta = 1``; ``beta`` defaults to ``1 - alpha``. The
        groups of :meth:`difference` (small groups and ``"unknown"`` out unless asked); NaN
        where fewer than two groups are left for a metric with a weight above 0 (one group is
        no evidence of fairness).
        """
        beta = 1.0 - alpha if beta is None else beta
        if not (0 <= alpha <= 1 and 0 <= beta <= 1 and abs(alpha + beta - 1) < 1e-9):
            raise MetricInputError(
                f"alpha and beta must be weights in [0, 1] summing to 1, got {alpha}, {beta}"
            )
        total = pd.Series(0.0, index=pd.Index(self._thresholds, name="threshold"))
        for metric, weight in (("fpir", alpha), ("fnir", beta)):
            if weight > 0:  # a metric without data leaves FDR undefined (NaN), not "fair"
                diff = self.difference(
                    metric,  # type: ignore[arg-type]
                    include_small=include_small,
                    include_unknown=include_unknown,
                )
                total = total + weight * diff.reindex(self._thresholds).to_numpy()
        return (1.0 - total).rename("fairness_discrepancy_rate")

    def _threshold_index(self, threshold: float) -> int:
        hits = np.flatnonzero(self._thresholds == float(threshold))
        if hits.size == 0:
            raise MetricInputError(
                MSG_UNKNOWN_THRESHOLD.format(value=threshold, available=self._thresholds.tolist())
            )
        return int(hits[0])

    def _code(self, group: str | tuple[str, ...]) -> int:
        key = self._group_key(group)
        return list(self._group_keys.itertuples(index=False, name=None)).index(key)

    def _label(self, code: int) -> str:
        key = self._group_keys.iloc[code].tolist()
        return str(key[0]) if len(key) == 1 else " / ".join(map(str, key))

    def _summary_at(self, metric: str, code: int, t: int) -> ClusterSummary:
        """One group's clustered sufficient statistics at threshold index ``t``, from the
        frame's own table (``rate_variance``, ``variance_df``, ``effective_people``)."""
        table = self._by_group.xs(metric, level="metric")
        key = tuple(self._group_keys.iloc[code].tolist())
        row = table.loc[(self._thresholds[t],) + key]
        if isinstance(row, pd.DataFrame):  # pragma: no cover - pandas shape quirk
            row = row.iloc[0]
        summary = summary_of_row(row)
        if summary is None:  # pragma: no cover - the frame always records them
            raise MetricInputError("this frame's table lacks the clustered statistics")
        return summary

    def _family(
        self,
        metric: str,
        t: int,
        include_small: bool,
        include_unknown: bool,
        also: Sequence[str | tuple[str, ...]],
    ) -> list[int]:
        table = self._by_group.xs(metric, level="metric")
        family = set()
        for code in range(len(self._group_keys)):
            key = tuple(self._group_keys.iloc[code].tolist())
            row = table.loc[(self._thresholds[t],) + key]
            if isinstance(row, pd.DataFrame):  # pragma: no cover
                row = row.iloc[0]
            if row["n_searches"] == 0 or (row["small_group"] and not include_small):
                continue
            if "unknown" in key and not include_unknown:
                continue
            family.add(code)
        return sorted(family | {self._code(g) for g in also})

    def compare_groups(
        self,
        metric: Metric,
        threshold: float,
        *,
        include_small: bool = False,
        include_unknown: bool = False,
        also: Sequence[str | tuple[str, ...]] = (),
        groups: Sequence[str | tuple[str, ...]] | None = None,
        test: Literal["bootstrap", "permutation", "rao-scott"] = "bootstrap",
        n_permutations: int = 4999,
        n_draws: int = 20_000,
        seed: int = 0,
        adjustment: Adjustment = DEFAULT_ADJUSTMENT,
        n_replicates: int = 4999,
    ) -> GroupRatesComparison:
        """Every pair of groups compared at one threshold, with multiplicity control.

        ``test="bootstrap"`` (default): the parametric null bootstrap-t over people
        (:func:`~lfr_eval.metrics.bootstrap_compare_groups`: cluster-robust studentized pair
        statistics, their null distribution drawn from a beta-binomial model fitted under
        equal rates that keeps each group's searches per person, ``n_replicates`` replicates,
        max over all pairs); its size stays within 0.03–0.07 also where groups differ in
        searches per person and a few people carry most errors (README, group tests).
        ``test="permutation"``: the studentized max-|t| permutation test over people
        (:func:`~lfr_eval.metrics.permutation_compare_groups`, ``n_permutations``
        relabellings), by name: it rarely rejects (size 0.01) where the groups' searches per
        person barely overlap. ``test="rao-scott"``: :func:`~lfr_eval.metrics.compare_group_rates`,
        the design-effect z tests with a max-|z| adjustment that an aggregate (clustered
        summaries only) can run, by name. Either way a pair is called
        different at ``p_adjusted <= alpha`` with family-wise error at most ``alpha``, also
        the highest-vs-lowest pair picked after seeing the data. Small groups and the
        ``"unknown"`` label are left out unless asked; ``also`` names groups always in;
        ``groups`` gives the family exactly instead (e.g. the demographic page's compared
        groups, :func:`lfr_eval.explain.group_comparison`). ``adjustment``: the max-statistic
        adjustment over all pairs, ``"step-down"`` (default: at least as powerful, the same
        family-wise control) or ``"single-step"``; the result's ``method`` and ``adjustment``
        say which produced ``p_adjusted``.
        """
        name = self._metric(metric)
        t = self._threshold_index(threshold)
        if groups is not None:
            family = sorted({self._code(g) for g in groups})
            if len(family) < 2:
                raise MetricInputError("at least two groups are needed for a comparison")
        else:
            family = self._family(name, t, include_small, include_unknown, also)
        summaries = {self._label(c): self._summary_at(name, c, t) for c in family}
        if any(v.trials <= 0 for v in summaries.values()):
            raise MetricInputError("each compared group needs searches")
        if test == "rao-scott":
            return compare_group_rates(
                summaries, n_draws=n_draws, seed=seed, adjustment=adjustment
            )
        if test not in ("bootstrap", "permutation"):
            raise MetricInputError(
                f"test must be 'bootstrap', 'permutation' or 'rao-scott', got {test!r}"
            )
        side = self._sides[name]
        errors: dict[str, ArrayLike] = {}
        trials: dict[str, ArrayLike] = {}
        for c in family:
            counts = side.clusters.subset(side.cluster_group == c)
            errors[self._label(c)] = counts.errors_at(t)
            trials[self._label(c)] = counts.trials
        if test == "bootstrap":
            return bootstrap_compare_groups(
                errors, trials, n_replicates=n_replicates, seed=seed, adjustment=adjustment
            )
        return permutation_compare_groups(
            errors, trials, n_permutations=n_permutations, seed=seed, adjustment=adjustment
        )

    def group_test(
        self,
        metric: Metric,
        threshold: float,
        group_a: str | tuple[str, ...],
        group_b: str | tuple[str, ...],
        *,
        test: Literal["clustered", "permutation", "fisher"] = "clustered",
        alternative: Alternative = "two-sided",
        n_permutations: int = 9999,
        seed: int = 0,
        include_small: bool = False,
        include_unknown: bool = False,
        n_replicates: int = 4999,
    ) -> GroupTestResult:
        """Test equal ``metric`` rates in two groups at one threshold of this frame.

        ``test="clustered"`` (default): the pair's cluster-robust studentized statistic in
        :meth:`compare_groups`' default test (the parametric null bootstrap-t over people,
        ``n_replicates`` replicates), its p-value adjusted for every pair of the compared
        groups (the two named groups always in the family, small and ``unknown`` groups
        otherwise only when asked); ``p_value`` is the adjusted one, ``p_unadjusted`` the
        pair's own, ``test`` the method label; its size stays within 0.03–0.07 when groups
        differ in searches per person; two-sided only.
        ``test="permutation"`` permutes group labels between subjects on the raw difference of
        pooled rates (no multiplicity control); ``test="fisher"`` treats searches as
        independent.
        """
        side = self._sides[self._metric(metric)]
        t = self._threshold_index(threshold)
        codes = []
        for group in (group_a, group_b):
            key = self._group_key(group)
            keys = list(self._group_keys.itertuples(index=False, name=None))
            codes.append(keys.index(key))
        group_a_counts = side.clusters.subset(side.cluster_group == codes[0])
        group_b_counts = side.clusters.subset(side.cluster_group == codes[1])
        e_a, n_a = group_a_counts.errors_at(t), group_a_counts.trials
        e_b, n_b = group_b_counts.errors_at(t), group_b_counts.trials
        name_a, name_b = str(group_a), str(group_b)
        if test == "clustered":
            if alternative != "two-sided":
                raise MetricInputError(
                    "the clustered test is two-sided; use test='permutation' for a one-sided test"
                )
            comparison = self.compare_groups(
                metric, threshold, include_small=include_small,
                include_unknown=include_unknown, also=(group_a, group_b), seed=seed,
                n_replicates=n_replicates,
            )  # fmt: skip
            pair = comparison.pair(self._label(codes[0]), self._label(codes[1]))
            rate_a, rate_b = float(e_a.sum() / n_a.sum()), float(e_b.sum() / n_b.sum())
            return GroupTestResult(
                test=comparison.method, group_a=name_a, group_b=name_b,
                errors_a=int(e_a.sum()), trials_a=int(n_a.sum()),
                errors_b=int(e_b.sum()), trials_b=int(n_b.sum()),
                rate_a=rate_a, rate_b=rate_b,
                statistic=(1.0 if rate_a >= rate_b else -1.0) * pair.statistic,
                p_value=pair.p_adjusted, alternative=alternative,
                n_subjects_a=int(len(e_a)), n_subjects_b=int(len(e_b)),
                independence_assumed=False, p_unadjusted=pair.p_value,
                family=comparison.groups,
            )  # fmt: skip
        if test == "fisher":
            return fisher_exact_test(
                int(e_a.sum()),
                int(n_a.sum()),
                int(e_b.sum()),
                int(n_b.sum()),
                alternative=alternative,
                group_a=name_a,
                group_b=name_b,
            )
        if test != "permutation":
            raise MetricInputError(
                f"test must be 'clustered', 'permutation' or 'fisher', got {test!r}"
            )
        return permutation_test_subjects(
            e_a,
            n_a,
            e_b,
            n_b,
            n_permutations=n_permutations,
            alternative=alternative,
            seed=seed,
            group_a=name_a,
            group_b=name_b,
        )


#: fairlearn-style alias: the group frame of identification metrics
GroupMetricFrame = IdentificationFrame
