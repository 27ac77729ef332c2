"""``defectops predict --model-alias``: an alias the repository's registered model lacks is an error, not the
cross-project starter (the starter stands in only while the repository has no champion of its own)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from defectops.config import Settings, Workspace
from defectops.git import GitRepo
from defectops.mining import RepositoryNames
from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import log_training_run
from defectops.registry.tracking import TrackingConfig
from defectops.training.models import make_model
from gitrepo import RepoBuilder

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FEATURES = ["la", "ld", "nf"]


def _register(
    risky_repo: RepoBuilder, training_data: tuple[Any, Any], *suffixes: str
) -> tuple[str, ModelRegistry]:
    """The repository's model name, with a logreg version registered under the name plus each suffix."""
    settings = Settings()
    name = RepositoryNames(Workspace.from_settings(settings).root).model_name(GitRepo.open(risky_repo.path))
    frame, y = training_data
    model = make_model("logreg", features=tuple(FEATURES)).fit(frame, y)
    config = TrackingConfig.from_settings(settings)
    registry = ModelRegistry(config)
    for suffix in suffixes:
        run = log_training_run(
            model,
            features=FEATURES,
            reference=frame.assign(label=y),
            params={"kind": "test"},
            metrics={"roc_auc": 0.9},
            dataset_fingerprint=f"fp-ci-alias{suffix}",
            config=config,
            threshold=model.threshold_,
        )
        registry.register(name + suffix, run.model_uri, who="ci-test", why="t", now=NOW)
    return name, registry


@pytest.mark.slow  # MLflow's SQLite store is migrated for the registration: over 10 s on a shared machine
def test_a_missing_alias_of_the_repositorys_model_is_an_error_not_the_starter(
    cli: Callable[..., Any], risky_repo: RepoBuilder, training_data: tuple[Any, Any]
) -> None:
    name, registry = _register(risky_repo, training_data, "")
    registry.promote(name, 1, "ci-test", "first champion", now=NOW)

    repo = str(risky_repo.path)
    champion = cli("predict", "--repo", repo, "--format", "json")
    assert champion.code == 0, champion
    assert f'"name": "{name}"' in champion.out

    # The user saw the CROSS-PROJECT starter's scores, exit 0, under "no model of this repository ... yet".
    missing = cli("predict", "--repo", repo, "--model-alias", "challenger", "--format", "json")
    assert missing.code == 7, missing
    assert missing.out == ""
    assert missing.err.strip() == f"error: model {name!r} has no 'challenger' alias"
    assert "starter" not in missing.err.lower()


@pytest.mark.slow  # MLflow's SQLite store is migrated for the registration
def test_a_block_model_without_a_champion_is_said_not_silently_skipped(
    cli: Callable[..., Any], risky_repo: RepoBuilder, training_data: tuple[Any, Any]
) -> None:
    # run registers <name>-blocks even when its gate refuses it; predict then scored no block and said
    # nothing (only run's summary line had told why).
    name, registry = _register(risky_repo, training_data, "", "-blocks")
    registry.promote(name, 1, "ci-test", "first champion", now=NOW)

    scored = cli("predict", "--repo", str(risky_repo.path), "--format", "json")
    assert scored.code == 0, scored
    assert (
        f"Terraform blocks not scored: {name}-blocks has no 'champion' version (its gate refused it; "
        "defectops models list shows its versions)"
    ) in " ".join(scored.err.split())
    # With a block champion there is nothing to say.
    registry.promote(f"{name}-blocks", 1, "ci-test", "block champion", now=NOW)
    quiet = cli("predict", "--repo", str(risky_repo.path), "--format", "json")
    assert "Terraform blocks not scored" not in quiet.err
