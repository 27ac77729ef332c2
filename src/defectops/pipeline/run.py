"""The main job, ``defectops run``: mine → label → train → evaluate → register → gate → score → report.

Each stage is called through its public API and talks to the next through stored datasets. Time is honest
throughout (see :mod:`defectops.training.candidate`): the held-out window is the latest commits, the model
evaluated on it was trained only on labels known when that window began, and the registered model is then
refitted, with the same hyperparameters, on every label known now.

Stage results are typed records (frozen dataclasses); :meth:`RunResult.as_dict` is the ``--json`` document.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defectops.config import Settings, Workspace
from defectops.data import EFFORT, FEATURES, LABEL, TIME, read_fingerprint, read_table
from defectops.errors import InputError, InsufficientDataError, NotFoundError
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, LabelSummary, label_repository
from defectops.locks import exclusive
from defectops.mining import CodeMineResult, MineOptions, Miner, MineResult, RepositoryNames
from defectops.pipeline.blocks import BlockStage, run_block_stage
from defectops.pipeline.coldstart import StarterStage, register_starter, serving_starter
from defectops.pipeline.features import FeatureChoice, check_choice, choose_features, with_feature_columns
from defectops.pipeline.recent import cold_start_report, score_recent
from defectops.pipeline.summary import feature_tags, gate_f1_text, report_summary
from defectops.pipeline.text import TextStage, attach_text, reads_text, recent_shas, require_text_model
from defectops.training import (
    DEFAULT_MODEL,
    MODEL_KINDS,
    Candidate,
    CandidateOptions,
    Evaluation,
    ModelChoice,
    OnlineEvaluation,
    RecentCommit,
    RiskBands,
    ValidationOptions,
    ValidationReport,
    render,
    render_plots,
    risk_bands_of,
    train_candidate,
    validate_candidate,
    validation_section,
)

Step = Callable[[str], None]
Progress = Callable[[int, int], None]
WHO = "defectops run"


@dataclass(frozen=True)
class RunOptions:
    """What the main job does; every field has a default fit for a first run."""

    repo: Path
    model_name: str | None = None
    kind: str = DEFAULT_MODEL
    budget_seconds: float = 60.0
    waiting_days: int = 90
    test_fraction: float = 0.2
    recent: int = 20
    report: Path | None = None
    seed: int = 0
    workers: int | None = None
    min_labelled: int = 100
    min_new_labelled: int = 50
    #: Refit over quarters and seeds in the validation section (slow: `defectops validate` does it too).
    stability: bool = False
    #: ``auto``, ``kamei``, ``code``, ``terraform`` or ``all`` (:mod:`defectops.pipeline.features`).
    features: str = "auto"

    def __post_init__(self) -> None:
        """Refuse impossible options before any work: mining a large history first would waste minutes."""
        check_choice(self.features)
        if self.kind not in MODEL_KINDS:
            raise InputError(f"unknown model {self.kind!r}: choose one of {', '.join(MODEL_KINDS)}")
        require_text_model(self.kind)  # the hybrid model's extra, checked before any mining
        if not 0.0 < self.test_fraction < 1.0:
            raise InputError(f"test fraction must be within (0, 1), got {self.test_fraction}")
        if self.budget_seconds < 0 or self.recent < 0 or self.waiting_days < 0:
            raise InputError("budget, recent commits and waiting days cannot be negative")

    def candidate_options(self, features: tuple[str, ...] = FEATURES) -> CandidateOptions:
        """How the job trains its candidate, on ``features``."""
        return CandidateOptions(
            features=features,
            kind=self.kind,
            budget_seconds=self.budget_seconds,
            waiting_days=self.waiting_days,
            test_fraction=self.test_fraction,
            seed=self.seed,
            min_labelled=self.min_labelled,
            min_new_labelled=self.min_new_labelled,
        )


@dataclass(frozen=True, slots=True)
class RegistryStage:
    """What the job registered and what the gate made of it (``registry`` in ``run --json``).

    ``gate`` is ``passed``, ``failed`` or ``not run`` (no fair comparison with the champion was possible);
    ``champion_version`` is the champion after the gate.
    """

    model_name: str
    version: int
    run_id: str
    gate: str
    gate_reason: str
    promoted: bool
    champion_version: int | None
    #: The gate's F1 of each model with the threshold it was taken at, for the report (not in ``--json``,
    #: whose gate evidence is in the registry's audit trail); None when the gate did not run.
    gate_scores: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "run_id": self.run_id,
            "gate": self.gate,
            "gate_reason": self.gate_reason,
            "promoted": self.promoted,
            "champion_version": self.champion_version,
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """What the main job did, stage by stage, for the summary and ``--json`` (:meth:`as_dict`).

    ``trained`` is False, with the ``reason``, when the repository had too few labelled commits; then the
    cross-project starter serves as champion (``starter``) and scores the recent commits, unless the
    repository already has a champion of its own.
    """

    repo: str
    mined: MineResult | None = None
    labelled: LabelSummary | None = None
    evaluation: Evaluation | OnlineEvaluation | None = None
    registered: RegistryStage | None = None
    recent: tuple[RecentCommit, ...] = ()
    trained: bool = False
    reason: str | None = None
    report: str | None = None
    starter: StarterStage | None = None
    validation: ValidationReport | None = None
    features: FeatureChoice | None = None
    code_metrics: CodeMineResult | None = None
    #: The block-level model of a Terraform repository (#17), when the run used the Terraform features.
    blocks: BlockStage | None = None
    bands: RiskBands | None = None  # of the model that scored the recent commits
    #: The changed lines read for a hybrid model (the candidate or the champion), None for other kinds.
    text: TextStage | None = None

    @property
    def model_choice(self) -> ModelChoice | None:
        """Which default model the training part chose (LightGBM, the log-linear model or their blend, and
        the recency half-life); None when a kind was named with ``--model`` or nothing was trained."""
        return self.evaluation.model_choice if isinstance(self.evaluation, Evaluation) else None

    @property
    def cross_project(self) -> bool:
        """Whether the recent commits were scored by the cross-project starter."""
        return self.starter is not None

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "repo": self.repo,
            "trained": self.trained,
            "reason": self.reason,
            "report": self.report,
            "cross_project": self.cross_project,
        }
        if self.mined is not None:
            document["mine"] = self.mined.as_dict()
        if self.features is not None:
            document["features"] = self.features.as_dict()
        if self.code_metrics is not None:
            document["code_metrics"] = self.code_metrics.as_dict()
        if self.labelled is not None:
            document["label"] = self.labelled.as_dict()
        if self.evaluation is not None:
            document["evaluate"] = self.evaluation.as_dict()
        if self.registered is not None:
            document["registry"] = self.registered.as_dict()
        if self.starter is not None:
            document["starter"] = self.starter.as_dict()
        if self.validation is not None:
            document["validate"] = self.validation.as_dict()
        if self.blocks is not None:
            document["blocks"] = self.blocks.as_dict()
        if self.text is not None:
            document["text"] = self.text.as_dict()
        if self.trained or self.starter is not None:
            document["risk_bands"] = None if self.bands is None else self.bands.as_dict()
            document["recent"] = [
                {**r.scored.as_dict(), "author": r.author, "time": r.time.isoformat(), "subject": r.subject}
                for r in self.recent
            ]
        return document


def run(
    options: RunOptions,
    settings: Settings,
    *,
    now: datetime,
    step: Step | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run the whole main job once; returns what happened (training is skipped, with the reason, when the
    repository has too few labelled commits). ``progress`` hears (done, total) while code metrics are
    measured."""
    if now.tzinfo is None:
        raise InputError("now must be timezone-aware")
    say = step or (lambda _message: None)
    workspace = Workspace.from_settings(settings).ensure()
    repo = GitRepo.open(options.repo)
    # One main job per repository and workspace at a time: two would mine, label, register and gate the
    # same model side by side. The second waits (saying so), then does the job on what the first left.
    lock = workspace.state_dir / f"{repo.repo_id()}.run.lock"
    with exclusive(lock, what=f"the main job of {repo.repo_id()}", wait_seconds=settings.lock_wait_seconds):
        return _run(options, settings, workspace, repo, now, say, progress)


def _run(
    options: RunOptions,
    settings: Settings,
    workspace: Workspace,
    repo: GitRepo,
    now: datetime,
    say: Step,
    progress: Progress | None,
) -> RunResult:

    say("mining")
    wait = settings.lock_wait_seconds
    mine_options = MineOptions(lock_wait_seconds=wait)
    if options.workers:
        mine_options = MineOptions(workers=options.workers, lock_wait_seconds=wait)
    miner = Miner(repo, workspace, mine_options)
    mined = miner.mine()
    commits = read_table(mined.dataset)
    files = read_table(mined.files_dataset)
    choice = choose_features(options.features, commits, files)

    say("labelling")
    labelled = label_repository(
        repo,
        workspace,
        now=now,
        options=LabelOptions(waiting_days=options.waiting_days, lock_wait_seconds=wait),
    )

    say("loading the registry")
    from defectops.registry import CHAMPION, ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    # The same name in every clone (remote or root commit), or the one the user chose and the workspace kept.
    name = RepositoryNames(workspace.root).model_name(repo, options.model_name)
    try:
        champion_version = registry.alias_version(name, CHAMPION)
    except NotFoundError:  # no model of that name yet: this run trains the first one
        champion_version = None
    champion = registry.load(name, alias=CHAMPION) if champion_version is not None else None
    # The code and Terraform columns, when this run's set or the serving champion (to score) uses them.
    needed = [*choice.features, *(champion.meta.features if champion is not None else ())]
    if any(name not in commits.columns for name in needed):
        say(f"measuring code and Terraform metrics (features: {choice.name}, {choice.reason})")
    commits, code = with_feature_columns(miner, commits, needed, progress)
    text = None
    champion_kind = None if champion is None else getattr(champion.estimator, "kind", None)
    if reads_text(options.kind) or reads_text(champion_kind):
        # The hybrid model reads each commit's changed lines: of the labelled commits and the recent ones.
        say("reading the changed lines of the labelled commits (hybrid model)")
        commits, text = attach_text(
            repo, commits, labelled.labels, now=now, also=recent_shas(commits, options.recent)
        )
    say(f"training (base feature set {choice.name}, {len(choice.features)} features)")
    # The cross-project starter never saw a label of this repository: every held-out window is fair to it.
    starter_serves = champion is not None and champion.meta.cross_project
    # The gate compares on commits the champion never saw: those made after it was trained.
    unseen_since = champion.meta.created_at if champion is not None and not starter_serves else None
    try:
        candidate = train_candidate(
            commits,
            labelled.labels,
            files,
            now=now,
            options=options.candidate_options(choice.features),
            unseen_since=unseen_since,
            champion_saw_no_labels=starter_serves,
        )
    except InsufficientDataError as exc:
        if champion is not None and not starter_serves:
            return RunResult(
                repo=str(repo.path), mined=mined, labelled=labelled.summary, reason=str(exc),
                features=choice, code_metrics=code, text=text,
            )  # fmt: skip
        say("cold start: the cross-project starter model")
        if champion is None:
            stage, champion = register_starter(registry, name, commits, mined.dataset, now=now, who=WHO)
        else:
            stage = serving_starter(champion)
        recent_cold, bands_cold, report_cold = cold_start_report(
            repo, workspace, mined, stage, champion, exc, now, recent_count=options.recent,
            report=options.report,
        )  # fmt: skip
        return RunResult(
            repo=str(repo.path), mined=mined, labelled=labelled.summary, recent=tuple(recent_cold),
            bands=bands_cold, reason=str(exc), report=str(report_cold), starter=stage, features=choice,
            code_metrics=code, text=text,
        )  # fmt: skip
    table_now, test = candidate.table_now, candidate.window

    # One report per run, named by its time, so a second run never overwrites the first; report.html beside
    # them is always the latest.
    report_dir = workspace.root / "reports" / repo.repo_id()
    report_path = options.report or report_dir / f"report-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.html"
    latest = table_now.iloc[-2000:]
    importance = candidate.model.importance(latest)
    plots = render_plots(
        y_true=test[LABEL].to_numpy(dtype=np.float64),
        probability=np.asarray(candidate.window_probability, dtype=np.float64),
        effort=test[EFFORT].to_numpy(dtype=np.float64),
        importance=importance,
        importance_rows=len(latest),
    )

    say("registering")
    with tempfile.TemporaryDirectory(prefix="defectops-plots-") as tmp:
        plot_files: dict[str, Path] = {}
        for stem, svg in plots.items():
            plot_files[stem] = Path(tmp) / f"{stem}.svg"
            plot_files[stem].write_text(svg, encoding="utf-8")
        registered, champion = _register_and_gate(
            registry,
            name,
            candidate,
            candidate.window if (champion is None or candidate.comparable) else None,
            mined.dataset,
            now,
            champion,
            plot_files,
            choice,
            options.min_new_labelled,
        )

    blocks = None
    if choice.name in ("terraform", "all"):
        blocks = run_block_stage(
            repo, workspace, registry, name, labelled.links, head=mined.head, now=now,
            waiting_days=options.waiting_days, say=say, online=options.kind == "online",
        )  # fmt: skip

    say("scoring recent commits")
    bands = None
    if champion is not None:
        bands = risk_bands_of(champion.estimator, threshold=float(champion.estimator.threshold_))
    recent = score_recent(commits, champion, bands, options.recent)

    say("validating")
    # Issue #20: intervals, groups and stability of the held-out window, in the report and in --json.
    validation = validate_candidate(
        candidate,
        commits,
        labelled.labels,
        files,
        now=now,
        gap=timedelta(days=options.waiting_days),
        kind=options.kind,
        options=ValidationOptions(stability=options.stability),
    )

    say("writing the report")
    summary = report_summary(
        repo=str(repo.path), mined=mined, labelled=labelled.summary, candidate=candidate, choice=choice,
        registered=registered, champion=champion, asked_kind=options.kind,
        code_line=None if code is None else _code_line(code), blocks=blocks,
    )  # fmt: skip
    page = render(
        title=f"defectops: {repo.path.name}",
        summary=summary,
        metrics=candidate.metrics,
        plots=plots,
        recent=recent,
        bands=bands,
        generated_at=now,
        validation=validation_section(validation),
        threshold=candidate.window_threshold,
    )
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(page, encoding="utf-8")
    if options.report is None:
        (report_dir / "report.html").write_text(page, encoding="utf-8")
    return RunResult(
        repo=str(repo.path),
        mined=mined,
        labelled=labelled.summary,
        evaluation=candidate.evaluation,
        registered=registered,
        recent=tuple(recent),
        bands=bands,
        trained=True,
        report=str(report_path),
        validation=validation,
        features=choice,
        code_metrics=code,
        blocks=blocks,
        text=text,
    )


def _code_line(code: CodeMineResult) -> str:
    """The code-metrics pass in one line: what was measured, and every file that was not, by reason."""
    failed = "; ".join(f"{count} {reason}" for reason, count in code.failures[:5]) or "none"
    return (
        f"{code.commits} commits measured ({code.new_commits} now, {code.seconds:.1f} s; "
        f"{code.hcl1_files} .tf files read as HCL1); files not measured: {code.failed_files} ({failed})"
    )


def _no_fair_window(candidate: Candidate, champion: Any, needed: int) -> str:
    """Why the gate cannot run: how many labelled commits were made since the champion was trained, against
    the number the comparison needs ("fewer than the needed labelled commits" left a user guessing both)."""
    since = pd.Timestamp(champion.created_at)
    new = candidate.table_now.loc[candidate.table_now[TIME] >= since, LABEL]
    made = f"{len(new)} labelled commit{'' if len(new) == 1 else 's'}"
    if len(new):
        made += f" ({int(new.sum())} defect-inducing)"
    return (
        f"{made} made since champion v{champion.version} was trained ({since:%Y-%m-%d %H:%M} UTC); the gate "
        f"needs at least {needed} with both defect-inducing and clean ones: a fair comparison needs commits "
        "neither model has seen"
    )


def _register_and_gate(
    registry: Any,
    name: str,
    candidate: Candidate,
    window: pd.DataFrame | None,
    dataset: Path,
    now: datetime,
    champion: Any,
    plots: dict[str, Path],
    choice: FeatureChoice,
    needed: int,
) -> tuple[RegistryStage, Any]:
    """Log and register the refitted model as challenger; gate it on ``window`` against the champion.

    ``window`` is None when too few commits were labelled since the champion was trained: the two cannot be
    compared fairly (the champion saw every other commit), so the challenger is archived with that reason.
    """
    from defectops.registry import CHAMPION, register_trained_model

    fingerprint = read_fingerprint(dataset)
    registered = register_trained_model(
        registry,
        name,
        candidate.model,
        features=candidate.features,
        table=candidate.table_now,
        metrics=candidate.logged_metrics(),
        dataset_fingerprint=fingerprint.as_dict() if fingerprint else str(dataset),
        now=now,
        who=WHO,
        why="trained by the main job",
        job="run",
        plots=plots,
        tags=feature_tags(choice, candidate),
        params={"feature_set": choice.name, "feature_set_requested": choice.requested},
    )
    version = registered.version.version
    if window is None:
        why = _no_fair_window(candidate, champion.meta, needed)
        registry.archive(name, version, WHO, why, now=now)
        gate, gate_reason, promoted, gate_scores = "not run", why, False, None
    else:
        champion_scores = None if champion is None else champion.score(window)
        outcome = registry.apply_gate(
            name,
            version,
            y_true=window[LABEL].to_numpy(),
            effort=window[EFFORT].to_numpy(),
            challenger_scores=np.asarray(candidate.window_probability),
            champion_scores=champion_scores,
            champion_version=None if champion is None else champion.meta.version,
            who=WHO,
            now=now,
        )
        gate = "passed" if outcome.decision.passed else "failed"
        gate_reason, promoted = outcome.decision.reason, outcome.promoted
        gate_scores = gate_f1_text(
            outcome.decision, None if champion is None else champion.meta.version, len(window)
        )
    serving_version = registry.alias_version(name, CHAMPION)
    serving = registry.load(name, alias=CHAMPION) if serving_version is not None else None
    stage = RegistryStage(
        model_name=name,
        version=version,
        run_id=registered.run.run_id,
        gate=gate,
        gate_reason=gate_reason,
        promoted=promoted,
        champion_version=serving_version,
        gate_scores=gate_scores,
    )
    return stage, serving
