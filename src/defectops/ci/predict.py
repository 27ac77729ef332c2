"""Score commits just in time for CI: choose the commits, make sure the miner has their history, explain them.

The order of work is chosen so that mistakes cost nothing: revisions and the model are checked before any
history is mined or downloaded. The miner state comes, in order of preference, from ``--state FILE`` /
``--state-from URL`` (exported by a trusted job with ``defectops state export``), from the artifact store of
``--store`` (``state/miner.sqlite``, saved back after scoring: :mod:`defectops.ci.store`) - the ways a
shallow clone gets correct history metrics - from the workspace, or, on a complete clone without one, from
mining the history once (the miner is fast, and the workspace keeps the state for the next run).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defectops.ci.changes import CommitInfo, read_commit_infos
from defectops.ci.model_source import ModelSource
from defectops.ci.report import CommitPrediction, FailOn, PredictionReport
from defectops.ci.store import StoreSession
from defectops.config import StorageSettings, Workspace
from defectops.data import DIFF, MESSAGE, METRIC_NAMES, PATHS, RICH_FEATURES, normalise_frame
from defectops.errors import InputError, ModelError, StateError
from defectops.git import GitRepo
from defectops.mining import MineOptions, Miner
from defectops.training import check_finite, score

Note = Callable[[str], None]


@dataclass(frozen=True)
class PredictRequest:
    """What to score and how (the options of ``defectops predict`` minus model and output)."""

    repo: Path
    commits: tuple[str, ...] = ()
    range_: str | None = None
    threshold: float | None = None
    top_k: int = 3
    fail_on: FailOn | None = None
    state_file: Path | None = None
    state_url: str | None = None


def revisions(repo: GitRepo, commits: Sequence[str], range_: str | None) -> list[str]:
    """The revisions to score, checked: unknown commits and empty ranges are one-line errors here."""
    if commits and range_:
        raise InputError("give either --commit or --range, not both")
    if range_ is not None:
        text = range_.strip()
        if "..." in text:
            raise InputError(f"--range {range_!r}: use BASE..HEAD (two dots)")
        base, sep, tip = text.partition("..")
        if not sep or not base or not tip:
            raise InputError(f"--range {range_!r}: expected BASE..HEAD")
        base_sha, tip_sha = repo.resolve(base), repo.resolve(tip)
        count = int(repo.run("rev-list", "--count", tip_sha, f"^{base_sha}").decode().strip() or "0")
        if count == 0:
            raise InputError(f"--range {range_}: no commits between {base} and {tip}")
        return [f"{base_sha}..{tip_sha}"]
    wanted = list(commits) or ["HEAD"]
    return list(dict.fromkeys(repo.resolve(rev) for rev in wanted))


def state_location(url: str) -> tuple[str, str]:
    """Split ``<store>/state/<name>`` into the artifact store URL and the state name."""
    head, sep, name = url.rstrip("/").rpartition("/state/")
    if not sep or not head or not name:
        raise InputError(
            f"--state-from {url!r}: expected <artifact store>/state/<name>, "
            "e.g. s3://bucket/defectops/state/myrepo.sqlite"
        )
    return head, name


def import_state(
    miner: Miner,
    *,
    state_file: Path | None,
    state_url: str | None,
    workspace: Workspace,
    storage: StorageSettings | None = None,
) -> str | None:
    """Install a state file or a state from the artifact store as the repository's miner state."""
    if state_file is not None and state_url is not None:
        raise InputError("give either --state or --state-from, not both")
    if state_file is not None:
        info = miner.store.import_from(state_file, miner.repo)
        return f"imported miner state {state_file} ({info.commits} commits up to {info.head[:12]})"
    if state_url is not None:
        from defectops.storage import ArtifactStore

        root, name = state_location(state_url)
        store = ArtifactStore.from_url(root, endpoint_url=storage.endpoint_url if storage else None)
        with tempfile.TemporaryDirectory(prefix="state-", dir=workspace.ensure().root) as tmp:
            local = store.get_state(name, Path(tmp) / "state.sqlite")
            info = miner.store.import_from(local, miner.repo)
        return f"imported miner state {state_url} ({info.commits} commits up to {info.head[:12]})"
    return None


def _targets(repo: GitRepo, revs: Sequence[str]) -> list[str]:
    """The commit shas ``revs`` (shas or one ``BASE..TIP`` of shas) stand for."""
    shas: list[str] = []
    for rev in revs:
        if ".." in rev:
            base, _, tip = rev.partition("..")
            shas += repo.run("rev-list", tip, f"^{base}").decode().split()
        else:
            shas.append(rev)
    return shas


def _in_dataset(miner: Miner, shas: Sequence[str]) -> bool:
    """Whether the workspace dataset has the metrics of every one of ``shas``."""
    if not miner.dataset_path.exists():
        return False
    from defectops.data import read_table

    stored = set(read_table(miner.dataset_path)["sha"].astype(str))
    return all(sha in stored for sha in shas)


def ensure_state(
    miner: Miner, repo: GitRepo, revs: Sequence[str], note: Note, *, store: StoreSession | None = None
) -> None:
    """A shallow clone needs an imported state; a complete clone without one is mined once.

    An imported state that already includes a commit to score (exported after it) cannot score it: the state
    holds history, not the metrics of its commits, which only the exporting workspace's dataset has. A
    complete clone is then mined instead; a shallow one is a clear error.
    """
    info = miner.store.info()
    if info is not None:
        present = repo.object_exists(info.head)
        diverged = (
            present and not repo.is_ancestor(info.head, "HEAD") and not repo.is_ancestor("HEAD", info.head)
        )
        if not present or diverged:
            if repo.is_shallow():
                return  # scored from what the clone has; each commit says what history is missing
            note(
                f"the miner state's head {info.head[:12]} is not in the history of HEAD (a force-push, or a "
                "state of another branch): mining the history instead, for exact metrics"
            )
            miner.mine()
            return
        covered = [sha for sha in _targets(repo, revs) if repo.is_ancestor(sha, info.head)]
        if not covered or _in_dataset(miner, covered):
            return
        if repo.is_shallow():
            if store is not None and store.loaded_head == info.head:
                raise StateError(
                    f"the miner state in {store.url} (up to {info.head[:12]}) already includes "
                    f"{covered[0][:12]} (it was scored and saved before; its predictions are in the store), "
                    "so this shallow clone cannot score it again; clone the full history (fetch-depth: 0) "
                    "to rescore it"
                )
            raise StateError(
                f"the miner state (up to {info.head[:12]}) already includes {covered[0][:12]}, so it cannot "
                "score it; export the state from an older commit (e.g. the base branch before the push), or "
                "clone the full history (fetch-depth: 0)"
            )
        note(
            f"the miner state (up to {info.head[:12]}) already includes {covered[0][:12]}: "
            "mining the history instead"
        )
        miner.store.delete()
        miner.mine()
        return
    if repo.is_shallow():
        if store is not None:
            raise StateError(
                f"{repo.path} is a shallow clone and the store {store.url} has no miner state yet: seed it "
                f"once from a complete clone (defectops state export --repo PATH --store {store.url}), or "
                "clone the full history (fetch-depth: 0)"
            )
        raise StateError(
            f"{repo.path} is a shallow clone and there is no miner state for it: import one exported by a "
            "trusted job (--state FILE, --state-from URL or --store URL), or clone the full history "
            "(fetch-depth: 0)"
        )
    note(f"no miner state for {repo.path} yet: mining its history once")
    miner.mine()


def _as_float(values: pd.Series) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(pd.to_numeric(values.astype("Float64")).to_numpy(dtype="float64", na_value=np.nan))


def feature_frame(
    mined: pd.DataFrame, infos: Mapping[str, CommitInfo], columns: Sequence[str], repo: GitRepo
) -> pd.DataFrame:
    """Model inputs for mined (non-merge) commits: the metrics as floats, ``fix`` as 0/1, the message, the
    changed paths one per line, and code metrics when the model was trained with them."""
    frame = pd.DataFrame(index=pd.RangeIndex(len(mined)))
    metrics = normalise_frame(mined.loc[:, list(METRIC_NAMES)].reset_index(drop=True))  # the feature contract
    for name in METRIC_NAMES:
        frame[name] = metrics[name].to_numpy(dtype=np.float64)
    # The richer features (#20): mined with the metrics from the same state, for a model that chose them.
    rich = [name for name in RICH_FEATURES if name in mined.columns]
    if rich:
        richer = normalise_frame(mined.loc[:, rich].reset_index(drop=True))
        for name in rich:
            frame[name] = richer[name].to_numpy(dtype=np.float64)
    frame[MESSAGE] = mined["message"].astype(str).to_numpy()
    frame[PATHS] = ["\n".join(f.path for f in infos[sha].files) for sha in mined["sha"]]
    if DIFF in columns:  # the hybrid model: each commit's changed lines, bounded
        from defectops.git import changed_lines

        texts = changed_lines(repo, mined["sha"].astype(str).tolist())
        frame[DIFF] = [texts.get(str(sha), "") for sha in mined["sha"]]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        from defectops.mining import COMMIT_COLUMNS as CODE_COLUMNS

        if any(c in CODE_COLUMNS for c in missing):
            from defectops.mining import add_code_metrics

            code = add_code_metrics(repo, mined.reset_index(drop=True))
            for name in CODE_COLUMNS:
                frame[name] = _as_float(code[name])
        missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ModelError(
            f"the model needs input column(s) {', '.join(missing)} that cannot be computed from a repository"
        )
    check_finite(frame, [c for c in columns if c in METRIC_NAMES or c in RICH_FEATURES])
    return frame


def _adapted(model: ModelSource, miner: Miner, note: Note) -> ModelSource:
    """The cross-project starter fitted to the repository's mined history (features only, no labels)."""
    adapt = getattr(model.model, "adapt", None)
    if adapt is None or getattr(model.model, "adapted", True):
        return model
    if not miner.dataset_path.exists():
        raise ModelError(
            "the cross-project starter needs the repository's mined history to fit its per-repository "
            "transformation: run `defectops mine` first or clone the full history (fetch-depth: 0)"
        )
    from defectops.data import read_table

    mined = read_table(miner.dataset_path)
    history = normalise_frame(mined.loc[~mined["is_merge"].astype(bool), list(METRIC_NAMES)])
    history = history.loc[np.isfinite(history.to_numpy(dtype=np.float64)).all(axis=1)]
    note(
        f"scoring with the CROSS-PROJECT starter (trained on other projects), fitted to {len(history)} "
        "mined commits of this repository"
    )
    return dataclasses.replace(model, model=adapt(history))


def run_predict(
    request: PredictRequest,
    model: ModelSource,
    workspace: Workspace,
    *,
    storage: StorageSettings | None = None,
    note: Note = lambda _message: None,
    store: StoreSession | None = None,
    block_model: ModelSource | None = None,
) -> PredictionReport:
    """Score and explain the requested commits; merge commits are listed but not scored. With
    ``block_model`` each commit's added and changed Terraform blocks are scored too (:mod:`.blocks`)."""
    if request.top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {request.top_k}")
    threshold = model.threshold if request.threshold is None else request.threshold
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold must be within [0, 1], got {threshold}")
    repo = GitRepo.open(request.repo)
    revs = revisions(repo, request.commits, request.range_)
    miner = Miner(repo, workspace, MineOptions(rev="HEAD", allow_shallow=True))
    imported = import_state(
        miner,
        state_file=request.state_file,
        state_url=request.state_url,
        workspace=workspace,
        storage=storage,
    )
    if store is not None:
        imported = store.load_state(miner, workspace) if imported is None else store.keep_version(imported)
    if imported:
        note(imported)
    ensure_state(miner, repo, revs, note, store=store)
    model = _adapted(model, miner, note)
    jit = miner.score_jit(revs)
    mined = jit.metrics
    is_merge = mined["is_merge"].astype(bool)
    merges = tuple(str(s) for s in mined.loc[is_merge, "sha"])
    scored = mined.loc[~is_merge].reset_index(drop=True)
    notes: list[str] = []
    if merges:
        notes.append(
            f"{len(merges)} merge commit(s) not scored "
            "(their changes are scored in the commits that made them)"
        )
    predictions: list[CommitPrediction] = []
    if len(scored):
        shas = [str(s) for s in scored["sha"]]
        infos = read_commit_infos(repo, shas)
        features = feature_frame(scored, infos, model.model.input_columns(), repo)
        results = score(
            model.model,
            features,
            model_name=model.name,
            model_version=model.version,
            threshold=threshold,
            bands=model.bands,
            top_k=request.top_k,
            shas=shas,
        )
        names = list(model.model.features_)
        for i, (sha, result) in enumerate(zip(shas, results, strict=True)):
            row = features.iloc[i]
            values = {name: float(row[name]) for name in names if name in features.columns}
            noted = (jit.notes[sha],) if sha in jit.notes else ()
            mined_row = {str(k): _plain(v) for k, v in scored.iloc[i].items()}
            predictions.append(
                CommitPrediction(
                    scored=result, info=infos[sha], features=values, notes=noted, metrics=mined_row
                )
            )
    if block_model is not None and predictions:
        from defectops.ci.blocks import score_blocks

        cache = workspace.dataset_file(repo.repo_id(), "blocks")
        loaded = store.load_blocks(cache) if store is not None else None
        if loaded:
            note(loaded)
        found = score_blocks(
            repo, block_model, [p.sha for p in predictions], cache, top_k=request.top_k, note=note
        )
        predictions = [dataclasses.replace(p, blocks=found.get(p.sha, ())) for p in predictions]
    return PredictionReport(
        repo=str(repo.path),
        revisions=tuple(request.commits or ([request.range_] if request.range_ else ["HEAD"])),
        model=model,
        threshold=threshold,
        commits=tuple(predictions),
        skipped_merges=merges,
        fail_on=request.fail_on,
        notes=tuple(notes),
    )


def _plain(value: Any) -> Any:
    """A mined cell as a plain Python value (numpy scalars and pandas NA made JSON- and CSV-friendly)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def prediction_rows(report: PredictionReport, *, now: datetime) -> list[tuple[str, pd.DataFrame]]:
    """One table per scored commit, as written to ``predictions/predictions_<commit>_<time>.csv``."""
    stamp = now.astimezone(UTC).isoformat()
    tables = []
    for commit in report.commits:
        row: dict[str, Any] = {
            "commit": commit.sha,
            "repo": report.repo,
            "predicted_at": stamp,
            "model_name": commit.scored.model_name,
            "model_version": commit.scored.model_version,
            "probability": commit.scored.probability,
            "risk": int(commit.scored.risk),
            "risk_band": commit.band.value,
            "base_rate": commit.scored.base_rate,
            "threshold": commit.scored.threshold,
            "reasons": json.dumps([r.as_dict() for r in commit.scored.reasons], sort_keys=True),
            **commit.features,
        }
        tables.append((commit.sha, pd.DataFrame([row])))
    return tables


def store_predictions(
    url: str, report: PredictionReport, *, now: datetime, storage: StorageSettings | None = None
) -> list[str]:
    """Write each scored commit's predictions file, history and metrics rows; return the prediction keys."""
    return list(StoreSession.open(url, storage).write(report, now=now).prediction_keys)
