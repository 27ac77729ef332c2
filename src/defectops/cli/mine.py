"""``defectops mine`` and ``defectops state``: the mining commands of the CLI."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from defectops.cli._progress import progress_lines
from defectops.cli._support import app_settings, parse_time_option
from defectops.console import print_json, print_table, stderr, stdout
from defectops.errors import InputError


def mine(
    repo: Annotated[Path | None, typer.Option("--repo", help="Path of the git repository to mine.")] = None,
    repos: Annotated[
        Path | None, typer.Option("--repos", help="A file with one repository path or clone URL a line.")
    ] = None,
    branch: Annotated[str, typer.Option("--branch", help="Branch or revision to mine.")] = "HEAD",
    since: Annotated[
        str | None, typer.Option("--since", help="Write only commits authored since this date to --out.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the commit dataset here (.parquet).")
    ] = None,
    commit: Annotated[
        list[str] | None, typer.Option("--commit", help="Score these commits just in time (repeatable).")
    ] = None,
    range_: Annotated[
        str | None, typer.Option("--range", help="Score the commits of BASE..HEAD just in time.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Parallel git processes / repositories.")
    ] = None,
    dask: Annotated[
        str | None, typer.Option("--dask", help="Address of a Dask scheduler to mine --repos on.")
    ] = None,
    allow_shallow: Annotated[
        bool,
        typer.Option("--allow-shallow", help="Mine a shallow clone anyway (history metrics will be wrong)."),
    ] = False,
    code_metrics: Annotated[
        bool,
        typer.Option("--code-metrics", help="Add complexity/size and Terraform metrics of changed files."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Mine a repository's history into change metrics (all of it once, then only new commits)."""
    from defectops.config import Workspace
    from defectops.git import GitRepo
    from defectops.mining import MineOptions, Miner

    if repos is not None:
        from defectops.mining import mine_many

        if repo is not None:
            raise InputError("give either --repo or --repos, not both")
        summary = mine_many(
            repos,
            workspace_root=app_settings().resolved_workspace(),
            workers=workers or None,
            dask_address=dask,
            out=out,
            quiet=quiet or json_output,
        )
        if json_output:
            print_json(summary)
        else:
            _print_many(summary)
        return
    if repo is None:
        raise InputError("--repo PATH is required (or --repos FILE)")
    if commit and range_:
        raise InputError("give either --commit or --range, not both")
    if range_ is not None and ".." not in range_:
        raise InputError(f"--range {range_!r}: expected BASE..HEAD")
    if out is not None and out.suffix != ".parquet":
        raise InputError(f"--out {out}: only .parquet is written")

    settings = app_settings()
    workspace = Workspace.from_settings(settings).ensure()
    git_repo = GitRepo.open(repo)
    options = MineOptions(
        rev=branch,
        since=None if since is None else parse_time_option("--since", since),
        allow_shallow=allow_shallow or bool(commit or range_),
        lock_wait_seconds=settings.lock_wait_seconds,
        **({"workers": workers} if workers else {}),
    )
    miner = Miner(git_repo, workspace, options)

    if commit or range_:
        frame = miner.score([*(commit or []), *([range_] if range_ else [])])
        if code_metrics:
            from defectops.mining import add_code_metrics

            frame = add_code_metrics(git_repo, frame)
        if out is not None:
            _write_out(frame, out, git_repo, miner)
        _print_scores(frame, json_output)
        return

    started = time.monotonic()
    result = _with_progress(miner, quiet or json_output)
    if result.rebuilt:
        stderr.print(f"[yellow]warning:[/] {result.rebuilt}", highlight=False)
    from defectops.data import read_table

    frame = read_table(result.dataset)
    code = None
    if code_metrics:
        # Stored apart (datasets/<repo>/code.parquet) and measured once per commit: a later mine measures
        # only the new commits. The commit dataset keeps the change metrics alone.
        from defectops.mining import mine_code_metrics, read_code_metrics, with_code_metrics

        code = mine_code_metrics(
            miner, progress=None if quiet or json_output else progress_lines("code metrics")
        )
        frame = with_code_metrics(frame, read_code_metrics(miner))
    document: dict[str, Any] = result.as_dict()
    # The wall time of the whole command (change and code metrics, reading and writing), not of one part.
    document["wall_seconds"] = round(time.monotonic() - started, 3)
    if code is not None:
        document["code_metrics"] = code.as_dict()
    if out is not None:
        selected = frame if options.since is None else frame[frame["author_time"] >= options.since]
        _write_out(selected, out, git_repo, miner)
        document["out"] = str(out)
        document["out_rows"] = len(selected)
    document["summary"] = summarise(frame)
    if json_output:
        print_json(document)
    else:
        _print_summary(document)


def _with_progress(miner: Any, quiet: bool) -> Any:
    if quiet:
        return miner.mine()
    if not stderr.is_terminal:  # a CI log or a redirected stderr: lines, since a bar would not show
        return miner.mine(progress=progress_lines("mining"))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("mining"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} commits/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("mine", total=None, rate="-")
        started = datetime.now(UTC)

        def update(done: int, total: int) -> None:
            if done % 500 and done != total:
                return
            elapsed = (datetime.now(UTC) - started).total_seconds() or 1e-9
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f}")

        return miner.mine(progress=update)


def _write_out(frame: Any, out: Path, git_repo: Any, miner: Any) -> None:
    from defectops.data import COMMITS_SCHEMA, write_table

    head = git_repo.resolve(miner.options.rev)
    write_table(
        frame.reset_index(drop=True), out, schema=COMMITS_SCHEMA, what="commit dataset",
        source=str(git_repo.path), source_head=head, now=datetime.now(UTC),
    )  # fmt: skip


def summarise(frame: Any) -> dict[str, Any]:
    """A few numbers that tell a user what was mined."""
    scored = frame[~frame["is_merge"]]
    if scored.empty:
        return {"scored_commits": 0}
    return {
        "scored_commits": len(scored),
        "merge_commits": int(frame["is_merge"].sum()),
        "developers": int(scored["author_email"].nunique()),
        "first_commit": scored["author_time"].min(),
        "last_commit": scored["author_time"].max(),
        "fix_share": round(float(scored["fix"].astype(float).mean()), 4),
        "median_churn": float(scored["churn"].astype(float).median()),
        "median_nf": float(scored["nf"].astype(float).median()),
    }


def _print_summary(document: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"mined {document['repo']}", show_header=False, title_justify="left")
    for key in ("head", "commits", "new_commits", "merges", "seconds", "commits_per_second", "dataset"):
        table.add_row("seconds (change metrics)" if key == "seconds" else key, str(document[key]))
    if "code_metrics" in document:
        code = document["code_metrics"]
        table.add_row(
            "code_metrics", f"{code['commits']} commits ({code['new_commits']} new) in {code['seconds']} s"
        )
        table.add_row("code_metrics_dataset", code["dataset"])
        table.add_row("hcl1_files", str(code["hcl1_files"]))
        failures = "; ".join(f"{f['files']} {f['reason']}" for f in code["failures"][:5])
        table.add_row(
            "files_not_measured", f"{code['failed_files']}" + (f" ({failures})" if failures else "")
        )
    table.add_row("wall_seconds", str(document["wall_seconds"]))
    for key, value in document["summary"].items():
        table.add_row(key, str(value))
    if "out" in document:
        table.add_row("out", f"{document['out']} ({document['out_rows']} rows)")
    print_table(table)


def _print_scores(frame: Any, json_output: bool) -> None:
    from defectops.data import METRIC_NAMES

    records = [
        {"sha": row["sha"], "is_merge": bool(row["is_merge"]), **{m: _plain(row[m]) for m in METRIC_NAMES}}
        for _, row in frame.iterrows()
    ]
    if json_output:
        print_json({"commits": records})
        return
    from rich.table import Table

    table = Table("sha", *METRIC_NAMES)
    for record in records:
        table.add_row(record["sha"][:12], *(_fmt(record[m]) for m in METRIC_NAMES))
    print_table(table)


def _plain(value: Any) -> Any:
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _print_many(summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("repository", "commits", "new", "seconds", "status")
    for item in summary["repositories"]:
        table.add_row(
            item["repo"], str(item.get("commits", "")), str(item.get("new_commits", "")),
            str(item.get("seconds", "")), item.get("error") or "ok",
        )  # fmt: skip
    print_table(table)


def state_export(
    repo: Annotated[Path, typer.Option("--repo", help="The repository whose state to export.")],
    out: Annotated[Path | None, typer.Option("--out", help="File to write.", show_default=False)] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Upload it to this artifact store as state/miner.sqlite instead: what `predict --store` "
            "loads on a shallow clone (s3://bucket/prefix or a folder).",
            show_default=False,
        ),
    ] = None,
    branch: Annotated[str, typer.Option("--branch")] = "HEAD",
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Write the miner state to a file or an artifact store (for CI on shallow clones)."""
    from defectops.errors import StateError

    if (out is None) == (store is None):
        raise InputError("give exactly one of --out FILE or --store URL")
    miner = _miner(repo, branch)
    if out is not None:
        _print_state(miner.store.export_to(out), out, "exported", json_output)
        return
    from defectops.storage import STATE_NAME, ArtifactStore

    assert store is not None
    info = miner.store.info()
    if info is None:
        raise StateError(f"no miner state for {repo}; run `defectops mine --repo {repo}` first")
    target = ArtifactStore.from_url(store, endpoint_url=app_settings().storage.endpoint_url)
    with miner.locked():
        key = target.put_state(miner.store.path, STATE_NAME)
    _print_state(info, f"{target.url}/{key}", "exported", json_output)


def state_import(
    repo: Annotated[Path, typer.Option("--repo", help="The repository the state belongs to.")],
    file: Annotated[Path, typer.Argument(help="A state file made by `defectops state export`.")],
    branch: Annotated[str, typer.Option("--branch")] = "HEAD",
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Use a state file exported elsewhere as this workspace's miner state for the repository."""
    miner = _miner(repo, branch)
    with miner.locked():
        info = miner.store.import_from(file, miner.repo)
    _print_state(info, file, "imported", json_output)


def _miner(repo: Path, branch: str) -> Any:
    from defectops.config import Workspace
    from defectops.git import GitRepo
    from defectops.mining import MineOptions, Miner

    settings = app_settings()
    workspace = Workspace.from_settings(settings).ensure()
    options = MineOptions(rev=branch, lock_wait_seconds=settings.lock_wait_seconds)
    return Miner(GitRepo.open(repo), workspace, options)


def _print_state(info: Any, path: Path | str, verb: str, json_output: bool) -> None:
    document = {"action": verb, "file": str(path), "head": info.head, "commits": info.commits}
    if json_output:
        print_json(document)
    else:
        stdout.print(f"{verb} miner state {path}: {info.commits} commits up to {info.head[:12]}")
