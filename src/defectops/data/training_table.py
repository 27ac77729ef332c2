"""The training table of a mined repository: change metrics joined with the labels known at one moment.

``as_of`` is the whole point: a model trained at time T may only see labels that were known at T (a defect
whose fix came after T was, at T, an unknown or even a "clean" change). Commits whose verdict is still
``unknown`` at ``as_of`` are left out: they are neither trained on nor evaluated; the others get the 0/1
``label`` (1 for ``defect``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from defectops.data.columns import LABEL_HISTORY_FEATURES, RICH_FEATURES
from defectops.data.label_history import label_history_features
from defectops.data.labels import VERDICT, labels_as_of
from defectops.data.schemas import (
    COMMIT,
    DIFF,
    EFFORT,
    FEATURES,
    LABEL,
    MESSAGE,
    PATHS,
    TIME,
    validate_training_table,
)
from defectops.errors import DataError


def changed_paths(files: pd.DataFrame) -> pd.Series:
    """Per commit sha, its changed paths joined by newlines (the text-aware model reads them)."""
    if files.empty:
        return pd.Series(dtype=str)
    return files.groupby("sha", sort=False)["path"].agg("\n".join)


def training_table(
    commits: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    as_of: datetime,
    files: pd.DataFrame | None = None,
    features: Sequence[str] = FEATURES,
) -> pd.DataFrame:
    """One row per non-merge commit whose label was known at ``as_of``, in time order, schema-checked.

    ``features`` are the model inputs taken from ``commits`` (the Kamei metrics by default; with code or
    Terraform metrics joined on, those too); they are recorded in ``attrs["features"]`` for training.
    With ``files`` and a dataset mined with the richer features, the table also carries
    :data:`RICH_FEATURES` and the label-history features (each commit seeing only the labels known at its
    own time, :mod:`defectops.data.label_history`); which of them the model uses is chosen in training.
    A ``diff`` column of ``commits`` (each commit's changed lines, read for the hybrid model) is kept.
    """
    known = labels_as_of(labels, as_of)
    known = known.loc[known[VERDICT] != "unknown", ["sha", VERDICT]]
    scored = commits.loc[~commits["is_merge"].astype(bool)]
    merged = scored.merge(known, on="sha", how="inner", validate="one_to_one")
    missing = [name for name in features if name not in merged.columns]
    if missing:
        raise DataError(f"the commits lack the feature column(s) {', '.join(missing[:5])}")
    table = pd.DataFrame({name: merged[name].astype("float64") for name in features})
    # The richer features (#20) when the dataset was mined with them (datasets of older versions lack them);
    # training chooses whether the model uses them (defectops.training.selection).
    if all(name in merged.columns for name in RICH_FEATURES):
        for name in RICH_FEATURES:
            if name not in table.columns:
                table[name] = merged[name].astype("float64")
        if files is not None:
            history = label_history_features(commits, files, labels, merged, files)
            for name in LABEL_HISTORY_FEATURES:
                table[name] = history[name].to_numpy()
    table[EFFORT] = merged["churn"].astype("float64")
    table[LABEL] = (merged[VERDICT] == "defect").astype("int64")
    table[TIME] = pd.to_datetime(merged["author_time"], utc=True).astype("datetime64[ns, UTC]")
    table[COMMIT] = merged["sha"].astype(str)
    table[MESSAGE] = merged["message"].astype(str)
    if files is not None:
        paths = changed_paths(files)
        # Through `object`: a commit with no changed file maps to NaN, and a float column refuses "".
        table[PATHS] = merged["sha"].map(paths).astype(object).fillna("").astype(str)
    if DIFF in merged.columns:  # the changed lines, attached for the hybrid model (pipeline.text)
        table[DIFF] = merged[DIFF].astype(object).fillna("").astype(str)
    table = table.sort_values([TIME, COMMIT], kind="stable").reset_index(drop=True)
    if table.empty:
        raise DataError(f"no commit has a known label as of {as_of:%Y-%m-%d}; more history is needed")
    table = validate_training_table(table, features)
    if tuple(features) != FEATURES:
        table.attrs["features"] = list(features)
    return table
