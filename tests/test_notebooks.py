"""The notebooks: built from their sources without outputs, stop clearly without data, and run
end to end on a CI subset of LFW.

The executed copies are left in ``test-artifacts/notebooks/`` for a person to read. One
workspace (hence one embedding cache) is shared by the three notebooks, so an image is embedded
once per test session.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = [
    "01_reproduce_fpir_claim",
    "02_threshold_tradeoffs",
    "03_demographic_differentials",
]

#: Images per notebook on CI (whole people): small enough for 2 cores, large enough that every
#: role of each protocol has people in it.
CI_SUBSET = os.environ.get("LFR_NB_SUBSET", "400")

#: Seconds one cell may run (the first embeds the subset's images).
CELL_TIMEOUT = 900


def _build_module():
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import build_notebooks
    finally:
        sys.path.remove(str(NOTEBOOKS))
    return build_notebooks


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kernel spec running this interpreter, so the notebooks see the same packages."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "lfr-notebooks"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lfr-eval notebooks (tests)",
        "language": "python",
    }))
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root), previous]))
    yield "lfr-notebooks"
    if previous is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = previous


def _execute(name: str, kernel: str, env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = nbclient.NotebookClient(
            nb, kernel_name=kernel, timeout=CELL_TIMEOUT,
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            elif "data" in output:
                parts.append(output["data"].get("text/plain", ""))
    return "\n".join(parts)


def test_notebooks_are_built_from_their_sources_without_outputs():
    build = _build_module()
    sources = build.targets()
    assert {out.stem for out in sources.values()} == set(NAMES)
    for src, out in sources.items():
        assert out.read_text(encoding="utf-8") == build.render(build.parse_source(src)), (
            f"{out.name} is stale: run python notebooks/build_notebooks.py"
        )
        nb = nbformat.read(out, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), out.name
        # the first code cell is the parameter cell, tagged for papermill-style tools
        assert "parameters" in code[0].metadata.get("tags", []), out.name
        assert "LFR_NB_SUBSET" in code[0].source and "LFR_LFW_DIR" in code[0].source


def test_build_check_mode_reports_a_stale_notebook(tmp_path, monkeypatch, capsys):
    build = _build_module()
    src = tmp_path / "src"
    src.mkdir()
    (src / "01_x.py").write_text("# %% [markdown]\n# # Title\n\n# %%\nx = 1\n")
    monkeypatch.setattr(build, "SOURCES", src)
    monkeypatch.setattr(build, "NOTEBOOKS", tmp_path)
    assert build.main(["--check"]) == 1
    assert "01_x.ipynb" in capsys.readouterr().err
    assert build.main([]) == 0
    assert build.main(["--check"]) == 0
    nb = nbformat.read(tmp_path / "01_x.ipynb", as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]
    assert nb.cells[0].source == "# Title" and nb.cells[1].source == "x = 1"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_stops_early_with_a_clear_message_without_lfw(name, kernel_name, tmp_path):
    missing = tmp_path / "no-lfw-here"
    with pytest.raises(CellExecutionError) as info:
        _execute(name, kernel_name, {
            "LFR_LFW_DIR": str(missing),
            "LFR_NB_DATA": "",
            "LFR_WORKSPACE": str(tmp_path / "ws"),
        })
    message = str(info.value)
    assert f"LFW not found at {missing}" in message
    assert "LFR_LFW_DIR" in message
    assert "ManifestError" in message


@pytest.fixture(scope="session")
def notebook_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workspace for the three notebooks: images are embedded once, then cached."""
    return tmp_path_factory.mktemp("notebook-workspace")


@pytest.mark.lfw
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_an_lfw_subset(name, kernel_name, lfw_dir, notebook_workspace,
                                        artifacts_dir):
    nb = _execute(name, kernel_name, {
        "LFR_LFW_DIR": str(lfw_dir),
        "LFR_NB_DATA": "",
        "LFR_NB_SUBSET": CI_SUBSET,
        "LFR_NB_WORKERS": "2",
        "LFR_WORKSPACE": str(notebook_workspace),
    })
    out = artifacts_dir / "notebooks"
    out.mkdir(exist_ok=True)
    nbformat.write(nb, out / f"{name}.ipynb")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = _text(nb)
    figures = sum(
        "application/vnd.plotly.v1+json" in o.get("data", {})
        for c in nb.cells for o in c.get("outputs", [])
    )
    assert figures >= 1, "no plotly figure was rendered"
    if name.startswith("01"):
        assert "Claim: FPIR <= 1 in 6,000, at N = 10,000" in text
        assert "non-mated searches" in text
    elif name.startswith("02"):
        assert "config_sha256" in text and "evidence.results_sha256" in text
        assert "expect" in text and "false alerts" in text
    else:
        assert "ethnicity" in text and "p permutation (people)" in text
