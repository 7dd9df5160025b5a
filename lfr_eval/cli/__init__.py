"""The ``lfr-eval`` command line.

Exit codes a script can rely on:

==  ==========================================================
0   success
1   the command ran but its check failed (e.g. a claim not supported)
2   usage error or other input error (:class:`~lfr_eval.errors.LfrError`)
3   unreadable image          4  no face / several faces
5   model file problem        6  requested runtime (GPU) not available
7   watchlist refused         8  malformed manifest      9  bad deployment config
10  alert store refused (live)
11  results folder missing, altered or of another version (ResultError)
12  embedding cache unusable (CacheError)
13  protocol cannot be built from the data (ProtocolError)
14  malformed metric input or claim (MetricInputError)
==  ==========================================================

Each group of commands lives in its own module and registers itself on :data:`cli`.
"""

from __future__ import annotations

import sys

import click

from lfr_eval import __version__
from lfr_eval.errors import LfrError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lfr-eval")
def cli() -> None:
    """LFR Workbench: evaluate and demonstrate live facial recognition.

    Run 'lfr-eval COMMAND --help' for each command's options.
    """


def _register() -> None:
    # Every command module is imported explicitly: a broken module must fail loudly at start-up
    # rather than quietly drop its commands.
    from lfr_eval.cli import _app, _config, _embed, _evaluate, _info, _watchlist

    for module in (_info, _watchlist, _embed, _evaluate, _config, _app):
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning :class:`LfrError` into a message and exit code."""
    try:
        cli.main(args=argv, prog_name="lfr-eval", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LfrError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
