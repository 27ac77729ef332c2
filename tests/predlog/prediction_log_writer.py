"""A process that writes predictions like the service does, for the durability tests (not a test module).

    python prediction_log_writer.py URL BATCH_SIZE

Writes batches forever; after ``record()`` returned for a batch it prints ``ACK <batch> <id> <id> ...``
(flushed): that line is the "answer" a client would have received. On SIGTERM it finishes the batch in hand,
closes the log (graceful stop) and prints ``CLOSED``. The parent kills or stops it and checks the database.
"""

from __future__ import annotations

import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from types import FrameType

from defectops.predlog import PredictionLog, PredictionRecord

_stop = False


def _request_stop(_signum: int, _frame: FrameType | None) -> None:
    global _stop
    _stop = True


def main(url: str, batch_size: int) -> None:
    signal.signal(signal.SIGTERM, _request_stop)
    log = PredictionLog.from_url(url)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    batch_no = 0
    print("READY", flush=True)
    while not _stop:
        batch = [
            PredictionRecord(
                prediction_id=str(uuid.uuid4()),
                created_at=start + timedelta(seconds=batch_no),
                model_name="jit",
                model_version="1",
                served=True,
                inputs={"batch": batch_no, "position": position, "la": 10.5},
                score=0.25,
                threshold=0.5,
                risk_label=0,
                risk_band="low",
            )
            for position in range(batch_size)
        ]
        log.record(batch)
        sys.stdout.write(f"ACK {batch_no} " + " ".join(item.prediction_id for item in batch) + "\n")
        sys.stdout.flush()
        batch_no += 1
    log.close()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
