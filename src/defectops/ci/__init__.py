"""CI integration: ``defectops predict`` for commits and pull requests, its output formats (table, JSON,
markdown, SARIF, GitHub workflow commands), and ``defectops models export`` for MLflow-free scoring in CI."""

from defectops.ci.block_report import BlockPrediction
from defectops.ci.blocks import score_blocks
from defectops.ci.formats.github import append_summary, render_github
from defectops.ci.formats.jsondoc import render_json
from defectops.ci.formats.markdown import render_markdown
from defectops.ci.formats.sarif import DEFAULT_INFORMATION_URI, render_sarif
from defectops.ci.formats.table import render_table
from defectops.ci.log_rows import (
    TEXT_COLUMNS,
    block_record,
    commit_inputs,
    iso_time,
    logged_columns,
    report_inputs,
)
from defectops.ci.model_source import ModelSource, export_model, resolve_model
from defectops.ci.model_store import MODELS_PREFIX, fetch_model, publish_model
from defectops.ci.predict import PredictRequest, revisions, run_predict, store_predictions
from defectops.ci.report import FailOn, OutputFormat, PredictionReport, RiskFoundError, parse_choice
from defectops.ci.store import StoreSession, StoreWrites

__all__ = [
    "DEFAULT_INFORMATION_URI",
    "MODELS_PREFIX",
    "TEXT_COLUMNS",
    "BlockPrediction",
    "FailOn",
    "ModelSource",
    "OutputFormat",
    "PredictRequest",
    "PredictionReport",
    "RiskFoundError",
    "StoreSession",
    "StoreWrites",
    "append_summary",
    "block_record",
    "commit_inputs",
    "export_model",
    "fetch_model",
    "iso_time",
    "logged_columns",
    "parse_choice",
    "publish_model",
    "render_github",
    "render_json",
    "render_markdown",
    "render_sarif",
    "render_table",
    "report_inputs",
    "resolve_model",
    "revisions",
    "run_predict",
    "score_blocks",
    "store_predictions",
]
