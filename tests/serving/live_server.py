"""The real app served by uvicorn on 127.0.0.1 in a thread: what a browser (or a benchmark) talks to."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def served_app(settings: Any, serve: Any, registry: Any, clock: Any = None) -> Iterator[str]:
    """The real app served by uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL and
    stops the server (lifespan shutdown: log writer drained, log closed) afterwards."""
    import uvicorn

    from defectops.serving.app import create_app

    app = create_app(settings, serve, registry=registry, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
