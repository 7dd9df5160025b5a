"""Stop-30 review: the group test from an aggregate's sums over people (36aff2b..HEAD).

Each test pins one defect found by the review of PeopleSums, people_sums_of_row,
bootstrap_compare_groups_from_sums and lfr_eval.explain.group_comparison on an aggregate. The
project's rule for a malformed or edited aggregate is a clear error (an LfrError, or the row
refused), never a bare traceback and never a silently different figure. The edits below are
made to rates.csv with aggregate.json's hash re-written, as anyone who edits the table does
(the hash protects against accidents, not against an editor).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfr_eval.errors import LfrError
from lfr_eval.metrics import (
    MetricInputError,
    bootstrap_compare_groups,
    bootstrap_compare_groups_from_sums,
    people_sums,
)
from lfr_eval.metrics._people_sums import people_sums_of_row

THRESHOLD = 0.62
ATTRIBUTE = "ethnicity"
REPLICATES = 199


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An aggregate of the suite's synthetic result, saved (about 1 s)."""
    from test_results import synthetic_result

    from lfr_eval.report import as_aggregate

    folder = tmp_path_factory.mktemp("stop30") / "agg"
    as_aggregate(synthetic_result(with_scaling=False)).save(folder)
    return folder


def _edited(saved: Path, tmp_path: Path, **cells: object) -> Path:
    """A copy of ``saved`` with group b's FPIR row at THRESHOLD edited, hash re-written."""
    from lfr_eval.report import AggregateResult

    folder = tmp_path / "edited"
    shutil.copytree(saved, folder)
    grid = AggregateResult.load(saved).thresholds
    t = float(grid[int(np.argmin(np.abs(grid - THRESHOLD)))])
    rates = pd.read_csv(
        folder / "rates.csv", keep_default_na=False, na_values=[""], dtype={"group": str}
    )
    row = (
        (rates["metric"] == "fpir")
        & (rates["attribute"] == ATTRIBUTE)
        & (rates["group"] == "b")
        & np.isclose(rates["threshold"], t)
    )
    assert row.sum() == 1
    for column, value in cells.items():
        rates[column] = rates[column].astype(object)
        rates.loc[row, column] = value
    rates.to_csv(folder / "rates.csv", index=False)
    meta = json.loads((folder / "aggregate.json").read_text())
    meta["files"]["rates.csv"] = hashlib.sha256((folder / "rates.csv").read_bytes()).hexdigest()
    (folder / "aggregate.json").write_text(json.dumps(meta))
    return folder


def _p_value(folder: Path) -> tuple[float, str | None]:
    from lfr_eval.explain import group_comparison
    from lfr_eval.report import AggregateResult

    comparison = group_comparison(
        AggregateResult.load(folder), THRESHOLD, ATTRIBUTE, "fpir", n_replicates=REPLICATES
    )
    assert comparison.pairs is not None
    return float(comparison.pairs.pairs[0].p_adjusted), comparison.test_reason


def _outcome(folder: Path) -> tuple[str, float | None, str | None]:
    """("error", None, message) for a clear error, else ("p", p-value, reason)."""
    try:
        p, reason = _p_value(folder)
    except LfrError as exc:
        return "error", None, str(exc)
    return "p", p, reason


def _row_of(folder: Path) -> pd.Series:
    from lfr_eval.report import AggregateResult

    agg = AggregateResult.load(folder)
    rows = agg.at_threshold(THRESHOLD, ATTRIBUTE)
    return rows[(rows["metric"] == "fpir") & (rows["group"] == "b")].iloc[0]


def test_a_histogram_number_beyond_int64_is_a_bare_overflow_error(
    saved: Path, tmp_path: Path
) -> None:
    """Defect: parse_searches_histogram (_people_sums.py) catches ValueError only; a cell
    "99999999999999999999x1" makes np.array(..., np.int64) raise OverflowError, which reaches
    the demographic page (it catches LfrError only) as a bare traceback. Seen: group_comparison
    on the edited aggregate raised OverflowError "Python int too large to convert to C long".
    """
    folder = _edited(saved, tmp_path, searches_histogram="99999999999999999999x1")
    with pytest.raises(LfrError, match="edited or damaged"):  # was a bare OverflowError
        people_sums_of_row(_row_of(folder))
    kind, _, _ = _outcome(folder)
    assert kind in ("error", "p")


def test_a_histogram_whose_total_wraps_round_int64_passes_the_searches_check(
    saved: Path, tmp_path: Path
) -> None:
    """Defect: people_sums_of_row checks the histogram against n_searches as
    np.sum(values * people) in int64, which wraps: "3x100 4611686018427387904x4" sums to
    300 + 2**64 = 300 (mod 2**64), the row's 300 searches, so the row is taken as group b's
    sums (104 people, one of them searched 4.6e18 times). Seen: the max-t p-value of the
    b-a pair went from 0.005 to 1.0, with the reason saying it is the full results' test."""
    folder = _edited(saved, tmp_path, searches_histogram="3x100 4611686018427387904x4")
    with pytest.raises(LfrError, match="edited or damaged"):
        people_sums_of_row(_row_of(folder))


def test_a_histogram_that_disagrees_with_the_rows_people_is_used(
    saved: Path, tmp_path: Path
) -> None:
    """Defect: people_sums_of_row compares the histogram with n_searches only, not with the
    row's n_subjects. Group b has 100 people with 3 searches each (300); "1x3 297x1" also
    sums to 300 searches but holds 4 people, and is accepted. Seen: the p-value of the b-a
    pair went from 0.005 to 0.96, while the page's table still shows 100 people."""
    folder = _edited(saved, tmp_path, searches_histogram="1x3 297x1")
    row = _row_of(folder)
    assert int(row["n_subjects"]) == 100
    try:
        refused = people_sums_of_row(row) is None
    except LfrError:
        refused = True
    assert refused, "a 4-person histogram taken for a 100-person group"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("errors_searches", -5),  # sum e n < 0 (impossible: e, n >= 0)
        ("errors_squared", 1),  # sum e^2 < sum e (impossible for whole e >= 0)
    ],
)
def test_impossible_sums_give_a_silently_different_p_value(
    saved: Path, tmp_path: Path, column: str, value: int
) -> None:
    """Defect: people_sums_of_row accepts sums no set of people can have (a negative
    sum e n; sum e^2 below sum e; sum e n below sum e^2, ...); the cheap bounds
    0 <= e <= sum e^2 <= sum e n <= max(n) e are not checked. Seen: errors_searches = -5 for
    group b turned the b-a p-value from 0.005 into 0.25, reported as the same test as the
    full results'; errors_squared = 1 (below the row's 284 errors) was taken as well."""
    folder = _edited(saved, tmp_path, **{column: value})
    try:
        refused = people_sums_of_row(_row_of(folder)) is None
    except LfrError:
        refused = True
    assert refused, f"{column} = {value} taken as group b's sums"


def test_sums_at_several_thresholds_are_tested_at_the_first_only() -> None:
    """Defect: bootstrap_compare_groups_from_sums (public) takes PeopleSums "at one
    threshold" but never checks it: people_sums(e, n) of (s, m) errors (also public) gives
    m thresholds, and moments() / _icc_moments read column 0 only, so the test is silently
    the first threshold's. Seen: groups equal at column 0 and 4x apart at column 1 gave
    p = 0.75 (column 0's p-value) with no error; bootstrap_compare_groups refuses 2-d
    errors with a MetricInputError."""
    rng = np.random.default_rng(0)
    n = {g: 1 + rng.poisson(3, 200) for g in "ab"}
    rates = {"a": [[0.05, 0.2]], "b": [[0.05, 0.05]]}
    e = {g: rng.binomial(n[g][:, None], rates[g]) for g in "ab"}
    with pytest.raises(MetricInputError):
        bootstrap_compare_groups(e, n, n_replicates=REPLICATES)
    with pytest.raises(MetricInputError):
        bootstrap_compare_groups_from_sums(
            {g: people_sums(e[g], n[g]) for g in "ab"}, n_replicates=REPLICATES
        )


def test_an_edited_histogram_is_said_to_be_an_older_aggregate(
    saved: Path, tmp_path: Path
) -> None:
    """Defect: a present but garbled searches_histogram (here "1x300 3x0", a group of 0
    people) makes people_sums_of_row return None, and group_comparison then falls back to
    Rao-Scott with WHY_RAO_SCOTT: "these aggregate results were written before each group's
    sums over people were kept ... re-make the aggregate". The file was written with them
    and edited; the user is told something false and no error is raised. Seen: the reason
    above, and a Rao-Scott p-value of 5.0e-05 in place of the bootstrap's 0.005."""
    folder = _edited(saved, tmp_path, searches_histogram="1x300 3x0")
    kind, _, said = _outcome(folder)
    assert kind == "error" or "written before" not in (said or ""), said

