"""Run heal cycles every N minutes in-process (``defectops scheduler``), and stop cleanly on a signal.

Why APScheduler's BlockingScheduler rather than a sleep loop: it keeps the schedule on the wall clock (a
cycle that takes 3 of 10 minutes does not push the next one 3 minutes later), never runs two cycles at once
(``max_instances=1``) and folds missed runs into one (``coalesce``) when a cycle overruns.

Stopping: SIGTERM (what ``docker stop``, Kubernetes and systemd send) and SIGINT (Ctrl-C) stop the schedule;
a cycle already running is allowed to finish (it may be in the middle of registering a model or moving an
alias), no new one starts, and the previous signal handlers are restored. ``max_cycles`` stops after that
many cycles (for tests and for bounded runs). A failing cycle is reported and the schedule goes on: the next
cycle may well succeed (a registry that was briefly unreachable, say).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from defectops.errors import InputError

logger = logging.getLogger("defectops.scheduler")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The scheduler's clock: the one place the loop reads the time."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class SchedulerSummary:
    """How a scheduler run ended."""

    cycles: int
    failures: int
    stopped_by: str
    #: The exception of the last failed cycle (None when none failed).
    last_error: BaseException | None = None

    @property
    def all_failed(self) -> bool:
        """Every cycle that ran failed (a bounded run that did nothing but fail is a failure to report)."""
        return self.cycles > 0 and self.failures == self.cycles


@dataclass
class _State:
    cycles: int = 0
    failures: int = 0
    stop_requested: str | None = None
    last_error: BaseException | None = None


def run_scheduler(
    cycle: Callable[[datetime], Any],
    *,
    every_minutes: float,
    max_cycles: int | None = None,
    clock: Clock = utc_now,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    handle_signals: bool = True,
) -> SchedulerSummary:
    """Call ``cycle(now)`` at once and then every ``every_minutes``, until a signal or ``max_cycles``.

    Blocks the calling thread. ``on_result`` receives each cycle's return value, ``on_error`` each exception
    a cycle raised (the schedule continues; without ``on_error`` the failure is logged instead, so it is
    reported once, not twice). Signal handlers are installed only when called from the main
    thread (Python allows no other).
    """
    from apscheduler.schedulers.base import SchedulerNotRunningError
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    if not every_minutes > 0:
        raise InputError(f"every_minutes must be positive, got {every_minutes}")
    if max_cycles is not None and max_cycles < 1:
        raise InputError(f"max_cycles must be at least 1, got {max_cycles}")

    scheduler = BlockingScheduler(timezone=UTC)
    running = threading.Lock()
    finished = threading.Event()
    state = _State()

    def stop_watcher() -> None:
        # The signal handler only sets a flag: shutting the scheduler down inside the handler could deadlock
        # on a lock the interrupted main thread holds (it may be in the middle of submitting the next run).
        while not finished.wait(0.05):
            if state.stop_requested is None:
                continue
            try:
                scheduler.shutdown(wait=False)  # never wait: a running cycle finishes on its own
                return
            except SchedulerNotRunningError:  # asked before the scheduler started: try again shortly
                continue

    def job() -> None:
        if state.stop_requested is not None:
            return
        with running:
            if state.stop_requested is not None:
                return
            try:
                result = cycle(clock())
            except Exception as exc:  # a failed cycle is reported; the next one may succeed
                state.failures += 1
                state.last_error = exc
                if on_error is not None:  # the caller reports it (the CLI prints one line per failure)
                    on_error(exc)
                else:
                    logger.error("heal cycle failed: %s: %s", type(exc).__name__, exc)
            else:
                if on_result is not None:
                    on_result(result)
            finally:
                state.cycles += 1
            if max_cycles is not None and state.cycles >= max_cycles and state.stop_requested is None:
                state.stop_requested = "max_cycles"

    def on_signal(number: int, _frame: FrameType | None) -> None:
        if state.stop_requested is None:  # an attribute store: safe wherever the main thread was
            state.stop_requested = signal.Signals(number).name

    previous: dict[signal.Signals, Any] = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
    watcher = threading.Thread(target=stop_watcher, name="defectops-scheduler-stop", daemon=True)
    watcher.start()
    try:
        scheduler.add_job(
            job,
            IntervalTrigger(minutes=every_minutes, timezone=UTC),
            next_run_time=utc_now(),  # when to fire is the scheduler's own (wall-clock) business
            id="heal",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        if state.stop_requested is None:
            scheduler.start()
        with running:  # a cycle still running when the stop came is allowed to finish
            pass
    finally:
        finished.set()
        watcher.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return SchedulerSummary(
        cycles=state.cycles,
        failures=state.failures,
        stopped_by=state.stop_requested or "",
        last_error=state.last_error,
    )
