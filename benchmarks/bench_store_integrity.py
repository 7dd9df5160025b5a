"""Cost of the watchlist's integrity check and encryption at rest (issue 11).

Builds a watchlist of N subjects with one 128-d (dlib-sized) or 512-d template each, then times
opening it (quick_check + full decrypt + content-hash recompute + MAC check), a search-index
build (which repeats the check), and one more enrolment (which checks before and after).
The first open in a fresh process decrypts every row; later checks in the same process reuse
authenticated plaintexts (cache keyed by row binding and ciphertext).

    python benchmarks/bench_store_integrity.py --subjects 10000 --dim 512 --out results/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _build(path: Path, n: int, dim: int) -> float:
    import numpy as np

    from lfr_eval.faces import EngineId, ModelFile
    from lfr_eval.watchlist import SubjectInfo, Watchlist
    from lfr_eval.watchlist._store import check_embedding

    engine = EngineId("bench", (ModelFile("recognizer", "r.onnx", "a" * 64),), dim)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    wl = Watchlist(path)
    t0 = time.perf_counter()
    with wl._write() as tx:  # one transaction: building is not what is measured
        for i in range(n):
            wl._insert_subject(tx, SubjectInfo(f"subject-{i:06d}", f"Person Number {i}"))
            wl._insert_template(tx, f"subject-{i:06d}", check_embedding(x[i], engine), engine,
                                image_sha256=f"{i:064x}")
    return time.perf_counter() - t0


def _measure(path: Path, dim: int) -> dict[str, float]:
    import numpy as np

    from lfr_eval.faces import EngineId, ModelFile
    from lfr_eval.watchlist import Watchlist

    engine = EngineId("bench", (ModelFile("recognizer", "r.onnx", "a" * 64),), dim)
    t0 = time.perf_counter()
    wl = Watchlist(path, create=False)
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    wl.search_index(engine, backend="numpy")
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    wl.verify()
    t_verify = time.perf_counter() - t0
    v = np.ones(dim, np.float32) / np.sqrt(dim)
    t0 = time.perf_counter()
    wl.add_template("subject-000000", v, engine)
    t_add = time.perf_counter() - t0
    return {
        "first_open_s": t_open,
        "search_index_s": t_index,
        "verify_again_s": t_verify,
        "add_template_s": t_add,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(_measure(args.measure, args.dim)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("LFR_EVAL_DATA_KEY_FILE", str(Path(tmp) / "keys" / "k.json"))
        path = Path(tmp) / "ws" / "wl.sqlite"
        build_s = _build(path, args.subjects, args.dim)
        # a fresh process, so the first open really decrypts every row
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), "--dim", str(args.dim)],
            check=True, capture_output=True, text=True, env=os.environ,
        ).stdout
        result = {
            "subjects": args.subjects,
            "dim": args.dim,
            "file_mib": path.stat().st_size / 2**20,
            "build_one_transaction_s": build_s,
            **json.loads(out),
            "load_average": os.getloadavg()[0],
        }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
