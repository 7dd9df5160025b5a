"""Roles in manifests: an optional ``role`` column overrides the seeded split (issue 12, item 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfr_eval.datasets import Manifest, read_manifest
from lfr_eval.errors import ManifestError, ProtocolError
from lfr_eval.protocols import build_npl_protocol, build_open_set_protocol


def _table(tmp_path: Path) -> pd.DataFrame:
    """Two sources: a watchlist source (w*: enrol + mated), strangers (s*), fillers (f*) and
    some people without a role (p*) left to the seed."""
    rows = []
    for i in range(4):
        rows += [
            (f"w{i}/a.jpg", f"w{i}", "enrol", "src-y"),
            (f"w{i}/b.jpg", f"w{i}", "mated", "src-y"),
        ]
        rows += [(f"w{i}/c.jpg", f"w{i}", "mated", "src-y")]
    for i in range(5):
        rows += [(f"s{i}/a.jpg", f"s{i}", "non_mated", "src-x")]
    for i in range(6):
        rows += [
            (f"f{i}/a.jpg", f"f{i}", "filler", "src-z"),
            (f"f{i}/b.jpg", f"f{i}", "filler", "src-z"),
        ]
    for i in range(6):
        rows += [(f"p{i}/a.jpg", f"p{i}", "", "src-x"), (f"p{i}/b.jpg", f"p{i}", "", "src-x")]
    table = pd.DataFrame(rows, columns=["path", "subject_id", "role", "source"])
    for path in table["path"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(path.encode())  # stand-in bytes, not a face
    return table


def test_role_column_round_trip(tmp_path: Path) -> None:
    table = _table(tmp_path)
    manifest = Manifest.from_frame(table, tmp_path, name="roles")
    assert manifest.has_roles and manifest.attributes == ("source",)  # role is no attribute
    for suffix in ("csv", "parquet"):
        path = manifest.write(tmp_path / f"manifest.{suffix}")
        again = read_manifest(path)
        assert list(again.roles) == list(manifest.roles)
        assert again.dataset_hash() == manifest.dataset_hash()
    # roles are part of what was evaluated: they change the dataset hash
    without = Manifest.from_frame(table.drop(columns="role"), tmp_path, name="roles")
    assert not without.has_roles and without.dataset_hash() != manifest.dataset_hash()
    # an all-empty role column is no role column (the hash stays the same)
    blank = Manifest.from_frame(table.assign(role=""), tmp_path, name="roles")
    assert not blank.has_roles and blank.dataset_hash() == without.dataset_hash()


def test_open_set_keeps_roles_and_splits_the_rest_by_seed(tmp_path: Path) -> None:
    manifest = Manifest.from_frame(_table(tmp_path), tmp_path)
    protocol = build_open_set_protocol(manifest, seed=3, enrolled_fraction=0.5)
    subjects = manifest.subject_ids
    roles = manifest.roles
    role_of = {
        "enrolment": protocol.enrolment,
        "mated": protocol.mated,
        "non_mated": protocol.non_mated,
    }
    # every role given is honoured
    assert set(np.flatnonzero(roles == "enrol")) <= set(protocol.enrolment)
    assert set(np.flatnonzero(roles == "filler")) <= set(protocol.enrolment)  # padding
    assert set(np.flatnonzero(roles == "mated")) == set(protocol.mated) & set(
        np.flatnonzero(roles != "")
    )
    assert set(np.flatnonzero(roles == "non_mated")) <= set(protocol.non_mated)
    # role-less subjects are split by the seed: some enrolled, some strangers, never both
    free = {s for s in subjects[roles == ""]}
    listed = set(subjects[protocol.enrolment]) & free
    strangers = set(subjects[protocol.non_mated]) & free
    assert listed and strangers and not listed & strangers
    assert not set(subjects[role_of["non_mated"]]) & set(subjects[protocol.enrolment])
    assert protocol.watchlist_size == 4 + 6 + len(listed)
    # the same seed gives the same split
    again = build_open_set_protocol(manifest, seed=3, enrolled_fraction=0.5)
    np.testing.assert_array_equal(again.enrolment, protocol.enrolment)


def test_npl_takes_its_fillers_from_role_filler(tmp_path: Path) -> None:
    manifest = Manifest.from_frame(_table(tmp_path), tmp_path)
    protocol = build_npl_protocol(manifest, seed=1, volunteer_fraction=0.5)
    subjects = manifest.subject_ids
    assert sorted(subjects[protocol.fillers]) == [f"f{i}" for i in range(6)]  # one image each
    assert {f"w{i}" for i in range(4)} <= set(subjects[protocol.enrolment])
    assert {f"s{i}" for i in range(5)} <= set(subjects[protocol.non_mated])
    # role-less people who do not volunteer are strangers, never fillers
    free = {f"p{i}" for i in range(6)}
    assert not free & set(subjects[protocol.fillers])
    assert free <= set(subjects[protocol.enrolment]) | set(subjects[protocol.non_mated])


def test_manifest_without_roles_splits_as_before(tmp_path: Path) -> None:
    table = _table(tmp_path).drop(columns="role")
    manifest = Manifest.from_frame(table, tmp_path)
    a = build_npl_protocol(manifest, seed=5)
    b = build_npl_protocol(Manifest.from_frame(table.assign(role=None), tmp_path), seed=5)
    for part in ("enrolment", "mated", "fillers", "non_mated"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.assign(role=t["role"].replace({"enrol": "watchlist"})), "unknown role"),
        (lambda t: t.assign(role=np.where(t["path"] == "w0/b.jpg", "", t["role"])), "some images"),
        (
            lambda t: t.assign(role=np.where(t["path"] == "w0/b.jpg", "non_mated", t["role"])),
            "mixes roles",
        ),
    ],
)
def test_bad_roles_are_clear_errors(tmp_path: Path, edit, message) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_frame(edit(_table(tmp_path)), tmp_path)


def test_roles_that_leave_a_side_empty(tmp_path: Path) -> None:
    table = _table(tmp_path)
    strangers_only = table[table["role"].isin(["non_mated"])]
    with pytest.raises(ProtocolError, match="nobody is on the watchlist"):
        build_open_set_protocol(Manifest.from_frame(strangers_only, tmp_path))
    listed_only = table[table["role"].isin(["enrol", "mated"])]
    with pytest.raises(ProtocolError, match="no subject is left for non-mated searches"):
        build_open_set_protocol(Manifest.from_frame(listed_only, tmp_path))


def test_the_readme_worked_example(tmp_path: Path) -> None:
    """The worked example in datasets/README.md parses and splits as the README says."""
    readme = (Path(__file__).parents[1] / "datasets" / "README.md").read_text()
    block = readme.split("**Worked example.**", 1)[1].split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "manifest.csv").write_text(block)
    table = pd.read_csv(tmp_path / "manifest.csv")
    for path in table["path"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(path.encode())
    manifest = read_manifest(tmp_path / "manifest.csv")
    assert manifest.attributes == ("source", "sex")
    npl = build_npl_protocol(manifest)
    ids = manifest.subject_ids
    assert sorted(ids[npl.enrolment]) == ["P001", "P002"]
    assert sorted(ids[npl.fillers]) == ["F001", "F002"]
    assert sorted(ids[npl.non_mated]) == ["S001", "S002"]
    assert len(npl.mated) == 3
    open_set = build_open_set_protocol(manifest)
    assert sorted(set(ids[open_set.enrolment])) == ["F001", "F002", "P001", "P002"]
    assert sorted(ids[open_set.non_mated]) == ["S001", "S002"]
