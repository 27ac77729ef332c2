"""``defectops train`` and ``defectops evaluate``: the training commands of the CLI (step-by-step users).

Both read a training table from ``--data`` (CSV or Parquet; ``--mapping`` says which column is what, or a
preset is detected from the header) and keep time in order: hyperparameters are tuned only on time-ordered
folds of the training part, and the test part is always later than the training part by at least the gap.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from defectops.cli._support import app_settings
from defectops.console import print_json, print_table, stdout
from defectops.errors import InputError

_MAPPING_HELP = "Column mapping: a preset (kamei, openstack, canonical), a JSON file, or inline JSON."
_GAP_HELP = (
    "Days between the last training change and the first test change (default: the label waiting period)."
)


def _gap(gap_days: float | None) -> timedelta:

    days = app_settings().label_waiting_days if gap_days is None else gap_days
    if days < 0:
        raise InputError("--gap-days must not be negative")
    return timedelta(days=days)


def _ranking(value: str) -> Any:
    if value not in ("density", "risk"):
        raise InputError("--effort-ranking must be 'density' or 'risk'")
    return value


def _metrics_table(title: str, metrics: dict[str, float], counts: dict[str, int]) -> None:
    from rich.table import Table

    from defectops.training import METRIC_KEYS

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in METRIC_KEYS:
        value = metrics.get(key, float("nan"))
        table.add_row(key, "n/a" if value != value else (f"{value:.0f}" if key == "ifa" else f"{value:.4f}"))
    print_table(table)
    stdout.print(
        f"changes {counts.get('n', 0)} (defect-inducing {counts.get('n_defective', 0)}, clean "
        f"{counts.get('n_clean', 0)}); tp {counts.get('tp', 0)} fp {counts.get('fp', 0)} "
        f"tn {counts.get('tn', 0)} fn {counts.get('fn', 0)}",
        highlight=False,
    )


def train(
    data: Annotated[Path, typer.Option("--data", help="Training table (.csv or .parquet).")],
    mapping: Annotated[str | None, typer.Option("--mapping", help=_MAPPING_HELP)] = None,
    model: Annotated[
        str,
        typer.Option("--model", help="lightgbm (default), logreg, rf, online, text or hybrid."),
    ] = "lightgbm",
    budget_seconds: Annotated[
        float,
        typer.Option("--budget-seconds", min=0, help="Wall-clock budget of the Optuna search (0: defaults)."),
    ] = 60.0,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Model folder to write (default: <workspace>/models/<data>-<model>)."),
    ] = None,
    gap_days: Annotated[float | None, typer.Option("--gap-days", help=_GAP_HELP)] = None,
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", min=0.01, max=0.99, help="Latest share of changes held out.")
    ] = 0.2,
    refit: Annotated[
        bool, typer.Option("--refit/--no-refit", help="After testing, refit the tuned model on every change.")
    ] = False,
    effort_ranking: Annotated[
        str,
        typer.Option("--effort-ranking", help="Effort-aware metrics rank by 'density' (p/churn) or 'risk'."),
    ] = "density",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (tuning and models).")] = 0,
    register: Annotated[
        str | None,
        typer.Option("--register", help="Also log the run to MLflow and register the model under this name."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train on the earlier changes (tuned on time-ordered folds), test on the later ones, save the model."""
    import json

    from defectops.config import Workspace
    from defectops.data import load_table
    from defectops.training import MODEL_KINDS
    from defectops.training import train as train_model

    if model not in MODEL_KINDS:
        raise InputError(f"--model {model!r}: choose one of {', '.join(MODEL_KINDS)}")
    table = load_table(data, mapping)
    result = train_model(
        table,
        kind=model,
        budget_seconds=budget_seconds,
        gap=_gap(gap_days),
        test_fraction=test_fraction,
        seed=seed,
        ranking=_ranking(effort_ranking),
        refit=refit,
    )
    if out is None:
        out = Workspace.from_settings(app_settings()).root / "models" / f"{data.stem}-{model}"
    folder = result.fitted.model.save(out)
    document = {**result.as_dict(), "data": str(data), "model_dir": str(folder)}
    (folder / "training.json").write_text(json.dumps(_finite(document), indent=2, default=str) + "\n")
    if register is not None:
        document["registered"] = _register(register, result, table, data)
    if json_output:
        print_json(document)
        return
    split = result.fold.split.info
    stdout.print(
        f"[bold]{model}[/] trained on {split.get('train_rows')} changes "
        f"({split.get('train_start', '?')[:10]} .. {split.get('train_end', '?')[:10]}), tested on "
        f"{split.get('test_rows')} later changes ({split.get('test_start', '?')[:10]} .. "
        f"{split.get('test_end', '?')[:10]}), gap {split.get('gap')}",
        highlight=False,
    )
    if result.fold.tuning is not None:
        t = result.fold.tuning
        stdout.print(
            f"tuning: {t.n_trials} trials in {t.elapsed_seconds:.0f}s; validation ROC-AUC "
            f"{t.default_score:.4f} (defaults) -> {t.best_score:.4f}",
            highlight=False,
        )
    _metrics_table("test metrics", result.fold.report.metrics(), document["counts"])
    stdout.print(f"threshold {result.fitted.model.threshold_:.4f}; model saved to {folder}", highlight=False)


def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Training table (.csv or .parquet).")],
    mapping: Annotated[str | None, typer.Option("--mapping", help=_MAPPING_HELP)] = None,
    split: Annotated[
        str, typer.Option("--split", help="time (hold-out), rolling (backtest), kamei (monthly) or random.")
    ] = "time",
    model: Annotated[
        str,
        typer.Option("--model", help="lightgbm (default), logreg, rf, online, text or hybrid."),
    ] = "lightgbm",
    budget_seconds: Annotated[
        float,
        typer.Option("--budget-seconds", min=0, help="Tuning budget shared by all folds (0: defaults)."),
    ] = 0.0,
    gap_days: Annotated[float | None, typer.Option("--gap-days", help=_GAP_HELP)] = None,
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", min=0.01, max=0.99, help="Test share (time, random, rolling).")
    ] = 0.2,
    folds: Annotated[int, typer.Option("--folds", min=1, help="Rolling-origin folds.")] = 3,
    effort_ranking: Annotated[
        str,
        typer.Option("--effort-ranking", help="Effort-aware metrics rank by 'density' (p/churn) or 'risk'."),
    ] = "density",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Judge a model the way time flows: fit on earlier changes, score later ones, average over folds."""
    from defectops.data import load_table
    from defectops.training import MODEL_KINDS, SPLIT_KINDS
    from defectops.training import evaluate as run_evaluation

    if split not in SPLIT_KINDS:
        raise InputError(f"--split {split!r}: choose one of {', '.join(SPLIT_KINDS)}")
    if model not in MODEL_KINDS:
        raise InputError(f"--model {model!r}: choose one of {', '.join(MODEL_KINDS)}")
    table = load_table(data, mapping)
    result = run_evaluation(
        table,
        protocol=split,
        kind=model,
        budget_seconds=budget_seconds,
        gap=timedelta(0) if split in ("kamei", "random") else _gap(gap_days),
        test_fraction=test_fraction,
        n_folds=folds,
        seed=seed,
        ranking=_ranking(effort_ranking),
    )
    document = result.as_dict()
    if json_output:
        print_json(document)
        return
    if split == "random":
        stdout.print("[yellow]random split: future changes leak into training; scores are optimistic[/]")
    stdout.print(
        f"[bold]{model}[/] under the {split} protocol: {len(result.folds)} fold(s)"
        + (f", {result.skipped_folds} skipped (one class only)" if result.skipped_folds else "")
        + f", {result.seconds:.1f}s",
        highlight=False,
    )
    _metrics_table(f"{split}: mean over folds", document, document["counts"])


def _finite(value: Any) -> Any:
    """NaN is not JSON: write it as null (training.json is read by other tools)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _register(name: str, result: Any, table: Any, data: Path) -> dict[str, Any]:
    """Log the training run to MLflow (params, test metrics, data fingerprint, reference snapshot, plots,
    model) and register the model as ``challenger``; promotion stays a separate, gated step."""
    import tempfile
    from datetime import UTC, datetime

    import numpy as np

    from defectops.data import EFFORT, LABEL, file_sha256
    from defectops.registry import ModelRegistry, register_trained_model
    from defectops.training import render_plots

    model = result.fitted.model
    registry = ModelRegistry.from_settings(app_settings())
    now = datetime.now(UTC)
    test = table.iloc[result.fold.split.test]
    plots: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="defectops-plots-") as tmp:
        if (
            not result.refitted
        ):  # a refitted model has seen the test rows: its curves on them would flatter it
            svgs = render_plots(
                y_true=test[LABEL].to_numpy(dtype=np.float64),
                probability=np.asarray(model.predict_proba(test)[:, 1], dtype=np.float64),
                effort=test[EFFORT].to_numpy(dtype=np.float64),
                importance=model.importance(table.iloc[-2000:]),
                importance_rows=len(table.iloc[-2000:]),
            )
            for stem, svg in svgs.items():
                plots[stem] = Path(tmp) / f"{stem}.svg"
                plots[stem].write_text(svg, encoding="utf-8")
        registered = register_trained_model(
            registry,
            name,
            model,
            features=list(model.features_),
            table=table,
            metrics=result.fold.report.metrics(),
            dataset_fingerprint={"path": str(data), "content_sha256": file_sha256(data)},
            now=now,
            who="defectops train",
            why=f"trained on {data.name}",
            job="train",
            run_name=f"train {data.name} {now:%Y-%m-%d %H:%M}",
            plots=plots,
        )
    return {
        "model_name": name,
        "version": registered.version.version,
        "run_id": registered.run.run_id,
        "alias": "challenger",
    }
