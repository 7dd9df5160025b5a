"""Open-set and NPL protocols: subject-disjoint splits, seeds, balancing, FPIR scaling."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfr_eval.datasets import Manifest, ManifestWarning, load_lfw
from lfr_eval.protocols import (
    FillerScores,
    OpenSetParams,
    ProtocolError,
    build_npl_protocol,
    build_open_set_protocol,
    resample_fpir,
    scale_fpir,
)


def synthetic_manifest(n_subjects: int = 60, seed: int = 0) -> Manifest:
    """Subjects with 1–6 images each, two labelled attributes; no files are read."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        n = int(rng.integers(1, 7))
        sex = ["female", "male"][s % 2]
        eth = ["a", "b", "c", "unknown"][s % 4]
        rows += [(f"s{s:03d}/{i}.jpg", f"s{s:03d}", sex, eth) for i in range(n)]
    frame = pd.DataFrame(rows, columns=["path", "subject_id", "sex", "ethnicity"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        return Manifest.from_frame(frame, root=None, check_files=False)


def test_open_set_split_is_by_subject_and_seeded() -> None:
    manifest = synthetic_manifest()
    protocol = build_open_set_protocol(manifest, seed=3, enrolled_fraction=0.5)
    subjects = manifest.subject_ids
    enrolled = set(subjects[protocol.enrolment])
    assert enrolled == set(subjects[protocol.mated])  # every enrolled subject searches
    assert not enrolled & set(subjects[protocol.non_mated])  # strangers are never enrolled
    roles = [protocol.enrolment, protocol.mated, protocol.non_mated]
    used = np.concatenate(roles)
    assert len(used) == len(np.unique(used)) == len(manifest)  # all rows, each once
    # single-image subjects can only be strangers
    counts = manifest.images_per_subject()
    assert not enrolled & set(counts.index[counts == 1])
    again = build_open_set_protocol(manifest, seed=3, enrolled_fraction=0.5)
    np.testing.assert_array_equal(again.enrolment, protocol.enrolment)
    np.testing.assert_array_equal(again.non_mated, protocol.non_mated)
    other = build_open_set_protocol(manifest, seed=4, enrolled_fraction=0.5)
    assert not np.array_equal(other.enrolment, protocol.enrolment)
    c = protocol.counts()
    assert c.enrolled_subjects == protocol.watchlist_size == len(enrolled)
    assert c.mated_searches + c.enrolment_images + c.non_mated_searches == len(manifest)


def test_open_set_caps_and_enrolment_images() -> None:
    manifest = synthetic_manifest()
    protocol = build_open_set_protocol(
        manifest,
        seed=0,
        n_enrolled=10,
        enrolment_images=2,
        max_mated_per_subject=1,
        max_non_mated_per_subject=2,
    )
    subjects = pd.Series(manifest.subject_ids)
    assert protocol.watchlist_size == 10
    assert (subjects[protocol.enrolment].value_counts() == 2).all()
    assert (subjects[protocol.mated].value_counts() == 1).all()
    assert subjects[protocol.non_mated].value_counts().max() <= 2


def test_open_set_balancing_equalises_groups() -> None:
    manifest = synthetic_manifest(120)
    with pytest.warns(ManifestWarning, match="unknown"):
        protocol = build_open_set_protocol(manifest, seed=1, n_enrolled=12, balance_by="ethnicity")
    labels = manifest.frame["ethnicity"].to_numpy()
    enrolled = (
        pd.Series(labels[protocol.enrolment])
        .groupby(manifest.subject_ids[protocol.enrolment])
        .first()
        .value_counts()
    )
    assert set(enrolled.index) == {"a", "b", "c"}
    assert (enrolled == 4).all()
    strangers = (
        pd.Series(labels[protocol.non_mated])
        .groupby(manifest.subject_ids[protocol.non_mated])
        .first()
        .value_counts()
    )
    assert strangers.nunique() == 1 and "unknown" not in strangers.index


def test_open_set_impossible_requests_are_clear_errors() -> None:
    singles = pd.DataFrame(
        {"path": [f"{i}.jpg" for i in range(5)], "subject_id": [str(i) for i in range(5)]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        manifest = Manifest.from_frame(singles, check_files=False)
    with pytest.raises(ProtocolError, match="no subject has the 2 images"):
        build_open_set_protocol(manifest)
    manifest = synthetic_manifest()
    with pytest.raises(ProtocolError, match="only .* have at least 2 images"):
        build_open_set_protocol(manifest, n_enrolled=10_000)
    with pytest.raises(ProtocolError, match="cannot balance by 'age'"):
        build_open_set_protocol(manifest, balance_by="age")
    with pytest.raises(ProtocolError, match="enrolled_fraction"):
        OpenSetParams(enrolled_fraction=1.5)
    pairs = pd.DataFrame({"path": ["a1", "a2", "b1", "b2"], "subject_id": ["a", "a", "b", "b"]})
    two = Manifest.from_frame(pairs, check_files=False)
    with pytest.raises(ProtocolError, match="no subject is left for non-mated"):
        build_open_set_protocol(two, n_enrolled=2)


def test_params_round_trip() -> None:
    params = OpenSetParams(seed=5, n_enrolled=3, balance_by="sex")
    assert OpenSetParams.from_dict(params.to_dict()) == params


@pytest.mark.lfw
def test_open_set_on_lfw_is_subject_disjoint(lfw_dir: Path) -> None:
    manifest = load_lfw(lfw_dir)
    protocol = build_open_set_protocol(manifest, seed=0, n_enrolled=800, max_mated_per_subject=5)
    c = protocol.counts()
    assert c.enrolled_subjects == 800
    assert c.non_mated_subjects == 5749 - 800
    assert c.mated_subjects == 800
    assert not set(manifest.subject_ids[protocol.non_mated]) & set(protocol.watchlist_subjects)


# ---------------------------------------------------------------- NPL design
def test_npl_roles_are_subject_disjoint() -> None:
    manifest = synthetic_manifest(200)
    protocol = build_npl_protocol(manifest, seed=2)
    subjects = manifest.subject_ids
    roles = {
        "volunteers": set(subjects[protocol.enrolment]),
        "fillers": set(subjects[protocol.fillers]),
        "strangers": set(subjects[protocol.non_mated]),
    }
    assert roles["volunteers"] == set(subjects[protocol.mated])
    assert not roles["volunteers"] & roles["fillers"]
    assert not roles["fillers"] & roles["strangers"]
    assert not roles["volunteers"] & roles["strangers"]
    assert len(roles["fillers"]) == protocol.n_fillers  # one image per filler


def _filler_scores(n_searches: int = 300, n_fillers: int = 400, seed: int = 0) -> FillerScores:
    """Scores whose per-search FMR differs (some faces attract false matches)."""
    rng = np.random.default_rng(seed)
    attraction = rng.normal(0.0, 0.05, size=(n_searches, 1))
    scores = np.clip(rng.normal(0.3, 0.1, size=(n_searches, n_fillers)) + attraction, -1, 1)
    groups = pd.DataFrame({"sex": rng.choice(["female", "male"], n_searches)})
    filler_groups = pd.DataFrame({"ethnicity": np.where(np.arange(n_fillers) % 4 == 0, "b", "a")})
    # group "b" fillers draw more false matches
    scores[:, filler_groups["ethnicity"].to_numpy() == "b"] += 0.05
    return FillerScores(
        scores=scores.astype(np.float32),
        search_subjects=np.array([f"p{i // 3}" for i in range(n_searches)], dtype=object),
        search_groups=groups,
        filler_groups=filler_groups,
    )


def test_analytic_scaling_matches_direct_count_and_grows_with_n() -> None:
    fs = _filler_scores()
    thresholds = np.array([0.5, 0.6, 0.7])
    one = scale_fpir(fs, [1], thresholds, n_boot=0)
    # N = 1: FPIR is the mean FMR over all (search, filler) pairs, exactly.
    direct = (fs.scores[:, :, None] >= thresholds).mean(axis=(0, 1))
    got = one.table.sort_values("threshold")["fpir"].to_numpy()
    np.testing.assert_allclose(got, direct, rtol=1e-12)
    scaled = scale_fpir(fs, [10, 100, 10_000], [0.6], n_boot=200, by="sex")
    overall = scaled.table[scaled.table["group"] == "all"].set_index("watchlist_size")["fpir"]
    assert overall[10] < overall[100] < overall[10_000] <= 1.0
    row = scaled.table[(scaled.table["group"] == "all") & (scaled.table["watchlist_size"] == 100)]
    assert (row["lower"] <= row["fpir"]).all() and (row["fpir"] <= row["upper"]).all()
    assert set(scaled.table["group"]) == {"all", "female", "male"}


def test_resampled_scaling_agrees_with_analytic() -> None:
    fs = _filler_scores()
    thresholds = np.array([0.55, 0.6])
    analytic = scale_fpir(fs, [50], thresholds, n_boot=0).table
    resampled = resample_fpir(fs, [50], thresholds, n_resamples=300, seed=1).table
    np.testing.assert_allclose(resampled["fpir"].to_numpy(), analytic["fpir"].to_numpy(), rtol=0.15)
    with pytest.raises(ProtocolError, match="only 400 fillers"):
        resample_fpir(fs, [401], [0.6], n_resamples=2)


def test_composition_weighting_moves_fpir() -> None:
    fs = _filler_scores()
    more_b = scale_fpir(
        fs, [100], [0.6], attribute="ethnicity", composition={"a": 0.2, "b": 0.8}, n_boot=0
    ).at(100, 0.6)
    less_b = scale_fpir(
        fs, [100], [0.6], attribute="ethnicity", composition={"a": 0.9, "b": 0.1}, n_boot=0
    ).at(100, 0.6)
    assert more_b > less_b  # group b draws more false matches
    # galleries small beside the filler pools, where drawing without replacement barely matters
    stratified = resample_fpir(
        fs, [20], [0.6], attribute="ethnicity", composition={"a": 0.2, "b": 0.8}, n_resamples=400
    ).at(20, 0.6, "resampled")
    analytic = scale_fpir(
        fs, [20], [0.6], attribute="ethnicity", composition={"a": 0.2, "b": 0.8}, n_boot=0
    ).at(20, 0.6)
    assert abs(stratified - analytic) / analytic < 0.15
    with pytest.raises(ProtocolError, match="composition"):
        scale_fpir(fs, [10], [0.6], attribute="ethnicity", composition={"z": 1.0})
