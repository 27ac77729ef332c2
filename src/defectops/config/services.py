"""Settings of the services defectops talks to: MLflow, the S3 artifact store, GitHub, and CI reports.

Each class reads its own variables; :class:`defectops.config.Settings` holds one of each, read when first
used. MLflow's and GitHub's own variable names (``MLFLOW_TRACKING_URI``, ``GITHUB_TOKEN``,
``GITHUB_STEP_SUMMARY``) are accepted as they are, so defectops works where those tools are already set up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrackingSettings(BaseSettings):
    """Where MLflow lives; nothing set means the workspace's own SQLite registry (embedded default)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("tracking_uri", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking URI (MLFLOW_TRACKING_URI); default: <workspace>/mlflow/mlflow.db.",
    )
    registry_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("registry_uri", "MLFLOW_REGISTRY_URI"),
        description="MLflow registry URI (MLFLOW_REGISTRY_URI); default: the tracking URI.",
    )
    experiment: str | None = Field(
        default=None,
        validation_alias=AliasChoices("experiment", "DEFECTOPS_MLFLOW_EXPERIMENT"),
        description="Experiment training runs are logged to (DEFECTOPS_MLFLOW_EXPERIMENT).",
    )
    artifacts: str | None = Field(
        default=None,
        validation_alias=AliasChoices("artifacts", "DEFECTOPS_MLFLOW_ARTIFACTS"),
        description="Artifact root of new experiments, a path or URI (DEFECTOPS_MLFLOW_ARTIFACTS).",
    )
    audit_db_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("audit_db_url", "DEFECTOPS_AUDIT_DB_URL"),
        description="SQLAlchemy URL of the audit history (DEFECTOPS_AUDIT_DB_URL); default: workspace.",
    )

    @classmethod
    def embedded(cls) -> TrackingSettings:
        """Nothing configured, whatever the environment says: the workspace's own registry."""
        return cls.model_construct(
            tracking_uri=None, registry_uri=None, experiment=None, artifacts=None, audit_db_url=None
        )


class StorageSettings(BaseSettings):
    """The artifact store's S3 endpoint (``DEFECTOPS_S3_ENDPOINT_URL``) for S3-compatible servers."""

    model_config = SettingsConfigDict(env_prefix="DEFECTOPS_S3_", extra="ignore", frozen=True)

    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (a local server, MinIO, ...); default: AWS."
    )


class GitHubSettings(BaseSettings):
    """GitHub access for issue types (labels) and the job summary of the Action."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("token", "DEFECTOPS_GITHUB_TOKEN", "GITHUB_TOKEN"),
        description="API token (DEFECTOPS_GITHUB_TOKEN, else GITHUB_TOKEN).",
    )
    api_url: str = Field(
        default="https://api.github.com",
        validation_alias=AliasChoices("api_url", "DEFECTOPS_GITHUB_API_URL"),
        description="REST API base URL (DEFECTOPS_GITHUB_API_URL), for GitHub Enterprise.",
    )
    step_summary: str | None = Field(
        default=None,
        validation_alias=AliasChoices("step_summary", "GITHUB_STEP_SUMMARY"),
        description="The job summary file GitHub Actions provides (GITHUB_STEP_SUMMARY).",
    )


class ReportSettings(BaseSettings):
    """What CI reports point their readers to (``DEFECTOPS_INFORMATION_URI``: SARIF's informationUri)."""

    model_config = SettingsConfigDict(env_prefix="DEFECTOPS_", extra="ignore", frozen=True)

    information_uri: str | None = Field(
        default=None, description="Where SARIF readers learn about the tool (e.g. the project's docs)."
    )


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process (git, MLflow's server) gets: this process's, plus ``extra``.

    The one place outside the settings classes that reads ``os.environ``: a child process inherits the
    user's environment (PATH, HOME, proxies, credentials helpers) as a shell would give it.
    """
    return {**os.environ, **(extra or {})}
