"""Durable storage outside the SQL stores: the artifact store (local folder or S3) in ``artifacts``."""

from defectops.storage.artifacts import ArtifactStore

__all__ = [
    "ArtifactStore",
]
