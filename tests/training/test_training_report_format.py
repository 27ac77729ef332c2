"""The run report's numbers read as a person expects, and every evaluation key is explained beside it."""

from __future__ import annotations

from defectops.training.metrics import METRIC_KEYS
from defectops.training.report import METRIC_MEANINGS, _fmt, _rows


def test_counts_are_integers_and_rates_have_four_decimals() -> None:
    assert _fmt(174.0) == "174"
    assert _fmt(12345.0) == "12,345"
    assert _fmt(0.0) == "0.0000"  # a zero rate is a rate
    assert _fmt(0.123456) == "0.1235"
    assert _fmt(2500.7) == "2,501"
    assert _fmt(7) == "7"


def test_each_metric_row_carries_its_meaning() -> None:
    row = _rows({"recall_at_20_effort": 0.25})
    assert "<th>recall_at_20_effort</th><td>0.2500</td>" in row
    assert "riskiest 20% of changed lines" in row
    assert _rows({"something_else": 1.5}).endswith("<td class=muted></td></tr>")
    # every metric the evaluation reports is explained
    assert set(METRIC_MEANINGS) >= set(METRIC_KEYS)
