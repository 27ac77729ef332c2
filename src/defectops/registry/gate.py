"""The promotion gate: may this challenger become (or replace) the champion?

Two modes, chosen by whether a champion's scores are given:

- **first model**: no champion yet, so an absolute floor on the time-ordered test window: enough labelled
  rows, both classes present, ROC-AUC at least ``first_model_min_roc_auc`` (0.65 by default).
- **challenger vs champion**: both models scored on the *same* recent window of matured labels. Defaults are
  the self-healing loop's (issue 6): at least 200 labels; ROC-AUC not lower (point estimate, tolerance 0);
  F1 at each model's own threshold better by at least 2 % relative; Brier score not worse by more than 0.01;
  and a paired, seeded bootstrap percentile interval of the ROC-AUC difference (challenger - champion, both
  computed on the same resampled rows) whose lower end is >= 0, i.e. that excludes a drop. Every comparison
  criterion can be switched off (``None``) or loosened.

The decision lists every criterion with its value, threshold, pass/fail and a reason, so it can be stored
as evidence and replayed: :func:`log_gate_decision` writes it to an MLflow run together with the scored
window, and :func:`replay_gate` recomputes it from that run.

Metrics are scikit-learn's (``roc_auc_score``, ``f1_score``, ``brier_score_loss``); the bootstrap computes
ROC-AUC from per-row draw counts over scores sorted once (:func:`weighted_auc`), which equals
``roc_auc_score`` on the resampled rows (ties count one half) without sorting every resample.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from defectops.config import GateCriteria
from defectops.errors import InputError, ModelError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from defectops.registry.tracking import TrackingConfig

GateMode = Literal["first_model", "challenger_vs_champion"]

_BOOTSTRAP_CELLS = 2_000_000  # resamples x rows evaluated per chunk (bounds memory at ~50 MB)


class CriterionResult(BaseModel):
    """One criterion: ``value op threshold`` must hold; ``value`` is None when it cannot be computed."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    op: Literal[">=", "<="]
    threshold: float
    passed: bool
    reason: str


class ModelScores(BaseModel):
    """One model's metrics on the gate window (None where undefined, e.g. ROC-AUC with one class)."""

    model_config = ConfigDict(frozen=True)

    roc_auc: float | None
    f1: float
    brier: float
    threshold: float


class BootstrapInterval(BaseModel):
    """Paired percentile bootstrap of ROC-AUC(challenger) - ROC-AUC(champion)."""

    model_config = ConfigDict(frozen=True)

    resamples: int
    valid: int
    seed: int
    confidence: float
    lower: float | None
    upper: float | None


class GateDecision(BaseModel):
    """The gate's verdict with everything needed to understand and replay it."""

    model_config = ConfigDict(frozen=True)

    mode: GateMode
    passed: bool
    reason: str
    n_labels: int
    n_positive: int
    effort_total: float | None
    challenger: ModelScores
    champion: ModelScores | None
    bootstrap: BootstrapInterval | None
    criteria: list[CriterionResult]
    settings: GateCriteria

    def failed_criteria(self) -> list[CriterionResult]:
        return [c for c in self.criteria if not c.passed]

    def to_document(self) -> dict[str, Any]:
        """The decision as strict JSON data (an infinite F1 gain becomes null), for evidence and artifacts."""
        document: dict[str, Any] = json.loads(self.model_dump_json())
        return document


# ----------------------------------------------------------------------------------------------------
# Evaluation


def evaluate_gate(
    y_true: ArrayLike,
    effort: ArrayLike | None,
    challenger_scores: ArrayLike,
    champion_scores: ArrayLike | None = None,
    *,
    criteria: GateCriteria | None = None,
    challenger_threshold: float = 0.5,
    champion_threshold: float = 0.5,
) -> GateDecision:
    """Judge a challenger on one window: against the floor if ``champion_scores`` is None, else against them.

    All arrays are aligned row by row (same commits, same order): ``y_true`` in {0, 1}, scores are predicted
    defect probabilities in [0, 1], ``effort`` (churn, optional) is non-negative. F1 uses each model's own
    decision threshold.
    """
    settings = criteria or GateCriteria()
    y = _labels(y_true)
    challenger = _scores(challenger_scores, len(y), "challenger_scores")
    champion = None if champion_scores is None else _scores(champion_scores, len(y), "champion_scores")
    effort_arr = None if effort is None else _effort(effort, len(y))
    for name, value in (
        ("challenger_threshold", challenger_threshold),
        ("champion_threshold", champion_threshold),
    ):
        if not 0.0 < value < 1.0:
            raise InputError(f"{name} must lie strictly between 0 and 1, got {value}")

    n = len(y)
    n_pos = int(y.sum())
    both = n_pos > 0 and n_pos < n
    ch = _model_scores(y, challenger, challenger_threshold, both)
    results: list[CriterionResult] = []
    bootstrap: BootstrapInterval | None = None
    champ: ModelScores | None = None

    if champion is None:
        mode: GateMode = "first_model"
        results.append(_at_least("labels", float(n), float(settings.first_model_min_labels), "labelled rows"))
        results.append(_both_classes(n, n_pos))
        results.append(_at_least("roc_auc_floor", ch.roc_auc, settings.first_model_min_roc_auc, "ROC-AUC"))
    else:
        mode = "challenger_vs_champion"
        champ = _model_scores(y, champion, champion_threshold, both)
        results.append(_at_least("labels", float(n), float(settings.min_labels), "matured labels"))
        results.append(_both_classes(n, n_pos))
        if settings.roc_auc_tolerance is not None:
            diff = None if ch.roc_auc is None or champ.roc_auc is None else ch.roc_auc - champ.roc_auc
            results.append(
                _at_least("roc_auc_not_worse", diff, 0.0 - settings.roc_auc_tolerance, "ROC-AUC difference")
            )
        if settings.f1_min_relative_gain is not None:
            results.append(
                _at_least(
                    "f1_relative_gain",
                    _relative_gain(ch.f1, champ.f1),
                    settings.f1_min_relative_gain,
                    "relative F1 gain",
                )
            )
        if settings.brier_max_increase is not None:
            results.append(
                _at_most(
                    "brier_increase", ch.brier - champ.brier, settings.brier_max_increase, "Brier increase"
                )
            )
        if settings.roc_auc_ci_margin is not None:
            bootstrap = paired_bootstrap_auc_difference(
                y,
                challenger,
                champion,
                resamples=settings.bootstrap_resamples,
                confidence=settings.bootstrap_confidence,
                seed=settings.seed,
            )
            results.append(_ci_criterion(bootstrap, settings.roc_auc_ci_margin))

    passed = all(r.passed for r in results)
    failed = [r for r in results if not r.passed]
    reason = (
        f"passed: all {len(results)} criteria met"
        if passed
        else "failed: " + "; ".join(f"{r.name}: {r.reason}" for r in failed)
    )
    return GateDecision(
        mode=mode,
        passed=passed,
        reason=reason,
        n_labels=n,
        n_positive=n_pos,
        effort_total=None if effort_arr is None else float(effort_arr.sum()),
        challenger=ch,
        champion=champ,
        bootstrap=bootstrap,
        criteria=results,
        settings=settings,
    )


def paired_bootstrap_auc_difference(
    y_true: NDArray[np.int8],
    challenger_scores: NDArray[np.float64],
    champion_scores: NDArray[np.float64],
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> BootstrapInterval:
    """Percentile interval of AUC(challenger) - AUC(champion), resampling rows (with replacement) in pairs.

    Pairing (the same resampled rows for both models) cancels the window's own difficulty out of the
    difference, which makes the interval much narrower than comparing two independent intervals. Resamples
    that happen to contain one class only have no AUC and are skipped (``valid`` counts the rest); with fewer
    than half valid the interval is reported as undefined. A resample is represented by how often it draws
    each row, so both AUCs come from :func:`weighted_auc` in O(rows) per resample (no re-sorting).
    """
    n = len(y_true)
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CELLS // max(n, 1))
    challenger = _SortedScores(y_true, challenger_scores)
    champion = _SortedScores(y_true, champion_scores)
    diffs: list[NDArray[np.float64]] = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        rows = rng.integers(0, n, size=(size, n))
        offsets = (np.arange(size, dtype=np.int64) * n)[:, None]
        counts = np.bincount((rows + offsets).ravel(), minlength=size * n).reshape(size, n)
        diffs.append(challenger.auc(counts) - champion.auc(counts))
    all_diffs = np.concatenate(diffs) if diffs else np.empty(0)
    valid = all_diffs[np.isfinite(all_diffs)]
    if len(valid) * 2 < resamples:
        return BootstrapInterval(
            resamples=resamples, valid=len(valid), seed=seed, confidence=confidence, lower=None, upper=None
        )
    alpha = 1.0 - confidence
    lower, upper = np.quantile(valid, [alpha / 2.0, 1.0 - alpha / 2.0])
    return BootstrapInterval(
        resamples=resamples,
        valid=len(valid),
        seed=seed,
        confidence=confidence,
        lower=float(lower),
        upper=float(upper),
    )


def weighted_auc(weights: ArrayLike, y_true: ArrayLike, scores: ArrayLike) -> NDArray[np.float64]:
    """ROC-AUC for each row of a (k x n) matrix of row weights (e.g. bootstrap draw counts); NaN if one class.

    AUC = sum over score levels of W+(level) * (W-(below) + W-(level) / 2) / (W+ W-), the probability that a
    positive outscores a negative with ties counting one half; with all weights 1 it equals
    ``sklearn.metrics.roc_auc_score``, and with integer weights it equals the AUC of the repeated rows.
    """
    y = np.asarray(y_true, dtype=np.int8)
    return _SortedScores(y, np.asarray(scores, dtype=np.float64)).auc(np.atleast_2d(np.asarray(weights)))


class _SortedScores:
    """One model's scores sorted once, grouped into tie levels, ready to score any row weighting."""

    def __init__(self, y: NDArray[np.int8], scores: NDArray[np.float64]) -> None:
        self.order = np.argsort(scores, kind="mergesort")
        ordered = scores[self.order]
        self.positive = y[self.order].astype(np.float64)
        self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])

    def auc(self, weights: NDArray[Any]) -> NDArray[np.float64]:
        w = weights[:, self.order].astype(np.float64)
        pos = np.add.reduceat(w * self.positive, self.starts, axis=1)
        neg = np.add.reduceat(w * (1.0 - self.positive), self.starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        n1 = pos.sum(axis=1)
        n0 = neg.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (n1 * n0)
        auc[(n1 == 0) | (n0 == 0)] = np.nan
        return np.asarray(auc, dtype=np.float64)


# ----------------------------------------------------------------------------------------------------
# Criteria helpers


def _model_scores(
    y: NDArray[np.int8], scores: NDArray[np.float64], threshold: float, both: bool
) -> ModelScores:
    from sklearn.metrics import brier_score_loss, f1_score, roc_auc_score

    predicted = (scores >= threshold).astype(np.int8)
    return ModelScores(
        roc_auc=float(roc_auc_score(y, scores)) if both else None,
        f1=float(f1_score(y, predicted, zero_division=0.0)),
        brier=float(brier_score_loss(y, scores)),
        threshold=float(threshold),
    )


def _relative_gain(new: float, old: float) -> float:
    """(new - old) / old; from an F1 of zero any positive F1 is an infinite gain, zero to zero no gain."""
    if old > 0.0:
        return (new - old) / old
    return math.inf if new > 0.0 else 0.0


def _fmt(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _at_least(name: str, value: float | None, threshold: float, what: str) -> CriterionResult:
    if value is None or math.isnan(value):
        return CriterionResult(
            name=name, value=None, op=">=", threshold=threshold, passed=False, reason=f"{what} is undefined"
        )
    ok = value >= threshold
    relation = ">=" if ok else "<"
    return CriterionResult(
        name=name,
        value=value,
        op=">=",
        threshold=threshold,
        passed=ok,
        reason=f"{what} {_fmt(value)} {relation} {_fmt(threshold)}",
    )


def _at_most(name: str, value: float, threshold: float, what: str) -> CriterionResult:
    ok = value <= threshold
    relation = "<=" if ok else ">"
    return CriterionResult(
        name=name,
        value=value,
        op="<=",
        threshold=threshold,
        passed=ok,
        reason=f"{what} {_fmt(value)} {relation} {_fmt(threshold)}",
    )


def _both_classes(n: int, n_pos: int) -> CriterionResult:
    minority = float(min(n_pos, n - n_pos))
    result = _at_least("both_classes", minority, 1.0, "rows of the rarer class")
    if not result.passed:
        return result.model_copy(
            update={"reason": f"the window has only one class ({n_pos} defective of {n}); nothing to rank"}
        )
    return result


def _ci_criterion(interval: BootstrapInterval, margin: float) -> CriterionResult:
    floor = 0.0 - margin  # never -0.0 in reasons or JSON
    result = _at_least("roc_auc_ci_lower", interval.lower, floor, "lower end of the ROC-AUC difference CI")
    if interval.lower is None or interval.upper is None:
        return result.model_copy(
            update={
                "reason": f"bootstrap interval undefined ({interval.valid} of {interval.resamples} resamples "
                "had both classes)"
            }
        )
    return result.model_copy(
        update={
            "reason": f"{round(interval.confidence * 100)}% CI of the ROC-AUC difference "
            f"[{_fmt(interval.lower)}, {_fmt(interval.upper)}]; lower end "
            f"{'>=' if result.passed else '<'} {_fmt(floor)}"
        }
    )


def _labels(values: ArrayLike) -> NDArray[np.int8]:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError("y_true must be a non-empty one-dimensional array")
    if arr.dtype == bool:
        return arr.astype(np.int8)
    try:
        numeric = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError("y_true must hold 0/1 labels") from exc
    if not np.isin(numeric, (0.0, 1.0)).all():
        raise InputError("y_true must hold 0/1 labels only (matured labels; drop pending ones first)")
    return numeric.astype(np.int8)


def _scores(values: ArrayLike, n: int, name: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric probabilities") from exc
    if arr.ndim != 1 or len(arr) != n:
        raise InputError(
            f"{name} must be one-dimensional with one score per label ({n}), got shape {arr.shape}"
        )
    if not np.isfinite(arr).all() or (arr < 0.0).any() or (arr > 1.0).any():
        raise InputError(f"{name} must be probabilities in [0, 1] (the Brier score needs them)")
    return arr


def _effort(values: ArrayLike, n: int) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError("effort must be numeric (e.g. churn)") from exc
    if arr.ndim != 1 or len(arr) != n:
        raise InputError(
            f"effort must be one-dimensional with one value per label ({n}), got shape {arr.shape}"
        )
    if not np.isfinite(arr).all() or (arr < 0.0).any():
        raise InputError("effort must be finite and non-negative")
    return arr


# ----------------------------------------------------------------------------------------------------
# Logging and replay

_WINDOW_ARTIFACT = "gate/window.parquet"
_DECISION_ARTIFACT = "gate/decision.json"


def log_gate_decision(
    decision: GateDecision,
    *,
    y_true: ArrayLike,
    effort: ArrayLike | None,
    challenger_scores: ArrayLike,
    champion_scores: ArrayLike | None,
    config: TrackingConfig,
    model_name: str,
    challenger_version: int,
    champion_version: int | None,
) -> str:
    """Store a decision as its own MLflow run (tags, params, metrics, decision JSON and the scored window).

    Returns the run id, which the audit record cites as evidence; :func:`replay_gate` recomputes the decision
    from that run alone.
    """
    import mlflow
    import pandas as pd

    from defectops.registry.tracking import activate, ensure_experiment, mlflow_errors

    window = pd.DataFrame(
        {
            "y_true": _labels(y_true),
            "challenger_score": _scores(challenger_scores, decision.n_labels, "challenger_scores"),
        }
    )
    if champion_scores is not None:
        window["champion_score"] = _scores(champion_scores, decision.n_labels, "champion_scores")
    if effort is not None:
        window["effort"] = _effort(effort, decision.n_labels)

    client = activate(config)
    experiment_id = ensure_experiment(config, client)
    tags = {
        "defectops.kind": "gate",
        "defectops.model_name": model_name,
        "defectops.challenger_version": str(challenger_version),
        "defectops.champion_version": "" if champion_version is None else str(champion_version),
        "defectops.gate.mode": decision.mode,
        "defectops.gate.passed": "true" if decision.passed else "false",
        "defectops.gate.reason": decision.reason[:5000],
    }
    params = {f"gate.{k}": str(v) for k, v in decision.settings.model_dump().items()}
    metrics: dict[str, float] = {
        "gate.passed": 1.0 if decision.passed else 0.0,
        "gate.n_labels": decision.n_labels,
    }
    for role, scores in (("challenger", decision.challenger), ("champion", decision.champion)):
        if scores is None:
            continue
        for key in ("roc_auc", "f1", "brier"):
            value = getattr(scores, key)
            if value is not None:
                metrics[f"{role}.{key}"] = float(value)
    for criterion in decision.criteria:
        if criterion.value is not None and math.isfinite(criterion.value):
            metrics[f"criterion.{criterion.name}"] = float(criterion.value)
    with (
        mlflow_errors("logging the gate decision to MLflow failed"),
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"gate {model_name} v{challenger_version}",
            tags=tags,
            nested=mlflow.active_run() is not None,
        ) as run,
    ):
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.log_dict(decision.to_document(), _DECISION_ARTIFACT)
        with tempfile.TemporaryDirectory(prefix="defectops-gate-") as tmp:
            path = Path(tmp) / Path(_WINDOW_ARTIFACT).name
            window.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(_WINDOW_ARTIFACT).parent))
        return str(run.info.run_id)


def replay_gate(run_id: str, *, config: TrackingConfig, criteria: GateCriteria | None = None) -> GateDecision:
    """Recompute a logged decision from its stored window (with its own criteria unless others are given)."""
    import mlflow
    import pandas as pd

    from defectops.registry.tracking import activate, mlflow_errors

    activate(config)
    with mlflow_errors(f"gate run {run_id} has no stored decision"):
        decision_path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=_DECISION_ARTIFACT, tracking_uri=config.tracking_uri
        )
        window_path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=_WINDOW_ARTIFACT, tracking_uri=config.tracking_uri
        )
    try:
        original = GateDecision.model_validate(json.loads(Path(decision_path).read_text()))
        window = pd.read_parquet(window_path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"gate run {run_id} has an unreadable decision or window: {exc}") from exc
    return evaluate_gate(
        window["y_true"].to_numpy(),
        window["effort"].to_numpy() if "effort" in window else None,
        window["challenger_score"].to_numpy(),
        window["champion_score"].to_numpy() if "champion_score" in window else None,
        criteria=criteria or original.settings,
        challenger_threshold=original.challenger.threshold,
        champion_threshold=original.champion.threshold if original.champion else 0.5,
    )
