"""``defectops run``: the whole main job in one command."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from defectops.cli._progress import code_summary, progress_lines
from defectops.cli._support import app_settings
from defectops.console import print_json, shorten_subject, stderr, stdout

if TYPE_CHECKING:
    from defectops.pipeline import RunResult


#: Commits the summary lists (the riskiest of ``--recent``); the report lists all of them.
SUMMARY_COMMITS = 5


def run(
    repo: Annotated[Path, typer.Option("--repo", help="The git repository to learn from.")] = Path("."),
    model_name: Annotated[
        str | None,
        typer.Option(
            "--name",
            "--model-name",
            help="Name of the repository's model, kept in the workspace for every later command "
            "(default: from the remote, e.g. defectops-pallets-flask, else the root commit; the same in "
            "every clone).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", help="lightgbm, logreg, rf, online, text or hybrid (the hybrid extra).")
    ] = "lightgbm",
    budget_seconds: Annotated[
        float, typer.Option("--budget-seconds", min=0, help="Hyperparameter search time budget.")
    ] = 60.0,
    waiting_days: Annotated[
        int | None,
        typer.Option("--waiting-days", min=0, help="Days before an unfixed commit counts as clean."),
    ] = None,
    recent: Annotated[int, typer.Option("--recent", min=0, help="How many recent commits to score.")] = 20,
    report: Annotated[Path | None, typer.Option("--report", help="Where to write the HTML report.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Parallel git processes.")] = None,
    stability: Annotated[
        bool,
        typer.Option(
            "--stability", help="Also refit over quarters and seeds for the report's validation (slower)."
        ),
    ] = False,
    features: Annotated[
        str,
        typer.Option(
            "--features",
            help="Model inputs: auto (Terraform + code metrics added when at least 20% of the commits change "
            "a .tf file), kamei (the 14 change metrics), code, terraform or all (docs/metrics.md).",
        ),
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress messages.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Mine, label, train, evaluate, register, gate, score recent commits and write a report."""
    from defectops.pipeline import RunOptions
    from defectops.pipeline import run as run_job

    settings = app_settings()
    options = RunOptions(
        repo=repo,
        model_name=model_name,
        kind=model,
        budget_seconds=budget_seconds,
        waiting_days=settings.label_waiting_days if waiting_days is None else waiting_days,
        recent=recent,
        report=report,
        workers=workers,
        stability=stability,
        features=features,
    )
    started = datetime.now(UTC)
    last: list[tuple[str, float]] = []  # the step in progress and when it began (monotonic seconds)

    def step(message: str) -> None:
        """Say when a step ends and how long it took, then which step starts (not cumulative times)."""
        if quiet or json_output:
            return
        now = time.monotonic()
        if last:
            name, began = last.pop()
            stderr.print(f"[dim]{name} took {now - began:.1f} s[/]", highlight=False)
        last.append((message, now))
        stderr.print(f"[dim]{message} …[/]", highlight=False)

    result = run_job(
        options,
        settings,
        now=started,
        step=step,
        progress=None if quiet or json_output else progress_lines("code metrics"),
    )
    if last and not (quiet or json_output):
        name, began = last.pop()
        stderr.print(f"[dim]{name} took {time.monotonic() - began:.1f} s[/]", highlight=False)
    if json_output:
        document = result.as_dict()
        document["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 2)
        print_json(document)
    else:
        _print(result)


def labels_line(labels: Mapping[str, int]) -> str:
    """The labeller's verdict counts in words, e.g. ``labels of all 5 commits (merges included): 1
    defect-inducing, 3 clean, 1 not yet known``.

    The counts cover every commit the labeller saw, merges too, so they differ from the model's rows
    (non-merge commits with a verdict); saying so keeps a user from comparing the two as if they were the same
    set. Every verdict is named, and one the labeller may add later is still shown under its own name.
    """
    words = {"defect": "defect-inducing", "clean": "clean", "unknown": "not yet known"}
    counts = ", ".join(f"{count} {words.get(verdict, verdict)}" for verdict, count in labels.items())
    return f"labels of all {sum(labels.values())} commits (merges included): {counts}"


def _print(result: RunResult) -> None:

    mined, labelled = result.mined, result.labelled
    stdout.print(
        f"mined {mined.commits if mined else None} commits of {result.repo} "
        f"({mined.new_commits if mined else None} new) in {round(mined.seconds, 3) if mined else None} s"
    )
    if result.features is not None:
        chosen = result.features
        stdout.print(f"features: {chosen.name} ({len(chosen.features)}): {chosen.reason}", highlight=False)
    if result.code_metrics is not None:
        stdout.print(code_summary(result.code_metrics), highlight=False)
    if labelled is not None:
        stdout.print(labels_line(labelled.labels), highlight=False)
    if result.text is not None:  # a hybrid model (the candidate or the champion) reads the changed lines
        text = result.text
        stdout.print(
            f"changed lines read for {text.commits} commits ({text.chars} characters, {text.seconds:.1f} s; "
            "in memory only)",
            highlight=False,
        )
    if not result.trained or result.evaluation is None or result.registered is None:
        stdout.print(f"[yellow]no model of this repository trained:[/] {result.reason}", highlight=False)
        starter = result.starter
        if starter is None:
            return
        done = "registered and promoted" if starter.registered else "still serving"
        stdout.print(
            f"[bold yellow]CROSS-PROJECT[/] starter {done} as champion: "
            f"{starter.model_name} v{starter.version} ({starter.description}; its transformation fitted on "
            f"{starter.history_rows} mined commits)",
            highlight=False,
        )
        _print_recent(result)
        return
    metrics, rows = result.evaluation.metrics, result.evaluation.test_rows
    defective = getattr(result.evaluation, "test_defective", None)
    among = "" if defective is None else f" ({defective} defect-inducing)"
    stdout.print(
        f"held-out window of {rows} later commits{among}: ROC-AUC {metrics['roc_auc']:.3f}, "
        f"PR-AUC {metrics['pr_auc']:.3f}, F1 {metrics['f1']:.3f}, "
        f"Recall@20% effort {metrics['recall_at_20_effort']:.3f}, Popt {metrics['popt']:.3f}"
    )
    from defectops.training import Evaluation

    learnt = result.evaluation.feature_set if isinstance(result.evaluation, Evaluation) else None
    if learnt is not None:
        # The base set above is widened on the training part (e.g. by the mined history features): say what
        # the model really learns from, or the reasons below name features the summary never mentioned.
        stdout.print(
            f"model features: {learnt.name} ({len(learnt.features)}): {learnt.reason}", highlight=False
        )
    if result.model_choice is not None:
        stdout.print(f"model: {result.model_choice.describe()}", highlight=False)
    registry = result.registered
    stdout.print(
        f"registered {registry.model_name} v{registry.version}; gate {registry.gate} "
        f"({registry.gate_reason}); champion: v{registry.champion_version}",
        highlight=False,
    )
    if result.blocks is not None:
        from defectops.pipeline import block_line

        stdout.print(f"block-level model: {block_line(result.blocks)}", highlight=False)
    _print_recent(result)


def _print_recent(result: RunResult) -> None:
    from defectops.training import multiple_text, probability_text  # the model stack loads only when printing

    shown = sorted(result.recent, key=lambda r: -r.scored.probability)[:SUMMARY_COMMITS]
    if shown:
        more = f" (all {len(result.recent)} in the report)" if len(result.recent) > len(shown) else ""
        base = "" if result.bands is None else f"; {result.bands.describe()}"
        scored_by = " (scored by the CROSS-PROJECT starter)" if shown[0].scored.cross_project else ""
        stdout.print(
            f"riskiest {len(shown)} of the {len(result.recent)} most recent commits{more}{scored_by}{base}:",
            highlight=False,
        )
    for item in shown:
        scored = item.scored
        reasons = ", ".join(f"{r.feature} {r.direction}" for r in scored.reasons[:2])
        stdout.print(
            f"  {(scored.sha or '')[:12]} {probability_text(scored.probability, result.bands)} "
            f"{multiple_text(scored.relative_risk):>5} "
            f"{scored.band.value:<7} {shorten_subject(item.subject, 50)}"
            f"  ({reasons})",
            highlight=False,
        )
    stdout.print(f"report: {result.report}")
