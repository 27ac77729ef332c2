"""What the registry lists: registered models and versions, the alias names, the tags defectops sets on
versions, and the small helpers every part of the registry shares."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from defectops.errors import ConfigError, InputError

CHAMPION = "champion"
CHALLENGER = "challenger"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TAG_STATUS = "defectops.status"
TAG_GATE = "defectops.gate"
TAG_GATE_RUN = "defectops.gate_run_id"
TAG_THRESHOLD = "defectops.threshold"
TAG_FINGERPRINT = "defectops.dataset_fingerprint"
#: Where a version's model learnt from: ``cross-project`` for the starter (other projects' data); absent for
#: a repository's own model.
TAG_ORIGIN = "defectops.origin"
CROSS_PROJECT = "cross-project"


class ModelVersionInfo(BaseModel):
    """A registered version as listed (no artifact download)."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    aliases: list[str]
    run_id: str | None
    source: str
    created_at: datetime | None
    status: str | None
    gate: str | None
    threshold: float | None
    dataset_fingerprint: str | None
    metrics: dict[str, float]
    tags: dict[str, str]
    cross_project: bool = False


class RegisteredModelInfo(BaseModel):
    """A registered model name with its current aliases."""

    model_config = ConfigDict(frozen=True)

    name: str
    aliases: dict[str, int]
    latest_version: int | None
    versions: int


def version_info(mv: Any, aliases: list[str], metrics: dict[str, float]) -> ModelVersionInfo:
    """The listing of one MLflow model version, given its aliases and its run's metrics."""
    tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
    return ModelVersionInfo(
        name=mv.name,
        version=int(mv.version),
        aliases=sorted(aliases),
        run_id=mv.run_id or None,
        source=str(mv.source),
        created_at=from_millis(mv.creation_timestamp),
        status=tags.get(TAG_STATUS),
        gate=tags.get(TAG_GATE),
        threshold=float_or_none(tags.get(TAG_THRESHOLD)),
        dataset_fingerprint=tags.get(TAG_FINGERPRINT),
        metrics=metrics,
        tags=tags,
        cross_project=tags.get(TAG_ORIGIN) == CROSS_PROJECT,
    )


def check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"invalid model name {name!r}: use letters, digits, '_', '.', '-' "
            "(at most 128, starting alphanumeric)"
        )


def quoted(name: str) -> str:
    return name.replace("'", "\\'")


def all_pages(method: Any, *args: Any) -> Any:
    """Iterate over every page of an MLflow search (they return at most one page per call)."""
    token = None
    while True:
        page = method(*args, page_token=token) if token else method(*args)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def from_millis(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(int(value) / 1000.0, tz=UTC)


def choose_model_name(
    models: Sequence[RegisteredModelInfo],
    default: str,
    how_to_choose: str = "--model-name or DEFECTOPS_SERVE_MODEL_NAME",
) -> str:
    """The model a command uses when none is named: the only registered model with a champion.

    ``defectops run`` registers one model per repository (``defectops-<owner>-<name>`` from its remote, see
    :mod:`defectops.mining.naming`), so on one machine with one repository this is
    what a user expects without naming it. With no champion anywhere it is ``default`` (the service starts
    and waits for one; ``/health/ready`` says so); with several it cannot guess, and the error names
    ``how_to_choose``: the caller's own option or setting, since each command reads a different one.
    """
    champions = [m.name for m in models if CHAMPION in m.aliases]
    if len(champions) == 1:
        return champions[0]
    if not champions:
        return default
    raise ConfigError(
        f"several registered models have a champion ({', '.join(sorted(champions))}); choose one with "
        f"{how_to_choose}"
    )
