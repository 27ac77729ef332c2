"""The promotion gate on hand-worked windows, the bootstrap, and the logged, replayable decision.

Base window of four commits (two defective), tiled to reach the label counts; tiling leaves ROC-AUC, F1 and
the Brier score unchanged because every pair/row is repeated equally often.

    y          = [1,    1,    0,    0   ]
    GOOD       = [0.9,  0.8,  0.2,  0.1 ]  all 4 positive-negative pairs ordered -> AUC 1.0
                                           predicted at 0.5: [1,1,0,0] -> TP 2, FP 0, FN 0 -> F1 1.0
                                           Brier = (0.1² + 0.2² + 0.2² + 0.1²) / 4 = 0.10 / 4 = 0.025
    FAIR       = [0.6,  0.3,  0.4,  0.1 ]  pairs: .6>.4 .6>.1 .3<.4 .3>.1 -> AUC 3/4 = 0.75
                                           predicted at 0.5: [1,0,0,0] -> P 1, R 1/2 -> F1 2/3
                                           Brier = (0.4² + 0.7² + 0.4² + 0.1²) / 4 = 0.82 / 4 = 0.205
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from defectops.errors import InputError, ModelError
from defectops.registry.gate import (
    GateCriteria,
    GateDecision,
    evaluate_gate,
    paired_bootstrap_auc_difference,
    replay_gate,
    weighted_auc,
)
from defectops.registry.records import CHALLENGER, CHAMPION
from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import TrainingRun

Y = [1, 1, 0, 0]
GOOD = [0.9, 0.8, 0.2, 0.1]
FAIR = [0.6, 0.3, 0.4, 0.1]
T0 = datetime(2026, 4, 1, tzinfo=UTC)


def tile(values: list[float], times: int) -> np.ndarray:
    return np.tile(np.asarray(values, dtype=float), times)


def criterion(decision: GateDecision, name: str):
    (found,) = [c for c in decision.criteria if c.name == name]
    return found


def test_clearly_better_challenger_passes_every_default_criterion() -> None:
    d = evaluate_gate(tile(Y, 50), None, tile(GOOD, 50), tile(FAIR, 50))
    assert d.mode == "challenger_vs_champion"
    assert d.passed, d.reason
    assert (d.n_labels, d.n_positive) == (200, 100)
    assert d.challenger.roc_auc == pytest.approx(1.0)
    assert d.challenger.f1 == pytest.approx(1.0)
    assert d.challenger.brier == pytest.approx(0.025)
    assert d.champion is not None
    assert d.champion.roc_auc == pytest.approx(0.75)
    assert d.champion.f1 == pytest.approx(2 / 3)
    assert d.champion.brier == pytest.approx(0.205)
    assert criterion(d, "labels").value == 200  # 200 >= 200
    assert criterion(d, "roc_auc_not_worse").value == pytest.approx(0.25)  # 1.0 - 0.75
    assert criterion(d, "f1_relative_gain").value == pytest.approx(0.5)  # (1 - 2/3) / (2/3)
    assert criterion(d, "brier_increase").value == pytest.approx(-0.18)  # 0.025 - 0.205
    # GOOD is perfect on every resample; FAIR reaches 1.0 only if a resample misses all 50 copies of the
    # misordered positive (p = (3/4)^200) or negative, so the whole interval lies above 0
    assert d.bootstrap is not None
    assert d.bootstrap.lower is not None
    assert d.bootstrap.lower > 0
    assert [c.name for c in d.criteria] == [
        "labels",
        "both_classes",
        "roc_auc_not_worse",
        "f1_relative_gain",
        "brier_increase",
        "roc_auc_ci_lower",
    ]


def test_worse_challenger_fails_every_comparison() -> None:
    d = evaluate_gate(tile(Y, 50), None, tile(FAIR, 50), tile(GOOD, 50))
    assert not d.passed
    failed = {c.name for c in d.failed_criteria()}
    assert failed == {"roc_auc_not_worse", "f1_relative_gain", "brier_increase", "roc_auc_ci_lower"}
    assert criterion(d, "roc_auc_not_worse").value == pytest.approx(-0.25)  # -0.25 < 0
    assert criterion(d, "f1_relative_gain").value == pytest.approx(-1 / 3)  # (2/3 - 1) / 1
    assert criterion(d, "brier_increase").value == pytest.approx(0.18)  # 0.18 > 0.01
    assert d.bootstrap is not None
    assert d.bootstrap.upper is not None
    assert d.bootstrap.upper < 0
    assert d.reason.startswith("failed: roc_auc_not_worse: ROC-AUC difference -0.25 < 0")


def test_too_few_matured_labels() -> None:
    d = evaluate_gate(tile(Y, 49), None, tile(GOOD, 49), tile(FAIR, 49))  # 196 labels
    assert [c.name for c in d.failed_criteria()] == ["labels"]
    assert criterion(d, "labels").reason == "matured labels 196 < 200"
    relaxed = evaluate_gate(
        tile(Y, 49), None, tile(GOOD, 49), tile(FAIR, 49), criteria=GateCriteria(min_labels=196)
    )
    assert relaxed.passed


def test_f1_relative_gain_alone() -> None:
    # identical scores isolate F1: AUC difference 0 (passes tolerance 0), Brier difference 0, and every
    # bootstrap difference is exactly 0 (interval [0, 0]); only the thresholds differ.
    scores = tile(FAIR, 50)
    # challenger threshold 0.35 predicts [1,0,1,0]: TP 1, FP 1, FN 1 -> F1 0.5; gain (0.5 - 2/3)/(2/3) = -0.25
    worse = evaluate_gate(tile(Y, 50), None, scores, scores, challenger_threshold=0.35)
    assert [c.name for c in worse.failed_criteria()] == ["f1_relative_gain"]
    assert criterion(worse, "f1_relative_gain").value == pytest.approx(-0.25)
    assert worse.bootstrap is not None
    assert (worse.bootstrap.lower, worse.bootstrap.upper) == (0.0, 0.0)
    # threshold 0.25 predicts [1,1,1,0]: P 2/3, R 1 -> F1 0.8; gain (0.8 - 2/3)/(2/3) = 0.2 >= 0.02
    better = evaluate_gate(tile(Y, 50), None, scores, scores, challenger_threshold=0.25)
    assert better.passed, better.reason
    assert criterion(better, "f1_relative_gain").value == pytest.approx(0.2)
    # same thresholds: gain 0, below the default +2 %, enough for a rule of 0
    assert [c.name for c in evaluate_gate(tile(Y, 50), None, scores, scores).failed_criteria()] == [
        "f1_relative_gain"
    ]
    assert evaluate_gate(
        tile(Y, 50), None, scores, scores, criteria=GateCriteria(f1_min_relative_gain=0.0)
    ).passed


def test_f1_gain_from_a_zero_champion_is_infinite() -> None:
    # champion threshold 0.95 predicts nothing -> F1 0; challenger F1 2/3 > 0 -> infinite gain, passes
    scores = tile(FAIR, 50)
    d = evaluate_gate(tile(Y, 50), None, scores, scores, champion_threshold=0.95)
    assert criterion(d, "f1_relative_gain").value == float("inf")
    assert criterion(d, "f1_relative_gain").passed
    assert d.to_document()["criteria"][3]["value"] is None  # JSON has no infinity


def test_brier_increase_alone() -> None:
    # same ranking as FAIR (pos .55 > neg .45 > pos .2 > neg .15) and same predictions at 0.5 -> AUC, F1
    # and every bootstrap difference unchanged; Brier = (0.45² + 0.8² + 0.45² + 0.15²)/4 = 1.0675/4 = 0.266875
    overconfident = [0.55, 0.2, 0.45, 0.15]
    rules = GateCriteria(f1_min_relative_gain=0.0)
    d = evaluate_gate(tile(Y, 50), None, tile(overconfident, 50), tile(FAIR, 50), criteria=rules)
    assert [c.name for c in d.failed_criteria()] == ["brier_increase"]
    assert criterion(d, "brier_increase").value == pytest.approx(0.266875 - 0.205)  # 0.061875 > 0.01
    # same ranking again, better calibrated: Brier = (0.1² + 0.55² + 0.49² + 0.05²)/4 = 0.5551/4 = 0.138775
    calibrated = [0.9, 0.45, 0.49, 0.05]
    ok = evaluate_gate(tile(Y, 50), None, tile(calibrated, 50), tile(FAIR, 50), criteria=rules)
    assert ok.passed, ok.reason
    assert criterion(ok, "brier_increase").value == pytest.approx(0.138775 - 0.205)
    loose = GateCriteria(f1_min_relative_gain=0.0, brier_max_increase=0.07)  # 0.061875 <= 0.07
    assert evaluate_gate(tile(Y, 50), None, tile(overconfident, 50), tile(FAIR, 50), criteria=loose).passed


def test_roc_auc_tolerance_alone() -> None:
    only_auc = GateCriteria(f1_min_relative_gain=None, brier_max_increase=None, roc_auc_ci_margin=None)
    worse = evaluate_gate(tile(Y, 50), None, tile(FAIR, 50), tile(GOOD, 50), criteria=only_auc)
    assert [c.name for c in worse.failed_criteria()] == ["roc_auc_not_worse"]  # -0.25 < -0.0
    assert worse.bootstrap is None  # switched off criteria are not computed
    tolerant = only_auc.model_copy(update={"roc_auc_tolerance": 0.3})
    assert evaluate_gate(
        tile(Y, 50), None, tile(FAIR, 50), tile(GOOD, 50), criteria=tolerant
    ).passed  # -0.25>=-0.3


def test_bootstrap_interval_alone() -> None:
    # The champion misorders positive row 1 against negative row 2, the challenger positive row 0 against
    # the same negative: both AUC 0.75 on the window, same Brier and same F1 (2/3). On a resample with
    # draw counts c0..c3 the difference is (c1 - c0) * c2 / ((c0 + c1)(c2 + c3)), symmetric around 0, so the
    # interval straddles 0: the point estimate passes (0 >= 0) but the interval does not exclude a drop.
    champion = [0.9, 0.3, 0.4, 0.1]
    challenger = [0.3, 0.9, 0.4, 0.1]
    rules = GateCriteria(f1_min_relative_gain=0.0)
    d = evaluate_gate(tile(Y, 50), None, tile(challenger, 50), tile(champion, 50), criteria=rules)
    assert [c.name for c in d.failed_criteria()] == ["roc_auc_ci_lower"]
    assert criterion(d, "roc_auc_not_worse").value == pytest.approx(0.0)
    assert d.bootstrap is not None
    assert d.bootstrap.lower is not None
    assert d.bootstrap.upper is not None
    assert d.bootstrap.lower < 0 < d.bootstrap.upper
    # |c1 - c0| has sd 10 with 200 draws; a difference below -0.2 needs |c1 - c0| >= 40 (4 sd): a margin of
    # 0.2 accepts this interval
    assert evaluate_gate(
        tile(Y, 50),
        None,
        tile(challenger, 50),
        tile(champion, 50),
        criteria=rules.model_copy(update={"roc_auc_ci_margin": 0.2}),
    ).passed


def test_first_model_floor() -> None:
    passed = evaluate_gate(tile(Y, 15), tile([10.0, 20.0, 5.0, 1.0], 15), tile(GOOD, 15))  # 60 rows
    assert passed.mode == "first_model"
    assert passed.passed
    assert [c.name for c in passed.criteria] == ["labels", "both_classes", "roc_auc_floor"]
    assert criterion(passed, "roc_auc_floor").reason == "ROC-AUC 1 >= 0.65"
    assert passed.effort_total == pytest.approx(36.0 * 15)  # (10 + 20 + 5 + 1) * 15
    assert passed.champion is None
    assert passed.bootstrap is None

    # FAIR has AUC 0.75: below a 0.8 floor, above the 0.65 default
    assert evaluate_gate(tile(Y, 15), None, tile(FAIR, 15)).passed
    strict = evaluate_gate(
        tile(Y, 15), None, tile(FAIR, 15), criteria=GateCriteria(first_model_min_roc_auc=0.8)
    )
    assert [c.name for c in strict.failed_criteria()] == ["roc_auc_floor"]
    assert criterion(strict, "roc_auc_floor").reason == "ROC-AUC 0.75 < 0.8"

    # constant scores rank nothing: AUC 0.5 < 0.65
    flat = evaluate_gate(tile(Y, 15), None, np.full(60, 0.3))
    assert criterion(flat, "roc_auc_floor").value == pytest.approx(0.5)
    assert not flat.passed

    small = evaluate_gate(tile(Y, 12), None, tile(GOOD, 12))  # 48 < 50 labelled rows
    assert [c.name for c in small.failed_criteria()] == ["labels"]

    one_class = evaluate_gate(np.zeros(60), None, np.full(60, 0.2))
    assert {c.name for c in one_class.failed_criteria()} == {"both_classes", "roc_auc_floor"}
    assert criterion(one_class, "roc_auc_floor").reason == "ROC-AUC is undefined"
    assert one_class.challenger.roc_auc is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1, 0, 2], None, [0.1, 0.2, 0.3]), "0/1 labels only"),
        (([1, 0], None, [0.1, 0.2, 0.3]), "one score per label"),
        (([1, 0], None, [0.1, 1.2]), r"probabilities in \[0, 1\]"),
        (([1, 0], [1.0, -1.0], [0.1, 0.2]), "effort must be finite and non-negative"),
        (([], None, []), "non-empty"),
        (([1, 0], None, [0.1, 0.2], [0.1, float("nan")]), "champion_scores must be probabilities"),
    ],
)
def test_bad_windows_are_refused(args: tuple, message: str) -> None:
    with pytest.raises(InputError, match=message):
        evaluate_gate(*args)


def test_weighted_auc_matches_sklearn_on_repeated_rows() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(np.int8)
    scores = np.round(rng.random(300), 1)  # many ties
    weights = rng.integers(0, 4, size=(5, 300))
    got = weighted_auc(weights, y, scores)
    for k in range(5):
        expected = roc_auc_score(np.repeat(y, weights[k]), np.repeat(scores, weights[k]))
        assert got[k] == pytest.approx(expected, abs=1e-12)
    assert np.isnan(weighted_auc(np.ones((1, 3)), np.array([1, 1, 1]), np.array([0.1, 0.2, 0.3]))[0])


def test_bootstrap_is_deterministic_with_a_seed() -> None:
    rng = np.random.default_rng(11)
    y = (rng.random(400) < 0.25).astype(np.int8)
    a = np.clip(0.3 * y + 0.7 * rng.random(400), 0, 1)
    b = np.clip(0.2 * y + 0.8 * rng.random(400), 0, 1)
    first = paired_bootstrap_auc_difference(y, a, b, resamples=500, confidence=0.9, seed=5)
    second = paired_bootstrap_auc_difference(y, a, b, resamples=500, confidence=0.9, seed=5)
    other = paired_bootstrap_auc_difference(y, a, b, resamples=500, confidence=0.9, seed=6)
    assert first == second
    assert first.valid == 500
    assert (first.lower, first.upper) != (other.lower, other.upper)
    point = roc_auc_score(y, a) - roc_auc_score(y, b)
    assert first.lower is not None
    assert first.upper is not None
    assert first.lower < point < first.upper
    # decisions carry the seed, so the whole decision repeats
    assert evaluate_gate(y, None, a, b) == evaluate_gate(y, None, a, b)


def test_bootstrap_skips_resamples_with_one_class() -> None:
    # one defective commit in 200: a resample misses it with probability (199/200)^200 ~ 0.37, so roughly
    # 63 % of the resamples are valid (more than half: the interval is defined)
    y = np.zeros(200, dtype=np.int8)
    y[0] = 1
    same = np.full(200, 0.5)
    interval = paired_bootstrap_auc_difference(y, same, same, resamples=200, confidence=0.95, seed=0)
    assert 100 <= interval.valid < 200
    assert (interval.lower, interval.upper) == (0.0, 0.0)  # identical scores: every valid difference is 0


def test_bootstrap_undefined_on_a_one_class_window() -> None:
    d = evaluate_gate(np.zeros(300), None, np.full(300, 0.1), np.full(300, 0.2), criteria=GateCriteria())
    assert d.bootstrap is not None
    assert (d.bootstrap.valid, d.bootstrap.lower) == (0, None)
    ci = criterion(d, "roc_auc_ci_lower")
    assert not ci.passed
    assert ci.reason == "bootstrap interval undefined (0 of 1000 resamples had both classes)"
    assert criterion(d, "roc_auc_not_worse").reason == "ROC-AUC difference is undefined"


def test_apply_gate_logs_promotes_and_replays(
    registry: ModelRegistry, model_name: str, shared_run: TrainingRun
) -> None:
    # first model: the floor decides, the decision is an MLflow run and the promotion cites it
    registry.register(model_name, shared_run.model_uri, who="ci", why="train", now=T0)
    first = registry.apply_gate(
        model_name,
        1,
        y_true=tile(Y, 15),
        effort=tile([10.0, 20.0, 5.0, 1.0], 15),
        challenger_scores=tile(GOOD, 15),
        champion_scores=None,
        champion_version=None,
        who="heal",
        now=T0,
    )
    assert first.promoted
    assert registry.aliases(model_name) == {CHAMPION: 1}
    assert first.events[0].evidence["gate_run_id"] == first.gate_run_id
    assert first.events[0].evidence["gate"]["mode"] == "first_model"
    assert registry.get_version(model_name, 1).gate == "passed"

    # a worse challenger is rejected and archived, with the evidence stored
    registry.register(model_name, shared_run.model_uri, who="ci", why="retrain", now=T0)
    with pytest.raises(ModelError, match="scores came from no champion"):
        registry.apply_gate(
            model_name,
            2,
            y_true=tile(Y, 50),
            effort=None,
            challenger_scores=tile(FAIR, 50),
            champion_scores=None,
            champion_version=None,
            who="heal",
            now=T0,
        )
    rejected = registry.apply_gate(
        model_name,
        2,
        y_true=tile(Y, 50),
        effort=None,
        challenger_scores=tile(FAIR, 50),
        champion_scores=tile(GOOD, 50),
        champion_version=1,
        who="heal",
        now=T0,
    )
    assert not rejected.promoted
    assert registry.aliases(model_name) == {CHAMPION: 1}
    assert [(e.action, e.alias, e.from_version) for e in rejected.events] == [("archive", CHALLENGER, 2)]
    version = registry.get_version(model_name, 2)
    assert (version.status, version.gate) == ("archived", "failed")
    # the shared run's threshold (0.4) is used for both models' F1: FAIR at 0.4 predicts [1,0,1,0] -> 0.5
    assert rejected.decision.challenger.threshold == 0.4
    assert rejected.decision.challenger.f1 == pytest.approx(0.5)
    # a failed gate blocks a manual promotion unless forced
    with pytest.raises(ModelError, match="failed its promotion gate"):
        registry.promote(model_name, 2, "alice", "manual", None, now=T0)

    # the logged run replays to the same decision; other criteria can be tried on the same evidence
    assert replay_gate(rejected.gate_run_id, config=registry.config) == rejected.decision
    lenient = GateCriteria(
        roc_auc_tolerance=0.3, f1_min_relative_gain=-0.6, brier_max_increase=0.2, roc_auc_ci_margin=0.5
    )
    assert replay_gate(rejected.gate_run_id, config=registry.config, criteria=lenient).passed

    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=registry.config.tracking_uri).get_run(rejected.gate_run_id)
    assert run.data.tags["defectops.gate.passed"] == "false"
    assert run.data.tags["defectops.champion_version"] == "1"
    assert run.data.params["gate.min_labels"] == "200"
    assert run.data.metrics["criterion.roc_auc_not_worse"] == pytest.approx(-0.25)
