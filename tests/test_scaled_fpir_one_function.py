"""One function per figure: the scaled FPIR is the same number in every place that shows it.

The report's scaling table (and ``scaling.csv``), the threshold explorer (``explain_threshold``,
what the page calls), the claim checker and the deployment config's evidence all read FPIR at
a deployed N through :func:`lfr_eval.protocols.scaled_fpir`; this checks they agree with a
direct computation from the filler counts at a threshold off the counts' 0.005 grid, within
and beyond the fillers measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_results import synthetic_result

from lfr_eval.claims import Claim, check_fpir_claim, claim_scaled_fpir
from lfr_eval.deployment import evidence_from_results
from lfr_eval.explain import ExplainError, explain_threshold, offered_watchlist_sizes
from lfr_eval.protocols import FillerCounts, scale_fpir, scaled_fpir
from lfr_eval.report import AggregateResult
from lfr_eval.results import with_scaling


def _filler_counts() -> FillerCounts:
    rng = np.random.default_rng(4)
    n_searches, n_fillers = 600, 400
    person = np.repeat(rng.normal(0.0, 0.04, n_searches // 3), 3)  # clustered by person
    scores = rng.normal(0.45, 0.07, (n_searches, n_fillers)) + person[:, None]
    return FillerCounts.from_scores(
        scores.astype(np.float32),
        np.round(np.arange(0.3, 0.9001, 0.005), 4),
        np.array([f"n{i // 3}" for i in range(n_searches)], dtype=object),
        pd.DataFrame({"sex": np.where(np.arange(n_searches) % 6 < 3, "female", "male")}),
        pd.DataFrame(index=range(n_fillers)),
    )


@pytest.mark.parametrize("n", [300, 4000])  # within the 400 fillers, and 10x beyond
def test_every_consumer_shows_the_same_scaled_fpir(tmp_path: Path, n: int) -> None:
    fc = _filler_counts()
    table = scale_fpir(fc, [300, 4000], fc.thresholds, by="sex").table
    result = with_scaling(synthetic_result(with_scaling=False), table)  # evaluated at N = 100
    # the explorer's slider grid (0.0025) is finer than the counts' (0.005)
    agg = AggregateResult.from_result(result, thresholds=np.round(np.arange(0.55, 0.75, 0.0025), 4))
    # a slider value of the explorer's grid that is off the counts' grid
    t = float(next(x for x in agg.thresholds if 0.6 < x < 0.7 and round(x * 1000) % 5))
    direct = scaled_fpir(fc, n, t)
    assert direct is not None and direct.grid_threshold == pytest.approx(
        np.floor(t / 0.005) * 0.005
    )
    assert direct.off_grid and direct.extrapolated == (n > fc.n_fillers)
    assert direct.interval.startswith("korn-graubard")
    figures = [direct.fpir, direct.lower, direct.upper]

    def same(figure: object) -> None:
        assert figure is not None
        got = [figure.fpir, figure.lower, figure.upper]  # type: ignore[attr-defined]
        np.testing.assert_allclose(got, figures, rtol=1e-6)

    same(scaled_fpir(result.scaling, n, t))  # the report's table
    agg.save(tmp_path / "report")
    same(scaled_fpir(pd.read_csv(tmp_path / "report" / "scaling.csv"), n, t))  # scaling.csv
    explained = explain_threshold(agg, t, watchlist_size=n, faces_scanned=10_000)  # explorer
    np.testing.assert_allclose(
        [explained.fpir, explained.fpir_ci_low, explained.fpir_ci_high], figures, rtol=1e-6
    )
    assert (
        "filler-gallery" in explained.scaling_method and "at or below" in explained.scaling_method
    )
    claim = Claim.one_in(50, watchlist_size=n, threshold=t)
    check = check_fpir_claim(
        claim, result.searches, scaled_fpir=claim_scaled_fpir(agg.scaling, claim)
    )
    assert check.upper_bound == pytest.approx(direct.upper_bound, rel=1e-6)
    assert check.scaling.startswith("filler gallery") and "filler-gallery" in check.summary()
    for source in (result, agg):  # the config evidence, from full results or the aggregate
        evidence = evidence_from_results(source, t, deployed_watchlist_size=n).scaled_fpir
        assert evidence is not None
        np.testing.assert_allclose(
            [evidence.value, evidence.ci_low, evidence.ci_high], figures, rtol=1e-6
        )
        assert evidence.upper_bound == pytest.approx(direct.upper_bound, rel=1e-6)
    # by group: the same function, the same rows
    female = scaled_fpir(fc, n, t, attribute="sex", group="female")
    same_female = scaled_fpir(result.scaling, n, t, attribute="sex", group="female")
    assert female is not None and same_female is not None
    assert female.fpir == pytest.approx(same_female.fpir, rel=1e-9)


def test_the_explorer_offers_only_sizes_scaled_fpir_computes() -> None:
    """The explorer's sizes are the evaluated one and the scaling table's; every one of them
    shows scaled_fpir's number, and any other size, or a threshold below the table's grid, is
    a clear error: no figure from a second (pooled) formula."""
    fc = _filler_counts()
    table = scale_fpir(fc, [300, 4000], fc.thresholds[fc.thresholds >= 0.6]).table
    result = with_scaling(synthetic_result(with_scaling=False), table)  # evaluated at N = 100
    agg = AggregateResult.from_result(result, thresholds=np.round(np.arange(0.55, 0.75, 0.0025), 4))
    assert offered_watchlist_sizes(agg) == (100, 300, 4000)
    t = 0.6525
    for n in offered_watchlist_sizes(agg):
        explained = explain_threshold(agg, t, watchlist_size=n, faces_scanned=10_000)
        if n == agg.watchlist_size:
            assert explained.scaled_fpir is None and not explained.scaled
            assert explained.fpir == explained.fpir_measured.rate  # as measured
            continue
        direct = scaled_fpir(fc, n, t)
        assert direct is not None and explained.scaled_fpir is not None
        np.testing.assert_allclose(
            [explained.fpir, explained.fpir_ci_low, explained.fpir_ci_high],
            [direct.fpir, direct.lower, direct.upper],
            rtol=1e-6,
        )
    with pytest.raises(ExplainError, match=r"1,000-person watchlist.*N = 100, 300, 4,000"):
        explain_threshold(agg, t, watchlist_size=1_000, faces_scanned=10_000)
    with pytest.raises(ExplainError, match=r"below the lowest threshold.*\(0\.6\)"):
        explain_threshold(agg, 0.575, watchlist_size=300, faces_scanned=10_000)
    # the measured size needs no table, so it still works below the table's grid
    assert not explain_threshold(agg, 0.575, watchlist_size=100, faces_scanned=10_000).scaled


def test_config_evidence_states_the_scaled_figure_and_needs_it_only_where_the_table_has_one():
    """The evidence's plain description carries the scaled FPIR it records (the Export page
    and `config export` print it); a deployed size the table does not hold has no figure at
    any threshold, so a threshold below the table's grid does not refuse the export then."""
    from lfr_eval.errors import ConfigError

    fc = _filler_counts()
    table = scale_fpir(fc, [300, 4000], fc.thresholds[fc.thresholds >= 0.6]).table
    result = with_scaling(synthetic_result(with_scaling=False), table)  # evaluated at N = 100
    agg = AggregateResult.from_result(result, thresholds=np.round(np.arange(0.55, 0.75, 0.0025), 4))
    evidence = evidence_from_results(agg, 0.65, deployed_watchlist_size=4000)
    assert evidence.scaled_fpir is not None and evidence.scaled_fpir.extrapolation > 1
    text = evidence.describe()
    assert "measured with a 100-person watchlist" in text
    assert "scaled to the deployed watchlist of 4,000: FPIR " in text
    # beyond the fillers a range, not the per-person model's low end as an estimate
    assert "a range from the per-person to the pooled model" in text
    assert "extrapolated x10 beyond the fillers measured" in text
    within = evidence_from_results(agg, 0.65, deployed_watchlist_size=300).describe()
    assert "scaled to the deployed watchlist of 300: FPIR " in within and "range" not in within
    # the one-sided bound a claim at N uses is printed and named, in the words of the
    # figure's own description (one text for both), beyond the fillers and within them
    from lfr_eval.protocols._scaled import one_sided_bound_text

    for n, described in ((4000, text), (300, within)):
        figure = scaled_fpir(table, n, 0.65)
        assert figure is not None and np.isfinite(figure.upper_bound)
        bound = one_sided_bound_text(figure.upper_bound, figure.confidence, figure.interval)
        assert bound.startswith("one-sided 95% upper bound") and "the scaling's own" in bound
        assert bound in described and bound in figure.describe()
    assert "higher of the per-person and the pooled model" in text
    assert "higher of the per-person" not in within
    # the explorer says the same
    explained = explain_threshold(agg, 0.65, watchlist_size=4000, faces_scanned=10_000)
    sentence = explained.sentence()
    assert "false alerts (a range, not an estimate" in sentence
    assert f"expect {explained.false_alerts_figure().value_text} false alerts" in sentence
    assert "–" in explained.false_alerts_figure().value_text
    row = explained.to_row()
    assert np.isnan(row["expected false alerts"]) and np.isnan(row["FPIR at N"])
    assert row["FPIR 95% CI"].startswith("range ")
    # the three false alert rates too: ranges, not the per-person low end as a number
    from lfr_eval.explain import false_alert_rates_table

    listed = explain_threshold(
        agg, 0.65, watchlist_size=4000, faces_scanned=10_000, listed_passers_by=10
    )
    rates = false_alert_rates_table(listed).set_index("rate")
    assert rates["value"].isna().all()
    assert all("(extrapolated range)" in v for v in rates["as 1 in N"])
    measured = false_alert_rates_table(
        explain_threshold(agg, 0.65, watchlist_size=300, faces_scanned=10_000, listed_passers_by=10)
    )
    assert measured["value"].notna().all() and not measured["as 1 in N"].str.contains("range").any()
    # N = 50 is not in the table: below its grid (0.6) the measured figures still attach
    low = evidence_from_results(agg, 0.575, deployed_watchlist_size=50)
    assert low.scaled_fpir is None and "scaled to" not in low.describe()
    # N = 300 is: below its grid there is no figure for it, a clear refusal
    with pytest.raises(ConfigError, match="below the lowest threshold"):
        evidence_from_results(agg, 0.575, deployed_watchlist_size=300)


def test_evidence_from_a_table_without_one_sided_bounds_says_its_bound_is_two_sided() -> None:
    """A scaling table made before one-sided bounds were stored: the evidence keeps the
    two-sided upper end as its bound (conservative) and says so, never "one-sided"."""
    from lfr_eval.deployment import NO_ONE_SIDED, ScaledFpirEvidence
    from lfr_eval.protocols import ScaledFpir

    old = ScaledFpir(
        watchlist_size=300, threshold=0.65, grid_threshold=0.65, fpir=0.001, lower=0.0004,
        upper=0.003, upper_bound=float("nan"), confidence=0.95, estimator="", interval="x",
        extrapolation=0.0, pooled_fpir=None, n_searches=5000, n_subjects=500,
    )  # fmt: skip
    evidence = ScaledFpirEvidence.from_figure(old)
    assert evidence.upper_bound == 0.003 and evidence.interval_method.endswith(NO_ONE_SIDED)
    text = evidence.describe()
    assert "no one-sided bound recorded: 95% two-sided upper end 1 in 330" in text
    assert "one-sided 95% upper bound" not in text
    assert ScaledFpirEvidence.from_dict(evidence.to_dict()).describe() == text
    assert "no one-sided 95% upper bound recorded" in old.describe()
