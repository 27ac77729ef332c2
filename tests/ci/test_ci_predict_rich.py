"""``defectops predict`` computes the richer features (#20) of a commit for a model that learnt from them.

The model is a real LogisticJIT fitted on a seeded synthetic table of Kamei ``la`` and three richer features;
the commits of ``risky_repo`` (tests/ci/conftest.py) give, by hand:

* c1 ``Tweak readme``: README +1 (a docs file by its name) -> la 1, src_churn 0, doc_churn 1,
  rel_churn = 1 / max(lt = 2, 1) = 0.5
* c2 ``Add parser``: new src/parser.py +800, src/app.py 20 -> 32 lines (+12) -> la 812, src_churn 812,
  doc_churn 0, rel_churn = 812 / 20 = 40.6 (lt counts app.py only: parser.py is new)
* c3 ``Fix typo in app``: src/app.py +1 -1 -> la 1, src_churn 2, doc_churn 0, rel_churn = 2 / 32 = 0.0625
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from defectops.training.models import make_model
from gitrepo import RepoBuilder

FEATURES = ("la", "src_churn", "doc_churn", "rel_churn")
HAND = {
    1: {"la": 1.0, "src_churn": 0.0, "doc_churn": 1.0, "rel_churn": 0.5},
    2: {"la": 812.0, "src_churn": 812.0, "doc_churn": 0.0, "rel_churn": 40.6},
    3: {"la": 1.0, "src_churn": 2.0, "doc_churn": 0.0, "rel_churn": 0.0625},
}


def test_predict_scores_a_commit_with_its_hand_counted_richer_features(
    cli: Callable[..., Any], risky_repo: RepoBuilder, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    la = np.floor(np.exp(rng.uniform(0, 7, 300)))
    table = pd.DataFrame(
        {
            "la": la,
            "src_churn": np.floor(la * rng.uniform(0.5, 1.0, 300)),
            "doc_churn": rng.integers(0, 5, 300).astype(float),
            "rel_churn": rng.uniform(0, 5, 300),
        }
    )
    y = (np.log1p(table["src_churn"]) + rng.normal(0, 0.7, 300) > 4).astype(int)
    model = make_model("logreg", features=FEATURES).fit(table, y)
    folder = model.save(tmp_path / "rich-model")
    shas = risky_repo.shas
    result = cli(
        "predict", "--repo", str(risky_repo.path), "--range", f"{shas[0]}..{shas[3]}",
        "--model-dir", str(folder), "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result
    doc = json.loads(result.out)
    for i, commit in zip((1, 2, 3), doc["commits"], strict=True):
        assert commit["features"] == pytest.approx(HAND[i], abs=1e-12)
        expected = model.predict_proba(pd.DataFrame({k: [v] for k, v in HAND[i].items()}))[0, 1]
        assert commit["probability"] == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
