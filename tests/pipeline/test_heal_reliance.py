"""The champion's reliance on its features, as heal's monitor step and ``defectops monitor`` compute it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from defectops.config import MonitoringSettings
from defectops.pipeline.heal.context import reference_reliance
from defectops.registry.loading import LoadedModel, ModelMeta
from defectops.training.models import make_model


def _loaded(estimator: object, features: list[str]) -> LoadedModel:
    meta = ModelMeta(
        name="jit",
        version=1,
        alias="champion",
        run_id=None,
        model_uri="models:/jit/1",
        source="test",
        features=features,
        threshold=0.5,
        dataset_fingerprint=None,
        serialization_format=None,
        created_at=None,
    )
    return LoadedModel(estimator=estimator, meta=meta)


def test_reliance_is_the_models_mean_absolute_contribution_on_the_reference_when_asked_for() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"la": rng.gamma(2.0, 10.0, 600), "noise": rng.normal(0, 1, 600)})
    labels = (0.08 * frame["la"] + rng.normal(0, 1, 600) > 1.6).astype(int).to_numpy()
    model = make_model("logreg")
    model.fit(frame, labels)
    loaded = _loaded(model, ["la", "noise"])
    weighed = MonitoringSettings(alarm_feature_weight="reliance")
    reference = frame.assign(score=0.5, label=labels)  # the monitoring reference's extra columns are ignored
    reliance = reference_reliance(reference, loaded, weighed)
    assert reliance == dict(model.importance(frame))
    assert reliance is not None
    assert reliance["la"] > 5 * reliance.get("noise", 0.0)  # it relies on change size, not on the noise
    assert reference_reliance(reference, loaded, MonitoringSettings()) is None  # groups counted: not needed
    assert reference_reliance(reference.drop(columns=["noise"]), loaded, weighed) is None  # a feature missing
    plain = LogisticRegression().fit(frame, labels)  # no explanations: the monitor counts groups
    assert reference_reliance(reference, _loaded(plain, ["la", "noise"]), weighed) is None
