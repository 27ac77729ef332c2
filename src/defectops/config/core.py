"""The root of the settings tree (pydantic-settings, env prefix ``DEFECTOPS_``) and the workspace layout.

One :class:`Settings` object is built where the program starts (the CLI's root command, a service worker)
and passed down as a value; stages take the subtree they need (``settings.serve``, ``settings.monitor``,
``settings.tracking``, ...). Each subtree reads its variables when it is first used, so a malformed
``DEFECTOPS_SERVE_*`` variable stops ``defectops serve`` with one line, not ``defectops mine``.

The workspace is the folder where every embedded default lives: miner state, datasets, the MLflow SQLite
database and artifacts, the prediction log. Nothing is written outside it unless a setting says so.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from defectops.config.events import EventsSettings
from defectops.config.heal import HealSettings
from defectops.config.monitor import AlertSettings, MonitoringSettings
from defectops.config.serve import ServeSettings
from defectops.config.services import GitHubSettings, ReportSettings, StorageSettings, TrackingSettings


class Settings(BaseSettings):
    """Settings read from the environment (``DEFECTOPS_*``) and, where given, from CLI options."""

    model_config = SettingsConfigDict(env_prefix="DEFECTOPS_", extra="ignore")

    workspace: Path = Field(default=Path(".defectops"), description="Folder holding every embedded default.")
    mode: str = Field(
        default="local", description="'local' allows embedded defaults; anything else is strict."
    )
    label_waiting_days: int = Field(
        default=90, ge=0, description="Days before an unfixed commit counts clean."
    )
    lock_wait_seconds: float = Field(
        default=1800.0,
        ge=0,
        description="How long a process waits for another one holding a workspace lock (0: refuse at once).",
    )

    @cached_property
    def serve(self) -> ServeSettings:
        """``defectops serve`` (``DEFECTOPS_SERVE_*``)."""
        return ServeSettings()

    @cached_property
    def monitor(self) -> MonitoringSettings:
        """Monitoring thresholds (``DEFECTOPS_MONITOR_*``)."""
        return MonitoringSettings()

    @cached_property
    def alert(self) -> AlertSettings:
        """Alert channels (``DEFECTOPS_ALERT_*``)."""
        return AlertSettings()

    @cached_property
    def heal(self) -> HealSettings:
        """The self-healing loop and its promotion gate (``DEFECTOPS_HEAL_*``)."""
        return HealSettings()

    @cached_property
    def tracking(self) -> TrackingSettings:
        """Where MLflow and the audit history live (``MLFLOW_*_URI``, ``DEFECTOPS_MLFLOW_*``, ...)."""
        return TrackingSettings()

    @cached_property
    def storage(self) -> StorageSettings:
        """The artifact store (``DEFECTOPS_S3_ENDPOINT_URL``)."""
        return StorageSettings()

    @cached_property
    def github(self) -> GitHubSettings:
        """GitHub (``DEFECTOPS_GITHUB_*``, ``GITHUB_TOKEN``, ``GITHUB_STEP_SUMMARY``)."""
        return GitHubSettings()

    @cached_property
    def events(self) -> EventsSettings:
        """Event-driven scoring: webhooks, the stream, the workers (``DEFECTOPS_EVENTS_*``)."""
        return EventsSettings()

    @cached_property
    def report(self) -> ReportSettings:
        """CI reports (``DEFECTOPS_INFORMATION_URI``)."""
        return ReportSettings()

    def resolved_workspace(self) -> Path:
        """The workspace as an absolute path (not created)."""
        return self.workspace.expanduser().resolve()


class Workspace:
    """Paths inside the workspace folder; creating them is explicit, never a side effect of import."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    @classmethod
    def from_settings(cls, settings: Settings) -> Workspace:
        return cls(settings.workspace)

    def ensure(self) -> Workspace:
        """Create the workspace folder if it does not exist yet.

        A folder the system refuses (no permission, a read-only or virtual file system) is a ConfigError, one
        line naming the folder: ``run --workspace /proc/x`` was 'internal error: FileNotFoundError' (exit 70).
        """
        from defectops.errors import ConfigError

        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the workspace {self.root}: {exc.strerror or exc} "
                "(--workspace or DEFECTOPS_WORKSPACE)"
            ) from None
        return self

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def state_file(self, repo_id: str) -> Path:
        """The miner state database of one repository."""
        return self.state_dir / f"{repo_id}.sqlite"

    def dataset_file(self, repo_id: str, kind: str) -> Path:
        """A stored dataset of one repository, e.g. kind='commits' or 'labels'."""
        return self.datasets_dir / repo_id / f"{kind}.parquet"
