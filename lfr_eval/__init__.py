"""LFR Workbench: evaluate and demonstrate live facial recognition as police forces deploy it.

The library is organised by concern:

- :mod:`lfr_eval.faces` — face engines (detection, alignment, embedding) with pluggable backends;
- :mod:`lfr_eval.watchlist` — the SQLite watchlist store, enrolment, bundles and audit log;
- :mod:`lfr_eval.search` — exact 1:N cosine search (numpy or faiss);
- :mod:`lfr_eval.metrics` — FPIR/FNIR/TPIR, verification rates, intervals and group frames;
- :mod:`lfr_eval.cli` — the ``lfr-eval`` command.
"""

from __future__ import annotations

__version__ = "0.1.0"

from lfr_eval.errors import LfrError

__all__ = ["LfrError", "__version__"]
