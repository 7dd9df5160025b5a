"""Plain-text summaries for the command line, from the same tables the report shows."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from lfr_eval.report._aggregate import ALL
from lfr_eval.wording import plural

#: Ranks the command-line summary shows (those up to the deepest computed).
SUMMARY_RANKS = (1, 5, 10)


def _label(attribute: str, group: str) -> str:
    return "all mated searches" if attribute == ALL else f"{attribute} = {group}"


def _rank_cell(row: pd.Series) -> str:
    """A rank's rate and interval by :mod:`lfr_eval.plain`'s rules, as the report's rank table
    writes them (no lower end of "0.0%" when mates were found, an upper bound when none
    were), in percent: "89% (95% CI 85%–92%)"."""
    from lfr_eval.plain import plain_rate

    hits = row["hits"] if "hits" in row.index else round(row["rate"] * row["n_searches"])
    figure = plain_rate(
        float(row["rate"]), float(row["ci_low"]), float(row["ci_high"]), errors=int(hits),
        style="percent",
    )  # fmt: skip
    return figure.text


def rank_summary_lines(
    ranks: pd.DataFrame, interval: str, shown: Sequence[int] = SUMMARY_RANKS
) -> list[str]:
    """Lines of the rank-based identification summary (CMC at a few ranks), per group.

    Parameters
    ----------
    ranks : DataFrame
        :attr:`lfr_eval.report.AggregateResult.ranks` (or :func:`lfr_eval.report.cmc_table`).
    interval : str
        What the intervals are, e.g. ``IntervalSettings.describe()``.
    shown : sequence of int
        Ranks to show; those deeper than the table are left out.
    """
    if ranks is None or ranks.empty:
        return ["rank-based identification: no mated searches"]
    deepest = int(ranks["rank"].max())
    columns = [r for r in shown if r <= deepest] or [deepest]
    lines = [
        "identification rate: share of mated searches whose mate is among the r best "
        f"candidates, whatever its score ({interval})"
    ]
    rows = []
    for (attribute, group), part in ranks.groupby(["attribute", "group"], sort=False):
        part = part.set_index("rank")
        n = int(part["n_searches"].iloc[0])
        people = int(part["n_subjects"].iloc[0])
        label = (
            f"{_label(str(attribute), str(group))} "
            f"({plural(n, 'search')}, {plural(people, 'person')})"
        )
        cells = []
        for r in columns:
            row = part.loc[r]
            cells.append(_rank_cell(row) if n else "no searches")
        rows.append((label, cells))
    width = max(len(label) for label, _ in rows)
    cell_width = max(len(c) for _, cells in rows for c in cells)
    header = "  " + " " * width + "  " + "  ".join(f"rank {r}".ljust(cell_width) for r in columns)
    lines.append(header.rstrip())
    for label, cells in rows:
        lines.append(
            "  " + label.ljust(width) + "  " + "  ".join(c.ljust(cell_width) for c in cells)
        )
    return [line.rstrip() for line in lines]
