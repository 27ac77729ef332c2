"""The read side of the model registry: registered models, versions, aliases, the audit history, and
loading a version (by alias or number) or its training reference snapshot.

:class:`~defectops.registry.registry.ModelRegistry` adds the audited alias moves on top of this.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

from defectops.errors import InputError, ModelError, NotFoundError
from defectops.registry.audit import AuditEvent, AuditLog
from defectops.registry.loading import LoadedModel, load_version
from defectops.registry.records import (
    CHALLENGER,
    CHAMPION,
    ModelVersionInfo,
    RegisteredModelInfo,
    all_pages,
    check_name,
    quoted,
    version_info,
)
from defectops.registry.runs import load_reference
from defectops.registry.tracking import TrackingConfig, activate, mlflow_error, mlflow_errors

if TYPE_CHECKING:
    import pandas as pd

    from defectops.config import Settings


class RegistryReader:
    """Reading the registry of one tracking configuration (MLflow registry + audit table)."""

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.audit = AuditLog(config.audit_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(TrackingConfig.from_settings(settings))

    @property
    def client(self) -> Any:
        """An ``MlflowClient`` bound to this configuration (and MLflow's global URIs pointed at it).

        Re-pointed on every access (cheap) because MLflow's fluent API reads process-wide URIs that other
        code may have changed in between.
        """
        return activate(self.config)

    @property
    def registry_key(self) -> str:
        """Which registry the audit rows belong to (one audit database may serve several registries).

        ``embedded`` for the workspace's own database (so moving the workspace folder keeps its history),
        otherwise the registry URI without credentials (they must never land in an audit table).
        """
        if self.config.registry_uri == self.config.embedded_registry_uri:
            return "embedded"
        return re.sub(r"//[^/@]*@", "//", self.config.registry_uri)

    # ----------------------------------------------------------------------------------------------------
    # Reading

    def list_models(self) -> list[RegisteredModelInfo]:
        """Every registered model with its aliases, sorted by name."""
        client = self.client
        infos = []
        with mlflow_errors("cannot list registered models"):
            for model in all_pages(client.search_registered_models):
                numbers = [
                    int(v.version)
                    for v in all_pages(client.search_model_versions, f"name='{quoted(model.name)}'")
                ]
                infos.append(
                    RegisteredModelInfo(
                        name=model.name,
                        aliases={k: int(v) for k, v in (model.aliases or {}).items()},
                        latest_version=max(numbers) if numbers else None,
                        versions=len(numbers),
                    )
                )
        return sorted(infos, key=lambda m: m.name)

    def aliases(self, name: str) -> dict[str, int]:
        """Current aliases of a model (alias -> version); NotFoundError for an unknown name."""
        model = self._registered_model(name)
        return {k: int(v) for k, v in (model.aliases or {}).items()}

    def alias_version(self, name: str, alias: str) -> int | None:
        """The version an alias points to, or None when it is not set."""
        return self.aliases(name).get(alias)

    def list_versions(self, name: str, *, with_metrics: bool = True) -> list[ModelVersionInfo]:
        """All versions of a model, newest first, with aliases and (optionally) their training metrics."""
        aliases = self.aliases(name)
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        client = self.client
        with mlflow_errors(f"cannot list versions of {name}"):
            versions = list(all_pages(client.search_model_versions, f"name='{quoted(name)}'"))
        infos = [self._version_info(v, by_version.get(int(v.version), []), with_metrics) for v in versions]
        return sorted(infos, key=lambda v: v.version, reverse=True)

    def get_version(self, name: str, version: int) -> ModelVersionInfo:
        """One version; NotFoundError when the model or the version does not exist."""
        mv = self._model_version(name, version)
        aliases = [a for a, v in self.aliases(name).items() if v == version]
        return self._version_info(mv, aliases, with_metrics=True)

    def history(self, name: str, *, alias: str | None = None) -> list[AuditEvent]:
        """The audit history of a model (all aliases unless one is given), oldest first."""
        check_name(name)
        return self.audit.events(AuditEvent, name, registry=self.registry_key, alias=alias)

    def trained_at(self, name: str, version: int) -> datetime:
        """When a version learned its labels: ``labels_as_of`` recorded at registration, else the time of its
        audited registration, else MLflow's creation time."""
        for event in reversed(self.history(name, alias=CHALLENGER)):
            if event.action == "register" and event.to_version == version:
                stamp = event.evidence.get("labels_as_of")
                return datetime.fromisoformat(stamp) if isinstance(stamp, str) else event.at
        created = self.get_version(name, version).created_at
        if created is None:
            raise ModelError(f"{name} v{version} has no known training time")
        return created

    def labels_learnt_at(self, name: str, version: int) -> datetime | None:
        """When a version learnt the repository's labels (:meth:`trained_at`), or None for the cross-project
        starter, which learnt none of them (other projects' data).

        Why it matters: a label known by then may be one of the version's training rows, so it is no evidence
        of how the version does on live commits (:func:`defectops.predlog.unlearnt`).
        """
        if self.get_version(name, version).cross_project:
            return None
        return self.trained_at(name, version)

    def load(self, name: str, *, alias: str | None = CHAMPION, version: int | None = None) -> LoadedModel:
        """Load a version by alias (default ``champion``) or by number, with its metadata.

        NotFoundError when the model, alias or version does not exist; ModelError when the artifact is
        missing, corrupt, or not a probabilistic classifier.
        """
        if version is None:
            if alias is None:
                raise InputError("load needs an alias or a version")
            target = self.alias_version(name, alias)
            if target is None:
                raise NotFoundError(f"model {name!r} has no {alias!r} alias")
            version = target
            used_alias: str | None = alias
        else:
            used_alias = None
        mv = self._model_version(name, version)
        return load_version(self.config, mv, name=name, version=version, alias=used_alias)

    def load_reference(
        self, name: str, *, alias: str | None = CHAMPION, version: int | None = None
    ) -> pd.DataFrame:
        """The training reference snapshot of the version an alias (or number) points to."""
        if version is None:
            if alias is None:
                raise InputError("load_reference needs an alias or a version")
            version = self.alias_version(name, alias)
            if version is None:
                raise NotFoundError(f"model {name!r} has no {alias!r} alias")
        mv = self._model_version(name, version)
        if not mv.run_id:
            raise NotFoundError(f"{name} v{version} has no training run, hence no reference snapshot")
        return load_reference(mv.run_id, config=self.config)

    # ----------------------------------------------------------------------------------------------------
    # Internals

    def _registered_model(self, name: str) -> Any:
        check_name(name)
        client = self.client
        from mlflow.exceptions import MlflowException

        try:
            return client.get_registered_model(name)
        except MlflowException as exc:
            # The action names what was attempted, not a verdict: an unreachable tracking server is not an
            # unknown model (``predict --model-name`` said "unknown model 'x': ... Connection refused").
            error = mlflow_error(exc, f"cannot read model {name!r} from the registry")
            if isinstance(error, NotFoundError):
                raise NotFoundError(f"unknown model {name!r}") from exc
            raise error from exc

    def _model_version(self, name: str, version: int) -> Any:
        check_name(name)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InputError(f"a model version is a positive integer, got {version!r}")
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            error = mlflow_error(exc, f"cannot read {name} v{version} from the registry")
            if isinstance(error, NotFoundError):
                self._registered_model(name)  # raises "unknown model" when the name itself is missing
                raise NotFoundError(f"model {name!r} has no version {version}") from exc
            raise error from exc

    def _version_info(self, mv: Any, aliases: list[str], with_metrics: bool) -> ModelVersionInfo:
        metrics: dict[str, float] = {}
        if with_metrics and mv.run_id:
            from mlflow.exceptions import MlflowException

            try:
                metrics = {k: float(v) for k, v in self.client.get_run(mv.run_id).data.metrics.items()}
            except MlflowException:
                metrics = {}  # the run was deleted; the version still exists and is listed
        return version_info(mv, aliases, metrics)
