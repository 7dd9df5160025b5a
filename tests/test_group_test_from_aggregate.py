"""Issue 9: an aggregate compares groups by the same null bootstrap test as the full results.

Before, an aggregate (clustered totals only) fell back to the Rao–Scott z tests, which call
equal groups different in about 0.15 of data sets where a few heavy people fall in a group of
few people with many searches each (the strict xfail in test_review_findings.py). The null
bootstrap needs only each group's sums over people and its searches-per-person histogram
(:class:`~lfr_eval.metrics.PeopleSums`); the frame and the aggregate's rates rows now keep
them, and these tests pin that the figures are the same bits whichever way they are made.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lfr_eval.errors import ResultError
from lfr_eval.metrics import (
    MetricInputError,
    PeopleSums,
    bootstrap_compare_groups,
    bootstrap_compare_groups_from_sums,
    people_sums,
)
from lfr_eval.metrics._people_sums import (
    PEOPLE_SUMS_COLUMNS,
    format_searches_histogram,
    people_sums_of_chunks,
    people_sums_of_row,
)


def _lambs(seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The review's design: 30 people x ~30 searches against 300 x ~2, 5% of people at 20x."""
    rng = np.random.default_rng(seed)
    base = 0.05 / (0.95 + 0.05 * 20)
    errors, trials = {}, {}
    for name, (people, m) in {"a": (30, 30), "b": (300, 2)}.items():
        n = 1 + rng.poisson(rng.gamma(2.0, (m - 1) / 2.0, people))
        rates = np.where(rng.random(people) < 0.05, 20 * base, base)
        errors[name] = rng.binomial(n, rates)
        trials[name] = n
    return errors, trials


def test_people_sums_are_the_per_person_sums_in_any_order() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(1, 40, 500)
    e = rng.binomial(n[:, None], rng.uniform(0, 0.5, (500, 7)))
    sums = people_sums(e, n)
    assert np.array_equal(sums.errors, e.sum(0))
    assert np.array_equal(sums.squares, (e * e).sum(0))
    assert np.array_equal(sums.cross, (e * n[:, None]).sum(0))
    assert np.allclose(sums.squares_per_search, (e * e / n[:, None]).sum(0), rtol=1e-13)
    assert sums.trials == n.sum() and sums.trials_squared == (n * n).sum()
    assert sums.n_people == 500
    assert np.array_equal(np.sort(n), sums.searches_per_person())
    # the same bits whatever the people's order, the blocks, or the number of thresholds
    order = rng.permutation(500)
    shuffled = people_sums_of_chunks(
        [(e[order][:123], n[order][:123]), (e[order][123:], n[order][123:])], n
    )
    for field in ("errors", "squares", "cross", "squares_per_search", "searches", "people"):
        assert getattr(shuffled, field).tobytes() == getattr(sums, field).tobytes(), field
    for t in range(7):
        alone = people_sums(e[order, t], n[order])
        assert alone.squares_per_search.tobytes() == sums.column(t).squares_per_search.tobytes()


def test_people_without_searches_are_not_people_and_counts_must_be_whole() -> None:
    sums = people_sums(np.array([1, 0, 2]), np.array([3, 0, 4]))
    assert sums.n_people == 2 and list(sums.searches) == [3, 4]
    with pytest.raises(MetricInputError, match="whole numbers"):
        people_sums(np.array([0.5, 1.0]), np.array([2, 2]))


@pytest.mark.parametrize("error_is_hit", [True, False])
def test_the_summary_pass_makes_the_same_sums_as_its_own_pass(
    error_is_hit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group frame feeds the clustered summary's blocks to the sums (one pass over the
    per-person counts, not two): the same bits as the sums' own pass, in one block and in
    many, and the summary itself unchanged by the feeding."""
    from lfr_eval.metrics import _intervals
    from lfr_eval.metrics._people_sums import PeopleSumsBuilder

    rng = np.random.default_rng(11)
    n = 1 + rng.poisson(2.0, 400)
    subjects = np.repeat(np.arange(400), n)
    scores = rng.normal(0.4, 0.1, subjects.shape[0]) + rng.normal(0, 0.05, 400)[subjects]
    thresholds = rng.permutation(np.linspace(0.2, 0.8, 9))  # any order
    hist = _intervals.subject_histogram(subjects, scores, thresholds, error_is_hit=error_is_hit)
    for cells in (_intervals.SUMMARY_CHUNK_CELLS, 37 * thresholds.shape[0]):
        monkeypatch.setattr(_intervals, "SUMMARY_CHUNK_CELLS", cells)
        own = people_sums_of_chunks(hist.dense_chunks(cells // 9), hist.trials)
        builder = PeopleSumsBuilder(hist.trials)
        fed = _intervals.summarise_subjects(hist, people_sums=builder)
        plain = _intervals.summarise_subjects(hist)
        for field in dataclasses.fields(PeopleSums):
            assert np.array_equal(getattr(builder.result(), field.name), getattr(own, field.name))
        for field in dataclasses.fields(fed):
            a, b = getattr(fed, field.name), getattr(plain, field.name)
            assert np.array_equal(a, b) if a is not None else b is None, field.name


@pytest.mark.parametrize("engine", ["auto", "people", "types"])
def test_the_test_from_sums_is_the_test_on_per_person_counts(engine: str) -> None:
    errors, trials = _lambs(seed=7)
    direct = bootstrap_compare_groups(errors, trials, n_replicates=499, seed=4, engine=engine)
    sums = {g: people_sums(errors[g], trials[g]) for g in errors}
    from_sums = bootstrap_compare_groups_from_sums(
        sums, n_replicates=499, seed=4, engine=engine
    )
    assert from_sums.method == direct.method
    assert from_sums.pairs == direct.pairs
    assert direct.null_model is not None and from_sums.null_model is not None
    assert np.array_equal(direct.null_model.icc, from_sums.null_model.icc)


def test_the_icc_moments_from_sums_equal_the_residual_form() -> None:
    """The moment estimate from the sums an aggregate keeps (sum e^2/n - 2 p sum e + p^2 sum
    n) is the residual form sum (e - n p)^2 / n it replaced, to rounding."""
    from lfr_eval.metrics._group_tests import _icc_moments

    errors, trials = _lambs(seed=2)
    for g in errors:
        e, n = errors[g].astype(float), trials[g].astype(float)
        p = e.sum() / n.sum()
        u = np.sum((e - n * p) ** 2 / n)
        b = p * (1 - p)
        s, total = len(n), n.sum()
        expected = (u - b * (s - 1), b * (total - s - (n * n).sum() / total + 1))
        assert _icc_moments(people_sums(e.astype(int), n.astype(int))) == pytest.approx(
            expected, rel=1e-10, abs=1e-12
        )


def _row(sums: PeopleSums, **change: object) -> dict[str, object]:
    row: dict[str, object] = {
        "errors": float(sums.errors[0]),
        "n_searches": sums.trials,
        "errors_squared": float(sums.squares[0]),
        "errors_searches": float(sums.cross[0]),
        "errors_squared_per_search": float(sums.squares_per_search[0]),
        "searches_histogram": format_searches_histogram(sums),
    }
    row.update(change)
    return row


def test_a_rates_row_gives_back_the_sums_and_refuses_garbled_ones() -> None:
    errors, trials = _lambs(seed=1)
    sums = people_sums(errors["a"], trials["a"])
    back = people_sums_of_row(_row(sums))
    assert back is not None
    for field in ("errors", "squares", "cross", "squares_per_search", "searches", "people"):
        assert np.array_equal(getattr(back, field), getattr(sums, field)), field
    # written before the sums were kept (no histogram): None, the caller falls back and says so
    assert people_sums_of_row(_row(sums, searches_histogram=float("nan"))) is None
    # there but edited: a clear error, never a silent fallback or a test on impossible sums
    older = {k: v for k, v in _row(sums).items() if k != "errors_squared"}
    for edited in (
        older,
        _row(sums, searches_histogram="2x3 1x4"),  # not ascending
        _row(sums, searches_histogram="1x0"),
        _row(sums, searches_histogram="one"),
        _row(sums, n_searches=sums.trials + 1),  # does not add up to the row's searches
    ):
        with pytest.raises(ResultError, match="edited or damaged"):
            people_sums_of_row(edited)


def test_frame_columns_are_the_sums_of_each_groups_people() -> None:
    """The frame's rates rows hold, at every threshold, the same PeopleSums as the per-person
    counts its compare_groups draws from (so an aggregate's test is the frame's)."""
    from test_results import synthetic_result

    result = synthetic_result(with_scaling=False)
    attribute = result.attributes[0]
    grid = np.round(np.linspace(0.2, 0.8, 13), 6)
    frame = result.identification_frame(grid, [attribute])
    side = frame._sides["fpir"]
    rows = frame.by_group.xs("fpir", level="metric")
    assert set(PEOPLE_SUMS_COLUMNS) <= set(rows.columns)
    checked = 0
    for code in range(len(frame._group_keys)):
        counts = side.clusters.subset(side.cluster_group == code)
        label = frame._label(code)
        for t, threshold in enumerate(grid):
            from_row = people_sums_of_row(rows.loc[(float(threshold), label)])
            if counts.trials.sum() == 0:
                continue
            assert from_row is not None
            direct = people_sums(counts.errors_at(t), counts.trials)
            for field in ("errors", "squares", "cross", "squares_per_search", "searches"):
                assert getattr(from_row, field).tobytes() == getattr(direct, field).tobytes()
            checked += 1
    assert checked >= 2 * len(grid)


def test_an_aggregate_compares_groups_as_its_full_results_do(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Saved and loaded, an aggregate's group comparison is the full results' (same test,
    same p-values); one written without the sums says Rao-Scott and why."""
    from test_results import synthetic_result

    from lfr_eval.explain import (
        WHY_NULL_BOOTSTRAP,
        WHY_NULL_BOOTSTRAP_AGGREGATE,
        WHY_RAO_SCOTT,
        group_comparison,
    )
    from lfr_eval.report import AggregateResult, as_aggregate

    result = synthetic_result(with_scaling=False)
    agg = AggregateResult.load(as_aggregate(result).save(tmp_path / "agg"))
    attribute = agg.attributes[0]
    compared, last = 0, float("nan")
    for t in agg.thresholds[:: max(1, len(agg.thresholds) // 12)]:
        frame = result.identification_frame([t], [attribute])
        full = group_comparison(agg, t, attribute, frame=frame, n_replicates=199)
        alone = group_comparison(agg, t, attribute, n_replicates=199)
        if full.pairs is None:
            continue
        assert full.test_reason == WHY_NULL_BOOTSTRAP
        assert alone.test_reason == WHY_NULL_BOOTSTRAP_AGGREGATE
        assert alone.pairs is not None and alone.pairs.pairs == full.pairs.pairs
        assert alone.pairs.method == full.pairs.method
        compared, last = compared + 1, float(t)
    assert compared >= 3
    kept = [c for c in agg.rates.columns if c not in PEOPLE_SUMS_COLUMNS]
    old = dataclasses.replace(agg, rates=agg.rates[kept])
    stale = group_comparison(old, last, attribute)
    assert stale.test_reason == WHY_RAO_SCOTT and stale.pairs is not None
    assert "rao-scott" in stale.pairs.method.lower()
