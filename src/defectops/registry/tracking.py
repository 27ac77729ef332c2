"""Where MLflow lives: the tracking configuration and the MLflow session helpers every registry module uses.

Embedded default: an SQLite tracking/registry database ``<workspace>/mlflow/mlflow.db`` and a local artifact
folder ``<workspace>/mlflow/artifacts``, so a user with nothing but the workspace gets the full MLflow
experience (``defectops ui`` browses it). Setting
``MLFLOW_TRACKING_URI`` (and optionally ``MLFLOW_REGISTRY_URI``) points every function here at any other
MLflow store or server instead; nothing else changes.

MLflow is imported lazily inside functions: importing it costs seconds, and modules the CLI loads for
``--help`` must not pay that.

How a training run is logged and registered is in :mod:`defectops.registry.runs`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from defectops.config import TrackingSettings
from defectops.console import redact_url
from defectops.errors import ConfigError, InputError, ModelError, NotFoundError, RegistryUnavailableError
from defectops.locks import exclusive

if TYPE_CHECKING:
    from defectops.config import Settings

#: Experiment used when ``DEFECTOPS_MLFLOW_EXPERIMENT`` is not set.
DEFAULT_EXPERIMENT = "defectops"
#: Artifact path of the logged model inside a run / logged-model record.
MODEL_ARTIFACT = "model"
#: Artifact path of the reference snapshot inside a training run.
REFERENCE_ARTIFACT = "reference/features.parquet"
#: Key under which defectops stores its metadata in the MLmodel file.
METADATA_KEY = "defectops"
#: Version of the metadata layout under :data:`METADATA_KEY` (bump on incompatible changes).
METADATA_FORMAT = 1

SerializationChoice = Literal["auto", "skops", "cloudpickle"]

_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_MAX_PARAM_CHARS = 6000  # MLflow's limit for a parameter value
_MAX_TAG_CHARS = 250  # keep tags short enough for every MLflow backend's index


@dataclass(frozen=True)
class TrackingConfig:
    """Resolved MLflow locations plus the audit database; immutable so it can be passed around freely.

    ``artifact_location`` is where a newly created experiment stores artifacts; ``None`` leaves it to the
    tracking server (the right choice for ``http(s)://`` servers, which own their artifact store).
    """

    workspace: Path
    tracking_uri: str
    registry_uri: str
    artifact_location: str | None
    experiment_name: str
    audit_url: str

    @property
    def embedded_registry_uri(self) -> str:
        """The URI of the workspace's own SQLite database (whether or not it is the one in use)."""
        return _embedded_tracking_uri(self.workspace)

    @property
    def embedded(self) -> bool:
        """True when using the workspace's own SQLite database (nothing configured)."""
        return self.tracking_uri == self.embedded_registry_uri

    @classmethod
    def resolve(cls, workspace: Path, tracking: TrackingSettings | None = None) -> TrackingConfig:
        """Resolve the configuration of a workspace from its tracking settings (none: the embedded default).

        The settings carry ``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI`` (defaults to the tracking URI),
        ``DEFECTOPS_MLFLOW_EXPERIMENT``, ``DEFECTOPS_MLFLOW_ARTIFACTS`` (artifact root for new experiments)
        and ``DEFECTOPS_AUDIT_DB_URL`` (SQLAlchemy URL; default ``sqlite:///<workspace>/registry_audit.db``).
        """
        root = workspace.expanduser().resolve()
        given = tracking if tracking is not None else TrackingSettings.embedded()
        tracking_uri = _text(given.tracking_uri) or _embedded_tracking_uri(root)
        registry = _text(given.registry_uri) or tracking_uri
        artifacts_setting = _text(given.artifacts)
        if artifacts_setting:
            artifacts: str | None = _as_uri(artifacts_setting)
        elif tracking_uri.split(":", 1)[0].split("+", 1)[0] in _DB_SCHEMES or "://" not in tracking_uri:
            # A database store without a server would otherwise put artifacts in ./mlruns of the current
            # directory; keep them in the workspace instead.
            artifacts = (root / "mlflow" / "artifacts").as_uri()
        else:
            artifacts = None
        experiment = _text(given.experiment) or DEFAULT_EXPERIMENT
        audit = _text(given.audit_db_url) or f"sqlite:///{root / 'registry_audit.db'}"
        return cls(
            workspace=root,
            tracking_uri=tracking_uri,
            registry_uri=registry,
            artifact_location=artifacts,
            experiment_name=experiment,
            audit_url=audit,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> TrackingConfig:
        """Resolve from the application settings: their workspace and their tracking subtree."""
        return cls.resolve(settings.resolved_workspace(), settings.tracking)

    def ensure_local_dirs(self) -> None:
        """Create the folders that embedded SQLite files and local artifacts need (never on import).

        Every command that touches the registry passes here first, so a damaged workspace (a file where one
        of these folders belongs) is one :class:`ConfigError` naming the path for all of them, rather than
        MLflow's ``FileExistsError`` deep inside a run, a heal cycle or the service's start.
        """
        for uri in (self.tracking_uri, self.registry_uri, self.audit_url):
            path = _sqlite_path(uri)
            if path is not None:
                _make_folder(path.parent, "MLflow's database folder")
        if self.artifact_location and self.artifact_location.startswith("file:"):
            _make_folder(_file_uri_to_path(self.artifact_location), "MLflow's artifact folder")


def _make_folder(path: Path, what: str) -> None:
    """Create ``path`` and its parents, or say in one line why it cannot be (ConfigError, exit 2)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        where = f"{path} is a file" if blocker == path else f"{path} cannot be created: {blocker} is a file"
        raise ConfigError(
            f"{what} {where}, not a folder (a damaged workspace?): move it away and run the command again"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be created: {exc.strerror or exc}") from None


def _text(value: str | None) -> str:
    """A setting's value with blanks meaning unset (an exported-but-empty variable counts as not set)."""
    return (value or "").strip()


def _embedded_tracking_uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"


def _as_uri(location: str) -> str:
    """A plain path becomes a ``file://`` URI; anything with a scheme is kept."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", location):
        return location
    return Path(location).expanduser().resolve().as_uri()


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    raw = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if raw in {"", ":memory:"} else Path(raw)


def _file_uri_to_path(uri: str) -> Path:
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(uri).path))


# ----------------------------------------------------------------------------------------------------
# MLflow session helpers


def mlflow_error(exc: Exception, action: str) -> Exception:
    """Translate an MLflow exception into the defectops hierarchy (the caller raises it ``from exc``): a
    server that did not answer is a :class:`RegistryUnavailableError` (try again later), no broken model."""
    code = str(getattr(exc, "error_code", ""))
    message = redact_url(f"{action}: {getattr(exc, 'message', None) or exc}")
    if code in {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}:
        return NotFoundError(message)
    if code in {"INVALID_PARAMETER_VALUE", "BAD_REQUEST"}:
        return InputError(message)
    return unavailable_error(exc, action) or ModelError(message)


def unavailable_error(exc: BaseException, action: str) -> RegistryUnavailableError | None:
    """A :class:`RegistryUnavailableError` saying ``action`` failed because a server did not answer (the
    MLflow tracking server, or the artifact store: S3 directly or behind the server's artifact proxy), in one
    short line without credentials; None when ``exc`` is any other failure (a missing model, a damaged file).

    Why: MLflow wraps every failed request in the same ``MlflowException``, and a reload against a stopped S3
    server was answered 409 ("refused") as if the version were broken. The cause stays in the exception's
    chain: a refused or timed-out connection, or a 5xx answer after MLflow's own retries.
    """
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    failed = [e for e in chain if _connection_failed(e) or _server_failed(e)]
    if not failed:
        return None
    endpoint = next((where for e in chain if (where := _endpoint(e))), "the server")
    detail = " ".join(str(chain[-1]).split()) or type(chain[-1]).__name__
    verb = "did not answer" if any(_connection_failed(e) for e in failed) else "failed"
    return RegistryUnavailableError(redact_url(f"{action}: {endpoint} {verb} ({detail})"))


#: Exception classes (by module and name, so that neither requests nor botocore need importing, or typing)
#: of a connection that was refused, dropped or timed out.
_CONNECTION_FAILURES = frozenset(
    {
        ("requests.exceptions", "ConnectionError"),
        ("requests.exceptions", "Timeout"),
        ("botocore.exceptions", "ConnectionError"),
        ("botocore.exceptions", "HTTPClientError"),
    }
)


def _connection_failed(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any((kind.__module__, kind.__name__) in _CONNECTION_FAILURES for kind in type(exc).__mro__)


def _server_failed(exc: BaseException) -> bool:
    """An answer with a 5xx status (requests' HTTPError, botocore's ClientError), or requests' RetryError:
    MLflow's retries exhausted on 429/5xx answers (S3 down behind the tracking server answers 500)."""
    kind = type(exc)
    if (kind.__module__, kind.__name__) == ("requests.exceptions", "RetryError"):
        return True
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is None and isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and status >= 500


def _endpoint(exc: BaseException) -> str | None:
    """``scheme://host:port`` of the request that failed, when the exception knows it (credentials are masked
    by the caller); MLflow's artifact proxy is named as such (its 5xx or silence means the store behind it,
    e.g. S3, failed)."""
    from urllib.parse import urlsplit

    request = getattr(exc, "request", None)
    url = getattr(request, "url", None) or (getattr(exc, "kwargs", None) or {}).get("endpoint_url")
    if not isinstance(url, str) or "://" not in url:
        return None
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}"
    return f"MLflow's artifact proxy at {where}" if "/mlflow-artifacts/" in parts.path else where


@contextmanager
def mlflow_errors(action: str) -> Iterator[None]:
    """Turn MLflow exceptions raised inside the block into one-line defectops errors."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise mlflow_error(exc, action) from exc


def activate(config: TrackingConfig) -> Any:
    """Point MLflow's process-wide URIs at ``config`` and return an ``MlflowClient`` for it.

    MLflow's fluent API (``start_run``, ``log_model``) only reads the global URIs, so every public function
    here calls this first; that keeps successive calls with different configurations (tests, several
    workspaces) from leaking into each other.
    """
    import mlflow
    from mlflow import MlflowClient

    config.ensure_local_dirs()
    # mlflow.set_*_uri also export MLFLOW_*_URI into os.environ; left there, the next configuration resolved
    # from the environment (another workspace in the same process) would silently point at this store.
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.registry_uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    key = (config.tracking_uri, config.registry_uri)
    if key in _stores_opened:
        return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.registry_uri)
    # MlflowClient() opens the tracking store and runs its migrations on a fresh file; two processes doing
    # that at once ran the same Alembic migrations ("duplicate column name: step", "Online migration expected
    # to match one row"). The first opening in a process happens under a lock beside each SQLite file, so a
    # second process finds the schema current; MLflow caches the stores per URI, so this costs one lock per
    # process and configuration.
    with ExitStack() as locks:
        for uri in dict.fromkeys((config.tracking_uri, config.registry_uri)):
            path = _sqlite_path(uri)
            if path is not None:
                lock = path.with_name(path.name + ".lock")
                locks.enter_context(exclusive(lock, what=f"creating MLflow's store {path}"))
        with mlflow_errors(f"cannot open the MLflow store {redact_url(config.tracking_uri)}"):
            client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.registry_uri)
            _ = client._get_registry_client().store  # type: ignore[no-untyped-call]
    _stores_opened.add(key)
    return client


_stores_opened: set[tuple[str, str]] = set()


def ensure_experiment(config: TrackingConfig, client: Any | None = None) -> str:
    """The id of the configured experiment, created (with the workspace artifact root) or restored if needed.

    On a fresh SQLite file the first call also runs MLflow's schema migrations (several seconds, once).
    """
    client = client if client is not None else activate(config)
    with mlflow_errors(f"cannot open MLflow experiment {config.experiment_name!r}"):
        experiment = client.get_experiment_by_name(config.experiment_name)
        if experiment is None:
            from mlflow.exceptions import MlflowException

            try:
                return str(
                    client.create_experiment(
                        config.experiment_name, artifact_location=config.artifact_location
                    )
                )
            except MlflowException as exc:  # another process created it in between
                experiment = client.get_experiment_by_name(config.experiment_name)
                if experiment is None:
                    raise exc from None
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)
