"""Per-repository transformations that make change metrics comparable across projects (the starter model).

A change that adds 200 lines is large in one project and ordinary in another; a model trained on other
projects can only transfer if each project's metrics are first expressed relative to that project's own
history (Zhang et al., MSR 2014; Kamei et al., EMSE 2016). Both transformations here are fitted on a
repository's mined history, features only: no label is needed, so a repository without any matured label can
be transformed.

* ``rank``: the mid-rank percentile of a value within the repository's history,
  ``p(v) = (#{r < v} + #{r <= v}) / (2 n)``; e.g. with history ``[1, 2, 2, 3]``, ``p(2) = (1 + 3) / 8 = 0.5``,
  ``p(0) = 0``, ``p(2.5) = 0.75``, ``p(9) = 1``. Stored as the distinct values with their cumulative counts.
* ``log-z``: ``z(v) = (log1p(max(v, 0)) - mean) / std`` with the mean and (population) standard deviation of
  ``log1p(max(r, 0))`` over the history (``std = 0`` is replaced by 1); e.g. with history ``[0, e - 1]``
  (logs 0 and 1: mean 0.5, std 0.5), ``z(e - 1) = 1`` and ``z(0) = -1``.

Which one the starter uses was measured by leave-one-project-out (``benchmarks/bench_crossproject.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from defectops.errors import InputError
from defectops.training.models.inputs import FloatArray

TransformKind = Literal["rank", "log-z"]
TRANSFORM_KINDS: tuple[str, ...] = ("rank", "log-z")


@dataclass(frozen=True)
class RepoTransform:
    """One repository's fitted transformation of the features ``features`` (see the module docstring).

    ``rank``: ``values[j]`` are feature j's distinct history values (ascending) and ``counts[j]`` how many
    history values are at most each of them. ``log-z``: ``values[j] = (mean,)``, ``counts[j] = (std,)``.
    """

    kind: TransformKind
    features: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    counts: tuple[tuple[float, ...], ...]
    rows: int

    @classmethod
    def fit(cls, kind: str, numeric: FloatArray, features: Sequence[str]) -> RepoTransform:
        """Fit on a history of ``numeric`` rows (columns in ``features`` order); no labels involved."""
        if kind not in TRANSFORM_KINDS:
            raise InputError(f"unknown transformation {kind!r}: choose one of {', '.join(TRANSFORM_KINDS)}")
        data = np.asarray(numeric, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != len(features):
            raise InputError(f"the history must have {len(features)} columns ({', '.join(features)})")
        if data.shape[0] == 0:
            raise InputError("the history to fit the per-repository transformation on is empty")
        if not np.isfinite(data).all():
            raise InputError("the history holds missing or infinite metric values")
        values: list[tuple[float, ...]] = []
        counts: list[tuple[float, ...]] = []
        for j in range(data.shape[1]):
            column = data[:, j]
            if kind == "rank":
                distinct, occurrences = np.unique(column, return_counts=True)
                values.append(tuple(float(v) for v in distinct))
                counts.append(tuple(float(c) for c in np.cumsum(occurrences)))
            else:
                logged = np.log1p(np.maximum(column, 0.0))
                std = float(logged.std())
                values.append((float(logged.mean()),))
                counts.append((std if std > 0 else 1.0,))
        return cls(kind, tuple(features), tuple(values), tuple(counts), int(data.shape[0]))  # type: ignore[arg-type]

    def apply(self, numeric: FloatArray) -> FloatArray:
        """The transformed features of ``numeric`` rows (columns in :attr:`features` order)."""
        data = np.asarray(numeric, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != len(self.features):
            raise InputError(f"expected {len(self.features)} feature columns ({', '.join(self.features)})")
        out = np.empty_like(data)
        for j in range(data.shape[1]):
            column = data[:, j]
            if self.kind == "rank":
                distinct = np.asarray(self.values[j])
                at_most = np.concatenate([[0.0], np.asarray(self.counts[j])])
                below = at_most[np.searchsorted(distinct, column, side="left")]
                upto = at_most[np.searchsorted(distinct, column, side="right")]
                out[:, j] = (below + upto) / (2.0 * self.rows)
            else:
                mean, std = self.values[j][0], self.counts[j][0]
                out[:, j] = (np.log1p(np.maximum(column, 0.0)) - mean) / std
        return out

    def state(self) -> dict[str, Any]:
        """The JSON-able fitted state (as saved in ``model.json``)."""
        return {
            "kind": self.kind,
            "features": list(self.features),
            "values": [list(v) for v in self.values],
            "counts": [list(c) for c in self.counts],
            "rows": self.rows,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RepoTransform:
        kind = str(state["kind"])
        if kind not in TRANSFORM_KINDS:
            raise ValueError(f"unknown transformation {kind!r}")
        return cls(
            kind,  # type: ignore[arg-type]
            tuple(str(f) for f in state["features"]),
            tuple(tuple(float(x) for x in v) for v in state["values"]),
            tuple(tuple(float(x) for x in c) for c in state["counts"]),
            int(state["rows"]),
        )
