"""The pieces under the routes, in process: scorers (fast path == shared scoring), smoke test, routing, the
control file and the group-commit writer."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from defectops.data.schemas import FEATURES
from defectops.errors import ConfigError, InputError, ModelError, PredictionLogError
from defectops.predlog import PredictionLog, PredictionRecord
from defectops.registry.loading import LoadedModel, ModelMeta
from defectops.serving.control import ControlFile
from defectops.serving.deployment import Traffic, prepare, route_fraction
from defectops.serving.writer import LogWriter
from defectops.training.models import make_model
from defectops.training.risk import RiskBands, score
from serving.conftest_api import fit_model, synthetic_changes

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _loaded(estimator: Any, features: list[str], threshold: float, version: int = 1) -> LoadedModel:
    meta = ModelMeta(
        name="jit",
        version=version,
        alias="champion",
        run_id=None,
        model_uri=f"models:/jit/{version}",
        source="test",
        features=features,
        threshold=threshold,
        dataset_fingerprint=None,
        serialization_format=None,
        created_at=None,
    )
    return LoadedModel(estimator=estimator, meta=meta)


def test_booster_fast_path_equals_the_shared_scoring() -> None:
    model, frame = fit_model(5)
    served = prepare(
        _loaded(model, list(FEATURES), model.threshold_), reference=frame, threshold=None, now=NOW
    )
    assert served.scorer_kind == "booster"
    rows = frame.iloc[:300]
    scores = served.score(rows[list(FEATURES)].to_numpy(dtype=np.float64), None, 4)
    bands = model.risk_bands()
    expected = score(
        model, rows, model_name="jit", model_version="1", threshold=model.threshold_, bands=bands, top_k=4
    )
    assert served.bands == bands
    for probability, reasons, want in zip(
        scores.probabilities.tolist(), scores.reasons, expected, strict=True
    ):
        assert probability == pytest.approx(want.probability, abs=1e-12)
        assert served.bands.band(probability) == want.band
        assert [r["feature"] for r in reasons] == [r.feature for r in want.reasons]
        assert reasons == [
            r.as_dict() | {"contribution": pytest.approx(r.contribution, abs=1e-12)} for r in want.reasons
        ]


def test_direct_lightgbm_call_equals_the_public_booster_predict() -> None:
    from defectops.serving.scorers import BoosterScorer

    model, frame = fit_model(6)
    values = frame[list(FEATURES)].to_numpy(dtype=np.float64)[:40]
    direct = BoosterScorer(model)
    public = BoosterScorer(model)
    public.direct = None  # what the scorer falls back to when LightGBM's ctypes handle is not available
    # Both without TreeSHAP tables, so that pred_contrib itself goes through both call paths.
    direct.tables = public.tables = None
    assert direct.direct is not None
    for top_k in (0, 3):
        a, b = direct(values, None, top_k), public(values, None, top_k)
        assert a.probabilities.tolist() == b.probabilities.tolist()
        assert a.reasons == b.reasons
    # The Python sort of small requests and the NumPy sort of larger ones give the same reasons.
    one_by_one = [direct(values[i : i + 1], None, 5).reasons[0] for i in range(len(values))]
    assert one_by_one == direct(values, None, 5).reasons
    # Non-contiguous input (a column slice) is copied to the layout LightGBM expects.
    wide = np.hstack([values, values])[:, : len(FEATURES)]
    assert direct(wide, None, 0).probabilities.tolist() == public(values, None, 0).probabilities.tolist()


def test_booster_fast_path_breaks_ties_by_feature_name() -> None:
    model, frame = fit_model(5)
    served = prepare(
        _loaded(model, list(FEATURES), model.threshold_), reference=frame, threshold=None, now=NOW
    )
    # A feature the trees never split on contributes exactly 0: with top_k = all features, zero-contribution
    # features come last, in name order (as JITModel.explain sorts them).
    scores = served.score(frame[list(FEATURES)].to_numpy(dtype=np.float64)[:50], None, len(FEATURES))
    for reasons in scores.reasons:
        zeros = [r["feature"] for r in reasons if r["contribution"] == 0.0]
        assert zeros == sorted(zeros)
        assert [r["feature"] for r in reasons][len(reasons) - len(zeros) :] == zeros


def test_explain_path_for_other_defectops_models_uses_the_shared_scoring() -> None:
    frame, labels = synthetic_changes(300, 3)
    model = make_model("logreg").fit(frame, labels)
    served = prepare(
        _loaded(model, list(FEATURES), model.threshold_), reference=frame, threshold=None, now=NOW
    )
    assert served.scorer_kind == "explain"
    scores = served.score(frame[list(FEATURES)].to_numpy(dtype=np.float64)[:20], None, 3)
    expected = model.predict_proba(frame.iloc[:20])[:, 1]
    assert scores.probabilities.tolist() == pytest.approx(expected.tolist(), abs=1e-12)
    assert all(len(r) == 3 for r in scores.reasons)


def test_plain_classifier_gets_probabilities_and_two_bands() -> None:
    frame, labels = synthetic_changes(300, 4)
    features = ["la", "ld", "nf"]
    model = LogisticRegression(max_iter=500).fit(frame[features], labels)
    served = prepare(_loaded(model, features, 0.4), reference=frame, threshold=None, now=NOW)
    assert served.scorer_kind == "proba"
    # No base rate known: medium == high == threshold, so only "low" and "high" occur.
    assert served.bands == RiskBands(medium=0.4, high=0.4)
    scores = served.score(frame[features].to_numpy(dtype=np.float64)[:10], None, 5)
    assert scores.probabilities.tolist() == pytest.approx(
        model.predict_proba(frame[features].iloc[:10])[:, 1].tolist()
    )
    assert scores.reasons == [[] for _ in range(10)]


def test_configured_threshold_overrides_the_registered_one() -> None:
    model, frame = fit_model(5)
    served = prepare(
        _loaded(model, list(FEATURES), model.threshold_), reference=frame, threshold=0.9, now=NOW
    )
    assert served.threshold == 0.9
    assert served.bands == model.risk_bands()  # the bands follow the base rate, not the threshold


class _Drifting:
    """Wraps a model and shifts its predict_proba: the serving path and predict_proba then disagree."""

    def __init__(self, model: Any, shift: float) -> None:
        self.model = model
        self.shift = shift
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self.model.predict_proba(X)[:, 1] + self.shift
        return np.column_stack([1 - p, p])

    def explain(self, X: Any, top_k: int = 5) -> Any:
        return self.model.explain(X, top_k)


def test_smoke_test_refuses_a_model_whose_paths_disagree_or_give_nan() -> None:
    model, frame = fit_model(5)
    with pytest.raises(ModelError, match=r"differ by 0\.01"):
        prepare(
            _loaded(_Drifting(model, 0.01), list(FEATURES), 0.5), reference=frame, threshold=None, now=NOW
        )
    with pytest.raises(ModelError, match="predict_proba gives \\[nan"):
        prepare(
            _loaded(_Drifting(model, float("nan")), list(FEATURES), 0.5),
            reference=frame,
            threshold=None,
            now=NOW,
        )


def test_smoke_test_uses_a_zero_row_without_reference() -> None:
    model, _ = fit_model(5)
    served = prepare(
        _loaded(model, list(FEATURES), model.threshold_), reference=None, threshold=None, now=NOW
    )
    assert served.version == 1


def test_a_model_with_inputs_the_api_does_not_accept_is_refused() -> None:
    frame, labels = synthetic_changes(200, 4)
    frame["custom_metric"] = frame["la"] * 2
    model = LogisticRegression(max_iter=500).fit(frame[["la", "custom_metric"]], labels)
    with pytest.raises(ModelError, match="custom_metric"):
        prepare(_loaded(model, ["la", "custom_metric"], 0.5), reference=frame, threshold=None, now=NOW)


def test_route_fraction_is_a_fixed_uniform_number_per_id() -> None:
    rng = np.random.default_rng(0)
    ids = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(20_000)]
    fractions = np.array([route_fraction(i) for i in ids])
    assert all(route_fraction(i) == f for i, f in zip(ids[:100], fractions[:100], strict=True))
    assert fractions.min() >= 0.0
    assert fractions.max() < 1.0
    # Uniform: the share below 0.3 is 0.3 within 5 standard errors (sqrt(0.3 * 0.7 / 20000) = 0.0032).
    assert abs((fractions < 0.3).mean() - 0.3) < 5 * 0.0033


def test_traffic_values_must_fit_together() -> None:
    assert Traffic() == Traffic("off", 0.0)
    for mode, share in (("off", 0.5), ("canary", 0.0), ("shadow", 1.5), ("blue", 0.5)):
        with pytest.raises(InputError):
            Traffic(mode, share)  # type: ignore[arg-type]


def test_control_file_generations_and_bad_documents(tmp_path: Path) -> None:
    control = ControlFile.for_model(tmp_path, "jit/odd name")
    assert control.path == tmp_path / "serving" / "jit_odd_name.control.json"
    assert control.read() is None
    assert control.stamp() is None
    first = control.update(lambda current: (1, 2, Traffic("canary", 0.1), "first"), now=NOW)
    second = control.update(lambda current: (current.champion, None, Traffic(), "second"), now=NOW)  # type: ignore[union-attr]
    assert (first.generation, second.generation) == (1, 2)
    read = control.read()
    assert read == second
    assert (read.champion, read.challenger, read.traffic) == (1, None, Traffic())  # type: ignore[union-attr]
    control.path.write_text(json.dumps({"format": 1, "generation": 3, "champion": "x"}))
    with pytest.raises(ConfigError, match="invalid"):
        control.read()
    control.path.write_text("{")
    with pytest.raises(ConfigError, match="not JSON"):
        control.read()


# ------------------------------------------------------------------------------------------------ writer


def _record(prediction_id: str | None = None) -> PredictionRecord:
    return PredictionRecord(
        prediction_id=prediction_id or str(uuid.uuid4()),
        created_at=NOW,
        model_name="jit",
        model_version="1",
        served=True,
        inputs={"la": 1.0},
        score=0.2,
        threshold=0.5,
        risk_label=0,
        risk_band="low",
    )


def test_control_file_and_gauge_paths_may_be_strings_or_paths(tmp_path: Path) -> None:
    from defectops.serving import publish_gauges, published_gauges_path

    by_str, by_path = ControlFile.for_model(str(tmp_path), "jit"), ControlFile.for_model(tmp_path, "jit")
    assert by_str.path == by_path.path == tmp_path / "serving" / "jit.control.json"
    by_str.update(lambda _current: (1, None, Traffic(), "first"), now=datetime(2026, 1, 1, tzinfo=UTC))
    state = ControlFile(str(by_path.path)).read()
    assert state is not None
    assert state.champion == 1
    gauges = published_gauges_path(str(by_path.path))
    assert gauges == published_gauges_path(by_path.path) == tmp_path / "serving" / "jit.monitoring.prom"
    publish_gauges("x 1.0\n", str(gauges))
    assert gauges.read_text(encoding="utf-8") == "x 1.0\n"


def test_group_commit_takes_everything_waiting_in_one_transaction(tmp_path: Path) -> None:
    log = PredictionLog.from_url(f"sqlite:///{tmp_path / 'p.db'}")
    commits: list[int] = []
    gate = threading.Event()

    def observe(rows: int, _seconds: float) -> None:
        commits.append(rows)
        if len(commits) == 1:
            gate.wait(timeout=30)  # hold the writer after the first commit while the others queue up

    writer = LogWriter(log, observe=observe).start()

    async def scenario() -> None:
        first = asyncio.create_task(writer.write([_record()]))
        while not commits:
            await asyncio.sleep(0.001)
        others = [asyncio.create_task(writer.write([_record(), _record()])) for _ in range(10)]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in others)  # not acknowledged before their commit
        gate.set()
        await asyncio.gather(first, *others)

    asyncio.run(scenario())
    writer.close()
    # One commit for the first request, one for the 10 that waited meanwhile (20 rows).
    assert commits == [1, 20]
    assert log.counts().predictions == 21
    log.close()


def test_a_failing_request_does_not_fail_the_others_of_its_group(tmp_path: Path) -> None:
    log = PredictionLog.from_url(f"sqlite:///{tmp_path / 'p.db'}")
    taken = _record()
    log.record([taken])
    commits: list[int] = []
    gate = threading.Event()

    def observe(rows: int, _seconds: float) -> None:
        commits.append(rows)
        if len(commits) == 1:
            gate.wait(timeout=30)

    writer = LogWriter(log, observe=observe).start()

    async def scenario() -> list[Any]:
        first = asyncio.create_task(writer.write([_record()]))
        while not commits:
            await asyncio.sleep(0.001)
        good = [asyncio.create_task(writer.write([_record()])) for _ in range(3)]
        bad = asyncio.create_task(writer.write([_record(taken.prediction_id)]))  # id already logged
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *good, bad, return_exceptions=True)

    results = asyncio.run(scenario())
    writer.close()
    assert results[:4] == [None, None, None, None]
    assert isinstance(results[4], InputError)
    # The group of four failed as a whole, then each request was committed on its own: 1 + 1 + 1 + 1 + 1.
    assert commits == [1, 1, 1, 1]
    assert log.counts().predictions == 5
    log.close()


def test_a_closed_writer_refuses_new_work_and_drained_everything(tmp_path: Path) -> None:
    log = PredictionLog.from_url(f"sqlite:///{tmp_path / 'p.db'}")
    writer = LogWriter(log).start()

    async def scenario() -> None:
        await asyncio.gather(*(writer.write([_record()]) for _ in range(5)))
        writer.close()
        with pytest.raises(PredictionLogError, match="not running"):
            await writer.write([_record()])

    asyncio.run(scenario())
    assert log.counts().predictions == 5
    log.close()


def test_the_matrix_from_records_keeps_the_feature_order() -> None:
    from defectops.serving.answers import records_batch
    from defectops.serving.schemas import ChangeRecord

    records = [ChangeRecord(la=1.0, ld=2.0, nf=3.0, fix=True), ChangeRecord(la=4.0, nf=6.0)]
    batch = records_batch(records)
    matrix = batch.matrix(["nf", "la", "fix", "ld"])
    assert matrix.tolist()[0] == [3.0, 1.0, 1.0, 2.0]
    assert matrix[1, :2].tolist() == [6.0, 4.0]
    assert np.isnan(matrix[1, 2:]).all()  # missing: reported as 422 by the service
    assert batch.inputs == [{"la": 1.0, "ld": 2.0, "nf": 3.0, "fix": True}, {"la": 4.0, "nf": 6.0}]
    assert pd.isna(pd.Series(batch.shas)).all()


def test_prediction_ids_are_canonical_time_ordered_version_7_uuids() -> None:
    from defectops.serving.answers import new_prediction_ids

    ids = new_prediction_ids(2000, NOW)
    assert len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        # The first 48 bits are the Unix time in milliseconds (RFC 9562).
        assert parsed.int >> 80 == int(NOW.timestamp() * 1000)
    later = new_prediction_ids(1, NOW + timedelta(milliseconds=1))[0]
    assert later > max(ids)  # time-ordered, also as text
    assert new_prediction_ids(0, NOW) == []


def test_change_records_hold_their_values_to_the_log_rules() -> None:
    """records_batch hands the log CheckedInputs, which PredictionRecord does not check again: the schema of
    ChangeRecord must guarantee what the log's own checks would."""
    from pydantic import ValidationError

    from defectops.predlog.records import CheckedInputs, PredictionRecord, _check_input_name
    from defectops.serving.answers import records_batch
    from defectops.serving.schemas import ID_FIELDS, ChangeRecord

    names = [name for name in ChangeRecord.model_fields if name not in ID_FIELDS]
    for name in names:
        _check_input_name(name)  # raises for a reserved or malformed name
    numeric = [n for n in names if n not in ("message", "paths", "commit_time")]
    for name in [*numeric, "commit_time"]:  # a time is a string: a number is refused too (#14)
        for bad in ("NaN", "Infinity", "-Infinity", "1e999"):
            with pytest.raises(ValidationError):
                ChangeRecord.model_validate_json(f'{{"{name}": {bad}}}')
    document = dict.fromkeys(numeric, 3) | {"fix": True, "message": "Fix it", "paths": "a.py"}
    document["commit_time"] = "2026-11-25T12:00:00+01:00"
    record = ChangeRecord.model_validate_json(json.dumps(document))
    (inputs,) = records_batch([record]).inputs
    assert type(inputs) is CheckedInputs
    assert all(type(v) in (float, int, bool, str) for v in inputs.values())
    common = dict(
        prediction_id="018f0000-0000-7000-8000-000000000001",
        created_at=NOW,
        model_name="m",
        model_version="1",
        served=True,
        score=0.25,
        threshold=0.5,
        risk_label=0,
        risk_band="low",
    )
    assert PredictionRecord(inputs=inputs, **common) == PredictionRecord(inputs=dict(inputs), **common)
