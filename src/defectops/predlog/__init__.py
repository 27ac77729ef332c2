"""The public API of defectops.predlog: the prediction log (see :mod:`defectops.predlog.log`)."""

from defectops.errors import PredictionLogError
from defectops.predlog.engine import DEFAULT_DURABILITY, Durability, default_url
from defectops.predlog.evidence import matured, unlearnt
from defectops.predlog.feedback import FeedbackOutcome, FeedbackRecord, StoredFeedback
from defectops.predlog.log import PredictionLog
from defectops.predlog.reads import LogCounts
from defectops.predlog.records import CheckedInputs, InputValue, PredictionRecord
from defectops.predlog.reviews import ReviewRecord, StoredReview, Verdict
from defectops.predlog.summary import SCORE_BINS, WindowSummary

__all__ = [
    "DEFAULT_DURABILITY",
    "SCORE_BINS",
    "CheckedInputs",
    "Durability",
    "FeedbackOutcome",
    "FeedbackRecord",
    "InputValue",
    "LogCounts",
    "PredictionLog",
    "PredictionLogError",
    "PredictionRecord",
    "ReviewRecord",
    "StoredFeedback",
    "StoredReview",
    "Verdict",
    "WindowSummary",
    "default_url",
    "matured",
    "unlearnt",
]
