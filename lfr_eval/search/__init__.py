"""Exact 1:N cosine search over a watchlist: numpy on the CPU, faiss for a GPU (or on request).

Build a :class:`SearchIndex` from a watchlist's templates (see
:meth:`lfr_eval.watchlist.Watchlist.search_index`) and call :meth:`SearchIndex.search`; the
:class:`SearchResult` holds each probe's top-k distinct subjects and their cosine similarities
in [-1, 1].
"""

from __future__ import annotations

from lfr_eval.search._index import (
    MSG_ENGINE_MISMATCH,
    SearchIndex,
    SearchResult,
    faiss_available,
    faiss_gpu_available,
)

__all__ = [
    "MSG_ENGINE_MISMATCH",
    "SearchIndex",
    "SearchResult",
    "faiss_available",
    "faiss_gpu_available",
]
