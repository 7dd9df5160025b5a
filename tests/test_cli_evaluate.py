"""``lfr-eval embed``, ``evaluate``, ``report`` and ``claim`` as a user runs them."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfr_eval.cli import main
from lfr_eval.results import load_result
from tests.test_datasets import _write_noise_jpeg
from tests.test_evaluate_lfw import TEST_PARAMS, shared_cache_path, small_lfw


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def face_folder(tmp_path: Path, insightface_images: Path) -> Path:
    root = tmp_path / "faces"
    (root / "hanks").mkdir(parents=True)
    (root / "hanks" / "a.png").symlink_to(insightface_images / "Tom_Hanks_54745.png")
    (root / "group").mkdir()
    (root / "group" / "t1.jpg").symlink_to(insightface_images / "t1.jpg")
    _write_noise_jpeg(root / "noise" / "n.jpg", 3)
    return root


def test_embed_folder_resumes_from_cache(
    face_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache.sqlite"
    out = tmp_path / "emb.npz"
    code, stdout, stderr = run(
        ["embed", str(face_folder), "--out", str(out), "--cache", str(cache)], capsys
    )
    assert code == 0, stderr
    assert "2 embeddings, 1 image without a usable face; 3 computed now" in stdout
    data = np.load(out, allow_pickle=False)
    assert data["embeddings"].shape == (3, 128)
    assert list(data["subject_id"]) == ["group", "hanks", "noise"]
    assert list(data["failure"]) == ["", "", "no face"]
    assert "dlib_face_recognition_resnet_model_v1.dat" in str(data["metadata"])
    norms = np.linalg.norm(data["embeddings"][data["ok"]], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    code, stdout, _ = run(
        ["embed", str(face_folder), "--out", str(tmp_path / "emb.parquet"), "--cache", str(cache)],
        capsys,
    )
    assert code == 0 and "0 computed now, 3 from the cache" in stdout
    table = pd.read_parquet(tmp_path / "emb.parquet")
    assert len(table["embedding"].iloc[0]) == 128


def test_embed_rejects_bad_output_name(
    face_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        ["embed", str(face_folder), "--out", str(tmp_path / "e.txt"), "--no-cache"], capsys
    )
    assert code == 2 and ".npz or .parquet" in err


def test_malformed_manifest_gives_exit_code_8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,person\na.jpg,x\n")
    code, _, err = run(
        ["evaluate", str(manifest), "--out", str(tmp_path / "r"), "--no-cache"], capsys
    )
    assert code == 8
    assert "lacks the column subject_id" in err
    assert "Traceback" not in err
    manifest.write_text("path,subject_id\nmissing.jpg,x\nmissing2.jpg,x\n")
    code, _, err = run(
        ["evaluate", str(manifest), "--out", str(tmp_path / "r"), "--no-cache"], capsys
    )
    assert code == 8 and "not found" in err
    assert not (tmp_path / "r").exists()  # nothing half-written


@pytest.mark.lfw
def test_evaluate_report_claim_on_lfw(
    lfw_dir: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = small_lfw(lfw_dir)
    table = manifest.to_frame()
    table["path"] = [str(p) for p in manifest.absolute_paths()]
    csv = tmp_path / "lfw_small.csv"
    table.to_csv(csv, index=False)
    results = tmp_path / "results"
    argv = [
        "evaluate",
        str(csv),
        "--out",
        str(results),
        "--seed",
        str(TEST_PARAMS.seed),
        "--enrolled-fraction",
        str(TEST_PARAMS.enrolled_fraction),
        "--max-mated-per-subject",
        str(TEST_PARAMS.max_mated_per_subject),
        "--face",
        "central",
        "--cache",
        str(shared_cache_path(tmp_path_factory)),
        "--watchlist-size",
        "1000",
        "--threshold",
        "0.93",
    ]
    code, stdout, stderr = run(argv, capsys)
    assert code == 0, stderr
    assert "watchlist N =" in stdout and "report:" in stdout
    assert "rank 1" in stdout and "all mated searches" in stdout  # the CMC summary
    result = load_result(results)
    assert result.protocol.params["seed"] == TEST_PARAMS.seed
    assert set(result.scaling["watchlist_size"]) >= {1000, result.watchlist_size}
    meta = json.loads((results / "result.json").read_text())
    assert meta["dataset"]["n_images"] == manifest.n_images
    assert (results / "report.html").stat().st_size < 2_000_000  # plotly.js once, beside it
    assert (results / "plotly.min.js").is_file()

    # run again: everything comes from the cache
    code, stdout, _ = run(argv, capsys)
    assert code == 0 and "(0 computed" in stdout
    assert result.protocol.failures == "nist" and "counted as NIST does" in stdout

    # failures left out, and the scaling weighted to a deployed watchlist's make-up
    other = tmp_path / "excluded"
    weighted = [*argv[:3], str(other), *argv[4:], "--no-report", "--failures", "exclude"]
    code, stdout, stderr = run([*weighted, "--composition", "sex=female:0.8,male:0.2"], capsys)
    assert code == 0, stderr
    assert "weighted to sex=female:0.8,male:0.2" in stdout
    excluded = load_result(other)
    assert excluded.protocol.failures == "exclude"
    assert excluded.searches.n_failed_mated == excluded.searches.n_failed_non_mated == 0
    s = result.searches
    assert s.n_mated - excluded.searches.n_mated == s.n_failed_mated
    assert s.n_non_mated - excluded.searches.n_non_mated == s.n_failed_non_mated
    assert excluded.composition is not None and excluded.composition.shares["female"] == 0.8
    assert json.loads((other / "result.json").read_text())["composition"]["attribute"] == "sex"
    a = result.scaling.query("method == 'analytic' and group == 'all' and watchlist_size == 1000")
    b = excluded.scaling.query("method == 'analytic' and group == 'all' and watchlist_size == 1000")
    assert not np.allclose(a["fpir"].to_numpy(), b["fpir"].to_numpy())
    # a composition over an attribute the data lack: a ProtocolError (exit code 13)
    code, _, err = run([*weighted, "--composition", "height=tall:1"], capsys)
    assert code == 13 and "'height'" in err

    code, stdout, _ = run(
        [
            "report",
            str(results),
            "--out",
            str(tmp_path / "rep"),
            "--ci-method",
            "wilson",
            "--group",
            "sex",
        ],
        capsys,
    )
    assert code == 0 and (tmp_path / "rep" / "report.html").is_file()
    rates = pd.read_csv(tmp_path / "rep" / "rates.csv")
    assert set(rates["ci_method"]) == {"wilson"}
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv", keep_default_na=False)
    assert set(summary["attribute"]) == {"all", "sex"}  # only what --group asked for
    assert not summary.duplicated(["threshold", "attribute", "group"]).any()
    code, _, err = run(["report", str(results), "--group", "height"], capsys)
    assert code == 2 and "--group" in err and "'height'" in err

    best = result.searches.non_mated_best
    # a claim the data cannot support (rule of 3 needs ~3x the searches) -> exit 1
    code, stdout, _ = run(
        ["claim", str(results), "--one-in", "100000", "--threshold", "0.99"], capsys
    )
    assert code == 1 and "do not support" in stdout
    # a generous claim at a strict threshold -> exit 0, with a per-group breakdown
    assert (best >= 0.97).sum() == 0
    code, stdout, _ = run(
        ["claim", str(results), "--one-in", "10", "--threshold", "0.97", "--by", "ethnicity"],
        capsys,
    )
    # exit 0 only when the claim holds overall and in every group (small groups get wide,
    # people-counted bounds and may fail it)
    assert code == (1 if "NOT supported" in stdout else 0), stdout
    assert "ethnicity = african" in stdout
    code, _, err = run(
        [
            "claim",
            str(results),
            "--one-in",
            "10",
            "--threshold",
            "0.97",
            "--watchlist-size",
            "10000",
        ],
        capsys,
    )
    # a MetricInputError (exit code 14) naming the CLI flag, not the Python keyword
    assert code == 14 and "--scale-watchlist" in err and "scale_watchlist=True" not in err


@pytest.mark.lfw
def test_evaluate_reports_failure_to_enrol_on_real_faces(
    lfw_dir: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One listed person's enrolment image holds no face (noise): dlib finds none, the person
    fails to enrol, its searches are misses (default), left out (--enrolment-failures exclude)
    or it is enrolled from its next image (--enrolment-next-image)."""
    frame = small_lfw(lfw_dir).to_frame()
    frame["path"] = [str(p) for p in small_lfw(lfw_dir).absolute_paths()]
    counts = frame.groupby("subject_id").size()
    listed = sorted(counts[counts >= 3].index)[:6]
    strangers = sorted(counts[counts == 1].index)[:20]
    rows = []
    for n, subject in enumerate(listed):
        images = frame[frame["subject_id"] == subject]["path"].tolist()[:3]
        if n == 0:  # its enrolment image is noise; its two real images are searches
            noise = tmp_path / "noise.jpg"
            _write_noise_jpeg(noise, 5)
            images = [str(noise), *images[:2]]
        rows += [(images[0], subject, "enrol")] + [(p, subject, "mated") for p in images[1:]]
    for subject in strangers:
        rows.append((frame[frame["subject_id"] == subject]["path"].iloc[0], subject, "non_mated"))
    csv = tmp_path / "fte.csv"
    pd.DataFrame(rows, columns=["path", "subject_id", "role"]).to_csv(csv, index=False)
    base = ["evaluate", str(csv), "--cache", str(shared_cache_path(tmp_path_factory))]
    code, stdout, stderr = run([*base, "--out", str(tmp_path / "a")], capsys)
    assert code == 0, stderr
    assert f"failure to enrol 1 of {len(listed)} subjects" in stdout
    assert "count as misses" in stdout
    nist = load_result(tmp_path / "a")
    assert nist.protocol.enrolment is not None and nist.protocol.enrolment.failed == 1
    assert nist.protocol.enrolment.mated_searches == 2
    assert nist.watchlist_size == len(listed) - 1
    assert "failure to enrol 1 of" in (tmp_path / "a" / "report.html").read_text()

    code, stdout, stderr = run(
        [*base, "--out", str(tmp_path / "b"), "--no-report", "--enrolment-failures", "exclude"],
        capsys,
    )
    assert code == 0, stderr
    assert "left out of FNIR" in stdout
    excluded = load_result(tmp_path / "b")
    assert excluded.searches.n_mated == nist.searches.n_mated - 2
    code, stdout, stderr = run(
        [*base, "--out", str(tmp_path / "c"), "--no-report", "--enrolment-next-image"], capsys
    )
    assert code == 0, stderr
    rescued = load_result(tmp_path / "c")
    assert rescued.protocol.enrolment is not None
    assert (rescued.protocol.enrolment.failed, rescued.protocol.enrolment.next_image) == (0, 1)
    assert rescued.watchlist_size == len(listed)
    assert rescued.searches.n_mated == nist.searches.n_mated - 1


@pytest.mark.lfw
def test_evaluate_resumes_scoring_after_an_interruption(
    lfw_dir: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C during scoring keeps the finished blocks in --scoring-work-dir; the same command
    then scores only the unfinished ones and writes the same results as an uninterrupted run."""
    from lfr_eval.search import _blocks

    table = small_lfw(lfw_dir).to_frame()
    table["path"] = [str(p) for p in small_lfw(lfw_dir).absolute_paths()]
    csv = tmp_path / "lfw_small.csv"
    table.to_csv(csv, index=False)
    monkeypatch.setattr(_blocks, "_rows_per_block", lambda *a, **k: 16)
    real, calls = _blocks.score_block, {"n": 0, "stop_at": 0}
    lock = threading.Lock()  # two blocks are scored at once, on two threads

    def counted(*args, **kwargs):
        with lock:
            calls["n"] += 1
            stop = calls["n"] == calls["stop_at"]
        if stop:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_blocks, "score_block", counted)

    def evaluate(out: Path, work: Path) -> tuple[int, str]:
        calls["n"] = 0
        argv = [
            "evaluate", csv, "--out", out, "--seed", TEST_PARAMS.seed, "--face", "central",
            "--cache", shared_cache_path(tmp_path_factory), "--no-report",
            "--scoring-memory", "0.5", "--scoring-work-dir", work,
        ]  # fmt: skip
        code, _, err = run([str(a) for a in argv], capsys)
        return code, err

    code, err = evaluate(tmp_path / "whole", tmp_path / "work-whole")
    assert code == 0, err
    total = calls["n"]
    assert total > 4  # several blocks of 16 probes

    calls["stop_at"] = 4
    code, err = evaluate(tmp_path / "resumed", tmp_path / "work")
    kept = re.search(r"after (\d+) of", err)
    assert code == 130 and kept and "finished blocks are kept in" in err, err
    # the three blocks before the interrupted one, and any block in flight beside it that
    # was scored to the end
    assert int(kept.group(1)) >= 3
    assert not (tmp_path / "resumed").exists()  # nothing half-written
    calls["stop_at"] = 0
    code, err = evaluate(tmp_path / "resumed", tmp_path / "work")
    assert code == 0, err
    assert calls["n"] == total - int(kept.group(1))  # only the unfinished blocks were scored
    whole, resumed = load_result(tmp_path / "whole"), load_result(tmp_path / "resumed")
    pd.testing.assert_frame_equal(resumed.scaling, whole.scaling)
    np.testing.assert_array_equal(
        resumed.searches.non_mated_topk, whole.searches.non_mated_topk
    )
