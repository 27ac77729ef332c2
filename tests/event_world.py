"""Shared pieces of the event tests and benchmarks: the secret, token and repository name, the environment of a
receiver or worker, and signed webhook deliveries."""

from __future__ import annotations

import json
from pathlib import Path

from defectops.events import sign
from github_api import GitHubServer
from gitrepo import RepoBuilder

SECRET = "a-test-webhook-secret-of-some-length"
TOKEN = "ghs_test_token_0123456789"
REPO = "acme/widgets"


def environment(
    tmp_path: Path,
    redis_url: str,
    github: GitHubServer,
    upstream: RepoBuilder,
    models: tuple[Path, Path],
    **extra: str,
) -> dict[str, str]:
    """The DEFECTOPS_* variables of a receiver or worker of these tests."""
    return {
        "DEFECTOPS_WORKSPACE": str(tmp_path / "ws"),
        "DEFECTOPS_EVENTS_SECRET": SECRET,
        "DEFECTOPS_EVENTS_REDIS_URL": redis_url,
        "DEFECTOPS_EVENTS_REPOSITORIES": json.dumps({REPO: str(upstream.path)}),
        "DEFECTOPS_EVENTS_MODEL_DIR": str(models[0]),
        "DEFECTOPS_EVENTS_CHALLENGER_DIR": str(models[1]),
        "DEFECTOPS_EVENTS_BLOCK_MS": "100",
        "DEFECTOPS_GITHUB_API_URL": github.url,
        "DEFECTOPS_GITHUB_TOKEN": TOKEN,
        **extra,
    }


def push_payload(
    upstream: RepoBuilder, shas: list[str], *, before: str, ref: str = "refs/heads/main", forced: bool = False
) -> dict[str, object]:
    return {
        "ref": ref,
        "before": before,
        "after": shas[-1],
        "forced": forced,
        "deleted": False,
        "repository": {"full_name": "Acme/Widgets"},
        "commits": [{"id": sha, "distinct": True} for sha in shas],
    }


def signed(
    payload: object, *, event: str = "push", delivery: str = "d-1", secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
    }
