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


def test_a_relative_risk_below_a_tenth_is_text_in_the_page_not_a_tag() -> None:
    # "<0.1x" was written raw into the table cell: an HTML parser (or a copy to text) read a tag start
    from datetime import UTC, datetime

    from defectops.training.report import RecentCommit, render
    from defectops.training.risk import RiskBand, RiskBands, Scored

    bands = RiskBands.from_base_rate(0.2)
    scored = Scored(0.004, False, RiskBand.MINIMAL, 0.3, "m", "1", sha="a" * 40, base_rate=0.2)
    when = datetime(2026, 1, 2, tzinfo=UTC)
    page = render(
        title="t",
        summary={},
        metrics={},
        plots={},
        recent=[RecentCommit(scored, "ann", when, "tiny change")],
        generated_at=when,
        bands=bands,
    )
    assert "<td>&lt;0.1x</td>" in page
    assert "<0.1x" not in page
