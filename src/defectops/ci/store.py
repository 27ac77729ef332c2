"""``predict --store``: the seed's S3 layout kept in one step, and the miner state a shallow clone needs.

Why: a CI job is a fresh machine with (often) a shallow clone. Its history context (who changed which file
when: the process metrics ndev, age, nuc, exp, rexp, sexp) cannot come from the clone, so it comes from the
store, as the miner state ``state/miner.sqlite`` a previous job saved; after scoring, the state is advanced
to the clone's HEAD and saved back, so the next job starts where this one ended. Alongside, every run leaves
the versioned artifacts of the layout (:mod:`defectops.storage.artifacts`):

* ``predictions/predictions_<commit>_<time>.csv``: one file per scored commit (the model's features spread);
* ``history/prediction_history_master.csv``: the same predictions appended, with fixed columns (features as
  JSON) so that a change of model never breaks the append;
* ``metrics/metrics_history.csv`` and ``metrics_current.csv``: the scored commits' mined rows (all change
  metrics, time, message, changed paths), what ``defectops heal --store`` learns from once labels mature.

The state is saved with a compare-and-swap on the version read when it was loaded: of two jobs racing, the
second does not overwrite the first's state (it says so; the next job advances it).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from defectops.config import StorageSettings, Workspace
from defectops.data import METRIC_NAMES
from defectops.git import GitRepo
from defectops.mining import MineOptions, Miner

if TYPE_CHECKING:
    from defectops.ci.report import PredictionReport
    from defectops.storage import ArtifactStore

Note = Callable[[str], None]

#: Columns of ``metrics/metrics_*.csv`` besides the change metrics (fixed: appends must keep one header).
METRICS_KEYS: tuple[str, ...] = (
    "sha",
    "repo",
    "author_email",
    "author_time",
    "committer_time",
    "is_merge",
    "message",
    "paths",
    "predicted_at",
    "exact",
)
#: Columns of ``history/prediction_history_master.csv``.
HISTORY_COLUMNS: tuple[str, ...] = (
    "commit",
    "repo",
    "predicted_at",
    "model_name",
    "model_version",
    "probability",
    "risk",
    "risk_band",
    "base_rate",
    "threshold",
    "reasons",
    "features",
    "notes",
)


@dataclass(frozen=True, slots=True)
class StoreWrites:
    """What one ``predict --store`` wrote: the prediction files, history rows and metrics rows."""

    prediction_keys: tuple[str, ...]
    history_rows: int
    metrics_rows: int


class StoreSession:
    """One ``predict --store`` run against one artifact store: load the state, write artifacts, save it."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        #: The stored state's version when it was loaded (None: there was none).
        self.version: str | None = None
        self.loaded_head: str | None = None
        #: Where this run's Terraform block table is kept (None: no block model scored).
        self.blocks_cache: Path | None = None

    @classmethod
    def open(cls, url: str, storage: StorageSettings | None) -> StoreSession:
        from defectops.storage import ArtifactStore

        return cls(ArtifactStore.from_url(url, endpoint_url=storage.endpoint_url if storage else None))

    @property
    def url(self) -> str:
        return self.store.url

    def load_state(self, miner: Miner, workspace: Workspace) -> str | None:
        """Install the store's miner state (if it has one) as the repository's; a note, or None."""
        from defectops.storage import STATE_NAME

        self.version = self.store.state_version(STATE_NAME)
        if self.version is None:
            return None
        with tempfile.TemporaryDirectory(prefix="state-", dir=workspace.ensure().root) as tmp:
            local = self.store.get_state(STATE_NAME, Path(tmp) / "state.sqlite")
            info = miner.store.import_from(local, miner.repo)
        self.loaded_head = info.head
        return (
            f"loaded the miner state from {self.url}/state/{STATE_NAME} "
            f"({info.commits} commits up to {info.head[:12]})"
        )

    def load_blocks(self, cache: Path) -> str | None:
        """Install the store's Terraform block table (``state/blocks*``) at ``cache``; a note, or None.
        :meth:`save_blocks` saves the table kept there back after scoring."""
        self.blocks_cache = cache
        if not self.store.exists(_block_key(cache, cache)):
            return None
        for local in _block_files(cache):
            key = _block_key(cache, local)
            if self.store.exists(key):
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(self.store.read_bytes(key))
        return f"loaded the Terraform block table from {self.url}/{_block_key(cache, cache)}"

    def save_blocks(self, note: Note) -> None:
        """Save the block table this run scored with (if any) back to the store, the table last."""
        cache = self.blocks_cache
        if cache is None:
            return
        files = [f for f in _block_files(cache) if f.is_file()]
        if cache not in files:
            return
        for local in sorted(files, key=lambda f: f == cache):  # the table last: its presence means complete
            self.store.write_bytes(_block_key(cache, local), local.read_bytes())
        note(f"saved the Terraform block table to {self.url}/{_block_key(cache, cache)}")

    def keep_version(self, imported: str) -> str:
        """A state came from elsewhere (--state, --state-from): remember the store's version to save over."""
        from defectops.storage import STATE_NAME

        self.version = self.store.state_version(STATE_NAME)
        return imported

    def write(self, report: PredictionReport, *, now: datetime) -> StoreWrites:
        """The per-commit prediction files, then the appended history, then the metrics (history, current)."""
        from defectops.ci.predict import prediction_rows

        keys = tuple(
            self.store.put_predictions(table, commit=sha, time=now).key
            for sha, table in prediction_rows(report, now=now)
        )
        if not report.commits:
            return StoreWrites(keys, 0, 0)
        history = self.store.append_history(history_frame(report, now=now))
        metrics = metrics_frame(report, now=now)
        self.store.write_metrics(metrics)
        return StoreWrites(keys, history, len(metrics))

    def save_state(self, repo_path: Path, workspace: Workspace, note: Note) -> bool:
        """Advance the workspace's miner state to HEAD and save it back (if nobody changed the stored one).

        Only a state whose head is HEAD or one of its ancestors in this clone is advanced: anything else (a
        state of another branch, or one older than this shallow clone reaches) would be saved with history
        it does not have, so it is left as it was, with a note.
        """
        from defectops.storage import STATE_NAME

        repo = GitRepo.open(repo_path)
        miner = Miner(repo, workspace, MineOptions(rev="HEAD", allow_shallow=True))
        info = miner.store.info()
        if info is None:
            note("no miner state to save")
            return False
        head = repo.resolve("HEAD")
        if info.head != head:
            if not repo.object_exists(info.head) or not repo.is_ancestor(info.head, head):
                note(
                    f"miner state not saved to {self.url}: its head {info.head[:12]} is not in this clone's "
                    f"history of HEAD {head[:12]} (fetch deeper, or export a state from a complete clone)"
                )
                return False
            miner.mine()
            info = miner.store.info()
            assert info is not None  # mine() always leaves a state
        if not self.store.put_state_if(miner.store.path, STATE_NAME, self.version):
            note(
                f"miner state not saved: {self.url}/state/{STATE_NAME} changed since it was loaded "
                "(another job saved one); kept theirs"
            )
            return False
        where = f"{self.url}/state/{STATE_NAME}"
        note(f"saved the miner state to {where} ({info.commits} commits up to {head[:12]})")
        return True


def _block_files(cache: Path) -> list[Path]:
    """The block table and its two side files (the head it was mined at, the pass's history)."""
    return [cache, cache.with_suffix(".json"), cache.with_suffix(".state.json")]


def _block_key(cache: Path, local: Path) -> str:
    """``state/blocks.parquet``, ``state/blocks.json``, ``state/blocks.state.json``."""
    return "state/blocks" + local.name.removeprefix(cache.stem)


def history_frame(report: PredictionReport, *, now: datetime) -> pd.DataFrame:
    """One row per scored commit for ``history/prediction_history_master.csv`` (fixed columns)."""
    stamp = now.astimezone(UTC).isoformat()
    rows: list[dict[str, Any]] = []
    for commit in report.commits:
        scored = commit.scored
        rows.append(
            {
                "commit": commit.sha,
                "repo": report.repo,
                "predicted_at": stamp,
                "model_name": scored.model_name,
                "model_version": scored.model_version,
                "probability": scored.probability,
                "risk": int(scored.risk),
                "risk_band": commit.band.value,
                "base_rate": scored.base_rate,
                "threshold": scored.threshold,
                "reasons": json.dumps([r.as_dict() for r in scored.reasons], sort_keys=True),
                "features": json.dumps(commit.features, sort_keys=True),
                "notes": json.dumps(list(commit.notes)),
            }
        )
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def metrics_frame(report: PredictionReport, *, now: datetime) -> pd.DataFrame:
    """The scored commits' mined rows for ``metrics/metrics_*.csv``: every change metric, the times, the
    message and changed paths (what a training table needs), and ``exact`` (0 when the commit's history
    metrics were approximate: the state and the clone did not meet)."""
    stamp = now.astimezone(UTC).isoformat()
    rows: list[dict[str, Any]] = []
    for commit in report.commits:
        mined = commit.metrics
        rows.append(
            {
                "sha": commit.sha,
                "repo": report.repo,
                "author_email": commit.info.author_email,
                "author_time": _iso(mined.get("author_time")),
                "committer_time": _iso(mined.get("committer_time")),
                "is_merge": False,
                "message": str(mined.get("message", "")),
                "paths": "\n".join(f.path for f in commit.info.files),
                "predicted_at": stamp,
                "exact": int(not commit.notes),
                **{name: mined.get(name) for name in METRIC_NAMES},
            }
        )
    return pd.DataFrame(rows, columns=[*METRICS_KEYS, *METRIC_NAMES])


def _iso(value: Any) -> str:
    if value is None or bool(pd.isna(value)):
        return ""
    moment = pd.Timestamp(value)
    return (moment.tz_convert(UTC) if moment.tzinfo is not None else moment).isoformat()
