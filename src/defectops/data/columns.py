"""The names of the change-metric columns: the one definition the miner and the dataset schemas share.

The miner writes these columns (:mod:`defectops.mining.metrics`, :mod:`defectops.mining.engine`), the
training-table schema checks them (:mod:`defectops.data.schemas`) and the API accepts them
(:mod:`defectops.serving.schemas`). This module imports nothing, so the miner can use it without loading
pandas or Pandera, and monitoring can name the prediction log's columns without loading SQLAlchemy. The
orders are part of stored data and models: do not reorder.
"""

from __future__ import annotations

#: The 14 change metrics of Kamei et al. (2013), in their usual order: the canonical model inputs, and the
#: order of the feature columns of every training table.
FEATURES: tuple[str, ...] = (
    "ns",
    "nd",
    "nf",
    "entropy",
    "la",
    "ld",
    "lt",
    "fix",
    "ndev",
    "age",
    "nuc",
    "exp",
    "rexp",
    "sexp",
)

#: ``la + ld``, the effort of inspecting a change: mined with the metrics, but not one of the canonical
#: features (effort-aware evaluation uses it as the cost of a change, not as a model input).
CHURN = "churn"

#: When a change was authored, as a logged input (ISO 8601 text, UTC): not a model input, but the time at
#: which monitoring compares the features that grow with project age (the training table's ``time`` is the
#: author time too). ``/v1/commits/score`` logs it from git; ``/v1/predict`` when the client sends it.
COMMIT_TIME = "commit_time"

#: Every metric the miner computes, in the column order of every mined dataset: :data:`FEATURES`, then churn.
METRIC_NAMES: tuple[str, ...] = (*FEATURES, CHURN)

#: Richer change features (#20), mined from the same running history as the Kamei metrics and written
#: after them in every mined dataset (definitions in docs/metrics.md, "Richer features"). Like the Kamei
#: metrics they use only history known at the commit's time, and they need no label.
RICH_FEATURES: tuple[str, ...] = (
    "file_fixes",
    "dir_fixes",
    "rel_churn",
    "src_churn",
    "test_churn",
    "doc_churn",
    "build_churn",
    "author_30d",
    "author_90d",
    "src_share",
    "test_share",
    "doc_share",
    "build_share",
)

#: Richer features that need labels (#20): computed in the training table from the labels table, each
#: commit seeing only the defect-inducing labels whose revealing fix was committed before it
#: (:mod:`defectops.data.label_history`). Mining cannot compute them: labels come after mining.
LABEL_HISTORY_FEATURES: tuple[str, ...] = ("file_bugs", "dir_bugs", "author_bug_rate")
#: The code metrics of a commit's changed source files (``mine --code-metrics``; docs/metrics.md), in the
#: stable column order of the code-metrics dataset. Mined by :mod:`defectops.mining.code_metrics`.
CODE_METRIC_COLUMNS: tuple[str, ...] = (
    "code_files",
    "code_files_skipped",
    "code_parse_errors",
    *(
        f"code_{n}{s}"
        for n in ("nloc", "ccn", "ccn_max", "ccn_mean", "tokens", "functions")
        for s in ("", "_delta")
    ),
)

#: The Terraform block metrics of a commit's changed ``.tf`` files (38 columns), in their stable order.
TERRAFORM_METRIC_COLUMNS: tuple[str, ...] = (
    "tf_files",
    "tf_parse_errors",
    *(
        f"tf_{kind}{part}"
        for kind in ("resources", "data_sources", "modules", "variables", "outputs", "locals", "providers")
        for part in ("", "_added", "_removed", "_changed")
    ),
    *(f"tf_blocks{part}" for part in ("", "_added", "_removed", "_changed")),
    "tf_attributes",
    "tf_attributes_delta",
    "tf_max_depth",
    "tf_max_depth_delta",
)

#: Bookkeeping columns of the code metrics: how many files could not be measured. Counted in summaries,
#: never model inputs (a model must not learn which parser a file needed).
CODE_BOOKKEEPING: frozenset[str] = frozenset({"code_files_skipped", "code_parse_errors", "tf_parse_errors"})

#: Model inputs of the ``code`` and ``terraform`` feature sets (``defectops run --features``).
CODE_FEATURES: tuple[str, ...] = tuple(c for c in CODE_METRIC_COLUMNS if c not in CODE_BOOKKEEPING)
TERRAFORM_FEATURES: tuple[str, ...] = tuple(c for c in TERRAFORM_METRIC_COLUMNS if c not in CODE_BOOKKEEPING)

#: The feature sets ``defectops run --features`` chooses from (``auto`` picks one of them), by name.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "kamei": FEATURES,
    "code": (*FEATURES, *CODE_FEATURES),
    "terraform": (*FEATURES, *TERRAFORM_FEATURES),
    "all": (*FEATURES, *CODE_FEATURES, *TERRAFORM_FEATURES),
}

#: The fixed columns of a prediction-log window, in their order
#: (:meth:`defectops.predlog.log.PredictionLog.window`); every other column of a window is a model
#: input. Monitoring treats them as reserved (:data:`defectops.monitoring.monitor.RESERVED_COLUMNS`).
PREDICTION_COLUMNS: tuple[str, ...] = (
    "prediction_id",
    "repo",
    "commit_sha",
    "created_at",
    "model_name",
    "model_version",
    "served",
    "shadow_of",
    "score",
    "threshold",
    "risk_label",
    "risk_band",
    "label",
    "label_time",
    "label_source",
    "label_feedback_id",
)

#: The risk bands, from the least to the most risky (:class:`defectops.training.RiskBand` has these values):
#: the values the prediction log's ``risk_band`` column accepts. ``minimal`` was added after the first three;
#: rows logged before it say ``low`` for everything below the base rate.
RISK_BAND_NAMES: tuple[str, ...] = ("minimal", "low", "medium", "high")
