"""Score the Terraform blocks of the commits ``defectops predict`` scores, with the block-level model (#17).

The block features need the repository's history (each block's age, past changes and fixes, its authors), so
they are read from the workspace's block table (``datasets/<repo_id>/blocks.parquet``, written by ``defectops
run`` or by an earlier predict): read back when it was mined at HEAD, continued with the new commits when
HEAD only adds newer ones (a push on top), else mined once from the complete history; kept there. A shallow
clone has no such history of its own: with ``predict --store`` it gets the table the store keeps
(``state/blocks*``, saved back after scoring) and continues it over the commits it has; without one, or when
the clone does not reach back to the table's head, its blocks are not scored, and a note says why. Removed
blocks are not scored (the model does not learn from them: SZZ cannot link a block whose lines are gone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from defectops.ci.block_report import BlockPrediction
from defectops.ci.model_source import ModelSource
from defectops.git import GitRepo
from defectops.mining import cached_block_features, continued_block_features
from defectops.training import score


def score_blocks(
    repo: GitRepo,
    model: ModelSource,
    shas: Sequence[str],
    cache: Path,
    *,
    top_k: int,
    note: Callable[[str], None],
) -> dict[str, tuple[BlockPrediction, ...]]:
    """Per commit of ``shas``: its added and changed blocks, riskiest first."""
    if not shas:
        return {}
    head = repo.resolve("HEAD")
    # A shallow clone only continues a kept table: mining its truncated history would be silently wrong.
    mine = continued_block_features if repo.is_shallow() else cached_block_features
    kept = mine(repo, cache, head)
    if kept is None:
        note(
            "Terraform blocks not scored: their history features need the complete history "
            "(fetch-depth: 0) or, with --store, a block table in the store whose head this clone reaches"
        )
        return {}
    inside = [sha for sha in shas if repo.is_ancestor(sha, head)]
    if len(inside) < len(shas):
        note(
            f"Terraform blocks not scored for {len(shas) - len(inside)} commit(s) outside the history of HEAD"
        )
    rows = kept.loc[kept["sha"].isin(inside) & (kept["change"] != "removed")].reset_index(drop=True)
    if not len(rows):
        return {}
    columns = model.model.input_columns()
    inputs = rows.loc[:, columns].astype("float64")
    results = score(
        model.model,
        inputs,
        model_name=model.name,
        model_version=model.version,
        threshold=model.threshold,
        bands=model.bands,
        top_k=top_k,
        shas=rows["sha"].tolist(),
    )
    found: dict[str, list[BlockPrediction]] = {}
    for row, values, result in zip(rows.to_dict("records"), inputs.to_dict("records"), results, strict=True):
        found.setdefault(str(row["sha"]), []).append(
            BlockPrediction(
                path=str(row["path"]),
                address=str(row["address"]),
                change=str(row["change"]),
                first_line=int(row["first_line"]),
                last_line=int(row["last_line"]),
                scored=result,
                inputs={str(k): float(v) for k, v in values.items()},
            )
        )
    return {
        sha: tuple(sorted(items, key=lambda b: (-b.scored.probability, b.path, b.first_line)))
        for sha, items in found.items()
    }
