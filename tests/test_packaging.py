"""What ``pip install`` gives each user, and the installer's "only when something is missing"."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install_check = _load("install_check")


def test_core_dependencies_leave_out_what_extras_bring() -> None:
    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {Requirement(r).name.lower() for r in project["dependencies"]}
    assert not core & {"streamlit", "streamlit-webrtc", "insightface", "faiss-cpu", "scikit-learn"}
    assert not core & {"torch", "dask", "av", "opencv-python"}
    assert "opencv-python-headless" in core
    extras = project["optional-dependencies"]
    assert {"app", "insightface", "gpu", "torch", "distributed", "test"} <= set(extras)
    # no extra brings the GUI OpenCV next to the headless one: insightface only in the one
    # release that does not require opencv-python (every release from 1.0 on does)
    for name, reqs in extras.items():
        names = {Requirement(r).name.lower(): Requirement(r) for r in reqs}
        assert "opencv-python" not in names, name
        if "insightface" in names:
            assert str(names["insightface"].specifier) == "==0.7.3", name
    assert "insightface" in {Requirement(r).name.lower() for r in extras["insightface"]}
    assert project["dynamic"] == ["version"]


def test_install_check_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install_check, "_project_itself", lambda: [])
    assert install_check.missing([], []) == []
    problems = install_check.missing([], ["surely-not-a-package-lfr>=1"])
    assert problems == ["surely-not-a-package-lfr>=1 (not installed)"]
    too_old = install_check.missing([], ["numpy>=999"])
    assert len(too_old) == 1 and "installed)" in too_old[0]
    with pytest.raises(SystemExit, match="unknown extra"):
        install_check.missing(["no-such-extra"], [])


def test_install_check_follows_self_references(monkeypatch: pytest.MonkeyPatch) -> None:
    """``test`` pulls the other extras through ``lfr-workbench[...]``: their packages count."""
    monkeypatch.setattr(install_check, "_project_itself", lambda: [])
    real_version = install_check.metadata.version
    seen: list[str] = []

    def version(name: str) -> str:
        seen.append(name.lower())
        return real_version(name)

    monkeypatch.setattr(install_check.metadata, "version", version)
    install_check.missing(["test"], [])
    assert {"streamlit", "torch", "pytest"} <= set(seen)


def test_install_check_rejects_another_checkout() -> None:
    """The shared environment is installed from another folder than a worktree, or not at all."""
    problems = install_check._project_itself()
    installed_from_here = not problems
    if installed_from_here:
        pytest.skip("this checkout is the one installed")
    assert any("lfr-workbench" in p for p in problems)


@pytest.mark.slow
def test_fresh_venvs_get_what_each_user_needs(tmp_path: Path) -> None:
    """Core without app/InsightFace/faiss and a working ``lfr-eval evaluate``; [app] adds a
    working app; ``pip check`` clean and one OpenCV at every step (needs PyPI, minutes)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_package.py")],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "package checks passed" in proc.stdout
