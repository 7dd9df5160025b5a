"""Counted nouns: one helper (lfr_eval.wording.plural) for the CLI, the report and the app, and no
"1 searches" / "subject(s)" left in the messages it covers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lfr_eval.wording import plural, plural_of

ROOT = Path(__file__).parents[1]

#: Where messages were swept.
SWEPT = [
    "lfr_eval/cli", "lfr_eval/report", "lfr_eval/datasets", "lfr_eval/watchlist",
    "lfr_eval/claims.py", "lfr_eval/retention.py", "lfr_eval/protocols/_open_set.py",
    "lfr_eval/live", "app/pages/1_Live.py",
    "app/_shared.py", "app/pages/2_Watchlist.py", "app/pages/3_Evaluate.py",
    "app/pages/4_Threshold_explorer.py", "app/pages/5_Demographic_report.py",
    "app/pages/6_Export.py",
]  # fmt: skip

#: A count printed straight before a counted noun, or a noun with "(s)".
COUNTED = re.compile(
    r"\{[^{}]*\}\s+(searches|people|images|subjects|templates|files|alerts|rows|entries|"
    r"embeddings|users|faces|tracks|captures|hours)\b|(?<=[\s\"'])[a-z]+\((?:s|es|ies)\)"
)


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (1, "search", "1 search"),
        (2, "search", "2 searches"),
        (0, "search", "0 searches"),
        (1, "person", "1 person"),
        (1_120, "person", "1,120 people"),
        (1, "non-mated search", "1 non-mated search"),
        (3, "enrolled person", "3 enrolled people"),
        (2, "cache entry", "2 cache entries"),
        (2, "day", "2 days"),
        (1, "image", "1 image"),
    ],
)
def test_plural(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


def test_plural_verbs_and_bare_nouns() -> None:
    assert plural(1, "has", number=False) == "has" and plural(2, "has", number=False) == "have"
    assert plural(2, "is", number=False) == "are"
    assert plural_of("box") == "boxes"


def test_no_message_counts_without_the_helper() -> None:
    hits = []
    for entry in SWEPT:
        path = ROOT / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#")[0] if "# plural:" not in line else ""
                if COUNTED.search(code) and "http(s)" not in code:
                    hits.append(f"{file.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_messages_say_one_correctly(tmp_path: Path) -> None:
    """Messages a user meets with a count of one."""
    from lfr_eval.datasets import read_manifest
    from lfr_eval.errors import ManifestError
    from lfr_eval.report._html import _count_cell
    from lfr_eval.retention import PurgeSummary

    assert _count_cell(1, 1, 1) == "1 of 1 (1 person)"
    from datetime import datetime, timezone

    summary = PurgeSummary(datetime.now(timezone.utc), alerts=1, cache_entries=1)
    assert summary.describe() == "1 alert, 0 watchlist subjects, 0 exports, 1 cache entry"
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,subject_id\na.jpg,alice\n")
    with pytest.raises(ManifestError, match=r"1 image file not found under"):
        read_manifest(manifest)


def test_live_messages_say_one_correctly() -> None:
    """The live session's summary with one face scanned and one hour of retention."""
    from datetime import datetime, timezone

    from lfr_eval.live import DeploymentSummary
    from lfr_eval.metrics import estimate_rate

    now = datetime.now(timezone.utc)
    summary = DeploymentSummary(
        deployment="test", started_at=now, ended_at=now, watchlist_size=1, thresholds=(0.9,),
        engine="dlib", faces_scanned=1, alerts=0, true_alerts=0, false_alerts=0,
        unreviewed_alerts=0, false_alert_rate=estimate_rate(0, 1), rates=None,
        median_time_to_decision_s=None, median_time_to_alert_s=None, retention_hours=1.0,
    )  # fmt: skip
    text = " ".join(value for _, value in summary.lines())
    assert "none in 1 face scanned" in text and "alert data 1 hour;" in text
