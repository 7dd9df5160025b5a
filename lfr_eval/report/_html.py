"""The HTML evaluation report (a jinja2 template; plotly.js once, inline or beside the page; no
network needed)."""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict

import jinja2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from lfr_eval.plain import rate_cell
from lfr_eval.report._aggregate import ALL, AggregateResult, as_aggregate
from lfr_eval.report._figures import (
    cmc_figure,
    det_figure,
    empty_reason,
    group_ratio_figure,
    operating_thresholds,
    rate_vs_threshold_figure,
    score_histogram_figure,
    watchlist_scaling_figure,
)
from lfr_eval.results import EvaluationResult, ProtocolInfo
from lfr_eval.wording import plural

ResultLike = EvaluationResult | AggregateResult

REPORT_FILE = "report.html"

#: plotly.js written beside the report (:func:`write_report`), loaded by it.
PLOTLY_FILE = "plotly.min.js"


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    def fmt(value: object) -> str:
        if isinstance(value, float):
            return float_format.format(value)
        return str(value)

    page: str = frame.to_html(
        index=False,
        escape=True,
        na_rep="–",
        formatters={c: fmt for c in frame.columns if frame[c].dtype.kind == "f"},
        border=0,
    )
    return page


def _figure_html(fig: go.Figure, div_id: str) -> str:
    """The figure, or one line saying why there is nothing to draw."""
    why = empty_reason(fig)
    if why is not None:
        title = str(fig.layout.title.text or "chart").split(": nothing to show")[0]
        return f'<p class="empty">{_esc(title)}: not drawn ({_esc(why)}).</p>'
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
                f"{_esc(dataset.name)}: {plural(dataset.n_images, 'image')} of "
                f"{plural(dataset.n_subjects, 'subject')}; attributes "
                f"{_esc(', '.join(dataset.attributes) or 'none')}<br>dataset sha256 "
                f"<code>{_esc(dataset.sha256)}</code>"
            ),
        ),
        (
            "Protocol",
            (
                f"{_esc(protocol.kind)}: {params}<br>{counts}; "
                f"{_esc(protocol.describe_enrolment())}"
            ),
        ),
        (
            "Searches",
            (
                f"watchlist N = {plural(agg.watchlist_size, 'subject')}; "
                f"{agg.n_mated:,} mated and {plural(agg.n_non_mated, 'non-mated search')}; "
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
        fewer = f"fewer than {plural(agg.min_subjects, 'subject')}"
        rows.append(("Withheld groups", f"{fewer}: {_esc(withheld)}"))
    return "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lfr_eval.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _interval_cell(
    rate: float | None, low: float, high: float, errors: float | None, confidence: float
) -> str:
    """A rate with its interval by :mod:`lfr_eval.plain`'s rules, as the app's tables show it:
    no lower end of 0 when errors were seen, an upper bound when none were, and "not bounded
    by these data" instead of an interval that bounds nothing."""
    if rate is None or pd.isna(rate) or errors is None or pd.isna(errors):
        return "–"
    return rate_cell(
        float(rate), float(low), float(high), errors=float(errors), confidence=confidence
    )


def _count_cell(errors: float, searches: float | None, people: float) -> str:
    """Counts from a summary row (NaN where the table has none)."""
    if searches is None or (isinstance(searches, float) and not np.isfinite(searches)):
        return "–"
    if int(searches) == 0:
        return "no searches"
    n_people = int(people)
    return f"{int(errors):,} of {int(searches):,} ({plural(n_people, 'person')})"


def _compact(summary: pd.DataFrame, with_group: bool, confidence: float) -> pd.DataFrame:
    """The summary as a table that fits a page: rate (interval) and counts per metric."""
    rows = []
    for _, r in summary.iterrows():
        row: dict[str, object] = {"threshold": f"{r['threshold']:.4g}"}
        if with_group:
            row["group"] = r["group"]
        row["FPIR (interval)"] = _interval_cell(
            r["fpir"], r["fpir_ci_low"], r["fpir_ci_high"], r["fpir_errors"], confidence
        )
        row["false positives of non-mated searches"] = _count_cell(
            r["fpir_errors"], r["fpir_searches"], r["fpir_subjects"]
        )
        row["FNIR (interval)"] = _interval_cell(
            r["fnir"], r["fnir_ci_low"], r["fnir_ci_high"], r["fnir_errors"], confidence
        )
        row["misses of mated searches"] = _count_cell(
            r["fnir_errors"], r["fnir_searches"], r["fnir_subjects"]
        )
        row["TPIR"] = "–" if pd.isna(r["tpir"]) else f"{r['tpir']:.4g}"
        small = [
            kind
            for kind, column in (("non-mated", "fpir_small_group"), ("mated", "fnir_small_group"))
            if bool(r.get(column)) is True
        ]
        row["small group"] = ", ".join(small)  # defined in the methods section
        rows.append(row)
    return pd.DataFrame(rows)


def headline_table(
    result: ResultLike, thresholds: Sequence[float], attribute: str | None = None
) -> pd.DataFrame:
    """The report's summary table at the grid thresholds nearest ``thresholds``: each rate
    with its interval in one cell by :mod:`lfr_eval.plain`'s rules (no lower end of 0 when
    errors were seen, an upper bound when none were, "not bounded by these data" where the
    interval bounds nothing) and the counts behind it; the whole population, or the groups of
    ``attribute``. The report's first page and the app's Evaluate page show this table (one
    function for both); the interval method is the aggregate's (``intervals.describe()``)."""
    agg = as_aggregate(result)
    confidence = agg.intervals.confidence
    if attribute is None:
        return _compact(agg.summary(thresholds, []), False, confidence)
    table = agg.summary(thresholds, [attribute])
    return _compact(table[table["attribute"] == attribute], True, confidence)


def _verdicts(claims: Sequence[object]) -> list[dict[str, object]]:
    out = []
    for claim in claims:
        if hasattr(claim, "summary") and hasattr(claim, "supported"):
            out.append({"text": claim.summary(), "supported": bool(claim.supported)})
        else:
            text = str(claim)
            refused = "not support" in text.lower() or "NOT supported" in text
            out.append({"text": text, "supported": not refused})
    return out


def build_html_report(
    result: ResultLike,
    thresholds: Sequence[float] | None = None,
    groups: Sequence[str] | None = None,
    *,
    title: str | None = None,
    claim_summaries: Sequence[object] = (),
    aggregate_options: Mapping[str, Any] | None = None,
    plotlyjs: str = "inline",
) -> str:
    """The evaluation report as one HTML page (template ``templates/report.html``).

    The first page holds the verdicts, the headline table and the methods (denominators,
    interval method, failure-to-acquire and -enrol policy); the details follow: tables by
    group, provenance, then the charts. A chart with nothing to show is replaced by one line
    saying why. Printing (or ``chromium --headless --print-to-pdf``) starts the details on a new
    page.

    Parameters
    ----------
    result : EvaluationResult or AggregateResult
    thresholds : sequence of float, optional
        Operating thresholds (cosine similarity) for the summary tables; default: where the
        overall FPIR first reaches 1e-2 and 1e-3 on this data (descriptive, not held out).
    groups : sequence of str, optional
        Attributes to break down by (default: all in the result).
    title : str, optional
    claim_summaries : sequence of ClaimCheck or str
        Claim verdicts (:class:`lfr_eval.claims.ClaimCheck` or its summary text).
    aggregate_options : dict, optional
        Passed to :meth:`AggregateResult.from_result` when ``result`` is not aggregated yet.
    plotlyjs : {"inline", "directory"}
        ``"inline"``: plotly.js embedded once (one self-contained file, about 5 MB);
        ``"directory"``: loaded from ``plotly.min.js`` beside the page (:func:`write_report`
        writes it), which keeps the page itself small.

    Returns
    -------
    str
        HTML with every figure's data embedded.
    """
    agg = as_aggregate(result, **(aggregate_options or {}))
    attributes = [
        a for a in (groups if groups is not None else agg.attributes) if a in agg.attributes
    ]
    chosen = list(thresholds) if thresholds else operating_thresholds(agg)
    provenance = agg.provenance
    title = title or f"LFR evaluation: {agg.describe_engine()} on {provenance.dataset.name}"
    figure_id = iter(range(10_000))

    def figure(fig: go.Figure) -> str:
        return _figure_html(fig, f"fig{next(figure_id)}")

    headline = ""
    group_tables = []
    if chosen:
        headline = _table(headline_table(agg, chosen))
        for attribute in attributes:
            group_tables.append(
                {"attribute": attribute, "table": _table(headline_table(agg, chosen, attribute))}
            )
    threshold_note = (
        "Thresholds: "
        + ", ".join(f"{t:.4g}" for t in chosen)
        + (
            "."
            if thresholds
            else " (where overall FPIR first reaches 1e-2 and 1e-3 on this data: descriptive "
            "operating points, not a threshold chosen on a separate split)."
        )
    )
    sections: list[_Section] = [
        {
            "title": "DET",
            "intro": "",
            "parts": [figure(det_figure(agg))] + [figure(det_figure(agg, a)) for a in attributes],
        },
        {
            "title": "FPIR and FNIR against the threshold",
            "intro": "",
            "parts": [
                figure(rate_vs_threshold_figure(agg, metric, attribute))
                for attribute in [None, *attributes]
                for metric in ("fpir", "fnir")
            ],
        },
    ]
    if attributes:
        sections.append(
            {
                "title": "Group ratios",
                "intro": "",
                "parts": [
                    figure(group_ratio_figure(agg, metric, attribute))
                    for attribute in attributes
                    for metric in ("fpir", "fnir")
                ],
            }
        )
    sections.append(_rank_section(agg, attributes, figure))
    sections.append(_scaling_section(agg, attributes, chosen, figure))
    sections.append(
        {
            "title": "Score distributions",
            "intro": "",
            "parts": [figure(score_histogram_figure(agg))]
            + [figure(score_histogram_figure(agg, a)) for a in attributes],
        }
    )
    acquisition = agg.acquisition
    if attributes:
        acquisition = acquisition[acquisition["attribute"].isin([ALL, *attributes])]
    sections.append(
        {
            "title": "Failures to acquire",
            "intro": _fta_policy(agg),
            "parts": [_table(_acquisition_table(acquisition))],
        }
    )
    n_failed = _failed(agg)
    if plotlyjs == "inline":
        script = f'<script type="text/javascript">{get_plotlyjs()}</script>'
    elif plotlyjs == "directory":
        script = f'<script src="{PLOTLY_FILE}"></script>'
    else:
        raise ValueError(f"plotlyjs must be 'inline' or 'directory', got {plotlyjs!r}")
    from lfr_eval import __version__

    return (
        _env()
        .get_template("report.html")
        .render(
            title=title,
            subtitle=(
                f"{provenance.dataset.name}: {plural(provenance.dataset.n_images, 'image')} of "
                f"{plural(provenance.dataset.n_subjects, 'person')}; protocol "
                f"{provenance.protocol.kind} "
                f"(seed {provenance.seed}); watchlist N = {agg.watchlist_size:,}; engine "
                f"{agg.describe_engine()}."
            ),
            verdicts=_verdicts(claim_summaries),
            headline=headline,
            threshold_note=threshold_note,
            n_non_mated=f"{agg.n_non_mated:,}",
            n_mated=f"{agg.n_mated:,}",
            watchlist_size=f"{agg.watchlist_size:,}",
            rank=agg.rank,
            intervals=agg.intervals.describe(),
            failed=n_failed,
            fta_policy=_fta_policy(agg),
            failed_to_enrol=_failed_to_enrol(provenance.protocol),
            withheld=", ".join(w.describe() for w in agg.withheld),
            min_subjects=agg.min_subjects,
            result_sha256=agg.result_sha256,
            group_tables=group_tables,
            provenance=_meta_rows(agg),
            sections=sections,
            plotly_script=script,
            version=__version__,
            generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
    )


def _failed_to_enrol(protocol: ProtocolInfo) -> str:
    count = protocol.failed_to_enrol
    if count == 0 and protocol.enrolment is None:
        return "none: every enrolled person has a usable enrolment image"
    # The rate, its counts and how the searches were counted: the same sentence as the CLI's.
    return protocol.describe_enrolment()


def _failed(agg: AggregateResult) -> str:
    table = agg.acquisition
    overall = table[table["attribute"] == ALL] if "attribute" in table.columns else table
    if overall.empty or "failed" not in overall.columns:
        return "none recorded"
    parts = [
        f"{int(r['failed']):,} of "
        f"{plural(int(r['images']), str(r['role']).replace('_', '-') + ' image')}"
        for _, r in overall.iterrows()
    ]
    return "; ".join(parts)


def _acquisition_table(table: pd.DataFrame) -> pd.DataFrame:
    """Failures to acquire as a reader reads them: roles in words, counts with separators and
    the share failed."""
    if table.empty or not {"role", "images", "failed"} <= set(table.columns):
        return table
    images = table["images"].astype(int)
    failed = table["failed"].astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(images > 0, failed / images.where(images > 0, 1), np.nan)
    out = pd.DataFrame(
        {
            "images of": table["role"].astype(str).str.replace("_", "-"),
            "attribute": table["attribute"] if "attribute" in table.columns else ALL,
            "group": table["group"] if "group" in table.columns else ALL,
            "images": images.map("{:,}".format),
            "failed to acquire": failed.map("{:,}".format),
            "share": [("–" if np.isnan(v) else f"{v:.1%}") for v in share],
        }
    )
    return out.reset_index(drop=True)


def _fta_policy(agg: AggregateResult) -> str:
    if agg.provenance.protocol.failures == "nist":
        return (
            "Images in which the engine found no face (or could not read) count as NIST FRTE "
            "counts them: a failed mated search is a miss at every threshold and rank (it "
            "raises FNIR), a failed non-mated search returns no candidate (it is in FPIR's "
            "denominator, never a false positive)."
        )
    return (
        "Images in which the engine found no face (or could not read) are left out of the "
        "searches (--failures exclude) and counted per role and group."
    )


class _Section(TypedDict):
    """One section of the report's details (template ``report.html``)."""

    title: str
    intro: str
    parts: list[str]


def _rank_section(
    agg: AggregateResult, attributes: Sequence[str], figure: Callable[[go.Figure], str]
) -> _Section:
    if agg.ranks is None or agg.ranks.empty:
        return {
            "title": "Rank-based identification (CMC)",
            "intro": "No rank table in these results (made before ranks were recorded).",
            "parts": [],
        }
    return {
        "title": "Rank-based identification (CMC)",
        "intro": (
            "Share of mated searches whose mate is among the r best candidates (distinct "
            f"watchlist subjects), whatever its score; {agg.intervals.describe()}. Ties rank in "
            "the mate's favour, as NIST FRTE ranks; failures to acquire are misses at every "
            "rank where they are counted."
        ),
        "parts": [_table(_rank_wide(agg, attributes))]
        + [figure(cmc_figure(agg))]
        + [figure(cmc_figure(agg, a)) for a in attributes],
    }


def _scaling_section(
    agg: AggregateResult,
    attributes: Sequence[str],
    chosen: Sequence[float],
    figure: Callable[[go.Figure], str],
) -> _Section:
    if agg.scaling is None or not chosen:
        return {"title": "Watchlist size", "intro": "No watchlist-size scaling in these results.",
                "parts": []}  # fmt: skip
    return {
        "title": "Watchlist size",
        "intro": (
            "FPIR grows with the watchlist: for small rates FPIR(N) ≈ N × FMR. The analytic "
            "curve uses each non-mated search's own false matches among the F fillers: up to "
            "N = F the exact expectation of drawing N of them (unbiased); beyond F an "
            "extrapolation ×N/F whose band runs from the per-person model (low) to one pooled "
            "rate (high), because the data cannot tell between them. Bands are 95% intervals "
            "clustered by person (Korn–Graubard-style beta interval; the scaling.csv "
            "'interval' column names each row's method). Resampled points draw galleries of N "
            "from the fillers (only up to their number)."
        ),
        "parts": [
            figure(watchlist_scaling_figure(agg, threshold, attribute=attribute))
            for threshold in chosen
            for attribute in [None, *attributes]
        ],
    }


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
            "people": int(part["n_subjects"].iloc[0]),
        }
        for _, r in part.iterrows():
            # the count the rate rests on: mates found at rank <= r
            found = r["hits"] if "hits" in r.index else round(r["rate"] * r["n_searches"])
            row[f"rank {int(r['rank'])}"] = _interval_cell(
                r["rate"], r["ci_low"], r["ci_high"], found, agg.intervals.confidence
            )
        rows.append(row)
    return pd.DataFrame(rows)


def write_report(
    result: ResultLike,
    directory: str | os.PathLike[str],
    thresholds: Sequence[float] | None = None,
    groups: Sequence[str] | None = None,
    *,
    title: str | None = None,
    claim_summaries: Sequence[object] = (),
    aggregate_options: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``report.html`` and its tables as CSV (``rates.csv``, ``summary.csv``,
    ``scaling.csv``, ``acquisition.csv``, ``histograms.csv``) into ``directory``.

    ``title``, ``claim_summaries`` and ``aggregate_options`` are those of
    :func:`build_html_report`. Returns the path of ``report.html``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    agg = as_aggregate(result, **(aggregate_options or {}))
    page = build_html_report(
        agg,
        thresholds,
        groups,
        title=title,
        claim_summaries=claim_summaries,
        plotlyjs="directory",
    )
    script = get_plotlyjs()
    target = directory / PLOTLY_FILE
    if not target.is_file() or target.read_text(encoding="utf-8") != script:
        tmp = directory / (PLOTLY_FILE + ".tmp")
        tmp.write_text(script, encoding="utf-8")
        os.replace(tmp, target)
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
