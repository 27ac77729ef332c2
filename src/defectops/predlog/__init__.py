"""The public API of defectops.predlog."""

from defectops.predlog.log import (
    DEFAULT_DURABILITY,
    CheckedInputs,
    Durability,
    FeedbackOutcome,
    FeedbackRecord,
    InputValue,
    PredictionLog,
    PredictionLogError,
    PredictionRecord,
    default_url,
)

__all__ = [
    "DEFAULT_DURABILITY",
    "CheckedInputs",
    "Durability",
    "FeedbackOutcome",
    "FeedbackRecord",
    "InputValue",
    "PredictionLog",
    "PredictionLogError",
    "PredictionRecord",
    "default_url",
]
