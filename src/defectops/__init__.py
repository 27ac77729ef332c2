"""defectops: self-healing MLOps for just-in-time defect prediction.

The public API is what this module re-exports; everything in underscore modules and sub-packages not listed
here may change without notice.
"""

from __future__ import annotations

from defectops.errors import (
    ConfigError,
    DataError,
    DefectOpsError,
    GitError,
    InputError,
    ModelError,
    NotFoundError,
    StateError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "DefectOpsError",
    "GitError",
    "InputError",
    "ModelError",
    "NotFoundError",
    "StateError",
    "__version__",
]
