"""The watchlist store: subjects, templates, audit, content hash, deletion, bundles, enrolment.

Store mechanics are tested with random unit embeddings under a made-up engine id (fast); the
enrolment round trip and bad-input refusals use the real dlib engine on real LFW and
insightface images.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sqlite3
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from lfr_eval.errors import ManifestError, WatchlistError
from lfr_eval.faces import EngineId, Face, FaceQuality, ModelFile, load_image
from lfr_eval.watchlist import (
    KEEP,
    SubjectInfo,
    Watchlist,
    enrol_files,
    enrol_folder,
    enrol_manifest,
    parse_expiry,
    read_bundle,
)

ENGINE_A = EngineId("fake", (ModelFile("recognizer", "rec_a.onnx", "a" * 64),), 16)
ENGINE_A_OTHER_BACKEND = EngineId(
    "fake-torch",
    (ModelFile("detector", "det.onnx", "d" * 64), ModelFile("recognizer", "rec_a.onnx", "a" * 64)),
    16,
)
ENGINE_B = EngineId("fake", (ModelFile("recognizer", "rec_b.onnx", "b" * 64),), 16)
QUALITY = FaceQuality(
    size_px=40.0, box_size_px=90.0, blur=120.0, yaw_deg=1.0, pitch_deg=2.0, roll_deg=0.5
)


def unit(rng: np.random.Generator, d: int = 16) -> np.ndarray:
    x = rng.standard_normal(d).astype(np.float32)
    return x / np.linalg.norm(x)


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def populated(tmp_path: Path) -> Watchlist:
    """A watchlist with three subjects (one with two templates), random embeddings."""
    rng = np.random.default_rng(0)
    wl = Watchlist(tmp_path / "wl.sqlite")
    wl.add_subject(SubjectInfo("case-1", "Jane Doe", "wanted", "warrant 17/2024"))
    wl.add_template("case-1", unit(rng), ENGINE_A, image_sha256="1" * 64, quality=QUALITY)
    wl.add_template("case-1", unit(rng), ENGINE_A, image_sha256="2" * 64)
    wl.add_subject(SubjectInfo("case-2", "John Roe", "missing person", "reported missing"))
    wl.add_template("case-2", unit(rng), ENGINE_A_OTHER_BACKEND, image_sha256="3" * 64)
    wl.add_subject(SubjectInfo("case-3", expires=parse_expiry("2001-01-01")))
    wl.add_template("case-3", unit(rng), ENGINE_A)
    return wl


# ---------------------------------------------------------------------- store basics
def test_store_round_trip_and_expiry(populated: Watchlist) -> None:
    # reopen from disk (a long grace: case-3 expired in 2001 and would be purged on open)
    wl = Watchlist(populated.path, create=False, expiry_grace=timedelta(days=365 * 100))
    subjects = {s.subject_id: s for s in wl.subjects()}
    assert set(subjects) == {"case-1", "case-2", "case-3"}
    assert subjects["case-1"].display_name == "Jane Doe"
    assert subjects["case-1"].n_templates == 2
    assert subjects["case-3"].display_name == "case-3"  # defaults to the id
    assert subjects["case-3"].is_expired() and not subjects["case-1"].is_expired()
    assert [s.subject_id for s in wl.subjects(include_expired=False)] == ["case-1", "case-2"]
    assert len(wl) == 3 and "case-2" in wl and "nobody" not in wl

    templates = wl.templates("case-1")
    assert [t.image_sha256 for t in templates] == ["1" * 64, "2" * 64]
    assert templates[0].quality == QUALITY and templates[1].quality is None
    assert templates[0].engine_id == ENGINE_A and not templates[0].has_image
    assert np.isclose(np.linalg.norm(templates[0].embedding), 1.0)

    # expired subjects are not searched by default
    matrix = wl.matrix(ENGINE_A)
    assert matrix.embeddings.shape == (3, 16) and matrix.embeddings.dtype == np.float32
    assert sorted(set(matrix.subject_ids)) == ["case-1", "case-2"]
    assert wl.matrix(ENGINE_A, include_expired=True).embeddings.shape == (4, 16)
    before = datetime(2000, 6, 1, tzinfo=timezone.utc)
    assert "case-3" in wl.matrix(ENGINE_A, at=before).subject_ids


def test_one_embedding_space_per_watchlist(populated: Watchlist) -> None:
    rng = np.random.default_rng(1)
    hash_before = populated.content_hash()
    # same recognizer weights through another backend mix; another recognizer does not
    assert populated.embedding_space == ENGINE_A.recognizer_key
    assert len(populated.templates_for(ENGINE_A_OTHER_BACKEND)) == 4
    assert populated.templates_for(ENGINE_B) == []
    with pytest.raises(WatchlistError, match="cannot be compared"):
        populated.add_template("case-1", unit(rng), ENGINE_B)
    with pytest.raises(WatchlistError, match="cannot be compared"):
        populated.matrix(ENGINE_B)
    with pytest.raises(WatchlistError, match="cannot be compared"):
        populated.search_index(ENGINE_B)
    index = populated.search_index(ENGINE_A)
    with pytest.raises(WatchlistError, match="different engines"):
        index.search(unit(rng), embedding_space=ENGINE_B.recognizer_key)
    assert populated.content_hash() == hash_before


def test_add_template_validates(populated: Watchlist) -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(WatchlistError, match="no subject 'ghost'"):
        populated.add_template("ghost", unit(rng), ENGINE_A)
    with pytest.raises(WatchlistError, match="does not match engine"):
        populated.add_template("case-1", unit(rng, 8), ENGINE_A)
    with pytest.raises(WatchlistError, match="not unit-norm"):
        populated.add_template("case-1", np.ones(16, np.float32), ENGINE_A)
    with pytest.raises(WatchlistError, match="already on this watchlist"):
        populated.add_subject(SubjectInfo("case-1"))
    with pytest.raises(WatchlistError, match="invalid subject id"):
        SubjectInfo(" padded ")


def test_failed_change_leaves_store_unchanged(populated: Watchlist) -> None:
    rng = np.random.default_rng(9)

    def face(embedding: np.ndarray) -> Face:
        return Face(
            box=np.array([0.0, 0.0, 10.0, 10.0]),
            landmarks=np.zeros((5, 2)),
            det_score=1.0,
            crop=np.zeros((8, 8, 3), np.uint8),
            quality=QUALITY,
            embedding=embedding,
        )

    state = (populated.content_hash(), len(populated.audit_log()), file_sha(populated.path))
    # the second face is broken: neither the subject nor the first template may be written
    with pytest.raises(WatchlistError, match="does not match engine"):
        populated.enrol_faces(
            SubjectInfo("snap-1", "Webcam snapshot"),
            [face(unit(rng)), face(unit(rng, 8))],
            ENGINE_A,
        )
    assert (populated.content_hash(), len(populated.audit_log()), file_sha(populated.path)) == state
    ids = populated.enrol_faces(SubjectInfo("snap-1"), [face(unit(rng)), face(unit(rng))], ENGINE_A)
    assert len(ids) == 2 and populated.subject("snap-1").n_templates == 2


def test_content_hash_is_order_independent_and_covers_content(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    e1, e2 = unit(rng), unit(rng)
    one, two = Watchlist(tmp_path / "one.sqlite"), Watchlist(tmp_path / "two.sqlite")
    one.add_subject(SubjectInfo("a", "A", "wanted"))
    one.add_subject(SubjectInfo("b", "B", "wanted"))
    one.add_template("a", e1, ENGINE_A, image_sha256="f" * 64)
    one.add_template("b", e2, ENGINE_A)
    two.add_subject(SubjectInfo("b", "B", "wanted"))
    two.add_template("b", e2, ENGINE_A_OTHER_BACKEND)  # backend name is not content
    two.add_subject(SubjectInfo("a", "A", "wanted"))
    two.add_template("a", e1, ENGINE_A, image_sha256="f" * 64)
    assert one.content_hash() == two.content_hash() == one.verify()
    assert one.watchlist_id != two.watchlist_id

    versions = {one.content_hash()}
    one.update_subject("a", category="test volunteer")
    versions.add(one.content_hash())
    one.update_subject("a", expires=parse_expiry("2030-01-01"))
    versions.add(one.content_hash())
    one.update_subject("a", display_name="A. N. Other", reason=KEEP)
    versions.add(one.content_hash())
    assert len(versions) == 4
    assert one.subject("a").category == "test volunteer"
    # each audit entry carries the version the change produced
    assert one.audit_log()[-1].content_hash == one.content_hash()


def test_audit_log_records_every_change_without_personal_data(populated: Watchlist) -> None:
    populated.update_subject("case-2", expires=parse_expiry("2099-12-31"))
    populated.remove_subjects(["case-2"])
    entries = populated.audit_log()
    actions = [e.action for e in entries]
    assert actions[0] == "create"
    assert actions.count("add_subject") == 3 and actions.count("add_template") == 4
    assert actions[-2:] == ["update_subject", "remove_subject"]
    # subjects appear by pseudonym (keyed hash), image hashes by image_ref: no name, no sha
    assert entries[-1].subject_id == populated.subject_ref("case-2") != "case-2"
    assert entries[-1].details["templates"] == 1
    assert "case-2" not in json.dumps([e.subject_id for e in entries])
    assert "1" * 64 not in json.dumps([e.details for e in entries])
    assert all(e.actor for e in entries)
    text = json.dumps([e.details for e in entries])
    assert "Jane Doe" not in text and "warrant" not in text
    assert populated.audit_log(limit=2) == entries[-2:]


def test_removal_really_deletes(populated: Watchlist) -> None:
    secret = populated.templates("case-1")[0].embedding.astype("<f4").tobytes()
    ref = populated.subject_ref("case-1")
    with sqlite3.connect(populated.path) as con:
        sealed = [
            bytes(r[0])
            for r in con.execute(
                "SELECT sealed FROM templates WHERE subject_ref = ? UNION ALL "
                "SELECT sealed FROM subjects WHERE ref = ?",
                (ref, ref),
            )
        ]
    assert len(sealed) == 3 and all(blob in populated.path.read_bytes() for blob in sealed)
    assert secret not in populated.path.read_bytes()  # encrypted at rest
    hash_before = populated.content_hash()
    with pytest.raises(WatchlistError, match="no subject 'ghost'"):
        populated.remove_subjects(["case-1", "ghost"])  # all or nothing
    assert populated.content_hash() == hash_before and "case-1" in populated

    assert populated.remove_subjects(["case-1"]) == 2
    raw = populated.path.read_bytes()
    assert secret not in raw and b"Jane Doe" not in raw and b"warrant 17/2024" not in raw
    assert not any(blob in raw for blob in sealed)  # the sealed rows are gone, not just unlinked
    assert "case-1" not in populated
    with sqlite3.connect(populated.path) as con:
        assert (
            con.execute("SELECT COUNT(*) FROM templates WHERE subject_ref=?", (ref,)).fetchone()[0]
            == 0
        )

    template = populated.templates("case-2")[0]
    populated.remove_templates([template.template_id])
    assert populated.subject("case-2").n_templates == 0
    assert populated.purge_expired() == ("case-3",)
    assert [s.subject_id for s in populated.subjects()] == ["case-2"]


def test_not_a_watchlist(tmp_path: Path) -> None:
    with pytest.raises(WatchlistError, match="no watchlist at"):
        Watchlist(tmp_path / "missing.sqlite", create=False)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(WatchlistError, match="not an LFR watchlist"):
        Watchlist(junk)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    with pytest.raises(WatchlistError, match="not an LFR watchlist"):
        Watchlist(other)


def test_default_location_is_in_the_workspace(workspace: Path) -> None:
    wl = Watchlist.open(workspace=workspace)
    assert wl.path == workspace / "watchlist.sqlite" and wl.path.is_file()


def test_parse_expiry() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_expiry("2025-06-30") == datetime(2025, 7, 1, tzinfo=timezone.utc)
    assert parse_expiry("7d", now=now) == now + timedelta(days=7)
    assert parse_expiry("24h", now=now) == now + timedelta(hours=24)
    assert parse_expiry("2025-06-30T18:00:00+01:00") == datetime(
        2025, 6, 30, 17, tzinfo=timezone.utc
    )
    assert parse_expiry(None) is None and parse_expiry("") is None
    with pytest.raises(WatchlistError, match="cannot read expiry"):
        parse_expiry("next tuesday")


def test_search_while_enrolling_from_another_thread(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    wl = Watchlist(tmp_path / "wl.sqlite")
    wl.add_subject(SubjectInfo("seed"))
    wl.add_template("seed", unit(rng), ENGINE_A)
    vectors = [unit(rng) for _ in range(30)]

    def enrol() -> None:
        for i, vector in enumerate(vectors):
            wl.add_subject(SubjectInfo(f"s{i}"))
            wl.add_template(f"s{i}", vector, ENGINE_A)

    sizes = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(enrol)
        while not job.done():
            index = wl.search_index(ENGINE_A, backend="numpy")  # immutable snapshot
            sizes.append(index.search(vectors[0], k=1).watchlist_size)
        job.result()  # re-raises any error of the enrolling thread
    assert sizes == sorted(sizes)  # snapshots only grow
    final = wl.search_index(ENGINE_A, backend="numpy").search(np.stack(vectors), k=1)
    assert final.subject_ids[:, 0].tolist() == [f"s{i}" for i in range(30)]


# ---------------------------------------------------------------------- bundles
def test_bundle_round_trip_dir_and_zip(populated: Watchlist, tmp_path: Path) -> None:
    for name in ("bundle", "bundle.zip"):
        info = populated.export_bundle(tmp_path / name)
        assert info.content_hash == populated.content_hash()
        assert (info.n_subjects, info.n_templates, info.n_images) == (3, 4, 0)
        copy = Watchlist(tmp_path / f"copy-{name}.sqlite")
        imported = copy.import_bundle(tmp_path / name, allow_unsigned=True)
        assert imported.content_hash == populated.content_hash() == copy.content_hash()
        assert copy.watchlist_id == populated.watchlist_id  # a fresh copy takes the id
        assert [s.subject_id for s in copy.subjects()] == ["case-1", "case-2", "case-3"]
        assert copy.subject("case-3").is_expired()
        assert copy.templates("case-1")[0].quality == QUALITY
        assert {e.backend for e in copy.engine_ids()} == {"fake", "fake-torch"}
        assert copy.audit_log()[-1].action == "import_bundle"
    assert populated.audit_log()[-1].action == "export_bundle"
    with pytest.raises(WatchlistError, match="already exists"):
        populated.export_bundle(tmp_path / "bundle")
    populated.export_bundle(tmp_path / "bundle", overwrite=True)


def test_bundle_images_only_when_asked(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    wl = Watchlist(tmp_path / "wl.sqlite")
    wl.add_subject(SubjectInfo("a"))
    image = b"\xff\xd8 pretend jpeg bytes"
    sha = hashlib.sha256(image).hexdigest()
    wl.add_template("a", unit(rng), ENGINE_A, image_sha256=sha, image=image, image_ext=".jpg")
    assert wl.image(wl.templates()[0].template_id) == (image, ".jpg")

    plain = wl.export_bundle(tmp_path / "plain")
    assert plain.n_images == 0 and not (tmp_path / "plain" / "images").exists()
    assert image not in b"".join(p.read_bytes() for p in (tmp_path / "plain").rglob("*.*"))
    full = wl.export_bundle(tmp_path / "full.zip", include_images=True)
    assert full.n_images == 1
    copy = Watchlist(tmp_path / "copy.sqlite")
    copy.import_bundle(tmp_path / "full.zip", allow_unsigned=True)
    assert copy.image(copy.templates()[0].template_id) == (image, ".jpg")


def _tamper_cases(bundle: Path) -> dict[str, object]:
    """name -> function that damages a copy of a directory bundle."""

    def edit_manifest(fn: Callable[[dict, Path], None]) -> Callable[[Path], None]:
        def apply(path: Path) -> None:
            manifest = json.loads((path / "manifest.json").read_text())
            fn(manifest, path)
            (path / "manifest.json").write_text(json.dumps(manifest))

        return apply

    def flip_embedding(path: Path) -> None:
        data = bytearray((path / "embeddings.npy").read_bytes())
        data[-3] ^= 0x40
        (path / "embeddings.npy").write_bytes(bytes(data))

    def flip_embedding_and_fix_sha(manifest: dict, path: Path) -> None:
        flip_embedding(path)
        manifest["files"]["embeddings.npy"] = file_sha(path / "embeddings.npy")

    def rename(manifest: dict, path: Path) -> None:
        manifest["subjects"][0]["display_name"] = "Somebody Else"

    def move_template(manifest: dict, path: Path) -> None:
        manifest["templates"][0]["subject_id"] = "case-2"

    def other_engine(manifest: dict, path: Path) -> None:
        for engine in manifest["engines"]:
            engine["models"][-1]["sha256"] = "c" * 64
        manifest["embedding_space"] = "rec_a.onnx@cccccccccccccccc"

    def drop_member(manifest: dict, path: Path) -> None:
        (path / "embeddings.npy").unlink()

    def extra_member(path: Path) -> None:
        (path / "extra.txt").write_text("smuggled")

    def bad_version(manifest: dict, path: Path) -> None:
        manifest["format_version"] = 99

    def garbage_manifest(path: Path) -> None:
        (path / "manifest.json").write_text("{not json")

    return {
        "embedding bytes changed": (flip_embedding, "sha256 of embeddings.npy"),
        "embedding changed, file hash updated": (
            edit_manifest(flip_embedding_and_fix_sha),
            "does not match its content hash",
        ),
        "subject renamed": (edit_manifest(rename), "does not match its content hash"),
        "template moved to another subject": (
            edit_manifest(move_template),
            "does not match its content hash",
        ),
        "other engine": (edit_manifest(other_engine), "does not match its content hash"),
        "member missing": (edit_manifest(drop_member), "embeddings.npy is missing"),
        "unlisted member": (extra_member, "unlisted file"),
        "future format": (edit_manifest(bad_version), "malformed"),
        "manifest not json": (garbage_manifest, "not valid JSON"),
    }


def test_tampered_bundles_are_refused_and_store_unchanged(
    populated: Watchlist, tmp_path: Path
) -> None:
    original = tmp_path / "bundle"
    populated.export_bundle(original)
    target = Watchlist(tmp_path / "target.sqlite")
    target.add_subject(SubjectInfo("already-here"))
    target.add_template("already-here", unit(np.random.default_rng(6)), ENGINE_A)
    state = (target.content_hash(), len(target.audit_log()), file_sha(target.path))

    for name, (damage, message) in _tamper_cases(original).items():
        copy = tmp_path / f"tampered-{name.replace(' ', '_').replace(',', '')}"
        shutil.copytree(original, copy)
        damage(copy)
        with pytest.raises(WatchlistError, match=message) as caught:
            target.import_bundle(copy, allow_unsigned=True)
        assert "refused" in str(caught.value), name
        assert "watchlist was not changed" in str(caught.value), name
        assert (target.content_hash(), len(target.audit_log()), file_sha(target.path)) == state

    # a zip with one byte changed fails its CRC or its hashes
    zipped = tmp_path / "bundle.zip"
    populated.export_bundle(zipped)
    data = bytearray(zipped.read_bytes())
    with zipfile.ZipFile(zipped) as archive:
        info = archive.getinfo("embeddings.npy")
    data[info.header_offset + 30 + len(info.filename) + info.file_size - 5] ^= 0x01
    zipped.write_bytes(bytes(data))
    with pytest.raises(WatchlistError, match="refused"):
        target.import_bundle(zipped, allow_unsigned=True)
    assert file_sha(target.path) == state[2]


def test_bundle_refused_for_other_space_clash_or_unexpected_hash(
    populated: Watchlist, tmp_path: Path
) -> None:
    rng = np.random.default_rng(8)
    populated.export_bundle(tmp_path / "bundle")
    content = populated.content_hash()

    other_space = Watchlist(tmp_path / "b.sqlite")
    other_space.add_subject(SubjectInfo("x"))
    other_space.add_template("x", unit(rng), ENGINE_B)
    with pytest.raises(WatchlistError, match="cannot be compared"):
        other_space.import_bundle(tmp_path / "bundle", allow_unsigned=True)

    clash = Watchlist(tmp_path / "clash.sqlite")
    clash.add_subject(SubjectInfo("case-2"))
    before = file_sha(clash.path)
    with pytest.raises(WatchlistError, match="'case-2' already on this watchlist"):
        clash.import_bundle(tmp_path / "bundle", allow_unsigned=True)
    assert file_sha(clash.path) == before

    fresh = Watchlist(tmp_path / "fresh.sqlite")
    with pytest.raises(WatchlistError, match="not the expected"):
        fresh.import_bundle(
            tmp_path / "bundle", expected_content_hash="0" * 64, allow_unsigned=True
        )
    assert len(fresh) == 0
    fresh.import_bundle(
        tmp_path / "bundle", expected_content_hash=content.upper(), allow_unsigned=True
    )
    assert fresh.content_hash() == content

    assert read_bundle(tmp_path / "bundle", allow_unsigned=True).content_hash == content
    with pytest.raises(WatchlistError, match="bundle not found"):
        read_bundle(tmp_path / "nowhere.zip")


# ---------------------------------------------------------------------- real enrolment (dlib)
def _lfw_people(lfw_dir: Path, n: int) -> list[Path]:
    """The first n people (alphabetically) with at least two images."""
    people = []
    for person in sorted((lfw_dir / "images").iterdir()):
        if len(list(person.glob("*.jpg"))) >= 2:
            people.append(person)
            if len(people) == n:
                break
    return people


@pytest.mark.lfw
def test_enrol_identify_round_trip_on_lfw(lfw_dir: Path, dlib_engine, tmp_path: Path) -> None:
    people = _lfw_people(lfw_dir, 12)
    manifest = tmp_path / "enrol.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject_id", "display_name", "category", "expires"])
        for person in people:
            first = min(person.glob("*.jpg"))
            writer.writerow([first, person.name, person.name.replace("_", " "), "test", ""])
    wl = Watchlist(tmp_path / "wl.sqlite")
    # LFW photos sometimes show a second face in the background: take the largest (central) one
    report = enrol_manifest(wl, dlib_engine, manifest, largest_face=True, category="unused")
    assert report.n_refused == 0, report.refused
    assert report.n_enrolled == 12 and len(report.new_subjects) == 12
    assert report.content_hash == wl.content_hash()
    assert wl.subject(people[0].name).category == "test"
    assert wl.embedding_space == dlib_engine.engine_id.recognizer_key
    template = wl.templates(people[0].name)[0]
    assert template.image_sha256 == file_sha(min(people[0].glob("*.jpg")))
    assert template.quality is not None and not template.has_image

    index = wl.search_index(dlib_engine.engine_id)
    probes, truth = [], []
    for person in people:
        second = sorted(person.glob("*.jpg"))[1]
        faces = dlib_engine.analyze(load_image(second))
        probes.append(faces[0].embedding)  # largest first
        truth.append(person.name)
    result = index.search(np.stack(probes), k=3, embedding_space=index.embedding_space)
    assert result.subject_ids[:, 0].tolist() == truth
    assert (result.rank_of(truth) == 1).all()


def _bad_inputs(folder: Path, lfw_dir: Path, insightface_images: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    real = lfw_dir / "images" / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg"
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8)
    text = folder / "notes.jpg"
    text.write_text("these are notes, not a photo\n")
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    no_face = folder / "upside_down.png"  # a real photo in which no face is detectable
    cv2.imwrite(str(no_face), cv2.imread(str(real))[::-1])
    group = folder / "t1.jpg"
    group.symlink_to(insightface_images / "t1.jpg")
    return {
        "unreadable_image": corrupt,
        "unreadable_image ": text,
        "unreadable_image  ": empty,
        "no_face": no_face,
        "several_faces": group,
        "unreadable_image   ": folder / "missing.jpg",
    }


@pytest.mark.lfw
def test_bad_enrolment_inputs_are_refused_and_store_unchanged(
    lfw_dir: Path, insightface_images: Path, dlib_engine, tmp_path: Path
) -> None:
    wl = Watchlist(tmp_path / "wl.sqlite")
    good = lfw_dir / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    enrol_files(wl, dlib_engine, SubjectInfo("peirsol", "Aaron Peirsol"), [good])
    state = (wl.content_hash(), len(wl.audit_log()), file_sha(wl.path))

    bad = _bad_inputs(tmp_path / "bad", lfw_dir, insightface_images)
    report = enrol_files(wl, dlib_engine, SubjectInfo("new-person"), list(bad.values()))
    assert report.n_enrolled == 0 and report.new_subjects == ()
    assert [r.kind for r in report.refused] == [k.strip() for k in bad]
    assert [r.source for r in report.refused] == [str(p) for p in bad.values()]
    reasons = [r.reason for r in report.refused]
    assert "not a readable image" in reasons[0] and "not a readable image" in reasons[1]
    assert "empty (0 bytes)" in reasons[2]
    assert "no face found" in reasons[3]
    assert "6 faces found" in reasons[4] and "largest" in reasons[4]
    assert "not found" in reasons[5]
    assert [r.exit_code for r in report.refused] == [3, 3, 3, 4, 4, 3]
    assert (wl.content_hash(), len(wl.audit_log()), file_sha(wl.path)) == state
    assert "new-person" not in wl

    # a mixed batch enrols the good file, refuses the rest; a repeat of an image is refused
    second = lfw_dir / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
    report = enrol_files(wl, dlib_engine, "peirsol", [bad["no_face"], second, second, good])
    assert [e.source for e in report.enrolled] == [str(second)]
    assert [r.kind for r in report.refused] == ["no_face", "duplicate", "duplicate"]
    assert "already enrolled (as subject 'peirsol')" in report.refused[2].reason
    assert wl.subject("peirsol").n_templates == 2

    # with the largest-face option the group photo is enrolled
    report = enrol_files(wl, dlib_engine, "group", [bad["several_faces"]], largest_face=True)
    assert report.n_enrolled == 1 and report.enrolled[0].n_faces == 6


@pytest.mark.lfw
def test_enrol_folder_and_manifest_errors(lfw_dir: Path, dlib_engine, tmp_path: Path) -> None:
    root = tmp_path / "people"
    for person in _lfw_people(lfw_dir, 3):
        (root / person.name).mkdir(parents=True)
        for image in sorted(person.glob("*.jpg"))[:2]:
            (root / person.name / image.name).symlink_to(image)  # never copy LFW images
    (root / "README.txt").write_text("stray file beside the subject folders")
    (root / "Aaron_Peirsol" / "notes.txt").write_text("not an image")

    wl = Watchlist(tmp_path / "wl.sqlite")
    report = enrol_folder(wl, dlib_engine, root, category="test", largest_face=True)
    assert report.n_enrolled == 6
    assert sorted((r.kind, Path(r.source).name) for r in report.refused) == [
        ("not_in_subject_folder", "README.txt"),
        ("unreadable_image", "notes.txt"),
    ]
    assert wl.subject("Aaron_Peirsol").display_name == "Aaron Peirsol"
    assert wl.subject("Aaron_Peirsol").n_templates == 2

    # another engine's watchlist refuses the whole batch before reading anything
    other = Watchlist(tmp_path / "other.sqlite")
    other.add_subject(SubjectInfo("x"))
    other.add_template("x", unit(np.random.default_rng(0), 128), ENGINE_B_128)
    with pytest.raises(WatchlistError, match="cannot be compared"):
        enrol_folder(other, dlib_engine, root)

    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("file,person\na.jpg,x\n")
    with pytest.raises(ManifestError, match="lacks column"):
        enrol_manifest(wl, dlib_engine, bad_csv)
    bad_csv.write_text("path,subject_id,display_name\na.jpg,x,One\nb.jpg,x,Two\n")
    with pytest.raises(ManifestError, match="different details"):
        enrol_manifest(wl, dlib_engine, bad_csv)
    with pytest.raises(ManifestError, match="no sub-folders"):
        enrol_folder(wl, dlib_engine, root / "Aaron_Peirsol")


ENGINE_B_128 = EngineId("fake", (ModelFile("recognizer", "rec_b.onnx", "b" * 64),), 128)
