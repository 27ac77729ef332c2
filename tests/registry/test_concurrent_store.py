"""MLflow's store and the audit table created by several processes at once on a fresh workspace.

Issue #14: concurrent first runs raced MLflow's Alembic migrations ("duplicate column name: step", "Online
migration expected to match one row"). Real processes, real SQLite files, repeated.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_OPEN_STORES = """
import sys
from pathlib import Path
from defectops.registry.tracking import TrackingConfig, ensure_experiment
from defectops.registry.audit import AuditLog
config = TrackingConfig.resolve(Path(sys.argv[1]))
print(ensure_experiment(config))
AuditLog(config.audit_url).engine
"""


@pytest.mark.slow  # an integration test of over 15 s: CI's slow run
def test_concurrent_first_use_of_one_workspace_creates_every_store_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFECTOPS_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    for round_ in range(3):
        workspace = tmp_path / f"ws{round_}"
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_STORES, str(workspace)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
            for _ in range(4)
        ]
        outcomes = [(p.wait(timeout=600), *p.communicate()) for p in processes]
        failures = [err.decode()[-400:] for code, _out, err in outcomes if code != 0]
        assert not failures, failures
        # One experiment, the same for everyone.
        assert len({out.strip() for _code, out, _err in outcomes}) == 1
