"""One exception hierarchy for defectops.

Every error a user can cause or fix derives from :class:`DefectOpsError`. The CLI prints such an error as a
single line and exits with its ``exit_code``; the service maps it to a 4xx/5xx with its message as the reason.
Anything else is a bug and is shown with a traceback only under ``--verbose``.
"""

from __future__ import annotations


class DefectOpsError(Exception):
    """Base class: a problem the user can understand and act on."""

    exit_code: int = 1
    http_status: int = 400
    #: Seconds after which trying again may succeed, for errors that pass by themselves (a server that does
    #: not answer for now, a lock held elsewhere); sent as ``Retry-After`` (:meth:`http_headers`). None:
    #: retrying alone will not help.
    retry_after: int | None = None

    def http_headers(self) -> dict[str, str] | None:
        """The headers of an HTTP answer to this error: ``Retry-After`` when retrying later may help. Every
        app (the service, the event receiver) sends these, so a 503 says when to come back the same way."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None


class ConfigError(DefectOpsError):
    """Settings are missing, contradictory or unsafe (e.g. a default secret outside local mode)."""

    exit_code = 2


class InputError(DefectOpsError):
    """A file, option or request body that cannot be used as given."""

    exit_code = 2
    http_status = 422


class GitError(DefectOpsError):
    """git failed, or the repository cannot be mined as asked."""

    exit_code = 3


class NotARepositoryError(GitError):
    """The path is not inside a git work tree or git directory."""


class EmptyRepositoryError(GitError):
    """The repository has no commits on the requested branch."""


class ShallowCloneError(GitError):
    """History metrics would be wrong on a shallow clone; refused unless explicitly allowed."""


class MissingObjectError(GitError):
    """A commit or blob the repository references is not in its object store."""


class StateError(DefectOpsError):
    """The incremental miner state is missing, stale or belongs to another repository."""

    exit_code = 4


class DataError(DefectOpsError):
    """A dataset failed its schema or cannot be joined as required."""

    exit_code = 5


class ModelError(DefectOpsError):
    """No usable model: none registered, an artifact that does not load, or a failed gate."""

    exit_code = 6
    http_status = 503


class RegistryUnavailableError(ModelError):
    """The MLflow tracking server, or the artifact store a model's files are in, did not answer (refused,
    timed out, failed with a 5xx): nothing is known to be wrong with the model: the same call may pass later.

    Kept apart from a version that does not load (:class:`ReloadRefusedError`, a 409) so that an outage is a
    503 with ``Retry-After``, which deploy scripts and operators retry, rather than a conflict to resolve.
    """

    retry_after = 30


class NotFoundError(DefectOpsError):
    """A named thing (model, prediction, repository) does not exist."""

    exit_code = 7
    http_status = 404


class ForeignStateError(StateError):
    """A miner state that was not mined from this repository's history (or cannot be shown to be)."""

    exit_code = 2


class TerraformParseError(InputError):
    """A ``.tf`` file that python-hcl2 cannot parse; the code-metrics row records it as a parse error."""


class RateLimitError(DefectOpsError):
    """GitHub's rate limit would make us wait longer than allowed."""


class PredictionLogError(DefectOpsError):
    """The prediction store is unreachable or refused a write: nothing of that call was acknowledged."""

    exit_code = 8
    http_status = 503


class AlertDeliveryError(DefectOpsError):
    """A notification could not be delivered (the message says where, never with secrets)."""

    exit_code = 1


class ArtifactStoreError(DefectOpsError):
    """The artifact store cannot be reached, refused an operation, or holds something unusable."""

    exit_code = 9
    http_status = 503


class ArtifactConflictError(ArtifactStoreError):
    """A write would overwrite an existing artifact, or lost against concurrent writers too often."""

    http_status = 409


class StateSnapshotError(ArtifactStoreError):
    """A SQLite state file could not be snapshotted for upload (corrupt, locked, not a database)."""

    exit_code = 4


class GateOverrideRequiredError(ModelError):
    """A promotion of a version the gate refused or that was archived, asked for without ``force``: a
    conflict with the registry's state (409), not a missing model; the CLI keeps ModelError's exit code."""

    http_status = 409


class ReloadRefusedError(DefectOpsError):
    """A new model version could not be loaded or failed its smoke test; the old deployment keeps serving."""

    exit_code = 6
    http_status = 409


class AliasConflictError(DefectOpsError):
    """An alias move the registry's current state does not allow: no earlier champion to roll back to, or
    the version is already the champion."""

    exit_code = 2
    http_status = 409


class TrafficConflictError(DefectOpsError):
    """A traffic split that needs a challenger while none is loaded."""

    exit_code = 2
    http_status = 409


class PayloadTooLargeError(DefectOpsError):
    """A request body or batch beyond the service's limits."""

    exit_code = 2
    http_status = 413


class UnsupportedMediaTypeError(InputError):
    """A request body that is not declared ``application/json`` (a browser can send other types from any page
    without a CORS pre-flight)."""

    http_status = 415


class BodyTimeoutError(InputError):
    """A request body that did not arrive within the service's body timeout."""

    http_status = 408


class LabelConflictError(DefectOpsError):
    """A label that would replace one written by SZZ mining through a lesser source (the HTTP API): refused,
    because heal's decisions rest on the mined labels."""

    exit_code = 2
    http_status = 409


class HealBusyError(DefectOpsError):
    """Another heal cycle of the same model is running; nothing was done (try again later).

    Raised by :meth:`defectops.pipeline.Healer.cycle` when the model's workspace lock is held (an overrunning
    cron job, or a scheduler and a manual ``heal --once`` at the same moment).
    """

    exit_code = 75  # EX_TEMPFAIL: cron and orchestrators treat it as "retry"
    http_status = 409


class WorkspaceBusyError(DefectOpsError):
    """Another process holds a workspace lock (mining, labelling or a run of the same repository, or MLflow's
    schema creation) for longer than this one would wait; nothing was done (try again later)."""

    exit_code = 75  # EX_TEMPFAIL, like HealBusyError
    http_status = 503
    #: A lock is held for a step of a run or a mine (seconds to a few minutes): a minute is a fair first wait.
    retry_after = 60


class InsufficientDataError(DataError):
    """Too few labelled commits, or one class missing, to train and evaluate honestly; nothing was trained.

    The main job and the heal loop catch it and report the reason instead of failing.
    """


class EventStreamError(DefectOpsError):
    """The event stream (Redis or Kafka) cannot be reached or refused an operation; nothing was enqueued."""

    exit_code = 11
    http_status = 503


class EventStreamUnavailableError(EventStreamError):
    """The stream's server did not answer (refused, dropped the connection, timed out, still loading): an
    outage a worker waits out, unlike a refusal (a wrong password, a command Redis rejects).

    ``server`` names it without credentials ("Redis at 127.0.0.1:6379"); ``cause`` is what failed, one line.
    """

    #: A restart or failover takes seconds; a worker waits out the same outage retrying 1, 2, 4 … 30 s apart.
    retry_after = 10

    def __init__(self, message: str, *, server: str, cause: str) -> None:
        super().__init__(message)
        self.server = server
        self.cause = cause


class GitHubApiError(DefectOpsError):
    """GitHub's REST API refused a call (the message names the call and status, never the token)."""

    exit_code = 12
    http_status = 502
