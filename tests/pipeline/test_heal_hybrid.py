"""Heal's train step with a hybrid challenger (#20) when the changed lines cannot be read: the step is skipped
with the reason, and the champion keeps serving. (The cycle that retrains a hybrid champion end to end is in
test_run_hybrid.py, slow.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from defectops.config import HealSettings
from defectops.pipeline.heal import FrameSource
from defectops.registry.records import CHAMPION
from heal_world import (
    Stack,
    WorldSpec,
    bootstrap_champion,
    commits_frame,
    day,
    generate,
    heal_tracking,
    labels_frame,
    mlflow_environment_restored,
    stack,
)

__all__ = ["heal_tracking", "mlflow_environment_restored", "stack"]  # fixtures pytest finds here

QUIET = WorldSpec(seed=3, days=340, per_day=4, drift_day=None)
SETTINGS = HealSettings(budget_seconds=0.0, min_new_labels=50, model_kind="hybrid", gate_on="offline")


@pytest.fixture(scope="module")
def quiet_world() -> pd.DataFrame:
    return generate(QUIET)


def _train_record(stack: Stack, world: pd.DataFrame, **options: object) -> tuple[int, object]:
    source = FrameSource(commits_frame(world), labels_frame(world, end=day(QUIET.days)))
    first = bootstrap_champion(stack.registry, stack.name, source, day(240))
    report = stack.healer(source, SETTINGS, **options).cycle(day(270))
    assert report.outcome("decide") == "retrain"
    return first, report.record("train")


def test_a_hybrid_challenger_without_a_repository_is_skipped_with_the_reason(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    first, train = _train_record(stack, quiet_world)
    assert train is not None
    assert (train.outcome, train.challenger_version) == ("skipped", None)  # type: ignore[attr-defined]
    assert train.reason == (  # type: ignore[attr-defined]
        "a hybrid model reads each commit's changed lines from the repository: give --repo"
    )
    assert stack.registry.aliases(stack.name) == {CHAMPION: first}


def test_a_hybrid_challenger_without_the_extra_is_skipped_with_the_reason(
    stack: Stack, quiet_world: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # importing it raises ImportError
    first, train = _train_record(stack, quiet_world, repo=tmp_path)
    assert train is not None
    assert train.outcome == "skipped"  # type: ignore[attr-defined]
    reason = train.reason  # type: ignore[attr-defined]
    assert "pip install 'defectops[hybrid]'" in reason
    assert reason.endswith("missing: onnxruntime")
    assert stack.registry.aliases(stack.name) == {CHAMPION: first}
