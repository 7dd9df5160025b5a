"""``lfr-eval app``: start the Streamlit app on the chosen engine and workspace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from lfr_eval.cli._common import engine_options, make_engine, workspace_option
from lfr_eval.errors import LfrError

#: The app's entry script, in the source tree next to the package (the app is not packaged).
APP_HOME = Path(__file__).resolve().parents[2] / "app" / "Home.py"


def app_environment(
    *,
    engine_backend: str,
    detector: str,
    model_pack: str | None,
    runtime: str,
    device: str,
    workspace: str | None,
    alert_retention_hours: int | None = None,
) -> dict[str, str]:
    """The environment variables through which the pages learn the engine and workspace.

    The names are the ones :mod:`app._shared` reads (``LFR_ENGINE`` …, ``LFR_WORKSPACE``).
    """
    env = {
        "LFR_ENGINE": engine_backend,
        "LFR_DETECTOR": detector,
        "LFR_RUNTIME": runtime,
        "LFR_DEVICE": device,
    }
    if model_pack:
        env["LFR_MODEL_PACK"] = model_pack
    if workspace:
        env["LFR_WORKSPACE"] = str(Path(workspace).expanduser().resolve())
    if alert_retention_hours is not None:
        env["LFR_ALERT_RETENTION_HOURS"] = str(alert_retention_hours)
    return env


def register(cli: click.Group) -> None:
    """Add ``app`` to the top-level group."""

    @cli.command("app")
    @engine_options
    @workspace_option
    @click.option("--port", type=int, default=8501, show_default=True, help="HTTP port.")
    @click.option(
        "--address",
        default="localhost",
        show_default=True,
        help="Address to listen on. The live camera needs HTTPS anywhere but localhost.",
    )
    @click.option(
        "--alert-retention-hours",
        type=click.IntRange(0, 8760),
        default=None,
        help="Hours alert captures are kept for review before purging (default 24). "
        "Non-matching captures are never stored.",
    )
    @click.option(
        "--check",
        is_flag=True,
        help="Load the engine, print the command that would start the app, and exit.",
    )
    def app_command(
        engine_backend: str,
        detector: str,
        model_pack: str | None,
        runtime: str,
        device: str,
        workspace: str | None,
        port: int,
        address: str,
        alert_retention_hours: int | None,
        check: bool,
    ) -> None:
        """Start the LFR Workbench web app (Streamlit) at http://ADDRESS:PORT.

        The engine is loaded once here first, so a missing model or an unavailable GPU is
        reported before the server starts rather than on the first page.
        """
        if not APP_HOME.is_file():
            raise LfrError(
                f"the app's pages are not installed ({APP_HOME} is missing); run 'lfr-eval app' "
                "from a source checkout installed with 'pip install -e .'"
            )
        engine = make_engine(engine_backend, detector, model_pack, runtime, device, workspace)
        env = app_environment(
            engine_backend=engine_backend,
            detector=detector,
            model_pack=model_pack,
            runtime=runtime,
            device=device,
            workspace=workspace,
            alert_retention_hours=alert_retention_hours,
        )
        command = [
            sys.executable, "-m", "streamlit", "run", str(APP_HOME),
            "--server.port", str(port),
            "--server.address", address,
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        click.echo(f"engine: {engine.engine_id.key} — {engine.runtime.describe()}")
        click.echo(" ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(command))
        if check:
            return
        click.echo(f"LFR Workbench at http://{address}:{port} (Ctrl+C to stop)")
        completed = subprocess.run(command, env={**os.environ, **env}, check=False)
        if completed.returncode:
            sys.exit(completed.returncode)
