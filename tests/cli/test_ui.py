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
from collections.abc import Callable
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
        if page is None:  # the server ended (its error on stderr, a pipe) or never answered
            ended = proc.stderr is not None and proc.poll() is not None
            raise AssertionError(proc.stderr.read().decode() if ended and proc.stderr else "no answer")
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


def test_a_port_in_use_is_one_line_and_exit_2_before_mlflow_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``defectops ui --port P`` with P taken printed "MLflow UI on http://127.0.0.1:P/", then MLflow's and
    uvicorn's lines ending in "[Errno 98] ... address already in use", and exited 0 with nothing listening."""
    module = importlib.import_module("defectops.cli.ui")
    never_run = tmp_path / "no-such-mlflow"  # starting it would fail another way (FileNotFoundError, exit 70)
    monkeypatch.setattr(module, "_mlflow_ui_installed", lambda: never_run)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["-w", str(tmp_path / "ws"), "ui", "--port", str(port)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.strip()] == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another --port"
    ]
    assert not (tmp_path / "ws").exists()  # refused before the registry's folders were made


def _pids_listening_with(port: int) -> list[int]:
    """Processes whose command line names ``--port <port>`` (the MLflow server and its uvicorn)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                args = (entry / "cmdline").read_bytes().split(b"\0")
                if b"--port" in args and str(port).encode() in args and b"mlflow" in b" ".join(args):
                    found.append(int(entry.name))
    return found


@pytest.mark.slow  # starts MLflow's server: over 15 s
def test_stopping_the_command_stops_mlflows_server(tmp_path: Path) -> None:
    """SIGTERM (or SIGINT) to ``defectops ui`` alone, as ``kill PID`` or a supervisor sends it, killed only
    the MLflow server process: its uvicorn kept serving the port and its job runners were orphaned."""
    port = _free_port()
    env = {**os.environ, "DEFECTOPS_WORKSPACE": str(tmp_path / "ws")}
    command = [str(Path(sys.executable).with_name("defectops")), "ui", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)  # to the command only, not to a process group
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _pids_listening_with(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _pids_listening_with(port) == []
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        for pid in _pids_listening_with(port):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow  # starts MLflow's server: over 15 s
def test_ctrl_c_stops_it_quietly_and_leaves_no_job_runner(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) printed about 250 lines of tracebacks: MLflow's huey job
    runners, still importing MLflow, raised KeyboardInterrupt, and uvicorn, signalled twice (by the group and
    by the server), cut its shutdown short with a CancelledError. The job runners are off (a registry browser
    runs no GenAI jobs) and the server alone is asked to stop."""
    port = _free_port()
    env = {**os.environ, "DEFECTOPS_WORKSPACE": str(tmp_path / "ws")}
    env.pop("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", None)
    command = [sys.executable, "-c", "from defectops.cli import main; main()", "ui", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
                break
            except httpx.TransportError:
                time.sleep(0.5)
        servers = _pids_where(lambda fields: int(fields[1]) == proc.pid)
        assert len(servers) == 1  # MLflow's server, in a process group of its own
        group = _pids_where(lambda fields: int(fields[2]) == servers[0])
        runners = [pid for pid in group if b"huey" in _cmdline(pid)]
        time.sleep(2)  # job runners, when started, would now be importing MLflow
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0
        text = err.decode()
        assert "Traceback" not in text, text
        assert "Application shutdown complete" in text
        assert runners == []
        assert _pids_listening_with(port) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    return b""


def _pids_where(test: Callable[[list[str]], bool]) -> list[int]:
    """Processes whose /proc/PID/stat fields after the command name (state, ppid, pgid, ...) pass ``test``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if test(fields):
                    found.append(int(entry.name))
    return found
