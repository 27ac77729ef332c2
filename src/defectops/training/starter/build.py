"""Building the cross-project starter model from public just-in-time datasets, reproducibly.

::

    python -m defectops.training.starter.build --data ../shared/data/jit --data data/jit \
        --out src/defectops/training/starter/v3

rebuilds the shipped model bit for bit (``model.json``, ``booster.txt``, ``card.json``) with no network: every
dataset is read from those folders and checked against its published SHA-256 (:data:`DATASETS`).

The protocol (also in the model card):

1. Every project is loaded through its published mapping (:data:`DATASETS`) as a canonical training table of
   the 14 Kamei change metrics, in time order.
2. Each project's metrics are transformed with a transformation fitted on that project's own history
   (:class:`~defectops.training.models.RepoTransform`, no labels involved).
3. The recipe is chosen by leave-one-project-out among the training projects: the transformation (``rank`` or
   ``log-z``), how a training project's rows meet their history (:data:`HISTORIES`: ``as-of`` each change,
   each tenth of the project in time order transformed with the changes before it) and the booster's size
   (:data:`TREES`: 200, 400 or 800 rounds; the pooled projects hold about 150k changes, far more than one
   repository, so the default model's 200 rounds may underfit them). For each project Q, a model trained on
   the others scores Q's last 20% of changes in time order (Q's transformation fitted on its first 80%); the
   recipe with the best mean ROC-AUC wins (ties: the earlier of :data:`TRANSFORMS`, then of :data:`HISTORIES`,
   then of :data:`TREES`). Nothing outside the training projects is looked at.
4. The winner's out-of-project scores give the calibration (Platt scaling), the decision threshold (best F1)
   and the base rate (the mean defect rate of the scored parts).
5. The final booster learns from every row of every training project; each project weighs the same, and
   within a project each class weighs half (JDT's 35k changes do not drown Columba's 4k).

The booster is the default model's LightGBM (:class:`~defectops.training.models.LightGBMJIT`: trees of 8
leaves, single-threaded and deterministic) with the chosen number of rounds, so the same data give the same
bytes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.data import EFFORT, FEATURES, LABEL, TIME, file_sha256, load_table, time_split
from defectops.errors import DataError, DefectOpsError, InputError
from defectops.training.metrics import roc_auc
from defectops.training.models import RepoTransform, StarterJIT
from defectops.training.models.calibration import best_f1_threshold, platt_scaling, sigmoid
from defectops.training.models.inputs import FloatArray, Inputs

_KAMEI = "Kamei et al., TSE 2013 (packaged by Yang et al., FSE 2016)"
_ISSTA = "Zeng et al., ISSTA 2021"


@dataclass(frozen=True)
class Dataset:
    """A public dataset the starter learns from: its mapping preset, citation and the SHA-256 of the file as
    its authors published it (checked on load, after decompression for the gzip copies in ``data/jit``)."""

    preset: str
    citation: str
    sha256: str


#: The public datasets the shipped starter learns from, by published file name. The Kamei ones and OpenStack
#: are read from ``../shared/data/jit`` (see its README); QT, Gerrit, Go and Platform are gzip copies in the
#: repository's ``data/jit`` (``data/jit/PROVENANCE.md``: Zeng et al.'s benchmark, MIT, extracted by the same
#: tool with the same 14 metrics as OpenStack). Zeng et al.'s JDT is left out: it is the project of Kamei's
#: ``jdt.csv`` (2014-2016 against 2001-2007), so holding out either while training on the other would not be
#: cross-project.
DATASETS: dict[str, Dataset] = {
    "bugzilla.csv": Dataset(
        "kamei", _KAMEI, "e39d42c64896c92121a75596d2d08192e1aa1b184ea3d9610c1da190844e4366"
    ),
    "columba.csv": Dataset(
        "kamei", _KAMEI, "729afb5cd01046c16694e9885a4dd15606e8bc6a5d05b066c5431b3909b04a78"
    ),
    "jdt.csv": Dataset("kamei", _KAMEI, "0d439c41fc905fa6e8c7028d0a29cb58dc908613a972490486948e503276d367"),
    "postgres.csv": Dataset(
        "kamei", _KAMEI, "87f518f7f94fe4d41131c5a91e354327c2ecc77420a7f36de3c4d984f733b2cb"
    ),
    "openstack.csv": Dataset(
        "openstack", _ISSTA, "3bf8291388c28841b124a22a2b0ca0af1b092b657de1ddb51823ba6b08344cf1"
    ),
    "qt.csv": Dataset(
        "openstack", _ISSTA, "e78aef05cbba82a57bc2aad90d0e9ef2150c7b1c50d7cbfc1b19d5d511260e9e"
    ),
    "gerrit.csv": Dataset(
        "openstack", _ISSTA, "cb3e79e2cdf4c14264fa1e20cbb36e2c0c88eb28bb8fed3594151f6ddffa7b68"
    ),
    "go.csv": Dataset(
        "openstack", _ISSTA, "891cc4f6d8b6dffc15e8c40e2eb4f01db3c4625a27f13598f1ee805e25ddc053"
    ),
    "platform.csv": Dataset(
        "openstack", _ISSTA, "fcb1835d0c3a48f969f2fb149c87d3982602912e91924e083ade240fdf59db2f"
    ),
}
#: The transformations compared by leave-one-project-out, in order of preference on a tie.
TRANSFORMS: tuple[str, ...] = ("log-z", "rank")
#: How a training project's rows are transformed, in order of preference on a tie. ``as-of``: each of
#: :data:`AS_OF_PARTS` consecutive parts (time order) with the changes before it (the first part with
#: itself), which is how a repository's changes meet the starter in use: its transformation is fitted on the
#: history mined before the changes it scores, and metrics such as ``exp`` and ``age`` grow with a project's
#: age, so "large for this project" drifts. :func:`training_rows` also knows ``whole`` (the project's whole
#: history, the future included); it is no longer a candidate: it lost to ``as-of`` in every leave-one-
#: project-out of the five- and nine-project runs (docs/benchmarks.md), so it no longer earns its build time.
HISTORIES: tuple[str, ...] = ("as-of",)
#: The boosting rounds compared by leave-one-project-out, in order of preference on a tie (the smallest
#: first: the cheapest model to score and to explain).
TREES: tuple[int, ...] = (200, 400, 800)
AS_OF_PARTS = 10
#: The share of a held-out project's latest changes it is tested on.
TEST_FRACTION = 0.2
STARTER_VERSION = "3"


@dataclass(frozen=True)
class Project:
    """One project's canonical training table (time order) and where it came from."""

    name: str
    table: pd.DataFrame
    source: str = ""
    sha256: str = ""
    citation: str = ""

    def numeric(self, rows: slice | npt.NDArray[np.int64] | None = None) -> FloatArray:
        frame = self.table if rows is None else self.table.iloc[rows]
        values: FloatArray = frame.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
        return values

    def split(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(history, test): the first 80% and the last 20% in time order (no gap: the published protocol)."""
        split = time_split(self.table[TIME], test_fraction=TEST_FRACTION)
        return split.train, split.test


@dataclass(frozen=True)
class HeldOut:
    """Out-of-project raw scores of one project's test part (a model trained on the other projects)."""

    project: str
    y: npt.NDArray[np.int64]
    raw: FloatArray
    effort: FloatArray
    times: pd.Series


def find_dataset(data_dirs: Sequence[Path], file: str) -> Path:
    """The first of ``data_dirs`` holding ``file`` as it is or gzip-compressed (``file.gz``)."""
    for folder in data_dirs:
        for candidate in (folder / file, folder / f"{file}.gz"):
            if candidate.is_file():
                return candidate
    raise InputError(f"{file} is in none of {', '.join(str(d) for d in data_dirs)} (nor as {file}.gz)")


def load_projects(data_dirs: Sequence[Path], names: Sequence[str] | None = None) -> list[Project]:
    """The datasets of :data:`DATASETS` found in ``data_dirs`` (all must be there), in that order, each
    checked against its published SHA-256."""
    wanted = list(DATASETS) if names is None else [f"{n.removesuffix('.csv')}.csv" for n in names]
    projects = []
    for file in wanted:
        if file not in DATASETS:
            raise InputError(f"unknown dataset {file!r}: choose from {', '.join(DATASETS)}")
        path = find_dataset(data_dirs, file)
        dataset = DATASETS[file]
        try:
            digest = file_sha256(path, decompressed=True)
        except (OSError, EOFError) as exc:  # e.g. gzip.BadGzipFile, a truncated copy
            raise DataError(f"{path}: cannot be read: {exc}") from None
        if digest != dataset.sha256:
            raise DataError(f"{path}: SHA-256 {digest} is not the published {file}'s {dataset.sha256}")
        table = load_table(path, dataset.preset)
        order = np.argsort(table[TIME].to_numpy(), kind="stable")
        table = table.iloc[order].reset_index(drop=True)
        projects.append(Project(file.removesuffix(".csv"), table, file, digest, dataset.citation))
    return projects


def project_weights(labels: Sequence[npt.NDArray[np.int64]]) -> FloatArray:
    """Per-row weights: every project weighs the same, and within it each class half (mean weight 1)."""
    parts = []
    for y in labels:
        n_pos = float(np.sum(y == 1))
        n_neg = float(len(y) - n_pos)
        if n_pos == 0 or n_neg == 0:
            raise InputError("every training project needs defect-inducing and clean changes")
        parts.append(np.where(y == 1, 0.5 / n_pos, 0.5 / n_neg))
    weights = np.concatenate(parts)
    result: FloatArray = weights / weights.mean()
    return result


@dataclass(frozen=True)
class Recipe:
    """How the starter is made: the transformation, the history it is fitted on (see the module docstring
    and :data:`HISTORIES`) and the booster's rounds."""

    transform: str
    history: str
    trees: int = 200

    @property
    def label(self) -> str:
        return f"{self.transform} {self.history} {self.trees}"


RECIPES: tuple[Recipe, ...] = tuple(Recipe(t, h, n) for t in TRANSFORMS for h in HISTORIES for n in TREES)
#: Boosters already trained, by recipe, training projects and seed (see :func:`held_out`).
BoosterCache = dict[tuple[Recipe, tuple[str, ...], int], StarterJIT]


def training_rows(recipe: Recipe, project: Project) -> FloatArray:
    """``project``'s rows transformed for training by ``recipe``.

    ``as-of``: the parts are cut at ``floor(k * n / AS_OF_PARTS)``; e.g. 20 rows in 10 parts: rows 0–1 are
    transformed with rows 0–1, rows 2–3 with rows 0–1, rows 18–19 with rows 0–17.
    """
    values = project.numeric()
    if recipe.history == "whole":
        return RepoTransform.fit(recipe.transform, values, FEATURES).apply(values)
    out = np.empty_like(values)
    cuts = [k * len(values) // AS_OF_PARTS for k in range(AS_OF_PARTS + 1)]
    for start, end in itertools.pairwise(cuts):
        if end == start:
            continue
        past = values[:start] if start > 0 else values[:end]
        out[start:end] = RepoTransform.fit(recipe.transform, past, FEATURES).apply(values[start:end])
    return out


def _booster(recipe: Recipe, projects: Sequence[Project], seed: int) -> StarterJIT:
    """A starter whose booster learnt from every row of ``projects`` (each transformed by ``recipe``)."""
    model = StarterJIT(
        features=tuple(FEATURES), transform=recipe.transform, n_estimators=recipe.trees, random_state=seed
    )
    model.features_ = list(FEATURES)
    rows = [training_rows(recipe, p) for p in projects]
    labels = [p.table[LABEL].to_numpy(dtype=np.int64) for p in projects]
    model._fit_core(Inputs(np.vstack(rows)), np.concatenate(labels), project_weights(labels))
    return model


def held_out(
    recipe: Recipe,
    train: Sequence[Project],
    test: Project,
    seed: int = 0,
    cache: BoosterCache | None = None,
) -> HeldOut:
    """``test``'s last 20% scored by a booster trained on ``train``; ``test``'s transformation is fitted on
    its first 80% (its history before the scored changes, without labels).

    ``cache`` keeps the boosters across calls: a nested leave-one-project-out (the benchmark) trains the same
    booster twice, on all projects but P and Q, once to score Q without P and once to score P without Q."""
    key = (recipe, tuple(p.name for p in train), seed)
    model = cache.get(key) if cache is not None else None
    if model is None:
        model = _booster(recipe, train, seed)
        if cache is not None:
            cache[key] = model
    history, rows = test.split()
    fitted = RepoTransform.fit(recipe.transform, test.numeric(history), FEATURES)
    part = test.table.iloc[rows]
    return HeldOut(
        project=test.name,
        y=part[LABEL].to_numpy(dtype=np.int64),
        raw=model.raw_transformed(fitted.apply(test.numeric(rows))),
        effort=part[EFFORT].to_numpy(dtype=np.float64),
        times=part[TIME].reset_index(drop=True),
    )


@dataclass(frozen=True)
class Selection:
    """Leave-one-project-out among the training projects: ROC-AUC per recipe (by label) and project."""

    scores: dict[str, dict[str, float]]
    chosen: Recipe
    held_out: list[HeldOut]

    def mean(self, label: str) -> float:
        return float(np.mean(list(self.scores[label].values())))

    def as_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen.label,
            "mean_roc_auc": {t: round(self.mean(t), 6) for t in self.scores},
            "roc_auc": {t: {p: round(v, 6) for p, v in s.items()} for t, s in self.scores.items()},
        }


def select_recipe(projects: Sequence[Project], seed: int = 0, cache: BoosterCache | None = None) -> Selection:
    """Choose the recipe by leave-one-project-out among ``projects`` (step 3 of the protocol)."""
    if len(projects) < 2:
        raise InputError("choosing a transformation needs at least two training projects")
    scores: dict[str, dict[str, float]] = {}
    parts: dict[str, list[HeldOut]] = {}
    for recipe in RECIPES:
        parts[recipe.label] = [
            held_out(recipe, [p for p in projects if p is not q], q, seed, cache) for q in projects
        ]
        scores[recipe.label] = {h.project: roc_auc(h.y, h.raw) for h in parts[recipe.label]}
    means = {label: float(np.mean(list(s.values()))) for label, s in scores.items()}
    chosen = max(RECIPES, key=lambda r: (means[r.label], -RECIPES.index(r)))
    return Selection(scores, chosen, parts[chosen.label])


def build_starter(
    projects: Sequence[Project], seed: int = 0, cache: BoosterCache | None = None
) -> tuple[StarterJIT, Selection]:
    """The starter trained on ``projects`` by the protocol of the module docstring (``cache``: see
    :func:`held_out`)."""
    selection = select_recipe(projects, seed, cache)
    raw = np.concatenate([h.raw for h in selection.held_out])
    y = np.concatenate([h.y for h in selection.held_out])
    a, b = platt_scaling(raw, y)
    model = _booster(selection.chosen, projects, seed)
    model.training_data = tuple(p.name for p in projects)
    model.starter_version = STARTER_VERSION
    model.classes_ = np.array([0, 1])
    model.n_features_in_ = len(FEATURES)
    model.calibration_ = (a, b, best_f1_threshold(y, sigmoid(a * raw + b)))
    model.n_train_ = int(sum(len(p.table) for p in projects))
    model.positive_rate_ = float(np.mean([h.y.mean() for h in selection.held_out]))
    model.transform_ = None
    return model, selection


def card(projects: Sequence[Project], selection: Selection, model: StarterJIT) -> dict[str, Any]:
    """The machine-readable model card: training data with provenance, protocol, selection results."""
    return {
        "starter_version": STARTER_VERSION,
        "features": list(FEATURES),
        "transform": model.transform,
        "training_history": selection.chosen.history,
        "trees": selection.chosen.trees,
        "training_data": [
            {
                "project": p.name,
                "file": p.source,
                "sha256": p.sha256,
                "rows": len(p.table),
                "defect_inducing": int(p.table[LABEL].sum()),
                "first": str(p.table[TIME].iloc[0]),
                "last": str(p.table[TIME].iloc[-1]),
                "source": p.citation,
            }
            for p in projects
        ],
        "protocol": (
            "per-project transformation fitted on the project's own metrics (no labels); transformation "
            "and booster rounds (200, 400 or 800) chosen by leave-one-project-out among the training "
            "projects (train on the others, each training row transformed as of its time with the changes "
            "before it, by tenths; test on the held-out project's last 20% in time order, its transformation "
            "fitted on its first 80%); Platt calibration, threshold (best F1) and base rate from those "
            "out-of-project scores; final LightGBM (8 leaves, the chosen rounds) on all rows, every project "
            "weighted equally and each class half within it"
        ),
        "selection": selection.as_dict(),
        "calibration": {"a": model.calibration_[0], "b": model.calibration_[1]},
        "threshold": model.calibration_[2],
        "base_rate": model.positive_rate_,
    }


def write(out: Path, model: StarterJIT, document: dict[str, Any]) -> None:
    """Save the model (``model.json``, ``booster.txt``) and ``card.json`` into ``out``."""
    model.save(out)
    (out / "card.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m defectops.training.starter.build", description=__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        required=True,
        help="a folder holding public datasets (repeat: each dataset is taken from the first holding it)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the starter into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        projects = load_projects(args.data)
        model, selection = build_starter(projects, args.seed)
        write(args.out, model, card(projects, selection, model))
    except DefectOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(selection.as_dict()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
