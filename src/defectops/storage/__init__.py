"""Durable storage outside the SQL stores: the artifact store (local folder or S3).

- :mod:`defectops.storage.artifacts`: :class:`ArtifactStore`, the pipeline's layout (history, metrics,
  prediction files, miner state), key checks and error mapping;
- :mod:`defectops.storage.backends`: where the bytes go (a local folder with fsync + rename, or S3 with one
  PUT per object and ETag-conditional appends).

Its errors (``ArtifactStoreError``, ``ArtifactConflictError``, ``StateSnapshotError``) are in
:mod:`defectops.errors`.
"""

from defectops.storage.artifacts import (
    HISTORY_KEY,
    LEGACY_HISTORY_KEY,
    METRICS_CURRENT_KEY,
    METRICS_HISTORY_KEY,
    STATE_NAME,
    ArtifactStore,
)

__all__ = [
    "HISTORY_KEY",
    "LEGACY_HISTORY_KEY",
    "METRICS_CURRENT_KEY",
    "METRICS_HISTORY_KEY",
    "STATE_NAME",
    "ArtifactStore",
]
