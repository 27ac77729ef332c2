"""Pipelines: the one-command main job (``defectops run``) and the self-healing loop."""

from defectops.pipeline.decide import HealSettings
from defectops.pipeline.heal import Healer, HealReport
from defectops.pipeline.run import RunOptions, run
from defectops.pipeline.scheduler import run_scheduler, utc_now

__all__ = [
    "HealReport",
    "HealSettings",
    "Healer",
    "RunOptions",
    "run",
    "run_scheduler",
    "utc_now",
]
