"""End to end on real faces: a small LFW evaluation with the dlib engine (skips without LFW).

About 300 images (~30–60 s of embedding on 2 cores); the embedding cache is shared through the
session's temporary folder, so the CLI tests on the same images reuse it.
"""

from __future__ import annotations

import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from lfr_eval.claims import Claim, check_fpir_claim
from lfr_eval.datasets import UNKNOWN, EmbeddingCache, Manifest, ManifestWarning, load_lfw
from lfr_eval.evaluation import evaluate
from lfr_eval.protocols import OpenSetParams
from lfr_eval.report import AggregateResult, write_report
from lfr_eval.results import load_result

pytestmark = pytest.mark.lfw

#: Protocol of the test evaluation: a fixed seed and caps keep it small and reproducible.
TEST_PARAMS = OpenSetParams(seed=7, enrolled_fraction=0.6, max_mated_per_subject=3)


def small_lfw(lfw_dir: Path, seed: int = 0) -> Manifest:
    """~300 LFW images: 70 people with 2–6 images (40 with a known ethnicity, most of the
    LFW's African-labelled ones among them) and 80 one-image people (half labelled)."""
    manifest = load_lfw(lfw_dir)
    frame = manifest.frame
    counts = frame.groupby("subject_id").size()
    ethnicity = frame.groupby("subject_id")["ethnicity"].first()
    rng = np.random.default_rng(seed)

    def pick(pool: pd.Index, n: int) -> list[str]:
        pool = np.sort(pool.to_numpy(dtype=str))
        return list(rng.choice(pool, size=min(n, len(pool)), replace=False))

    several = counts[(counts >= 2) & (counts <= 6)].index
    single = counts[counts == 1].index
    known = ethnicity[ethnicity != UNKNOWN].index
    african = ethnicity[ethnicity == "african"].index
    chosen = (
        pick(several.intersection(african), 12)
        + pick(several.intersection(known).difference(african), 28)
        + pick(several.difference(known), 30)
        + pick(single.intersection(known), 40)
        + pick(single.difference(known), 40)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        return manifest.select(frame["subject_id"].isin(chosen).to_numpy(), name="lfw-small")


def shared_cache_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for every LFW test of the session."""
    return tmp_path_factory.getbasetemp() / "lfw_embeddings.sqlite"


@pytest.fixture(scope="module")
def lfw_small(lfw_dir: Path) -> Manifest:
    return small_lfw(lfw_dir)


@pytest.fixture(scope="module")
def lfw_result(lfw_small: Manifest, dlib_engine, tmp_path_factory: pytest.TempPathFactory):
    with EmbeddingCache(shared_cache_path(tmp_path_factory)) as cache:
        return evaluate(
            lfw_small, dlib_engine, TEST_PARAMS, cache=cache, face_choice="central", n_resamples=20
        )


def test_evaluation_produces_sensible_dlib_figures(lfw_result, lfw_small: Manifest) -> None:
    result = lfw_result
    s = result.searches
    counts = result.protocol.counts
    assert result.watchlist_size == counts["enrolled_subjects"] - result.protocol.failed_to_enrol
    assert s.n_mated > 60 and s.n_non_mated > 100
    # dlib separates LFW faces well: mates score far above the best stranger on average
    assert np.median(s.mate_scores) > np.median(s.non_mated_best) + 0.05
    assert np.mean(s.mate_ranks == 1) > 0.9
    # mates and strangers never share a subject (the split is by subject)
    assert not set(s.mated_subjects) & set(s.non_mated_subjects)
    assert result.dataset.sha256 == lfw_small.dataset_hash()
    assert result.engine.recognizer.name == "dlib_face_recognition_resnet_model_v1.dat"
    assert result.runtime.name == "onnxruntime" and not result.runtime.gpu_active
    assert {"numpy", "dlib-bin"} <= set(result.software)
    acq = result.acquisition
    total = acq[(acq["attribute"] == "all")]
    assert set(total["role"]) == {"enrolment", "mated", "non_mated"}
    assert (total["failed"] <= total["images"]).all()


def test_per_sex_and_ethnicity_tables_with_intervals(lfw_result) -> None:
    thresholds = [0.9, 0.93, 0.95]
    for attribute in ("sex", "ethnicity"):
        frame = lfw_result.identification_frame(
            thresholds, [attribute], ci_method="subject-bootstrap", n_boot=300
        )
        table = frame.by_group
        groups = set(table.index.get_level_values(attribute))
        assert UNKNOWN in groups or attribute == "sex"
        assert len(groups) >= 2
        shown = table[~table["insufficient_data"]]
        assert (
            (shown["ci_low"] <= shown["rate"] + 1e-12) & (shown["rate"] <= shown["ci_high"] + 1e-12)
        ).all()
        assert (shown["ci_high"] > shown["ci_low"]).any()
        fpir = frame.overall.xs("fpir", level="metric")["rate"]
        assert fpir.is_monotonic_decreasing  # a higher threshold never adds false positives
    # small groups are shown and flagged, not dropped
    eth = lfw_result.identification_frame([0.93], ["ethnicity"]).by_group
    assert eth["small_group"].any()


def test_second_run_recomputes_nothing(
    lfw_result, lfw_small: Manifest, dlib_engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with EmbeddingCache(shared_cache_path(tmp_path_factory)) as cache:
        again = evaluate(
            lfw_small, dlib_engine, TEST_PARAMS, cache=cache, face_choice="central", n_resamples=0
        )
    assert again.timings["images_embedded"] == 0
    np.testing.assert_array_equal(again.searches.mate_scores, lfw_result.searches.mate_scores)
    np.testing.assert_array_equal(again.searches.non_mated_topk, lfw_result.searches.non_mated_topk)


def test_temporary_scoring_folder_goes_after_success_and_stays_after_ctrl_c(
    lfw_small: Manifest,
    dlib_engine,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --scoring-work-dir, counts too large for the memory setting are memory-mapped
    from <temp>/lfr-scoring/<key> (GBs at NPL scale): a finished evaluation deletes that folder,
    an interrupted one keeps it and the same run resumes from it."""
    import tempfile

    from lfr_eval import evaluation
    from lfr_eval.protocols import ScoringScale

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    small = ScoringScale(memory_bytes=400_000)  # the counts exceed a quarter of it

    def run(scale: ScoringScale = small):
        with EmbeddingCache(shared_cache_path(tmp_path_factory)) as cache:
            return evaluate(
                lfw_small,
                dlib_engine,
                TEST_PARAMS,
                cache=cache,
                face_choice="central",
                n_resamples=0,
                scoring_scale=scale,
            )

    real = evaluation._scaling_table

    def interrupted(*args, **kwargs):
        assert list((tmp_path / "lfr-scoring").glob("*/counts.npy"))  # scored on disk
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "_scaling_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run()
    kept = list((tmp_path / "lfr-scoring").glob("*/block_*.npz"))
    assert kept  # kept for a re-run
    monkeypatch.setattr(evaluation, "_scaling_table", real)
    again = run()
    assert not list((tmp_path / "lfr-scoring").iterdir())  # done: nothing left behind
    # the resumed run (every block read back) equals one computed afresh with the same blocks
    fresh = run()
    assert not list((tmp_path / "lfr-scoring").iterdir())
    np.testing.assert_array_equal(again.searches.non_mated_topk, fresh.searches.non_mated_topk)
    pd.testing.assert_frame_equal(again.scaling, fresh.scaling)


def test_report_opens_and_claim_check(lfw_result, tmp_path: Path, artifacts_dir: Path) -> None:
    lfw_result.save(tmp_path / "res")
    loaded = load_result(tmp_path / "res")
    assert loaded.result_hash == lfw_result.result_hash
    aggregate = AggregateResult.from_result(loaded, n_boot=200)
    path = write_report(aggregate, artifacts_dir / "lfw_small_report", thresholds=[0.93])
    page = path.read_text(encoding="utf-8")
    parser = HTMLParser()
    parser.feed(page)  # raises on nothing, but must consume the whole page
    parser.close()
    # plotly.js is written once beside the page (it alone is 4.8 MB), not inlined
    assert page.count(get_plotlyjs()[:200]) == 0
    assert page.count('<script src="plotly.min.js"></script>') == 1
    assert (path.parent / "plotly.min.js").read_text(encoding="utf-8") == get_plotlyjs()
    assert path.stat().st_size < 2 * 2**20
    assert page.count('class="plotly-graph-div"') >= 15
    assert "ethnicity = african" in page and "sex = female" in page
    summary = pd.read_csv(path.parent / "summary.csv")
    assert {"sex", "ethnicity"} <= set(summary["attribute"])

    claim = Claim.one_in(50, threshold=0.93)
    check = check_fpir_claim(claim, loaded.searches)
    best = loaded.searches.non_mated_best
    assert check.false_positives == int((best >= 0.93).sum())
    assert check.non_mated_searches == loaded.searches.n_non_mated
    assert check.supported == (check.upper_bound <= 1 / 50)


def test_npl_design_scales_to_other_watchlist_sizes(
    lfw_small: Manifest, dlib_engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from lfr_eval.protocols import NplParams

    with EmbeddingCache(shared_cache_path(tmp_path_factory)) as cache:
        result = evaluate(
            lfw_small,
            dlib_engine,
            NplParams(seed=3, volunteer_fraction=0.5),
            cache=cache,
            face_choice="central",
            watchlist_sizes=[10, 1000],
            n_resamples=50,
        )
    assert result.protocol.kind == "npl"
    fillers = result.protocol.counts["fillers"]
    table = result.scaling
    overall = table[(table["group"] == "all") & np.isclose(table["threshold"], 0.9)]
    analytic = overall[overall["method"] == "analytic"].set_index("watchlist_size")["fpir"]
    resampled = overall[overall["method"] == "resampled"].set_index("watchlist_size")["fpir"]
    assert analytic[10] < analytic[1000]  # a bigger watchlist raises more false alerts
    assert 1000 not in resampled.index or fillers >= 1000  # no resampling beyond the fillers
    assert abs(resampled[10] - analytic[10]) < 0.1
