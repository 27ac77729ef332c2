"""Pipelines: the one-command main job (``defectops run``) and the self-healing loop (``defectops heal``).

Records that cross module boundaries are typed: stage and step results are frozen dataclasses with slots;
pydantic models only where data crosses an I/O boundary (settings, HTTP, stored JSON such as audit
evidence); a record printed as JSON has an ``as_dict()`` whose keys and order are part of the CLI's
interface.
"""

from defectops.mining import block_model_name
from defectops.pipeline.blocks import BlockStage, block_line
from defectops.pipeline.heal import Healer, HealReport
from defectops.pipeline.monitor_model import ModelMonitoring, monitor_model, monitored_version
from defectops.pipeline.run import RegistryStage, RunOptions, RunResult, run
from defectops.pipeline.scheduler import run_scheduler, utc_now
from defectops.pipeline.text import attach_text, reads_text, require_text_model

__all__ = [
    "BlockStage",
    "HealReport",
    "Healer",
    "ModelMonitoring",
    "RegistryStage",
    "RunOptions",
    "RunResult",
    "attach_text",
    "block_line",
    "block_model_name",
    "monitor_model",
    "monitored_version",
    "reads_text",
    "require_text_model",
    "run",
    "run_scheduler",
    "utc_now",
]
