"""The public API of defectops.predlog: the prediction log (see :mod:`defectops.predlog.log`)."""

from defectops.errors import PredictionLogError
from defectops.predlog.engine import DEFAULT_DURABILITY, Durability, default_url
from defectops.predlog.feedback import FeedbackOutcome, FeedbackRecord, StoredFeedback
from defectops.predlog.log import PredictionLog
from defectops.predlog.reads import LogCounts
from defectops.predlog.records import CheckedInputs, InputValue, PredictionRecord

__all__ = [
    "DEFAULT_DURABILITY",
    "CheckedInputs",
    "Durability",
    "FeedbackOutcome",
    "FeedbackRecord",
    "InputValue",
    "LogCounts",
    "PredictionLog",
    "PredictionLogError",
    "PredictionRecord",
    "StoredFeedback",
    "default_url",
]
