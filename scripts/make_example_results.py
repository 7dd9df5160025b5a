"""Make the example evaluation the app ships with: LFW, dlib engine, aggregate figures only.

Runs an open-set evaluation on a moderate LFW subset (every person with a known ethnicity label,
topped up with other people to ``--max-images``) and writes an
:class:`~lfr_eval.report.AggregateResult` to ``datasets/examples/lfw_dlib_example/``:
per-group, per-threshold counts with subject-bootstrap intervals, binned score histograms,
watchlist-size scaling and failures to acquire. It writes **no** embeddings, images, image
names, subject ids or individual scores: LFW shows real people. Groups with fewer than
``--min-subjects`` people are withheld (and listed in ``aggregate.json``).

Usage::

    python scripts/make_example_results.py           # ~5,000 images, ~5-10 min on 2 cores
    python scripts/make_example_results.py --max-images 300 --out /tmp/example   # quick check
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "datasets" / "examples" / "lfw_dlib_example"

README = """# Example evaluation: LFW with the dlib engine (aggregate figures only)

Made by `scripts/make_example_results.py` ({created}). Open-set protocol on {n_images:,} LFW
images of {n_subjects:,} people (seed {seed}): watchlist of {watchlist:,} people,
{n_mated:,} mated and {n_non_mated:,} non-mated searches; dlib HOG detector + ResNet (see
`aggregate.json` for model hashes, runtime and software versions).

Files (load them with `lfr_eval.report.AggregateResult.load(folder)`):

- `rates.csv` — FPIR and FNIR per threshold, overall (`attribute = all`) and per group of
  `sex` and `ethnicity`: errors, searches, subjects, rate and {confidence:.0%} {ci_method}
  interval, with the clustered interval's sufficient statistics (`rate_variance`,
  `variance_df`, `effective_people`, and for the one-sided bound monotone in the errors
  `top_people` — errors/searches of the 8 people with the most errors, no ids — and
  `searches_fourth_moment`), and what the group test needs (`errors_squared`,
  `errors_searches`, `errors_squared_per_search`: sums over people; `searches_histogram`:
  how many people had 1, 2, … searches);
- `histograms.csv` — mate scores and best non-mated scores, binned (0.01), per group;
- `scaling.csv` — FPIR predicted for other watchlist sizes;
- `ranks.csv` — rank-1…k identification rates and the CMC, overall and per group;
- `acquisition.csv` — images with no usable face, per role and group;
- `aggregate.json` — provenance and the sha256 of every table.

No embeddings, images, image names, subject ids or individual scores are stored: LFW shows real
people. Groups with fewer than {min_subjects} people are withheld: {withheld}.
Sex labels: Afifi & Abdelhamed (2019); ethnicity labels: USC SAIL (866 people; "mixed" for
people with several labels). Small groups have wide intervals: that is a finding.
"""


def example_manifest(lfw: Path, max_images: int, seed: int):
    """Every person with a known ethnicity label, plus random others up to ``max_images``."""
    from lfr_eval.datasets import UNKNOWN, ManifestWarning, load_lfw

    manifest = load_lfw(lfw)
    frame = manifest.frame
    known = frame["ethnicity"] != UNKNOWN
    keep = known.to_numpy().copy()
    if keep.sum() > max_images:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ManifestWarning)
            return manifest.select(keep).limit_subjects(max_images, seed=seed)
    rest = manifest.select(~keep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        extra = rest.limit_subjects(max_images - int(keep.sum()), seed=seed)
    keep |= frame["subject_id"].isin(set(extra.subject_ids)).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        return manifest.select(keep, name="lfw-example")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lfw", default=None, help="LFW folder (default $LFR_LFW_DIR or ../shared/datasets/lfw)"
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    parser.add_argument("--max-images", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument(
        "--min-subjects", type=int, default=5, help="withhold groups with fewer people than this"
    )
    parser.add_argument(
        "--cache", default=None, help="embedding cache (default: the workspace cache)"
    )
    args = parser.parse_args(argv)

    from lfr_eval.datasets import EmbeddingCache
    from lfr_eval.evaluation import evaluate
    from lfr_eval.faces import load_engine
    from lfr_eval.protocols import OpenSetParams
    from lfr_eval.report import AggregateResult

    lfw = Path(args.lfw or os.environ.get("LFR_LFW_DIR") or REPO.parent / "shared/datasets/lfw")
    if not lfw.is_dir():
        sys.exit(f"LFW not found at {lfw}; pass --lfw")
    manifest = example_manifest(lfw, args.max_images, args.seed)
    print(f"{manifest.n_images:,} images of {manifest.n_subjects:,} people", file=sys.stderr)
    engine = load_engine("dlib", detector="hog")
    params = OpenSetParams(
        seed=args.seed,
        enrolled_fraction=0.5,
        max_mated_per_subject=10,
        max_non_mated_per_subject=10,
    )
    cache = EmbeddingCache(args.cache) if args.cache else EmbeddingCache.in_workspace()
    start = time.perf_counter()
    with cache:
        result = evaluate(
            manifest,
            engine,
            params,
            cache=cache,
            face_choice="central",
            workers=args.workers,
            engine_factory=functools.partial(load_engine, "dlib", detector="hog"),
            progress=True,
        )
    aggregate = AggregateResult.from_result(
        result, n_boot=args.n_boot, min_subjects=args.min_subjects, seed=args.seed
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    aggregate.save(out)
    withheld = ", ".join(f"{w.attribute}={w.group}" for w in aggregate.withheld) or "none"
    (out / "README.md").write_text(
        README.format(
            created=aggregate.created[:10],
            n_images=manifest.n_images,
            n_subjects=manifest.n_subjects,
            seed=args.seed,
            watchlist=result.watchlist_size,
            n_mated=result.searches.n_mated,
            n_non_mated=result.searches.n_non_mated,
            confidence=aggregate.intervals.confidence,
            ci_method=aggregate.intervals.method,
            min_subjects=args.min_subjects,
            withheld=withheld,
        )
    )
    # the example must hold no subject id or image name: check before anyone ships it
    text = " ".join(p.read_text() for p in out.iterdir() if p.is_file())
    leaked = [
        s
        for s in np.unique(manifest.subject_ids)
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(str(s))}(?![A-Za-z0-9_])", text)
    ]
    if leaked:
        raise RuntimeError(f"subject ids found in the example output, e.g. {leaked[:3]}")
    print(
        f"wrote {out} in {time.perf_counter() - start:.0f} s "
        f"(embedding {result.timings['embedding_s']:.0f} s)",
        file=sys.stderr,
    )
    return out


if __name__ == "__main__":
    main()
