"""A model registered before ``minimal`` existed (three-band metadata) still loads and serves four bands."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from defectops.predlog import PredictionLog
from defectops.training.risk import RiskBands
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient, Session, _log, fit_model, record_of


def test_a_three_band_model_serves_with_its_low_cut_at_half_the_base_rate(
    deployed: Deployed,
    make_client: MakeClient,
    api_session: Session,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model, frame = fit_model(3)
    fitted = model.risk_bands()
    # What the earlier version saved: no "low" cut, and "low" support counting everything below the base rate.
    below = (
        fitted.support[0].examples + fitted.support[1].examples,
        fitted.support[0].defects + fitted.support[1].defects,
    )
    model.bands_ = {
        "medium": fitted.medium,
        "high": fitted.high,
        "base_rate": fitted.base_rate,
        "support": [
            {"band": "low", "examples": below[0], "defects": below[1]},
            *(s.as_dict() for s in fitted.support[2:]),
        ],
    }
    run = _log(model, frame, api_session.config, "three-bands")
    version = deployed.register(run, champion=True)

    with caplog.at_level(logging.WARNING, logger="defectops.serving"):
        client = make_client(deployed.name)
    assert "was saved with three risk bands" in caplog.text
    champion = client.get("/v1/models").json()["champion"]
    assert champion["version"] == version
    bands = champion["risk_bands"]
    assert bands["low_derived"] is True
    assert bands["low"] == pytest.approx(fitted.base_rate / 2)
    assert (bands["medium"], bands["high"]) == (pytest.approx(fitted.medium), pytest.approx(fitted.high))
    assert [s["band"] for s in bands["support"]] == ["medium", "high"]

    response = client.post("/v1/predict", json={"records": [record_of(frame, i) for i in range(60)]})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    expected = RiskBands.from_dict(model.bands_)
    assert [a["risk_band"] for a in answers] == [expected.band(a["probability"]).value for a in answers]
    assert {a["risk_band"] for a in answers} == {"minimal", "low", "medium", "high"}
    assert all(a["base_rate"] == pytest.approx(fitted.base_rate) for a in answers)
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        assert log.get(answers[0]["prediction_id"]).risk_band == answers[0]["risk_band"]
