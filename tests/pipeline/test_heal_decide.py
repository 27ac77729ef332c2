"""The self-healing rules, one by one, against outcomes worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from defectops.config import HealSettings
from defectops.errors import InputError
from defectops.pipeline.heal import DecideInputs, Realized, decide, rollback_check

SETTINGS = HealSettings()  # the documented defaults


def inputs(**overrides: object) -> DecideInputs:
    base: dict[str, object] = {"champion_version": 1, "monitored": True}
    base.update(overrides)
    return DecideInputs.model_validate(base)


def fired(decision: object) -> list[str]:
    return list(decision.fired)  # type: ignore[attr-defined]


def test_defaults_are_the_documented_ones() -> None:
    assert SETTINGS.drift_confirmations == 2
    assert SETTINGS.min_new_labels == 200
    assert SETTINGS.max_roc_auc_drop == 0.05
    assert SETTINGS.max_f1_relative_drop == 0.2
    assert SETTINGS.gate.min_labels == 200
    assert SETTINGS.gate.f1_min_relative_gain == 0.02
    assert SETTINGS.gate.brier_max_increase == 0.01


def test_nothing_fires_on_a_quiet_window() -> None:
    decision = decide(inputs(new_labels=10), SETTINGS)
    assert not decision.retrain
    assert fired(decision) == []
    # the line says what heal waits for: the new_labels count against its threshold
    assert (
        decision.reason == "no trigger fired; 10 labels became known since the champion was trained (< 200)"
    )


@pytest.mark.parametrize(
    ("previous", "now", "expected_run", "retrain"),
    [
        ([], True, 1, False),  # one window alone: 1 < 2
        ([True], True, 2, True),  # two in a row: 2 >= 2
        ([True, False], True, 1, False),  # the run was broken by the window before: 1
        ([False, True, True], True, 3, True),  # three in a row
        ([True], False, 0, False),  # no drift now: nothing to confirm
    ],
)
def test_drift_must_be_confirmed_by_consecutive_windows(
    previous: list[bool], now: bool, expected_run: int, retrain: bool
) -> None:
    decision = decide(
        inputs(drift=now, drift_reasons=["la: ks"] if now else [], previous_drift=previous), SETTINGS
    )
    trigger = decision.triggers[0]
    assert trigger.name == "drift"
    assert trigger.value == expected_run
    assert trigger.threshold == 2
    assert trigger.fired is retrain
    assert decision.retrain is retrain


def test_one_window_is_enough_when_configured_and_drift_can_be_switched_off() -> None:
    once = HealSettings(drift_confirmations=1)
    assert decide(inputs(drift=True, drift_reasons=["x"]), once).retrain
    off = HealSettings(drift_confirmations=1, retrain_on_drift=False)
    decision = decide(inputs(drift=True, drift_reasons=["x"]), off)
    assert not decision.retrain
    assert "retrain_on_drift is off" in decision.triggers[0].reason


def test_unmonitored_window_cannot_fire_drift() -> None:
    decision = decide(inputs(monitored=False, drift=True), SETTINGS)
    assert not decision.triggers[0].fired
    assert decision.triggers[0].reason == "the window was not monitored"


def realized(n: int, auc: float | None, f1: float | None) -> Realized:
    return Realized(n_matured=n, n_positive=n // 5, roc_auc=auc, f1=f1, brier=0.1)


def test_roc_auc_drop_against_the_training_time_value() -> None:
    # baseline 0.80, realized 0.74: drop 0.06 > 0.05 fires; realized 0.76: drop 0.04 <= 0.05 does not
    hit = decide(inputs(realized=realized(150, 0.74, 0.5), baseline_roc_auc=0.80, baseline_f1=0.5), SETTINGS)
    trigger = next(t for t in hit.triggers if t.name == "roc_auc_drop")
    assert trigger.fired
    assert trigger.value == pytest.approx(0.06)
    assert hit.retrain
    miss = decide(inputs(realized=realized(150, 0.76, 0.5), baseline_roc_auc=0.80, baseline_f1=0.5), SETTINGS)
    assert not next(t for t in miss.triggers if t.name == "roc_auc_drop").fired
    assert not miss.retrain


def test_f1_relative_drop() -> None:
    # baseline F1 0.50: realized 0.39 is (0.50 - 0.39) / 0.50 = 0.22 > 0.2; realized 0.41 is 0.18 <= 0.2
    hit = decide(inputs(realized=realized(150, 0.8, 0.39), baseline_roc_auc=0.8, baseline_f1=0.5), SETTINGS)
    trigger = next(t for t in hit.triggers if t.name == "f1_drop")
    assert trigger.fired
    assert trigger.value == pytest.approx(0.22)
    assert fired(hit) == ["f1_drop"]
    miss = decide(inputs(realized=realized(150, 0.8, 0.41), baseline_roc_auc=0.8, baseline_f1=0.5), SETTINGS)
    assert fired(miss) == []


def test_performance_is_not_judged_on_too_few_labels_or_without_a_baseline() -> None:
    # 99 matured labels < 100: a drop from 0.80 to 0.50 is not judged yet
    few = decide(inputs(realized=realized(99, 0.5, 0.1), baseline_roc_auc=0.8, baseline_f1=0.5), SETTINGS)
    assert fired(few) == []
    assert "99 matured labels" in few.triggers[1].reason
    no_baseline = decide(inputs(realized=realized(150, 0.5, 0.1)), SETTINGS)
    assert fired(no_baseline) == []
    one_class = decide(inputs(realized=realized(150, None, 0.0), baseline_roc_auc=0.8), SETTINGS)
    assert "one class" in one_class.triggers[1].reason


def test_new_labels_since_the_champion_was_trained() -> None:
    assert not decide(inputs(new_labels=199), SETTINGS).retrain  # 199 < 200
    decision = decide(inputs(new_labels=200), SETTINGS)  # 200 >= 200
    assert decision.retrain
    assert fired(decision) == ["new_labels"]


def test_a_challenger_in_shadow_or_a_recent_one_blocks_a_new_one() -> None:
    pending = decide(inputs(new_labels=500, pending_challenger=4), SETTINGS)
    assert not pending.retrain
    assert pending.blocked_by is not None
    assert "v4 is still in shadow" in pending.blocked_by
    recent = decide(inputs(new_labels=500, days_since_last_challenger=3.0), SETTINGS)  # 3 < 7 days
    assert not recent.retrain
    assert recent.blocked_by is not None
    assert recent.blocked_by == "the champion v1 itself was registered 3.0 days ago (< 7 days between models)"
    challenger = decide(
        inputs(new_labels=500, days_since_last_challenger=0.25, last_registered_version=3), SETTINGS
    )
    assert challenger.blocked_by == (
        "the last challenger v3 was registered 6 hours ago (< 7 days between models)"
    )
    # `defectops run` registered the champion minutes ago and there never was a challenger: said as such
    fresh = decide(
        inputs(new_labels=500, days_since_last_challenger=0.004, last_registered_version=1), SETTINGS
    )
    assert fresh.blocked_by == "the champion v1 itself was registered 6 minutes ago (< 7 days between models)"
    later = decide(inputs(new_labels=500, days_since_last_challenger=7.5), SETTINGS)  # 7.5 >= 7
    assert later.retrain
    # nothing fired: nothing to block, and the record says so
    quiet = decide(inputs(pending_challenger=4), SETTINGS)
    assert quiet.blocked_by is None
    assert quiet.reason == "no trigger fired; 0 labels became known since the champion was trained (< 200)"


def test_the_starter_s_registration_does_not_hold_back_the_repository_s_first_own_model() -> None:
    # The starter (v1) was registered 2 days ago and 240 labels of the repository are known: its first own
    # model is trained now, not in 5 days (the cool-down keeps a persisting trigger from retraining every cycle).
    first = decide(
        inputs(
            new_labels=240,
            champion_cross_project=True,
            days_since_last_challenger=2.0,
            last_registered_version=1,
        ),
        SETTINGS,
    )
    assert first.retrain
    assert first.blocked_by is None
    # An own challenger (v2) was trained 2 days ago and refused: the next one waits as any other.
    after_own = decide(
        inputs(
            new_labels=240,
            champion_cross_project=True,
            days_since_last_challenger=2.0,
            last_registered_version=2,
        ),
        SETTINGS,
    )
    assert not after_own.retrain
    assert (
        after_own.blocked_by == "the last challenger v2 was registered 2.0 days ago (< 7 days between models)"
    )


# ----------------------------------------------------------------------------------------------------------
# rollback


def separable(n_pos: int = 50, n_neg: int = 50) -> np.ndarray:
    return np.array([1] * n_pos + [0] * n_neg, dtype=float)


def test_rollback_waits_for_enough_matured_labels() -> None:
    y = separable(10, 10)  # 20 < 100
    check = rollback_check(
        y, y, y, current_version=2, previous_version=1, current_threshold=0.5, previous_threshold=0.5,
        settings=SETTINGS,
    )  # fmt: skip
    assert not check.ready
    assert not check.rollback
    assert "20 matured labels" in check.reason
    ones = np.ones(120)
    check = rollback_check(
        ones, ones * 0.9, ones * 0.9, current_version=2, previous_version=1, current_threshold=0.5,
        previous_threshold=0.5, settings=SETTINGS,
    )  # fmt: skip
    assert not check.ready
    assert "one class" in check.reason


def test_rollback_when_the_new_champion_ranks_worse_significantly() -> None:
    y = separable()
    previous = np.where(y == 1, 0.75, 0.25)  # every defect above every clean change: ROC-AUC 1
    current = np.where(y == 1, 0.25, 0.75)  # exactly reversed: ROC-AUC 0
    check = rollback_check(
        y, current, previous, current_version=2, previous_version=1, current_threshold=0.5,
        previous_threshold=0.5, settings=SETTINGS,
    )  # fmt: skip
    # drop 1 - 0 = 1; every resample with both classes has difference 0 - 1 = -1: interval [-1, -1], below 0
    assert check.ready
    assert check.rollback
    assert check.roc_auc_drop == pytest.approx(1.0)
    assert check.ci_lower == pytest.approx(-1.0)
    assert check.ci_upper == pytest.approx(-1.0)
    # Brier: previous 0.25^2 = 0.0625 on every row, current 0.75^2 = 0.5625: increase 0.5
    assert check.brier_increase == pytest.approx(0.5)
    assert check.reason.startswith("roll back")


def test_a_drop_that_could_be_chance_is_kept() -> None:
    y = separable()  # rows 0-49 defective, 50-99 clean
    previous = np.where(y == 1, 0.75, 0.25)
    current = previous.copy()
    current[[0, 1]] = 0.1  # two defects now ranked below every clean change
    check = rollback_check(
        y, current, previous, current_version=2, previous_version=1, current_threshold=0.5,
        previous_threshold=0.5, settings=SETTINGS,
    )  # fmt: skip
    # current ROC-AUC: 48 of 50 defects above all 50 clean = 48 * 50 / 2500 = 0.96, a drop of 0.04 > 0.02.
    # A resample that draws neither of the two rows has difference 0; that happens with probability
    # (1 - 2/100)^100 = 0.133 > 2.5%, so the interval's upper end is 0, not below it: no significant drop.
    assert check.roc_auc_drop == pytest.approx(0.04)
    assert check.ci_upper == pytest.approx(0.0)
    # Brier: two rows go from 0.25^2 = 0.0625 to 0.9^2 = 0.81: (2 * 0.7475) / 100 = 0.01495 <= 0.02
    assert check.brier_increase == pytest.approx(0.01495)
    assert check.ready
    assert not check.rollback
    assert check.reason.startswith("keep")


def test_rollback_on_calibration_alone() -> None:
    y = separable()
    previous = np.where(y == 1, 0.75, 0.25)
    current = np.where(y == 1, 0.9, 0.5)  # the same order (ROC-AUC 1 both), worse probabilities
    check = rollback_check(
        y, current, previous, current_version=2, previous_version=1, current_threshold=0.5,
        previous_threshold=0.5, settings=SETTINGS,
    )  # fmt: skip
    # Brier: current (50 * 0.1^2 + 50 * 0.5^2) / 100 = 0.13; previous 0.0625; increase 0.0675 > 0.02
    assert check.roc_auc_drop == pytest.approx(0.0)
    assert check.brier_increase == pytest.approx(0.0675)
    assert check.rollback


def test_rollback_check_refuses_pending_labels() -> None:
    with pytest.raises(InputError, match="matured 0/1 labels"):
        rollback_check(
            np.array([1.0, np.nan]), np.zeros(2), np.zeros(2), current_version=2, previous_version=1,
            current_threshold=0.5, previous_threshold=0.5, settings=SETTINGS,
        )  # fmt: skip


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFECTOPS_HEAL_MIN_NEW_LABELS", "50")
    monkeypatch.setenv("DEFECTOPS_HEAL_GATE__MIN_LABELS", "120")
    monkeypatch.setenv("DEFECTOPS_HEAL_GATE_ON", "offline")
    settings = HealSettings()
    assert settings.min_new_labels == 50
    assert settings.gate.min_labels == 120
    assert settings.gate_on == "offline"
    # replay reads stored settings, never the environment
    stored = HealSettings.model_validate(SETTINGS.model_dump(mode="json"))
    assert stored.min_new_labels == 200
    assert stored == SETTINGS
