"""Running ``lfr-eval`` in-process from a test, as a script would."""

from __future__ import annotations

import pytest

from lfr_eval.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run the CLI with ``argv`` (each turned into text), returning (exit code, stdout, stderr).

    Output captured before the call is discarded, so the two texts are this command's alone.
    """
    capsys.readouterr()
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
