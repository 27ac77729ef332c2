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


def test_the_held_out_f1_names_its_threshold() -> None:
    from defectops.training.report import held_out_meanings

    row = _rows({"f1": 0.3619, "mcc": 0.3365}, held_out_meanings(0.1968))
    assert "<th>f1</th><td>0.3619</td>" in row
    assert (
        "F1 at threshold 0.197, the one the model fitted on the earlier commits chose (the gate&#x27;s F1 is at "
        "the registered model&#x27;s threshold)" in row
    )
    assert "Matthews correlation at threshold 0.197 (-1 to 1, 0 is chance)" in row
    assert held_out_meanings(None) is METRIC_MEANINGS  # no threshold known: the general words


def test_the_importance_plot_says_how_many_features_it_shows_of_how_many() -> None:
    from defectops.training.report import importance_svg

    importance = [(f"f{i:02d}", 1.0 / (i + 1)) for i in range(27)]
    svg = importance_svg(importance, rows=2000)
    assert "Feature importance: top 14 of 27 features" in svg
    assert "mean |contribution| (log-odds) over the latest 2,000 commits" in svg
    assert ">f13<" in svg  # the 14th largest is drawn, the 15th is not
    assert ">f14<" not in svg
    # a model of fewer features than the plot's room shows them all, and says so
    assert "top 5 of 5 features" in importance_svg(importance[:5])
