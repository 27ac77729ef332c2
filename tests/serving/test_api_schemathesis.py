"""Schemathesis against a real ``defectops serve`` on 127.0.0.1 (issue #14): every check on a bounded budget,
0 server errors and 0 schema violations.

The service runs with the admin token, which schemathesis sends on every request, so the admin operations
(reload, promote, rollback, traffic) are fuzzed too, on a model name of this test alone. Each operation gets at
most :data:`MAX_EXAMPLES` generated cases, with a fixed seed (a failure is reproducible with the printed
command), no shrinking, and one worker (the CI machine is small).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import ADMIN_TOKEN, Deployed
from serving.test_api_server import Server, server_env, start_server  # noqa: F401 - the fixtures

MAX_EXAMPLES = 25
SEED = 14


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    deployed: Deployed, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: Server = request.getfixturevalue("start_server")("--model-name", deployed.name)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        server.wait_ready(client, workers=1)
    report = tmp_path / "schemathesis.json"
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{server.url}/openapi.json",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--no-shrink",
        "--workers", "1", "--request-timeout", "30", "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
        "--report", "json", "--report-json-path", str(report), "--output-truncate", "false",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    server_lines = "\n".join(line for line in server.lines if "Traceback" in line or "ERROR" in line)
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:] + server_lines
    assert "Traceback" not in "\n".join(server.lines)
    document = json.loads(report.read_text())
    assert document["complete"] is True
    assert document["operations"]["tested"] == document["operations"]["total"]
    assert document["test_cases"]["with_failures"] == 0
    assert document["failures"] == []
    assert document["errors"] == []
    print(f"schemathesis: {document['test_cases']['generated']} cases, 0 failures")
