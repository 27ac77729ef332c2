"""The at-scale configuration as real processes on loopback: an S3 server, an MLflow tracking server on
PostgreSQL with its artifacts in S3, and ``defectops serve`` with several workers and a PostgreSQL log.

Used by ``test_at_scale.py`` (and by hand, to measure): each piece is a child process that is stopped when its
context ends. Nothing is patched: the defectops commands run as the installed ``defectops`` executable and
talk to the servers over HTTP and the PostgreSQL protocol.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent
DEFECTOPS = str(BIN / "defectops")
MLFLOW = str(BIN / "mlflow")
S3_KEY = "deploy-test"
S3_SECRET = "deploy-test-secret"
REGION = "us-east-1"

_MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes] | None, timeout: float, *, ok: int = 200) -> None:
    """Poll ``url`` until it answers ``ok`` (fail early when ``process`` died)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode} before answering")
        try:
            answer = httpx.get(url, timeout=5)
            if answer.status_code == ok:
                return
            last = f"{answer.status_code} {answer.text[:200]}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer {ok} within {timeout:.0f} s ({last})")


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``timeout``."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def s3_server(bucket: str) -> Iterator[str]:
    """moto's S3 server on a free loopback port with ``bucket`` created; yields its endpoint URL."""
    import boto3

    process = subprocess.Popen(
        [sys.executable, "-c", _MOTO],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"the S3 server did not start (printed {port!r})")
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=REGION,
        ).create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def pg_schemas(server_url: str, *names: str) -> Iterator[dict[str, str]]:
    """Fresh schemas in the database of ``server_url`` (dropped afterwards): name -> URL whose connections
    use that schema."""
    base = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(base)
    tag = uuid.uuid4().hex[:10]
    schemas = {name: f"d_{name}_{tag}" for name in names}
    try:
        with admin.begin() as connection:
            for schema in schemas.values():
                connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield {
            name: base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False
            )
            for name, schema in schemas.items()
        }
    finally:
        with admin.begin() as connection:
            for schema in schemas.values():
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def s3_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": REGION,
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
    }


@contextmanager
def mlflow_server(
    backend_url: str,
    artifacts: str,
    s3_endpoint: str,
    logs: Path,
    *,
    workers: int = 1,
    port: int | None = None,
) -> Iterator[str]:
    """``mlflow server`` on ``backend_url`` (PostgreSQL, or SQLite), proxying artifacts to ``artifacts``
    (``s3://...``), on ``port`` (default: a free one); yields its URL."""
    port = port or free_port()
    env = {
        **os.environ,
        **s3_environment(s3_endpoint),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    with (logs / "mlflow-server.log").open("wb") as log:
        process = subprocess.Popen(
            [
                MLFLOW,
                "server",
                "--backend-store-uri",
                backend_url,
                "--artifacts-destination",
                artifacts,
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", process, timeout=180)
        yield url
    finally:
        stop(process)


@dataclass(frozen=True)
class Service:
    url: str
    token: str
    process: subprocess.Popen[bytes]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def defectops_serve(
    env: Mapping[str, str], log_url: str, model_name: str, logs: Path, *, workers: int = 2
) -> Iterator[Service]:
    """``defectops serve --workers N`` in production mode with a random admin token and the given log."""
    port = free_port()
    token = secrets.token_hex(24)
    serve_env = {
        **env,
        "DEFECTOPS_MODE": "production",
        "DEFECTOPS_SERVE_ADMIN_TOKEN": token,
    }
    with (logs / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [
                DEFECTOPS,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--model-name",
                model_name,
                "--log-url",
                log_url,
            ],
            env=serve_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health/ready", process, timeout=240)
        yield Service(url=url, token=token, process=process)
    finally:
        stop(process)


def run_cli(
    args: list[str], env: Mapping[str, str], *, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """A ``defectops`` command as a child process; raises with its output when it fails."""
    result = subprocess.run(
        [DEFECTOPS, *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"defectops {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result
