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
            cells.append(
                f"{row['rate']:.1%} ({row['ci_low']:.1%}–{row['ci_high']:.1%})"
                if n
                else "no searches"
            )
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
