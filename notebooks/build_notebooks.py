"""Build the notebooks from their percent-format sources, with outputs stripped.

The sources in ``notebooks/src/*.py`` are plain Python (jupytext's "percent" format: a cell
starts at a ``# %%`` line; ``# %% [markdown]`` cells hold markdown as ``# `` comments; a
``# %% tags=["parameters"]`` cell is the parameter cell). Edit the sources, then run::

    python notebooks/build_notebooks.py          # write notebooks/*.ipynb
    python notebooks/build_notebooks.py --check  # exit 1 if an .ipynb is stale or has outputs

The committed notebooks carry no outputs: numbers in them would go stale as the code changes.
Run them (Jupyter, or ``pytest tests/test_notebooks.py``) to see current results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent
SOURCES = NOTEBOOKS / "src"

_CELL = re.compile(r"^# %%(?P<kind> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _cell_id(stem: str, index: int) -> str:
    # Stable ids keep rebuilds byte-identical (nbformat would otherwise draw random ones).
    return hashlib.sha256(f"{stem}:{index}".encode()).hexdigest()[:12]


def parse_source(path: Path) -> nbformat.NotebookNode:
    """A notebook (no outputs) from one percent-format source file."""
    cells: list[tuple[str, list[str], list[str]]] = []
    kind, tags, lines = None, [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _CELL.match(line)
        if match:
            if kind is not None:
                cells.append((kind, tags, lines))
            kind = "markdown" if match["kind"] else "code"
            tags = json.loads(match["tags"]) if match["tags"] else []
            lines = []
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append((kind, tags, lines))
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
    }
    for index, (kind, tags, body) in enumerate(cells):
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body)
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell("\n".join(body))
        cell.id = _cell_id(path.stem, index)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def targets() -> dict[Path, Path]:
    """Each source and the notebook it builds."""
    return {src: NOTEBOOKS / f"{src.stem}.ipynb" for src in sorted(SOURCES.glob("[0-9]*.py"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a notebook differs from its source")
    args = parser.parse_args(argv)
    stale = []
    for src, out in targets().items():
        text = render(parse_source(src))
        if args.check:
            if not out.is_file() or out.read_text(encoding="utf-8") != text:
                stale.append(out.name)
        else:
            out.write_text(text, encoding="utf-8")
            print(f"wrote {out.relative_to(NOTEBOOKS.parent)}")
    if stale:
        print(f"stale notebooks (run python notebooks/build_notebooks.py): {', '.join(stale)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
