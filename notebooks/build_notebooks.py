"""Build the notebooks from their percent-format sources with jupytext, outputs stripped.

The sources in ``notebooks/src/*.py`` are plain Python in jupytext's "percent" format (a cell
starts at a ``# %%`` line; ``# %% [markdown]`` cells hold markdown as ``# `` comments; a
``# %% tags=["parameters"]`` cell is the parameter cell), read with :func:`jupytext.read`.
``jupytext --sync`` or Jupyter with jupytext work on them too. Edit the sources, then run::

    python notebooks/build_notebooks.py          # write notebooks/*.ipynb
    python notebooks/build_notebooks.py --check  # exit 1 if an .ipynb is stale or has outputs

The committed notebooks carry no outputs: numbers in them would go stale as the code changes.
Run them (Jupyter, or ``pytest tests/test_notebooks.py``) to see current results.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import jupytext
import nbformat

NOTEBOOKS = Path(__file__).resolve().parent
SOURCES = NOTEBOOKS / "src"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _cell_id(stem: str, index: int) -> str:
    # Stable ids keep rebuilds byte-identical (nbformat would otherwise draw random ones).
    return hashlib.sha256(f"{stem}:{index}".encode()).hexdigest()[:12]


def parse_source(path: Path) -> nbformat.NotebookNode:
    """A notebook (no outputs) from one percent-format source file, read by jupytext."""
    nb = jupytext.read(path, fmt="py:percent")
    # Only what a reader needs stays: the kernel, and each cell's tags (the parameter cell);
    # jupytext's own bookkeeping would make the committed files depend on its version.
    nb.metadata = nbformat.from_dict(
        {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    )
    for index, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags")
        cell.metadata = nbformat.from_dict({"tags": list(tags)} if tags else {})
        cell.id = _cell_id(path.stem, index)
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
