"""``defectops events serve`` (the webhook receiver) and ``defectops events work`` (a scoring worker).

Settings come from ``DEFECTOPS_EVENTS_*`` (see docs/events.md); the options here override the common ones.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from defectops.cli._support import app_settings, check_port, quiet_mlflow
from defectops.console import stderr


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def events_serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on.", show_default="127.0.0.1")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="TCP port.", show_default="8100")
    ] = None,
) -> None:
    """Receive GitHub push and pull_request webhooks at POST /webhook and enqueue them for the workers.

    Also GET /healthz and GET /metrics (deliveries, refusals, stream length, pending events, dead letters).
    """
    import uvicorn

    from defectops.events import create_receiver, open_stream

    settings = app_settings()
    given = {"host": host, "port": port}
    events = settings.events.model_copy(update={k: v for k, v in given.items() if v is not None})
    secret = events.check(settings)
    # Before the stream opens and the start-up line claims the address: uvicorn found a taken port only
    # after that line, with its own "ERROR: [Errno 98]" line (exit 3).
    check_port(events.host, events.port, "choose another --port or DEFECTOPS_EVENTS_PORT (0: any free port)")
    stream = open_stream(events, workspace=settings.resolved_workspace())
    _logging()
    stderr.print(
        f"defectops events: receiving webhooks on http://{events.host}:{events.port}/webhook "
        f"({events.backend} stream {events.stream!r}; {len(events.repositories)} repositories)",
        highlight=False,
    )
    try:
        uvicorn.run(
            create_receiver(events, secret, stream),
            host=events.host,
            port=events.port,
            log_level="warning",
            access_log=False,
        )
    finally:
        stream.close()


def events_work(
    consumer: Annotated[
        str | None, typer.Option("--consumer", help="This worker's name in the consumer group.")
    ] = None,
    max_events: Annotated[
        int | None, typer.Option("--max-events", min=1, help="Stop after this many events.")
    ] = None,
    drain: Annotated[bool, typer.Option("--drain", help="Stop when no event is waiting.")] = False,
) -> None:
    """Score the events of the stream: fetch, score (champion, challenger in shadow), log, report to GitHub.

    Stop with Ctrl-C or SIGTERM: the event in hand is finished and acknowledged first.
    """
    from defectops.events import GitHubClient, Worker, open_stream

    settings = app_settings()
    quiet_mlflow()
    settings.events.check(settings)
    _logging()
    # Not prepared here: the worker waits for a stream that is not up yet (Worker.run), where this failed.
    stream = open_stream(settings.events, workspace=settings.resolved_workspace(), prepare=False)
    token = settings.github.token.get_secret_value() if settings.github.token is not None else None
    github = GitHubClient(settings.github.api_url, token)
    worker = Worker(settings, stream, github, consumer=consumer)
    worker.install_signal_handlers()
    worker.models()  # a missing model stops here, with one line, before any event is taken

    def ready() -> None:
        stderr.print(f"defectops events: worker {worker.consumer} is waiting for events", highlight=False)

    try:
        stats = worker.run(max_events=max_events, idle_exit=drain, on_ready=ready)
    finally:
        github.close()
        stream.close()
        worker.predictions.close()
    stderr.print(
        f"defectops events: worker {worker.consumer} stopped: {stats.processed} processed, {stats.failed} "
        f"failed attempts, {stats.dead_lettered} dead-lettered",
        highlight=False,
    )
