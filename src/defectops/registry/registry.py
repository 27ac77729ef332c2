"""Registered models, the ``challenger``/``champion`` aliases, and their audited history.

A freshly registered version gets the alias ``challenger``; the version that serves gets ``champion``
(MLflow aliases; the deprecated stages are never used). Every alias move goes through this module and is
appended to the audit table (:mod:`defectops.registry.audit`) in the same transaction as the move, so the
history is complete and rollback can restore the previous champion from it.

Rollback semantics: promotions form a stack of champions. ``promote`` pushes, ``rollback`` pops and restores
the champion below; rolling back twice goes two champions back (never forth again), and a rolled-back
version returns only through an explicit ``promote``. If the registry's ``champion`` alias was moved by
something other than defectops (so the audit history no longer describes it), rollback refuses instead of
guessing.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import SQLAlchemyError

from defectops.errors import InputError, ModelError, NotFoundError
from defectops.registry.audit import Action, AuditEvent, AuditLog
from defectops.registry.gate import GateCriteria, GateDecision, evaluate_gate, log_gate_decision
from defectops.registry.tracking import (
    METADATA_KEY,
    TrackingConfig,
    activate,
    load_reference,
    mlflow_error,
    mlflow_errors,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import ArrayLike, NDArray

    from defectops.config import Settings

CHAMPION = "champion"
CHALLENGER = "challenger"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TAG_STATUS = "defectops.status"
_TAG_GATE = "defectops.gate"
_TAG_GATE_RUN = "defectops.gate_run_id"
_TAG_THRESHOLD = "defectops.threshold"
_TAG_FINGERPRINT = "defectops.dataset_fingerprint"


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


class RegisteredModelInfo(BaseModel):
    """A registered model name with its current aliases."""

    model_config = ConfigDict(frozen=True)

    name: str
    aliases: dict[str, int]
    latest_version: int | None
    versions: int


class ModelMeta(BaseModel):
    """What serving, monitoring and the gate need to know about a loaded model version."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    alias: str | None
    run_id: str | None
    model_uri: str
    source: str
    features: list[str]
    threshold: float
    dataset_fingerprint: str | None
    serialization_format: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class LoadedModel:
    """A deserialised estimator with its registry metadata."""

    estimator: Any
    meta: ModelMeta
    positive_column: int = 1

    def score(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """Defect probabilities for ``frame``'s rows, using exactly the model's features in its order."""
        import numpy as np

        missing = [f for f in self.meta.features if f not in frame.columns]
        if missing:
            raise InputError(f"missing feature columns for {self.meta.name} v{self.meta.version}: {missing}")
        try:
            proba = self.estimator.predict_proba(frame.loc[:, self.meta.features])
        except Exception as exc:  # an estimator failing on well-formed input is a model problem
            raise ModelError(
                f"{self.meta.name} v{self.meta.version} failed to score ({type(exc).__name__}: {exc})"
            ) from exc
        return np.asarray(proba, dtype=np.float64)[:, self.positive_column]


class GateOutcome(BaseModel):
    """What :meth:`ModelRegistry.apply_gate` did."""

    model_config = ConfigDict(frozen=True)

    decision: GateDecision
    gate_run_id: str
    promoted: bool
    events: list[AuditEvent]


class ModelRegistry:
    """The registry of one tracking configuration (MLflow registry + audit table)."""

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.audit = AuditLog(config.audit_url)

    @classmethod
    def from_settings(cls, settings: Settings, *, environ: Mapping[str, str]) -> ModelRegistry:
        return cls(TrackingConfig.from_settings(settings, environ=environ))

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
            for model in _all_pages(client.search_registered_models):
                numbers = [
                    int(v.version)
                    for v in _all_pages(client.search_model_versions, f"name='{_quoted(model.name)}'")
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
            versions = list(_all_pages(client.search_model_versions, f"name='{_quoted(name)}'"))
        infos = [self._version_info(v, by_version.get(int(v.version), []), with_metrics) for v in versions]
        return sorted(infos, key=lambda v: v.version, reverse=True)

    def get_version(self, name: str, version: int) -> ModelVersionInfo:
        """One version; NotFoundError when the model or the version does not exist."""
        mv = self._model_version(name, version)
        aliases = [a for a, v in self.aliases(name).items() if v == version]
        return self._version_info(mv, aliases, with_metrics=True)

    def history(self, name: str, *, alias: str | None = None) -> list[AuditEvent]:
        """The audit history of a model (all aliases unless one is given), oldest first."""
        _check_name(name)
        return self.audit.events(AuditEvent, name, registry=self.registry_key, alias=alias)

    def load(self, name: str, *, alias: str | None = CHAMPION, version: int | None = None) -> LoadedModel:
        """Load a version by alias (default ``champion``) or by number, with its metadata.

        NotFoundError when the model, alias or version does not exist; ModelError when the artifact is
        missing, corrupt, or not a probabilistic classifier.
        """
        import mlflow
        import mlflow.sklearn
        from mlflow.models import Model

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
        uri = f"models:/{name}/{version}"
        try:
            # a private copy, deleted once the estimator is in memory (remote stores would otherwise leave
            # one temporary folder per load behind in a long-running service)
            with tempfile.TemporaryDirectory(prefix="defectops-model-") as tmp:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=uri,
                    dst_path=tmp,
                    tracking_uri=self.config.tracking_uri,
                    registry_uri=self.config.registry_uri,
                )
                mlmodel = Model.load(local)
                estimator = mlflow.sklearn.load_model(local)
        except Exception as exc:  # missing files, corrupt zip/skops/pickle, unknown classes: all unusable
            raise ModelError(
                f"the artifact of {name} v{version} cannot be loaded ({type(exc).__name__}: {exc})"
            ) from exc
        positive = _positive_column(estimator)
        if positive is None:
            raise ModelError(
                f"{name} v{version} is not a binary probabilistic classifier (predict_proba, 2 classes)"
            )
        own = (mlmodel.metadata or {}).get(METADATA_KEY, {}) if isinstance(mlmodel.metadata, dict) else {}
        features = [str(f) for f in own.get("features", [])]
        if not features and mlmodel.signature is not None:
            features = list(mlmodel.signature.inputs.input_names())
        if not features:
            raise ModelError(
                f"{name} v{version} records no feature names (no defectops metadata, no signature)"
            )
        threshold = float(own.get("threshold", _float_or_none(mv.tags.get(_TAG_THRESHOLD)) or 0.5))
        flavor = mlmodel.flavors.get("sklearn", {})
        meta = ModelMeta(
            name=name,
            version=version,
            alias=used_alias,
            run_id=mv.run_id or None,
            model_uri=uri,
            source=str(mv.source),
            features=features,
            threshold=threshold,
            dataset_fingerprint=own.get("dataset_fingerprint") or mv.tags.get(_TAG_FINGERPRINT),
            serialization_format=flavor.get("serialization_format"),
            created_at=_from_millis(mv.creation_timestamp),
        )
        return LoadedModel(estimator=estimator, meta=meta, positive_column=positive)

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
    # Alias moves

    def register(
        self,
        name: str,
        model_uri: str,
        *,
        who: str,
        why: str,
        now: datetime,
        evidence: Mapping[str, Any] | None = None,
        alias: str | None = CHALLENGER,
    ) -> ModelVersionInfo:
        """Register ``model_uri`` (e.g. ``TrainingRun.model_uri``) as a new version; make it the challenger.

        The previous challenger (if any) loses the alias; the move is audited with action ``register``.
        Pass ``alias=None`` to register without an alias (nothing to audit then).
        """
        import mlflow
        from mlflow.models import get_model_info

        _check_name(name)
        activate(self.config)
        try:
            info = get_model_info(model_uri)
        except Exception as exc:  # an unreadable MLmodel is as bad as a missing one
            raise ModelError(
                f"{model_uri} is not a loadable MLflow model ({type(exc).__name__}: {exc})"
            ) from exc
        own = info.metadata.get(METADATA_KEY, {}) if isinstance(info.metadata, dict) else {}
        tags = {_TAG_STATUS: "registered"}
        if "threshold" in own:
            tags[_TAG_THRESHOLD] = repr(float(own["threshold"]))
        if own.get("dataset_fingerprint"):
            tags[_TAG_FINGERPRINT] = str(own["dataset_fingerprint"])
        with mlflow_errors(f"cannot register {model_uri} as {name}"):
            mv = mlflow.register_model(model_uri, name, tags=tags)
        version = int(mv.version)
        if alias is not None:
            previous = self.alias_version(name, alias)
            details = {"model_uri": model_uri, "run_id": mv.run_id, **dict(evidence or {})}
            self._move(
                name,
                alias,
                action="register",
                from_version=previous,
                to_version=version,
                who=who,
                why=why,
                now=now,
                evidence=details,
            )
        return self.get_version(name, version)

    def promote(
        self,
        name: str,
        version: int,
        who: str,
        why: str,
        evidence: Mapping[str, Any] | None = None,
        *,
        now: datetime,
        force: bool = False,
    ) -> list[AuditEvent]:
        """Make ``version`` the champion (audited). A version whose gate failed needs ``force=True``.

        If the version was the challenger it stops being one (a second audited move). Returns the events
        written, champion move first.
        """
        mv = self._model_version(name, version)
        current = self.alias_version(name, CHAMPION)
        if current == version:
            raise InputError(f"{name} v{version} is already the champion")
        gate = mv.tags.get(_TAG_GATE)
        if gate == "failed" and not force:
            raise ModelError(
                f"{name} v{version} failed its promotion gate (run {mv.tags.get(_TAG_GATE_RUN, '?')}); "
                "promote with force to override"
            )
        details = {**dict(evidence or {}), "forced": bool(force and gate == "failed")}
        events = [
            self._move(
                name,
                CHAMPION,
                action="promote",
                from_version=current,
                to_version=version,
                who=who,
                why=why,
                now=now,
                evidence=details,
            )
        ]
        if self.alias_version(name, CHALLENGER) == version:
            events.append(
                self._move(
                    name,
                    CHALLENGER,
                    action="promote",
                    from_version=version,
                    to_version=None,
                    who=who,
                    why=f"promoted to {CHAMPION}: {why}",
                    now=now,
                    evidence={"promoted_to": CHAMPION},
                )
            )
        self._set_tags(name, version, {_TAG_STATUS: CHAMPION})
        if current is not None:
            self._set_tags(name, current, {_TAG_STATUS: "retired"})
        return events

    def rollback(
        self,
        name: str,
        who: str,
        why: str,
        evidence: Mapping[str, Any] | None = None,
        *,
        now: datetime,
    ) -> AuditEvent:
        """Restore the champion before the current one, as recorded in the audit history."""
        current = self.alias_version(name, CHAMPION)
        if current is None:
            raise ModelError(f"model {name!r} has no champion to roll back")
        stack = champion_stack(self.history(name, alias=CHAMPION))
        if not stack:
            raise ModelError(
                f"model {name!r} has no audited champion history (its champion v{current} was set outside "
                "defectops); promote the wanted version explicitly"
            )
        if stack[-1] != current:
            raise ModelError(
                f"the champion alias of {name!r} points to v{current} but the audit history says "
                f"v{stack[-1]}; it was moved outside defectops, so promote the wanted version explicitly"
            )
        if len(stack) < 2:
            raise ModelError(f"model {name!r} has no earlier champion to roll back to")
        target = stack[-2]
        self._model_version(name, target)  # the previous champion must still exist
        event = self._move(
            name,
            CHAMPION,
            action="rollback",
            from_version=current,
            to_version=target,
            who=who,
            why=why,
            now=now,
            evidence=dict(evidence or {}),
        )
        self._set_tags(name, current, {_TAG_STATUS: "rolled_back"})
        self._set_tags(name, target, {_TAG_STATUS: CHAMPION})
        return event

    def archive(
        self,
        name: str,
        version: int,
        who: str,
        why: str,
        evidence: Mapping[str, Any] | None = None,
        *,
        now: datetime,
    ) -> AuditEvent:
        """Retire a version that will not serve (e.g. a rejected challenger): drop its challenger alias.

        The champion cannot be archived (roll back or promote another version first).
        """
        self._model_version(name, version)
        if self.alias_version(name, CHAMPION) == version:
            raise InputError(f"{name} v{version} is the champion; promote another version or roll back first")
        holds = self.alias_version(name, CHALLENGER) == version
        event = self._move(
            name,
            CHALLENGER,
            action="archive",
            from_version=version if holds else None,
            to_version=None,
            who=who,
            why=why,
            now=now,
            evidence={**dict(evidence or {}), "archived_version": version},
            alias_changes=holds,
        )
        self._set_tags(name, version, {_TAG_STATUS: "archived"})
        return event

    def apply_gate(
        self,
        name: str,
        version: int,
        *,
        y_true: ArrayLike,
        effort: ArrayLike | None,
        challenger_scores: ArrayLike,
        champion_scores: ArrayLike | None,
        champion_version: int | None,
        who: str,
        now: datetime,
        criteria: GateCriteria | None = None,
        archive_on_reject: bool = True,
    ) -> GateOutcome:
        """Gate ``version`` on a scored window, log the decision (MLflow run), then promote or archive it.

        ``champion_scores`` must come from ``champion_version``, which must still be the champion (None when
        there is none yet: the first-model floor applies). Thresholds for F1 come from each version's
        registered metadata.
        """
        current = self.alias_version(name, CHAMPION)
        if current != champion_version:
            now_serving = f"v{current}" if current is not None else "unset"
            scored = f"v{champion_version}" if champion_version is not None else "no champion"
            raise ModelError(
                f"the champion of {name!r} is {now_serving} but the scores came from {scored}; rescore"
            )
        if (champion_version is None) != (champion_scores is None):
            raise InputError("champion_scores and champion_version must be given together")
        if champion_version == version:
            raise InputError(f"{name} v{version} is already the champion")
        challenger_threshold = self._threshold(name, version)
        champion_threshold = self._threshold(name, champion_version) if champion_version is not None else 0.5
        decision = evaluate_gate(
            y_true,
            effort,
            challenger_scores,
            champion_scores,
            criteria=criteria,
            challenger_threshold=challenger_threshold,
            champion_threshold=champion_threshold,
        )
        run_id = log_gate_decision(
            decision,
            y_true=y_true,
            effort=effort,
            challenger_scores=challenger_scores,
            champion_scores=champion_scores,
            config=self.config,
            model_name=name,
            challenger_version=version,
            champion_version=champion_version,
        )
        self._set_tags(
            name, version, {_TAG_GATE: "passed" if decision.passed else "failed", _TAG_GATE_RUN: run_id}
        )
        evidence = {"gate_run_id": run_id, "gate": decision.to_document()}
        if decision.passed:
            events = self.promote(name, version, who, f"gate passed ({decision.mode})", evidence, now=now)
        elif archive_on_reject:
            events = [self.archive(name, version, who, f"gate {decision.reason}", evidence, now=now)]
        else:
            events = []
        return GateOutcome(decision=decision, gate_run_id=run_id, promoted=decision.passed, events=events)

    # ----------------------------------------------------------------------------------------------------
    # Internals

    def _move(
        self,
        name: str,
        alias: str,
        *,
        action: Action,
        from_version: int | None,
        to_version: int | None,
        who: str,
        why: str,
        now: datetime,
        evidence: Mapping[str, Any],
        alias_changes: bool = True,
    ) -> AuditEvent:
        """Move one alias and append its audit event atomically (the row commits only if MLflow agreed)."""
        client = self.client
        moved = False
        move = AuditEvent(
            registry=self.registry_key,
            model_name=name,
            alias=alias,
            action=action,
            from_version=from_version,
            to_version=to_version,
            who=who,
            why=why,
            at=now,
            evidence=dict(evidence),
        )
        try:
            with self.audit.transaction() as conn:
                event = self.audit.append(move, conn=conn)
                if alias_changes:
                    with mlflow_errors(f"cannot move alias {alias!r} of {name}"):
                        if to_version is None:
                            client.delete_registered_model_alias(name, alias)
                        else:
                            client.set_registered_model_alias(name, alias, str(to_version))
                    moved = True
        except SQLAlchemyError as exc:
            if moved:  # the audit row did not commit: undo the move so no alias change goes unrecorded
                with mlflow_errors(f"cannot restore alias {alias!r} of {name} after an audit failure"):
                    if from_version is None:
                        client.delete_registered_model_alias(name, alias)
                    else:
                        client.set_registered_model_alias(name, alias, str(from_version))
            raise ModelError(
                f"the audit record could not be written, alias {alias!r} left unchanged: {exc}"
            ) from exc
        return event

    def _registered_model(self, name: str) -> Any:
        _check_name(name)
        client = self.client
        from mlflow.exceptions import MlflowException

        try:
            return client.get_registered_model(name)
        except MlflowException as exc:
            error = mlflow_error(exc, f"unknown model {name!r}")
            if isinstance(error, NotFoundError):
                raise NotFoundError(f"unknown model {name!r}") from exc
            raise error from exc

    def _model_version(self, name: str, version: int) -> Any:
        _check_name(name)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InputError(f"a model version is a positive integer, got {version!r}")
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            error = mlflow_error(exc, f"{name} has no version {version}")
            if isinstance(error, NotFoundError):
                self._registered_model(name)  # raises "unknown model" when the name itself is missing
                raise NotFoundError(f"model {name!r} has no version {version}") from exc
            raise error from exc

    def _threshold(self, name: str, version: int) -> float:
        value = _float_or_none(self._model_version(name, version).tags.get(_TAG_THRESHOLD))
        return value if value is not None and 0.0 < value < 1.0 else 0.5

    def _set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        client = self.client
        with mlflow_errors(f"cannot tag {name} v{version}"):
            for key, value in tags.items():
                client.set_model_version_tag(name, str(version), key, value)

    def _version_info(self, mv: Any, aliases: list[str], with_metrics: bool) -> ModelVersionInfo:
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        metrics: dict[str, float] = {}
        if with_metrics and mv.run_id:
            from mlflow.exceptions import MlflowException

            try:
                metrics = {k: float(v) for k, v in self.client.get_run(mv.run_id).data.metrics.items()}
            except MlflowException:
                metrics = {}  # the run was deleted; the version still exists and is listed
        return ModelVersionInfo(
            name=mv.name,
            version=int(mv.version),
            aliases=sorted(aliases),
            run_id=mv.run_id or None,
            source=str(mv.source),
            created_at=_from_millis(mv.creation_timestamp),
            status=tags.get(_TAG_STATUS),
            gate=tags.get(_TAG_GATE),
            threshold=_float_or_none(tags.get(_TAG_THRESHOLD)),
            dataset_fingerprint=tags.get(_TAG_FINGERPRINT),
            metrics=metrics,
            tags=tags,
        )


def champion_stack(events: list[AuditEvent]) -> list[int]:
    """Replay champion events into the stack of champions (bottom = oldest); its top is the current one.

    ``promote`` pushes (a champion set outside defectops before the first recorded move is pushed first);
    ``rollback`` pops back to its target.
    """
    stack: list[int] = []
    for event in events:
        if event.alias != CHAMPION:
            continue
        if event.action == "promote" and event.to_version is not None:
            if not stack and event.from_version is not None:
                stack.append(event.from_version)
            stack.append(event.to_version)
        elif event.action == "rollback" and event.to_version is not None:
            if stack:
                stack.pop()
            if not stack or stack[-1] != event.to_version:
                stack.append(event.to_version)
    return stack


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"invalid model name {name!r}: use letters, digits, '_', '.', '-' "
            "(at most 128, starting alphanumeric)"
        )


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _all_pages(method: Any, *args: Any) -> Any:
    """Iterate over every page of an MLflow search (they return at most one page per call)."""
    token = None
    while True:
        page = method(*args, page_token=token) if token else method(*args)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _positive_column(estimator: Any) -> int | None:
    """The ``predict_proba`` column of the defective class (label 1/True); None unless binary."""
    if not callable(getattr(estimator, "predict_proba", None)):
        return None
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return 1  # scikit-learn's convention for binary classifiers without classes_ (e.g. some wrappers)
    labels = list(classes)
    if len(labels) != 2:
        return None
    return labels.index(1) if 1 in labels else 1


def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _from_millis(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(int(value) / 1000.0, tz=UTC)
