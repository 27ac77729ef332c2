"""Pipelines: the one-command main job (``defectops run``) and the self-healing loop (``defectops heal``)."""

from defectops.pipeline.heal import Healer, HealReport, HealSettings
from defectops.pipeline.run import RegistryStage, RunOptions, RunResult, run
from defectops.pipeline.scheduler import run_scheduler, utc_now

__all__ = [
    "HealReport",
    "HealSettings",
    "Healer",
    "RegistryStage",
    "RunOptions",
    "RunResult",
    "run",
    "run_scheduler",
    "utc_now",
]
