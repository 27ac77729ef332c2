"""Datasets: schemas (Pandera), Parquet storage, fingerprints, time-aware splits."""

from defectops.data.columns import (
    CHURN,
    CODE_BOOKKEEPING,
    CODE_FEATURES,
    CODE_METRIC_COLUMNS,
    COMMIT_TIME,
    FEATURE_SETS,
    METRIC_NAMES,
    PREDICTION_COLUMNS,
    TERRAFORM_FEATURES,
    TERRAFORM_METRIC_COLUMNS,
)
from defectops.data.contract import CONTRACT, FeatureSpec, normalise_frame, normalise_inputs
from defectops.data.external import load_table
from defectops.data.fingerprint import file_sha256, read_fingerprint
from defectops.data.labels import (
    LINK_COLUMNS,
    VERDICT,
    VERDICTS,
    compute_labels,
    empty_links,
    label_counts,
    labels_as_of,
    upgrade_labels,
    validate_links,
)
from defectops.data.mined import (
    CODE_FAILURES_SCHEMA,
    CODE_SCHEMA,
    COMMITS_SCHEMA,
    FILES_SCHEMA,
    read_table,
    write_table,
)
from defectops.data.schemas import COMMIT, EFFORT, FEATURES, LABEL, MESSAGE, PATHS, TIME, feature_columns
from defectops.data.splits import Split, kamei_monthly, random_split, rolling_origin, time_split
from defectops.data.training_table import training_table

__all__ = [
    "CHURN",
    "CODE_BOOKKEEPING",
    "CODE_FAILURES_SCHEMA",
    "CODE_FEATURES",
    "CODE_METRIC_COLUMNS",
    "CODE_SCHEMA",
    "COMMIT",
    "COMMITS_SCHEMA",
    "COMMIT_TIME",
    "CONTRACT",
    "EFFORT",
    "FEATURES",
    "FEATURE_SETS",
    "FILES_SCHEMA",
    "LABEL",
    "LINK_COLUMNS",
    "MESSAGE",
    "METRIC_NAMES",
    "PATHS",
    "PREDICTION_COLUMNS",
    "TERRAFORM_FEATURES",
    "TERRAFORM_METRIC_COLUMNS",
    "TIME",
    "VERDICT",
    "VERDICTS",
    "FeatureSpec",
    "Split",
    "compute_labels",
    "empty_links",
    "feature_columns",
    "file_sha256",
    "kamei_monthly",
    "label_counts",
    "labels_as_of",
    "load_table",
    "normalise_frame",
    "normalise_inputs",
    "random_split",
    "read_fingerprint",
    "read_table",
    "rolling_origin",
    "time_split",
    "training_table",
    "upgrade_labels",
    "validate_links",
    "write_table",
]
