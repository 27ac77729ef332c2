"""``defectops label``: fixes, SZZ links and matured labels for a repository (register as ``label``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from defectops.cli._support import app_settings, parse_time_option
from defectops.console import print_json, print_table, stderr
from defectops.errors import InputError

if TYPE_CHECKING:
    from defectops.labeling import LabelSummary


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)  # the boundary: the only place the wall clock is read
    return parse_time_option("--now", value)


def label(
    repo: Annotated[Path, typer.Option("--repo", help="Path of the git repository to label.")],
    variant: Annotated[
        str, typer.Option("--variant", help="SZZ variant: 'ag' (AG-SZZ, default) or 'b' (B-SZZ).")
    ] = "ag",
    issues: Annotated[
        str | None,
        typer.Option(
            "--issues",
            help="Issue list: a CSV/JSON export (id, type or labels, created_at) or github:OWNER/REPO "
            "(token from GITHUB_TOKEN or DEFECTOPS_GITHUB_TOKEN, API at DEFECTOPS_GITHUB_API_URL).",
        ),
    ] = None,
    waiting_days: Annotated[
        int | None,
        typer.Option("--waiting-days", min=0, help="Days before a commit without fix counts as clean [90]."),
    ] = None,
    branch: Annotated[str, typer.Option("--branch", help="Branch or revision to label.")] = "HEAD",
    max_fix_files: Annotated[
        int, typer.Option("--max-fix-files", min=1, help="AG-SZZ: skip fixes touching more files.")
    ] = 100,
    now: Annotated[
        str | None, typer.Option("--now", help="Label maturity as of this time (default: now).")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Ignore the stored state; redo history.")
    ] = False,
    allow_shallow: Annotated[
        bool, typer.Option("--allow-shallow", help="Label a shallow clone anyway (links will be missing).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Find fixes, link them to the commits that induced them (SZZ), and label every commit.

    A commit is 'defect' once a fix is linked to it, 'clean' once it is older than the waiting period without
    one, and 'unknown' before that. Labels and links are stored as Parquet in the workspace; later runs add
    only new commits.
    """
    from defectops.config import Workspace
    from defectops.git import GitRepo
    from defectops.labeling import VARIANTS, LabelOptions, SzzOptions, label_repository

    if variant not in VARIANTS:
        raise InputError(f"--variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    settings = app_settings()
    at = _parse_now(now)
    workspace = Workspace.from_settings(settings).ensure()
    git_repo = GitRepo.open(repo)
    issue_list = _load_issue_list(issues, workspace, git_repo.repo_id(), at) if issues else None
    options = LabelOptions(
        szz=SzzOptions(variant=variant, max_fix_files=max_fix_files),  # type: ignore[arg-type]
        waiting_days=settings.label_waiting_days if waiting_days is None else waiting_days,
        revision=branch,
        allow_shallow=allow_shallow,
        lock_wait_seconds=settings.lock_wait_seconds,
    )
    if quiet or json_output:
        result = label_repository(
            git_repo, workspace, now=at, options=options, issues=issue_list, rebuild=rebuild
        )
    else:
        result = _with_progress(git_repo, workspace, at, options, issue_list, rebuild)
    if result.summary.notice:
        stderr.print(f"[yellow]note:[/] {result.summary.notice}", highlight=False)
    if json_output:
        print_json(result.summary.as_dict())
    else:
        _print_summary(result.summary)


def _load_issue_list(spec: str, workspace: Any, repo_id: str, now: datetime) -> Any:
    from defectops.labeling import GitHubIssues, fetch_github_cached, load_issues

    if spec.startswith("github:"):
        github = app_settings().github
        token = github.token.get_secret_value() if github.token is not None else None
        client = GitHubIssues.from_spec(spec, token=token, base_url=github.api_url)
        cache = workspace.datasets_dir / repo_id / "issues-github.json"
        return fetch_github_cached(client, cache, now=now)
    return load_issues(Path(spec))


def _with_progress(repo: Any, workspace: Any, at: datetime, options: Any, issues: Any, rebuild: bool) -> Any:
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from defectops.labeling import label_repository

    columns = (
        TextColumn("labelling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} commits/s"),
        TimeElapsedColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("label", total=None, rate="-")

        def progress(done: int, total: int) -> None:
            elapsed = max(time.perf_counter() - started, 1e-6)
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f}")

        return label_repository(
            repo, workspace, now=at, options=options, issues=issues, rebuild=rebuild, progress=progress
        )


def _print_summary(summary: LabelSummary) -> None:
    from rich.table import Table

    from defectops.data import VERDICTS

    table = Table(title=f"labels of {summary.repo}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    counts = summary.labels
    table.add_row("tip", str(summary.tip)[:12])
    table.add_row("variant", "AG-SZZ" if summary.variant == "ag" else "B-SZZ")
    table.add_row("run", f"{summary.mode} ({summary.new_commits:,} new commits)")
    table.add_row("commits", f"{summary.commits:,}")
    table.add_row("fixes (new)", f"{summary.new_fixes:,} ({summary.new_linked_fixes:,} linked)")
    unlinkable = summary.new_unlinkable
    if unlinkable:
        table.add_row("unlinkable (new)", ", ".join(f"{k}: {v:,}" for k, v in unlinkable.items()))
    table.add_row("links", f"{summary.links_total:,}")
    table.add_row(
        "labels",
        " · ".join(f"{verdict} {counts.get(verdict, 0):,}" for verdict in VERDICTS)
        + f" (waiting {summary.waiting_days} days)",
    )
    table.add_row("time", f"{summary.total_seconds:.1f} s")
    if summary.labels_path:
        table.add_row("labels file", str(summary.labels_path))
        table.add_row("links file", str(summary.links_path))
    print_table(table)
