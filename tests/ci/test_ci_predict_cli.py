"""``defectops predict`` end to end: a real repository, a real model folder, the real miner and scoring.

Expected probabilities come from the model applied to the hand-counted (la, ld, nf) of each commit (see the
``risky_repo`` fixture), so any mix-up of commits, features or order shows up as a wrong number.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from defectops.ci.report import RISK_EXIT_CODE
from defectops.config import Workspace
from defectops.git.repo import GitRepo
from defectops.mining.engine import MineOptions, Miner
from defectops.storage.artifacts import ArtifactStore
from defectops.training.models import JITModel
from defectops.training.risk import RiskBands
from gitrepo import RepoBuilder, lines
from sample_repos import build_with_merges

Cli = Callable[..., Any]  # the ``cli`` fixture: run(*args) -> CliResult(code, out, err)

# hand counts of risky_repo's commits c1..c3: (la, ld, nf)
COUNTS = {1: (1, 0, 1), 2: (812, 0, 2), 3: (1, 1, 1)}


def bands_of(model: JITModel) -> RiskBands:
    return model.risk_bands()


def one_line_error(result: Any, code: int, fragment: str) -> None:
    """The error is one line, the last on stderr (progress notes may precede it), with no traceback."""
    assert result.code == code, result
    err_lines = result.err.strip().splitlines()
    assert err_lines, result
    assert err_lines[-1].startswith("error: "), result.err
    assert [line for line in err_lines if line.startswith("error")] == [err_lines[-1]]
    assert fragment in err_lines[-1], result.err
    assert "Traceback" not in result.err + result.out


def test_range_json_scores_each_commit_with_its_hand_counted_metrics(
    cli: Cli,
    risky_repo: RepoBuilder,
    tiny_model_dir: Path,
    tiny_model: JITModel,
    probability: Callable[[float, float, float], float],
) -> None:
    shas = risky_repo.shas
    result = cli(
        "predict", "--repo", str(risky_repo.path), "--range", f"{shas[0]}..{shas[3]}",
        "--model-dir", str(tiny_model_dir), "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert [c["sha"] for c in doc["commits"]] == shas[1:4]  # oldest first
    bands = bands_of(tiny_model)
    threshold = tiny_model.threshold_
    for i, commit in zip((1, 2, 3), doc["commits"], strict=True):
        la, ld, nf = COUNTS[i]
        assert commit["features"] == {"la": la, "ld": ld, "nf": nf}
        expected = probability(la, ld, nf)
        assert commit["probability"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert commit["risk_band"] == bands.band(commit["probability"]).value
        assert commit["risk"] == (commit["probability"] >= threshold)
        assert commit["threshold"] == threshold
        assert [r["feature"] for r in commit["reasons"]]  # explained
        assert len(commit["reasons"]) == 3  # --top-k default 3, the model has exactly three features
    # the 812-line commit is the risky one; the one-line changes are not
    # one-line changes are far below the base rate (34%): minimal
    assert [c["risk_band"] for c in doc["commits"]] == ["minimal", "high", "minimal"]
    big = doc["commits"][1]
    assert big["subject"] == "Add parser"
    assert big["reasons_text"][0] == "many lines added (la=812) raised the risk"
    # files by churn: parser.py (800 added, new), app.py (12 added after its 20 lines -> first line 21)
    assert [(f["path"], f["first_line"]) for f in big["files"]] == [("src/parser.py", 1), ("src/app.py", 21)]
    assert doc["model"]["name"] == "tiny"
    assert doc["model"]["version"] == "local"
    assert doc["counts"] == {"high": 1, "medium": 0, "low": 0, "minimal": 2}
    assert doc["fail_on"] is None
    assert doc["failed"] is False
    assert "mining its history once" in result.err  # no state yet on this full clone


def test_fail_on_high_exits_10_after_printing_the_report(
    cli: Cli,
    risky_repo: RepoBuilder,
    tiny_model_dir: Path,
    probability: Callable[[float, float, float], float],
) -> None:
    shas = risky_repo.shas
    risky = cli(
        "predict", "--repo", str(risky_repo.path), "--range", f"{shas[0]}..HEAD", "--model-dir",
        str(tiny_model_dir), "--format", "markdown", "--fail-on", "high",
    )  # fmt: skip
    assert risky.code == RISK_EXIT_CODE == 10
    assert f"Fail-on `high`: 1 commit reached it: `{shas[2][:12]}`." in risky.out
    assert (
        risky.err.strip()
        .splitlines()[-1]
        .startswith("error: 1 commit(s) reached --fail-on high, in the high band (probability at or above ")
    )
    assert risky.err.strip().endswith(f": {shas[2][:12]} ({probability(*COUNTS[2]):.3f})")
    calm = cli(
        "predict", "--repo", str(risky_repo.path), "--commit", shas[3], "--model-dir", str(tiny_model_dir),
        "--fail-on", "high",
    )  # fmt: skip
    assert calm.code == 0, calm
    # 'any': flagged at --threshold; with threshold 0 every commit is flagged, with 1 (almost) none
    flagged = cli(
        "predict", "--repo", str(risky_repo.path), "--commit", shas[3], "--model-dir", str(tiny_model_dir),
        "--fail-on", "any", "--threshold", "0",
    )  # fmt: skip
    assert flagged.code == 10


def test_threshold_failure_in_github_format_annotates_every_failing_commit(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path
) -> None:
    """``--threshold 0.01 --fail-on any``: a low-band commit above 0.01 fails the run too, and says so."""
    risky_repo.commit("Add helpers", {"src/helpers.py": lines(60)}, days=1)  # (60, 0, 1): about 0.07, low
    shas = risky_repo.shas
    result = cli(
        "predict", "--repo", str(risky_repo.path), "--range", f"{shas[1]}..{shas[4]}", "--model-dir",
        str(tiny_model_dir), "--format", "github", "--threshold", "0.01", "--fail-on", "any",
    )  # fmt: skip
    assert result.code == RISK_EXIT_CODE, result
    errors = [line for line in result.out.splitlines() if line.startswith("::")]
    why = "Fails --fail-on any: flagged risky (probability at or above the threshold 0.010)."
    # c2 (high) and c4 (low, 0.07) fail; c3 (about 0.0001) does not and gets no annotation
    assert len(errors) == 2, result.out
    assert errors[0].startswith("::error file=src/parser.py,line=1,title=defectops%3A high defect risk")
    assert errors[1].startswith("::error file=src/helpers.py,line=1,title=defectops%3A low defect risk")
    assert all(line.endswith(why) for line in errors)
    one_line_error(
        result, RISK_EXIT_CODE, "2 commit(s) reached --fail-on any, flagged risky (probability at or above "
        f"the threshold 0.010): {shas[2][:12]} ("
    )  # fmt: skip


def test_github_format_writes_annotations_and_summary(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    sarif = tmp_path / "out" / "defectops.sarif"
    shas = risky_repo.shas
    result = cli(
        "predict", "--repo", str(risky_repo.path), "--range", f"{shas[1]}..{shas[3]}", "--model-dir",
        str(tiny_model_dir), "--format", "github", "--sarif-file", str(sarif), "--sarif-min-band", "minimal",
    )  # fmt: skip
    assert result.code == 0, result
    lines_out = result.out.splitlines()
    assert lines_out[0].startswith(f"{shas[2][:12]} high ")
    assert lines_out[1].startswith("::error file=src/parser.py,line=1,title=defectops%3A high defect risk (")
    assert lines_out[0].endswith("the base rate of 34.0%)")  # the base rate beside the band
    assert lines_out[2].startswith(f"{shas[3][:12]} minimal ")
    assert lines_out[3].startswith("defectops: 2 commit(s) scored: 1 high, 0 medium, 0 low, 1 minimal")
    assert len(lines_out) == 4
    text = summary.read_text()
    assert text.startswith(
        "<!-- defectops:predict -->\n### Defect risk: 1 high, 0 medium, 0 low, 1 minimal\n"
    )
    doc = json.loads(sarif.read_text())
    assert [r["partialFingerprints"]["defectopsCommit/v1"] for r in doc["runs"][0]["results"]] == shas[2:4]
    # c3 changed line 4 of app.py ("line 3" -> "LINE 3")
    location = doc["runs"][0]["results"][1]["locations"][0]["physicalLocation"]
    assert location == {
        "artifactLocation": {"uri": "src/app.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 4},
    }


def test_sarif_and_table_on_stdout(cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path) -> None:
    sarif = cli(
        "predict", "--repo", str(risky_repo.path), "--model-dir", str(tiny_model_dir), "--format", "sarif"
    )
    assert sarif.code == 0, sarif
    doc = json.loads(sarif.out)  # the whole stdout is the SARIF document
    assert doc["version"] == "2.1.0"
    assert doc["runs"][0]["results"] == []  # HEAD is a minimal-risk commit: no alert by default
    low = cli(
        "predict", "--repo", str(risky_repo.path), "--model-dir", str(tiny_model_dir), "--format", "sarif",
        "--sarif-min-band", "low",
    )  # fmt: skip
    assert json.loads(low.out)["runs"][0]["results"] == []  # below half the base rate: not even low
    minimal = cli(
        "predict", "--repo", str(risky_repo.path), "--model-dir", str(tiny_model_dir), "--format", "sarif",
        "--sarif-min-band", "minimal",
    )  # fmt: skip
    [result] = json.loads(minimal.out)["runs"][0]["results"]
    assert (result["ruleId"], result["level"]) == ("defectops/minimal-risk-change", "note")
    assert "the base rate of 34.0%" in result["message"]["text"]
    table = cli("predict", "--repo", str(risky_repo.path), "--model-dir", str(tiny_model_dir))
    assert table.code == 0, table
    assert risky_repo.shas[3][:12] in table.out
    assert "Fix typo in app" in table.out


def test_store_writes_one_predictions_file_per_commit(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path, tmp_path: Path
) -> None:
    store_dir = tmp_path / "store"
    shas = risky_repo.shas
    result = cli(
        "predict", "--repo", str(risky_repo.path), "--range", f"{shas[1]}..HEAD", "--model-dir",
        str(tiny_model_dir), "--store", str(store_dir), "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result
    store = ArtifactStore.from_url(store_dir)
    files = store.list_predictions()
    assert sorted(f.commit for f in files) == sorted(shas[2:4])
    doc = json.loads(result.out)
    for commit in doc["commits"]:
        (file,) = store.list_predictions(commit=commit["sha"])
        assert file.key.startswith(f"predictions/predictions_{commit['sha']}_")
        frame = store.read_predictions(file)
        assert list(frame.columns) == [
            "commit", "repo", "predicted_at", "model_name", "model_version", "probability", "risk", "risk_band",
            "base_rate", "threshold", "reasons", "la", "ld", "nf",
        ]  # fmt: skip
        row = frame.iloc[0]
        assert row["commit"] == commit["sha"]
        assert row["probability"] == pytest.approx(commit["probability"], rel=1e-12, abs=1e-15)
        assert row["risk_band"] == commit["risk_band"]
        assert json.loads(row["reasons"])[0]["feature"] == commit["reasons"][0]["feature"]


def test_merges_are_listed_not_scored(cli: Cli, tmp_path: Path, tiny_model_dir: Path) -> None:
    repo = build_with_merges(tmp_path / "merges")
    merge = repo.shas[5]  # start, grow x, feature y, feature fix, main x again, merge, after merge
    result = cli(
        "predict", "--repo", str(repo.path), "--range", f"{repo.shas[1]}..HEAD", "--model-dir",
        str(tiny_model_dir), "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert doc["skipped_merges"] == [merge]
    assert sorted(c["sha"] for c in doc["commits"]) == sorted([*repo.shas[2:5], repo.shas[6]])
    only_merge = cli(
        "predict", "--repo", str(repo.path), "--commit", merge, "--model-dir", str(tiny_model_dir)
    )
    assert only_merge.code == 0, only_merge
    assert "No commit to score." in only_merge.out
    assert "1 merge commit(s) not scored" in only_merge.out


def _shallow_clone(source: RepoBuilder, target: Path, depth: int) -> Path:
    subprocess.run(
        ["git", "clone", "-q", f"--depth={depth}", f"file://{source.path}", str(target)],
        check=True,
        capture_output=True,
    )
    return target


def _export_state(repo: RepoBuilder, rev: str, root: Path) -> Path:
    """What a trusted job does: mine up to ``rev`` and export the miner state."""
    miner = Miner(GitRepo.open(repo.path), Workspace(root / "trusted-ws").ensure(), MineOptions(rev=rev))
    miner.mine()
    return miner.store.path


def test_shallow_clone_with_imported_state_matches_the_full_clone(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = risky_repo.shas[3]
    full = cli(
        "predict", "--repo", str(risky_repo.path), "--model-dir", str(tiny_model_dir), "--format", "json"
    )
    assert full.code == 0, full
    expected = json.loads(full.out)["commits"][0]

    risky_repo.git("branch", "trusted", risky_repo.shas[2])
    state_file = _export_state(risky_repo, "trusted", tmp_path)
    clone = _shallow_clone(risky_repo, tmp_path / "shallow", depth=2)  # HEAD and its parent: enough for HEAD

    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ci-ws-1"))
    refused = cli("predict", "--repo", str(clone), "--model-dir", str(tiny_model_dir))
    one_line_error(refused, 4, "shallow clone and there is no miner state")

    with_file = cli(
        "predict", "--repo", str(clone), "--model-dir", str(tiny_model_dir), "--format", "json",
        "--state", str(state_file),
    )  # fmt: skip
    assert with_file.code == 0, with_file
    got = json.loads(with_file.out)["commits"][0]
    assert got["sha"] == head
    assert got["probability"] == expected["probability"]
    assert got["features"] == expected["features"]

    store_dir = tmp_path / "store"
    ArtifactStore.from_url(store_dir).put_state(state_file, "risky.sqlite")
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ci-ws-2"))
    with_url = cli(
        "predict", "--repo", str(clone), "--model-dir", str(tiny_model_dir), "--format", "json",
        "--state-from", f"{store_dir}/state/risky.sqlite",
    )  # fmt: skip
    assert with_url.code == 0, with_url
    assert json.loads(with_url.out)["commits"][0]["probability"] == expected["probability"]


def test_shallow_clone_missing_the_parent_is_a_clear_error(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path, tmp_path: Path
) -> None:
    state_file = _export_state(risky_repo, "HEAD", tmp_path)
    risky_repo.commit("one more", {"src/more.py": lines(3)}, days=1)
    clone = _shallow_clone(risky_repo, tmp_path / "shallow", depth=1)  # HEAD without its parent
    result = cli(
        "predict", "--repo", str(clone), "--model-dir", str(tiny_model_dir), "--state", str(state_file)
    )
    one_line_error(result, 3, "fetch at least one more commit of history")


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--commit", "deadbeef"], 3, "unknown revision 'deadbeef'"),
        (["--range", "HEAD..HEAD"], 2, "no commits between HEAD and HEAD"),
        (["--range", "HEAD~1...HEAD"], 2, "use BASE..HEAD (two dots)"),
        (["--range", "HEAD"], 2, "expected BASE..HEAD"),
        (["--commit", "HEAD", "--range", "HEAD~1..HEAD"], 2, "either --commit or --range"),
        (["--format", "xml"], 2, "--format 'xml' is not one of table|json|markdown|sarif|github"),
        (["--fail-on", "low"], 2, "--fail-on 'low' is not one of high|medium|any"),
        (["--sarif-min-band", "any"], 2, "--sarif-min-band 'any' is not one of minimal|low|medium|high"),
        (["--threshold", "1.5"], 2, "--threshold must be within [0, 1]"),
        (["--top-k", "0"], 2, "--top-k must be at least 1"),
        (["--state", "/nonexistent/state.sqlite"], 4, "no such state file"),
        (["--state-from", "s3://bucket/prefix/repo.sqlite"], 2, "expected <artifact store>/state/<name>"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_code(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path, args: list[str], code: int, fragment: str
) -> None:
    result = cli("predict", "--repo", str(risky_repo.path), "--model-dir", str(tiny_model_dir), *args)
    one_line_error(result, code, fragment)


def test_no_model_and_bad_model_folders(cli: Cli, risky_repo: RepoBuilder, tmp_path: Path) -> None:
    repo = str(risky_repo.path)
    # (no model named and none in the workspace: the cross-project starter scores, tests/ci/test_ci_starter.py)
    one_line_error(cli("predict", "--repo", repo, "--model-dir", str(tmp_path / "nope")), 6, "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(cli("predict", "--repo", repo, "--model-dir", str(empty)), 6, "no model.json")
    one_line_error(
        cli("predict", "--repo", repo, "--model-name", "jit", "--model-dir", str(empty)),
        2,
        "give only one of",
    )
    # a model named explicitly is never replaced by the starter
    one_line_error(cli("predict", "--repo", repo, "--model-name", "jit"), 7, "nothing is registered")


def test_not_a_repository(cli: Cli, tmp_path: Path, tiny_model_dir: Path) -> None:
    one_line_error(
        cli("predict", "--repo", str(tmp_path), "--model-dir", str(tiny_model_dir)), 3, "not a git repository"
    )


def test_text_model_gets_the_message_and_the_changed_paths(
    cli: Cli, risky_repo: RepoBuilder, tmp_path: Path
) -> None:
    import numpy as np
    import pandas as pd

    from defectops.training.models import make_model

    rng = np.random.default_rng(1)
    rows = 200
    la = np.floor(np.exp(rng.uniform(0, 7, rows)))
    words = rng.choice(["fix crash", "add parser", "docs typo", "refactor"], rows)
    paths = rng.choice(["src/app.py", "src/parser.py\nsrc/app.py", "README"], rows)
    y = ((np.log(la) > 5) | (words == "add parser")).astype(int)
    model = make_model("text", features=("la",)).fit(
        pd.DataFrame({"la": la, "message": words, "paths": paths}), y
    )
    folder = model.save(tmp_path / "text-model")

    result = cli(
        "predict", "--repo", str(risky_repo.path), "--commit", risky_repo.shas[2], "--model-dir", str(folder),
        "--format", "json", "--top-k", "5",
    )  # fmt: skip
    assert result.code == 0, result
    (commit,) = json.loads(result.out)["commits"]
    # the text model sees c2's message and its two changed paths (one per line)
    expected = model.predict_proba(
        pd.DataFrame({"la": [812.0], "message": ["Add parser"], "paths": ["src/parser.py\nsrc/app.py"]})
    )[0, 1]
    assert commit["probability"] == pytest.approx(expected, rel=1e-9)
    features = {r["feature"] for r in commit["reasons"]}
    assert {"msg:add", "msg:parser"} <= features
    assert commit["features"] == {"la": 812.0}


def test_state_that_already_includes_the_commit(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state exported after the scored commit holds its history, not its metrics: a complete clone is mined
    instead (same result as without a state); a shallow clone gets a clear error."""
    expected = json.loads(
        cli(
            "predict", "--repo", str(risky_repo.path), "--model-dir", str(tiny_model_dir), "--format", "json"
        ).out
    )["commits"][0]
    state_file = _export_state(risky_repo, "HEAD", tmp_path)  # the trusted job ran after HEAD was pushed

    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ci-ws-full"))
    full = cli(
        "predict", "--repo", str(risky_repo.path), "--model-dir", str(tiny_model_dir), "--format", "json",
        "--state", str(state_file),
    )  # fmt: skip
    assert full.code == 0, full
    assert "already includes" in full.err
    assert json.loads(full.out)["commits"][0] == expected

    clone = _shallow_clone(risky_repo, tmp_path / "shallow", depth=2)
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ci-ws-shallow"))
    shallow = cli(
        "predict", "--repo", str(clone), "--model-dir", str(tiny_model_dir), "--state", str(state_file)
    )
    one_line_error(shallow, 4, f"already includes {risky_repo.shas[3][:12]}, so it cannot score it")


def test_an_unknown_revision_is_reported_before_any_model_or_workspace(
    cli: Cli, risky_repo: RepoBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found on flask: with no model in the workspace, `predict --commit nosuchrev` first printed the note that
    # the cross-project starter would score, then the error, and left an empty .defectops/ wherever it ran.
    workspace = tmp_path / "fresh-ws"
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(workspace))
    result = cli("predict", "--repo", str(risky_repo.path), "--commit", "nosuchrev")
    one_line_error(result, 3, "unknown revision 'nosuchrev'")
    assert result.err.strip().count("\n") == 0, result.err  # the error alone, no note before it
    assert not workspace.exists()
    one_line_error(cli("predict", "--repo", str(risky_repo.path), "--range", "HEAD..HEAD"), 2, "no commits")
    assert not workspace.exists()
