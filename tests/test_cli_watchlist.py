"""``lfr-eval enrol``, ``watchlist …`` and ``identify``: help, output, exit codes, real faces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run

COMMANDS = [
    ["enrol"],
    ["identify"],
    ["watchlist"],
    ["watchlist", "list"],
    ["watchlist", "export"],
    ["watchlist", "import"],
    ["watchlist", "remove"],
    ["watchlist", "audit"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(capsys, command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert out.startswith("Usage: lfr-eval " + " ".join(command))
    description = out.split("\n\n")[1].strip()
    assert len(description) > 20  # a sentence, not an empty docstring


def test_usage_and_missing_watchlist_errors(capsys, tmp_path: Path) -> None:
    wl = tmp_path / "wl.sqlite"
    code, _, err = run(capsys, "enrol", "--watchlist", wl, "--folder", tmp_path, "a.jpg")
    assert code == 2 and "exactly one of" in err
    code, _, err = run(capsys, "enrol", "--watchlist", wl, "a.jpg")
    assert code == 2 and "--subject ID is required" in err
    code, _, err = run(capsys, "watchlist", "list", "--watchlist", wl)
    assert code == 7 and err.startswith("error: no watchlist at")
    assert not wl.exists()  # reading never creates a watchlist
    code, _, err = run(capsys, "identify", "--watchlist", wl, "x.jpg")
    assert code == 2 and "--threshold" in err
    code, _, err = run(capsys, "watchlist", "remove", "--watchlist", wl)
    assert code == 2


def _lfw_people(lfw_dir: Path, n: int) -> list[Path]:
    people = []
    for person in sorted((lfw_dir / "images").iterdir()):
        if len(list(person.glob("*.jpg"))) >= 3:
            people.append(person)
            if len(people) == n:
                break
    return people


@pytest.mark.lfw
def test_enrol_identify_export_import_remove(
    capsys, lfw_dir: Path, insightface_images: Path, tmp_path: Path
) -> None:
    wl = tmp_path / "deploy.sqlite"
    a, b, c = _lfw_people(lfw_dir, 3)
    a_images = sorted(a.glob("*.jpg"))

    # enrol two images of one subject
    code, out, _ = run(
        capsys, "enrol", "--watchlist", wl, "--subject", "case-A", "--name", "Person A",
        "--category", "test", "--reason", "CLI test", "--largest-face", "--json",
        a_images[0], a_images[1],
    )  # fmt: skip
    assert code == 0, out
    report = json.loads(out)
    assert [e["subject_id"] for e in report["enrolled"]] == ["case-A", "case-A"]
    assert report["refused"] == [] and report["new_subjects"] == ["case-A"]

    # a folder of two more people (symlinks: LFW images are never copied)
    folder = tmp_path / "people"
    for person in (b, c):
        (folder / person.name).mkdir(parents=True)
        first = min(person.glob("*.jpg"))
        (folder / person.name / first.name).symlink_to(first)
    code, out, _ = run(
        capsys, "enrol", "--watchlist", wl, "--folder", folder, "--largest-face", "--expires", "7d"
    )
    assert code == 0 and "2 enrolled, 0 refused, 2 new subjects" in out

    code, out, _ = run(capsys, "watchlist", "list", "--watchlist", wl, "--json")
    listing = json.loads(out)
    version = listing["content_hash"]
    subjects = {s["subject_id"]: s for s in listing["subjects"]}
    assert list(subjects) == sorted(["case-A", b.name, c.name])
    assert subjects["case-A"]["reason"] == "CLI test" and subjects["case-A"]["expires"] is None
    assert subjects[b.name]["expires"] is not None and subjects[b.name]["status"] == "active"
    assert listing["n_templates"] == 4 and listing["embedding_space"].startswith("dlib_face")

    # bad inputs: one refusal each, a stable exit code, and the watchlist unchanged
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    code, out, err = run(capsys, "enrol", "--watchlist", wl, "--subject", "x", empty)
    assert code == 3 and "image file is empty (0 bytes)" in err and "0 enrolled, 1 refused" in out
    code, out, err = run(
        capsys, "enrol", "--watchlist", wl, "--subject", "x", insightface_images / "t1.jpg"
    )
    assert code == 4 and "6 faces found" in err
    code, out, _ = run(capsys, "watchlist", "list", "--watchlist", wl, "--json")
    assert json.loads(out)["content_hash"] == version

    # identify: a third image of A alerts with A first; an unreadable file does not stop the rest
    code, out, err = run(
        capsys, "identify", "--watchlist", wl, "--threshold", "0.9", "--top-k", "2", "--json",
        a_images[2], empty,
    )  # fmt: skip
    assert code == 3
    result = json.loads(out)
    assert result["content_hash"] == version and result["watchlist_size"] == 3
    face = result["images"][0]["faces"][0]
    assert face["alert"] is True
    assert face["candidates"][0]["subject_id"] == "case-A"
    assert face["candidates"][0]["display_name"] == "Person A"
    assert face["candidates"][0]["score"] >= 0.9 > face["candidates"][1]["score"]
    assert "empty" in result["images"][1]["error"]
    code, out, _ = run(capsys, "identify", "--watchlist", wl, "--threshold", "0.999", a_images[2])
    assert code == 0 and "no alert" in out and "case-A (Person A)" in out

    # export, verify, import with the expected hash; a tampered copy is refused
    bundle = tmp_path / "deploy.zip"
    code, _, err = run(capsys, "watchlist", "export", bundle, "--watchlist", wl)
    assert code == 15 and "keys generate" in err and not bundle.exists()
    code, _, _ = run(capsys, "keys", "generate", "--name", "Watchlist office")
    assert code == 0
    code, out, _ = run(capsys, "watchlist", "export", bundle, "--watchlist", wl, "--json")
    assert code == 0 and json.loads(out)["content_hash"] == version
    code, out, _ = run(capsys, "watchlist", "import", bundle, "--check", "--expect-hash", version)
    assert code == 0 and "verified" in out
    copy = tmp_path / "copy.sqlite"
    code, out, _ = run(
        capsys, "watchlist", "import", bundle, "--watchlist", copy, "--expect-hash", version
    )
    assert code == 0 and "imported 3 subjects, 4 templates" in out
    code, _, err = run(capsys, "watchlist", "import", bundle, "--watchlist", copy)
    assert code == 7 and "already on this watchlist" in err
    tampered = tmp_path / "tampered.zip"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    other = tmp_path / "other.sqlite"
    code, _, err = run(capsys, "watchlist", "import", tampered, "--watchlist", other)
    assert code == 7 and "refused" in err
    code, out, _ = run(capsys, "watchlist", "list", "--watchlist", other, "--json")
    assert json.loads(out)["n_subjects"] == 0

    # remove: unknown ids remove nothing; a real removal changes the version and is audited
    code, _, err = run(capsys, "watchlist", "remove", "case-A", "ghost", "--watchlist", wl)
    assert code == 7 and "no subject 'ghost'" in err
    code, out, _ = run(capsys, "watchlist", "remove", "case-A", "--watchlist", wl)
    assert code == 0 and "removed 1 subject" in out
    code, out, _ = run(capsys, "watchlist", "audit", "--watchlist", wl, "--json")
    actions = [e["action"] for e in json.loads(out)["entries"]]
    assert actions[0] == "create" and actions[-2:] == ["export_bundle", "remove_subject"]
    code, out, _ = run(capsys, "watchlist", "audit", "--watchlist", wl, "--limit", "1")
    assert code == 0 and "remove_subject" in out and "case-A" not in out  # pseudonymous
    code, out, _ = run(capsys, "watchlist", "audit", "--watchlist", wl, "--subject", "case-A")
    assert code == 0 and out.count("\n") == 4  # add_subject, 2 add_template, remove_subject
    assert out.splitlines()[-1].split()[4] == "remove_subject"
