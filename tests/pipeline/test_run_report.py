"""The run report says what was done: the model kind trained and registered, the champion that scored the
recent commits, which commits the counts are over, and stability only when it was computed."""

from __future__ import annotations

import functools
import html
import json
import re
from pathlib import Path

import pytest

from defectops.cli import main
from defectops.training import candidate as candidate_module
from defectops.training.choice import choose_model
from defectops.training.validation_html import STABILITY_NOT_COMPUTED
from gitrepo import RepoBuilder


def _summary(page: str) -> dict[str, str]:
    """The report's summary table as text, by row name."""
    table = page.split("<h2>Summary</h2>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td>", table)
    return {html.unescape(k): html.unescape(v) for k, v in rows}


@pytest.mark.usefixtures("quiet_mlflow")
def test_the_report_names_the_blend_it_trained_and_leaves_out_uncomputed_stability(
    synthetic_repo: RepoBuilder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The default chooses among LightGBM, the log-linear model and their blend inside the training part;
    # offered only the blend (the real choice, on the real folds), it trains and registers a blend.
    monkeypatch.setattr(candidate_module, "choose_model", functools.partial(choose_model, weights=(0.5,)))
    ws = str(tmp_path / "ws")
    main(["-w", ws, "run", "--repo", str(synthetic_repo.path), "--budget-seconds", "0", "--json"])
    run = json.loads(capsys.readouterr().out)
    assert run["evaluate"]["model"] == "blend"
    assert run["evaluate"]["model_choice"]["chosen"].startswith("blend w=0.5")
    page = Path(run["report"]).read_text()
    summary = _summary(page)
    name = run["registry"]["model_name"]
    # it said "defectops-... v1 (lightgbm)", the --model default, beside a blend
    assert summary["model"] == f"{name} v1 (blend)"
    assert summary["champion"] == "v1 (blend; it scored the recent commits below)"
    assert "lightgbm)" not in summary["model"] + summary["champion"]
    assert summary["gate"].startswith("passed")

    # the counts say which commits they are over: the model's non-merge rows, then the labeller's over all
    labels = run["label"]["labels"]
    rows = labels["defect"] + labels["clean"]  # the synthetic history has no merge commit
    assert summary["labelled commits"].startswith(f"{rows} non-merge commits with a verdict")
    every = sum(labels.values())
    assert (
        f"over all {every} commits, merges included: {labels['defect']} defect" in summary["labelled commits"]
    )
    assert summary["defect-inducing share"].endswith("% of the non-merge labelled commits")

    # the registry's tags name the same kind and the feature set the model really learns from
    from mlflow.tracking import MlflowClient

    from defectops.registry.tracking import TrackingConfig

    client = MlflowClient(tracking_uri=TrackingConfig.resolve(Path(ws)).tracking_uri)
    tags = client.get_run(run["registry"]["run_id"]).data.tags
    assert tags["defectops.kind"] == "blend"
    learnt = run["evaluate"]["feature_set"]
    assert tags["defectops.model_feature_set"] == learnt["chosen"]
    assert tags["defectops.feature_count"] == str(len(learnt["features"]))

    # stability was not asked for: one line on how to get it, no table of "no usable window" rows
    assert run["validate"]["stability"]["computed"] is False
    assert "<h3>Stability</h3>" not in page
    assert "no usable window" not in page
    assert html.escape(STABILITY_NOT_COMPUTED) in page
    assert set(run["validate"]["protocol"]) == {"intervals", "groups"}
