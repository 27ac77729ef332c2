"""``defectops predict`` and ``defectops models export``: the CI commands.

Plain functions with Annotated Typer options; the CLI module registers them (``predict`` at the top level,
``models_export`` as ``models export``). Choices are validated here rather than by Click so that a wrong value
is a one-line error like every other defectops error. Heavy imports happen inside the functions.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from defectops.cli._support import app_settings, quiet_mlflow, repository_model
from defectops.console import print_json, print_table, stderr, stdout
from defectops.errors import InputError

if TYPE_CHECKING:
    from defectops.ci import ModelSource, OutputFormat, PredictionReport
    from defectops.config import Settings
    from defectops.training import RiskBand


def predict(
    repo: Annotated[Path, typer.Option("--repo", help="The git repository (work tree) to score.")] = Path(
        "."
    ),
    commit: Annotated[
        list[str] | None,
        typer.Option("--commit", help="A commit to score (repeatable). Default: HEAD.", show_default=False),
    ] = None,
    range_: Annotated[
        str | None,
        typer.Option(
            "--range", help="Score every commit of BASE..HEAD (a pull request's commits).", show_default=False
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Probability at which a commit is flagged risky. Default: the model's decision threshold.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format", help="Output: table | json | markdown | sarif | github.", show_default="table"
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document: the same as --format json.")
    ] = False,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit with code 10 when some commit is in the high band (high), in the medium or high band "
            "(medium), or flagged risky at --threshold (any).",
            show_default=False,
        ),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir",
            help="A model folder made by `defectops models export` (no MLflow needed).",
            show_default=False,
        ),
    ] = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model-name",
            help="A registered model; its --model-alias version is used.",
            show_default="without --model-dir: the repository's model (the name `run` registered it under)",
        ),
    ] = None,
    model_alias: Annotated[str, typer.Option("--model-alias", help="Registry alias to load.")] = "champion",
    starter: Annotated[
        bool,
        typer.Option(
            "--starter",
            help="Score with the cross-project starter shipped with defectops (no registry, no MLflow): "
            "for a repository without a model of its own yet; fitted to the repository's mined history.",
        ),
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Import this miner state file (from `defectops state export`) first.",
            show_default=False,
        ),
    ] = None,
    state_from: Annotated[
        str | None,
        typer.Option(
            "--state-from",
            help="Import the miner state from an artifact store: <store>/state/<name>, e.g. "
            "s3://bucket/defectops/state/repo.sqlite.",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Artifact store (s3://bucket/prefix or a folder): load the miner state from it (what a "
            "shallow clone needs), write predictions/predictions_<commit>_<time>.csv, append "
            "history/prediction_history_master.csv and metrics/metrics_history.csv, replace "
            "metrics/metrics_current.csv, and save the state advanced to HEAD back (see --save-state).",
            show_default=False,
        ),
    ] = None,
    save_state: Annotated[
        bool,
        typer.Option(
            "--save-state/--no-save-state",
            help="With --store: save the miner state, advanced to HEAD, back to the store. Turn off for "
            "commits that may never reach the main branch (pull requests).",
        ),
    ] = True,
    top_k: Annotated[int, typer.Option("--top-k", help="Reasons shown per commit.")] = 3,
    sarif_file: Annotated[
        Path | None, typer.Option("--sarif-file", help="Also write SARIF to this file.", show_default=False)
    ] = None,
    sarif_min_band: Annotated[
        str,
        typer.Option(
            "--sarif-min-band",
            help="Lowest risk band that gets a SARIF result (a code-scanning alert): minimal | low | medium "
            "| high (minimal: below half the base rate; low: below it; medium: from once; high: twice it).",
        ),
    ] = "medium",
    markdown_file: Annotated[
        Path | None,
        typer.Option(
            "--markdown-file", help="Also write the markdown report to this file.", show_default=False
        ),
    ] = None,
) -> None:
    """Score commits for defect risk just in time, explain them, and optionally fail CI on risky ones."""
    from defectops.ci import (
        FailOn,
        PredictRequest,
        RiskFoundError,
        StoreSession,
        parse_choice,
        revisions,
        run_predict,
    )
    from defectops.config import Workspace
    from defectops.git import GitRepo
    from defectops.training import RiskBand

    fmt = _output_format(output_format, json_output)
    fail = None if fail_on is None else parse_choice(FailOn, fail_on, "--fail-on")
    min_band = parse_choice(RiskBand, sarif_min_band, "--sarif-min-band")
    request = PredictRequest(
        repo=repo,
        commits=tuple(commit or ()),
        range_=range_,
        threshold=threshold,
        top_k=top_k,
        fail_on=fail,
        state_file=state,
        state_url=state_from,
    )
    if request.top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {top_k}")
    for option, path in (("--sarif-file", sarif_file), ("--markdown-file", markdown_file)):
        if path is not None:
            _check_writable(path, option)
    # The repository and the revisions first (git only): an unknown revision was reported after a note about
    # the starter model, and after an empty workspace folder had been created wherever predict ran.
    revisions(GitRepo.open(repo), request.commits, request.range_)
    settings = app_settings()
    quiet_mlflow()
    workspace = Workspace.from_settings(settings).ensure()
    session = None if store is None else StoreSession.open(store, settings.storage)
    stored = None
    if session is not None and model_dir is None and model_name is None and not starter:
        # The seed's layout: the repository's models under pre_trained_defect_models/ in the store (#17).
        stored = _from_store(session, repository_model(settings, repo), workspace)
    source = stored or _model_for(settings, repo, model_dir, model_name, model_alias, starter)
    if stored is not None:
        from defectops.pipeline import block_model_name

        _note(f"model {stored.name} v{stored.version} from {stored.origin}")
        blocks = _from_store(session, block_model_name(stored.name), workspace)
    elif model_dir is None and not starter:
        blocks = _block_model_for(settings, source, model_alias)
    else:
        blocks = None
    report = run_predict(
        request, source, workspace, storage=settings.storage, note=_note, store=session, block_model=blocks
    )
    now = datetime.now(UTC)
    information_uri = settings.report.information_uri
    _emit(report, fmt, information_uri, settings.github.step_summary, min_band)
    if sarif_file is not None:
        _write(sarif_file, json.dumps(_sarif(report, information_uri, min_band), indent=2) + "\n")
    if markdown_file is not None:
        from defectops.ci import render_markdown

        _write(markdown_file, render_markdown(report))
    if session is not None:
        written = session.write(report, now=now)
        _note(
            f"wrote {len(written.prediction_keys)} prediction file(s), {written.history_rows} history row(s) "
            f"and {written.metrics_rows} metrics row(s) to {session.url}"
        )
        if save_state:
            session.save_state(repo, workspace, _note)
            session.save_blocks(_note)
    failing = report.failing()
    if failing and fail is not None:
        shas = ", ".join(f"{c.short_sha} ({c.scored.probability:.3f})" for c in failing)
        raise RiskFoundError(
            f"{len(failing)} commit(s) reached --fail-on {fail.value}, {report.fail_condition()}: {shas}"
        )


def _output_format(output_format: str | None, json_output: bool) -> OutputFormat:
    """``--format``, or JSON for ``--json`` (the flag every other command prints JSON with); both given must
    agree, since one run prints one report on stdout."""
    from defectops.ci import OutputFormat, parse_choice

    fmt = (
        OutputFormat.TABLE if output_format is None else parse_choice(OutputFormat, output_format, "--format")
    )
    if json_output and output_format is not None and fmt is not OutputFormat.JSON:
        raise InputError(
            f"--json and --format {fmt.value} ask for two outputs on stdout: give one "
            "(--json is --format json; --sarif-file and --markdown-file write the others to files)"
        )
    return OutputFormat.JSON if json_output else fmt


def _note(message: str) -> None:
    """A progress note on stderr (escaped: paths may contain Rich markup characters such as ``[``)."""
    from rich.markup import escape

    stderr.print(f"[dim]{escape(message)}[/]", highlight=False)


def _sarif(report: PredictionReport, information_uri: str | None, min_band: RiskBand) -> dict[str, Any]:
    from defectops.ci import DEFAULT_INFORMATION_URI, render_sarif

    return render_sarif(report, information_uri=information_uri or DEFAULT_INFORMATION_URI, min_band=min_band)


def _check_writable(path: Path, option: str) -> None:
    """InputError, before anything is scored or stored, when ``path`` evidently cannot be written.

    Why first: the files are written after the report is printed and before ``--store`` is, so a bad path
    used to end the run with exit 2 after the table had shown the predictions, and they never reached the
    store. A CI job is better served by a run that does nothing and says why at once than by a half-done one.
    Nothing is created here (no empty file is left behind by a run that fails later); a failure this cannot
    foresee (a full disk) is still reported by :func:`_write`.
    """
    if path.is_dir():
        raise InputError(f"{option}: cannot write {path}: it is a folder")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the nearest ancestor that exists; _write creates the folders below it
    if not folder.is_dir():
        raise InputError(f"{option}: cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{option}: cannot write {path}: permission denied")


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _model_for(
    settings: Settings, repo: Path, model_dir: Path | None, model_name: str | None, alias: str, starter: bool
) -> ModelSource:
    """The model named by the options; with none named, the repository's champion in the workspace, or the
    cross-project starter when the workspace's own registry has none yet (a new repository's first CI run).

    The fallback is for the embedded registry only: with ``MLFLOW_TRACKING_URI`` set, a missing model is an
    error, since a CI job whose server lost its model must not quietly score with another one. It stands in
    for the champion only: an alias asked for by name (``--model-alias challenger``) that is missing is an
    error.
    """
    from defectops.ci import resolve_model
    from defectops.errors import NotFoundError

    implicit = model_dir is None and model_name is None and not starter
    if implicit:
        model_name = repository_model(settings, repo)
    try:
        return resolve_model(
            model_dir=model_dir, model_name=model_name, alias=alias, settings=settings, starter=starter
        )
    except NotFoundError:
        from defectops.registry import CHAMPION

        if not implicit or alias != CHAMPION or settings.tracking.tracking_uri is not None:
            raise
        _note(
            f"no model of this repository ({model_name}) in the workspace yet: the CROSS-PROJECT starter "
            "scores until `defectops run` trains one (--model-name or --model-dir name a model instead)"
        )
        return resolve_model(model_dir=None, model_name=None, alias=alias, settings=settings, starter=True)


def _publish(url: str, name: str, alias: str, out: Path, settings: Settings) -> None:
    """Copy the exported model, and the block-level model beside it if registered, to the store."""
    import tempfile

    from defectops.ci import export_model, publish_model
    from defectops.errors import NotFoundError
    from defectops.pipeline import block_model_name
    from defectops.storage import ArtifactStore

    artifacts = ArtifactStore.from_url(url, endpoint_url=settings.storage.endpoint_url)
    keys = publish_model(artifacts, out, name)
    _note(f"copied {name} to {artifacts.url} ({len(keys)} files under pre_trained_defect_models/{name}/)")
    blocks = block_model_name(name)
    with tempfile.TemporaryDirectory(prefix="defectops-export-") as tmp:
        try:
            export_model(
                blocks, alias=alias, out=Path(tmp) / "blocks", now=datetime.now(UTC), settings=settings
            )
        except NotFoundError:
            return
        keys = publish_model(artifacts, Path(tmp) / "blocks", blocks)
    _note(f"copied {blocks} to {artifacts.url} ({len(keys)} files under pre_trained_defect_models/{blocks}/)")


def _from_store(session: Any, name: str, workspace: Any) -> ModelSource | None:
    """The model stored as ``name`` under pre_trained_defect_models/ in the store, or None."""
    import shutil

    from defectops.ci import fetch_model

    target = workspace.root / "store-models" / name  # replaced by every run: the store is the truth
    shutil.rmtree(target, ignore_errors=True)
    return fetch_model(session.store, name, target)


def _block_model_for(settings: Settings, source: ModelSource, alias: str) -> ModelSource | None:
    """The block-level model registered beside the commit-level one (``<name>-blocks``, #17), if any."""
    from defectops.ci import resolve_model
    from defectops.errors import NotFoundError
    from defectops.pipeline import block_model_name

    if source.cross_project:
        return None
    name = block_model_name(source.name)
    try:
        return resolve_model(model_dir=None, model_name=name, alias=alias, settings=settings)
    except NotFoundError:
        _note_unscored_blocks(settings, name, alias)
        return None


def _note_unscored_blocks(settings: Settings, name: str, alias: str) -> None:
    """Say why the Terraform blocks go unscored when the block model is registered without ``alias`` (its
    gate refused every version): predict was silent, and only run's summary had said so."""
    from defectops.errors import DefectOpsError
    from defectops.registry import ModelRegistry

    try:
        aliases = ModelRegistry.from_settings(settings).aliases(name)
    except DefectOpsError:  # not registered (a repository without Terraform): nothing to say
        return
    if alias not in aliases:
        _note(
            f"Terraform blocks not scored: {name} has no {alias!r} version (its gate refused it; "
            f"defectops models list shows its versions)"
        )


def _emit(
    report: PredictionReport,
    fmt: OutputFormat,
    information_uri: str | None,
    step_summary: str | None,
    min_band: RiskBand,
) -> None:
    from defectops.ci import OutputFormat

    if fmt is OutputFormat.JSON:
        from defectops.ci import render_json

        print_json(render_json(report))
    elif fmt is OutputFormat.MARKDOWN:
        from defectops.ci import render_markdown

        sys.stdout.write(render_markdown(report))
    elif fmt is OutputFormat.SARIF:
        sys.stdout.write(json.dumps(_sarif(report, information_uri, min_band), indent=2) + "\n")
    elif fmt is OutputFormat.GITHUB:
        from defectops.ci import render_github

        sys.stdout.write("".join(line + "\n" for line in render_github(report)))
        if step_summary and step_summary.strip():
            _append_summary(report, Path(step_summary.strip()))
        else:
            _note("GITHUB_STEP_SUMMARY is not set: no job summary written")
    else:
        from defectops.ci import render_table

        print_table(render_table(report))
        for message in report.notes:
            stdout.print(message, highlight=False)
        if not report.commits:
            stdout.print("No commit to score.", highlight=False)
    sys.stdout.flush()


def _append_summary(report: PredictionReport, path: Path) -> None:
    """The job summary is an extra beside the annotations: a path that cannot be written (a folder, a missing
    or read-only folder) is one warning line, and the run goes on to the store, ``--fail-on`` and its exit
    code, which the prediction decides. It was an internal error (exit 70) that lost both."""
    from rich.markup import escape

    from defectops.ci import append_summary

    try:
        append_summary(report, path)
    except OSError as exc:
        stderr.print(
            f"[yellow]warning:[/] {escape(f'cannot write the job summary to {path} (GITHUB_STEP_SUMMARY): ')}"
            f"{escape(exc.strerror or str(exc))}; the annotations are unaffected",
            highlight=False,
        )


def models_export(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to create (must not exist or be empty).", show_default=False)
    ],
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model-name",
            help="The registered model to export.",
            show_default="the only one with a champion",
        ),
    ] = None,
    alias: Annotated[
        str, typer.Option("--alias", help="Which version: the one this alias points to.")
    ] = "champion",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Also copy it to this artifact store (s3://bucket/prefix or a folder) under "
            "pre_trained_defect_models/<name>/, with the block-level model <name>-blocks when there is one; "
            "`predict --store` loads them from there.",
        ),
    ] = None,
) -> None:
    """Write a registered model as a folder that `defectops predict --model-dir` loads without MLflow."""
    from defectops.ci import export_model
    from defectops.training import RiskBands

    settings = app_settings()
    quiet_mlflow()
    name = model_name if model_name is not None else repository_model(settings, None, "--model-name")
    result = export_model(name, alias=alias, out=out, now=datetime.now(UTC), settings=settings)
    if store is not None:
        _publish(store, name, alias, out, settings)
    if json_output:
        print_json({"out": str(result.out), **result.metadata})
        return
    meta = result.metadata
    stdout.print(
        f"exported {meta['name']} v{meta['version']} ({alias}) to {result.out}: "
        f"threshold {meta['threshold']:.3f}, {RiskBands.from_dict(meta['bands']).describe()}",
        highlight=False,
    )
