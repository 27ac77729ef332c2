"""The settings tree: every ``DEFECTOPS_*`` variable is a field of one of these pydantic-settings classes.

:class:`Settings` is the root; build it once where the program starts and pass it (or one of its subtrees)
down. Nothing else in defectops reads the environment, except :func:`child_environment`, which hands it on
to child processes.
"""

from defectops.config.core import Settings, Workspace
from defectops.config.events import LOCAL_WEBHOOK_SECRET, EventsSettings
from defectops.config.heal import GateCriteria, GateSource, HealSettings
from defectops.config.monitor import (
    AlertSettings,
    Channel,
    MonitoringSettings,
    load_alert_settings,
    load_monitoring_settings,
)
from defectops.config.serve import (
    DEFAULT_DURABILITY,
    DEFAULT_MODEL_NAME,
    LOCAL_ADMIN_TOKEN,
    MIN_TOKEN_BITS,
    Durability,
    ServeSettings,
    is_loopback,
)
from defectops.config.services import (
    GitHubSettings,
    ReportSettings,
    StorageSettings,
    TrackingSettings,
    child_environment,
)

__all__ = [
    "DEFAULT_DURABILITY",
    "DEFAULT_MODEL_NAME",
    "LOCAL_ADMIN_TOKEN",
    "LOCAL_WEBHOOK_SECRET",
    "MIN_TOKEN_BITS",
    "AlertSettings",
    "Channel",
    "Durability",
    "EventsSettings",
    "GateCriteria",
    "GateSource",
    "GitHubSettings",
    "HealSettings",
    "MonitoringSettings",
    "ReportSettings",
    "ServeSettings",
    "Settings",
    "StorageSettings",
    "TrackingSettings",
    "Workspace",
    "child_environment",
    "is_loopback",
    "load_alert_settings",
    "load_monitoring_settings",
]
