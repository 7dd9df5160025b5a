"""What sealing the embedding cache costs: writes and reads, sealed against clear rows.

The cache seals each entry (AES-256-GCM, keyed image refs; :mod:`lfr_eval.datasets._cache`).
This script writes and reads ``--entries`` embeddings of ``--dim`` floats through
``EmbeddingCache`` and, in the same run and the same SQLite settings, through the layout the
cache had before (image sha256 and float32 bytes in clear): the raw baseline. Batches are
``COMMIT_EVERY``-sized as ``embed_manifest`` writes them; reads ask for every entry at once, as
an evaluation does. Time is wall time of the best of ``--repeats`` (the machine is shared).

Usage::

    python benchmarks/bench_cache_seal.py --entries 13233 --dim 128     # full LFW, dlib
    python benchmarks/bench_cache_seal.py --entries 200000 --dim 512    # NPL-size filler set

Prints a Markdown row per case (with the machine) and, with ``--out``, writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model

from lfr_eval.datasets._cache import CachedEmbedding, EmbeddingCache
from lfr_eval.datasets._embedding import COMMIT_EVERY

KEY = "bench|recognizer=r@0000|fp32|face=largest"


def entries(n: int, dim: int) -> list[CachedEmbedding]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return [CachedEmbedding(f"{i:064x}", 1, x[i], None, 0.9, 40.0) for i in range(n)]


def sealed_case(folder: Path, items: list[CachedEmbedding]) -> tuple[float, float]:
    path = folder / "sealed" / "embeddings.sqlite"
    with EmbeddingCache(path) as cache:
        t0 = time.perf_counter()
        for i in range(0, len(items), COMMIT_EVERY):
            cache.put_many(items[i : i + COMMIT_EVERY], KEY)
        write = time.perf_counter() - t0
    with EmbeddingCache(path) as cache:
        t0 = time.perf_counter()
        got = cache.get_many([e.image_sha256 for e in items], KEY)
        read = time.perf_counter() - t0
    assert len(got) == len(items)
    return write, read


def clear_case(folder: Path, items: list[CachedEmbedding]) -> tuple[float, float]:
    """The previous layout, same pragmas: the floor sealing is measured against."""
    path = folder / "clear.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA secure_delete = ON")
    db.execute(
        "CREATE TABLE embeddings (image_sha256 TEXT NOT NULL, engine_key TEXT NOT NULL, "
        "n_faces INTEGER NOT NULL, embedding BLOB, failure TEXT, det_score REAL, "
        "face_size_px REAL, created TEXT NOT NULL, PRIMARY KEY (image_sha256, engine_key))"
    )
    t0 = time.perf_counter()
    for i in range(0, len(items), COMMIT_EVERY):
        rows = [
            (e.image_sha256, KEY, 1, e.embedding.tobytes(), None, 0.9, 40.0, "now")  # type: ignore[union-attr]
            for e in items[i : i + COMMIT_EVERY]
        ]
        with db:
            db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?,?,?,?,?,?,?,?)", rows)
    write = time.perf_counter() - t0
    t0 = time.perf_counter()
    wanted = [e.image_sha256 for e in items]
    n = 0
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        marks = ",".join("?" * len(chunk))
        for _sha, blob in db.execute(
            f"SELECT image_sha256, embedding FROM embeddings WHERE engine_key = ? "
            f"AND image_sha256 IN ({marks})",
            (KEY, *chunk),
        ):
            np.frombuffer(blob, dtype="<f4").copy()
            n += 1
    read = time.perf_counter() - t0
    db.close()
    assert n == len(items)
    return write, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=13233)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    items = entries(args.entries, args.dim)
    best: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, case in (("clear", clear_case), ("sealed", sealed_case)):
            with tempfile.TemporaryDirectory() as tmp:
                w, r = case(Path(tmp), items)
            old = best.get(name, [float("inf"), float("inf")])
            best[name] = [min(old[0], w), min(old[1], r)]
    (cw, cr), (sw, sr) = best["clear"], best["sealed"]
    row = {
        "entries": args.entries,
        "dim": args.dim,
        "clear_write_s": round(cw, 3),
        "sealed_write_s": round(sw, 3),
        "write_ratio": round(sw / cw, 2),
        "clear_read_s": round(cr, 3),
        "sealed_read_s": round(sr, 3),
        "read_ratio": round(sr / cr, 2),
        "sealed_read_us_per_entry": round(1e6 * sr / args.entries, 1),
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "load_average_1_5_15": os.getloadavg(),
        },
    }
    print(
        f"| {args.entries:,} × {args.dim} | {cw:.2f} s → {sw:.2f} s ({sw / cw:.2f}×) | "
        f"{cr:.2f} s → {sr:.2f} s ({sr / cr:.2f}×; {row['sealed_read_us_per_entry']} µs each) |"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()
