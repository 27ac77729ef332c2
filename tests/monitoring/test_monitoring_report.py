"""monitor_window end to end, and its renderings: JSON, HTML, Prometheus gauges."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defectops.errors import InputError
from defectops.monitoring.monitor import monitor_window, select_features
from defectops.monitoring.report import (
    PROMETHEUS_METRICS,
    Gauge,
    format_prometheus,
    from_json,
    prometheus_gauges,
    render_html,
    to_json,
    write_html,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SENTINEL_TEXT = "row-secret-7f3a9c"
SENTINEL_NUMBER = 987654.321


def make_frame(n: int, seed: int, *, shift: float = 0.0, new_team: float = 0.0) -> pd.DataFrame:
    """Synthetic logged predictions: 3 numeric features, a flag, a team, a calibrated score and labels."""
    rng = np.random.default_rng(seed)
    size = rng.normal(shift, 1.0, n)
    la = np.round(np.exp(3 + size))
    entropy = 1 / (1 + np.exp(-(0.5 * size + rng.normal(size=n))))
    age = rng.exponential(30, n)
    fix = rng.binomial(1, 0.25, n)
    team = rng.choice(["core", "web", "infra"], size=n, p=[0.5, 0.3, 0.2]).astype(object)
    if new_team:
        team[rng.random(n) < new_team] = "newteam"
    logit = -1.5 + 0.6 * size + 0.8 * fix
    score = 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "la": la,
            "entropy": entropy,
            "age": age,
            "fix": fix,
            "team": team,
            "score": score,
            "label": rng.binomial(1, score),
            "churn": la + 5,
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_frame(4000, 1)


def test_a_window_without_drift_is_ok(reference: pd.DataFrame) -> None:
    window = make_frame(1000, 2)
    result = monitor_window(reference, window, now=NOW)
    assert result.state == "ok"
    assert result.reasons == []
    assert [f.feature for f in result.features] == ["la", "entropy", "age", "fix", "team"]
    assert [f.kind for f in result.features] == [
        "numeric",
        "numeric",
        "numeric",
        "categorical",
        "categorical",
    ]
    # 5 features + score share alpha .05: .05 / 6 per test
    assert result.features[0].threshold == pytest.approx(0.05 / 6)
    assert result.multivariate is not None
    assert result.multivariate.features == ["la", "entropy", "age"]
    assert result.realized.n_matured == 1000
    assert result.estimated.reliable is True
    assert len(result.streams) == 2


def test_a_shifted_window_is_drift_with_reasons(reference: pd.DataFrame) -> None:
    window = make_frame(1000, 3, shift=0.5, new_team=0.1)
    result = monitor_window(reference, window, now=NOW)
    assert result.state == "drift"
    assert set(result.drifted_features) >= {"la", "entropy", "team"}
    assert "age" not in result.drifted_features
    assert result.prediction is not None
    assert result.prediction.drift_detected
    assert any(reason.startswith("team: chi2") for reason in result.reasons)
    assert result.features[4].new_category_share == pytest.approx(0.1, abs=0.03)


def test_reference_without_score_skips_prediction_checks(reference: pd.DataFrame) -> None:
    result = monitor_window(reference.drop(columns=["score"]), make_frame(500, 4), now=NOW)
    assert result.prediction is None
    assert result.streams == []
    assert result.proxies_reference is None
    assert any("no 'score'" in note for note in result.notes)
    # 5 features, no score test: .05 / 5 per test
    assert result.features[0].threshold == pytest.approx(0.01)


def test_prediction_log_columns_and_attrs_are_honoured(reference: pd.DataFrame) -> None:
    window = make_frame(300, 5)
    window["prediction_id"] = [f"id-{i}" for i in range(300)]
    window["created_at"] = pd.date_range("2026-11-01", periods=300, freq="h", tz="UTC")
    window["threshold"] = 0.4
    chosen, skipped = select_features(reference.assign(commit_msg=[f"m{i}" for i in range(4000)]), window)
    assert chosen == ["la", "entropy", "age", "fix", "team"]
    assert skipped == {"commit_msg": "not in the window"}
    window.attrs["feature_columns"] = ["la", "age"]
    result = monitor_window(reference, window, now=NOW)
    assert [f.feature for f in result.features] == ["la", "age"]
    assert result.proxies_window.decision_threshold == 0.4  # from the log's threshold column


def test_identifier_like_text_columns_are_skipped(reference: pd.DataFrame) -> None:
    ref = reference.assign(commit_sha=[f"{i:040x}" for i in range(len(reference))])
    win = make_frame(200, 6).assign(commit_hash=[f"{i:040x}" for i in range(200)])
    ref = ref.rename(columns={"commit_sha": "commit_hash"})
    _, skipped = select_features(ref, win)
    assert skipped == {"commit_hash": "identifier-like (mostly unique values)"}


def test_bad_inputs_are_input_errors(reference: pd.DataFrame) -> None:
    window = make_frame(100, 7)
    with pytest.raises(InputError, match="empty"):
        monitor_window(reference, window.head(0), now=NOW)
    with pytest.raises(InputError, match="'score'"):
        monitor_window(reference, window.drop(columns=["score"]), now=NOW)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        monitor_window(reference, window.assign(score=window["score"] * 3), now=NOW)
    with pytest.raises(InputError, match="missing values"):
        monitor_window(reference, window.assign(score=np.nan), now=NOW)
    with pytest.raises(InputError, match="threshold"):
        monitor_window(reference, window, now=NOW, decision_threshold=1.5)
    with pytest.raises(InputError, match="missing"):
        monitor_window(reference, window, now=NOW, features=["la", "nope"])


def test_json_round_trip(reference: pd.DataFrame) -> None:
    result = monitor_window(reference, make_frame(500, 8, shift=0.5), now=NOW)
    text = to_json(result)
    document = json.loads(text)
    assert document["schema_version"] == 1
    assert document["state"] == "drift"
    assert "NaN" not in text
    assert from_json(text) == result
    with pytest.raises(InputError, match="not a monitoring result"):
        from_json('{"state": "weird"}')


def test_prometheus_gauges(reference: pd.DataFrame) -> None:
    result = monitor_window(reference, make_frame(500, 9, shift=0.5), now=NOW)
    gauges = prometheus_gauges(result)
    by_key = {(g.name, tuple(sorted(g.labels.items()))): g.value for g in gauges}
    assert by_key[("defectops_monitor_drift_detected", ())] == 1.0
    assert by_key[("defectops_monitor_window_predictions", ())] == 500.0
    assert by_key[("defectops_monitor_last_run_timestamp_seconds", ())] == NOW.timestamp()
    la = result.features[0]
    assert by_key[("defectops_feature_drift_score", (("feature", "la"),))] == la.drift_score
    assert by_key[("defectops_feature_drift_statistic", (("feature", "la"), ("test", "ks")))] == la.statistic
    assert by_key[("defectops_feature_drift_detected", (("feature", "la"),))] == 1.0
    assert by_key[("defectops_model_performance", (("metric", "roc_auc"), ("source", "realized")))] == (
        result.realized.roc_auc
    )
    assert by_key[("defectops_model_performance", (("metric", "f1"), ("source", "estimated")))] == (
        result.estimated.f1
    )
    assert (
        "defectops_model_performance",
        (("metric", "recall_at_20_effort"), ("source", "realized")),
    ) in by_key
    # every name is in the catalogue and follows the conventions: snake case, defectops_ prefix
    for gauge in gauges:
        assert gauge.name in PROMETHEUS_METRICS
        assert re.fullmatch(r"defectops_[a-z0-9_]+", gauge.name)
        assert set(gauge.labels) == set(PROMETHEUS_METRICS[gauge.name][1])


def test_prometheus_text_format_escapes_labels() -> None:
    gauges = [
        Gauge(name="defectops_feature_psi", labels={"feature": 'we"ird\\na\nme'}, value=0.5),
        Gauge(name="defectops_feature_psi", labels={"feature": "la"}, value=0.25),
        Gauge(name="defectops_monitor_drift_detected", labels={}, value=1.0),
    ]
    text = format_prometheus(gauges)
    assert text.splitlines() == [
        "# HELP defectops_feature_psi Population stability index of the feature.",
        "# TYPE defectops_feature_psi gauge",
        'defectops_feature_psi{feature="we\\"ird\\\\na\\nme"} 0.5',
        'defectops_feature_psi{feature="la"} 0.25',
        "# HELP defectops_monitor_drift_detected 1 if the last monitoring run found drift, else 0.",
        "# TYPE defectops_monitor_drift_detected gauge",
        "defectops_monitor_drift_detected 1.0",
    ]
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["defectops_feature_psi"].samples[0].labels == {"feature": 'we"ird\\na\nme'}


def test_html_report_is_small_self_contained_and_has_no_rows(reference: pd.DataFrame, tmp_path: Path) -> None:
    window = make_frame(2000, 10, shift=0.5, new_team=0.05)
    window.loc[0, "team"] = SENTINEL_TEXT
    window.loc[1, "age"] = SENTINEL_NUMBER
    window["<script>alert(1)</script>"] = 1.0
    ref = reference.assign(**{"<script>alert(1)</script>": np.linspace(0, 1, len(reference))})
    result = monitor_window(ref, window, now=NOW)
    page = render_html(result)
    assert page.startswith("<!DOCTYPE html>")
    assert len(page.encode()) < 300_000
    assert page.count("<svg") == 3  # drift scores, score histogram, PCA chunks
    assert "<script" not in page  # the odd column name is escaped, and there are no scripts
    assert "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=\"https?:", page)  # nothing fetched from the network
    assert "<link" not in page
    assert "<img" not in page
    assert SENTINEL_TEXT not in page
    assert "987654" not in page
    assert "drift" in page
    path = write_html(result, tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8") == page


def test_html_report_of_a_reference_without_scores(reference: pd.DataFrame) -> None:
    result = monitor_window(reference.drop(columns=["score", "label"]), make_frame(300, 11), now=NOW)
    page = render_html(result)
    assert "calibration unknown" in page
    assert page.count("<svg") == 3


def test_html_report_says_what_was_monitored(reference: pd.DataFrame, tmp_path: Path) -> None:
    # Found on flask: `defectops monitor` printed the model, version, period and reference above its summary,
    # and the HTML report it wrote (monitoring/reports/<model>/v1-<time>.html) said none of them.
    result = monitor_window(reference, make_frame(300, 12), now=NOW)
    context = [
        "model jit: 10 served predictions of v1 from 2026-11-29 02:44 to 2026-12-06 02:44 UTC (--since 7d)",
        "reference: 200 training commits of 2023-11-09..2026-04-09 <b>",
    ]
    path = write_html(result, tmp_path / "report.html", context)
    page = path.read_text(encoding="utf-8")
    assert "<li>model jit: 10 served predictions of v1 from 2026-11-29 02:44" in page
    assert "<li>reference: 200 training commits of 2023-11-09..2026-04-09 &lt;b&gt;</li>" in page
    assert "<ul class='context'>" not in render_html(result)  # file mode has nothing to add
