"""A seeded synthetic, time-ordered training table shared by the training tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from defectops.data.schemas import FEATURES, validate_training_table

WORDS_RISKY = ["refactor", "rewrite", "hack"]
WORDS_SAFE = ["docs", "typo", "bump"]


def synthetic_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Changes one every ~6 hours; risk grows with la, nf and entropy and shrinks with exp; the message
    carries a risky or safe word correlated with the label; paths live under core/ (risky) or docs/."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.lognormal(1.0, 1.0, n).round() for name in FEATURES})
    frame["fix"] = rng.integers(0, 2, n).astype(float)
    frame["entropy"] = rng.uniform(0, 3, n)
    logit = 2.0 * np.log1p(frame["la"]) + 1.5 * np.log1p(frame["nf"]) - 1.5 * np.log1p(frame["exp"]) - 3.0
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame["churn"] = frame["la"] + frame["ld"]
    frame["label"] = label
    frame["time"] = pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(np.arange(n) * 6, unit="h")
    frame["commit"] = [f"{i:040x}" for i in range(n)]
    noisy = rng.random(n) < 0.2
    risky = (label == 1) ^ noisy
    frame["message"] = [
        f"{rng.choice(WORDS_RISKY if r else WORDS_SAFE)} module {i % 7}" for i, r in enumerate(risky)
    ]
    frame["paths"] = [("core/engine/run.py\ncore/util.py" if r else "docs/guide.md") for r in risky]
    return validate_training_table(frame)


@pytest.fixture(scope="session")
def table() -> pd.DataFrame:
    return synthetic_table()
