"""Group commit: one writer thread turns the predictions of many concurrent requests into one transaction.

Why: the durability guarantee makes every answer wait for its commit, and a commit costs an fsync (several
milliseconds on ordinary disks). One transaction per request would cap the service at one fsync per request
and queue requests behind each other. Here requests hand their batch to a queue and wait; the writer takes
everything waiting (up to ``max_rows``), writes it with one :meth:`PredictionLog.record` call, and only then
wakes each request. Under load batches grow by themselves, so throughput is bounded by the CPU, not the disk,
while a lone request still costs one commit.

Each request is acknowledged only after the transaction holding its rows committed; if a group fails, every
request of it is retried alone so that one bad batch cannot fail the others, and a request whose own batch
fails gets the error (nothing of it was acknowledged). :meth:`close` drains the queue before returning, so a
graceful stop commits everything handed over (requests still waiting then get their answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

from defectops.errors import DefectOpsError
from defectops.predlog import PredictionLog, PredictionLogError, PredictionRecord

logger = logging.getLogger("defectops.serving")

_STOP: Final = object()


@dataclass(eq=False)
class _Pending:
    batch: Sequence[PredictionRecord]
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


CommitObserver = Callable[[int, float], None]


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the request was cancelled meanwhile (client gone); its rows are logged anyway
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class LogWriter:
    """The group-commit writer of one process (thread-safe; one instance per :class:`PredictionLog`)."""

    def __init__(
        self, log: PredictionLog, *, max_rows: int = 5000, observe: CommitObserver | None = None
    ) -> None:
        self.log = log
        self.max_rows = max_rows
        self._observe = observe
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> LogWriter:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="defectops-log-writer", daemon=True)
                self._thread.start()
        return self

    def submit(self, batch: Sequence[PredictionRecord]) -> asyncio.Future[None]:
        """Queue ``batch`` now; the future resolves once it is committed (or fails: nothing acknowledged).

        Lets a request do other work (render its answer) while its rows are being committed; it must still
        await the future before answering.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not batch:
            future.set_result(None)
            return future
        with self._lock:
            if self._closed or self._thread is None:
                raise PredictionLogError("the prediction log writer is not running (the service is stopping)")
            self._queue.put(_Pending(batch, future, loop))
        return future

    async def write(self, batch: Sequence[PredictionRecord]) -> None:
        """Return once every record of ``batch`` is committed; raise (nothing acknowledged) otherwise."""
        await self.submit(batch)

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting, commit everything already queued, and wait for the thread to finish."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(_STOP)
        if thread is not None:
            thread.join(timeout)

    # -- the thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            group = [cast(_Pending, item)]
            rows = len(group[0].batch)
            while rows < self.max_rows:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                group.append(cast(_Pending, more))
                rows += len(group[-1].batch)
            self._commit(group)

    def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        batch = [record for pending in group for record in pending.batch]
        try:
            self.log.record(batch)
        except BaseException as error:
            if len(group) > 1 and isinstance(error, DefectOpsError):
                for pending in group:  # isolate the failing request(s); the others still get committed
                    self._commit([pending])
                return
            if not isinstance(error, DefectOpsError):
                logger.exception("prediction log write failed")
            for pending in group:
                _wake(pending, error)
            return
        if self._observe is not None:
            self._observe(len(batch), time.perf_counter() - started)
        for pending in group:
            _wake(pending, None)


def _wake(pending: _Pending, error: BaseException | None) -> None:
    # RuntimeError: the request's event loop is gone (it was shut down); nobody waits any more.
    with contextlib.suppress(RuntimeError):
        pending.loop.call_soon_threadsafe(_settle, pending.future, error)
