"""Richer features that need labels (#20): prior defect-inducing changes of the touched files, directories and
of the author, each counted only once its label was known.

Why here and not in mining: labels come from the labelling stage, which runs after mining and may import it,
never the reverse (docs/architecture.md). The labels table already says when each defect became known
(``label_known_at``: the commit time of the first fix that revealed it), so this data-layer step can count,
for a commit C made at time t, exactly the defect-inducing commits whose revealing fix was committed before t.

The leak this avoids: a commit X made before C whose fix came after C was, at C's time, not known to be
defect-inducing. Counting it would let the model see the future (and, in a held-out window, labels of the
window itself). So every count below uses ``known(X) < t(C)`` with
``known(X) = max(label_known_at(X), author_time(X) + 1 µs)`` (a fix dated before its own bug, from clock skew,
cannot make the label known before the change was even written, which also keeps C from counting itself).
Because ``known(X) >= label_known_at(X)`` and the labels table is the labels known "now" (>= every t),
the counts equal those computed from :func:`labels_as_of` at t: recomputing later never changes a past value.

Definitions (docs/metrics.md "Richer features"), with t = C's author time:

* ``file_bugs``: over C's distinct paths p, the number of defect-inducing commits X that changed p (path as
  written in the file dataset; renames start a new path) with known(X) < t, summed;
* ``dir_bugs``: the same over C's distinct directories (each X counted once per directory);
* ``author_bug_rate``: the author's defect-inducing commits with known(X) < t, over the author's earlier
  non-merge commits (author time < t); 0 when the author has none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from defectops.data.columns import LABEL_HISTORY_FEATURES
from defectops.data.labels import VERDICT, upgrade_labels

_EPSILON_NS = 1_000  # 1 µs: a label is never known before (or when) its commit was authored


def _nanos(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
    return np.asarray(stamps.astype("int64").to_numpy(), dtype=np.int64)


def _count_before(events: pd.DataFrame, queries: pd.DataFrame) -> np.ndarray:
    """For each query (key, t): how many events (key, k) have k < t. Events and queries are sorted together
    by key, then time, a query before an event at the same time (strictly before), and events counted with a
    running sum per key."""
    if queries.empty:
        return np.zeros(0, dtype=np.float64)
    both = pd.concat(
        [
            pd.DataFrame({"key": events["key"], "t": events["t"], "event": 1, "q": -1}),
            pd.DataFrame(
                {"key": queries["key"], "t": queries["t"], "event": 0, "q": np.arange(len(queries))}
            ),
        ],
        ignore_index=True,
    )
    both = both.sort_values(["key", "t", "event"], kind="stable")
    before = both.groupby("key", sort=False)["event"].cumsum() - both["event"]
    out = np.zeros(len(queries), dtype=np.float64)
    is_query = both["q"].to_numpy() >= 0
    out[both["q"].to_numpy()[is_query]] = before.to_numpy()[is_query]
    return out


def _directory(paths: pd.Series) -> pd.Series:
    """Parent directories ('' at the root): the last '/' and what follows it removed (safe when empty)."""
    return paths.astype(str).str.replace(r"/?[^/]*$", "", regex=True)


def label_history_features(
    commits: pd.DataFrame,
    files: pd.DataFrame,
    labels: pd.DataFrame,
    targets: pd.DataFrame,
    target_files: pd.DataFrame,
) -> pd.DataFrame:
    """The label-history features of ``targets`` (``sha``, ``author_email``, ``author_time``), one row each
    in their order, from the history ``commits`` (``sha``, ``author_email``, ``author_time``, ``is_merge``),
    its ``files`` (``sha``, ``path``) and the labels table ``labels``. ``target_files`` (``sha``, ``path``)
    are the targets' changed paths; a target may be in the history or not (a new commit being scored)."""
    labels = upgrade_labels(labels)
    defects = labels.loc[labels[VERDICT] == "defect", ["sha", "label_known_at"]]
    authored = commits.loc[:, ["sha", "author_email", "author_time", "is_merge"]].drop_duplicates("sha")
    defects = defects.merge(authored, on="sha", how="inner")
    defects = defects.loc[~defects["is_merge"].astype(bool)]  # merges are not scored, nor counted
    known = np.maximum(_nanos(defects["label_known_at"]), _nanos(defects["author_time"]) + _EPSILON_NS)
    defects = pd.DataFrame({"sha": defects["sha"].to_numpy(), "author": defects["author_email"].to_numpy(),
                            "t": known})  # fmt: skip

    target_times = _nanos(targets["author_time"])
    when = dict(zip(targets["sha"].astype(str), target_times, strict=True))
    order = {sha: i for i, sha in enumerate(targets["sha"].astype(str))}
    out = pd.DataFrame(0.0, index=range(len(targets)), columns=list(LABEL_HISTORY_FEATURES))

    changed = files.loc[:, ["sha", "path"]].merge(defects[["sha", "t"]], on="sha", how="inner")
    touched = target_files.loc[:, ["sha", "path"]].astype({"sha": str, "path": str})
    touched = touched.loc[touched["sha"].isin(order)]
    keys = (("file_bugs", lambda f: f["path"].astype(str)), ("dir_bugs", lambda f: _directory(f["path"])))
    for column, key in keys:
        events = pd.DataFrame({"sha": changed["sha"], "key": key(changed), "t": changed["t"]})
        events = events.drop_duplicates(["sha", "key"])
        queries = pd.DataFrame({"sha": touched["sha"], "key": key(touched)}).drop_duplicates()
        queries["t"] = queries["sha"].map(when).astype(np.int64)
        counts = pd.Series(_count_before(events, queries.reset_index(drop=True)))
        per_commit = counts.groupby(queries["sha"].map(order).to_numpy()).sum()
        out.loc[per_commit.index, column] = per_commit.to_numpy()

    prior = authored.loc[~authored["is_merge"].astype(bool)]
    queries = pd.DataFrame({"key": targets["author_email"].astype(str).to_numpy(), "t": target_times})
    bugs = _count_before(pd.DataFrame({"key": defects["author"].astype(str), "t": defects["t"]}), queries)
    total = _count_before(
        pd.DataFrame({"key": prior["author_email"].astype(str), "t": _nanos(prior["author_time"])}), queries
    )
    out["author_bug_rate"] = np.where(total > 0, bugs / np.maximum(total, 1.0), 0.0)
    return out
