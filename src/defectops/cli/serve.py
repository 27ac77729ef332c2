"""``defectops serve``: the prediction service (FastAPI + uvicorn).

A plain function with Annotated Typer options; the CLI module registers it. Options left out fall back to
the ``DEFECTOPS_SERVE_*`` environment, then to the defaults shown. FastAPI, uvicorn and MLflow are imported
inside the function so ``defectops --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from defectops.cli._support import app_settings, check_port, quiet_mlflow
from defectops.console import stderr

if TYPE_CHECKING:
    from defectops.config import Settings
    from defectops.registry import RegisteredModelInfo


def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on.", show_default="127.0.0.1")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).", show_default="8000"),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes (1 is fastest for single records on a small machine).",
            show_default="1",
        ),
    ] = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model-name",
            help="Registered model to serve (its champion alias).",
            show_default="the only model with a champion",
        ),
    ] = None,
    log_url: Annotated[
        str | None,
        typer.Option(
            "--log-url",
            help="Prediction log database (sqlite:///PATH or postgresql+psycopg://...).",
            show_default="predictions.db in the workspace",
        ),
    ] = None,
    max_batch: Annotated[
        int | None,
        typer.Option("--max-batch", min=1, help="Most records one request may score.", show_default="1000"),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option("--access-log/--no-access-log", help="Log every request line.", show_default="off"),
    ] = None,
    repository: Annotated[
        list[str] | None,
        typer.Option(
            "--repository",
            help="ID=PATH: a repository /v1/commits/score may mine (repeatable; a clone the service can "
            "read). Also DEFECTOPS_SERVE_REPOSITORIES as JSON {id: path}.",
            show_default="none",
        ),
    ] = None,
    wait_for_model: Annotated[
        bool,
        typer.Option(
            "--wait-for-model",
            help="Start even if the model is not registered yet, answering 503 until it has a champion "
            "(a fresh deployment whose scheduler trains the first model).",
        ),
    ] = False,
) -> None:
    """Serve predictions over HTTP: /v1/predict, /v1/commits/score, /v1/feedback, /v1/models, /metrics.

    Admin endpoints need DEFECTOPS_SERVE_ADMIN_TOKEN (required outside local mode).

    Stop with Ctrl-C or SIGTERM: requests in flight finish; every answered prediction is in the log.
    """
    from defectops.config import DEFAULT_MODEL_NAME, LOCAL_ADMIN_TOKEN, ServeSettings
    from defectops.registry import choose_model_name
    from defectops.serving import run

    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "workers": workers,
        "model_name": model_name,
        "log_url": log_url,
        "max_batch": max_batch,
        "access_log": access_log,
        "repositories": _repositories(repository) if repository else None,
    }
    settings = app_settings()
    quiet_mlflow()
    serve_settings = ServeSettings(**{k: v for k, v in given.items() if v is not None})
    mined = not repository and "repositories" not in settings.serve.model_fields_set and _local(settings.mode)
    token = serve_settings.check(settings)
    # Everything a user can get wrong is checked before anything listens: one line, not a failed startup.
    # The model first, and without creating the registry: a workspace where nothing was trained is refused
    # with nothing written into it (no MLflow database, no prediction log).
    named = model_name is not None or "model_name" in settings.serve.model_fields_set
    models = _registered_models(settings, wait=wait_for_model, named=named)
    if not named:
        chosen = choose_model_name(models or [], DEFAULT_MODEL_NAME)
        serve_settings = serve_settings.model_copy(update={"model_name": chosen})
    if models is None:  # the registry did not answer: the workers wait for it (503 until the model loads)
        stderr.print(
            f"defectops serve: waiting for model {serve_settings.model_name!r}: the registry did not answer "
            "yet; /health/ready answers 503 until it does and the champion loads",
            highlight=False,
        )
    else:
        _check_model(serve_settings.model_name, [m.name for m in models], wait=wait_for_model)
    _check_log(settings, serve_settings)
    check_port(serve_settings.host, serve_settings.port, "choose another --port (0: any free port)")
    if mined:
        found = _mined(settings, serve_settings.model_name)
        serve_settings = serve_settings.model_copy(update={"repositories": found})
    token_note = (
        "the local default admin token" if token == LOCAL_ADMIN_TOKEN else "the configured admin token"
    )
    plural = "s" if serve_settings.workers > 1 else ""
    stderr.print(
        f"defectops serve: model {serve_settings.model_name!r} on "
        f"http://{serve_settings.host}:{serve_settings.port} ({serve_settings.workers} worker{plural}; "
        f"admin with {token_note})",
        highlight=False,
    )
    if serve_settings.repositories:
        known = ", ".join(f"{rid} ({path})" for rid, path in sorted(serve_settings.repositories.items()))
        stderr.print(f"  /v1/commits/score mines: {known}", highlight=False, soft_wrap=True)
    run(settings, serve_settings)


def _local(mode: str) -> bool:
    return mode.strip().lower() == "local"


def _mined(settings: Settings, model_name: str) -> dict[str, Path]:
    """In local mode with no repositories configured, /v1/commits/score may mine what this workspace
    mined (``defectops run --repo R`` then ``defectops serve`` scores R's commits); elsewhere only what is
    configured, so a deployed service never widens what it reads from a workspace's history.

    Of several mined repositories, those whose model is the one served: a workspace that ran two
    repositories served A's model and scored B's commits with it too, logged as A's predictions. When no
    mined repository is the served model's (a model trained with ``train --data``), all of them, as before.
    """
    from defectops.config import Workspace
    from defectops.git import GitRepo
    from defectops.mining import RepositoryNames, mined_repositories

    workspace = Workspace.from_settings(settings)
    mined = mined_repositories(workspace.state_dir)
    names = RepositoryNames(workspace.root)
    own = {rid: path for rid, path in mined.items() if names.model_name(GitRepo.open(path)) == model_name}
    return own or mined


def _repositories(pairs: list[str]) -> dict[str, str]:
    """``--repository ID=PATH`` options as the ``repositories`` setting."""
    from defectops.errors import InputError

    found: dict[str, str] = {}
    for pair in pairs:
        repo_id, sep, path = pair.partition("=")
        if not sep or not repo_id.strip() or not path.strip():
            raise InputError(f"--repository {pair!r}: use ID=PATH, e.g. --repository flask=/srv/clones/flask")
        found[repo_id.strip()] = path.strip()
    return found


def _registered_models(settings: Settings, *, wait: bool, named: bool) -> list[RegisteredModelInfo] | None:
    """The registry's models; none when its embedded database does not exist yet, which is then left
    uncreated (opening it through MLflow would create and migrate it, and its folder, to find it empty).

    None when ``wait`` (``--wait-for-model``) and the registry did not answer: a service started before its
    MLflow server (a Kubernetes pod, a compose service) listens, answers 503 on ``/health/ready`` and loads
    the model once the server answers, instead of exiting. Only a ``named`` model can be waited for so:
    which model to serve is otherwise chosen from the registry's answer.
    """
    from defectops.cli.models import _nothing_registered
    from defectops.errors import RegistryUnavailableError
    from defectops.registry import ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    if _nothing_registered(registry):
        return []
    try:
        return registry.list_models()
    except RegistryUnavailableError as exc:
        if not wait:
            raise
        if not named:
            raise RegistryUnavailableError(
                f"{exc}; to wait for it, name the model with --model-name or DEFECTOPS_SERVE_MODEL_NAME"
            ) from exc
        return None


def _check_model(name: str, registered: list[str], *, wait: bool) -> None:
    """Refuse to serve a model the registry does not know, unless asked to wait for it."""
    from defectops.errors import NotFoundError

    if name in registered or wait:
        return
    known = f"registered: {', '.join(sorted(registered))}" if registered else "nothing is registered yet"
    raise NotFoundError(
        f"model {name!r} is not registered ({known}); train one with `defectops run`, name another with "
        "--model-name, or start anyway with --wait-for-model"
    )


def _check_log(settings: Any, serve: Any) -> None:
    """Open the prediction log once: a wrong scheme or an unreachable database stops here with one line."""
    from defectops.config import Workspace
    from defectops.predlog import PredictionLog, default_url

    url = serve.log_url or default_url(Workspace.from_settings(settings).root)
    PredictionLog.from_url(url, serve.log_durability).close()
