"""The ``defectops`` command line: a thin Typer app.

Each stage owns its commands (``<stage>/commands.py``); this module only wires them together and maps the
exception hierarchy to one-line errors and exit codes. Heavy libraries are imported inside commands, so
``defectops --help`` stays fast.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.markup import escape as markup_escape

from defectops import __version__
from defectops.cli._support import quiet_mlflow, set_variables, use_settings
from defectops.cli.ci import models_export, predict
from defectops.cli.events import events_serve, events_work
from defectops.cli.heal import heal, scheduler
from defectops.cli.label import label
from defectops.cli.mine import mine, state_export, state_import
from defectops.cli.models import models_list, models_promote, models_rollback
from defectops.cli.monitor import monitor
from defectops.cli.run import run
from defectops.cli.serve import serve
from defectops.cli.train import evaluate, train
from defectops.cli.ui import ui
from defectops.cli.validate import validate
from defectops.console import redact_url, stderr
from defectops.errors import ConfigError, DefectOpsError, InputError

app = typer.Typer(
    name="defectops",
    help="Just-in-time defect prediction that keeps itself right: mine, label, train, serve, monitor, heal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_verbose = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"defectops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace", "-w", help="Workspace folder.", show_default="DEFECTOPS_WORKSPACE, else .defectops"
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Options that apply to every command."""
    global _verbose
    _verbose = verbose
    from defectops.config import Settings

    # The one settings tree of this invocation; commands read it with cli._support.app_settings().
    settings = Settings(workspace=workspace) if workspace is not None else Settings()
    root = settings.resolved_workspace()
    if root.exists() and not root.is_dir():
        # Checked once here: each command would fail its own way (run: FileExistsError, an internal error).
        raise InputError(f"workspace {root} is a file, not a folder (--workspace or DEFECTOPS_WORKSPACE)")
    _check_creatable(root)
    use_settings(settings)
    ctx.call_on_close(lambda: use_settings(None))  # nothing outlives this invocation (tests, notebooks)


def _check_creatable(root: Path) -> None:
    """Refuse a workspace that cannot be created because a file stands where one of its folders must go.

    Why here: each command creates the workspace at its own moment, and mine, label, predict, serve, state
    export and ui each stopped with 'internal error: NotADirectoryError' (exit 70) for ``-w notes.txt/ws``.
    """
    if root.exists():
        return
    for parent in root.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(
                    f"workspace {root} cannot be created: {parent} is a file, not a folder "
                    "(--workspace or DEFECTOPS_WORKSPACE)"
                )
            return


app.command("mine")(mine)
app.command("label")(label)
app.command("train")(train)
app.command("evaluate")(evaluate)

state_app = typer.Typer(help="Export or import the incremental miner state.", no_args_is_help=True)
state_app.command("export")(state_export)
state_app.command("import")(state_import)
app.add_typer(state_app, name="state")

models_app = typer.Typer(help="Registered models: list, promote, roll back.", no_args_is_help=True)
models_app.command("list")(models_list)
models_app.command("promote")(models_promote)
models_app.command("rollback")(models_rollback)
models_app.command("export")(models_export)
app.add_typer(models_app, name="models")

app.command("monitor")(monitor)
app.command("run")(run)
app.command("predict")(predict)
app.command("serve")(serve)
app.command("heal")(heal)
app.command("scheduler")(scheduler)
app.command("ui")(ui)
app.command("validate")(validate)

events_app = typer.Typer(help="Event-driven scoring: webhook receiver and workers.", no_args_is_help=True)
events_app.command("serve")(events_serve)
events_app.command("work")(events_work)
app.add_typer(events_app, name="events")


def settings_error(exc: ValidationError) -> ConfigError | None:
    """A settings class (read from ``DEFECTOPS_*`` variables) that refused its values, as one line naming the
    variable; None for any other validation error (a bug, reported as such)."""
    from pydantic_settings import BaseSettings

    def subclasses(cls: type[BaseSettings]) -> list[type[BaseSettings]]:
        found = list(cls.__subclasses__())
        for sub in list(found):
            found.extend(subclasses(sub))
        return found

    owner = next((c for c in subclasses(BaseSettings) if c.__name__ == exc.title), None)
    if owner is None or not exc.errors():
        return None
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "settings"
    variable = f"{owner.model_config.get('env_prefix', '')}{field}".upper()
    return ConfigError(f"invalid setting {variable}: {first['msg']}")


def unparseable_setting(exc: SettingsError) -> ConfigError:
    """pydantic-settings' "error parsing value for field X" as one line naming the variable."""
    import re

    from pydantic_settings import BaseSettings

    match = re.search(r'field "(\w+)"', str(exc))
    field = match.group(1) if match else ""
    candidates: list[str] = []
    stack: list[type[BaseSettings]] = [BaseSettings]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if field in getattr(cls, "model_fields", {}):
            candidates.append(f"{cls.model_config.get('env_prefix', '')}{field}".upper())
    # Several subtrees may share a field name (serve's and events' repositories): name the one that is set.
    chosen = set_variables(candidates) or candidates
    variable = chosen[0] if chosen else field.upper()
    expected = 'JSON, e.g. {"app": "/srv/clones/app"}' if field else "a valid value"
    return ConfigError(
        f"invalid setting {variable or 'in the environment'}: not parseable, expected {expected}"
    )


def one_line(message: str) -> str:
    """Errors are one line on stderr: a multi-line message (a database's, MLflow's) is joined."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def workspace_first(argv: list[str]) -> list[str]:
    """``argv`` with the root's ``--workspace``/``-w`` and ``--verbose``/``-v`` given after the command moved
    before it.

    Why: both apply to every command, so they are options of the root, and click accepts them only there;
    ``defectops run --repo . --workspace ws`` was refused with "No such option: --workspace (Possible options:
    --workers)", ``defectops predict --repo . --verbose`` with "No such option: --verbose". No command has an
    option of these names, so moving them changes no other meaning.
    """
    head: list[str] = []
    moved: list[str] = []
    rest = list(argv)
    command_seen = False
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            head.extend([arg, *rest])
            break
        if command_seen and arg in ("--workspace", "-w") and rest:
            moved.extend([arg, rest.pop(0)])
            continue
        if command_seen and (arg.startswith("--workspace=") or arg in ("--verbose", "-v")):
            moved.append(arg)
            continue
        if (
            not arg.startswith("-")
            and not command_seen
            and (not head or head[-1] not in ("--workspace", "-w"))
        ):
            command_seen = True
        head.append(arg)
    return moved + head


#: Click's UsageError, found through Typer's public BadParameter: a Typer that vendors Click (typer._click)
#: raises its own copy, not ``click.UsageError``, while older Typer raises Click's.
_USAGE_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def command_path(argv: list[str]) -> str:
    """The command that ``argv`` (root options first, see :func:`workspace_first`) names, e.g. ``defectops
    models promote``: as deep as its words name commands."""
    from typer.main import get_command

    command: Any = get_command(app)
    path = ["defectops"]
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in ("--workspace", "-w"):
            rest = rest[1:]
        elif arg == "--":
            break
        elif not arg.startswith("-"):
            sub = getattr(command, "commands", {}).get(arg)
            if sub is None:
                break
            path.append(arg)
            command = sub
    return " ".join(path)


def usage_error_message(exc: Exception, argv: list[str]) -> str | None:
    """A Click usage error (unknown option, missing argument, bad value, unknown command) as the one line
    ``<what>; try '<command> --help'`` (printed after ``error:``), or None for other errors and for a group
    called without a command (Click's NoArgsIsHelpError, which shows the group's help).

    Why: Click printed four lines (Usage, Try, a blank line, Error), unlike every other defectops error.
    """
    if not isinstance(exc, _USAGE_ERROR) or type(exc).__name__ == "NoArgsIsHelpError":
        return None
    ctx = getattr(exc, "ctx", None)
    # Some parser errors ("Option '--repo' requires an argument.") carry no context: argv names the command.
    path = ctx.command_path if ctx is not None else command_path(argv)
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    return f"{one_line(message).rstrip('.')}; try '{path} --help'"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn known errors into one line and an exit code."""
    quiet_mlflow()
    args = workspace_first(sys.argv[1:] if argv is None else argv)
    try:
        try:
            use_settings(None)  # nothing left over from an earlier call in this process
            app(args=args, standalone_mode=False, prog_name="defectops")
        except ValidationError as exc:
            error = settings_error(exc)
            if error is None:
                raise
            raise error from None
        except SettingsError as exc:  # a variable that is not even parseable (JSON of a dict field)
            raise unparseable_setting(exc) from None
    except DefectOpsError as exc:
        if _verbose:
            traceback.print_exc()
        stderr.print(f"[bold red]error:[/] {markup_escape(one_line(redact_url(str(exc))))}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        stderr.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # usage errors (unknown option, bad value) arrive here too
        usage = usage_error_message(exc, args)
        if usage is not None:
            stderr.print(f"[bold red]error:[/] {markup_escape(usage)}", highlight=False)
            sys.exit(getattr(exc, "exit_code", 2))
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            show()
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if _verbose:
            traceback.print_exc()
        else:
            stderr.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: "
                f"{markup_escape(one_line(redact_url(str(exc))))} "
                "(run with --verbose for details)",
                highlight=False,
            )
        sys.exit(70)
