"""The claim checker: one-sided bounds, verdicts and searches needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lfr_eval.claims import (
    Claim,
    check_fpir_claim,
    check_fpir_claim_by_group,
    searches_needed,
    searches_needed_at_rate,
)
from lfr_eval.metrics import KORN_GRAUBARD_MONOTONE, MetricInputError, SearchSet, clopper_pearson
from lfr_eval.metrics._clustered import KORN_GRAUBARD_NO_ERRORS, PEOPLE_CAP_SUFFIX
from lfr_eval.operational import one_in_n

CLAIM = Claim.one_in(6000, watchlist_size=10_000, threshold=0.60, source="NPL via Met")


def test_searches_needed_match_the_domain_brief() -> None:
    # ~18,000 with 0 false positives, ~79,000 with 7 (domain brief section 5)
    assert searches_needed(0, 1 / 6000) == pytest.approx(18_000, rel=0.01)
    assert searches_needed(7, 1 / 6000) == pytest.approx(79_000, rel=0.01)
    for k in (0, 7):
        n = searches_needed(k, 1 / 6000)
        assert float(clopper_pearson(k, n, sided="upper")[1]) <= 1 / 6000
        assert float(clopper_pearson(k, n - 1, sided="upper")[1]) > 1 / 6000


def test_zero_false_positives() -> None:
    ok = check_fpir_claim(
        CLAIM, false_positives=0, non_mated_searches=20_000, watchlist_size=10_000
    )
    assert ok.supported and ok.additional_searches_needed == 0
    assert ok.upper_bound == pytest.approx(3 / 20_000, rel=0.01)
    short = check_fpir_claim(CLAIM, false_positives=0, non_mated_searches=10_000)
    assert not short.supported
    assert short.searches_needed_if_no_more_errors == searches_needed(0, 1 / 6000)
    assert short.additional_searches_needed == short.searches_needed_if_no_more_errors - 10_000
    assert short.smallest_supported_rate == pytest.approx(
        float(clopper_pearson(0, 10_000, sided="upper")[1])
    )


def test_seven_false_positives() -> None:
    c = check_fpir_claim(CLAIM, false_positives=7, non_mated_searches=100_000, n_subjects=400)
    assert c.supported and c.observed_rate == pytest.approx(7e-5)
    c = check_fpir_claim(CLAIM, false_positives=7, non_mated_searches=50_000, n_subjects=400)
    assert not c.supported
    assert c.searches_needed_if_no_more_errors == pytest.approx(79_000, rel=0.01)
    # at the observed rate (1 in 7,100, under the bound) more searches do get there, but far more
    assert c.searches_needed_at_observed_rate > 200_000
    text = c.summary()
    assert "do not support" in text and "400 people" in text
    over = check_fpir_claim(CLAIM, false_positives=20, non_mated_searches=60_000)
    assert over.searches_needed_at_observed_rate is None
    assert "no number of searches" in over.summary()


def test_searches_needed_at_rate_is_consistent() -> None:
    n = searches_needed_at_rate(1 / 12_000, 1 / 6000)
    assert n is not None
    assert float(clopper_pearson(round(n / 12_000), n, sided="upper")[1]) <= 1 / 6000 * 1.05
    assert searches_needed_at_rate(0.0, 1 / 6000) == searches_needed(0, 1 / 6000)
    assert searches_needed_at_rate(1 / 5000, 1 / 6000) is None


def test_claim_from_search_set_counts_at_threshold() -> None:
    rng = np.random.default_rng(0)
    best = rng.uniform(0.0, 0.59, 30_000)
    best[:3] = [0.6, 0.7, 0.65]  # 3 false positives at T = 0.60 (0.60 itself counts)
    ss = SearchSet(
        watchlist_size=10_000,
        mate_scores=np.array([]),
        mate_ranks=np.array([], int),
        mated_subjects=np.array([], str),
        non_mated_topk=best[:, None],
        non_mated_subjects=(np.arange(30_000) // 10).astype(str),
        mated_groups=pd.DataFrame(),
    )
    c = check_fpir_claim(CLAIM, ss)
    assert (c.false_positives, c.non_mated_searches, c.n_subjects) == (3, 30_000, 3_000)
    # all three false positives come from one person (searches 0-2 are subject "0"): the
    # clustered bound is far wider than the 3-in-30,000 of independent searches
    independent = float(clopper_pearson(3, 30_000, sided="upper")[1])
    # (here the bound counted by people: 0.3 errors over 3,000 people answering alike)
    assert c.method.startswith(KORN_GRAUBARD_MONOTONE) and c.upper_bound > 4 * independent
    # spread over three people, the clustered bound is close to the independent one
    spread = best.copy()
    spread[:3] = 0.0
    spread[[0, 10, 20]] = [0.6, 0.7, 0.65]
    ss2 = SearchSet(
        watchlist_size=10_000,
        mate_scores=np.array([]),
        mate_ranks=np.array([], int),
        mated_subjects=np.array([], str),
        non_mated_topk=spread[:, None],
        non_mated_subjects=ss.non_mated_subjects,
    )
    c2 = check_fpir_claim(CLAIM, ss2)
    assert c2.false_positives == 3
    # but not below the bound with only two of those people's false positives: the bound is
    # monotone in the errors, and with two people carrying them the t adjustment is large
    # (the plain bound, 0.00049, would support more with three false positives than with two)
    two = best.copy()
    two[:3] = 0.0
    two[[0, 10]] = [0.6, 0.7]
    c_two = check_fpir_claim(
        CLAIM,
        SearchSet(
            watchlist_size=10_000,
            mate_scores=np.array([]),
            mate_ranks=np.array([], int),
            mated_subjects=np.array([], str),
            non_mated_topk=two[:, None],
            non_mated_subjects=ss.non_mated_subjects,
        ),
    )
    # where one, two or three people carry them the envelope is above the bound counted by
    # people (3,000 people answering all their searches alike), which caps all three: the
    # bound is then the same wherever the three fall, and grows with each one
    assert c2.upper_bound == pytest.approx(c.upper_bound, rel=1e-12)
    assert c_two.upper_bound < c2.upper_bound and 2.5 * independent < c_two.upper_bound
    assert c2.method == c_two.method == c.method and c.method.endswith(PEOPLE_CAP_SUFFIX)
    assert c2.people_needed_if_no_more_errors is not None


def test_watchlist_size_mismatch_needs_consent() -> None:
    with pytest.raises(MetricInputError, match="scale_watchlist=True"):
        check_fpir_claim(CLAIM, false_positives=0, non_mated_searches=50_000, watchlist_size=1000)
    # raised for the command line, the message names the CLI flag instead
    with pytest.raises(MetricInputError, match="pass --scale-watchlist to scale") as info:
        check_fpir_claim(
            CLAIM,
            false_positives=0,
            non_mated_searches=50_000,
            watchlist_size=1000,
            scale_option="--scale-watchlist",
        )
    assert "scale_watchlist=True" not in str(info.value)
    assert info.value.exit_code == 14
    scaled = check_fpir_claim(
        CLAIM,
        false_positives=0,
        non_mated_searches=200_000,
        watchlist_size=1000,
        scale_watchlist=True,
    )
    assert scaled.watchlist_scaled
    # 0 in 200,000 at N = 1,000 -> about 1.5e-5, times 10 for N = 10,000
    assert scaled.upper_bound == pytest.approx(10 * 3 / 200_000, rel=0.02)
    assert scaled.supported
    assert scaled.searches_needed_if_no_more_errors == pytest.approx(180_000, rel=0.01)


def test_claim_validation() -> None:
    with pytest.raises(MetricInputError):
        Claim(bound=0.0)
    with pytest.raises(MetricInputError):
        check_fpir_claim(CLAIM)
    with pytest.raises(MetricInputError, match="threshold"):
        check_fpir_claim(
            Claim.one_in(6000),
            SearchSet(
                1, np.array([]), np.array([]), np.array([]), np.zeros((1, 1)), np.array(["a"])
            ),
        )


def test_supported_verdicts_are_wrong_at_most_alpha_of_the_time() -> None:
    """When the true FPIR equals the claimed bound, 'supported' is a false verdict."""
    rng = np.random.default_rng(8)
    n, bound = 60_000, 1 / 6000
    fps = rng.binomial(n, bound, 20_000)
    upper = clopper_pearson(fps, n, 0.95, sided="upper")[1]
    wrong = np.mean(upper <= bound)
    assert wrong <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 20_000)


def _grouped_searches() -> SearchSet:
    """Group A: 600 people x 10 searches, no false positive; group B: 600 x 10 with 12 false
    positives spread over 12 people (1 in 500 in B)."""
    people = np.repeat(np.arange(1200), 10).astype(str)
    best = np.full(12_000, 0.3)
    best[6000 + np.arange(12) * 10] = 0.7
    groups = pd.DataFrame({"ethnicity": np.where(np.arange(12_000) < 6000, "A", "B")})
    return SearchSet(
        watchlist_size=1000,
        mate_scores=np.array([]),
        mate_ranks=np.array([], int),
        mated_subjects=np.array([], str),
        non_mated_topk=best[:, None],
        non_mated_subjects=people,
        non_mated_groups=groups,
    )


def test_claim_by_group_fails_when_any_group_fails() -> None:
    claim = Claim(bound=1 / 100, watchlist_size=1000, threshold=0.6)
    checks = check_fpir_claim_by_group(claim, _grouped_searches(), "ethnicity")
    assert checks.overall.supported
    assert checks.groups["A"].supported
    assert checks.failing_groups == [] or checks.failing_groups == ["B"]
    strict = Claim(bound=1 / 1000, watchlist_size=1000, threshold=0.6)
    checks = check_fpir_claim_by_group(strict, _grouped_searches(), "ethnicity")
    assert "B" in checks.failing_groups and not checks.supported
    assert "not supported for every group" in checks.summary()
    with pytest.raises(MetricInputError, match="no attribute"):
        check_fpir_claim_by_group(strict, _grouped_searches(), "sex")


def test_claim_by_group_lines_name_each_bound_method() -> None:
    """Each group line names how its bound was made, as the overall summary does: group A (no
    false positive) counted by people, group B (12 spread) the envelope; the same words as
    ``ClaimCheck.bound_method`` (one name per figure)."""
    checks = check_fpir_claim_by_group(
        Claim(bound=1 / 1000, watchlist_size=1000, threshold=0.6), _grouped_searches(), "ethnicity"
    )
    lines = {line.split(":")[0]: line for line in checks.summary().splitlines()[1:]}
    a, b = lines["ethnicity = A"], lines["ethnicity = B"]
    assert checks.groups["A"].method == KORN_GRAUBARD_NO_ERRORS
    assert "one-sided 95% upper bound, clustered by person" in a
    assert "counted by people as no false positive was seen" in a
    assert checks.groups["B"].method == KORN_GRAUBARD_MONOTONE
    assert "envelope over fewer false positives" in b and "counted by people" not in b
    for label, line in (("A", a), ("B", b)):
        check = checks.groups[label]
        assert f"{check.bound_method(explain=False)}: {one_in_n(check.upper_bound)}" in line
    # the overall summary names the same method, with its explanation
    overall = checks.overall
    assert overall.bound_method(explain=False).split(" (")[0] in overall.summary().lower()
    assert "envelope over fewer false positives: the largest" in overall.summary()
    # with 12 false positives the envelope is never described as the zero-error bound (the
    # envelope's label ends "(top people)", which an earlier test for "people" matched)
    assert "no false positive was seen" not in overall.summary()


def test_zero_false_positives_clustered_counts_people() -> None:
    # 400 people x 10 searches, no false positive: the bound is counted by people (~3/400),
    # and the extra data needed is counted in people
    c = check_fpir_claim(
        CLAIM, subject_false_positives=np.zeros(400, int), subject_searches=np.full(400, 10)
    )
    assert c.upper_bound == pytest.approx(1 - 0.05 ** (1 / 400))
    assert not c.supported
    assert c.people_needed_if_no_more_errors == searches_needed(0, 1 / 6000)
    assert "people in all" in c.summary()


def test_scaling_down_is_conservative_unless_asked() -> None:
    small = Claim.one_in(60_000, watchlist_size=1_000, threshold=0.6)
    fps = np.zeros(4000, int)
    fps[:3] = 1
    data = {"subject_false_positives": fps, "subject_searches": np.full(4000, 50)}
    c = check_fpir_claim(small, watchlist_size=10_000, scale_watchlist=True, **data)
    assert c.scaling.startswith("down: bound") and c.upper_bound == c.measured_upper_bound
    assert c.optimistic_upper_bound < c.upper_bound
    pooled = check_fpir_claim(
        small, watchlist_size=10_000, scale_watchlist=True, scaling="pooled", **data
    )
    assert pooled.upper_bound == pytest.approx(c.optimistic_upper_bound)
    assert "WARNING" in pooled.summary() and pooled.conservative_upper_bound == c.upper_bound


def test_cli_claim_by_exits_non_zero_when_only_a_group_fails(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lfr-eval claim --by`: supported overall and in group a, not in group b (which draws
    more false matches) -> exit 1, naming the failing group; without --by -> exit 0."""
    from tests.cli_support import run
    from tests.test_results import synthetic_result

    folder = tmp_path / "res"
    synthetic_result().save(folder)
    argv = ["claim", folder, "--fpir", "0.1", "--threshold", "0.76"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "the data support the claim" in out
    code, out, _ = run(capsys, *argv, "--by", "ethnicity")
    assert code == 1, out
    assert "ethnicity = a:" in out and "ethnicity = b:" in out
    assert out.count("NOT supported.") == 1 and "not supported for every group: b." in out
    # every group line names its bound's method (the CLI prints GroupClaimChecks.summary)
    for line in (x for x in out.splitlines() if x.startswith("ethnicity = ")):
        assert "one-sided 95% upper bound, clustered by person (Korn–Graubard" in line, line
    # a group whose bound reaches one half: no number that bounds nothing
    code, out, _ = run(capsys, "claim", folder, "--fpir", "0.1", "--threshold", "0.7", "--by",
                       "ethnicity")  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("ethnicity = b:"))
    assert "no useful bound" in line and "in 100" not in line and code == 1
