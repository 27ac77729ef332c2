"""The durability guarantee, tested with a real writer process: nothing acknowledged is lost.

A child process writes batches and prints each batch's ids only after ``record()`` returned (its answer). The
test then kills it with SIGKILL (no chance to clean up) or stops it with SIGTERM (graceful), and checks in a
fresh connection that every acknowledged id is in the log and that no batch is half-written.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

from defectops.predlog import PredictionLog

WRITER = Path(__file__).with_name("prediction_log_writer.py")
BATCH_SIZE = 7
ACKS_BEFORE_STOP = 25


def _start_writer(url: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(WRITER), url, str(BATCH_SIZE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    if first != "READY\n":
        process.kill()
        _, err = process.communicate(timeout=60)
        pytest.fail(f"writer did not start: {first!r} {err}")
    return process


def _read_acks(stream: IO[str], acked: dict[int, list[str]], limit: int | None) -> list[str]:
    """Collect complete ACK lines (a line cut off by the kill was never an answer); return other lines."""
    other: list[str] = []
    for line in stream:
        if not line.endswith("\n"):
            break
        if line.startswith("ACK "):
            _, batch, *ids = line.split()
            acked[int(batch)] = ids
            if limit is not None and len(acked) >= limit:
                break
        else:
            other.append(line.strip())
    return other


def _logged_batches(url: str) -> tuple[set[str], Counter[int]]:
    with PredictionLog.from_url(url) as log:
        frame = log.window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    return set(frame["prediction_id"]), Counter(int(batch) for batch in frame["batch"]) if len(
        frame
    ) else Counter()


def test_sigkill_loses_no_acknowledged_prediction(log_url: str) -> None:
    process = _start_writer(log_url)
    assert process.stdout is not None
    acked: dict[int, list[str]] = {}
    try:
        _read_acks(process.stdout, acked, limit=ACKS_BEFORE_STOP)
        process.send_signal(signal.SIGKILL)  # while it is writing the next batch
        _read_acks(process.stdout, acked, limit=None)  # answers already on their way count too
    finally:
        process.kill()
        process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert len(acked) >= ACKS_BEFORE_STOP

    logged, per_batch = _logged_batches(log_url)

    missing = {i for ids in acked.values() for i in ids} - logged
    assert missing == set()
    # Batches are atomic: each logged batch is whole. At most one batch may be logged without having been
    # acknowledged (committed, killed before it printed) and it can only be the one after the last ack.
    assert all(count == BATCH_SIZE for count in per_batch.values())
    assert set(per_batch) - set(acked) <= {max(acked) + 1}


def test_graceful_stop_loses_nothing_and_closes_cleanly(log_url: str, tmp_path: Path) -> None:
    process = _start_writer(log_url)
    assert process.stdout is not None
    acked: dict[int, list[str]] = {}
    try:
        _read_acks(process.stdout, acked, limit=ACKS_BEFORE_STOP)
        process.send_signal(signal.SIGTERM)
        rest = _read_acks(process.stdout, acked, limit=None)
        process.wait(timeout=60)
    finally:
        process.kill()
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert rest == ["CLOSED"]
    if log_url.startswith("sqlite"):
        assert not (tmp_path / "predictions.db-wal").exists()  # close() checkpointed the WAL

    logged, per_batch = _logged_batches(log_url)

    # On a graceful stop the batch in hand is finished and acknowledged: the log holds exactly the acked ids.
    assert logged == {i for ids in acked.values() for i in ids}
    assert set(per_batch) == set(acked)
