"""Alerts attributed to passages of listed people: the one rule of the live benchmarks
(``lfr_eval.live._scene.alerts_per_passage``, used by ``bench_live.py`` and the browser
benchmark's frame log)."""

from __future__ import annotations

import pytest

from lfr_eval.live._scene import Passage, alerts_per_passage

PASSAGES = [Passage("ann", 0.5, 3.0), Passage("bob", 3.5, 6.0), Passage("ann", 9.5, 12.0)]


def test_one_alert_in_each_passage_is_one_per_passage() -> None:
    result = alerts_per_passage(PASSAGES, [(0.8, "ann"), (3.9, "bob"), (9.7, "ann")])
    assert result.passages == 3 and result.alerts == (1, 1, 1)
    assert result.alerts_per_passage == 1.0 and result.missed == 0 and result.split == 0
    assert result.time_to_alert_s == pytest.approx((0.3, 0.4, 0.2))
    assert result.late_alerts == 0 and result.unattributed_alerts == 0


def test_a_late_alert_counts_for_its_passage_and_is_reported_late() -> None:
    # bob's alert comes 1 s after he left (a busy machine): his, not a false alert nor a miss
    result = alerts_per_passage(PASSAGES, [(0.8, "ann"), (7.0, "bob"), (9.7, "ann")])
    assert result.alerts == (1, 1, 1) and result.late_alerts == 1
    assert result.time_to_alert_s[1] == pytest.approx(3.5)
    # past the grace window it is nobody's: a false alert, and bob's passage a miss
    late = alerts_per_passage(PASSAGES, [(0.8, "ann"), (9.1, "bob")], grace_s=3.0)
    assert late.alerts == (1, 0, 0) and late.missed == 2 and late.unattributed_alerts == 1


def test_split_passages_and_alerts_for_nobody_on_screen() -> None:
    alerts = [(0.8, "ann"), (2.5, "ann"), (3.9, "bob"), (10.0, "ann"), (1.0, "cy"), (0.1, "bob")]
    result = alerts_per_passage(PASSAGES, alerts)
    assert result.alerts == (2, 1, 1) and result.split == 1
    assert result.alerts_per_passage == pytest.approx(4 / 3)
    # "cy" has no passage; bob's alert at 0.1 s came before his passage began
    assert result.unattributed_alerts == 2


def test_a_passage_that_ended_just_before_collection_is_not_judged() -> None:
    # collected at 13 s: ann's second passage ended 1 s before, her alert may be on its way
    result = alerts_per_passage(PASSAGES, [(0.8, "ann"), (3.9, "bob")], until=13.0)
    assert result.passages == 2 and result.alerts == (1, 1) and result.missed == 0
    # every alert in (the pipeline stopped): the same passage without an alert is a miss
    final = alerts_per_passage(PASSAGES, [(0.8, "ann"), (3.9, "bob")])
    assert final.passages == 3 and final.missed == 1
    assert alerts_per_passage([], []).alerts_per_passage == 0.0
