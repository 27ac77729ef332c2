"""``defectops ui``: MLflow's web UI over the workspace's registry, to browse runs and registered models.

Why a command: the registry is a SQLite file inside the workspace, and the MLflow that scoring needs
(mlflow-skinny) has no UI; ``mlflow ui`` from the project's environment showed "landing page not found". This
command checks that the UI is installed (the ``ui`` extra: ``pip install 'defectops[ui]'``), resolves the same
tracking and registry URIs every other command uses, and runs MLflow's own server on them, bound to loopback
unless told otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from defectops.cli._support import app_settings, check_port
from defectops.config import child_environment
from defectops.console import stderr
from defectops.errors import ConfigError, InputError


def _mlflow_ui_installed() -> Path | None:
    """The ``mlflow`` executable of this environment when its web UI is installed, else None."""
    import importlib.util

    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    if not (package / "server" / "js" / "build" / "index.html").is_file():
        return None  # mlflow-skinny: the tracking client without the server's web assets
    executable = Path(sys.executable).with_name("mlflow")
    return executable if executable.is_file() else None


def ui(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 5000,
) -> None:
    """Browse runs and registered models in MLflow's web UI, over this workspace's registry."""
    from defectops.registry import TrackingConfig

    mlflow = _mlflow_ui_installed()
    if mlflow is None:
        raise ConfigError(
            "MLflow's web UI is not installed (mlflow-skinny, which scoring uses, has none): "
            "pip install 'defectops[ui]'"
        )
    check_port(host, port, "choose another --port")
    config = TrackingConfig.from_settings(app_settings())
    if config.tracking_uri.startswith(("http://", "https://", "databricks")):
        raise InputError(
            "the registry is an MLflow tracking server (MLFLOW_TRACKING_URI): open that server's own UI"
        )
    config.ensure_local_dirs()
    command = [
        str(mlflow),
        "server",
        "--backend-store-uri",
        config.tracking_uri,
        "--registry-store-uri",
        config.registry_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if config.artifact_location:
        command += ["--default-artifact-root", config.artifact_location]
    stderr.print(
        f"MLflow UI on http://{host}:{port}/ over the registry of {config.workspace}", highlight=False
    )
    code = _run_group(command, env=_server_environment(child_environment()))
    if code:
        raise typer.Exit(code)


def _server_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The MLflow server's environment: ``environ`` with MLflow's job execution off unless it is set there.

    Why: with it on (MLflow's default) the server starts huey job runners for GenAI jobs, which a registry
    browser never runs; each imports all of MLflow (seconds of CPU on a small machine), Ctrl-C during that
    printed about 250 lines of KeyboardInterrupt tracebacks from them, and each start left an empty huey
    directory in /dev/shm behind.
    """
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **environ}


def _run_group(command: list[str], *, env: Mapping[str, str] | None = None) -> int:
    """Run ``command`` in its own process group; SIGINT/SIGTERM stop it, and nothing of it outlives it.

    Why its own group: MLflow's server starts uvicorn; a signal to this command alone (``kill PID``, a
    supervisor) killed only the server process, and its uvicorn kept serving the port, orphaned. The first
    signal becomes SIGINT to the server process alone, which stops its uvicorn gracefully and then exits (a
    signal to the whole group reached uvicorn twice, directly and through the server, and the second one
    cut its shutdown short with an ``asyncio.CancelledError`` traceback on every Ctrl-C); a second signal goes
    to the whole group, and whatever is left of the group when the server exits gets SIGTERM. Exit code 0
    when stopped by a signal.
    """
    proc = subprocess.Popen(command, start_new_session=True, env=None if env is None else dict(env))
    stopped: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopped.append(signum)
        with contextlib.suppress(ProcessLookupError):
            if len(stopped) == 1:
                os.kill(proc.pid, signal.SIGINT)
            else:
                os.killpg(proc.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # workers the server left behind
    return 0 if stopped else code
