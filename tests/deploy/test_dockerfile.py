"""The container images: hadolint finds nothing, they install what the lock file pins, and the build context
holds what the Dockerfile copies."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from deploy_tools import DEPLOY, ROOT, find_tool

DOCKERFILES = [DEPLOY / "docker" / "Dockerfile", DEPLOY / "docker" / "mlflow.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    hadolint = find_tool("hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"] if "version" in package}


def test_the_image_installs_the_lock_file_with_dev_py_s_uv_non_root_with_a_readiness_healthcheck() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    uv_version = re.search(r'^UV_VERSION = "([^"]+)"', (ROOT / "dev.py").read_text(), re.M)
    assert uv_version is not None
    assert f"uv=={uv_version.group(1)}" in text
    assert text.count("uv sync --frozen --no-dev") == 2  # dependencies layer, then the project
    assert re.search(r"^FROM .* AS build$", text, re.M)
    assert re.search(r"^FROM .* AS runtime$", text, re.M)
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "/health/ready" in text.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "defectops"]' in text


def test_the_mlflow_image_pins_the_locked_versions() -> None:
    text = (DEPLOY / "docker" / "mlflow.Dockerfile").read_text()
    locked = _locked_versions()
    pins = dict(re.findall(r'"?([a-z0-9_-]+)(?:\[[a-z]+\])?==([0-9][^"\s]*)"?', text))
    assert pins == {"mlflow": locked["mlflow"], "psycopg": locked["psycopg"], "boto3": locked["boto3"]}


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in (DEPLOY / "docker" / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            copied.update(part.rstrip("/") for part in line.split()[1:-1])
    assert copied <= kept, copied - kept
    for path in copied:
        assert (ROOT / path).exists(), path
