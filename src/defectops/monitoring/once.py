"""One piece of evidence per change: a commit scored more than once counts once in a monitored window.

Why: the prediction log keeps every answer (nothing acknowledged is lost), and a commit is often scored more
than once: on every push of its pull request, by CI and by a reviewer through the service, or again when a
range of history is re-scored. Each copy has the same inputs and the same label, so counting them all weighs
that commit double in the drift tests and in realized performance — on scrapy, "2 defective" realized labels
were one commit scored twice. Monitoring therefore keeps the latest row of each change: a commit
(``repo``, ``commit_sha``), or for a block-level model a block of a commit (with its ``path`` and
``address``, the rest of :data:`defectops.data.BLOCK_KEY`). Rows without a commit (``/v1/predict`` with bare
metrics) cannot be matched and are all kept.
"""

from __future__ import annotations

import pandas as pd

from defectops.data import BLOCK_KEY

#: The log's columns naming the commit a row scored.
COMMIT_KEY: tuple[str, str] = ("repo", "commit_sha")


def latest_per_change(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``frame`` (in prediction order) with only the last row of each change, the order and attrs kept,
    and how many earlier rows were dropped."""
    if any(column not in frame.columns for column in COMMIT_KEY) or len(frame) < 2:
        return frame, 0
    key = [*COMMIT_KEY, *(column for column in BLOCK_KEY[1:] if column in frame.columns)]
    known = frame["commit_sha"].notna().to_numpy(dtype=bool)
    repeated = frame.duplicated(subset=key, keep="last").to_numpy(dtype=bool) & known
    if not repeated.any():
        return frame, 0
    out = frame.loc[~repeated].reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out, int(repeated.sum())
