"""Option parsing shared by the CLI commands."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from defectops.errors import InputError

if TYPE_CHECKING:
    from defectops.config import Settings


def parse_time_option(option: str, value: str) -> datetime:
    """``value`` of the command-line option ``option`` as an aware time (a time without zone is UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{option} {value!r} is not a date (use YYYY-MM-DD or an ISO 8601 time)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


#: The settings tree of the command being run, set by the root command (``--workspace`` applied).
_CURRENT: ContextVar[Settings | None] = ContextVar("defectops_cli_settings", default=None)


def use_settings(settings: Settings | None) -> None:
    """Make ``settings`` the tree that :func:`app_settings` returns (None: read the environment again)."""
    _CURRENT.set(settings)


def app_settings() -> Settings:
    """The settings tree the root command built (with ``--workspace``), handed to the commands as a value.

    Why not the environment: the workspace a user gives on the command line is a value of this invocation;
    writing it into ``os.environ`` would leak it into every later call in the same process (tests, a notebook)
    and into child processes that never asked for it. Outside a command (a library caller) the tree is read
    from the environment.
    """
    from defectops.config import Settings

    found = _CURRENT.get()
    return found if found is not None else Settings()


_NAME_OR_REPO = "--model-name, or --repo for that repository's model"


def repository_model(settings: Settings, repo: Path | None, how_to_choose: str = _NAME_OR_REPO) -> str:
    """The model a command uses when none is named: the repository's (``--repo``), else the only champion.

    The repository's name is the one every clone shares or the one its user chose (``run --name``); without a
    repository, the only registered model with a champion, as ``serve`` picks it; with several, the error
    names ``how_to_choose`` (the command's own options).
    """
    from defectops.config import Workspace

    if repo is not None:
        from defectops.git import GitRepo
        from defectops.mining import RepositoryNames

        return RepositoryNames(Workspace.from_settings(settings).root).model_name(GitRepo.open(repo))
    from defectops.errors import NotFoundError
    from defectops.registry import ModelRegistry, choose_model_name

    chosen = choose_model_name(ModelRegistry.from_settings(settings).list_models(), "", how_to_choose)
    if not chosen:
        raise NotFoundError(
            "no registered model has a champion yet: run `defectops run --repo PATH`, or give --model-name"
        )
    return chosen


def set_variables(names: list[str]) -> list[str]:
    """Which of these environment variables are set (to say which one a settings error is about)."""
    import os

    return [name for name in names if name in os.environ]


def quiet_mlflow() -> None:
    """MLflow as a quiet library of this CLI, before it is imported: no telemetry, no progress bars, no INFO.

    A self-hosted tool does not phone home unless its user asks (MLflow 3 sends usage telemetry), and in CI
    logs MLflow's download bars and INFO lines bury the one line that matters. These are MLflow's own
    variables, read when MLflow is imported or downloads; a user's explicit value wins (``setdefault``).
    """
    import logging
    import os

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # With a tracking server (MLFLOW_TRACKING_URI=http://...) MLflow writes "View run ... at: URL" to stdout
    # at the end of every run, which would corrupt the one JSON document of --json.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # Bounded waits on an MLflow server (issue #14: an unreachable one kept `serve` silent for 251 s and
    # `models list` for 274 s under MLflow's defaults of 7 retries with exponential backoff and 120 s
    # timeouts): 3 attempts, 1 s and 2 s apart, 10 s each at most. Setting the variables overrides this.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    for noisy in ("mlflow", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def check_port(host: str, port: int, advice: str) -> None:
    """Refuse a port another process listens on before anything starts (``serve``'s models load, ``ui``'s
    MLflow server starts). Bound the way uvicorn binds (SO_REUSEADDR), then released at once.

    Why: uvicorn found out only after loading, among its INFO lines; under ``defectops ui`` MLflow's server
    then exited 0, so the command said "MLflow UI on http://..." and succeeded with nothing listening.
    """
    import socket

    if port == 0:
        return
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except socket.gaierror as exc:  # the address, not the port, is what to change
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host") from None
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {advice}") from None
