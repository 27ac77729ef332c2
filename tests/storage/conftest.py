"""Fixtures for the artifact-store tests: one suite, run on a local folder and on a real S3 HTTP server.

The S3 server is moto in server mode in a child process on 127.0.0.1 (a real HTTP endpoint; nothing in this
process is patched), started once per session on a free port (:mod:`s3_server`).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from defectops.storage.artifacts import ArtifactStore
from s3_server import BUCKET, s3_bucket, s3_credentials, s3_endpoint, s3_options

__all__ = ["s3_bucket", "s3_credentials", "s3_endpoint", "s3_options"]  # fixtures, re-exported


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    """An empty artifact store, once on a local folder and once under a fresh prefix of the S3 bucket."""
    if request.param == "local":
        return ArtifactStore.from_url(tmp_path / "artifacts")
    options: dict[str, Any] = request.getfixturevalue("s3_options")
    return ArtifactStore.from_url(f"s3://{BUCKET}/runs/{uuid.uuid4().hex}", storage_options=options)
