"""Which model versions a worker serves, and how they change: reload, promote, rollback, traffic.

The rule for every change is "prepare, test, then swap": the new versions are downloaded from the registry and
smoke-tested (:func:`defectops.serving.deployment.prepare`) while the current deployment keeps answering; only
when all of them passed does one attribute store replace the :class:`Deployment`. Requests read that attribute
once, so each request is answered entirely by the old or entirely by the new deployment. A broken artifact
raises :class:`ReloadRefusedError` and changes nothing.

An explicit reload always re-reads the artifacts (the version number stays the same when the files behind it
are replaced or damaged); workers that follow the control file re-read a version whose artifact digest
changed. If the champion does not load at start-up, the worker serves the last champion of the registry's
audit history that does, says so in the log, and reports itself degraded (``/health/ready``, ``/metrics``).
A degraded worker retries the champion by itself (``retry_seconds`` after, then twice as long after each
failure, up to an hour): an artifact store that was briefly unreachable at start-up, or files repaired in
place, end the degradation without an operator. A worker that serves nothing (no champion yet, or the
registry did not answer at start-up: a pod that starts before the MLflow server) retries the same way, up to
five minutes apart, and logs one line per attempt saying what it waits for, so it becomes ready once the
champion can be loaded. A store that does not answer is a :class:`RegistryUnavailableError` (503, try again),
never a refusal of the version (409).

Promotion and rollback prepare the version that will become champion *before* moving the registry alias, so
the registry never names a champion this service could not load. Changes are serialised by a lock and
published to the other workers through the :class:`~defectops.serving.control.ControlFile`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from defectops.errors import (
    AliasConflictError,
    DefectOpsError,
    NotFoundError,
    RegistryUnavailableError,
    ReloadRefusedError,
    TrafficConflictError,
)
from defectops.registry import CHALLENGER, CHAMPION, ModelRegistry, champion_stack
from defectops.serving.control import ControlFile, ControlState
from defectops.serving.deployment import OFF, Deployment, ServingModel, Traffic, prepare
from defectops.serving.metrics import ServiceMetrics

logger = logging.getLogger("defectops.serving")

Clock = Callable[[], datetime]

#: The longest wait between two retries of a broken champion by a degraded worker.
RETRY_CAP_SECONDS = 3600.0
#: The longest wait between two attempts of a worker that serves nothing (every request is a 503 meanwhile,
#: and an attempt while nothing is registered or the registry is down costs one registry call).
WAITING_RETRY_CAP_SECONDS = 300.0


def retry_delays(first: float, cap: float = RETRY_CAP_SECONDS) -> Iterator[float]:
    """Seconds before each retry of a degraded worker: ``first``, then doubled, up to ``max(first, cap)``."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, max(first, cap))


class ModelManager:
    """Loads versions from the registry and swaps them in atomically (one instance per worker)."""

    def __init__(
        self,
        registry: ModelRegistry,
        model_name: str,
        *,
        control: ControlFile,
        metrics: ServiceMetrics,
        clock: Clock,
        threshold: float | None = None,
        retry_seconds: float = 0.0,
    ) -> None:
        self.registry = registry
        self.retry_seconds = retry_seconds
        self.model_name = model_name
        self.control = control
        self.metrics = metrics
        self.clock = clock
        self.threshold = threshold
        self.deployment = Deployment(champion=None, challenger=None)
        self._lock = threading.RLock()
        self._stamp: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- loading --------------------------------------------------------------------------------------

    def load_version(self, version: int) -> ServingModel:
        """Download, prepare and smoke-test one version (ReloadRefusedError when it is unusable)."""
        try:
            loaded = self.registry.load(self.model_name, version=version)
        except (NotFoundError, RegistryUnavailableError):
            raise  # a missing version (404) or a store that did not answer (503): no verdict on the files
        except DefectOpsError as exc:
            raise ReloadRefusedError(f"{self.model_name} v{version} is refused: {exc}") from exc
        reference = None
        try:
            reference = self.registry.load_reference(self.model_name, version=version)
        except DefectOpsError as exc:  # no snapshot: the smoke test falls back to a neutral row
            logger.warning("no reference rows for %s v%s (%s)", self.model_name, version, exc)
        try:
            model = prepare(loaded, reference=reference, threshold=self.threshold, now=self.clock())
        except DefectOpsError as exc:
            raise ReloadRefusedError(f"{self.model_name} v{version} is refused: {exc}") from exc
        if model.bands.low_derived:
            logger.warning(
                "%s v%s was saved with three risk bands: 'minimal' is below %.3f, half its base rate, "
                "not backed by its training examples; retrain to fit four bands",
                self.model_name,
                version,
                model.bands.low,
            )
        return model

    def _reuse_or_load(
        self, version: int | None, digest: str | None = None, *, fresh: bool = False
    ) -> ServingModel | None:
        """The served model of ``version`` when it is loaded (and its artifact digest is ``digest``, when
        given), else the version loaded anew; ``fresh`` always loads anew."""
        if version is None:
            return None
        current = self.deployment
        for model in () if fresh else (current.champion, current.challenger):
            if model is not None and model.version == version and digest in (None, model.digest):
                return model
        return self.load_version(version)

    def _aliases(self) -> tuple[int | None, int | None]:
        aliases = self.registry.aliases(self.model_name)
        return aliases.get(CHAMPION), aliases.get(CHALLENGER)

    def _swap(self, deployment: Deployment) -> Deployment:
        self.deployment = deployment
        models = []
        for role, model in (("champion", deployment.champion), ("challenger", deployment.challenger)):
            if model is not None:
                models.append((model.name, model.version_label, role))
        self.metrics.set_models(models)
        self.metrics.set_degraded(deployment.degraded is not None)
        return deployment

    def _fail(self, error: DefectOpsError) -> None:
        self.metrics.reloads.labels("refused").inc()
        self.deployment = dataclasses.replace(self.deployment, last_error=str(error))

    def _last_good(self, broken: int, error: DefectOpsError) -> tuple[ServingModel, str]:
        """The latest earlier champion of the audit history that loads, and why it serves (else ``error``)."""
        try:
            stack = champion_stack(self.registry.history(self.model_name, alias=CHAMPION))
        except DefectOpsError as exc:
            logger.error("no fallback for the broken champion: the audit history is unavailable: %s", exc)
            raise error from exc
        tried = {broken}
        for version in reversed(stack):
            if version in tried:
                continue
            tried.add(version)
            try:
                model = self.load_version(version)
            except DefectOpsError as exc:
                logger.error(
                    "earlier champion %s v%s does not load either: %s", self.model_name, version, exc
                )
                continue
            reason = (
                f"DEGRADED: the champion {self.model_name} v{broken} does not load ({error}); serving "
                f"v{version}, the last champion of the audit history that does, until a reload, promotion or "
                "rollback succeeds"
            )
            logger.error("%s", reason)
            return model, reason
        logger.error("no earlier champion of %s loads either (tried %s)", self.model_name, sorted(tried))
        raise error

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self, poll_seconds: float) -> None:
        """Load the aliased versions (a failure leaves the worker live but not ready) and start polling."""
        with self._lock:
            error = self._load_aliased()
        if error is not None:
            retry = f"; next try in {self.retry_seconds:g} s" if self.retry_seconds > 0 else ""
            logger.error("no model loaded: %s%s", error, retry)
        if self._poller is None:
            self._poller = threading.Thread(
                target=self._poll_loop, args=(poll_seconds,), name="defectops-control", daemon=True
            )
            self._poller.start()

    def _load_aliased(self) -> DefectOpsError | None:
        """Serve what the registry's aliases name, with the traffic split of the control file (the last good
        champion, degraded, when the champion does not load); the error when nothing could be loaded (the
        worker then serves nothing, the reason in ``last_error``). Called under the lock."""
        try:
            state = self.control.read()
        except DefectOpsError as exc:
            logger.warning("ignoring the control file: %s", exc)
            state = None
        self._stamp = self.control.stamp()
        try:
            champion_version, challenger_version = self._aliases()
            if champion_version is None:
                raise NotFoundError(f"model {self.model_name!r} has no {CHAMPION!r} alias")
            degraded = None
            try:
                champion = self.load_version(champion_version)
            except (ReloadRefusedError, RegistryUnavailableError) as exc:
                champion, degraded = self._last_good(champion_version, exc)
            challenger = None
            if challenger_version is not None and challenger_version not in (
                champion_version,
                champion.version,
            ):
                try:
                    challenger = self.load_version(challenger_version)
                except DefectOpsError as exc:
                    logger.error("challenger not loaded: %s", exc)
            traffic = state.traffic if state is not None and challenger is not None else OFF
            generation = state.generation if state is not None else 0
            self._swap(Deployment(champion, challenger, traffic, generation, degraded, degraded))
            self.metrics.reloads.labels("loaded").inc()
        except DefectOpsError as exc:
            self._fail(exc)
            return exc
        return None

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=10)
            self._poller = None

    # -- admin changes (all under the lock, all published through the control file) ------------------------

    def reload(self, *, reason: str = "reload") -> Deployment:
        """Read the versions the registry aliases name now anew (artifacts included); all or nothing: when
        one fails, the served models stay and the reason is in ``last_error``."""
        with self._lock:
            try:
                champion_version, challenger_version = self._aliases()
                if champion_version is None:
                    raise NotFoundError(f"model {self.model_name!r} has no {CHAMPION!r} alias")
                if challenger_version == champion_version:
                    challenger_version = None
                champion = self._reuse_or_load(champion_version, fresh=True)
                challenger = self._reuse_or_load(challenger_version, fresh=True)
            except DefectOpsError as exc:
                self._fail(exc)
                raise
            return self._publish(champion, challenger, self.deployment.traffic, reason)

    def promote(self, version: int, *, who: str, why: str, force: bool) -> tuple[Deployment, list[Any]]:
        """Make ``version`` the champion in the registry (audited) and serve it; it is tested first."""
        with self._lock:
            if self._aliases()[0] == version:
                raise AliasConflictError(f"{self.model_name} v{version} is already the champion")
            try:
                candidate = self._reuse_or_load(version)
            except DefectOpsError as exc:
                self._fail(exc)
                raise
            events = self.registry.promote(
                self.model_name,
                version,
                who,
                why,
                {"source": "api"},
                now=self.clock(),
                force=force,
            )
            return self._after_alias_move(candidate, f"promote v{version}"), list(events)

    def rollback(self, *, who: str, why: str) -> tuple[Deployment, Any]:
        """Restore the previous champion (from the audit history) in the registry and serve it."""
        with self._lock:
            stack = champion_stack(self.registry.history(self.model_name, alias=CHAMPION))
            if len(stack) < 2:
                raise AliasConflictError(f"model {self.model_name!r} has no earlier champion to roll back to")
            try:
                candidate = self._reuse_or_load(stack[-2])
            except DefectOpsError as exc:
                self._fail(exc)
                raise
            event = self.registry.rollback(self.model_name, who, why, {"source": "api"}, now=self.clock())
            if candidate is None or event.to_version != candidate.version:
                candidate = self._reuse_or_load(event.to_version)
            return self._after_alias_move(candidate, f"rollback to v{event.to_version}"), event

    def _after_alias_move(self, champion: ServingModel | None, reason: str) -> Deployment:
        try:
            _, challenger_version = self._aliases()
            if champion is not None and challenger_version == champion.version:
                challenger_version = None
            challenger = self._reuse_or_load(challenger_version)
        except DefectOpsError as exc:  # the champion moved; a broken challenger only loses its part
            logger.error("challenger not loaded after %s: %s", reason, exc)
            challenger = None
        return self._publish(champion, challenger, self.deployment.traffic, reason)

    def set_traffic(self, traffic: Traffic) -> Deployment:
        with self._lock:
            current = self.deployment
            if traffic.mode != "off" and current.challenger is None:
                raise TrafficConflictError(
                    f"traffic mode {traffic.mode!r} needs a challenger, and {self.model_name!r} has none "
                    "loaded (register one, then POST /v1/models/reload)"
                )
            return self._publish(
                current.champion, current.challenger, traffic, f"traffic {traffic.mode}", current.degraded
            )

    def _publish(
        self,
        champion: ServingModel | None,
        challenger: ServingModel | None,
        traffic: Traffic,
        reason: str,
        degraded: str | None = None,
    ) -> Deployment:
        if challenger is None:
            traffic = OFF
        state = self.control.update(
            lambda _current: (
                None if champion is None else champion.version,
                None if challenger is None else challenger.version,
                traffic,
                reason,
            ),
            now=self.clock(),
            digests=(
                None if champion is None else champion.digest,
                None if challenger is None else challenger.digest,
            ),
        )
        self._stamp = self.control.stamp()
        self.metrics.reloads.labels("loaded").inc()
        return self._swap(Deployment(champion, challenger, traffic, state.generation, degraded=degraded))

    # -- following the other workers --------------------------------------------------------------------

    def poll_once(self) -> bool:
        """Apply a newer control state written by another worker; True when something was swapped in."""
        stamp = self.control.stamp()
        if stamp is None or stamp == self._stamp:
            return False
        with self._lock:
            self._stamp = stamp
            try:
                state = self.control.read()
            except DefectOpsError as exc:
                logger.warning("ignoring the control file: %s", exc)
                return False
            if state is None or state.generation <= self.deployment.generation:
                return False
            return self._follow(state)

    def _follow(self, state: ControlState) -> bool:
        try:
            champion = self._reuse_or_load(state.champion, state.champion_digest)
            challenger = self._reuse_or_load(state.challenger, state.challenger_digest)
        except DefectOpsError as exc:
            logger.error("cannot follow control generation %s: %s", state.generation, exc)
            self._fail(exc)
            return False
        traffic = state.traffic if challenger is not None else OFF
        current = self.deployment
        still = current.champion is not None and champion is current.champion
        degraded = current.degraded if still else None
        self._swap(Deployment(champion, challenger, traffic, state.generation, degraded, degraded))
        self.metrics.reloads.labels("followed").inc()
        return True

    def retry_degraded(self) -> bool:
        """One attempt of a degraded worker to serve the champion the registry names (a full reload, published
        to the other workers); True when it serves it and is no longer degraded."""
        if self.deployment.degraded is None:
            return False
        try:
            self.reload(reason="degraded: champion retried")
        except DefectOpsError as exc:
            logger.warning("still degraded, the champion does not load yet: %s", exc)
            return False
        logger.warning("no longer degraded: serving %s", _served(self.deployment))
        return True

    def retry_waiting(self) -> DefectOpsError | None:
        """One attempt of a worker that serves nothing to load what the registry's aliases name (as at
        start-up); None when a champion serves now (or already did), else why not."""
        with self._lock:
            if self.deployment.champion is not None:
                return None
            error = self._load_aliased()
        if error is None:
            logger.warning("waited for model %r: serving %s", self.model_name, _served(self.deployment))
        return error

    def _waiting_for(self) -> str | None:
        """What the worker waits for by itself: ``"model"`` (it serves nothing), ``"champion"`` (it serves a
        fallback, degraded), or None (it serves the registry's champion, or retries are off)."""
        if self.retry_seconds <= 0:
            return None
        current = self.deployment
        if current.champion is None:
            return "model"
        return "champion" if current.degraded is not None else None

    def _poll_loop(self, seconds: float) -> None:
        """Every ``seconds``: follow the control file; and retry on the schedule of :func:`retry_delays`
        while the worker serves nothing or a fallback (the schedule starts over when that changes)."""
        waiting: str | None = None
        waited, delay, delays = 0.0, 0.0, retry_delays(self.retry_seconds)
        while not self._stop.wait(seconds):
            try:
                self.poll_once()
                now_waiting = self._waiting_for()
                if now_waiting != waiting:
                    waiting = now_waiting
                    cap = WAITING_RETRY_CAP_SECONDS if waiting == "model" else RETRY_CAP_SECONDS
                    waited, delays = 0.0, retry_delays(self.retry_seconds, cap)
                    delay = next(delays)
                if waiting is None:
                    continue
                waited += seconds
                if waited < delay:
                    continue
                waited = 0.0
                if waiting == "champion":
                    if not self.retry_degraded():
                        delay = next(delays)
                    continue
                error = self.retry_waiting()
                if error is not None:
                    delay = next(delays)
                    logger.warning(
                        "waiting for model %r: %s; next try in %g s", self.model_name, error, delay
                    )
            except Exception:  # never let the poller die; the next round tries again
                logger.exception("control file poll failed")


def _served(deployment: Deployment) -> str:
    """The versions a deployment serves, for a log line: ``jit v3 (challenger v4)``."""
    champion, challenger = deployment.champion, deployment.challenger
    if champion is None:
        return "nothing"
    text = f"{champion.name} v{champion.version}"
    if deployment.degraded is not None:
        text += " (degraded: a fallback for the champion that does not load)"
    return text if challenger is None else f"{text} (challenger v{challenger.version})"
