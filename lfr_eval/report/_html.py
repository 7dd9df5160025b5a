"""A self-contained HTML evaluation report (plotly.js embedded once; no network needed)."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from lfr_eval.report._aggregate import ALL, AggregateResult, as_aggregate
from lfr_eval.report._figures import (
    ResultLike,
    cmc_figure,
    det_figure,
    group_ratio_figure,
    operating_thresholds,
    rate_vs_threshold_figure,
    score_histogram_figure,
    summary_table,
    watchlist_scaling_figure,
)

REPORT_FILE = "report.html"

_STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem;
margin-top: 2.2rem; } table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .5rem .8rem; }
.meta { width: 100%; } .meta td { text-align: left; } code { font-size: .85em; }
.meta code { word-break: break-all; }
.figure { margin: 1rem 0 2rem 0; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    def fmt(value: object) -> str:
        if isinstance(value, float):
            return float_format.format(value)
        return str(value)

    return frame.to_html(
        index=False,
        escape=True,
        na_rep="–",
        formatters={c: fmt for c in frame.columns if frame[c].dtype.kind == "f"},
        border=0,
    )


def _figure_html(fig: go.Figure, div_id: str) -> str:
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        default_height="520px",
        default_width="100%",
    )
    return f'<div class="figure">{body}</div>'


def _meta_rows(agg: AggregateResult) -> str:
    provenance = agg.provenance
    engine = provenance.engine
    models = "<br>".join(
        f"{_esc(m.role)}: <code>{_esc(m.name)}</code> sha256 <code>{_esc(m.sha256)}</code>"
        for m in engine.models
    )
    dataset = provenance.dataset
    protocol = provenance.protocol
    params = ", ".join(f"{_esc(k)}={_esc(v)}" for k, v in protocol.params.items())
    counts = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in protocol.counts.items())
    software = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in sorted(provenance.software.items()))
    scoring = (
        ""
        if provenance.scoring_runtime is None
        else f"<br>scores: {_esc(provenance.scoring_runtime.describe())}"
    )
    rows = [
        (
            "Engine",
            (
                f"{_esc(engine.backend)} (embedding dim {_esc(engine.embedding_dim)})"
                f"<br>{models}<br>cache key <code>{_esc(provenance.engine_key)}</code>"
            ),
        ),
        ("Runtime", f"networks: {_esc(provenance.runtime.describe())}{scoring}"),
        (
            "Dataset",
            (
                f"{_esc(dataset.name)}: {dataset.n_images:,} images of "
                f"{dataset.n_subjects:,} subjects; attributes "
                f"{_esc(', '.join(dataset.attributes) or 'none')}<br>dataset sha256 "
                f"<code>{_esc(dataset.sha256)}</code>"
            ),
        ),
        (
            "Protocol",
            (
                f"{_esc(protocol.kind)}: {params}<br>{counts}; failed to enrol "
                f"{protocol.failed_to_enrol:,}"
            ),
        ),
        (
            "Searches",
            (
                f"watchlist N = {agg.watchlist_size:,} subjects; "
                f"{agg.n_mated:,} mated and {agg.n_non_mated:,} non-mated searches; "
                f"FNIR at rank {agg.rank}"
            ),
        ),
        ("Intervals", _esc(agg.intervals.describe())),
        ("Software", software),
        (
            "Result",
            (
                f"created {_esc(provenance.result_created)}; result sha256 "
                f"<code>{_esc(agg.result_sha256)}</code>"
            ),
        ),
    ]
    if agg.withheld:
        withheld = ", ".join(w.describe() for w in agg.withheld)
        rows.append(
            ("Withheld groups", f"fewer than {agg.min_subjects} subjects: {_esc(withheld)}")
        )
    return "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)


def build_html_report(
    result: ResultLike,
    thresholds: Sequence[float] | None = None,
    groups: Sequence[str] | None = None,
    *,
    title: str | None = None,
    claim_summaries: Sequence[str] = (),
    aggregate_options: dict | None = None,
) -> str:
    """The evaluation report as one self-contained HTML page.

    Parameters
    ----------
    result : EvaluationResult or AggregateResult
    thresholds : sequence of float, optional
        Operating thresholds (cosine similarity) for the summary tables; default: where the
        overall FPIR first reaches 1e-2 and 1e-3 on this data (descriptive, not held out).
    groups : sequence of str, optional
        Attributes to break down by (default: all in the result).
    title : str, optional
    claim_summaries : sequence of str
        Plain-text claim verdicts (:meth:`lfr_eval.claims.ClaimCheck.summary`) to include.
    aggregate_options : dict, optional
        Passed to :meth:`AggregateResult.from_result` when ``result`` is not aggregated yet.

    Returns
    -------
    str
        HTML with plotly.js inlined once and every figure's data embedded.
    """
    agg = as_aggregate(result, **(aggregate_options or {}))
    attributes = [
        a for a in (groups if groups is not None else agg.attributes) if a in agg.attributes
    ]
    chosen = list(thresholds) if thresholds else operating_thresholds(agg)
    dataset = agg.provenance.dataset.name
    title = title or f"LFR evaluation: {agg.describe_engine()} on {dataset}"
    parts: list[str] = []
    add = parts.append
    add(f"<h1>{_esc(title)}</h1>")
    add(
        '<p class="note">All rates here are <b>FPIR</b> (false positives ÷ non-mated searches, '
        f"for a watchlist of N = {agg.watchlist_size:,} subjects) and <b>FNIR</b> (mated searches "
        "whose mate is not returned at or above the threshold ÷ mated searches), as NIST FRTE "
        "1:N and ISO/IEC 19795-1 define them. They are not false alerts per face scanned, nor "
        "the share of alerts that are false. Similarity is cosine similarity in [-1, 1]; an "
        "alert is raised at or above the threshold.</p>"
    )
    add(f'<h2>Provenance</h2><table class="meta">{_meta_rows(agg)}</table>')

    add("<h2>Summary at operating thresholds</h2>")
    if chosen:
        threshold_text = ", ".join(f"{t:.4g}" for t in chosen)
        add(
            f"<p>Thresholds: {_esc(threshold_text)}"
            + (
                ""
                if thresholds
                else " (where overall FPIR first reaches 1e-2 and 1e-3 on this "
                "data: descriptive operating points, not a threshold chosen on a separate split)"
            )
            + ".</p>"
        )
        add(_table(summary_table(agg, chosen)[_summary_columns()].rename(columns=_SUMMARY_NAMES)))
        for attribute in attributes:
            table = summary_table(agg, chosen, attribute)
            table = table[table["attribute"] == attribute]
            add(f"<h3>By {_esc(attribute)}</h3>")
            add(_table(table[_summary_columns()].rename(columns=_SUMMARY_NAMES)))
        add(
            "<p>Groups marked small have fewer than 20 subjects or 100 searches: their intervals "
            "are wide, which is a finding, not a reason to hide them.</p>"
        )
    else:
        add("<p>Overall FPIR never reaches 1e-2 on this data; pass thresholds to summarise.</p>")

    if claim_summaries:
        add("<h2>Claims</h2>")
        for text in claim_summaries:
            add(f"<pre>{_esc(text)}</pre>")

    figure_id = iter(range(1000))
    add("<h2>DET</h2>")
    add(_figure_html(det_figure(agg), f"fig{next(figure_id)}"))
    for attribute in attributes:
        add(_figure_html(det_figure(agg, attribute), f"fig{next(figure_id)}"))
    add("<h2>FPIR and FNIR against the threshold</h2>")
    for attribute in [None, *attributes]:
        for metric in ("fpir", "fnir"):
            add(
                _figure_html(
                    rate_vs_threshold_figure(agg, metric, attribute), f"fig{next(figure_id)}"
                )
            )
    if attributes:
        add("<h2>Group ratios</h2>")
        for attribute in attributes:
            for metric in ("fpir", "fnir"):
                add(
                    _figure_html(
                        group_ratio_figure(agg, metric, attribute), f"fig{next(figure_id)}"
                    )
                )
    add("<h2>Rank-based identification (CMC)</h2>")
    if agg.ranks is not None and not agg.ranks.empty:
        add(
            "<p>Share of mated searches whose mate is among the r best candidates "
            f"(distinct watchlist subjects), whatever its score; {_esc(agg.intervals.describe())}. "
            "Ties rank in the mate's favour, as NIST FRTE ranks; failures to acquire are "
            "misses at every rank where they are counted.</p>"
        )
        add(_table(_rank_wide(agg, attributes), float_format="{:.3f}"))
        add(_figure_html(cmc_figure(agg), f"fig{next(figure_id)}"))
        for attribute in attributes:
            add(_figure_html(cmc_figure(agg, attribute), f"fig{next(figure_id)}"))
    else:
        add("<p>No rank table in these results (made before ranks were recorded).</p>")
    add("<h2>Watchlist size</h2>")
    if agg.scaling is not None and chosen:
        add(
            "<p>FPIR grows with the watchlist: for small rates FPIR(N) ≈ N × FMR. The analytic "
            "curve uses each non-mated search's own false-match rate against the measured "
            "watchlist; resampled points draw galleries of N from it (only up to its size).</p>"
        )
        for threshold in chosen:
            add(_figure_html(watchlist_scaling_figure(agg, threshold), f"fig{next(figure_id)}"))
            for attribute in attributes:
                add(
                    _figure_html(
                        watchlist_scaling_figure(agg, threshold, attribute=attribute),
                        f"fig{next(figure_id)}",
                    )
                )
    else:
        add("<p>No watchlist-size scaling in this result.</p>")
    add("<h2>Score distributions</h2>")
    add(_figure_html(score_histogram_figure(agg), f"fig{next(figure_id)}"))
    for attribute in attributes:
        add(_figure_html(score_histogram_figure(agg, attribute), f"fig{next(figure_id)}"))
    add("<h2>Failures to acquire</h2>")
    if agg.provenance.protocol.failures == "nist":
        add(
            "<p>Images in which the engine found no face (or could not read) are counted here "
            "and, as NIST FRTE counts them, in the rates above: a failed mated search is a "
            "miss at every threshold (it raises FNIR), a failed non-mated search returns no "
            "candidate (it is in FPIR's denominator, never a false positive).</p>"
        )
    else:
        add(
            "<p>Images in which the engine found no face (or could not read) are left out of "
            "the searches above and counted here.</p>"
        )
    acquisition = agg.acquisition
    if attributes:
        acquisition = acquisition[acquisition["attribute"].isin([ALL, *attributes])]
    add(_table(acquisition))
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    add(f"<p><small>Generated by lfr-eval {generated}.</small></p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        + "\n".join(parts)
        + "</body></html>"
    )


def _rank_wide(agg: AggregateResult, attributes: Sequence[str]) -> pd.DataFrame:
    """Rank table as one row per group: searches, people, then rate [interval] per rank."""
    ranks = agg.ranks
    assert ranks is not None
    ranks = ranks[ranks["attribute"].isin([ALL, *attributes])]
    rows = []
    for (attribute, group), part in ranks.groupby(["attribute", "group"], sort=False):
        part = part.sort_values("rank")
        row: dict[str, object] = {
            "attribute": attribute,
            "group": group,
            "mated searches": int(part["n_searches"].iloc[0]),
            "mated people": int(part["n_subjects"].iloc[0]),
        }
        for _, r in part.iterrows():
            row[f"rank {int(r['rank'])}"] = (
                f"{r['rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            )
        rows.append(row)
    return pd.DataFrame(rows)


_SUMMARY_NAMES = {
    "fpir": "FPIR",
    "fpir_ci_low": "FPIR low",
    "fpir_ci_high": "FPIR high",
    "fpir_errors": "false positives",
    "fpir_searches": "non-mated searches",
    "fpir_subjects": "non-mated subjects",
    "fnir": "FNIR",
    "fnir_ci_low": "FNIR low",
    "fnir_ci_high": "FNIR high",
    "fnir_errors": "misses",
    "fnir_searches": "mated searches",
    "fnir_subjects": "mated subjects",
    "tpir": "TPIR",
    "fpir_small_group": "small (non-mated)",
    "fnir_small_group": "small (mated)",
}


def _summary_columns() -> list[str]:
    return [
        "threshold",
        "attribute",
        "group",
        "fpir",
        "fpir_ci_low",
        "fpir_ci_high",
        "fpir_errors",
        "fpir_searches",
        "fpir_subjects",
        "fnir",
        "fnir_ci_low",
        "fnir_ci_high",
        "fnir_errors",
        "fnir_searches",
        "fnir_subjects",
        "tpir",
        "fpir_small_group",
        "fnir_small_group",
    ]


def write_report(
    result: ResultLike,
    directory: str | os.PathLike[str],
    thresholds: Sequence[float] | None = None,
    groups: Sequence[str] | None = None,
    **options: object,
) -> Path:
    """Write ``report.html`` and its tables as CSV (``rates.csv``, ``summary.csv``,
    ``scaling.csv``, ``acquisition.csv``, ``histograms.csv``) into ``directory``.

    Returns the path of ``report.html``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    aggregate_options = options.pop("aggregate_options", None) or {}
    agg = as_aggregate(result, **aggregate_options)  # type: ignore[arg-type]
    page = build_html_report(agg, thresholds, groups, **options)  # type: ignore[arg-type]
    chosen = list(thresholds) if thresholds else operating_thresholds(agg)
    agg.rates.to_csv(directory / "rates.csv", index=False, float_format="%.8g")
    agg.histograms.to_csv(directory / "histograms.csv", index=False)
    agg.acquisition.to_csv(directory / "acquisition.csv", index=False)
    if agg.scaling is not None:
        agg.scaling.to_csv(directory / "scaling.csv", index=False, float_format="%.8g")
    if agg.ranks is not None:
        agg.ranks.to_csv(directory / "ranks.csv", index=False, float_format="%.8g")
    if chosen:
        asked = groups if groups is not None else agg.attributes
        wanted = [a for a in asked if a in agg.attributes]
        summary = agg.summary(chosen, wanted)
        summary.to_csv(directory / "summary.csv", index=False, float_format="%.8g")
    tmp = directory / (REPORT_FILE + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, directory / REPORT_FILE)
    return directory / REPORT_FILE
