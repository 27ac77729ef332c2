"""``defectops models list|promote|rollback``: the registry for users who go step by step.

Plain functions with Annotated Typer parameters; the CLI module registers them. Everything heavy (MLflow,
scikit-learn) is imported inside the functions so ``defectops --help`` stays fast. Manual promotions and
rollbacks are audited exactly like the automatic ones (who defaults to the OS user).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from defectops.cli._support import app_settings
from defectops.console import print_json, print_table, stdout
from defectops.errors import NotFoundError

if TYPE_CHECKING:
    from defectops.registry import AuditEvent, ModelRegistry

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
WhoOption = Annotated[
    str | None,
    typer.Option("--who", help="Who is acting (recorded in the audit history). Default: the OS user."),
]


def models_list(
    name: Annotated[
        str | None,
        typer.Argument(help="A registered model; omit it to list every model.", show_default=False),
    ] = None,
    history: Annotated[
        bool, typer.Option("--history", help="Also show the audited history of alias moves.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """List registered models, or one model's versions with their aliases, gate results and metrics."""
    registry = _registry()
    if name is None:
        models = [] if _nothing_registered(registry) else registry.list_models()
        if json_output:
            print_json({"models": [m.model_dump(mode="json") for m in models]})
            return
        if not models:
            stdout.print("No models registered yet (train one with `defectops train` or `defectops run`).")
            return
        from rich.table import Table

        table = Table(title="Registered models")
        for column in ("model", "champion", "challenger", "latest", "versions"):
            table.add_column(column)
        for model in models:
            table.add_row(
                model.name,
                _v(model.aliases.get("champion")),
                _v(model.aliases.get("challenger")),
                _v(model.latest_version),
                str(model.versions),
            )
        print_table(table)
        return

    if _nothing_registered(registry):
        raise NotFoundError(f"unknown model {name!r} (nothing is registered yet)")
    versions = registry.list_versions(name)
    events = registry.history(name) if history else []
    if json_output:
        document: dict[str, Any] = {
            "name": name,
            "aliases": registry.aliases(name),
            "versions": [v.model_dump(mode="json") for v in versions],
        }
        if history:
            document["history"] = [e.model_dump(mode="json") for e in events]
        print_json(document)
        return
    from rich.table import Table

    table = Table(title=f"Versions of {name}")
    columns = (
        "version",
        "aliases",
        "origin",
        "status",
        "gate",
        "roc_auc",
        "threshold",
        "created (UTC)",
        "run",
    )
    for column in columns:
        table.add_column(column)
    for v in versions:
        auc = v.metrics.get("roc_auc")
        table.add_row(
            str(v.version),
            ", ".join(v.aliases) or "-",
            "CROSS-PROJECT starter" if v.cross_project else "own",
            v.status or "-",
            v.gate or "-",
            f"{auc:.4f}" if auc is not None else "-",
            f"{v.threshold:.3g}" if v.threshold is not None else "-",
            v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "-",
            (v.run_id or "-")[:12],
        )
    print_table(table)
    if history:
        _print_history(name, events)


def models_promote(
    name: Annotated[str, typer.Argument(help="Registered model name.", show_default=False)],
    version: Annotated[int, typer.Argument(help="Version to make the champion.", show_default=False, min=1)],
    why: Annotated[
        str, typer.Option("--why", help="Reason, recorded in the audit history.", show_default=False)
    ],
    who: WhoOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even a version whose promotion gate failed.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Make a version the champion (audited; the previous champion stays available for rollback)."""
    registry = _registry()
    if _nothing_registered(registry):
        raise NotFoundError(f"unknown model {name!r} (nothing is registered yet)")
    previous = registry.alias_version(name, "champion")
    events = registry.promote(
        name,
        version,
        _who(who),
        why,
        {"source": "cli", "previous_champion": previous},
        now=datetime.now(UTC),
        force=force,
    )
    if json_output:
        print_json(
            {
                "name": name,
                "champion": version,
                "previous_champion": previous,
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
        return
    stdout.print(f"{name}: champion is now v{version} (was {_v(previous)}).")


def models_rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.", show_default=False)],
    why: Annotated[
        str, typer.Option("--why", help="Reason, recorded in the audit history.", show_default=False)
    ],
    who: WhoOption = None,
    json_output: JsonOption = False,
) -> None:
    """Restore the previous champion recorded in the audit history."""
    registry = _registry()
    if _nothing_registered(registry):
        raise NotFoundError(f"unknown model {name!r} (nothing is registered yet)")
    event = registry.rollback(name, _who(who), why, {"source": "cli"}, now=datetime.now(UTC))
    if json_output:
        print_json(
            {
                "name": name,
                "champion": event.to_version,
                "rolled_back": event.from_version,
                "event": event.model_dump(mode="json"),
            }
        )
        return
    stdout.print(f"{name}: rolled back from v{event.from_version} to v{event.to_version}.")


def _registry() -> ModelRegistry:
    from defectops.registry import ModelRegistry

    return ModelRegistry.from_settings(app_settings())


def _nothing_registered(registry: ModelRegistry) -> bool:
    """True when the embedded database does not exist yet: answer without creating (and migrating) it."""
    config = registry.config
    if not config.embedded:
        return False
    path = config.tracking_uri[len("sqlite:///") :]
    return not os.path.exists(path)


def _who(who: str | None) -> str:
    if who and who.strip():
        return who.strip()
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # containers without a passwd entry for the uid
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _v(version: int | None) -> str:
    return f"v{version}" if version is not None else "-"


def _print_history(name: str, events: list[AuditEvent]) -> None:
    from rich.table import Table

    table = Table(title=f"Alias history of {name}")
    for column in ("#", "when (UTC)", "alias", "action", "from", "to", "who", "why"):
        table.add_column(column)
    for e in events:
        table.add_row(
            str(e.id),
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.alias,
            e.action,
            _v(e.from_version),
            _v(e.to_version),
            e.who,
            e.why,
        )
    print_table(table)
