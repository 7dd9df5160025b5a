"""EvaluationResult: save, load, verification of hashes, provenance fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfr_eval.faces import EngineId, ModelFile, RuntimeInfo
from lfr_eval.metrics import SearchSet
from lfr_eval.results import (
    RESULT_FILE,
    SEARCHES_FILE,
    DatasetInfo,
    EvaluationResult,
    ProtocolInfo,
    ResultError,
    load_result,
    software_versions,
)


def synthetic_result(
    seed: int = 0, n_mated: int = 300, n_non_mated: int = 900, with_scaling: bool = True
) -> EvaluationResult:
    """A result whose scores look like a face model's: mates high, strangers lower, and one
    group ('b') drawing more false matches."""
    rng = np.random.default_rng(seed)
    m_subj = np.array([f"m{i // 3}" for i in range(n_mated)], dtype=object)
    nm_subj = np.array([f"n{i // 3}" for i in range(n_non_mated)], dtype=object)
    m_groups = pd.DataFrame(
        {
            "sex": np.where(np.arange(n_mated) % 6 < 3, "female", "male"),
            "ethnicity": np.where(np.arange(n_mated) % 9 < 3, "b", "a"),
        }
    )
    nm_groups = pd.DataFrame(
        {
            "sex": np.where(np.arange(n_non_mated) % 6 < 3, "female", "male"),
            "ethnicity": np.where(np.arange(n_non_mated) % 9 < 3, "b", "a"),
        }
    )
    topk = np.sort(rng.normal(0.55, 0.08, (n_non_mated, 5)), axis=1)[:, ::-1]
    topk[nm_groups["ethnicity"].to_numpy() == "b"] += 0.05
    searches = SearchSet(
        watchlist_size=100,
        mate_scores=np.clip(rng.normal(0.85, 0.06, n_mated), -1, 1),
        mate_ranks=rng.choice([1, 1, 1, 1, 2], n_mated),
        mated_subjects=m_subj,
        non_mated_topk=np.clip(topk, -1, 1),
        non_mated_subjects=nm_subj,
        mated_groups=m_groups,
        non_mated_groups=nm_groups,
    )
    scaling = None
    if with_scaling:
        rows = []
        for n in (10, 100, 1000):
            for t in np.round(np.arange(0.5, 1.0, 0.05), 4):
                rate = min(1.0, n * 1e-3 * np.exp(-20 * (t - 0.5)))
                rows.append(("analytic", n, t, rate, rate * 0.8, rate * 1.2, "all", "all", 900))
        scaling = pd.DataFrame(
            rows,
            columns=[
                "method",
                "watchlist_size",
                "threshold",
                "fpir",
                "lower",
                "upper",
                "group_attribute",
                "group",
                "n_searches",
            ],
        )
    return EvaluationResult(
        engine=EngineId("dlib", (ModelFile("recognizer", "resnet.dat", "ab" * 32),), 128),
        runtime=RuntimeInfo("dlib", ("cpu",), False, False, "fp32", "20.0"),
        engine_key="dlib|recognizer=resnet.dat@abab|face=largest",
        dataset=DatasetInfo("synthetic", "cd" * 32, 1300, 433, ("sex", "ethnicity")),
        protocol=ProtocolInfo(
            "open_set", {"seed": seed, "n_enrolled": 100}, {"enrolled_subjects": 100}, top_k=5
        ),
        searches=searches,
        search_images=(
            np.array([f"m/{i}.jpg" for i in range(n_mated)], dtype=object),
            np.array([f"n/{i}.jpg" for i in range(n_non_mated)], dtype=object),
        ),
        acquisition=pd.DataFrame(
            [("mated", "all", "all", 310, 10)],
            columns=["role", "attribute", "group", "images", "failed"],
        ),
        scaling=scaling,
        timings={"embedding_s": 1.5},
    )


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    result = synthetic_result()
    result.save(tmp_path / "res")
    loaded = load_result(tmp_path / "res")
    s, t = result.searches, loaded.searches
    np.testing.assert_array_equal(t.mate_scores, s.mate_scores)
    np.testing.assert_array_equal(t.mate_ranks, s.mate_ranks)
    np.testing.assert_array_equal(t.non_mated_topk, s.non_mated_topk)
    np.testing.assert_array_equal(t.mated_subjects, s.mated_subjects)
    pd.testing.assert_frame_equal(t.non_mated_groups, s.non_mated_groups.astype(object))
    assert loaded.engine == result.engine
    assert loaded.runtime == result.runtime
    assert loaded.dataset == result.dataset
    assert loaded.protocol == result.protocol
    assert loaded.seed == 0
    assert loaded.created == result.created
    pd.testing.assert_frame_equal(loaded.scaling, result.scaling)
    assert loaded.result_hash == result.result_hash
    assert list(loaded.search_images[0][:2]) == ["m/0.jpg", "m/1.jpg"]


def test_result_json_records_provenance(tmp_path: Path) -> None:
    synthetic_result().save(tmp_path)
    meta = json.loads((tmp_path / RESULT_FILE).read_text())
    assert meta["schema_version"] == 2
    assert meta["protocol"]["failures"] == "nist" and meta["composition"] is None
    assert meta["engine"]["models"][0]["sha256"] == "ab" * 32
    assert meta["dataset"]["sha256"] == "cd" * 32
    assert meta["protocol"]["params"]["seed"] == 0
    assert {"numpy", "pandas", "lfr_eval", "python"} <= set(meta["software"])
    assert len(meta["files"][SEARCHES_FILE]) == 64
    assert "numpy" in software_versions()


def test_failures_and_composition_round_trip(tmp_path: Path) -> None:
    from dataclasses import replace

    from lfr_eval.protocols import WatchlistComposition

    result = synthetic_result(n_mated=30, n_non_mated=60)
    s = result.searches
    groups = pd.DataFrame({"sex": ["female"], "ethnicity": ["b"]})
    failed = s.with_failures(
        np.array(["m0"]), np.array(["n99", "n99"]), groups, pd.concat([groups] * 2)
    )
    composition = WatchlistComposition("ethnicity", {"a": 0.7, "b": 0.3})
    result = replace(
        result,
        searches=failed,
        search_images=(
            np.append(result.search_images[0], "m/failed.jpg"),
            np.append(result.search_images[1], ["n/f1.jpg", "n/f2.jpg"]),
        ),
        composition=composition,
    )
    result.save(tmp_path)
    frame = pd.read_parquet(tmp_path / SEARCHES_FILE)
    assert frame["failed_to_acquire"].sum() == 3
    loaded = load_result(tmp_path)
    assert loaded.searches.n_failed_mated == 1 and loaded.searches.n_failed_non_mated == 2
    assert loaded.searches.mate_ranks[-1] == s.watchlist_size + 1
    assert loaded.composition == composition
    assert loaded.result_hash == result.result_hash
    # a version-1 folder (failures left out, no composition) still loads, as "exclude"
    meta = json.loads((tmp_path / RESULT_FILE).read_text())
    meta.pop("result_sha256")
    for key in ("composition", "n_failed_mated", "n_failed_non_mated"):
        meta.pop(key)
    meta["protocol"].pop("failures")
    meta["schema_version"] = 1
    from lfr_eval.results import _canonical, _sha256_bytes

    meta["result_sha256"] = _sha256_bytes(_canonical(meta))
    (tmp_path / RESULT_FILE).write_text(json.dumps(meta))
    old = load_result(tmp_path)
    assert old.protocol.failures == "exclude" and old.composition is None


def test_altered_results_are_refused(tmp_path: Path) -> None:
    synthetic_result().save(tmp_path)
    searches = tmp_path / SEARCHES_FILE
    frame = pd.read_parquet(searches)
    frame.loc[0, "mate_score"] = 0.99
    frame.to_parquet(searches, index=False)
    with pytest.raises(ResultError, match="searches.parquet .* does not match"):
        load_result(tmp_path)

    synthetic_result().save(tmp_path)
    meta = json.loads((tmp_path / RESULT_FILE).read_text())
    meta["watchlist_size"] = 10_000  # a "nicer" N, claimed after the fact
    (tmp_path / RESULT_FILE).write_text(json.dumps(meta))
    with pytest.raises(ResultError, match="result.json .* does not match"):
        load_result(tmp_path)


def test_missing_or_foreign_folder(tmp_path: Path) -> None:
    with pytest.raises(ResultError, match="not an evaluation results folder"):
        load_result(tmp_path)
    (tmp_path / RESULT_FILE).write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(ResultError, match="layout version 99"):
        load_result(tmp_path)
    (tmp_path / RESULT_FILE).write_text("{not json")
    with pytest.raises(ResultError, match="unreadable"):
        load_result(tmp_path)


def test_identification_frame_from_result() -> None:
    result = synthetic_result()
    frame = result.identification_frame([0.6, 0.7], ["ethnicity"])
    fpir = frame.by_group.xs("fpir", level="metric")["rate"]
    assert fpir.loc[(0.6, "b")] > fpir.loc[(0.6, "a")]
