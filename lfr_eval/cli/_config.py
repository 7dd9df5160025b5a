"""``lfr-eval config export|verify``: deployment configurations with provenance."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lfr_eval.cli._common import engine_options, make_engine, open_results, workspace_option
from lfr_eval.cli._keys import keys_dir_option
from lfr_eval.wording import plural

if TYPE_CHECKING:
    from lfr_eval.watchlist import Watchlist


def _open_watchlist(path: str | None, workspace: str | None) -> Watchlist:
    from lfr_eval.watchlist import Watchlist

    return Watchlist.open(path, workspace=workspace, create=False)


watchlist_path_option = click.option(
    "--watchlist",
    "watchlist_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Watchlist file (default: the workspace's watchlist.sqlite).",
)


def register(cli: click.Group) -> None:
    """Add the ``config`` group to the top-level group."""

    @cli.group("config")
    def config_group() -> None:
        """Export and verify deployment configurations (threshold, engine, watchlist)."""

    @config_group.command("export")
    @click.option(
        "--threshold",
        type=click.FloatRange(-1, 1),
        required=True,
        help="Face-match threshold (cosine similarity in [-1, 1]).",
    )
    @click.option(
        "--results",
        "results_path",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="Evaluation results behind the threshold (a results or aggregate folder); their "
        "FPIR/TPIR at the threshold are attached as evidence.",
    )
    @click.option(
        "--bundle/--no-bundle",
        default=False,
        show_default=True,
        help="Also export the watchlist bundle (.zip, no photos) beside the config and name it.",
    )
    @click.option(
        "--retention-hours",
        type=click.IntRange(0, 8760),
        default=24,
        show_default=True,
        help="Hours alert captures are kept (non-matching captures are never stored).",
    )
    @click.option("--approved-by", default="", help="Who approved the configuration.")
    @click.option("--notes", default="", help="Free-text notes.")
    @click.option(
        "--out",
        "out_path",
        type=click.Path(dir_okay=False),
        required=True,
        help="Config file to write (JSON).",
    )
    @click.option(
        "--unsigned",
        is_flag=True,
        help="Write the config without a signature (it will verify only with --allow-unsigned).",
    )
    @keys_dir_option
    @watchlist_path_option
    @engine_options
    @workspace_option
    def export_command(
        threshold: float,
        results_path: str | None,
        bundle: bool,
        retention_hours: int,
        approved_by: str,
        notes: str,
        out_path: str,
        unsigned: bool,
        keys_dir: str | None,
        watchlist_path: str | None,
        engine_backend: str,
        detector: str,
        model_pack: str | None,
        runtime: str,
        device: str,
        workspace: str | None,
    ) -> None:
        """Write a deployment config for the engine, watchlist and threshold.

        Without --results the config carries no evaluation evidence (a warning says so). The
        config (and the bundle) are signed with this installation's key ('lfr-eval keys
        generate') unless --unsigned.
        """
        from lfr_eval.deployment import RetentionPolicy, export_config, make_config, sign_config
        from lfr_eval.signing import KeyRing

        # Load the key first: a missing key must stop the export before anything is written.
        key = None if unsigned else KeyRing(keys_dir).signing_key()
        engine = make_engine(engine_backend, detector, model_pack, runtime, device, workspace)
        watchlist = _open_watchlist(watchlist_path, workspace)
        results = open_results(results_path) if results_path else None
        out = Path(out_path)
        bundle_path = None
        if bundle:
            bundle_path = out.with_name(f"{out.stem}.watchlist.zip")
            watchlist.export_bundle(
                bundle_path, include_images=False, overwrite=True, signing_key=key
            )
        config = make_config(
            threshold=threshold,
            engine=engine,
            watchlist=watchlist,
            results=results,
            retention=RetentionPolicy(alert_capture_hours=retention_hours),
            bundle=bundle_path,
            approved_by=approved_by,
            notes=notes,
        )
        if key is not None:
            config = sign_config(config, key)
        export_config(config, out)
        click.echo(f"config: {out} (sha256 {config.sha256})")
        if config.signature is not None:
            click.echo(f"signed by {config.signature.signer!r} (key {config.signature.key_id})")
        else:
            click.echo("warning: the config is NOT signed (--unsigned)", err=True)
        click.echo(
            f"threshold {config.threshold:g}; engine {config.engine.key}; watchlist "
            f"{config.watchlist.id} ({plural(config.watchlist.subject_count, 'subject')}, content "
            f"{config.watchlist.content_sha256[:12]})"
        )
        if bundle_path is not None:
            click.echo(f"bundle: {bundle_path} (keep it beside the config)")
        if config.evidence is None:
            click.echo("warning: no evaluation evidence attached (use --results)", err=True)
        else:
            # the same plain-language figures as the app's Export page (lfr_eval.plain)
            ev = config.evidence
            click.echo(f"evidence {ev.describe()}")
            deployed = config.watchlist.subject_count
            if ev.scaled_fpir is None and deployed != ev.watchlist_size:
                click.echo(
                    f"note: the watchlist holds {plural(deployed, 'subject')} but the evidence "
                    f"was measured at N = {ev.watchlist_size:,} and the results' scaling table "
                    f"holds no FPIR for N = {deployed:,}: FPIR changes with N (lfr-eval "
                    f"evaluate --watchlist-size {deployed})",
                    err=True,
                )

    @config_group.command("verify")
    @click.argument("config_path", type=click.Path(dir_okay=False))
    @click.option(
        "--results",
        "results_path",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="The evaluation results the config's evidence names.",
    )
    @click.option(
        "--allow-unsigned",
        is_flag=True,
        help="Accept a config without a signature (a bad or untrusted signature is still refused).",
    )
    @keys_dir_option
    @watchlist_path_option
    @engine_options
    @workspace_option
    def verify_command(
        config_path: str,
        results_path: str | None,
        allow_unsigned: bool,
        keys_dir: str | None,
        watchlist_path: str | None,
        engine_backend: str,
        detector: str,
        model_pack: str | None,
        runtime: str,
        device: str,
        workspace: str | None,
    ) -> None:
        """Check CONFIG_PATH against the engine, watchlist and results here.

        Exit code 0 when the signature is from a trusted key and every hash matches, 9 (with
        the reason) otherwise. Parts of the config that could not be checked (e.g. evidence
        without --results) are listed.
        """
        from lfr_eval.deployment import check_signature, load_config, verify_config
        from lfr_eval.signing import KeyRing

        config = load_config(config_path)
        signed = check_signature(
            config,
            keyring=KeyRing(keys_dir),
            allow_unsigned=allow_unsigned,
            source=f"deployment config {config_path}",
        )
        engine = make_engine(engine_backend, detector, model_pack, runtime, device, workspace)
        watchlist = _open_watchlist(watchlist_path, workspace)
        results = open_results(results_path) if results_path else None
        verification = verify_config(
            config,
            engine=engine,
            watchlist=watchlist,
            results=results,
            config_dir=Path(config_path).parent,
        )
        click.echo(f"{'ok' if signed.signed else '!!'}  signature: {signed.describe()}")
        for item in verification.checked:
            click.echo(f"ok  {item.field} = {item.value}")
        for part in verification.not_checked:
            click.echo(f"--  {part}: not checked (nothing given to compare with)")
        click.echo(f"config {config_path} verified (sha256 {verification.config_sha256})")
