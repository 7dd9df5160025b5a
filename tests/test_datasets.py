"""Manifests, loaders and the embedding cache."""

from __future__ import annotations

import functools
import sqlite3
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from lfr_eval.datasets import (
    FAILURE_NO_FACE,
    UNKNOWN,
    CacheError,
    EmbeddingCache,
    Manifest,
    ManifestWarning,
    embed_manifest,
    engine_cache_key,
    find_lfw_images,
    load_folder,
    load_lfw,
    read_lfw_pairs,
    read_manifest,
)
from lfr_eval.errors import ManifestError


def _write_noise_jpeg(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)


@pytest.fixture()
def folder_dataset(tmp_path: Path) -> Path:
    """Three subjects (2, 2, 1 images) of noise images: no faces, but valid image files."""
    root = tmp_path / "people"
    seed = 0
    for subject, n in (("alice", 2), ("bob", 2), ("carol", 1)):
        for i in range(n):
            seed += 1
            _write_noise_jpeg(root / subject / f"{i}.jpg", seed)
    return root


# ---------------------------------------------------------------- manifests
def test_manifest_from_csv_fills_unknown_and_keeps_every_row(folder_dataset: Path) -> None:
    csv = folder_dataset / "manifest.csv"
    csv.write_text(
        "path,subject_id,sex,age_band\n"
        "alice/0.jpg,alice,female,\n"
        "alice/1.jpg,alice,female,30-39\n"
        "bob/0.jpg,007,,\n"
        "bob/1.jpg,007,male,40-49\n"
    )
    manifest = read_manifest(csv)
    assert manifest.n_images == 4
    assert manifest.n_subjects == 2
    assert manifest.attributes == ("sex", "age_band")
    # ids stay text: "007" is not the number 7
    assert "007" in set(manifest.subject_ids)
    assert manifest.frame.loc[2, "sex"] == UNKNOWN
    assert manifest.frame.loc[0, "age_band"] == UNKNOWN
    assert all(p.is_file() for p in manifest.absolute_paths())


def test_manifest_missing_columns_is_a_clear_error(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("file,person\na.jpg,x\n")
    with pytest.raises(ManifestError, match=r"lacks the columns path, subject_id"):
        read_manifest(csv)


def test_manifest_unknown_paths_are_listed(folder_dataset: Path) -> None:
    frame = pd.DataFrame(
        {"path": ["alice/0.jpg", "alice/9.jpg", "zed/1.jpg"], "subject_id": ["a", "a", "z"]}
    )
    with pytest.raises(ManifestError, match=r"2 image files not found.*alice/9.jpg"):
        Manifest.from_frame(frame, root=folder_dataset)


def test_manifest_duplicated_path_is_an_error(folder_dataset: Path) -> None:
    frame = pd.DataFrame(
        {"path": ["alice/0.jpg", "alice/0.jpg", "bob/0.jpg"], "subject_id": ["a", "a", "b"]}
    )
    with pytest.raises(ManifestError, match="more than once.*alice/0.jpg"):
        Manifest.from_frame(frame, root=folder_dataset)


def test_manifest_duplicated_content_warns(folder_dataset: Path) -> None:
    (folder_dataset / "bob" / "copy.jpg").write_bytes((folder_dataset / "alice/0.jpg").read_bytes())
    frame = pd.DataFrame(
        {
            "path": ["alice/0.jpg", "alice/1.jpg", "bob/copy.jpg", "bob/0.jpg"],
            "subject_id": ["a", "a", "b", "b"],
        }
    )
    manifest = Manifest.from_frame(frame, root=folder_dataset)
    with pytest.warns(ManifestWarning, match="same content"):
        manifest.image_hashes()


def test_manifest_blank_subject_and_empty_table(folder_dataset: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"path": ["alice/0.jpg", "bob/0.jpg"], "subject_id": ["a", None]})
    with pytest.raises(ManifestError, match="empty 'subject_id'.*row 2"):
        Manifest.from_frame(frame, root=folder_dataset)
    empty = tmp_path / "empty.csv"
    empty.write_text("path,subject_id\n")
    with pytest.raises(ManifestError, match="no rows"):
        read_manifest(empty)


def test_manifest_bad_file_kind(tmp_path: Path) -> None:
    bad = tmp_path / "m.txt"
    bad.write_text("x")
    with pytest.raises(ManifestError, match=".csv or .parquet"):
        read_manifest(bad)
    with pytest.raises(ManifestError, match="file not found"):
        read_manifest(tmp_path / "absent.csv")
    garbage = tmp_path / "m.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(ManifestError, match="cannot read manifest"):
        read_manifest(garbage)


def test_one_image_per_subject_warns(folder_dataset: Path) -> None:
    frame = pd.DataFrame({"path": ["alice/0.jpg", "bob/0.jpg"], "subject_id": ["a", "b"]})
    with pytest.warns(ManifestWarning, match="2 of 2 subjects have only one image"):
        Manifest.from_frame(frame, root=folder_dataset)


def test_dataset_hash_changes_with_labels_not_order(folder_dataset: Path) -> None:
    frame = pd.DataFrame(
        {
            "path": ["alice/0.jpg", "alice/1.jpg", "bob/0.jpg", "bob/1.jpg"],
            "subject_id": ["a", "a", "b", "b"],
            "sex": ["f", "f", "m", "m"],
        }
    )
    base = Manifest.from_frame(frame, root=folder_dataset).dataset_hash()
    shuffled = Manifest.from_frame(frame.iloc[::-1], root=folder_dataset).dataset_hash()
    relabelled = frame.assign(sex=["f", "f", "m", "f"])
    other = Manifest.from_frame(relabelled, root=folder_dataset).dataset_hash()
    assert base == shuffled
    assert base != other
    assert len(base) == 64


def test_manifest_write_and_read_round_trip(folder_dataset: Path, tmp_path: Path) -> None:
    manifest = load_folder(folder_dataset)
    for name in ("copy.csv", "copy.parquet"):
        # beside the images: same relative paths, same dataset hash
        again = read_manifest(manifest.write(folder_dataset / name))
        assert again.dataset_hash() == manifest.dataset_hash()
        # elsewhere: paths are rewritten relative to the new file and reach the same images
        out = tmp_path / "elsewhere" / name
        out.parent.mkdir(exist_ok=True)
        moved = read_manifest(manifest.write(out))
        assert [p.resolve() for p in moved.absolute_paths()] == manifest.absolute_paths()


# ---------------------------------------------------------------- folder loader
def test_load_folder_with_subject_attributes(folder_dataset: Path, tmp_path: Path) -> None:
    _write_noise_jpeg(folder_dataset / "stray.jpg", 99)
    table = tmp_path / "subjects.csv"
    table.write_text("subject_id,sex\nalice,female\nbob,male\nnobody,male\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifest = load_folder(folder_dataset, attributes=table)
    messages = " ".join(str(w.message) for w in caught)
    assert "directly in" in messages  # the stray image is reported, not silently used
    assert "without a sub-folder" in messages  # 'nobody' has no folder
    assert "only one image" in messages  # carol
    assert manifest.n_images == 5
    assert dict(zip(manifest.subject_ids, manifest.frame["sex"])) == {
        "alice": "female",
        "bob": "male",
        "carol": UNKNOWN,
    }


def test_load_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        load_folder(tmp_path / "absent")
    (tmp_path / "empty" / "someone").mkdir(parents=True)
    with pytest.raises(ManifestError, match="no images found"):
        load_folder(tmp_path / "empty")


def test_limit_subjects_keeps_whole_subjects(folder_dataset: Path) -> None:
    manifest = load_folder(folder_dataset)
    small = manifest.limit_subjects(3, seed=1)
    counts = small.images_per_subject()
    full = manifest.images_per_subject()
    assert small.n_images <= 3
    assert all(counts[s] == full[s] for s in counts.index)


def test_limit_subjects_caps_images_per_subject() -> None:
    frame = pd.DataFrame(
        {
            "path": [f"{s}/{i}.jpg" for s, n in (("a", 5), ("b", 1), ("c", 3)) for i in range(n)],
            "subject_id": [s for s, n in (("a", 5), ("b", 1), ("c", 3)) for _ in range(n)],
        }
    )
    manifest = Manifest.from_frame(frame, root=None, check_files=False)
    capped = manifest.limit_subjects(100, max_images_per_subject=2)
    assert capped.images_per_subject().to_dict() == {"a": 2, "b": 1, "c": 2}
    # the first images of each subject, in manifest order
    assert sorted(capped.paths) == ["a/0.jpg", "a/1.jpg", "b/0.jpg", "c/0.jpg", "c/1.jpg"]
    # the budget and min_images count the images kept, and subjects are never split
    both = manifest.limit_subjects(4, seed=3, min_images=2, max_images_per_subject=2)
    assert both.images_per_subject().to_dict() == {"a": 2, "c": 2}
    with pytest.raises(ValueError, match="max_images_per_subject"):
        manifest.limit_subjects(4, max_images_per_subject=0)


# ---------------------------------------------------------------- LFW
@pytest.mark.lfw
def test_load_lfw_labels(lfw_dir: Path) -> None:
    manifest = load_lfw(lfw_dir)
    assert manifest.n_images == 13233
    assert manifest.n_subjects == 5749
    frame = manifest.frame.set_index("path")
    assert frame.loc["George_W_Bush/George_W_Bush_0001.jpg", "sex"] == "male"
    assert frame.loc["George_W_Bush/George_W_Bush_0001.jpg", "subject_id"] == "George_W_Bush"
    sex = manifest.frame["sex"].value_counts()
    # 13,229 images are listed; 5 names in both lists and 4 in neither are unknown.
    assert sex[UNKNOWN] == 9
    assert sex["male"] + sex["female"] == 13224
    ethnicity = manifest.subject_attributes(["ethnicity"])["ethnicity"]
    assert (ethnicity != UNKNOWN).sum() == 866
    assert ethnicity["Sidney_Poitier"] == "african"
    assert ethnicity["Tracee_Ellis_Ross"] == "mixed"


@pytest.mark.lfw
def test_load_lfw_user_download_layout_without_labels(lfw_dir: Path, tmp_path: Path) -> None:
    """A user's download (lfw-deepfunneled/<Name>/…, no labels) loads with unknown labels."""
    download = tmp_path / "download" / "lfw-deepfunneled"
    source = find_lfw_images(lfw_dir)
    for person in ("Aaron_Eckhart", "George_W_Bush", "Zico"):
        # links, not copies: LFW images never enter the repository or a test's outputs
        (download / person).mkdir(parents=True)
        for image in sorted((source / person).iterdir())[:3]:
            (download / person / image.name).symlink_to(image)
    with pytest.warns(ManifestWarning, match="no LFW labels folder"):
        manifest = load_lfw(tmp_path / "download")
    assert manifest.n_images == 7
    assert set(manifest.frame["sex"]) == {UNKNOWN}
    assert set(manifest.frame["ethnicity"]) == {UNKNOWN}
    with pytest.raises(ManifestError, match="pairs file not found"):
        read_lfw_pairs(tmp_path / "download")


@pytest.mark.lfw
def test_lfw_pairs(lfw_dir: Path) -> None:
    pairs = read_lfw_pairs(lfw_dir)
    assert len(pairs.frame) == 6000
    assert pairs.n_folds == 10
    assert pairs.mated.sum() == 3000
    first = pairs.frame.iloc[0]
    assert first["path_a"] == "Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert first["path_b"] == "Abel_Pacheco/Abel_Pacheco_0004.jpg"
    assert (pairs.frame.groupby("fold")["mated"].sum() == 300).all()


def test_not_lfw_is_a_clear_error(folder_dataset: Path) -> None:
    with pytest.raises(ManifestError, match="no LFW images found"):
        load_lfw(folder_dataset)


# ---------------------------------------------------------------- cache + embedding
@pytest.fixture(scope="module")
def face_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real faces from the insightface wheel laid out as subjects, plus a broken file."""
    import insightface

    source = Path(insightface.__file__).parent / "data" / "images"
    if not (source / "t1.jpg").is_file():
        pytest.skip("insightface sample images not installed")
    root = tmp_path_factory.mktemp("faces")
    (root / "group").mkdir()
    (root / "group" / "t1.jpg").symlink_to(source / "t1.jpg")
    (root / "hanks").mkdir()
    (root / "hanks" / "a.png").symlink_to(source / "Tom_Hanks_54745.png")
    (root / "noise").mkdir()
    _write_noise_jpeg(root / "noise" / "n.jpg", 5)
    (root / "broken").mkdir()
    (root / "broken" / "b.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    return root


def test_embedding_cache_resumes_and_caches_failures(
    face_images: Path, tmp_path: Path, dlib_engine
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        manifest = load_folder(face_images)
    cache_path = tmp_path / "cache" / "embeddings.sqlite"
    seen: list[tuple[int, int]] = []
    with EmbeddingCache(cache_path) as cache:
        first = embed_manifest(
            manifest, dlib_engine, cache, progress=lambda d, t: seen.append((d, t))
        )
        key = engine_cache_key(dlib_engine)
        assert cache.count(key) == 4
    assert seen[-1] == (4, 4)
    assert first.n_computed == 4
    by_path = dict(zip(manifest.paths, range(len(manifest))))
    group = by_path["group/t1.jpg"]
    assert first.ok[group] and first.n_faces[group] >= 4  # t1.jpg is a group photo
    assert first.ok[by_path["hanks/a.png"]]
    assert np.isclose(np.linalg.norm(first.vectors[by_path["hanks/a.png"]]), 1.0, atol=1e-4)
    assert first.failure[by_path["noise/n.jpg"]] == FAILURE_NO_FACE
    assert first.failure[by_path["broken/b.jpg"]].startswith("unreadable image")
    assert first.n_failed == 2

    # A second run computes nothing: embeddings and failures both come from the cache.
    with EmbeddingCache(cache_path) as cache:
        second = embed_manifest(manifest, dlib_engine, cache)
    assert second.n_computed == 0
    np.testing.assert_array_equal(second.vectors, first.vectors)
    np.testing.assert_array_equal(second.failure, first.failure)

    # The face choice is part of the key: a different rule does not reuse the entries.
    assert engine_cache_key(dlib_engine, "central") != key


def test_embedding_cache_interrupted_run_keeps_finished_work(
    face_images: Path, tmp_path: Path, dlib_engine
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        manifest = load_folder(face_images)

    class Stop(Exception):
        pass

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise Stop

    cache_path = tmp_path / "c.sqlite"
    with EmbeddingCache(cache_path) as cache, pytest.raises(Stop):
        embed_manifest(manifest, dlib_engine, cache, progress=stop_after_two)
    with EmbeddingCache(cache_path) as cache:
        assert cache.count() == 2
        resumed = embed_manifest(manifest, dlib_engine, cache)
    assert resumed.n_computed == 2


def test_embedding_in_two_processes_matches_one(face_images: Path, dlib_engine) -> None:
    from lfr_eval.faces import load_engine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        manifest = load_folder(face_images)
    single = embed_manifest(manifest, dlib_engine)
    double = embed_manifest(
        manifest, dlib_engine, workers=2, engine_factory=functools.partial(load_engine, "dlib")
    )
    np.testing.assert_allclose(double.vectors, single.vectors, atol=1e-6)
    np.testing.assert_array_equal(double.ok, single.ok)


def test_workers_do_not_rerun_a_streamlit_page(
    face_images: Path, dlib_engine, tmp_path: Path, monkeypatch
) -> None:
    """Streamlit runs pages as ``__main__``; spawned workers must not re-run the page."""
    import types

    from lfr_eval.faces import load_engine

    page = tmp_path / "page.py"
    page.write_text("import _module_only_the_app_has\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        manifest = load_folder(face_images)
    double = embed_manifest(
        manifest, dlib_engine, workers=2, engine_factory=functools.partial(load_engine, "dlib")
    )
    assert double.n_computed == len(manifest.frame)
    assert sys.modules["__main__"] is fake_main


def test_corrupt_or_foreign_cache_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CacheError, match="delete it"):
        EmbeddingCache(bad)
    future = tmp_path / "future.sqlite"
    db = sqlite3.connect(future)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    db.commit()
    db.close()
    with pytest.raises(CacheError, match="layout version 99"):
        EmbeddingCache(future)


# --- load_dataset_subset: the one call the notebooks start with -------------------------------


def test_load_dataset_subset_missing_lfw_says_where(tmp_path):
    from lfr_eval.datasets import load_dataset_subset
    from lfr_eval.errors import ManifestError

    with pytest.raises(ManifestError, match="LFR_LFW_DIR"):
        load_dataset_subset(None, tmp_path / "no-such-lfw")


def test_load_dataset_subset_refuses_missing_attribute(lfw_dir):
    from lfr_eval.datasets import load_dataset_subset
    from lfr_eval.errors import ManifestError

    with pytest.raises(ManifestError, match="age_group"):
        load_dataset_subset(None, lfw_dir, required_attributes=["age_group"])


def test_load_dataset_subset_labelled_only_with_subset(lfw_dir):
    from lfr_eval.datasets import load_dataset_subset

    full = load_dataset_subset(None, lfw_dir)
    # without a subset, unlabelled images stay (as "unknown")
    assert (full.frame["ethnicity"] == "unknown").any()
    part = load_dataset_subset(
        None, lfw_dir, subset=200, seed=3, max_images_per_subject=4, labelled_by="ethnicity"
    )
    assert 0 < len(part.frame) <= 200
    assert not (part.frame["ethnicity"] == "unknown").any()
    assert part.frame.groupby("subject_id").size().max() <= 4
    again = load_dataset_subset(
        None, lfw_dir, subset=200, seed=3, max_images_per_subject=4, labelled_by="ethnicity"
    )
    assert list(again.frame["path"]) == list(part.frame["path"])
