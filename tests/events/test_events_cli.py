"""``defectops events serve|work`` refuse unsafe or unusable settings with one line, before listening."""

from __future__ import annotations

from pathlib import Path

import pytest

from defectops.cli import main
from redis_server import free_port


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def test_outside_local_mode_the_receiver_needs_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEFECTOPS_MODE", "production")
    monkeypatch.delenv("DEFECTOPS_EVENTS_SECRET", raising=False)
    code, err = _run(["--workspace", str(tmp_path), "events", "serve"], capsys)
    assert code == 2
    assert "needs a webhook secret" in err


def test_an_unreachable_stream_is_one_line_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DEFECTOPS_MODE", raising=False)
    monkeypatch.setenv("DEFECTOPS_EVENTS_REDIS_URL", f"redis://:hunter2-password@127.0.0.1:{free_port()}/0")
    code, err = _run(["--workspace", str(tmp_path), "events", "serve"], capsys)
    assert code == 11
    assert "event stream redis://***@127.0.0.1" in err
    assert "hunter2" not in err


def test_an_unreachable_kafka_broker_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("kafka", reason="the kafka extra is not installed")
    monkeypatch.delenv("DEFECTOPS_MODE", raising=False)
    monkeypatch.setenv("DEFECTOPS_EVENTS_BACKEND", "kafka")
    monkeypatch.setenv("DEFECTOPS_EVENTS_KAFKA_SERVERS", f"127.0.0.1:{free_port()}")
    code, err = _run(["--workspace", str(tmp_path), "events", "serve", "--port", "0"], capsys)
    assert code == 11
    assert "event stream kafka://127.0.0.1:" in err
    assert "Traceback" not in err


def test_a_worker_started_before_its_kafka_broker_waits_for_it_up_to_the_retry_limit(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    models: tuple[Path, Path],
) -> None:
    """The Kafka stream is prepared (ledger tables, topics) through the same waiting as Redis's consumer
    group: one line per try, then the bound's one line and exit 11 (it exited at once)."""
    pytest.importorskip("kafka", reason="the kafka extra is not installed")
    servers = f"127.0.0.1:{free_port()}"
    monkeypatch.delenv("DEFECTOPS_MODE", raising=False)
    monkeypatch.setenv("DEFECTOPS_EVENTS_BACKEND", "kafka")
    monkeypatch.setenv("DEFECTOPS_EVENTS_KAFKA_SERVERS", servers)
    monkeypatch.setenv("DEFECTOPS_EVENTS_MODEL_DIR", str(models[0]))
    monkeypatch.setenv("DEFECTOPS_EVENTS_STREAM_RETRY_SECONDS", "1")
    code, err = _run(["--workspace", str(tmp_path), "events", "work"], capsys)
    assert code == 11
    waits = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert waits[0].startswith(f"Kafka at {servers} unreachable: connect failed: KafkaTimeoutError: "), waits
    assert waits[0].endswith("; retrying in 1s")
    assert err.strip().splitlines()[-1].startswith(f"error: Kafka at {servers} unreachable for "), err
    assert "giving up (DEFECTOPS_EVENTS_STREAM_RETRY_SECONDS=1): connect failed: KafkaTimeoutError: " in err
    assert "Traceback" not in err


def test_a_port_in_use_is_one_line_before_the_stream_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``events serve`` on a taken port printed "receiving webhooks on http://127.0.0.1:P/webhook", then
    uvicorn's "ERROR: [Errno 98] ... address already in use", exit 3. The stream here is unreachable too: the
    port is refused first, so that is the only line (an opened stream would be exit 11)."""
    import socket

    monkeypatch.delenv("DEFECTOPS_MODE", raising=False)
    monkeypatch.setenv("DEFECTOPS_EVENTS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _run(["--workspace", str(tmp_path), "events", "serve", "--port", str(port)], capsys)
    assert code == 2
    assert err.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another --port or DEFECTOPS_EVENTS_PORT (0: any free port)"
    )


def test_a_ledger_that_cannot_be_opened_is_one_line_per_try(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    models: tuple[Path, Path],
) -> None:
    """The ledger's tables are created at start-up, through the same wait; SQLAlchemy's errors carry a second
    line ("(Background on this error at: ...)"), which made each try two log lines."""
    pytest.importorskip("kafka", reason="the kafka extra is not installed")
    monkeypatch.delenv("DEFECTOPS_MODE", raising=False)
    monkeypatch.setenv("DEFECTOPS_EVENTS_BACKEND", "kafka")
    monkeypatch.setenv("DEFECTOPS_EVENTS_KAFKA_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("DEFECTOPS_EVENTS_KAFKA_STATE_URL", f"sqlite:///{tmp_path.as_posix()}")  # a folder
    monkeypatch.setenv("DEFECTOPS_EVENTS_MODEL_DIR", str(models[0]))
    monkeypatch.setenv("DEFECTOPS_EVENTS_STREAM_RETRY_SECONDS", "1")
    code, err = _run(["--workspace", str(tmp_path / "ws"), "events", "work"], capsys)
    assert code == 11
    waits = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert waits[0].startswith(f"the Kafka ledger at sqlite:///{tmp_path.as_posix()} unreachable: "), waits
    assert all("\n" not in m for m in waits), waits
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [err.strip().splitlines()[-1]], err
    assert "giving up (DEFECTOPS_EVENTS_STREAM_RETRY_SECONDS=1): create the tables of the Kafka ledger" in err
