"""``lfr-eval app``: start the Streamlit app on the chosen engine and workspace."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import click

from lfr_eval.cli._common import engine_options, make_engine, workspace_option
from lfr_eval.errors import LfrError
from lfr_eval.wording import plural

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
    allowed_roots: tuple[str, ...] = (),
    users_file: str | None = None,
    live_detector: str = "auto",
) -> dict[str, str]:
    """The environment variables through which the pages learn the engine and workspace.

    The names are the ones :mod:`app._shared` reads (``LFR_ENGINE`` …, ``LFR_WORKSPACE``).
    """
    env = {
        "LFR_ENGINE": engine_backend,
        "LFR_DETECTOR": detector,
        "LFR_RUNTIME": runtime,
        "LFR_DEVICE": device,
        "LFR_LIVE_DETECTOR": live_detector,
    }
    if model_pack:
        env["LFR_MODEL_PACK"] = model_pack
    if workspace:
        env["LFR_WORKSPACE"] = str(Path(workspace).expanduser().resolve())
    if alert_retention_hours is not None:
        env["LFR_ALERT_RETENTION_HOURS"] = str(alert_retention_hours)
    if allowed_roots:
        env["LFR_ALLOWED_ROOTS"] = os.pathsep.join(
            str(Path(r).expanduser().resolve()) for r in allowed_roots
        )
    if users_file:
        env["LFR_USERS_FILE"] = str(Path(users_file).expanduser().resolve())
    return env


#: Largest upload the app accepts, in MB (photos, videos, bundles, configs).
DEFAULT_MAX_UPLOAD_MB = 100


def streamlit_flags(
    address: str, port: int, *, max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
) -> list[str]:
    """The Streamlit options every launcher passes (``.streamlit/config.toml`` repeats them).

    - the address is always explicit, so Streamlit never binds every interface by default;
    - no usage statistics; no developer toolbar (rerun, clear cache, deploy) for viewers;
    - errors in the page show their type only, not tracebacks with server paths;
    - no full garbage collection after each script run (it stalls the live video);
    - ``browser.serverAddress`` is set for a wildcard bind, because otherwise Streamlit asks an
      outside service for the machine's external IP to print an "External URL".
    """
    flags = [
        "--server.address", address,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.maxUploadSize", str(max_upload_mb),
        "--server.enableXsrfProtection", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
        "--client.showErrorDetails", "type",
        # Streamlit's full gc.collect(2) after every script run held the GIL for most of each
        # second on the Live page (its fragments rerun every second), starving recognition.
        "--runner.postScriptGC", "false",
    ]  # fmt: skip
    if address in ("0.0.0.0", "::", ""):  # noqa: S104 - the user asked for every interface
        flags += ["--browser.serverAddress", socket.getfqdn()]
    return flags


def register(cli: click.Group) -> None:
    """Add ``app`` to the top-level group."""

    @cli.command("app")
    @engine_options
    @workspace_option
    @click.option("--port", type=int, default=8501, show_default=True, help="HTTP port.")
    @click.option(
        "--address",
        default="127.0.0.1",
        show_default=True,
        help="Address to listen on. Anything but loopback needs users ('lfr-eval users add'); "
        "the live camera also needs HTTPS anywhere but localhost.",
    )
    @click.option(
        "--allow-root",
        "allowed_roots",
        multiple=True,
        type=click.Path(exists=True, file_okay=False),
        help="A server folder the pages may read datasets and results from (repeatable); the "
        "workspace is always allowed, nothing else by default.",
    )
    @click.option(
        "--max-upload-mb",
        type=click.IntRange(1, 2000),
        default=DEFAULT_MAX_UPLOAD_MB,
        show_default=True,
        help="Largest file the pages accept for upload, in MB.",
    )
    @click.option(
        "--users-file",
        type=click.Path(dir_okay=False),
        default=None,
        envvar="LFR_USERS_FILE",
        help="Users file (default: $LFR_USERS_FILE or users.json in the per-user config dir).",
    )
    @click.option(
        "--alert-retention-hours",
        type=click.IntRange(0, 8760),
        default=None,
        help="Hours alert captures are kept for review before purging (default 24). "
        "Non-matching captures are never stored.",
    )
    @click.option(
        "--live-detector",
        type=click.Choice(["auto", "engine", "blazeface"]),
        default="auto",
        show_default=True,
        help="Detector of the Live page: BlazeFace (installed with 'lfr-eval models install "
        "blazeface') for dlib engines when installed, else the engine's (auto); 'blazeface' "
        "refuses to start without it.",
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
        allowed_roots: tuple[str, ...],
        max_upload_mb: int,
        users_file: str | None,
        alert_retention_hours: int | None,
        live_detector: str,
        check: bool,
    ) -> None:
        """Start the LFR Workbench web app (Streamlit) at http://ADDRESS:PORT.

        The engine is loaded once here first, so a missing model or an unavailable GPU is
        reported before the server starts rather than on the first page. Listening on anything
        but loopback is refused until users are configured (exit code 18).
        """
        from lfr_eval.users import UserStore, require_users_for_address

        store = UserStore(users_file)
        require_users_for_address(address, store)
        if not APP_HOME.is_file():
            raise LfrError(
                f"the app's pages are not installed ({APP_HOME} is missing); run 'lfr-eval app' "
                "from a source checkout installed with 'pip install -e .'"
            )
        engine = make_engine(engine_backend, detector, model_pack, runtime, device, workspace)
        from lfr_eval.live import choose_live_detector

        try:
            live = choose_live_detector(engine, live_detector, workspace=workspace)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        env = app_environment(
            engine_backend=engine_backend,
            detector=detector,
            model_pack=model_pack,
            runtime=runtime,
            device=device,
            workspace=workspace,
            alert_retention_hours=alert_retention_hours,
            allowed_roots=allowed_roots,
            users_file=users_file,
            live_detector=live_detector,
        )
        command = [
            sys.executable, "-m", "streamlit", "run", str(APP_HOME),
            *streamlit_flags(address, port, max_upload_mb=max_upload_mb),
        ]  # fmt: skip
        click.echo(f"engine: {engine.engine_id.key} — {engine.runtime.describe()}")
        click.echo(f"live detector: {live.description}")
        if live.note:
            click.echo(f"note: {live.note}", err=True)
        n_users = len(store.users())
        click.echo(
            f"sign-in: {plural(n_users, 'user')} in {store.path}"
            if n_users
            else "sign-in: none (no users configured; loopback only)"
        )
        click.echo(" ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(command))
        if check:
            return
        click.echo(f"LFR Workbench at http://{address}:{port} (Ctrl+C to stop)")
        # Run from the repository root so Streamlit also reads .streamlit/config.toml there.
        completed = subprocess.run(
            command, env={**os.environ, **env}, cwd=APP_HOME.parents[1], check=False
        )
        if completed.returncode:
            sys.exit(completed.returncode)
