"""Falls of the one-sided clustered bound found by the review's randomized search (issue 9).

The envelope of :func:`lfr_eval.metrics.monotone_upper_bound` takes the maximum of the plain
Korn–Graubard bound over no errors, the top 1..8 people keeping their errors and the data. That
family is not closed under adding an error: the data set before the added error (which has
fewer errors per person) is not always in the family after it, so the bound can fall. Minimal
data sets from a seeded randomized search (people 2–2,000, equal and unequal searches per person
1–100, errors added one at a time to random people or piled on one); the envelope's family now
holds both (the 1-D scan of the last person kept, the top people by rate).
"""

from __future__ import annotations

import numpy as np
import pytest

from lfr_eval.metrics import korn_graubard, summarise_clusters
from lfr_eval.metrics._clustered import design_effect_interval


def _before_after(errors: dict[int, int], searches: np.ndarray, person: int) -> np.ndarray:
    """The one-sided 95% bound of the data and of the data with one more error of ``person``."""
    before = np.zeros(searches.shape[0])
    for who, e in errors.items():
        before[who] = e
    after = before.copy()
    after[person] += 1
    return korn_graubard(np.stack([before, after], axis=1), searches, sided="upper").ci_high


def _exhaustive_max(errors: tuple[int, int], searches: np.ndarray) -> float:
    """The plain bound's maximum over every data set with fewer errors in people 0 and 1."""
    s = searches.shape[0]
    columns = []
    for a in range(errors[0] + 1):
        for b in range(errors[1] + 1):
            e = np.zeros(s)
            e[0], e[1] = a, b
            columns.append(e)
    plain = design_effect_interval(
        summarise_clusters(np.stack(columns, axis=1), searches), sided="upper"
    ).ci_high
    return float(plain.max())


def test_one_more_error_in_the_second_person_never_lowers_the_bound() -> None:
    # 1,000 people x 50 searches; 46 and 49 errors in two people (rate 0.19%): the 47th error
    # of the first lowered the bound from 0.0446360 to 0.0444605
    searches = np.full(1000, 50)
    bounds = _before_after({0: 46, 1: 49}, searches, person=0)
    assert bounds[1] >= bounds[0] * (1 - 1e-9), bounds
    # what a monotone bound must reach: the plain bound's maximum over fewer errors
    assert bounds[1] >= _exhaustive_max((47, 49), searches) * (1 - 1e-9)


def test_a_change_of_the_top_person_never_lowers_the_bound() -> None:
    # 100 people x 20 searches except 15/15 and 15/100: one more error of the second makes it
    # the top person, and the first alone leaves the family (0.28740 -> 0.28335)
    searches = np.full(100, 20)
    searches[0], searches[1] = 15, 100
    bounds = _before_after({0: 15, 1: 15}, searches, person=1)
    assert bounds[1] >= bounds[0] * (1 - 1e-9), bounds


# ---------------------------------------------------------------------------------------------
# Issue 10: the live/identify alert decision at a threshold equal to a score (review, session 20)


def test_identify_alert_decision_equals_the_evaluation_count_at_the_same_threshold() -> None:
    from lfr_eval.metrics import count_at_or_above, score_searches
    from lfr_eval.search import SearchIndex

    threshold = 0.7  # float32(0.7) = 0.699999988 < 0.7
    a = np.float32(threshold)
    b = np.float32(np.sqrt(1.0 - np.float64(a) ** 2))
    templates = np.array([[a, b], [0.0, -1.0]], np.float32)
    probe = np.array([[1.0, 0.0]], np.float32)
    found = SearchIndex(templates, ["s1", "s2"], backend="numpy").search(probe, k=1)
    assert float(found.scores[0, 0]) == float(a)  # the probe's best score is float32(0.7)
    scored = score_searches(probe, ["x"], templates, ["s1", "s2"], k=1, thresholds=[threshold])
    counted = int(scored.non_mated_counts[0, 0, 0])
    assert counted == int(count_at_or_above(scored.searches.non_mated_topk[:, 0], [threshold])[0])
    assert bool(found.alerts(threshold)[0]) == bool(counted)


# ---------------------------------------------------------------------------------------------
# Issue 9: the two-sided default's coverage when a few people carry the errors (review, session 20)


def _lambs_coverage(
    method: str, people: int, searches: int, rate: float, n: int, seed: int
) -> float:
    """Two-sided 95% coverage of ``method`` when 5% of people ("lambs", Doddington et al. 1998)
    draw false matches 20 times as often as the others; mean rate ``rate``, searches per person
    1 + Poisson(Gamma(2, (searches - 1) / 2)) redrawn for each of 8 batches (as the grid's
    unequal designs)."""
    from lfr_eval.simulation import INTERVALS

    rng = np.random.default_rng(seed)
    base = rate / (0.95 + 0.05 * 20)
    inside = 0
    for _ in range(8):
        trials = 1 + rng.poisson(rng.gamma(2.0, (searches - 1) / 2.0, people))
        lamb = rng.random((people, n // 8)) < 0.05
        errors = rng.binomial(trials[:, None], np.where(lamb, 20 * base, base))
        low, high = INTERVALS[method](errors, trials, 0.95, "two-sided")
        inside += int(np.count_nonzero((low <= rate) & (rate <= high)))
    return inside / (n // 8 * 8)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "the default two-sided interval (design-effect-jeffreys, t on the excess at the upper "
        "end) covers 0.8995 with 50 people x 20 unequal searches, mean rate 0.02, 5% of people "
        "at 20x (ICC about 0.09; 4,000 data sets, seed 11): misses above 0.091; Korn-Graubard "
        "0.957 on the same data sets"
    ),
)
def test_two_sided_default_covers_when_a_few_people_draw_most_false_matches() -> None:
    # 4,000 data sets: standard error 0.004 at 0.93; 1-2 CPU s
    coverage = _lambs_coverage("design-effect-jeffreys", 50, 20, 0.02, 4000, seed=11)
    assert coverage >= 0.93 - 2 * np.sqrt(0.93 * 0.07 / 4000), coverage


def test_korn_graubard_covers_the_same_lambs_design() -> None:
    # the same data sets: an interval CAN cover there (so the test above is not asking for the
    # impossible, as it would be with 20 people, where a third of data sets have no lamb)
    coverage = _lambs_coverage("korn-graubard", 50, 20, 0.02, 4000, seed=11)
    assert coverage >= 0.93, coverage


def test_a_claim_from_one_person_names_its_bound_as_one_person() -> None:
    """Found by review (session 20): with one person the bound is the n_eff = 1 edge case
    (``korn-graubard (one person: n_eff = 1)``), but the summary and the ``claim --by`` group
    line named it as the plain Korn–Graubard bound."""
    import pandas as pd

    from lfr_eval.claims import Claim, check_fpir_claim_by_group
    from lfr_eval.metrics import SearchSet
    from lfr_eval.metrics._clustered import KORN_GRAUBARD_ONE_PERSON

    people = np.array(["a"] * 10 + [f"b{i}" for i in range(50)])
    best = np.where(np.arange(60) < 3, 0.9, 0.1)  # 3 false positives, all of person "a"
    searches = SearchSet(
        watchlist_size=1000,
        mate_scores=np.array([]),
        mate_ranks=np.array([], int),
        mated_subjects=np.array([], str),
        non_mated_topk=best[:, None],
        non_mated_subjects=people,
        non_mated_groups=pd.DataFrame({"g": np.where(people == "a", "one", "many")}),
    )
    checks = check_fpir_claim_by_group(
        Claim(bound=1 / 100, watchlist_size=1000, threshold=0.6), searches, "g"
    )
    one = checks.groups["one"]
    assert one.method == KORN_GRAUBARD_ONE_PERSON
    line = next(x for x in checks.summary().splitlines() if x.startswith("g = one"))
    assert "one person: the searches count as one" in line, line
    assert "one person: the searches count as one" in one.summary()
