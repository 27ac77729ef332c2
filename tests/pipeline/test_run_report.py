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
from defectops.config import Settings
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
    # the gate's F1 names the registered model's threshold, the held-out table's F1 the fold model's: two
    # F1s of the same window at two cuts, each saying which
    from defectops.registry import ModelRegistry

    registered = ModelRegistry.from_settings(Settings(workspace=Path(ws))).get_version(name, 1).threshold
    gate_scores = re.search(
        r"; on the (\d+) held-out commits: F1 0\.\d{3} at threshold (0\.\d{3}) \(the registered model's\)$",
        summary["gate"],
    )
    assert gate_scores is not None, summary["gate"]
    assert int(gate_scores.group(1)) == run["evaluate"]["test_rows"]
    assert gate_scores.group(2) == f"{registered:.3f}"
    held_out = page.split("<h2>Held-out evaluation", 1)[1].split("</table>", 1)[0]
    assert re.search(r"<th>f1</th><td>0\.\d{4}</td><td class=muted>F1 at threshold 0\.\d{3}, ", held_out)

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


def test_the_gate_line_gives_each_f1_with_its_threshold_by_hand() -> None:
    from defectops.pipeline.summary import gate_f1_text
    from defectops.registry import GateDecision
    from defectops.registry.gate import evaluate_gate

    # labels 1, 0, 1, 0. Challenger at 0.5 flags rows 1 and 2: TP 1, FP 1, FN 1, F1 = 2 / (2 + 1 + 1) = 0.5.
    # Champion at 0.25 flags rows 1, 3 and 4: TP 2, FP 1, FN 0, F1 = 4 / (4 + 1) = 0.8.
    decision: GateDecision = evaluate_gate(
        [1, 0, 1, 0],
        None,
        [0.9, 0.6, 0.4, 0.1],
        [0.8, 0.2, 0.7, 0.3],
        challenger_threshold=0.5,
        champion_threshold=0.25,
    )
    assert gate_f1_text(decision, 3, 4) == (
        "on the 4 held-out commits: F1 0.500 at threshold 0.500 (the registered model's); "
        "champion v3 F1 0.800 at threshold 0.250"
    )
