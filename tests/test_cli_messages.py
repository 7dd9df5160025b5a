"""CLI messages and exit codes: every code listed once, the same in --help and the README."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

import lfr_eval.datasets._manifest as manifest_module
import lfr_eval.errors as errors_module
from lfr_eval.cli import EXIT_CODES, cli
from lfr_eval.errors import MSG_SEVERAL_FACES

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"


def test_every_error_exit_code_is_listed() -> None:
    listed = {code for code, _ in EXIT_CODES}
    assert len(listed) == len(EXIT_CODES)
    # every error class in the package, read from the source so no module has to be imported
    raised = {
        int(code)
        for path in (ROOT / "lfr_eval").rglob("*.py")
        for code in re.findall(r"^\s+exit_code(?:: int)? = (\d+)$", path.read_text(), re.M)
    }
    assert {2, 3, 10, 14} <= raised
    assert raised <= listed, f"exit codes raised but not listed: {sorted(raised - listed)}"


def test_help_and_readme_list_the_same_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    text = README.read_text(encoding="utf-8")
    for code, meaning in EXIT_CODES:
        assert re.search(rf"^\s*{code}\s+{re.escape(meaning)}$", result.output, re.M), code
        assert f"| {code} | {meaning} |" in text, code


def test_messages_name_flags_as_the_cli_spells_them() -> None:
    assert "--largest-face" in MSG_SEVERAL_FACES
    for module in (errors_module, manifest_module):
        for name in dir(module):
            if name.startswith("MSG_"):
                value = getattr(module, name)
                assert not re.search(r"\b[a-z_]+=\.\.\.", value), name  # no API argument names
