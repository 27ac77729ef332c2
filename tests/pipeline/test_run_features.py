"""`defectops run --features` (#17): auto-detection of infrastructure as code, and a Terraform model end to
end (trained, registered with its feature list, scored by `predict` with reasons naming tf_ features)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from defectops.cli import main
from defectops.config import Workspace
from defectops.data import BLOCK_FEATURES, FEATURE_SETS, FEATURES, TERRAFORM_FEATURES
from defectops.data.mined import read_table
from defectops.errors import InputError
from defectops.git.repo import GitRepo
from defectops.mining import default_model_name
from defectops.mining.engine import Miner
from defectops.pipeline.features import choose_features
from defectops.pipeline.run import RunOptions
from gitrepo import RepoBuilder
from synthetic_terraform import build_terraform_history


def _frames(tf_commits: int, commits: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    shas = [f"{i:040x}" for i in range(commits)]
    frame = pd.DataFrame({"sha": shas, "is_merge": [False] * commits})
    paths = [("main.tf" if i < tf_commits else "app.py") for i in range(commits)]
    return frame, pd.DataFrame({"sha": shas, "path": paths})


def test_auto_uses_terraform_metrics_from_a_fifth_of_the_commits() -> None:
    # By hand: 2 of 10 commits change a .tf file = 20 %, the threshold: IaC, so all the metrics (64 columns).
    choice = choose_features("auto", *_frames(2, 10))
    assert (choice.name, len(choice.features), choice.terraform_share) == ("all", 64, 0.2)
    assert "infrastructure as code: 20% of 10" in choice.reason
    # 1 of 10 = 10 %: an application repository keeps the 14 change metrics.
    kamei = choose_features("auto", *_frames(1, 10))
    assert (kamei.name, kamei.features) == ("kamei", FEATURES)
    # 5 of 9 commits: a share of 56 %, but too few commits to call it IaC.
    assert choose_features("auto", *_frames(5, 9)).name == "kamei"
    # Asked for explicitly: used whatever the share.
    asked = choose_features("terraform", *_frames(0, 10))
    assert asked.features == (*FEATURES, *TERRAFORM_FEATURES)
    assert asked.reason.startswith("asked for with --features terraform (0% of 10")
    with pytest.raises(InputError, match="unknown feature set 'tf'"):
        RunOptions(repo=Path("."), features="tf")


def _history(path: Path, tf_commits: int, commits: int) -> RepoBuilder:
    repo = RepoBuilder.create(path)
    for i in range(commits):
        name = f"m{i}.tf" if i < tf_commits else f"app{i}.py"
        body = f'variable "v{i}" {{}}\n' if name.endswith(".tf") else f"x = {i}\n"
        repo.commit(f"c{i}", {name: body, "README.md": f"{i}\n"}, days=1)
    return repo


def test_auto_detection_on_real_histories(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws").ensure()
    # By hand: 8 of 12 commits change a .tf file (67 %): IaC. 2 of 12 (17 %): not.
    for tf_commits, expected, share in ((8, "all", 8 / 12), (2, "kamei", 2 / 12)):
        repo = _history(tmp_path / f"repo{tf_commits}", tf_commits, 12)
        mined = Miner(GitRepo.open(repo.path), workspace).mine()
        choice = choose_features("auto", read_table(mined.dataset), read_table(mined.files_dataset))
        assert (choice.name, choice.terraform_share) == (expected, pytest.approx(share)), choice.reason


@pytest.fixture(scope="module")
def terraform_repo(tmp_path_factory: pytest.TempPathFactory) -> RepoBuilder:
    # 300 commits: enough labelled ones that the held-out window has the 50 the promotion gate needs.
    return build_terraform_history(Path(tmp_path_factory.mktemp("tf")) / "repo", commits=300)


@pytest.mark.usefixtures("quiet_mlflow")
@pytest.mark.slow
def test_run_features_terraform_trains_registers_and_predicts_with_tf_columns(
    terraform_repo: RepoBuilder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = str(tmp_path / "ws")
    args = ["-w", ws, "run", "--repo", str(terraform_repo.path), "--features", "terraform"]
    main([*args, "--budget-seconds", "0", "--recent", "3", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["trained"] is True
    assert document["features"]["set"] == "terraform"
    assert document["features"]["features"] == list(FEATURE_SETS["terraform"])
    assert document["code_metrics"]["failed_files"] == 0
    assert document["code_metrics"]["new_commits"] == document["code_metrics"]["commits"]

    from defectops.config import Settings
    from defectops.registry import CHAMPION, ModelRegistry

    registry = ModelRegistry.from_settings(Settings(workspace=Path(ws)))
    champion = registry.load(document["registry"]["model_name"], alias=CHAMPION)
    assert list(champion.meta.features) == list(FEATURE_SETS["terraform"])
    report = Path(document["report"]).read_text()
    assert "tf_resources_added" in report  # the report lists the model's features

    # The block-level model (#17): its own name, evaluated on a later window, registered behind the gate.
    blocks = document["blocks"]
    assert blocks["model_name"] == document["registry"]["model_name"] + "-blocks"
    assert blocks["version"] == 1
    assert blocks["link_stats"]["dropped"] == {}
    assert blocks["evaluate"]["test_defective"] > 0
    assert blocks["gate"] in ("passed", "failed")
    assert "block-level model" in report
    if blocks["promoted"]:
        block_champion = registry.load(blocks["model_name"], alias=CHAMPION)
        assert list(block_champion.meta.features) == list(BLOCK_FEATURES)

    # predict measures the Terraform metrics of the commit it scores: the newest risky commit (a block
    # added by a newcomer) is scored with tf_resources_added = 1 among its inputs.
    risky = terraform_repo.git("log", "-1", "--format=%H", "--grep=^Add r").strip()
    main(["-w", ws, "predict", "--repo", str(terraform_repo.path), "--commit", risky, "--format", "json"])
    scored = json.loads(capsys.readouterr().out)
    (commit,) = scored["commits"]
    assert commit["features"]["tf_resources_added"] == 1.0
    # The block-level model scores the block the commit added, on its lines, with the commit risk beside it.
    assert blocks["promoted"] is True
    subject = terraform_repo.git("log", "-1", "--format=%s", risky).strip()  # "Add r<n> to <file>"
    _, number, _, path = subject.split(" ")
    (block,) = commit["blocks"]
    assert (block["path"], block["address"], block["change"]) == (path, f"aws_instance.{number}", "added")
    shown = terraform_repo.git("show", f"{risky}:{path}").splitlines()
    assert shown[block["first_line"] - 1] == f'resource "aws_instance" "{number}" {{'
    assert shown[block["last_line"] - 1] == "}"
    assert block["model_name"] == blocks["model_name"]
    for fmt in ("markdown", "github", "sarif"):
        main(["-w", ws, "predict", "--repo", str(terraform_repo.path), "--commit", risky, "--format", fmt])
        out = capsys.readouterr().out
        assert f"aws_instance.{number} added: risk {block['risk_band']}" in out or fmt == "markdown", fmt
        assert f"aws_instance.{number}" in out, fmt
    sarif = json.loads(out)
    located = [
        r["locations"][0]["physicalLocation"]["region"]
        for r in sarif["runs"][0]["results"]
        if r["ruleId"].endswith("-risk-block")
    ]
    assert located == [{"startLine": block["first_line"], "endLine": block["last_line"]}]

    # The seed's store layout: both models exported to pre_trained_defect_models/, and a CI job with a
    # fresh workspace (no registry) scores the commit and its blocks from the store alone.
    store = tmp_path / "store"
    name = document["registry"]["model_name"]
    main(
        [
            "-w",
            ws,
            "models",
            "export",
            "--out",
            str(tmp_path / "export"),
            "--model-name",
            name,
            "--store",
            str(store),
        ]
    )
    capsys.readouterr()
    stored = sorted(p.relative_to(store).parts[:2] for p in store.rglob("export.json"))
    assert stored == [("pre_trained_defect_models", name), ("pre_trained_defect_models", f"{name}-blocks")]
    fresh = str(tmp_path / "ci-ws")
    main(["-w", fresh, "predict", "--repo", str(terraform_repo.path), "--commit", risky, "--store", str(store),
          "--no-save-state", "--format", "json"])  # fmt: skip
    from_store = json.loads(capsys.readouterr().out)
    (again,) = from_store["commits"]
    assert again["probability"] == pytest.approx(commit["probability"])
    assert [b["address"] for b in again["blocks"]] == [block["address"]]
    assert again["blocks"][0]["probability"] == pytest.approx(block["probability"])
    # A job on a complete clone (at the commit before `risky`) saves the miner state and the block table to
    # the store; a shallow clone's job at HEAD then scores `risky` and its block from them, with the same
    # probabilities: the history features come from the store, not from a complete history.
    # (A store of their own: the prediction files above are named by commit and second.)
    store2 = tmp_path / "store2"
    shutil.copytree(store / "pre_trained_defect_models", store2 / "pre_trained_defect_models")
    seed = tmp_path / "seed"
    subprocess.run(["git", "clone", "-q", f"file://{terraform_repo.path}", str(seed)], check=True)
    subprocess.run(["git", "-C", str(seed), "reset", "-q", "--hard", f"{risky}~1"], check=True)
    main(["-w", str(tmp_path / "seed-ws"), "predict", "--repo", str(seed), "--commit", "HEAD",
          "--store", str(store2), "--format", "json"])  # fmt: skip
    assert "saved the Terraform block table" in capsys.readouterr().err
    assert {p.name for p in (store2 / "state").iterdir()} >= {
        "blocks.parquet",
        "blocks.json",
        "blocks.state.json",
    }
    depth = int(terraform_repo.git("rev-list", "--count", f"{risky}~1..HEAD").strip()) + 1
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", f"--depth={depth}", f"file://{terraform_repo.path}", str(shallow)], check=True
    )
    # A file:// clone that is shallow has neither a network remote nor its root commit, so it derives another
    # name than the complete clones (a GitHub checkout derives the remote's): publish the model under it too.
    shallow_name = default_model_name(GitRepo.open(shallow))
    shutil.copytree(
        store2 / "pre_trained_defect_models" / name, store2 / "pre_trained_defect_models" / shallow_name
    )
    main(["-w", str(tmp_path / "shallow-ws"), "predict", "--repo", str(shallow), "--commit", risky,
          "--store", str(store2), "--format", "json"])  # fmt: skip
    captured = capsys.readouterr()
    assert "loaded the Terraform block table" in captured.err
    (shallow_commit,) = json.loads(captured.out)["commits"]
    assert shallow_commit["probability"] == pytest.approx(commit["probability"])
    assert [b["address"] for b in shallow_commit["blocks"]] == [block["address"]]
    assert shallow_commit["blocks"][0]["probability"] == pytest.approx(block["probability"])
    assert commit["features"]["tf_resources_changed"] == 0.0
    # The reasons (TreeSHAP) rank every model input, tf_ columns included: each named feature is an input.
    assert len(commit["reasons"]) == 3
    named = [r["feature"] for r in commit["reasons"]]
    assert set(named) <= set(FEATURE_SETS["terraform"])
    # Seeded history and model, so this is exact: a whole block added is the main reason.
    assert named[0] == "tf_resources_added"
