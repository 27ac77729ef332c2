"""The summary table of the main job's report, and the registry tags that say what the model learns from.

Every line names what was actually trained and registered: the model kind is the registered estimator's
(``blend`` when the default chose the blend inside the training part, not the ``--model`` asked for), the
champion line names the model that scored the recent commits, and the counts say which commits they are
over (the labeller counts every commit, merges included; the model learns from the non-merge ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from defectops.data import LABEL
from defectops.pipeline.blocks import BlockStage, block_line
from defectops.pipeline.features import FeatureChoice
from defectops.training import Candidate, Evaluation
from defectops.training import FeatureChoice as LearntFeatures

if TYPE_CHECKING:
    from defectops.labeling import LabelSummary
    from defectops.mining import MineResult
    from defectops.pipeline.run import RegistryStage
    from defectops.registry import GateDecision


def model_kind(model: Any, asked: str) -> str:
    """A trained estimator's kind (``lightgbm``, ``logreg``, ``blend``, ...); ``asked`` if it has none."""
    return str(getattr(model, "kind", None) or asked)


def learnt_features(candidate: Candidate) -> LearntFeatures | None:
    """The feature set the candidate learnt from, as the training part chose it (None: no choice made)."""
    evaluation = candidate.evaluation
    return evaluation.feature_set if isinstance(evaluation, Evaluation) else None


def feature_tags(choice: FeatureChoice, candidate: Candidate) -> dict[str, str]:
    """The training run's feature tags: the base set the run asked for and the set the model learns from
    (``defectops.feature_set`` alone said ``kamei`` beside ``defectops.feature_count`` 27 for a kamei+mined
    model)."""
    tags = {
        "defectops.feature_set": choice.name,
        "defectops.feature_set_reason": choice.reason,
        "defectops.feature_count": str(len(candidate.features)),
    }
    learnt = learnt_features(candidate)
    if learnt is not None:
        tags["defectops.model_feature_set"] = learnt.name
        tags["defectops.model_feature_set_reason"] = learnt.reason
    return tags


def _labelled_line(candidate: Candidate, labelled: LabelSummary | None) -> str:
    table = candidate.table_now
    defects = int(table[LABEL].sum())
    line = f"{len(table)} non-merge commits with a verdict, the model's rows ({defects} defect-inducing)"
    if labelled is not None:
        counts = ", ".join(f"{count} {verdict}" for verdict, count in labelled.labels.items())
        total = sum(labelled.labels.values())
        line += f"; the labeller's counts over all {total} commits, merges included: {counts}"
    return line


def gate_f1_text(decision: GateDecision, champion_version: int | None, commits: int) -> str:
    """The gate's F1 of each model with its threshold: ``on the 975 held-out commits: F1 0.355 at threshold
    0.219 (the registered model's); champion v1 F1 0.340 at threshold 0.210``.

    Why: the gate scores the held-out window with the registered model's threshold (the model refitted on
    every label), while the held-out table's F1 is at the threshold of the model fitted on the earlier commits
    alone; the report showed two F1s of the same commits without saying they were taken at different cuts.
    """
    text = (
        f"on the {commits} held-out commits: F1 {decision.challenger.f1:.3f} at threshold "
        f"{decision.challenger.threshold:.3f} (the registered model's)"
    )
    if decision.champion is not None and champion_version is not None:
        text += (
            f"; champion v{champion_version} F1 {decision.champion.f1:.3f} at threshold "
            f"{decision.champion.threshold:.3f}"
        )
    return text


def _gate_line(registered: RegistryStage) -> str:
    """``passed: all 3 criteria met``; the reason after the outcome when it does not begin with it; then the
    gate's F1 and its threshold when it ran."""
    reason = registered.gate_reason
    line = reason if reason.startswith(registered.gate) else f"{registered.gate}: {reason}"
    return line if registered.gate_scores is None else f"{line}; {registered.gate_scores}"


def report_summary(
    *,
    repo: str,
    mined: MineResult,
    labelled: LabelSummary | None,
    candidate: Candidate,
    choice: FeatureChoice,
    registered: RegistryStage,
    champion: Any,
    asked_kind: str,
    code_line: str | None,
    blocks: BlockStage | None,
) -> dict[str, Any]:
    """The report's summary rows, in order. ``champion`` is the serving model after the gate (None when there
    is none), the one that scored the recent commits; ``asked_kind`` is ``--model``."""
    evaluation = candidate.evaluation
    chosen_model = evaluation.model_choice if isinstance(evaluation, Evaluation) else None
    learnt = learnt_features(candidate)
    share = float(candidate.table_now[LABEL].mean()) if len(candidate.table_now) else float("nan")
    if champion is None:
        serving = "none"
    else:
        kind = model_kind(champion.estimator, "unknown")
        serving = f"v{champion.meta.version} ({kind}; it scored the recent commits below)"
    return {
        "repository": repo,
        "head": mined.head,
        "commits mined": mined.commits,
        "labelled commits": _labelled_line(candidate, labelled),
        "defect-inducing share": f"{share:.1%} of the non-merge labelled commits",
        "model": f"{registered.model_name} v{registered.version} ({model_kind(candidate.model, asked_kind)})",
        **({} if chosen_model is None else {"model chosen": chosen_model.describe()}),
        "feature set": f"{choice.name} ({len(choice.features)} features): {choice.reason}",
        # widened on the training part (e.g. by the mined history features), as `run` prints it
        **(
            {}
            if learnt is None
            else {"model features": f"{learnt.name} ({len(learnt.features)} features): {learnt.reason}"}
        ),
        "features": ", ".join(candidate.features),
        **({} if code_line is None else {"code metrics": code_line}),
        "gate": _gate_line(registered),
        "champion": serving,
        **({} if blocks is None else {"block-level model": block_line(blocks)}),
    }
