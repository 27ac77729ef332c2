"""Training and evaluation: models, time-aware tuning, metrics, candidates, the train/evaluate commands."""

from defectops.training.blocks import (
    BlockEvaluation,
    block_table,
    block_training_table,
    evaluate_block_model,
    new_block_labels,
    train_block_model,
)
from defectops.training.candidate import (
    Candidate,
    CandidateOptions,
    Evaluation,
    OnlineEvaluation,
    bound_names,
    known_labels,
    online_candidate,
    train_candidate,
)
from defectops.training.choice import ModelChoice, choose_model, train, with_relative_churn
from defectops.training.embedding import require_encoder
from defectops.training.evaluate import SPLIT_KINDS, evaluate, fit_model, run_fold
from defectops.training.metrics import METRIC_KEYS, effort_aware_score, evaluate_predictions, recall_at_effort
from defectops.training.models import (
    DEFAULT_MODEL,
    MODEL_KINDS,
    JITModel,
    LightGBMJIT,
    OnlineJIT,
    StarterJIT,
    load_model,
)
from defectops.training.report import RecentCommit, render, render_plots
from defectops.training.risk import (
    RISK_BANDS,
    BandSupport,
    RiskBand,
    RiskBands,
    Scored,
    check_finite,
    cut_text,
    multiple_text,
    probability_text,
    relative_text,
    risk_bands_of,
    score,
)
from defectops.training.selection import FeatureChoice
from defectops.training.significance import (
    TestResult,
    delong_paired,
    delong_unpaired,
    proportion_sample_size,
    score_shift,
    two_proportion_test,
)
from defectops.training.starter import STARTER_LABEL, describe_starter, load_starter, starter_card
from defectops.training.treeshap import TreeShapTables
from defectops.training.validation import VALIDATED_METRICS, GroupError, Interval, MetricIntervals
from defectops.training.validation_html import validation_section
from defectops.training.validation_run import ValidationOptions, ValidationReport, validate_candidate

__all__ = [
    "DEFAULT_MODEL",
    "METRIC_KEYS",
    "MODEL_KINDS",
    "RISK_BANDS",
    "SPLIT_KINDS",
    "STARTER_LABEL",
    "VALIDATED_METRICS",
    "BandSupport",
    "BlockEvaluation",
    "Candidate",
    "CandidateOptions",
    "Evaluation",
    "FeatureChoice",
    "GroupError",
    "Interval",
    "JITModel",
    "LightGBMJIT",
    "MetricIntervals",
    "ModelChoice",
    "OnlineEvaluation",
    "OnlineJIT",
    "RecentCommit",
    "RiskBand",
    "RiskBands",
    "Scored",
    "StarterJIT",
    "TestResult",
    "TreeShapTables",
    "ValidationOptions",
    "ValidationReport",
    "block_table",
    "block_training_table",
    "bound_names",
    "check_finite",
    "choose_model",
    "cut_text",
    "delong_paired",
    "delong_unpaired",
    "describe_starter",
    "effort_aware_score",
    "evaluate",
    "evaluate_block_model",
    "evaluate_predictions",
    "fit_model",
    "known_labels",
    "load_model",
    "load_starter",
    "multiple_text",
    "new_block_labels",
    "online_candidate",
    "probability_text",
    "proportion_sample_size",
    "recall_at_effort",
    "relative_text",
    "render",
    "render_plots",
    "require_encoder",
    "risk_bands_of",
    "run_fold",
    "score",
    "score_shift",
    "starter_card",
    "train",
    "train_block_model",
    "train_candidate",
    "two_proportion_test",
    "validate_candidate",
    "validation_section",
    "with_relative_churn",
]
