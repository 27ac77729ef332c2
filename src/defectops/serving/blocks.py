"""Terraform block risk in ``POST /v1/commits/score`` (#17): the changed blocks of each scored commit, scored
by the repository's block-level model (``<model name>-blocks``) as ``defectops predict`` scores them.

The scoring is :func:`defectops.ci.score_blocks` and the records are its
:class:`~defectops.ci.BlockPrediction` (the same block table in the workspace, the same features, reasons
and bands), so the API and CI cannot disagree about a block. The block model is the registry's champion of
``<model name>-blocks``, looked up again at most every ``poll_seconds`` (``heal`` may promote a new one) and
loaded once per version; without one (a repository that is not Terraform, or whose block model never passed
its gate) the answer is the commit-level one alone, as before.

The registry being unreachable (the MLflow server stopped) does not cost the commit-level answer, which
comes from the champion already loaded: the last look-up's result stands (the block model in use, or none)
and the registry is asked again after :data:`FAILED_LOOKUP_RETRY_SECONDS`; before any look-up succeeded the
commits are answered without blocks and ``block_notes`` says why. A block champion that is found but does not
load is still a 503.

Every block answered is logged beside the commit predictions, in the same group commit (nothing is
answered before it is durable): model ``<name>-blocks``, the block's features as inputs plus its ``path``,
``address`` and ``change`` (:func:`defectops.ci.block_record`, which the event workers log blocks with too).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from defectops.ci import ModelSource, block_record, resolve_model, score_blocks
from defectops.config import Settings, Workspace
from defectops.errors import ModelError, NotFoundError
from defectops.mining import block_model_name
from defectops.predlog import PredictionRecord
from defectops.registry import CHAMPION, ModelRegistry

#: After a failed look-up of the block champion the registry is asked again after this many seconds (at least
#: ``poll_seconds``), so requests do not each wait for MLflow's retries against a server that is down.
FAILED_LOOKUP_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class ScoredBlocks:
    """The blocks of one request: per commit sha their answers (JSON documents), and the log rows."""

    #: Empty when no block model could be looked up: the answer then carries no "blocks" at all.
    documents: dict[str, list[dict[str, Any]]]
    rows: list[PredictionRecord]
    #: Why some blocks were not scored (a shallow clone, commits outside HEAD's history), as predict says.
    notes: list[str]


class BlockScorer:
    """The block champion of ``<model_name>-blocks`` and the scoring of a repository's commits with it."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        model_name: str,
        *,
        clock: Callable[[], datetime],
        poll_seconds: float,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.name = block_model_name(model_name)
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.workspace = Workspace.from_settings(settings)
        self._lock = threading.Lock()  # one block table writer per service process
        self._model: ModelSource | None = None
        self._checked: datetime | None = None
        self._known = False  # a look-up has succeeded: self._model is the registry's answer, not a guess
        self._wait = poll_seconds
        #: Why blocks may be missing from answers now (the registry could not be read before any look-up
        #: succeeded); None when the block model, or its absence, is known.
        self.problem: str | None = None

    def model(self) -> ModelSource | None:
        """The block champion now (None without one); the alias is read again after ``poll_seconds``."""
        now = self.clock()
        if self._checked is not None and (now - self._checked).total_seconds() < self._wait:
            return self._model
        try:
            version = self.registry.alias_version(self.name, CHAMPION)
        except NotFoundError:
            version = None
        except ModelError as exc:
            # The registry is unreachable: keep the last answer (the model in use, or none) and ask again
            # later; never fail the commit-level answer, whose champion is already loaded.
            self._checked = now
            self._wait = max(self.poll_seconds, FAILED_LOOKUP_RETRY_SECONDS)
            if not self._known:
                self.problem = f"Terraform blocks not scored: the block model could not be looked up ({exc})"
            return self._model
        self._wait = self.poll_seconds
        if version is None:
            self._model = None
        elif self._model is None or self._model.version != str(version):
            self._model = resolve_model(
                model_dir=None, model_name=self.name, alias=CHAMPION, settings=self.settings
            )
        self._checked = now
        self._known = True
        self.problem = None
        return self._model

    def score(
        self,
        path: Path,
        shas: Sequence[str],
        repo_id: str,
        *,
        top_k: int,
        ids: Callable[[int], list[str]],
        now: datetime,
    ) -> ScoredBlocks | None:
        """Score the added and changed blocks of ``shas`` (None when there is no block model); blocking."""
        from defectops.git import GitRepo

        with self._lock:
            model = self.model()
            if model is None:
                # Unknown whether the commits have scored blocks: no "blocks" in the answer, a note instead.
                return None if self.problem is None else ScoredBlocks({}, [], [self.problem])
            repo = GitRepo.open(path)
            cache = self.workspace.dataset_file(repo.repo_id(), "blocks")
            notes: list[str] = []
            found = score_blocks(repo, model, list(shas), cache, top_k=top_k, note=notes.append)
        flat = [(sha, block) for sha in shas for block in found.get(sha, ())]
        prediction_ids = ids(len(flat))
        documents: dict[str, list[dict[str, Any]]] = {sha: [] for sha in shas}
        rows: list[PredictionRecord] = []
        for prediction_id, (sha, block) in zip(prediction_ids, flat, strict=True):
            documents[sha].append({"prediction_id": prediction_id, **block.as_dict()})
            rows.append(block_record(prediction_id, block, repo=repo_id, sha=sha, now=now))
        return ScoredBlocks(documents, rows, notes)
