"""``lfr-eval evaluate``, ``lfr-eval report`` and ``lfr-eval claim``."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

import click

from lfr_eval.cli._common import engine_options, open_results, workspace_option
from lfr_eval.cli._embed import cache_options, dataset_options, embedding_setup, open_dataset

if TYPE_CHECKING:
    import pandas as pd

    from lfr_eval.claims import Claim
    from lfr_eval.datasets._embedding import FaceChoice
    from lfr_eval.protocols import EnrolmentFailurePolicy, FailurePolicy, ScaledFpir
    from lfr_eval.report import AggregateResult


@click.command("evaluate")
@dataset_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Results folder to write (result.json, searches.parquet, scaling.parquet, report).",
)
@click.option(
    "--protocol",
    "protocol_kind",
    type=click.Choice(["open-set", "npl"]),
    default="open-set",
    show_default=True,
    help="open-set: watchlist, mated and non-mated searches split by subject. npl: "
    "volunteers enrolled among a filler gallery, NPL-style.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Protocol seed.")
@click.option(
    "--n-enrolled",
    type=click.IntRange(min=1),
    default=None,
    help="Watchlist subjects (open-set; default: --enrolled-fraction of the eligible).",
)
@click.option(
    "--enrolled-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="Share of subjects with 2+ images enrolled (open-set) or made volunteers (npl).",
)
@click.option(
    "--enrolment-images",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Images per enrolled subject used as templates.",
)
@click.option(
    "--max-mated-per-subject",
    type=click.IntRange(min=1),
    default=None,
    help="Cap on mated searches per subject (default: all their other images).",
)
@click.option(
    "--max-non-mated-per-subject",
    type=click.IntRange(min=1),
    default=None,
    help="Cap on non-mated searches per subject.",
)
@click.option(
    "--balance-by",
    default=None,
    help="Attribute to balance enrolled and non-mated subjects over (open-set).",
)
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Candidates kept per non-mated search.",
)
@click.option(
    "--watchlist-size",
    "watchlist_sizes",
    type=click.IntRange(min=1),
    multiple=True,
    help="Watchlist sizes to scale FPIR to (repeatable; default 100, 200, 500, 1k, ..., "
    "100k; the threshold explorer offers exactly these).",
)
@click.option(
    "--threshold",
    "thresholds",
    type=click.FloatRange(-1, 1),
    multiple=True,
    help="Operating thresholds (cosine) for the report's summary tables.",
)
@click.option(
    "--report/--no-report",
    default=True,
    show_default=True,
    help="Also write report.html and CSV tables into the results folder.",
)
@click.option(
    "--failures",
    type=click.Choice(["nist", "exclude"]),
    default="nist",
    show_default=True,
    help="Probes with no face / no template: 'nist' counts a failed mated probe as a miss "
    "and a failed non-mated probe as a search with no candidate (NIST FRTE); 'exclude' "
    "leaves them out of FPIR/FNIR. Either way they are reported per role and group.",
)
@click.option(
    "--enrolment-failures",
    type=click.Choice(["nist", "exclude"]),
    default="nist",
    show_default=True,
    help="Watchlist subjects with no usable enrolment image (failure to enrol): 'nist' keeps "
    "their mated searches in FNIR as misses (ISO/IEC 19795-1); 'exclude' leaves them out. "
    "The failure-to-enrol rate is reported either way.",
)
@click.option(
    "--enrolment-next-image/--no-enrolment-next-image",
    default=False,
    show_default=True,
    help="Enrol a subject whose enrolment images all fail from its next usable image.",
)
@click.option(
    "--enrolment-min-face",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="PIXELS",
    help="Quality gate: an enrolment image whose face is smaller than this (eye distance, "
    "pixels) fails to enrol.",
)
@click.option(
    "--composition",
    default=None,
    metavar="ATTR=LABEL:SHARE,... | FILE",
    help="Demographic make-up of the deployed watchlist to weight the watchlist-size scaling "
    "by, e.g. 'ethnicity=african:0.2,caucasian:0.6,asian:0.2', or a .json file "
    '({"attribute": ..., "shares": {...}}) or .csv file (columns attribute, label, share).',
)
@click.option(
    "--tail-model",
    is_flag=True,
    help="Also add model-based FPIR rows from a generalised Pareto tail of impostor scores "
    "(for thresholds where counts run out; labelled 'gpd-tail-model (model-based ...)' in "
    "scaling.csv, with the fit in their 'estimator' column). Off by default.",
)
@click.option(
    "--scoring-device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where probe x watchlist scores are computed ('cuda' uses torch; fails "
    "loudly if no GPU is active).",
)
@click.option(
    "--scoring-memory",
    "scoring_memory_gib",
    type=click.FloatRange(min=0.1),
    default=None,
    metavar="GIB",
    help="Memory setting for scoring, GiB (default 3, fits a 4 GB machine): probe blocks are "
    "sized from it and large per-threshold counts are memory-mapped from disk.",
)
@click.option(
    "--scoring-work-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder that keeps finished scoring blocks: after an interruption (Ctrl-C, a killed "
    "process) the same command resumes from them instead of recomputing. Large counts are "
    "memory-mapped there (without it: in the temp dir; where /tmp is a tmpfs that is RAM, so "
    "name a folder on disk).",
)
@cache_options
@engine_options
@workspace_option
def evaluate_command(
    source: str,
    layout: str,
    labels: str | None,
    attributes: str | None,
    upsample: int | None,
    limit: int | None,
    out_dir: str,
    protocol_kind: str,
    seed: int,
    n_enrolled: int | None,
    enrolled_fraction: float,
    enrolment_images: int,
    max_mated_per_subject: int | None,
    max_non_mated_per_subject: int | None,
    balance_by: str | None,
    top_k: int,
    watchlist_sizes: tuple[int, ...],
    thresholds: tuple[float, ...],
    report: bool,
    failures: FailurePolicy,  # click.Choice of the policies
    enrolment_failures: EnrolmentFailurePolicy,
    enrolment_next_image: bool,
    enrolment_min_face: float | None,
    composition: str | None,
    tail_model: bool,
    scoring_device: str,
    scoring_memory_gib: float | None,
    scoring_work_dir: str | None,
    cache_path: str | None,
    no_cache: bool,
    workers: int,
    scheduler: str | None,
    face_choice: FaceChoice | None,
    engine_backend: str,
    detector: str,
    model_pack: str | None,
    runtime: str,
    device: str,
    workspace: str | None,
) -> None:
    """Evaluate a face engine on SOURCE (a manifest, an LFW copy or a folder per subject).

    Builds the protocol from the dataset and --seed (split by subject), embeds the images it
    uses through the cache (resumable: run the same command again after an interruption),
    searches every probe against the watchlist and writes the results folder: FPIR/FNIR by
    group with intervals, watchlist-size scaling and full provenance.
    """
    from lfr_eval.evaluation import DEFAULT_WATCHLIST_SIZES, evaluate
    from lfr_eval.faces import EngineChoice
    from lfr_eval.protocols import (
        EnrolmentSettings,
        NplParams,
        OpenSetParams,
        ScoringScale,
        WatchlistComposition,
    )

    weighting = None if composition is None else WatchlistComposition.from_option(composition)
    manifest, chosen = open_dataset(source, layout, labels, attributes, limit, seed)
    params: OpenSetParams | NplParams
    if protocol_kind == "open-set":
        params = OpenSetParams(
            seed=seed,
            n_enrolled=n_enrolled,
            enrolled_fraction=enrolled_fraction,
            enrolment_images=enrolment_images,
            max_mated_per_subject=max_mated_per_subject,
            max_non_mated_per_subject=max_non_mated_per_subject,
            balance_by=balance_by,
        )
    else:
        if n_enrolled is not None or balance_by is not None:
            raise click.UsageError("--n-enrolled and --balance-by apply to --protocol open-set")
        params = NplParams(
            seed=seed,
            volunteer_fraction=enrolled_fraction,
            enrolment_images=enrolment_images,
            max_mated_per_subject=max_mated_per_subject,
            max_non_mated_per_subject=max_non_mated_per_subject,
        )
    choice = EngineChoice(engine_backend, detector, model_pack, runtime, device, upsample)
    with embedding_setup(
        chosen,
        choice,
        workers=workers,
        scheduler=scheduler,
        cache_path=cache_path,
        no_cache=no_cache,
        face_choice=face_choice,
        workspace=workspace,
    ) as setup:
        result = evaluate(
            manifest,
            setup.engine,
            params,
            cache=setup.cache,
            progress=True,
            top_k=top_k,
            face_choice=setup.face_choice,
            workers=workers,
            engine_factory=setup.engine_factory,
            cluster=setup.cluster,
            watchlist_sizes=watchlist_sizes or DEFAULT_WATCHLIST_SIZES,
            scoring_backend="torch" if scoring_device == "cuda" else "numpy",
            scoring_device=scoring_device,
            scoring_scale=ScoringScale(
                memory_bytes=None
                if scoring_memory_gib is None
                else int(scoring_memory_gib * 2**30),
                work_dir=scoring_work_dir,
                progress=True,
            ),
            failures=failures,
            composition=weighting,
            tail_model=tail_model,
            enrolment=EnrolmentSettings(
                failures=enrolment_failures,
                next_image=enrolment_next_image,
                min_face_px=enrolment_min_face,
            ),
        )
    out = result.save(out_dir)
    t = result.timings
    searches = result.searches
    failed = (
        f"{searches.n_failed_mated:,} mated and {searches.n_failed_non_mated:,} non-mated "
        "searches failed to acquire (counted as NIST does)"
        if result.protocol.failures == "nist"
        else "searches that failed to acquire left out (--failures exclude)"
    )
    click.echo(
        f"watchlist N = {result.watchlist_size:,}; {searches.n_mated:,} mated and "
        f"{searches.n_non_mated:,} non-mated searches; {failed}; "
        f"{result.protocol.describe_enrolment()}"
    )
    if weighting is not None:
        click.echo(f"watchlist-size scaling weighted to {weighting.to_text()}")
    click.echo(
        f"embedding {t.get('embedding_s', 0):.1f} s ({int(t.get('images_embedded', 0)):,} "
        f"computed, {int(t.get('images_from_cache', 0)):,} from the cache); scoring "
        f"{t.get('scoring_s', 0):.1f} s; scaling {t.get('scaling_s', 0):.1f} s"
    )
    click.echo(f"results: {out}")
    from lfr_eval.report import AggregateResult, write_report
    from lfr_eval.report._text import rank_summary_lines

    if report:
        agg = AggregateResult.from_result(result)
        ranks, interval = agg.ranks, agg.intervals.describe()
    else:
        # the rank table alone: no threshold grid, no report
        agg = AggregateResult.from_result(result, thresholds=[-1.0])
        ranks, interval = agg.ranks, agg.intervals.describe()
    for line in rank_summary_lines(ranks, interval):
        click.echo(line)
    if report:
        path = write_report(agg, out, list(thresholds) or None)
        click.echo(f"report: {path}")


@click.command("report")
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for report.html and CSV tables (default: the results folder).",
)
@click.option(
    "--threshold",
    "thresholds",
    type=click.FloatRange(-1, 1),
    multiple=True,
    help="Operating thresholds (cosine) for the summary tables (repeatable).",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="Attributes to break down by (repeatable; default: all).",
)
@click.option(
    "--ci-method",
    type=click.Choice(
        [
            "design-effect-jeffreys",
            "korn-graubard",
            "subject-bootstrap",
            "clopper-pearson",
            "wilson",
        ]
    ),
    default="design-effect-jeffreys",
    show_default=True,
    help="Intervals: design-effect-jeffreys = Jeffreys interval for the effective number of "
    "searches clustered by person (repeat images of a person are not independent; only the "
    "between-person part of the variance is widened for few people; the default); "
    "korn-graubard = the same with exact Clopper-Pearson ends (conservative); "
    "subject-bootstrap = percentile bootstrap over people; clopper-pearson / wilson treat "
    "searches as independent.",
)
@click.option("--n-boot", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option(
    "--confidence", type=click.FloatRange(0.5, 1, max_open=True), default=0.95, show_default=True
)
def report_command(
    results: str,
    out_dir: str | None,
    thresholds: tuple[float, ...],
    groups: tuple[str, ...],
    ci_method: str,
    n_boot: int,
    confidence: float,
) -> None:
    """Write a self-contained HTML report (and CSV tables) for a results folder.

    RESULTS is a folder written by 'lfr-eval evaluate' or an aggregate folder (aggregate.json).
    """
    from lfr_eval.report import as_aggregate, write_report
    from lfr_eval.report._text import rank_summary_lines

    loaded = open_results(results)
    _refuse_settings_an_aggregate_cannot_take(loaded, ci_method, n_boot, confidence)
    unknown = [g for g in groups if g not in loaded.attributes]
    if unknown:
        raise click.BadParameter(
            f"no attribute {', '.join(map(repr, unknown))} in these results; they have "
            f"{', '.join(loaded.attributes) or 'none'}",
            param_hint="--group",
        )
    agg = as_aggregate(
        loaded,
        ci_method=ci_method,
        n_boot=n_boot,
        confidence=confidence,
        **({"attributes": list(groups)} if groups else {}),
    )
    if agg.ranks is not None:
        for line in rank_summary_lines(agg.ranks, agg.intervals.describe()):
            click.echo(line)
    path = write_report(agg, out_dir or results, list(thresholds) or None, list(groups) or None)
    click.echo(f"report: {path}")


def _refuse_settings_an_aggregate_cannot_take(
    loaded: object, ci_method: str, n_boot: int, confidence: float
) -> None:
    """An aggregate folder keeps the intervals it was made with (no per-person counts to
    recompute them): interval options given on the command line for one are an error, never
    silently ignored."""
    from click.core import ParameterSource

    from lfr_eval.report import AggregateResult

    if not isinstance(loaded, AggregateResult):
        return
    ctx = click.get_current_context()
    recorded = loaded.intervals
    asked = {
        "--ci-method": (ci_method, recorded.method, ci_method == recorded.method),
        "--confidence": (
            confidence, recorded.confidence, abs(confidence - recorded.confidence) < 1e-9
        ),
        # replicates matter only to a bootstrap aggregate
        "--n-boot": (
            n_boot, recorded.n_boot, not recorded.bootstrapped or n_boot == recorded.n_boot
        ),
    }
    names = {"--ci-method": "ci_method", "--confidence": "confidence", "--n-boot": "n_boot"}
    for option, (value, kept, same) in asked.items():
        source = ctx.get_parameter_source(names[option])
        if source not in (None, ParameterSource.DEFAULT) and not same:
            raise click.UsageError(
                f"{option} {value} cannot apply to an aggregate folder: its intervals were "
                f"computed before aggregation ({recorded.describe()}) and it keeps no "
                "per-person counts to recompute them. Run 'lfr-eval report' on the full "
                f"results folder (result.json) for {option} {value}, or leave the option out"
                + (f" (this aggregate's: {kept})" if kept is not None else "")
            )


@click.command("claim")
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--one-in",
    "one_in",
    type=click.FloatRange(1, min_open=True),
    default=None,
    help="Claimed FPIR as '1 in X' (e.g. 6000).",
)
@click.option(
    "--fpir",
    "bound",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Claimed FPIR upper bound as a rate (e.g. 0.000167).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(-1, 1),
    required=True,
    help="Similarity threshold (cosine) the claim is made at.",
)
@click.option(
    "--watchlist-size",
    type=click.IntRange(min=1),
    default=None,
    help="Watchlist size N the claim is about (default: the size evaluated).",
)
@click.option(
    "--scale-watchlist",
    is_flag=True,
    help="Allow a claim about another N: the results' filler-gallery scaling at that N (the "
    "report's scaling table) when it holds the N, else FPIR(N) = 1 - (1 - FMR)^N with a pooled "
    "rate (the verdict says which).",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.5, 1, max_open=True),
    default=0.95,
    show_default=True,
    help="One-sided confidence of the check.",
)
@click.option(
    "--by",
    "by",
    default=None,
    help="Also check the claim within each group of this attribute (e.g. ethnicity).",
)
@click.option("--source", "claim_source", default="", help="Where the claim comes from (text).")
def claim_command(
    results: str,
    one_in: float | None,
    bound: float | None,
    threshold: float,
    watchlist_size: int | None,
    scale_watchlist: bool,
    confidence: float,
    by: str | None,
    claim_source: str,
) -> None:
    """Check a published FPIR claim (e.g. "1 in 6,000 at N = 10,000, threshold 0.6") against
    a results folder, with a one-sided bound clustered by person. Exit code 0 when the data
    support it, 1 when they do not (with --by: when it fails overall or in any group).
    """
    from lfr_eval.claims import (
        SCALE_OPTION_CLI,
        Claim,
        check_fpir_claim,
        check_fpir_claim_by_group,
    )
    from lfr_eval.report import AggregateResult

    claimed = _claimed_rate(one_in, bound)
    result = open_results(results)
    claim = Claim(
        bound=claimed,
        watchlist_size=watchlist_size,
        threshold=threshold,
        confidence=confidence,
        source=claim_source,
    )
    click.echo(f"claim: {claim.describe()}" + (f" ({claim_source})" if claim_source else ""))
    if isinstance(result, AggregateResult):
        sys.exit(0 if _claim_on_aggregate(claim, result, by, scale_watchlist) else 1)
    # another N: the results' filler-gallery scaling (the report's scaling table) when it has
    # the claimed N, read through the same function as the report and the explorer
    table = result.scaling if scale_watchlist else None
    if by is None:
        check = check_fpir_claim(
            claim,
            result.searches,
            scaled_fpir=_claim_figure(table, claim, result.searches.watchlist_size),
            scale_watchlist=scale_watchlist,
            scale_option=SCALE_OPTION_CLI,
        )
        click.echo(check.summary())
        supported = check.supported
    else:
        if by not in result.searches.non_mated_groups.columns:
            raise click.BadParameter(
                f"no attribute {by!r}; the results have "
                f"{list(result.searches.non_mated_groups.columns)}",
                param_hint="--by",
            )
        checks = check_fpir_claim_by_group(
            claim,
            result.searches,
            by,
            scaling_table=table,
            scale_watchlist=scale_watchlist,
            scale_option=SCALE_OPTION_CLI,
        )
        click.echo(checks.summary())
        # the claim stands only if it holds overall and in every group reported
        supported = checks.supported
    sys.exit(0 if supported else 1)


def _claim_on_aggregate(
    claim: Claim, agg: AggregateResult, by: str | None, scale_watchlist: bool
) -> bool:
    """``claim`` on an aggregate folder (its figures alone); prints the verdict, returns it."""
    from lfr_eval.claims import (
        SCALE_OPTION_CLI,
        aggregate_claim_threshold,
        check_fpir_claim_on_aggregate,
    )
    from lfr_eval.wording import plural

    if by is not None and by not in agg.attributes:
        raise click.BadParameter(
            f"no attribute {by!r}; the aggregate has {list(agg.attributes)}", param_hint="--by"
        )
    at = aggregate_claim_threshold(claim, agg.thresholds)
    if claim.threshold is not None and not math.isclose(at, claim.threshold, abs_tol=1e-9):
        click.echo(
            f"checked at {at:g}, the aggregate's grid threshold just below {claim.threshold:g}: "
            "it holds counts at its grid only, and a lower threshold can only add false "
            "positives"
        )
    check = check_fpir_claim_on_aggregate(
        claim, agg, attribute=by, scale_watchlist=scale_watchlist, scale_option=SCALE_OPTION_CLI
    )
    click.echo(check.summary())
    withheld = [w.describe() for w in agg.withheld if by is not None and w.attribute == by]
    if withheld:
        click.echo(
            f"not checked: {', '.join(withheld)} (withheld from the aggregate: fewer than "
            f"{plural(agg.min_subjects, 'person')})"
        )
    return check.supported


def _claimed_rate(one_in: float | None, bound: float | None) -> float:
    """The claimed FPIR from ``--one-in`` or ``--fpir``, exactly one of which is given."""
    if one_in is not None and bound is None:
        return 1.0 / float(one_in)
    if bound is not None and one_in is None:
        return bound
    raise click.UsageError("give the claimed rate once: --one-in X or --fpir RATE")


def _claim_figure(
    table: pd.DataFrame | None, claim: Claim, measured_size: int
) -> ScaledFpir | None:
    """The scaling table's figure at the claim's N and threshold, or None (see claim_command)."""
    from lfr_eval.claims import claim_scaled_fpir

    size = claim.watchlist_size
    if table is None or size is None or size == measured_size:
        return None
    return claim_scaled_fpir(table, claim, "all", "all")


def register(cli: click.Group) -> None:
    """Add ``evaluate``, ``report`` and ``claim`` to the top-level group."""
    cli.add_command(evaluate_command)
    cli.add_command(report_command)
    cli.add_command(claim_command)
