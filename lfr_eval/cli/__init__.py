"""The ``lfr-eval`` command line.

Exit codes a script can rely on are :data:`EXIT_CODES` (shown by ``lfr-eval --help`` and listed
in the README; ``tests/test_cli_messages.py`` checks all three agree with :mod:`lfr_eval.errors`).

Each group of commands lives in its own module with a ``register(cli)`` function; :data:`COMMANDS`
names the module and one-line help of every command, so ``lfr-eval --help`` lists them without
importing numpy, pandas or OpenCV, and ``lfr-eval COMMAND`` imports only that command's module.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from lfr_eval import __version__
from lfr_eval.errors import LfrError

#: Every exit code the command line returns, and what it means.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "the command ran but its check failed (a claim the data do not support)"),
    (2, "usage error (an option or argument) or other input error"),
    (3, "unreadable image"),
    (4, "no face, or several faces where one was needed"),
    (5, "model file missing or corrupt"),
    (6, "requested runtime or GPU not available (never a silent CPU fallback)"),
    (7, "watchlist refused (missing, altered, another engine)"),
    (8, "malformed manifest"),
    (9, "deployment config malformed, altered or not matching"),
    (10, "alert store refused (live)"),
    (11, "results folder missing, altered or of another layout version"),
    (12, "embedding cache unusable"),
    (13, "protocol cannot be built from the data"),
    (14, "malformed metric input or claim"),
    (15, "signature missing or invalid, or a signing key untrusted, revoked or unusable"),
    (16, "a path that cannot be read or written (file-system error)"),
    (17, "data-at-rest key missing, unreadable or kept beside the data"),
    (
        18,
        "refused for safety (a path outside the allowed folders, an exposed server without "
        "users, an unknown user or a wrong password)",
    ),
    (19, "Dask cluster unreachable, or its workers keep dying on a task"),
    (130, "interrupted (Ctrl+C)"),
)


def exit_codes_text() -> str:
    """The exit codes as aligned lines (for ``--help`` and the README)."""
    return "\n".join(f"{code:>3}  {meaning}" for code, meaning in EXIT_CODES)


#: Command name -> (module that registers it, one-line help shown by ``lfr-eval --help``).
#: A new command module adds its commands here; ``tests/test_imports.py`` checks that every
#: module's commands are listed and every listed command exists.
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("_info", "Show the engine, model files and hashes, runtime, GPU."),
    "enrol": ("_watchlist", "Enrol faces onto a watchlist from images or a manifest."),
    "watchlist": ("_watchlist", "Inspect and manage a watchlist (list, export, audit...)."),
    "identify": ("_watchlist", "Search every face in IMAGES against the watchlist (1:N)."),
    "embed": ("_embed", "Embed every image of SOURCE into an embeddings file."),
    "evaluate": ("_evaluate", "Evaluate a face engine on SOURCE: FPIR/FNIR by group."),
    "report": ("_evaluate", "Write an HTML report (and CSV tables) for a results folder."),
    "claim": ("_evaluate", "Check a published FPIR claim against a results folder."),
    "config": ("_config", "Export and verify deployment configurations."),
    "users": ("_users", "Users of the web app and their roles."),
    "app": ("_app", "Start the LFR Workbench web app (Streamlit)."),
    "models": ("_models", "Install and list face model packs, with hashes and licences."),
    "purge": ("_datakey", "Delete everything past its retention period (for cron)."),
    # _keys (signing keys) loads _datakey too: both add commands to the one ``keys`` group
    "keys": ("_keys", "Signing keys and the data-at-rest key."),
}
#: Exit code for an OSError (unreadable or unwritable path) that reaches the command line
#: (every other code comes from an :class:`LfrError` subclass's ``exit_code``).
EXIT_OS_ERROR = 16


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is run (or asked for)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy
        self._loaded: set[str] = set()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            # also when the name exists: another module may have made the group (``keys``)
            # without this command's own subcommands
            self.load(self.lazy[cmd_name][0])
        return self.commands.get(cmd_name)

    def load(self, module: str) -> None:
        """Import ``lfr_eval.cli.<module>`` and let it register its commands (once)."""
        if module in self._loaded:
            return
        # no try/except: a broken command module must fail loudly, not drop its commands
        importlib.import_module(f"{__name__}.{module}").register(self)
        self._loaded.add(module)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.lazy:
                text = self.lazy[name][1]
            else:
                command = self.commands[name]
                if command.hidden:
                    continue
                text = command.get_short_help_str(limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    # \b keeps click from re-wrapping the table
    epilog="\b\nExit codes:\n" + exit_codes_text(),
)
@click.version_option(__version__, prog_name="lfr-eval")
@click.option(
    "--actor",
    default=None,
    metavar="NAME",
    help="Who is acting, recorded in audit entries and alert decisions "
    "(default: $LFR_EVAL_ACTOR, else the OS user).",
)
def cli(actor: str | None) -> None:
    """LFR Workbench: evaluate and demonstrate live facial recognition.

    Run 'lfr-eval COMMAND --help' for each command's options.
    """
    if actor is not None and actor.strip():
        import os

        from lfr_eval.atrest import ENV_ACTOR

        os.environ[ENV_ACTOR] = actor.strip()


def load_all() -> None:
    """Import every command module (documentation, tests, shell completion)."""
    for module in dict.fromkeys(module for module, _ in COMMANDS.values()):
        cli.load(module)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning :class:`LfrError` into a message and exit code."""
    try:
        cli.main(args=argv, prog_name="lfr-eval", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C into Abort; a scoring run's says which finished blocks it kept
        cause = exc.__cause__
        said = str(cause) if isinstance(cause, KeyboardInterrupt) else ""
        click.echo(f"interrupted: {said}" if said else "aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LfrError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # A path the command cannot read or write (permissions, full disk, read-only file
        # system): the environment's problem, said in one line, never a traceback.
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(EXIT_OS_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
