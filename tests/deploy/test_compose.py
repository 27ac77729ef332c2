"""The compose stack, checked by docker compose v2 itself (``docker compose config``: the compose
specification's schema, interpolation and the references between services; no engine needed)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from deploy_tools import DEPLOY, find_compose

COMPOSE_DIR = DEPLOY / "compose"
ONE_SHOT = {"s3-bucket"}


def _required_variables() -> list[str]:
    lines = (COMPOSE_DIR / ".env.example").read_text().splitlines()
    return [line.split("=", 1)[0] for line in lines if re.fullmatch(r"[A-Z0-9_]+=", line)]


def _env_file(tmp_path: Path, skip: str | None = None) -> Path:
    path = tmp_path / "test.env"
    values = [f"{name}=test-{name.lower().replace('_', '-')}-0123456789" for name in _required_variables()]
    values = [
        f"{name}={tmp_path}" if name == "DEFECTOPS_REPO_PATH" else value
        for name, value in zip(_required_variables(), values, strict=True)
    ]
    values = [v for v in values if skip is None or not v.startswith(f"{skip}=")]
    path.write_text("\n".join(values) + "\n")
    return path


def _config(tmp_path: Path, *extra: str, skip: str | None = None) -> subprocess.CompletedProcess[str]:
    compose = find_compose()
    return subprocess.run(
        [
            compose,
            "--env-file",
            str(_env_file(tmp_path, skip)),
            "-f",
            str(COMPOSE_DIR / "compose.yaml"),
            "config",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=COMPOSE_DIR,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )


def test_docker_compose_accepts_the_stack(tmp_path: Path) -> None:
    result = _config(tmp_path, "--quiet")
    assert result.returncode == 0, result.stderr


def test_every_service_has_a_healthcheck_and_waits_on_conditions(tmp_path: Path) -> None:
    result = _config(tmp_path, "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == {"postgres", "s3", "s3-bucket", "mlflow", "api", "heal", "prometheus", "grafana"}
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] in {
                "service_healthy",
                "service_completed_successfully",
                "service_started",
            }, (name, dependency)
    assert services["mlflow"]["depends_on"]["s3-bucket"]["condition"] == "service_completed_successfully"
    assert services["api"]["command"] == ["serve", "--workers", "2", "--wait-for-model"]
    assert services["heal"]["command"][0] == "scheduler"
    assert "/health/ready" in " ".join(services["api"]["healthcheck"]["test"])


@pytest.mark.parametrize("secret", _required_variables())
def test_no_secret_has_a_default(tmp_path: Path, secret: str) -> None:
    result = _config(tmp_path, "--quiet", skip=secret)
    assert result.returncode != 0
    assert secret in result.stderr
