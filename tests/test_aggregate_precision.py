"""A claim checked from a saved aggregate gives the bound of the full data, not a rounded one.

The aggregate's CSV tables are written with 8 significant digits; the clustered statistics a
bound is computed from (variance, degrees of freedom, effective people, sum of n^4) lost digits
there, and the bound from a saved aggregate differed from the full data's by up to 3e-8
relative: a claim at the bound could be supported by one and not by the other.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from lfr_eval.claims import Claim, check_fpir_claim
from lfr_eval.metrics import SearchSet


def test_claim_from_a_saved_aggregate_has_the_full_datas_bound(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lfr_eval.report import AggregateResult
    from tests.test_results import synthetic_result

    rng = np.random.default_rng(7)
    people = 547
    reps = rng.integers(1, 40, people)
    person = np.repeat(np.arange(people), reps)
    subjects = person.astype(str).astype(object)
    propensity = rng.beta(0.3, 8, people)  # searches cluster by person
    best = np.clip(rng.normal(0.3 + propensity[person], 0.1), -1, 1)
    top = np.stack([best, best - 0.1 * rng.random(len(best))], axis=1).astype(np.float32)
    searches = SearchSet(
        watchlist_size=50,
        mate_scores=np.array([0.9]),
        mate_ranks=np.array([1]),
        mated_subjects=np.array(["m"], dtype=object),
        non_mated_topk=top,
        non_mated_subjects=subjects,
        mated_groups=pd.DataFrame({"g": ["a"]}),
        non_mated_groups=pd.DataFrame({"g": np.where(person % 3 == 0, "a", "b")}),
    )
    result = dataclasses.replace(
        synthetic_result(with_scaling=False),
        searches=searches,
        search_images=(
            np.array(["m/0.jpg"], dtype=object),
            np.array([f"n/{i}.jpg" for i in range(len(subjects))], dtype=object),
        ),
    )
    thresholds = np.round(np.quantile(best, [0.5, 0.8, 0.9, 0.97]), 4)
    saved = AggregateResult.from_result(result, thresholds=thresholds, attributes=["g"])
    loaded = AggregateResult.load(saved.save(tmp_path / "agg"))
    worst = 0.0
    for t in thresholds:
        claim = Claim.one_in(20, threshold=float(t))
        full = check_fpir_claim(claim, searches)
        summary = loaded.cluster_summary(float(t), "fpir")
        assert summary is not None and summary.keeps_top_people
        from_disk = check_fpir_claim(claim, cluster_summary=summary)
        assert from_disk.method == full.method and from_disk.false_positives > 0
        worst = max(worst, abs(from_disk.upper_bound / full.upper_bound - 1))
    # the sums of the full data and of the aggregate differ only in summation order
    assert worst < 1e-12, worst
