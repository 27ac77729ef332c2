"""``defectops heal`` and ``defectops scheduler``: the self-healing loop, once or on a schedule.

Plain functions with Annotated Typer options (the CLI module registers them). ``heal --once`` runs one cycle
and exits (cron, or an external orchestrator such as Airflow: see docs/self-healing.md); ``heal`` without
``--once`` and ``scheduler`` run cycles every ``--every-minutes`` in-process until SIGTERM/SIGINT. Thresholds
come from the environment (``DEFECTOPS_HEAL_*``, ``DEFECTOPS_MONITOR_*``); the options override a few.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from defectops.cli._support import app_settings, repository_model
from defectops.console import print_json, stderr, stdout
from defectops.errors import DefectOpsError

if TYPE_CHECKING:
    from defectops.pipeline import Healer, HealReport

RepoOption = Annotated[
    Path | None,
    typer.Option("--repo", help="The git repository challengers learn from (mined and labelled each cycle)."),
]
ModelNameOption = Annotated[
    str | None,
    typer.Option(
        "--model-name",
        help=(
            "Registered model to heal (default: the --repo repository's, as `defectops run` named it, e.g. "
            "defectops-pallets-flask from its remote; `defectops models list` shows it)."
        ),
    ),
]
OnlineOption = Annotated[
    bool,
    typer.Option("--online", help="Update the online model with newly matured labels (partial_fit) instead."),
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Learn from the commits `predict --store` scored into this artifact store (its metrics "
        "history), labelled from --repo's history; with --online the champion's online model is updated "
        "with partial_fit and gated like every challenger (--gate offline: at once, on unseen commits).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print each cycle's report as JSON.")]
FeedbackRepoOption = Annotated[
    str | None,
    typer.Option(
        "--feedback-repo",
        help="Repository id the service logs this repository's commits under; its labels are sent there as "
        "feedback each cycle. Default: every id under which a prediction of one of its commits was logged "
        "(found by commit sha).",
    ),
]
GateOption = Annotated[
    str | None,
    typer.Option("--gate", help="shadow (live requests, needs the service) or offline (held-out commits)."),
]
BudgetOption = Annotated[
    float | None,
    typer.Option("--budget-seconds", min=0, help="Hyperparameter search budget per challenger."),
]
MaxCyclesOption = Annotated[
    int | None, typer.Option("--max-cycles", min=1, help="Stop after this many cycles.")
]


def heal(
    repo: RepoOption = None,
    model_name: ModelNameOption = None,
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit (cron, Airflow).")] = False,
    online: OnlineOption = False,
    json_output: JsonOption = False,
    every_minutes: Annotated[
        float, typer.Option("--every-minutes", min=0.001, help="Minutes between cycles without --once.")
    ] = 60.0,
    feedback_repo: FeedbackRepoOption = None,
    gate: GateOption = None,
    budget_seconds: BudgetOption = None,
    max_cycles: MaxCyclesOption = None,
    store: StoreOption = None,
) -> None:
    """Watch, gate, monitor, decide, retrain: keep the served model right (one cycle with --once)."""
    if once:
        # One line, before any mining or MLflow run, when there is nothing to heal (a cron job's typo, or a
        # repository `defectops run` has not trained yet). The scheduler keeps waiting for a champion instead.
        _require_champion(_model_name(repo, model_name), repo)
    healer = _healer(repo, model_name, online, feedback_repo, gate, budget_seconds, store)
    try:
        if once:
            from defectops.pipeline import utc_now

            _show(healer.cycle(utc_now()), json_output)
            return
        _schedule(healer, every_minutes, max_cycles, json_output)
    finally:
        healer.close()


def scheduler(
    every_minutes: Annotated[
        float, typer.Option("--every-minutes", min=0.001, help="Minutes between heal cycles.")
    ],
    repo: RepoOption = None,
    model_name: ModelNameOption = None,
    max_cycles: MaxCyclesOption = None,
    online: OnlineOption = False,
    json_output: JsonOption = False,
    feedback_repo: FeedbackRepoOption = None,
    gate: GateOption = None,
    budget_seconds: BudgetOption = None,
) -> None:
    """Run heal cycles every N minutes in this process until SIGTERM or SIGINT (or --max-cycles)."""
    healer = _healer(repo, model_name, online, feedback_repo, gate, budget_seconds)
    try:
        _schedule(healer, every_minutes, max_cycles, json_output)
    finally:
        healer.close()


def _healer(
    repo: Path | None,
    model_name: str | None,
    online: bool,
    feedback_repo: str | None,
    gate: str | None,
    budget_seconds: float | None,
    store: str | None = None,
) -> Healer:
    from pydantic import ValidationError

    from defectops.config import HealSettings
    from defectops.errors import ConfigError, InputError
    from defectops.pipeline import Healer

    settings = app_settings()
    model_name = _model_name(repo, model_name)
    overrides: dict[str, Any] = {}
    if gate is not None:
        if gate not in ("shadow", "offline"):
            raise InputError(f"--gate must be shadow or offline, got {gate!r}")
        overrides["gate_on"] = gate
    if budget_seconds is not None:
        overrides["budget_seconds"] = budget_seconds
    try:
        heal_settings = HealSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigError(f"invalid heal setting {where}: {first['msg']}") from None
    return Healer.from_settings(
        settings,
        model_name=model_name,
        repo=repo,
        heal=heal_settings,
        monitoring=settings.monitor,
        online=online,
        feedback_repo=feedback_repo,
        store=store,
    )


def _model_name(repo: Path | None, model_name: str | None) -> str:
    """``--model-name``, else the repository's model (the name ``defectops run`` registers), else the only
    registered model with a champion (several are refused naming heal's own options: it reads no
    ``DEFECTOPS_SERVE_MODEL_NAME``, nor is there a ``DEFECTOPS_HEAL_`` model name).
    """
    if model_name is not None:
        return model_name
    return repository_model(app_settings(), repo)


def _require_champion(model_name: str, repo: Path | None) -> None:
    """NotFoundError (one line) when ``model_name`` is not registered or has no champion."""
    from defectops.cli.models import _nothing_registered, _registry
    from defectops.errors import NotFoundError
    from defectops.registry import CHAMPION

    train = f"defectops run --repo {repo}" if repo is not None else "defectops run"
    registry = _registry()
    missing = f"nothing to heal: {model_name!r} is not registered in this workspace; train it first ({train})"
    if _nothing_registered(registry):
        raise NotFoundError(missing)
    try:
        aliases = registry.aliases(model_name)
    except NotFoundError:
        raise NotFoundError(missing) from None
    if CHAMPION not in aliases:
        raise NotFoundError(
            f"nothing to heal: {model_name!r} has no champion yet; promote a version "
            f"(defectops models promote) or train one ({train})"
        )


def _schedule(healer: Healer, every_minutes: float, max_cycles: int | None, json_output: bool) -> None:
    from defectops.pipeline import run_scheduler

    def failed(exc: BaseException) -> None:
        stderr.print(f"[bold red]cycle failed:[/] {type(exc).__name__}: {exc}", highlight=False)

    summary = run_scheduler(
        healer.cycle,
        every_minutes=every_minutes,
        max_cycles=max_cycles,
        on_result=lambda report: _show(report, json_output),
        on_error=failed,
    )
    if not json_output:
        stderr.print(
            f"scheduler stopped ({summary.stopped_by}) after {summary.cycles} cycle(s), "
            f"{summary.failures} failed",
            highlight=False,
        )
    if summary.stopped_by == "max_cycles" and summary.all_failed:
        # A bounded run (cron, a Kubernetes Job) in which every cycle failed must not report success; the
        # code is the last failure's, as `heal --once` would have exited with it (70: an internal error).
        error = summary.last_error
        raise typer.Exit(code=error.exit_code if isinstance(error, DefectOpsError) else 70)


def _show(report: HealReport, json_output: bool) -> None:
    if json_output:
        print_json(report.as_dict())
        return
    from rich.markup import escape

    champion = f"v{report.champion_version}" if report.champion_version is not None else "none"
    challenger = f"v{report.challenger_version}" if report.challenger_version is not None else "none"
    stdout.print(
        f"[bold]{escape(report.model_name)}[/] at {report.at:%Y-%m-%d %H:%M} UTC: champion {champion}, "
        f"challenger {challenger}, traffic {report.traffic['mode']}",
        highlight=False,
    )
    colours = {
        "promoted": "green",
        "rolled_back": "red",
        "alarm": "red",
        "drift": "yellow",
        "retrain": "yellow",
    }
    for record in report.records:
        colour = colours.get(record.outcome, "default")
        stdout.print(
            f"  {record.step:<8} [{colour}]{escape(record.outcome):<14}[/] {escape(record.reason)}",
            highlight=False,
        )
