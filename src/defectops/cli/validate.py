"""``defectops validate``: validation beyond one number (issue #20), and the A/B test of the service's split.

Without ``--ab`` it retrains the candidate of ``defectops run`` on the workspace's stored datasets (the
latest mined commits and labels of one repository; nothing is mined again) with the same honest protocol,
then prints bootstrap intervals, errors by group with warnings, and stability over quarters and seeds
(:func:`defectops.training.validate_candidate`). With ``--ab`` it reads the prediction log instead and tests
the champion against the challenger (:func:`defectops.monitoring.ab_test`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from defectops.cli._support import app_settings
from defectops.console import print_json, print_table, stdout
from defectops.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from defectops.monitoring import ABResult, LearntAt
    from defectops.training import ValidationReport


def _dataset_folder(root: Path, repo: Path | None) -> Path:
    """The stored datasets of ``repo``, or of the only repository the workspace holds."""
    folder = root / "datasets"
    if repo is not None:
        from defectops.git import GitRepo

        chosen = folder / GitRepo.open(repo).repo_id()
        if not (chosen / "labels.parquet").is_file():
            raise NotFoundError(f"no labelled dataset of {repo} in {root}: run `defectops run --repo {repo}`")
        return chosen
    found = sorted(p.parent for p in folder.glob("*/labels.parquet")) if folder.is_dir() else []
    if not found:
        raise NotFoundError(
            f"no labelled repository in the workspace {root}: run `defectops run --repo PATH`"
        )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise InputError(f"the workspace holds several repositories ({names}): give --repo")
    return found[0]


def validate(
    repo: Annotated[
        Path | None,
        typer.Option("--repo", help="Repository to validate (default: the only one in the workspace)."),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", help="lightgbm, logreg, rf, online, text or hybrid (the hybrid extra).")
    ] = "lightgbm",
    budget_seconds: Annotated[
        float,
        typer.Option("--budget-seconds", min=0, help="Tuning budget inside the training part (0: defaults)."),
    ] = 0.0,
    waiting_days: Annotated[
        int | None,
        typer.Option(
            "--waiting-days",
            min=0,
            help="Label waiting period and gap, in days (default: DEFECTOPS_LABEL_WAITING_DAYS, 90).",
        ),
    ] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the model and of the bootstrap.")] = 0,
    quarters: Annotated[int, typer.Option("--quarters", min=0, help="Latest settled quarters to score.")] = 6,
    stability: Annotated[
        bool, typer.Option("--stability/--no-stability", help="Refit over quarters and seeds (slower).")
    ] = True,
    ab: Annotated[
        bool, typer.Option("--ab", help="Test the service's A/B split in the prediction log.")
    ] = False,
    since: Annotated[
        str, typer.Option("--since", help="--ab: predictions since a duration (30d, 2w) or a date.")
    ] = "30d",
    model_name: Annotated[str | None, typer.Option("--model-name", help="--ab: the served model.")] = None,
    log_url: Annotated[str | None, typer.Option("--log-url", help="--ab: prediction log database.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON document here.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Intervals, errors by group and stability of the held-out window; with --ab, the A/B test."""
    import json

    now = datetime.now(UTC)
    document: dict[str, Any]
    for name, value in (("--model-name", model_name), ("--log-url", log_url)):
        if value is not None and not ab:
            raise InputError(f"{name} goes with --ab (the A/B test of the prediction log)")
    if ab:
        result = _ab(since, model_name, log_url, now)
        document = result.as_dict()
    else:
        report = _validate(
            repo, model, budget_seconds, waiting_days, resamples, seed, quarters, stability, now
        )
        document = {**report.as_dict(), "budget_seconds": budget_seconds}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    if json_output:
        print_json(document)
    elif ab:
        _print_ab(result)
    else:
        _print_report(report, budget_seconds)


def _validate(
    repo: Path | None,
    model: str,
    budget_seconds: float,
    waiting_days: int | None,
    resamples: int,
    seed: int,
    quarters: int,
    stability: bool,
    now: datetime,
) -> ValidationReport:
    import pandas as pd

    from defectops.data import read_table, upgrade_labels
    from defectops.git import GitRepo
    from defectops.pipeline import attach_text, reads_text, require_text_model
    from defectops.training import (
        MODEL_KINDS,
        CandidateOptions,
        ValidationOptions,
        train_candidate,
        validate_candidate,
    )

    if model not in MODEL_KINDS:
        raise InputError(f"--model {model!r}: choose one of {', '.join(MODEL_KINDS)}")
    if reads_text(model):
        # The stored datasets keep no code: the changed lines are read from the clone, as run reads them.
        require_text_model(model)
        if repo is None:
            raise InputError(f"--model {model}: give --repo, the clone its changed lines are read from")
    settings = app_settings()
    days = settings.label_waiting_days if waiting_days is None else waiting_days
    folder = _dataset_folder(settings.resolved_workspace(), repo)
    commits = read_table(folder / "commits.parquet")
    files = read_table(folder / "files.parquet") if (folder / "files.parquet").is_file() else None
    labels = upgrade_labels(pd.read_parquet(folder / "labels.parquet"))
    if reads_text(model) and repo is not None:
        commits, _ = attach_text(GitRepo.open(repo), commits, labels, now=now)
    options = CandidateOptions(kind=model, budget_seconds=budget_seconds, waiting_days=days, seed=seed)
    candidate = train_candidate(commits, labels, files, now=now, options=options)
    return validate_candidate(
        candidate,
        commits,
        labels,
        files,
        now=now,
        gap=timedelta(days=days),
        kind=model,
        options=ValidationOptions(resamples=resamples, seed=seed, quarters=quarters, stability=stability),
    )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _print_report(report: ValidationReport, budget_seconds: float) -> None:
    from rich.table import Table

    i = report.intervals
    tuned = f"tuned for {budget_seconds:g} s" if budget_seconds > 0 else "model defaults (--budget-seconds 0)"
    stdout.print(
        f"[bold]{report.model}[/], {tuned}, held out {report.window[0][:10]} .. {report.window[1][:10]}: "
        f"{i.n} commits, {i.defective} defect-inducing; threshold {report.threshold:.3f}",
        highlight=False,
    )
    table = Table(title=f"{i.confidence:.0%} bootstrap intervals ({i.resamples} resamples of the test rows)")
    for column in ("metric", "value", "lower", "upper"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, interval in i.intervals.items():
        table.add_row(name, _fmt(interval.value), _fmt(interval.lower), _fmt(interval.upper))
    print_table(table)
    from rich import box

    groups = Table(title="errors by group (group vs the rest; ! = warning below)", box=box.SIMPLE)
    for column in ("", "group", "n", "defect", "recall", "FPR", "!"):
        groups.add_column(column, justify="left" if column in ("", "group") else "right")
    for g in report.groups:
        recall = f"{_fmt(g.recall, 2)} vs {_fmt(g.recall_rest, 2)}"
        fpr = f"{_fmt(g.fpr, 2)} vs {_fmt(g.fpr_rest, 2)}"
        flag, style = ("!", "red") if g.warning else ("", None)
        groups.add_row(g.dimension, g.group, str(g.n), str(g.defective), recall, fpr, flag, style=style)
    print_table(groups)
    for warning in report.warnings:
        stdout.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if not report.warnings:
        stdout.print("no group differs from the rest beyond its interval", highlight=False)
    if report.windows or report.seeds:
        _print_stability(report)


def _print_stability(report: ValidationReport) -> None:
    from rich.table import Table

    table = Table(title="stability: quarters (trained on what was known at each start) and seeds")
    for column in ("window", "train", "test", "defective", "ROC-AUC", "threshold"):
        table.add_column(column, justify="left" if column == "window" else "right")
    for w in report.windows:
        table.add_row(
            f"{w.start} .. {w.end}", str(w.train_rows), str(w.test_rows), str(w.defective), _fmt(w.roc_auc),
            _fmt(w.threshold),
        )  # fmt: skip
    for s in report.seeds:
        table.add_row(f"held-out, seed {s.seed}", "", "", "", _fmt(s.roc_auc), _fmt(s.threshold))
    print_table(table)
    for label, spread in (
        ("ROC-AUC over quarters", report.window_auc),
        ("threshold over quarters", report.window_threshold),
        ("ROC-AUC over seeds", report.seed_auc),
        ("threshold over seeds", report.seed_threshold),
    ):
        if spread is not None:
            stdout.print(
                f"{label}: {spread.minimum:.3f} .. {spread.maximum:.3f} (std {spread.std:.3f}, "
                f"mean step {spread.mean_step:.3f}, n={spread.count})",
                highlight=False,
            )
    if report.skipped_windows:
        stdout.print(
            f"{report.skipped_windows} younger quarter(s) passed over: < 30 commits or < 3 defect-inducing",
            highlight=False,
        )


def _ab(since: str, model_name: str | None, log_url: str | None, now: datetime) -> ABResult:
    from defectops.monitoring import ab_test, parse_since
    from defectops.predlog import PredictionLog, default_url

    settings = app_settings()
    start = parse_since(since, now)
    url = log_url or settings.serve.log_url or default_url(settings.resolved_workspace())
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise NotFoundError(f"no prediction log at {url}: serve predictions first (defectops serve)")
    with PredictionLog.from_url(url) as log:
        return ab_test(
            log,
            since=start,
            until=now + timedelta(seconds=1),
            now=now,
            model_name=model_name,
            learnt_at=_learnt_at(),
        )


def _learnt_at() -> LearntAt | None:
    """When each version learnt its labels, from the workspace's registry (None: nothing is registered).
    A version the registry does not know (a log shared with another workspace) is taken to have learnt none:
    all its matured labels count, as before this rule."""
    from defectops.cli.models import _nothing_registered, _registry

    registry = _registry()
    if _nothing_registered(registry):
        return None

    def learnt_at(model: str, version: str) -> datetime | None:
        try:
            return registry.labels_learnt_at(model, int(version))
        except (NotFoundError, ValueError):
            return None

    return learnt_at


def _print_ab(result: ABResult) -> None:
    from rich.table import Table

    if result.mode == "none":  # no second version: nothing to compare, the verdict says why
        stdout.print(
            f"A/B since {result.since:%Y-%m-%d %H:%M} UTC: {result.n_a} served prediction(s); "
            f"{result.verdict}",
            highlight=False,
        )
        return
    stdout.print(
        f"A/B ({result.mode}) since {result.since:%Y-%m-%d %H:%M} UTC: v{result.version_a} "
        f"({result.n_a} predictions) vs v{result.version_b} ({result.n_b}); "
        f"{result.matured} matured labels ({result.matured_defective} defect-inducing)"
        + (
            f"; {result.known_when_trained} more were known when the later version was trained (its "
            "training rows): not counted"
            if result.known_when_trained
            else ""
        ),
        highlight=False,
    )
    table = Table(title="tests (B - A)")
    for column in ("test", "A", "B", "p-value", "significant", "needed"):
        table.add_column(column, justify="left" if column == "test" else "right")
    for test in (result.labels, result.flag_rate, result.scores):
        if test is not None:
            needed = "-" if test.needed is None else f"{test.needed:,} {test.unit}"
            significant = "yes" if test.significant else "no"
            p_value = f"{test.p_value:.3g}"
            table.add_row(test.name, _fmt(test.a), _fmt(test.b), p_value, significant, needed)
    print_table(table)
    stdout.print(result.verdict, highlight=False)
