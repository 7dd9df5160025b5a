"""Identification (1:N) and verification (1:1) error rates, intervals and group frames.

All similarities are cosine similarities in [-1, 1]; a candidate is returned (an alert raised)
when its score is at or above the threshold. Rates are vectorised over arrays of thresholds.
"""

from __future__ import annotations

from lfr_eval.metrics._clustered import (
    KORN_GRAUBARD,
    ClusteredRate,
    ClusterSummary,
    cluster_robust_variance,
    korn_graubard,
    korn_graubard_from_summary,
    summarise_clusters,
)
from lfr_eval.metrics._group_frame import (
    FRAME_COLUMNS,
    GroupMetricFrame,
    IdentificationFrame,
)
from lfr_eval.metrics._group_tests import (
    GroupTestResult,
    fisher_exact_test,
    permutation_test_subjects,
)
from lfr_eval.metrics._identification import (
    IdentificationDet,
    cmc_curve,
    count_at_or_above,
    fnir,
    fnir_errors,
    fnir_estimate,
    fpir,
    fpir_errors,
    fpir_estimate,
    identification_det_curve,
    rank_k_identification_rate,
    selectivity,
    selectivity_truncated,
    tpir,
)
from lfr_eval.metrics._intervals import (
    RateCurve,
    RateEstimate,
    SubjectCounts,
    binomial_interval,
    bootstrap_degenerate,
    bootstrap_rates,
    clopper_pearson,
    count_at_or_above_by_subject,
    estimate_rate,
    subject_bootstrap_interval,
    wilson,
)
from lfr_eval.metrics._scoring import ScoringResult, score_searches
from lfr_eval.metrics._searches import SearchSet
from lfr_eval.metrics._thresholds import (
    OperatingPoint,
    ThresholdChoice,
    choose_threshold,
    identification_eer,
    operating_point,
    threshold_at_fpir,
    threshold_at_tpir,
)
from lfr_eval.metrics._validation import MetricInputError
from lfr_eval.metrics._verification import (
    DetCurve,
    EqualErrorRate,
    det_curve,
    eer,
    eer_threshold,
    fmr,
    fmr_estimate,
    fnmr,
    fnmr_estimate,
    roc_points,
)

__all__ = [
    "FRAME_COLUMNS",
    "KORN_GRAUBARD",
    "ClusterSummary",
    "ClusteredRate",
    "DetCurve",
    "EqualErrorRate",
    "GroupMetricFrame",
    "GroupTestResult",
    "IdentificationDet",
    "IdentificationFrame",
    "MetricInputError",
    "OperatingPoint",
    "RateCurve",
    "RateEstimate",
    "ScoringResult",
    "SearchSet",
    "SubjectCounts",
    "ThresholdChoice",
    "binomial_interval",
    "bootstrap_degenerate",
    "bootstrap_rates",
    "choose_threshold",
    "clopper_pearson",
    "cluster_robust_variance",
    "cmc_curve",
    "count_at_or_above",
    "count_at_or_above_by_subject",
    "det_curve",
    "eer",
    "eer_threshold",
    "estimate_rate",
    "fisher_exact_test",
    "fmr",
    "fmr_estimate",
    "fnir",
    "fnir_errors",
    "fnir_estimate",
    "fnmr",
    "fnmr_estimate",
    "fpir",
    "fpir_errors",
    "fpir_estimate",
    "identification_det_curve",
    "identification_eer",
    "korn_graubard",
    "korn_graubard_from_summary",
    "operating_point",
    "permutation_test_subjects",
    "rank_k_identification_rate",
    "roc_points",
    "score_searches",
    "selectivity",
    "selectivity_truncated",
    "subject_bootstrap_interval",
    "summarise_clusters",
    "threshold_at_fpir",
    "threshold_at_tpir",
    "tpir",
    "wilson",
]
