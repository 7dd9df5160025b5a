"""Deployment configs: schema, self-hash (tamper detection), and verification against artefacts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lfr_eval.deployment import (
    DeploymentConfig,
    EvaluationEvidence,
    RateEvidence,
    RetentionPolicy,
    WatchlistRef,
    config_schema,
    export_config,
    load_config,
    parse_config,
    verify_config,
)
from lfr_eval.errors import ConfigError
from lfr_eval.faces import EngineId, ModelFile, sha256_file

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture(scope="module")
def engine_id(dlib_engine) -> EngineId:
    return dlib_engine.engine_id


def _evidence(threshold: float = 0.6) -> EvaluationEvidence:
    return EvaluationEvidence(
        results_sha256=SHA_A,
        dataset_sha256=SHA_B,
        protocol="lfw-open-set",
        watchlist_size=500,
        threshold=threshold,
        confidence=0.95,
        interval_method="clopper-pearson",
        n_boot=None,
        fpir=RateEvidence(value=0.004, ci_low=0.001, ci_high=0.01, count=4, trials=1000),
        tpir=RateEvidence(value=0.9, ci_low=0.85, ci_high=0.94, count=270, trials=300),
    )


def _config(engine_id: EngineId, **changes) -> DeploymentConfig:
    base = DeploymentConfig(
        threshold=0.6,
        engine=engine_id,
        watchlist=WatchlistRef(id="wl-1", content_sha256=SHA_B, subject_count=500),
        evidence=_evidence(),
        approved_by="A. Officer",
        notes="trial deployment",
    )
    return replace(base, **changes)


def test_export_then_load_round_trips(engine_id, tmp_path: Path) -> None:
    config = _config(engine_id)
    path = export_config(config, tmp_path / "deploy.json")
    loaded = load_config(path)
    assert loaded == config
    assert loaded.sha256 == config.sha256
    document = json.loads(path.read_text())
    assert document["config_sha256"] == config.sha256
    assert document["similarity"] == "cosine"
    assert document["retention"] == {
        "alert_capture_hours": 24,
        "non_matching_captures": "never_stored",
    }
    # every model the engine loads is named with its hash
    assert {m["sha256"] for m in document["engine"]["models"]} == {
        m.sha256 for m in engine_id.models
    }
    assert not list(tmp_path.glob("*.tmp"))


def test_schema_file_is_valid_json_schema() -> None:
    import jsonschema

    schema = config_schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_config_without_evidence_round_trips(engine_id, tmp_path: Path) -> None:
    config = _config(engine_id, evidence=None)
    assert load_config(export_config(config, tmp_path / "c.json")).evidence is None


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("threshold"), "threshold"),
        (lambda d: d.__setitem__("threshold", 1.5), "threshold"),
        (
            lambda d: d["retention"].__setitem__("non_matching_captures", "kept 7 days"),
            "retention.non_matching_captures",
        ),
        (
            lambda d: d["engine"]["models"][0].__setitem__("sha256", "not-a-hash"),
            "engine.models[0].sha256",
        ),
        (lambda d: d.__setitem__("extra", 1), "extra"),
        (lambda d: d.__setitem__("similarity", "euclidean"), "similarity"),
    ],
)
def test_schema_violation_names_the_field(engine_id, tmp_path: Path, edit, field) -> None:
    document = _config(engine_id).to_dict()
    edit(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="does not match the schema") as info:
        load_config(path)
    assert f": {field}:" in str(info.value)


def test_edited_file_is_refused_as_tampered(engine_id, tmp_path: Path) -> None:
    path = export_config(_config(engine_id), tmp_path / "deploy.json")
    document = json.loads(path.read_text())
    document["threshold"] = 0.58
    document["evidence"]["threshold"] = 0.58
    path.write_text(json.dumps(document, indent=2))
    with pytest.raises(ConfigError, match="has been changed since it was exported"):
        load_config(path)


def test_whitespace_and_key_order_do_not_matter(engine_id, tmp_path: Path) -> None:
    document = _config(engine_id).to_dict()
    text = json.dumps(dict(reversed(list(document.items()))))
    assert parse_config(text) == _config(engine_id)


def test_not_json_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{threshold: 0.6")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.json")


def test_invalid_values_refused_at_construction(engine_id) -> None:
    with pytest.raises(ConfigError, match=r"cosine similarity in \[-1, 1\]"):
        _config(engine_id, threshold=2.0, evidence=None)
    with pytest.raises(ConfigError, match="evidence is at threshold 0.6"):
        _config(engine_id, threshold=0.62)
    with pytest.raises(ConfigError, match="0 to 8760 hours"):
        RetentionPolicy(alert_capture_hours=-1)


def test_verify_passes_with_the_same_artefacts(engine_id, dlib_engine) -> None:
    config = _config(engine_id)
    result = verify_config(
        config, engine=dlib_engine, watchlist=config.watchlist, evidence=_evidence()
    )
    assert result.complete
    fields = {c.field for c in result.checked}
    assert {"engine.backend", "watchlist.content_sha256", "evidence.results_sha256"} <= fields
    assert any(f.startswith("engine.models[recognizer") for f in fields)


def test_verify_reports_what_it_could_not_check(engine_id) -> None:
    result = verify_config(_config(engine_id))
    assert not result.complete
    assert set(result.not_checked) == {"engine", "watchlist", "evidence"}


def test_verify_refuses_a_different_model_file(engine_id) -> None:
    models = tuple(
        replace(m, sha256="c" * 64) if m.role == "recognizer" else m for m in engine_id.models
    )
    other = replace(engine_id, models=models)
    with pytest.raises(ConfigError, match=r"engine\.models\[recognizer:.*\]\.sha256"):
        verify_config(_config(engine_id), engine=other)


def test_verify_refuses_a_different_backend_or_detector(engine_id) -> None:
    with pytest.raises(ConfigError, match="engine.backend"):
        verify_config(_config(engine_id), engine=replace(engine_id, backend="dlib-torch"))
    extra = replace(engine_id, models=(*engine_id.models, ModelFile("detector2", "x.onnx", SHA_A)))
    with pytest.raises(ConfigError, match="does not name"):
        verify_config(_config(engine_id), engine=extra)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "wl-2"}, "watchlist.id"),
        ({"content_sha256": "c" * 64}, "watchlist.content_sha256"),
        ({"subject_count": 501}, "watchlist.subject_count"),
    ],
)
def test_verify_refuses_a_changed_watchlist(engine_id, change, field) -> None:
    config = _config(engine_id)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        verify_config(config, watchlist=replace(config.watchlist, **change))


def test_verify_refuses_other_results_or_figures(engine_id) -> None:
    config = _config(engine_id)
    with pytest.raises(ConfigError, match=r"evidence\.results_sha256"):
        verify_config(config, evidence=replace(_evidence(), results_sha256="c" * 64))
    moved = replace(_evidence(), fpir=replace(_evidence().fpir, count=5))
    with pytest.raises(ConfigError, match=r"evidence\.fpir\.count"):
        verify_config(config, evidence=moved)


def test_verify_checks_the_bundle_beside_the_config(engine_id, tmp_path: Path) -> None:
    bundle = tmp_path / "watchlist.lfrwl"
    bundle.write_bytes(b"bundle bytes")
    ref = WatchlistRef(
        "wl-1", SHA_B, 500, bundle_path=bundle.name, bundle_sha256=sha256_file(bundle)
    )
    config = _config(engine_id, watchlist=ref)
    path = export_config(config, tmp_path / "deploy.json")
    result = verify_config(load_config(path), config_dir=path.parent)
    assert "watchlist.bundle.sha256" in {c.field for c in result.checked}
    bundle.write_bytes(b"other bytes")
    with pytest.raises(ConfigError, match=r"watchlist\.bundle\.sha256"):
        verify_config(config, config_dir=tmp_path)
    bundle.unlink()
    with pytest.raises(ConfigError, match="is not beside the config"):
        verify_config(config, config_dir=tmp_path)


# ---------------------------------------------------------------------- with real artefacts


@pytest.fixture()
def enrolled_watchlist(dlib_engine, workspace: Path, insightface_images: Path):
    """A real watchlist with one person enrolled from insightface's sample photo."""
    from lfr_eval.watchlist import SubjectInfo, Watchlist

    watchlist = Watchlist.open(workspace=workspace)
    report = watchlist.enrol_files(
        dlib_engine,
        SubjectInfo("case-1", category="test volunteer"),
        [insightface_images / "t1.jpg"],
        largest_face=True,
    )
    assert report.n_enrolled == 1
    return watchlist


def _aggregate(engine_id: EngineId):
    """Aggregate figures of an evaluation by ``engine_id`` at thresholds 0.6 and 0.62."""
    import pandas as pd

    from lfr_eval.report import RATE_COLUMNS, AggregateResult

    rows = []
    for t, fp, miss in ((0.6, 4, 30), (0.62, 1, 45)):
        for metric, errors, n in (("fpir", fp, 1_000), ("fnir", miss, 300)):
            rows.append(
                (metric, t, "all", "all", n, 100, errors, errors / n, errors / n / 2,
                 errors / n * 2, "clopper-pearson", False, False, float("nan"), float("nan"),
                 float("nan"), "", float("nan"), float("nan"), 0, 0, 0.0, "")
            )  # fmt: skip
    from lfr_eval.faces import RuntimeInfo
    from lfr_eval.results import DatasetInfo, IntervalSettings, ProtocolInfo, Provenance

    provenance = Provenance(
        engine=engine_id,
        engine_key="",
        runtime=RuntimeInfo("dlib", ("cpu",), False, False),
        scoring_runtime=None,
        dataset=DatasetInfo("x", SHA_B, 2_000, 600, ()),
        protocol=ProtocolInfo("open_set", {"seed": 0}, {}, 20),
        software={},
        result_sha256=SHA_A,
        result_created="",
        intervals=IntervalSettings("clopper-pearson", 0.95, None),
    )
    histograms = pd.DataFrame(
        columns=["kind", "attribute", "group", "bin_low", "bin_high", "count"]
    )
    acquisition = pd.DataFrame(columns=["role", "attribute", "group", "images", "failed"])
    rates = pd.DataFrame(rows, columns=list(RATE_COLUMNS))
    return AggregateResult(
        provenance=provenance,
        rates=rates,
        histograms=histograms,
        scaling=None,
        acquisition=acquisition,
        watchlist_size=500,
        n_mated=300,
        n_non_mated=1_000,
    )


def test_make_config_then_verify_against_the_real_watchlist(
    dlib_engine, enrolled_watchlist, tmp_path: Path, insightface_images: Path
) -> None:
    from lfr_eval.deployment import make_config

    results = _aggregate(dlib_engine.engine_id)
    bundle = enrolled_watchlist.export_bundle(tmp_path / "wl.zip")
    config = make_config(
        threshold=0.62,
        engine=dlib_engine,
        watchlist=enrolled_watchlist,
        results=results,
        bundle=bundle.path,
        approved_by="A. Officer",
    )
    assert config.watchlist.subject_count == 1
    assert config.watchlist.content_sha256 == enrolled_watchlist.content_hash()
    assert (config.evidence.fpir.count, config.evidence.fpir.trials) == (1, 1_000)
    assert config.evidence.tpir.value == pytest.approx(1 - 45 / 300)
    path = export_config(config, tmp_path / "deploy.json")
    result = verify_config(
        load_config(path),
        engine=dlib_engine,
        watchlist=enrolled_watchlist,
        results=results,
        config_dir=tmp_path,
    )
    assert result.complete
    # a listed person's expiry changed after sign-off: the config no longer matches
    from lfr_eval.watchlist import parse_expiry

    enrolled_watchlist.update_subject("case-1", expires=parse_expiry("2030-01-01"))
    with pytest.raises(ConfigError, match=r"watchlist\.content_sha256"):
        verify_config(load_config(path), watchlist=enrolled_watchlist)


def test_make_config_refuses_evidence_from_another_recognizer(dlib_engine, enrolled_watchlist):
    from lfr_eval.deployment import make_config

    models = tuple(
        replace(m, sha256="c" * 64) if m.role == "recognizer" else m
        for m in dlib_engine.engine_id.models
    )
    other = replace(dlib_engine.engine_id, backend="insightface", models=models)
    with pytest.raises(ConfigError, match="say nothing about this engine's threshold"):
        make_config(
            threshold=0.6, engine=dlib_engine, watchlist=enrolled_watchlist,
            results=_aggregate(other),
        )  # fmt: skip
    with pytest.raises(ConfigError, match="same recognizer"):
        make_config(threshold=0.6, engine=other, watchlist=enrolled_watchlist)


def test_cli_config_export_and_verify(
    dlib_engine, enrolled_watchlist, workspace, tmp_path, capsys
) -> None:
    from lfr_eval.cli import main

    results = _aggregate(dlib_engine.engine_id).save(tmp_path / "agg")
    out = tmp_path / "cfg" / "deploy.json"
    ws = ["--workspace", str(workspace)]

    def run(*args: str) -> int:
        with pytest.raises(SystemExit) as info:
            main([*args, *ws])
            raise SystemExit(0)
        return int(info.value.code or 0)

    # no signing key yet: the export is refused before anything is written
    assert run("config", "export", "--threshold", "0.6", "--out", str(out)) == 15
    assert not out.exists()
    with pytest.raises(SystemExit) as generated:
        main(["keys", "generate", "--name", "Evaluation team"])
        raise SystemExit(0)
    assert generated.value.code in (0, None)
    capsys.readouterr()
    assert run("config", "export", "--threshold", "0.6", "--results", str(results),
                "--bundle", "--out", str(out)) == 0  # fmt: skip
    # the evidence in the plain-language rules the Export page uses, with its method, and a
    # note that the deployed watchlist's size has no scaled figure (FPIR changes with N)
    printed = capsys.readouterr()
    assert "evidence measured with a 500-person watchlist: FPIR 1 in 250 (95% CI" in printed.out
    assert "4 of 1,000 non-mated searches" in printed.out and "(clopper-pearson)" in printed.out
    assert "0.004 (0.002-0.008)" not in printed.out
    assert "holds no FPIR for N = " in printed.err
    assert (tmp_path / "cfg" / "deploy.watchlist.zip").is_file()
    assert run("config", "verify", str(out), "--results", str(results)) == 0
    assert run("config", "export", "--threshold", "0.61", "--results", str(results),
               "--out", str(tmp_path / "off.json")) == 9  # fmt: skip
    document = json.loads(out.read_text())
    document["approved_by"] = "someone else"
    out.write_text(json.dumps(document))
    assert run("config", "verify", str(out)) == 9
