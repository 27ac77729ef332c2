"""A local S3-compatible server for tests: moto in server mode in a child process on 127.0.0.1.

A real HTTP endpoint (nothing in the test process is patched), started once per session on a free port, with
the test bucket created. Test modules and conftests import the fixtures from here.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

BUCKET = "defectops-test"
CREDENTIALS = {"key": "testing", "secret": "testing"}

_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the test session closes our stdin
server.stop()
"""


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server in a child process, with the test bucket created."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            pytest.fail(f"moto server did not start (printed {port!r})")
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=CREDENTIALS["key"],
            aws_secret_access_key=CREDENTIALS["secret"],
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def s3_options(s3_endpoint: str) -> dict[str, Any]:
    """s3fs storage options for the test server."""
    return {**CREDENTIALS, "endpoint_url": s3_endpoint, "client_kwargs": {"region_name": "us-east-1"}}


@pytest.fixture
def s3_bucket() -> str:
    return BUCKET


@pytest.fixture
def s3_credentials() -> dict[str, str]:
    return dict(CREDENTIALS)
