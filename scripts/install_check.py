"""Exit 0 when this checkout is installed with everything the given extras need, else 1.

``scripts/install.sh`` runs this first so that ``scripts/run_app.sh`` starts the app at once when
nothing is missing, instead of re-running ``pip install -e .`` (about 30 s) on every start.

Usage: ``python scripts/install_check.py [--also REQ]... [EXTRA]...``

What counts as installed, read from ``pyproject.toml`` (not from the installed metadata, which is
stale once someone adds a dependency):

- the ``lfr-workbench`` distribution, installed editable from this folder, at the version
  ``lfr_eval/__init__.py`` declares;
- every requirement of the core and of each extra (self-references such as
  ``lfr-workbench[app]`` followed), with its version specifier and environment markers;
- every ``--also`` requirement (anything installed outside pyproject's extras).

Only the standard library and ``packaging`` are used; when ``packaging`` or ``tomllib`` is
missing the answer is "not installed", so pip runs and nothing is skipped by mistake.
The missing items are printed on stderr, one a line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "lfr-workbench"


def _version_in_source() -> str | None:
    match = re.search(
        r'^__version__\s*=\s*"([^"]+)"',
        (ROOT / "lfr_eval" / "__init__.py").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    return match.group(1) if match else None


def _project_itself() -> list[str]:
    """Why the installed ``lfr-workbench`` is not this checkout (empty when it is)."""
    try:
        dist = metadata.distribution(PROJECT)
    except metadata.PackageNotFoundError:
        return [f"{PROJECT} (not installed)"]
    problems = []
    wanted = _version_in_source()
    if dist.version != wanted:
        problems.append(f"{PROJECT} {dist.version} installed, {wanted} in the source")
    direct_url = dist.read_text("direct_url.json")
    try:
        info = json.loads(direct_url) if direct_url else {}
    except json.JSONDecodeError:
        info = {}
    url = str(info.get("url", ""))
    editable = bool(info.get("dir_info", {}).get("editable"))
    if not editable or Path(url.removeprefix("file://")).resolve() != ROOT:
        problems.append(f"{PROJECT} not installed editable from {ROOT} (found {url or 'a copy'})")
    return problems


def _requirements(project: dict, extras: list[str], also: list[str]) -> list:
    """Core + ``extras`` (self-references followed) + ``also``, and one level of other
    packages' extras (``dask[distributed]``), as ``packaging`` requirements."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    optional = project.get("optional-dependencies", {})
    requirements = [Requirement(r) for r in project["dependencies"]]
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == PROJECT:
                pending.extend(req.extras)
            else:
                requirements.append(req)
    requirements += [Requirement(r) for r in also]
    for req in list(requirements):
        for extra in req.extras:
            try:
                declared = metadata.requires(req.name) or []
            except metadata.PackageNotFoundError:
                break
            for text in declared:
                sub = Requirement(text)
                if sub.marker is not None and sub.marker.evaluate({"extra": extra}):
                    sub.marker = None  # evaluated here, with the extra it belongs to
                    requirements.append(sub)
    return requirements


def missing(extras: list[str], also: list[str]) -> list[str]:
    """Requirements of the core, of ``extras`` and ``also`` that are not satisfied."""
    try:
        import packaging.requirements  # noqa: F401 (only to know it is there)
        import tomllib
    except ImportError as exc:
        return [f"cannot check ({exc.name} missing)"]

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"unknown extra(s): {', '.join(unknown)}; known: {', '.join(optional)}")

    problems = _project_itself()
    for req in _requirements(project, extras, also):
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{req} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{req} ({installed} installed)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extras", nargs="*", help="extras of pyproject.toml (app, test, ...)")
    parser.add_argument("--also", action="append", default=[], help="another requirement")
    args = parser.parse_args(argv)
    problems = missing(args.extras, args.also)
    for line in problems:
        print(f"missing: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
