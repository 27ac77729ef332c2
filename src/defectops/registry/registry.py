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

import contextlib
import io
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import SQLAlchemyError

from defectops.config import GateCriteria
from defectops.errors import (
    GateOverrideRequiredError,
    InputError,
    ModelError,
    NotFoundError,
    RegistryUnavailableError,
)
from defectops.registry.audit import Action, AuditEvent
from defectops.registry.gate import GateDecision, evaluate_gate, log_gate_decision
from defectops.registry.loading import smoke_score
from defectops.registry.reading import RegistryReader
from defectops.registry.records import (
    CHALLENGER,
    CHAMPION,
    TAG_FINGERPRINT,
    TAG_GATE,
    TAG_GATE_RUN,
    TAG_STATUS,
    TAG_THRESHOLD,
    ModelVersionInfo,
    check_name,
    float_or_none,
)
from defectops.registry.tracking import METADATA_KEY, activate, mlflow_errors

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike


class GateOutcome(BaseModel):
    """What :meth:`ModelRegistry.apply_gate` did."""

    model_config = ConfigDict(frozen=True)

    decision: GateDecision
    gate_run_id: str
    promoted: bool
    events: list[AuditEvent]


_log = logging.getLogger(__name__)


class ModelRegistry(RegistryReader):
    """The registry of one tracking configuration (MLflow registry + audit table): reading (see
    :class:`~defectops.registry.reading.RegistryReader`) plus the audited alias moves."""

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
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersionInfo:
        """Register ``model_uri`` (e.g. ``TrainingRun.model_uri``) as a new version; make it the challenger.

        The previous challenger (if any) loses the alias; the move is audited with action ``register``.
        Pass ``alias=None`` to register without an alias (nothing to audit then). ``tags`` are added to the
        version's own (e.g. ``defectops.origin = cross-project`` for the starter).
        """
        import mlflow
        from mlflow.models import get_model_info

        check_name(name)
        activate(self.config)
        try:
            info = get_model_info(model_uri)
        except Exception as exc:  # an unreadable MLmodel is as bad as a missing one
            raise ModelError(
                f"{model_uri} is not a loadable MLflow model ({type(exc).__name__}: {exc})"
            ) from exc
        own = info.metadata.get(METADATA_KEY, {}) if isinstance(info.metadata, dict) else {}
        tags = {**{str(k): str(v) for k, v in (tags or {}).items()}, TAG_STATUS: "registered"}
        if "threshold" in own:
            tags[TAG_THRESHOLD] = repr(float(own["threshold"]))
        if own.get("dataset_fingerprint"):
            tags[TAG_FINGERPRINT] = str(own["dataset_fingerprint"])
        # MLflow prints "Successfully registered model ..." to stderr itself; the command that registers says
        # what happened in its own words (and --quiet means quiet), so MLflow's lines go to the debug log.
        said = io.StringIO()
        with mlflow_errors(f"cannot register {model_uri} as {name}"), contextlib.redirect_stderr(said):
            mv = mlflow.register_model(model_uri, name, tags=tags)
        _log.debug("%s", said.getvalue().strip())
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
        refusal = self._refusal(name, mv)
        if refusal is not None and not force:
            raise GateOverrideRequiredError(
                f"{name} v{version} {refusal}; promote with force (and a reason) to override"
            )
        self.check_servable(name, version)  # even with force: a champion must always load
        details = {**dict(evidence or {}), "forced": refusal is not None}
        if refusal is not None:
            details["overridden"] = refusal
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
        self._set_tags(name, version, {TAG_STATUS: CHAMPION})
        if current is not None:
            self._set_tags(name, current, {TAG_STATUS: "retired"})
        return events

    def check_servable(self, name: str, version: int) -> None:
        """ModelError (with the reason) unless ``name`` v``version`` loads, has its feature signature and
        smoke-scores (:func:`~defectops.registry.loading.smoke_score`): checked before every move of the
        champion alias, from the CLI, the API or heal, so the registry never names a champion that cannot
        load."""
        what = f"{name} v{version}"
        try:
            loaded = self.load(name, version=version)
        except RegistryUnavailableError:
            raise  # an outage says nothing about the version: try again later
        except ModelError as exc:
            raise ModelError(f"{what} cannot become champion: {exc}") from exc
        try:
            reference: pd.DataFrame | None = self.load_reference(name, version=version)
        except (NotFoundError, ModelError):
            reference = None
        try:
            smoke_score(loaded, reference, what=what)
        except ModelError as exc:
            raise ModelError(f"{what} cannot become champion: {exc}") from exc

    def _refusal(self, name: str, mv: Any) -> str | None:
        """Why a version may not become champion without force: its gate failed, or it was archived, else
        None. An archived version names who archived it and why, from the audit history: ``run`` also
        archives a version whose gate could not run (too few new labelled commits), and the refusal said
        "refused by its promotion gate or retired by hand" for it, which was neither."""
        if mv.tags.get(TAG_GATE) == "failed":
            return f"failed its promotion gate (run {mv.tags.get(TAG_GATE_RUN, '?')})"
        if mv.tags.get(TAG_STATUS) != "archived":
            return None
        version = int(mv.version)
        for event in reversed(self.history(name, alias=CHALLENGER)):
            if event.action == "archive" and event.evidence.get("archived_version") == version:
                return f"was archived by {event.who} ({event.why})"
        return "was archived (refused by its promotion gate or retired by hand)"

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
        self.check_servable(name, target)
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
        self._set_tags(name, current, {TAG_STATUS: "rolled_back"})
        self._set_tags(name, target, {TAG_STATUS: CHAMPION})
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
        self._set_tags(name, version, {TAG_STATUS: "archived"})
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
            name, version, {TAG_GATE: "passed" if decision.passed else "failed", TAG_GATE_RUN: run_id}
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

    def _threshold(self, name: str, version: int) -> float:
        value = float_or_none(self._model_version(name, version).tags.get(TAG_THRESHOLD))
        return value if value is not None and 0.0 < value < 1.0 else 0.5

    def _set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        client = self.client
        with mlflow_errors(f"cannot tag {name} v{version}"):
            for key, value in tags.items():
                client.set_model_version_tag(name, str(version), key, value)


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
