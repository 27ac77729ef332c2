"""Running the app under uvicorn, with the settings that matter for latency.

* TCP_NODELAY on every connection. asyncio sets it itself only for sockets it recognises as TCP; the sockets
  uvicorn hands to ``--workers N`` child processes are not recognised, so without this every keep-alive
  response waits for Nagle's algorithm and the client's delayed ACK (about 40 ms; uvicorn issue #3149).
* No access log by default (a log line per request costs more than scoring one); the metrics count requests.
* Objects alive after startup are frozen out of the garbage collector (see ``create_app(freeze_gc=True)``).
* A 1 ms GIL switch interval (Python's default is 5 ms): the log writer thread, woken by the end of an fsync,
  would otherwise wait up to 5 ms for the GIL while the event loop is busy, and every request of its group
  with it.
* Several workers: the app is built in each worker by :func:`defectops.serving.app.app_from_env` from the
  environment, which :func:`run` fills from the checked settings, and Prometheus runs in multiprocess mode
  with a fresh directory in the workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from defectops.config import ServeSettings, Settings, Workspace
from defectops.serving.app import SWITCH_INTERVAL, create_app
from defectops.serving.metrics import MULTIPROC_ENV

#: Seconds a graceful stop waits for requests in flight before cancelling them (their rows still commit).
GRACEFUL_SECONDS = 30
#: How long a new worker may take to answer uvicorn's first health ping. uvicorn's default (5 s) kills
#: workers that import MLflow, scikit-learn and LightGBM on a loaded 2-core machine before they are up.
WORKER_HEALTHCHECK_SECONDS = 60


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (HTTP parsing in C: a 1,000-record request is parsed several times faster
    than by the pure-Python h11) with TCP_NODELAY set on the connection's socket."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # not a TCP socket after all; nothing to tune
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def settings_environment(serve: ServeSettings) -> dict[str, str]:
    """``DEFECTOPS_SERVE_*`` variables that rebuild exactly ``serve`` in a worker process."""
    import json

    env: dict[str, str] = {}
    for name, value in serve.model_dump().items():
        if value is None or name == "metrics_dir":  # exported under prometheus_client's own name
            continue
        key = f"DEFECTOPS_SERVE_{name.upper()}"
        if isinstance(value, SecretStr):  # the role tokens: model_dump keeps them masked
            env[key] = value.get_secret_value()
        elif name == "repositories":
            env[key] = json.dumps({k: str(v) for k, v in value.items()})
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        else:
            env[key] = str(value)
    return env


class StripQueryFilter(logging.Filter):
    """Cuts the query string off the path of every access-log line: a token pasted into a URL (refused with
    400 by the service) must not end up in clear in the logs either."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?<query removed>", *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`StripQueryFilter` on the access log (every worker)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["strip_query"] = {"()": f"{__name__}.StripQueryFilter"}
    config["handlers"]["access"]["filters"] = ["strip_query"]
    return config


def run(settings: Settings, serve: ServeSettings) -> None:
    """Serve until SIGINT/SIGTERM, then stop gracefully (requests in flight finish, the log is drained)."""
    serve.check(settings)
    sys.setswitchinterval(SWITCH_INTERVAL)
    common = {
        "host": serve.host,
        "port": serve.port,
        "http": NoDelayHttpToolsProtocol,
        "access_log": serve.access_log,
        "log_config": log_config(),
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
        "lifespan": "on",
        "server_header": False,
    }
    if serve.workers == 1:
        app = create_app(settings, serve, freeze_gc=True)
        uvicorn.Server(uvicorn.Config(app, **common)).run()  # type: ignore[arg-type]
        return
    # The worker processes uvicorn starts build their app from the environment (app_from_env), so the
    # settings of this invocation are exported for them: the one place defectops writes its own variables.
    os.environ.update(settings_environment(serve))
    os.environ["DEFECTOPS_WORKSPACE"] = str(settings.resolved_workspace())
    metrics_dir = _fresh_metrics_dir(Workspace.from_settings(settings).root)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)  # prometheus_client's variable; every worker writes there
    try:
        uvicorn.run(
            "defectops.serving.app:app_from_env",
            factory=True,
            workers=serve.workers,
            **common,  # type: ignore[arg-type]
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _fresh_metrics_dir(workspace_root: Path) -> Path:
    # Named by host and process: containers that share one workspace volume (Kubernetes pods on a
    # ReadWriteMany claim, docs/deploy.md) usually run serve under the same PID, and must neither clear nor
    # share each other's metric files.
    host = "".join(c if c.isalnum() or c in "-_." else "_" for c in socket.gethostname()) or "host"
    path = workspace_root / "serving" / f"prometheus-{host}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
