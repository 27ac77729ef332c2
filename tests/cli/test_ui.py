"""``defectops ui`` serves MLflow's own web UI over the workspace registry (a real server, fetched over HTTP)."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from defectops.cli import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # an integration test of over 15 s: CI's slow run
def test_the_page_is_mlflows_and_its_api_reads_the_workspace_registry(tmp_path: Path) -> None:
    port = _free_port()
    workspace = tmp_path / "ws"
    env = {**os.environ, "DEFECTOPS_WORKSPACE": str(workspace)}
    command = [str(Path(sys.executable).with_name("defectops")), "ui", "--port", str(port)]
    # its own process group: the MLflow server (and the workers it starts) are stopped with it, not orphaned
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 240  # MLflow's server starts slowly on a busy 2-core machine
        page = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert page is not None, proc.stderr.read().decode() if proc.poll() is not None else "no answer"
        assert page.status_code == 200
        assert "<title>MLflow</title>" in page.text
        api = httpx.get(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search",
            params={"max_results": 10},
            timeout=10,
        )
        assert api.status_code == 200
        assert [e["name"] for e in api.json()["experiments"]] == ["Default"]
        assert (workspace / "mlflow" / "mlflow.db").is_file()  # the workspace's own registry database
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def test_without_the_ui_extra_it_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module("defectops.cli.ui")  # the module, not the command it defines
    monkeypatch.setattr(module, "_mlflow_ui_installed", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["-w", str(tmp_path / "ws"), "ui"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.strip()] == [
        "error: MLflow's web UI is not installed (mlflow-skinny, which scoring uses, has none): "
        "pip install 'defectops[ui]'"
    ]
