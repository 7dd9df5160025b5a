"""Open-set and NPL protocols: subject-disjoint splits, seeds, balancing, FPIR scaling."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfr_eval.datasets import Manifest, ManifestWarning, load_lfw
from lfr_eval.protocols import (
    FillerCounts,
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


#: the grid the test counts are made at (every threshold the tests ask for is on it)
GRID = np.round(np.linspace(-1.0, 1.0, 401), 4)


class _Fillers:
    """FillerCounts (what scaling sees) with the dense scores kept beside them for the
    brute-force checks."""

    def __init__(self, scores, search_subjects, search_groups, filler_groups, top_k=20):
        self.scores = scores
        self.counts = FillerCounts.from_scores(
            scores, GRID, search_subjects, search_groups, filler_groups, top_k=top_k
        )

    def __getattr__(self, name):
        return getattr(self.counts, name)


def _filler_scores(n_searches: int = 300, n_fillers: int = 400, seed: int = 0) -> _Fillers:
    """Scores whose per-search FMR differs (some faces attract false matches)."""
    rng = np.random.default_rng(seed)
    attraction = rng.normal(0.0, 0.05, size=(n_searches, 1))
    scores = np.clip(rng.normal(0.3, 0.1, size=(n_searches, n_fillers)) + attraction, -1, 1)
    groups = pd.DataFrame({"sex": rng.choice(["female", "male"], n_searches)})
    filler_groups = pd.DataFrame({"ethnicity": np.where(np.arange(n_fillers) % 4 == 0, "b", "a")})
    # group "b" fillers draw more false matches
    scores[:, filler_groups["ethnicity"].to_numpy() == "b"] += 0.05
    return _Fillers(
        scores.astype(np.float32),
        np.array([f"p{i // 3}" for i in range(n_searches)], dtype=object),
        groups,
        filler_groups,
    )


def test_analytic_scaling_matches_direct_count_and_grows_with_n() -> None:
    fs = _filler_scores()
    thresholds = np.array([0.5, 0.6, 0.7])
    one = scale_fpir(fs, [1], thresholds, n_boot=0)
    # N = 1: FPIR is the mean FMR over all (search, filler) pairs, exactly (the hypergeometric
    # form goes through log-gamma: equal to ~1e-10).
    direct = (fs.scores[:, :, None] >= thresholds).mean(axis=(0, 1))
    got = one.table.sort_values("threshold")["fpir"].to_numpy()
    np.testing.assert_allclose(got, direct, rtol=1e-9)
    scaled = scale_fpir(fs, [10, 100, 10_000], [0.6], n_boot=200, by="sex")
    per_search = scaled.table[scaled.table["method"] == "analytic"]
    overall = per_search[per_search["group"] == "all"].set_index("watchlist_size")["fpir"]
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
    # N = all 400 fillers: every draw is the same gallery, so it is not resampled at all
    from lfr_eval.protocols import resample_sizes

    assert resample_sizes(fs, [50, 400, 401]) == [50]


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


def test_zero_false_matches_give_an_exact_upper_bound_not_zero_width() -> None:
    """No search meets any filler at T = 0.99: FPIR is 0, but the interval must be the
    exact bound counted by people (rule of three over people, scaled to N), never 0 - 0."""
    from lfr_eval.protocols._npl import INTERVAL_EXACT_ZERO, zero_false_match_upper

    fs = _filler_scores()  # 300 searches of 100 people (3 each), 400 fillers, scores << 0.99
    f = fs.n_fillers
    people = 100
    analytic = scale_fpir(fs, [f, 10_000], [0.6, 0.99]).table
    # beyond F the table also holds the pooled-rate rows (the high end of the extrapolation)
    assert set(analytic[analytic["watchlist_size"] == 10_000]["method"]) == {
        "analytic",
        "analytic-pooled",
    }
    analytic = analytic[analytic["method"] == "analytic"]
    zero = analytic[analytic["threshold"] == 0.99].set_index("watchlist_size")
    assert (zero["fpir"] == 0).all() and (zero["lower"] == 0).all()
    assert (zero["interval"] == INTERVAL_EXACT_ZERO).all()
    # N = F: the people met all F fillers, so the one-sided bound is 1 - 0.05^(1/people)
    # (about 3/people), the two-sided upper end 1 - 0.025^(1/people)
    assert zero.loc[f, "upper_bound"] == pytest.approx(1 - 0.05 ** (1 / people))
    assert zero.loc[f, "upper_bound"] == pytest.approx(3 / people, rel=0.02)
    assert zero.loc[f, "upper"] == pytest.approx(1 - 0.025 ** (1 / people))
    # scaled to N = 10,000 through FMR <= 1 - 0.05^(1/(people F)): about 3N/(people F)
    assert zero.loc[10_000, "upper_bound"] == pytest.approx(1 - 0.05 ** (10_000 / (people * f)))
    assert zero.loc[10_000, "upper_bound"] == pytest.approx(
        zero_false_match_upper(people, 10_000, [f], [1.0])
    )
    busy = analytic[analytic["threshold"] == 0.6]
    assert busy["interval"].str.startswith("korn-graubard").all()
    # the one-sided bound (exact, one more largest person) may pass the two-sided upper end
    # (Jeffreys): both are above the estimate
    assert (busy["upper"] > busy["fpir"]).all() and (busy["upper_bound"] > busy["fpir"]).all()
    # per-group rows use their own people
    by_sex = scale_fpir(fs, [f], [0.99], by="sex").table.set_index("group")
    female = fs.search_subjects[fs.search_groups["sex"].to_numpy() == "female"]
    _, per_person = np.unique(female.astype(str), return_counts=True)
    kish = per_person.sum() ** 2 / (per_person**2).sum()
    assert by_sex.loc["female", "upper_bound"] == pytest.approx(1 - 0.05 ** (1 / kish))
    # the resampled form: every gallery gives 0, so it carries the same exact bound
    resampled = resample_fpir(fs, [100], [0.99], n_resamples=20).table.iloc[0]
    assert resampled["fpir"] == 0 and resampled["interval"] == INTERVAL_EXACT_ZERO
    assert resampled["upper"] == pytest.approx(zero_false_match_upper(people, 100, [f], [1.0]))
    # composition: the bound puts the unseen risk on the group most over-represented relative
    # to its fillers (b: 100 fillers at a share of 0.8)
    weighted = scale_fpir(
        fs, [1_000], [0.99], attribute="ethnicity", composition={"a": 0.2, "b": 0.8}
    ).table.iloc[0]
    assert weighted["upper_bound"] == pytest.approx(1 - 0.05 ** (1_000 * 0.8 / (people * 100)))
    # a failed search (row of -inf) is a search with no candidate: it adds to n, never to FPIR
    failed = _Fillers(
        np.vstack([fs.scores, np.full((1, f), -np.inf, np.float32)]),
        np.append(fs.search_subjects, "failed"),
        pd.concat([fs.search_groups, pd.DataFrame({"sex": ["male"]})]),
        fs.filler_groups,
    )
    with_failed = scale_fpir(failed, [1], [-1.0, 0.6], interval="none").table
    with_failed = with_failed.set_index("threshold")
    n = fs.n_searches
    assert with_failed.loc[-1.0, "fpir"] == pytest.approx(n / (n + 1))
    direct = (fs.scores >= 0.6).mean() * n / (n + 1)
    assert with_failed.loc[0.6, "fpir"] == pytest.approx(direct)


def _synthetic_embeddings(manifest: Manifest, failed: np.ndarray, seed: int = 0):
    """Each subject a random direction plus noise; rows in ``failed`` gave no template."""
    from lfr_eval.datasets import ImageEmbeddings

    rng = np.random.default_rng(seed)
    codes = np.unique(manifest.subject_ids.astype(str), return_inverse=True)[1]
    centres = rng.normal(size=(codes.max() + 1, 32))
    vectors = centres[codes] + rng.normal(scale=0.8, size=(len(codes), 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ok = ~np.isin(np.arange(len(codes)), failed)
    vectors[~ok] = 0.0
    n = len(codes)
    return ImageEmbeddings(
        "synthetic",
        np.array([f"{i:064x}" for i in range(n)], dtype=object),
        vectors.astype(np.float32),
        ok,
        ok.astype(np.int64),
        np.where(ok, "", "no face found").astype(object),
        np.full(n, np.nan),
        np.full(n, np.nan),
    )


def _protocol_and_runner(kind: str):
    """(manifest, protocol, run function) of one design on the same synthetic manifest."""
    from lfr_eval.protocols import NplParams, run_npl_protocol, run_protocol

    manifest = synthetic_manifest(120, seed=3)
    if kind == "open_set":
        return manifest, build_open_set_protocol(manifest, OpenSetParams(seed=1)), run_protocol
    return manifest, build_npl_protocol(manifest, NplParams(seed=1)), run_npl_protocol


@pytest.mark.parametrize("kind", ["open_set", "npl"])
def test_run_protocol_counts_failures_to_acquire_as_nist(kind: str) -> None:
    from lfr_eval.metrics import IdentificationFrame, fnir, fpir

    manifest, protocol, run = _protocol_and_runner(kind)
    failed = np.concatenate([protocol.mated[:4], protocol.non_mated[:5]])
    embeddings = _synthetic_embeddings(manifest, failed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        nist = run(protocol, embeddings)
        excl = run(protocol, embeddings, failures="exclude")
    assert (nist.failures, excl.failures) == ("nist", "exclude")
    s, e = nist.searches, excl.searches
    assert (s.n_failed_mated, s.n_failed_non_mated) == (4, 5)
    assert (s.n_mated, s.n_non_mated) == (e.n_mated + 4, e.n_non_mated + 5)
    assert e.n_failed_mated == e.n_failed_non_mated == 0
    # the failed searches are appended, with their manifest rows and subjects
    assert set(nist.mated_rows[s.mated_failed]) == set(protocol.mated[:4])
    assert set(nist.non_mated_rows[s.non_mated_failed]) == set(protocol.non_mated[:5])
    subjects = manifest.subject_ids.astype(str)
    assert list(s.mated_subjects) == list(subjects[nist.mated_rows])
    thr = np.linspace(-0.2, 0.9, 12)
    # every failed mated search is a miss; a failed non-mated one never a false positive
    np.testing.assert_allclose(fnir(s, thr) * s.n_mated, fnir(e, thr) * e.n_mated + 4)
    np.testing.assert_allclose(fpir(s, thr) * s.n_non_mated, fpir(e, thr) * e.n_non_mated)
    np.testing.assert_allclose(
        fnir(s, thr, rank=3) * s.n_mated, fnir(e, thr, rank=3) * e.n_mated + 4
    )
    frame = IdentificationFrame(s, [0.3], ["sex"])
    n_by_sex = frame.by_group.xs("fnir", level="metric")["n_searches"].sum()
    assert n_by_sex == s.n_mated
    # failures are still reported per role, whatever the policy
    pd.testing.assert_frame_equal(nist.acquisition, excl.acquisition)
    acq = nist.acquisition.set_index(["role", "attribute", "group"])
    assert acq.loc[("non_mated", "all", "all"), "failed"] == 5
    # watchlist-size scaling sees the failed non-mated searches as searches with no match
    assert nist.filler_counts.n_searches == s.n_non_mated
    assert np.all(nist.filler_counts.counts[s.non_mated_failed] == 0)
    assert not nist.filler_counts.scored[s.non_mated_failed].any()
    a = scale_fpir(nist.filler_counts, [10], [0.3], n_boot=0).at(10, 0.3)
    b = scale_fpir(excl.filler_counts, [10], [0.3], n_boot=0).at(10, 0.3)
    assert a == pytest.approx(b * e.n_non_mated / s.n_non_mated)
    with pytest.raises(ProtocolError, match="failures must be"):
        run(protocol, embeddings, failures="drop")


def test_watchlist_composition_from_text_and_files(tmp_path: Path) -> None:
    from lfr_eval.protocols import WatchlistComposition

    c = WatchlistComposition.parse("ethnicity=african:0.2, caucasian:0.6,eastasian:0.2")
    assert c.attribute == "ethnicity"
    assert c.shares == {"african": 0.2, "caucasian": 0.6, "eastasian": 0.2}
    assert WatchlistComposition.parse(c.to_text()) == c
    assert WatchlistComposition.from_dict(c.to_dict()) == c
    (tmp_path / "c.json").write_text(
        '{"attribute": "ethnicity", "shares": {"african": 0.2, "caucasian": 0.6, "eastasian": 0.2}}'
    )
    assert WatchlistComposition.from_option(str(tmp_path / "c.json")) == c
    pd.DataFrame(
        {"attribute": "ethnicity", "label": list(c.shares), "share": list(c.shares.values())}
    ).to_csv(tmp_path / "c.csv", index=False)
    assert WatchlistComposition.from_option(str(tmp_path / "c.csv")) == c
    for bad in ("ethnicity", "ethnicity=african", "ethnicity=african:x", "=a:1"):
        with pytest.raises(ProtocolError, match="ATTRIBUTE=LABEL:SHARE"):
            WatchlistComposition.parse(bad)
    with pytest.raises(ProtocolError, match="non-negative"):
        WatchlistComposition.parse("sex=female:-1,male:2")
    with pytest.raises(ProtocolError, match="cannot read"):
        WatchlistComposition.from_option(str(tmp_path / "missing.json"))


def test_npl_filler_counts_on_disk_equal_in_memory(tmp_path: Path) -> None:
    """A memory setting too small for the counts puts them in a work folder (memory-mapped,
    failed searches appended on disk); scaling reads them in chunks and gives the same table."""
    from lfr_eval.protocols import NplParams, ScoringScale, run_npl_protocol

    manifest = synthetic_manifest(120, seed=3)
    protocol = build_npl_protocol(manifest, NplParams(seed=1))
    embeddings = _synthetic_embeddings(manifest, protocol.non_mated[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        memory = run_npl_protocol(protocol, embeddings)
        disk = run_npl_protocol(
            protocol, embeddings, scale=ScoringScale(memory_bytes=300_000, work_dir=tmp_path)
        )
    assert isinstance(disk.filler_counts.counts, np.memmap)
    assert not isinstance(memory.filler_counts.counts, np.memmap)
    np.testing.assert_array_equal(disk.filler_counts.counts, memory.filler_counts.counts)
    assert disk.filler_counts.scored.sum() == memory.filler_counts.n_searches - 3
    thresholds = [0.2, 0.4, 0.6]
    a = scale_fpir(memory.filler_counts, [10, 100], thresholds, by="sex", n_boot=20).table
    b = scale_fpir(disk.filler_counts, [10, 100], thresholds, by="sex", n_boot=20).table
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(
        disk.filler_counts.pooled_fmr(thresholds), memory.filler_counts.pooled_fmr(thresholds)
    )


@pytest.mark.parametrize("kind", ["open_set", "npl"])
def test_failure_to_enrol_counts_searches_as_misses_or_excludes_them(kind: str) -> None:
    """A subject whose enrolment images gave no template: its mated searches are misses by
    default (ISO/IEC 19795-1), left out with ``failures="exclude"``, and with ``next_image``
    the subject is enrolled from its next usable image; the rate is reported every time."""
    from lfr_eval.metrics import fnir
    from lfr_eval.protocols import EnrolmentSettings

    manifest, protocol, run = _protocol_and_runner(kind)
    subjects = manifest.subject_ids.astype(str)
    tried = np.unique(subjects[protocol.enrolment])
    # the first three watchlist subjects' enrolment images all fail, deterministically
    lost = tried[:3]
    failed = protocol.enrolment[np.isin(subjects[protocol.enrolment], lost)]
    embeddings = _synthetic_embeddings(manifest, failed)
    of_lost = protocol.mated[np.isin(subjects[protocol.mated], lost)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        nist = run(protocol, embeddings)
        excl = run(protocol, embeddings, enrolment=EnrolmentSettings(failures="exclude"))
        nxt = run(protocol, embeddings, enrolment=EnrolmentSettings(next_image=True))
    for r in (nist, excl):
        assert r.enrolment is not None
        assert (r.enrolment.subjects, r.enrolment.failed) == (len(tried), 3)
        assert r.enrolment.rate == pytest.approx(3 / len(tried))
        assert r.enrolment.mated_searches == len(of_lost) > 0
        assert r.failed_to_enrol == 3
        assert r.searches.watchlist_size == excl.searches.watchlist_size
    # default: kept, as misses at every threshold (they are in the denominator)
    assert nist.searches.n_mated == excl.searches.n_mated + len(of_lost)
    assert set(of_lost) <= set(nist.mated_rows[nist.searches.mated_failed])
    assert not set(of_lost) & set(excl.mated_rows)
    thr = np.array([-1.0, 0.3])
    np.testing.assert_allclose(
        fnir(nist.searches, thr) * nist.searches.n_mated,
        fnir(excl.searches, thr) * excl.searches.n_mated + len(of_lost),
    )
    assert "count as misses" in nist.enrolment.describe()
    assert "left out" in excl.enrolment.describe()
    # next image: the lost subjects are enrolled from their first search image instead
    assert nxt.enrolment is not None
    assert (nxt.enrolment.failed, nxt.enrolment.next_image) == (0, 3)
    assert nxt.searches.watchlist_size == excl.searches.watchlist_size + 3
    first = [np.sort(of_lost[subjects[of_lost] == s])[0] for s in lost]
    assert not set(first) & set(nxt.mated_rows)  # templates now, not searches
    assert nxt.searches.n_mated == nist.searches.n_mated - 3
    assert nxt.searches.n_failed_mated == 0
    # a quality gate makes enrolment fail on small faces too
    sized = embeddings.__class__(
        **{**embeddings.__dict__, "face_size_px": np.full(len(manifest), 30.0)}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        gated = run(protocol, sized, enrolment=EnrolmentSettings(min_face_px=20.0))
        with pytest.raises(ProtocolError, match="no enrolment image gave a template"):
            run(protocol, sized, enrolment=EnrolmentSettings(min_face_px=40.0))
    assert gated.enrolment is not None and gated.enrolment.failed == 3
    with pytest.raises(ProtocolError, match="enrolment_failures must be"):
        EnrolmentSettings(failures="drop")  # type: ignore[arg-type]
