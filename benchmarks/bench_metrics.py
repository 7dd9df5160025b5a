"""Benchmark of the metric core: scoring, 1,000-threshold rates, per-group bootstrap intervals.

Target (issue 3): 100,000 non-mated and 10,000 mated searches against a 10,000-subject
watchlist, FPIR/FNIR over 1,000 thresholds, per-group intervals from 1,000 subject-bootstrap
replicates: under 10 s on 2 CPU cores. Embeddings are synthetic (a random direction per person,
images scattered around it), so the benchmark needs no data set; the sizes and score
distributions are what matter for speed.

Usage::

    python benchmarks/bench_metrics.py                 # full size, numpy on the CPU
    python benchmarks/bench_metrics.py --scale 0.05    # quick check
    python benchmarks/bench_metrics.py --backend torch --device cuda
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from lfr_eval.metrics import IdentificationFrame, fnir, fpir, score_searches


def make_embeddings(scale: float, dim: int, seed: int = 0):
    """Watchlist of N subjects (1 template each), mated and non-mated probes (10 per person)."""
    rng = np.random.default_rng(seed)
    n_list = max(10, int(10_000 * scale))
    n_nm_people = max(10, int(10_000 * scale))
    n_m_people = max(2, int(1_000 * scale))
    per = 10

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, dim), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    listed = unit(n_list)
    gallery = listed + 0.8 * unit(n_list)
    mated_people = rng.choice(n_list, n_m_people, replace=False)
    nm_people = unit(n_nm_people)
    m_centres = np.repeat(listed[mated_people], per, axis=0)
    nm_centres = np.repeat(nm_people, per, axis=0)
    probes = np.concatenate(
        [m_centres + 0.8 * unit(len(m_centres)), nm_centres + 0.8 * unit(len(nm_centres))]
    )
    probe_subjects = np.concatenate(
        [
            np.repeat(mated_people, per).astype(str),
            np.repeat(np.arange(n_nm_people) + n_list, per).astype(str),
        ]
    )
    people = np.concatenate(
        [np.repeat(mated_people, per), np.repeat(np.arange(n_nm_people) + n_list, per)]
    )
    ethnicity = np.array(["asian", "black", "other", "white"])[people % 4]
    sex = np.array(["female", "male"])[(people // 4) % 2]
    groups = pd.DataFrame({"ethnicity": ethnicity, "sex": sex})
    return probes, probe_subjects, gallery, np.arange(n_list).astype(str), groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 100k/10k/10k")
    parser.add_argument(
        "--dim", type=int, default=128, help="embedding size (dlib 128, ArcFace 512)"
    )
    parser.add_argument("--thresholds", type=int, default=1000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--compare-numpy",
        action="store_true",
        help="also score with numpy and report how far the chosen backend's numbers differ",
    )
    args = parser.parse_args()

    probes, p_subj, gallery, g_subj, groups = make_embeddings(args.scale, args.dim)
    print(
        f"probes {len(probes):,} ({args.dim}-d), watchlist {len(gallery):,}, "
        f"thresholds {args.thresholds}, bootstrap {args.n_boot}, cpus {os.cpu_count()}"
    )
    if args.device.startswith("cuda"):  # warm up CUDA so its start-up is not timed
        score_searches(
            probes[:10], p_subj[:10], gallery, g_subj, backend=args.backend, device=args.device
        )

    t0 = time.perf_counter()
    res = score_searches(
        probes,
        p_subj,
        gallery,
        g_subj,
        k=10,
        probe_groups=groups,
        backend=args.backend,
        device=args.device,
    )
    t1 = time.perf_counter()
    ss = res.searches
    thresholds = np.linspace(0.0, 1.0, args.thresholds)
    rates = fpir(ss, thresholds), fnir(ss, thresholds)
    t2 = time.perf_counter()
    frame = IdentificationFrame(
        ss, thresholds, ["ethnicity"], ci_method="subject-bootstrap", n_boot=args.n_boot
    )
    t3 = time.perf_counter()
    inter = IdentificationFrame(ss, thresholds, ["ethnicity", "sex"])
    t4 = time.perf_counter()

    print(
        f"searches: {ss.n_non_mated:,} non-mated, {ss.n_mated:,} mated; "
        f"runtime {res.runtime.describe()}"
    )
    print(f"score + summarise            {t1 - t0:7.2f} s")
    print(f"FPIR+FNIR, {args.thresholds} thresholds   {t2 - t1:7.3f} s")
    print(f"group frame, subject bootstrap {t3 - t2:7.2f} s  ({len(frame.by_group):,} rows)")
    print(f"intersections, exact CIs     {t4 - t3:7.2f} s  ({len(inter.by_group):,} rows)")
    print(f"metrics total (excl. scoring) {t4 - t1:7.2f} s; all {t4 - t0:7.2f} s")
    if args.compare_numpy:
        t5 = time.perf_counter()
        ref = score_searches(probes, p_subj, gallery, g_subj, k=10).searches
        t6 = time.perf_counter()
        d_mate = np.abs(ref.mate_scores - ss.mate_scores).max()
        d_top = np.abs(ref.non_mated_topk - ss.non_mated_topk).max()
        same_rank = np.mean(ref.mate_ranks == ss.mate_ranks)
        same_fpir = np.array_equal(fpir(ref, thresholds), rates[0])
        print(
            f"numpy scoring {t6 - t5:.2f} s; max |diff| mate {d_mate:.2e}, top-k {d_top:.2e}; "
            f"ranks equal {same_rank:.6f}; FPIR identical at all thresholds: {same_fpir}"
        )
    at = int(np.searchsorted(thresholds, 0.4))
    print(f"sanity: FPIR({thresholds[at]:.3f}) = {rates[0][at]:.4g}, FNIR = {rates[1][at]:.4g}")


if __name__ == "__main__":
    main()
