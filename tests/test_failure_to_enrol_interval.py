"""The failure-to-enrol rate carries an interval counted by people (issue 9), in the one sentence
the CLI, the report and the app show."""

from __future__ import annotations

import pytest
from scipy import stats

from lfr_eval.protocols import EnrolmentOutcome
from lfr_eval.protocols._enrolment import FTE_INTERVAL_METHOD


def test_interval_is_exact_clopper_pearson_over_subjects() -> None:
    outcome = EnrolmentOutcome(subjects=200, failed=3, mated_searches=6)
    low, high = outcome.interval()
    # one enrolment attempt per person: failed of subjects is binomial, the exact interval holds
    assert low == pytest.approx(stats.beta.ppf(0.025, 3, 198))
    assert high == pytest.approx(stats.beta.ppf(0.975, 4, 197))
    assert low < outcome.rate < high
    text = outcome.describe()
    assert "3 of 200 subjects" in text and "1.5% (95% CI 0.31%–4.3%)" in text
    assert FTE_INTERVAL_METHOD in text and "over subjects" in text
    assert outcome.interval(0.99)[1] > high


def test_plain_language_rules_hold() -> None:
    # none failed: an upper bound, not "0% (CI 0%–1.8%)"
    none = EnrolmentOutcome(subjects=200, failed=0)
    assert "at most 1.8% (upper end of the 95% CI; none seen)" in none.describe()
    assert "CI 0%" not in none.describe()
    # failures seen: the lower end is never written as 0
    one = EnrolmentOutcome(subjects=5_000, failed=1)
    assert one.interval()[0] > 0
    assert "CI 0%" not in one.describe() and "CI 0.00051%" in one.describe()
    assert EnrolmentOutcome(subjects=0, failed=0).interval() == (0.0, 1.0)
