"""Credentials in URLs never reach the terminal or a log, and an unreachable MLflow server fails in bounded time
(issue #14: the password of MLFLOW_TRACKING_URI was printed in clear, after 274 s of retries)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from defectops.console import redact_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:SECRET@host:5000/api", "http://user:***@host:5000/api"),
        ("postgresql+psycopg://defectops:pw@127.0.0.1/db", "postgresql+psycopg://defectops:***@127.0.0.1/db"),
        ("https://TOKEN@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("see s3://bucket/key?X-Amz-Signature=abc&x=1", "see s3://bucket/key?X-Amz-Signature=***&x=1"),
        ("GET /v1/models?token=abc HTTP/1.1", "GET /v1/models?token=*** HTTP/1.1"),
        ("no url here: a@b", "no url here: a@b"),
        ("sqlite:////tmp/ws/mlflow.db", "sqlite:////tmp/ws/mlflow.db"),
    ],
)
def test_redact_url_masks_credentials_only(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_models_list_against_an_unreachable_server_is_one_redacted_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFECTOPS_", "MLFLOW_"))}
    env |= {
        "MLFLOW_TRACKING_URI": f"http://operator:S3CRET-PASSWORD@127.0.0.1:{_closed_port()}",
        "DEFECTOPS_WORKSPACE": str(tmp_path / "ws"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", "from defectops.cli import main; main()", "models", "list"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "S3CRET-PASSWORD" not in done.stderr + done.stdout
    assert "operator:***@127.0.0.1" in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr


def test_a_model_read_from_an_unreachable_server_is_not_called_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``defectops predict --model-name M`` (and monitor, heal) against a stopped MLflow server said "unknown
    model 'M': API request ... Connection refused": the model may well exist; the server is what is missing."""
    from cli_main import run_main

    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    code, _out, err = run_main(
        ["-w", str(tmp_path / "ws"), "monitor", "--model-name", "jit", "--since", "1d"], capsys
    )
    assert code == 6  # ModelError: no usable model (an unknown one would be 7)
    # The server did not answer: a RegistryUnavailableError (still exit 6), one short line.
    assert err.startswith(f"error: cannot read model 'jit' from the registry: {url} did not answer ("), err
    assert "unknown model" not in err
    assert len(err.strip().splitlines()) == 1
