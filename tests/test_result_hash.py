"""One result hash: result.json, the in-memory result, the aggregate, the report, the CSV-free
app summary and a deployment config's evidence all name an evaluation the same way."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from lfr_eval.deployment import evidence_from_results
from lfr_eval.report import AggregateResult, write_report
from lfr_eval.results import RESULT_FILE, load_result, result_sha256, with_scaling
from tests.test_results import synthetic_result


def test_one_hash_across_every_output(tmp_path: Path) -> None:
    result = synthetic_result()
    before = result.result_hash  # in memory, not written yet
    result.save(tmp_path / "res")
    stored = json.loads((tmp_path / "res" / RESULT_FILE).read_text())
    recorded = stored.pop("result_sha256")
    assert recorded == before == result_sha256(stored)

    loaded = load_result(tmp_path / "res")
    assert loaded.result_hash == recorded
    assert loaded.provenance.result_sha256 == recorded

    agg = AggregateResult.from_result(loaded, n_boot=50)
    assert agg.result_sha256 == recorded
    agg.save(tmp_path / "agg")
    assert AggregateResult.load(tmp_path / "agg").result_sha256 == recorded

    page = write_report(loaded, tmp_path / "report", aggregate_options={"n_boot": 50})
    # the report names the result by this hash, and by no other
    named = re.findall(r"result sha256 <code>([0-9a-f]{64})", page.read_text())
    assert named and set(named) == {recorded}

    threshold = float(agg.thresholds[len(agg.thresholds) // 2])
    assert evidence_from_results(loaded, threshold).results_sha256 == recorded
    assert evidence_from_results(agg, threshold).results_sha256 == recorded


def test_the_hash_follows_the_content(tmp_path: Path) -> None:
    result = synthetic_result()
    result.save(tmp_path)
    loaded = load_result(tmp_path)
    # recomputing from what was read back gives the recorded hash: it is a function of content
    assert replace(loaded, stored_sha256=None).result_hash == loaded.result_hash
    changed = with_scaling(loaded, None)
    assert changed.result_hash != loaded.result_hash
    other = synthetic_result(seed=1)
    assert other.result_hash != result.result_hash
