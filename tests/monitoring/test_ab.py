"""The A/B test of the service's split (issue #20), read from a real SQLite prediction log."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from defectops.cli import main
from defectops.monitoring import ab_test
from defectops.predlog import FeedbackRecord, PredictionLog, PredictionRecord
from defectops.training import delong_paired, delong_unpaired

NOW = datetime(2026, 6, 1, tzinfo=UTC)
START = NOW - timedelta(days=20)


def _record(version: str, score: float, at: datetime, *, served: bool = True, shadow_of: str | None = None,
            sha: str | None = None, model: str = "app") -> PredictionRecord:  # fmt: skip
    return PredictionRecord(
        prediction_id=str(uuid.uuid4()),
        created_at=at,
        model_name=model,
        model_version=version,
        served=served,
        inputs={"la": 1.0},
        score=score,
        threshold=0.5,
        risk_label=int(score >= 0.5),
        risk_band="high" if score >= 0.5 else "low",
        repo="r",
        commit_sha=sha,
        shadow_of=shadow_of,
    )


def _labels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, n)


def test_shadow_pairs_are_tested_paired_on_matured_labels_only(tmp_path: Path) -> None:
    y = _labels(60, 1)
    rng = np.random.default_rng(2)
    champion = np.clip(0.5 + 0.1 * (y - 0.5) + rng.normal(0, 0.2, 60), 0.01, 0.99)  # weak
    challenger = np.clip(0.5 + 0.6 * (y - 0.5) + rng.normal(0, 0.1, 60), 0.01, 0.99)  # strong
    records, feedback = [], []
    for i in range(60):
        at = START + timedelta(hours=i)
        served = _record("1", float(champion[i]), at)
        records += [
            served,
            _record("2", float(challenger[i]), at, served=False, shadow_of=served.prediction_id),
        ]
        # the last 10 labels arrive after NOW: pending, not matured
        label_time = at + timedelta(days=1) if i < 50 else NOW + timedelta(days=3)
        feedback.append(
            FeedbackRecord(label=int(y[i]), prediction_id=served.prediction_id, label_time=label_time)
        )
    with PredictionLog.from_url(tmp_path / "log.db") as log:
        log.record(records)
        log.add_feedback_batch(feedback, now=NOW)
        result = ab_test(log, since=START, until=NOW, now=NOW, model_name="app")
    assert (result.mode, result.version_a, result.version_b, result.n_a, result.n_b) == (
        "shadow",
        "1",
        "2",
        60,
        60,
    )
    assert result.matured == 50
    expected = delong_paired(y[:50], champion[:50], challenger[:50])
    assert result.labels is not None
    assert result.labels.p_value == pytest.approx(expected.p_value)
    assert result.labels.b > result.labels.a
    assert result.significant
    assert result.verdict.startswith("significant: v2 ranks better than v1 on 50 matured labels")
    document = result.as_dict()
    assert document["labels_test"]["test"] == "DeLong (paired)"
    json.dumps(document)  # the document the UI reads is plain JSON


def test_labels_known_when_the_later_arm_was_trained_are_not_counted(tmp_path: Path) -> None:
    # 50 shadow pairs, the label of pair i dated START + i h + 1 day; v2 learnt its labels at START + 40 h
    # (v1 before it): labels of pairs 0..16 (dated up to START + 40 h) may be v2's training rows
    y = _labels(50, 3)
    rng = np.random.default_rng(4)
    champion = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.2, 50), 0.01, 0.99)
    challenger = np.clip(0.5 + 0.4 * (y - 0.5) + rng.normal(0, 0.2, 50), 0.01, 0.99)
    records, feedback = [], []
    for i in range(50):
        at = START + timedelta(hours=i)
        served = _record("1", float(champion[i]), at)
        records += [
            served,
            _record("2", float(challenger[i]), at, served=False, shadow_of=served.prediction_id),
        ]
        feedback.append(
            FeedbackRecord(
                label=int(y[i]), prediction_id=served.prediction_id, label_time=at + timedelta(days=1)
            )
        )
    learnt = {"1": START - timedelta(days=30), "2": START + timedelta(hours=40)}
    asked: list[tuple[str, str]] = []

    def learnt_at(model: str, version: str) -> datetime | None:
        asked.append((model, version))
        return learnt[version]

    with PredictionLog.from_url(tmp_path / "log.db") as log:
        log.record(records)
        log.add_feedback_batch(feedback, now=NOW)
        everything = ab_test(log, since=START, until=NOW, now=NOW)
        fair = ab_test(log, since=START, until=NOW, now=NOW, learnt_at=learnt_at)
    assert (everything.matured, everything.known_when_trained) == (50, 0)
    assert (fair.matured, fair.known_when_trained) == (33, 17)
    assert sorted(asked) == [("app", "1"), ("app", "2")]  # the log's only model, both arms
    expected = delong_paired(y[17:], champion[17:], challenger[17:])
    assert fair.labels is not None
    assert fair.labels.p_value == pytest.approx(expected.p_value)
    assert fair.as_dict()["known_when_trained"] == 17


def test_canary_arms_are_unpaired_and_not_yet_significant_on_few_labels(tmp_path: Path) -> None:
    y = _labels(24, 5)
    rng = np.random.default_rng(6)
    scores = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.2, 24), 0.01, 0.99)
    records = [
        _record("1" if i % 2 else "2", float(scores[i]), START + timedelta(hours=i)) for i in range(24)
    ]
    feedback = [
        FeedbackRecord(label=int(y[i]), prediction_id=r.prediction_id, label_time=START + timedelta(days=2))
        for i, r in enumerate(records)
    ]
    with PredictionLog.from_url(tmp_path / "log.db") as log:
        log.record(records)
        log.add_feedback_batch(feedback, now=NOW)
        result = ab_test(log, since=START, until=NOW, now=NOW)
    assert (result.mode, result.version_a, result.version_b) == ("canary", "1", "2")
    odd, even = np.arange(24) % 2 == 1, np.arange(24) % 2 == 0
    expected = delong_unpaired(y[odd], scores[odd], y[even], scores[even])
    assert result.labels is not None
    assert result.labels.p_value == pytest.approx(expected.p_value)
    assert not result.significant
    assert result.verdict.startswith("not yet significant")
    assert "matured labels needed at 80% power" in result.verdict or "no sample size" in result.verdict


def test_no_split_says_so_and_the_cli_prints_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = tmp_path / "ws" / "predictions.db"
    url.parent.mkdir()
    with PredictionLog.from_url(url) as log:
        log.record([_record("3", 0.4, datetime.now(UTC) - timedelta(hours=1))])
    main(["-w", str(tmp_path / "ws"), "validate", "--ab", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["mode"] == "none"
    assert document["significant"] is False
    assert "every served prediction came from v3" in document["verdict"]


def test_validate_ab_without_a_log_is_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-w", str(tmp_path / "empty"), "validate", "--ab"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no prediction log")
    assert len(err.splitlines()) == 1


def test_no_split_is_printed_without_a_missing_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``defectops validate --ab`` printed 'A/B (none) ...: v3 (1 predictions) vs vNone (0)'."""
    url = tmp_path / "ws" / "predictions.db"
    url.parent.mkdir()
    with PredictionLog.from_url(url) as log:
        log.record([_record("3", 0.4, datetime.now(UTC) - timedelta(hours=1))])
    main(["-w", str(tmp_path / "ws"), "validate", "--ab"])
    out = capsys.readouterr().out
    assert "vNone" not in out
    assert "1 served prediction(s)" in out
    assert "every served prediction came from v3" in out
    main(["-w", str(tmp_path / "ws"), "validate", "--ab", "--model-name", "other"])
    out = capsys.readouterr().out
    assert "vNone" not in out
    assert "no served predictions of 'other'" in out


@pytest.mark.parametrize("option", [["--model-name", "app"], ["--log-url", "sqlite:///x.db"]])
def test_ab_options_without_ab_are_refused(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``defectops validate --model-name nope`` validated the workspace's repository and ignored the name."""
    with pytest.raises(SystemExit) as exit_info:
        main(["-w", str(tmp_path / "ws"), "validate", *option])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {option[0]} goes with --ab (the A/B test of the prediction log)"


def test_predictions_of_two_models_are_not_one_ab_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two repositories in one workspace log to one prediction log, and each model numbers its own versions.
    ``validate --ab`` without --model-name read flask's v1 and requests' v2 rows as a canary "v1 vs v2"."""
    from cli_main import run_main

    url = tmp_path / "ws" / "predictions.db"
    url.parent.mkdir()
    at = datetime.now(UTC) - timedelta(hours=1)
    with PredictionLog.from_url(url) as log:
        log.record([_record("1", 0.2, at, model="flask"), _record("1", 0.3, at, model="flask")])
        log.record([_record("2", 0.6, at, model="requests"), _record("2", 0.7, at, model="requests")])
    code, out, err = run_main(["-w", str(tmp_path / "ws"), "validate", "--ab"], capsys)
    assert (code, out) == (2, "")
    assert err.strip() == (
        "error: the prediction log holds predictions of several models (flask, requests): "
        "choose one with --model-name"
    )
    code, out, _err = run_main(
        ["-w", str(tmp_path / "ws"), "validate", "--ab", "--model-name", "requests"], capsys
    )
    assert code == 0
    assert "2 served prediction(s)" in out
    assert "every served prediction came from v2" in out
