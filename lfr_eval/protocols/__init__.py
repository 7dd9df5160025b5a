"""Evaluation protocols: who is enrolled, who searches, and how the searches are scored.

- :func:`build_open_set_protocol` — watchlist, mated and non-mated searches, split by subject;
- :func:`build_npl_protocol`, :func:`scale_fpir`, :func:`resample_fpir` — NPL's filler-gallery
  design and FPIR scaled to a deployed watchlist size and composition;
- :func:`scaled_fpir` — the one function every scaled FPIR shown (report, explorer, claim
  checker, config evidence) is read through;
- :func:`tail_model_fpir` — a model-based FPIR where counts run out (generalised Pareto tail of
  impostor scores, with fit diagnostics), offered beside the count-based figure;
- :func:`run_protocol` — score a protocol's searches into a :class:`~lfr_eval.metrics.SearchSet`.
"""

from __future__ import annotations

from lfr_eval.errors import ProtocolError
from lfr_eval.protocols._enrolment import (
    ENROLMENT_FAILURE_POLICIES,
    EnrolmentFailurePolicy,
    EnrolmentOutcome,
)
from lfr_eval.protocols._npl import (
    FillerCounts,
    NplParams,
    NplProtocol,
    WatchlistComposition,
    WatchlistScaling,
    build_npl_protocol,
    resample_fpir,
    resample_sizes,
    scale_fpir,
    zero_false_match_upper,
)
from lfr_eval.protocols._open_set import (
    OpenSetParams,
    OpenSetProtocol,
    ProtocolCounts,
    build_open_set_protocol,
)
from lfr_eval.protocols._run import (
    FAILURE_POLICIES,
    EnrolmentSettings,
    FailurePolicy,
    ProtocolRun,
    ScoringScale,
    run_npl_protocol,
    run_protocol,
)
from lfr_eval.protocols._scaled import ScaledFpir, scaled_fpir
from lfr_eval.protocols._tail import TailFit, TailModelScaling, fit_tail, tail_model_fpir

__all__ = [
    "ENROLMENT_FAILURE_POLICIES",
    "FAILURE_POLICIES",
    "EnrolmentFailurePolicy",
    "EnrolmentOutcome",
    "EnrolmentSettings",
    "FailurePolicy",
    "FillerCounts",
    "NplParams",
    "NplProtocol",
    "OpenSetParams",
    "OpenSetProtocol",
    "ProtocolCounts",
    "ProtocolError",
    "ProtocolRun",
    "ScaledFpir",
    "ScoringScale",
    "TailFit",
    "TailModelScaling",
    "WatchlistComposition",
    "WatchlistScaling",
    "build_npl_protocol",
    "build_open_set_protocol",
    "fit_tail",
    "resample_fpir",
    "resample_sizes",
    "run_npl_protocol",
    "run_protocol",
    "scale_fpir",
    "scaled_fpir",
    "tail_model_fpir",
    "zero_false_match_upper",
]
