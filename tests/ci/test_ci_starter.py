"""`defectops predict --starter`: the shipped cross-project starter in CI, with no registry at all, marked as
cross-project in every format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from defectops.cli import main
from gitrepo import RepoBuilder


def _small_repo(path: Path, commits: int = 4) -> RepoBuilder:
    """``commits`` commits, one a day, each adding a file 20 lines longer than the last."""
    repo = RepoBuilder.create(path)
    now = datetime.now(UTC)
    for i in range(commits):
        lines = "".join(f"{k}\n" for k in range(3 + 20 * i))
        repo.commit(f"c{i}", {f"f{i}.py": lines}, when=now - timedelta(days=9 - i))
    return repo


def test_predict_scores_with_the_starter_without_a_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _small_repo(tmp_path / "repo", commits=6)
    ws = tmp_path / "ws"
    main(
        [
            "-w",
            str(ws),
            "predict",
            "--repo",
            str(repo.path),
            "--starter",
            "--range",
            "HEAD~3..HEAD",
            "--format",
            "json",
        ]
    )
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["model"]["cross_project"] is True
    assert "cross-project starter v3" in document["model"]["description"]
    assert len(document["commits"]) == 3
    assert all(c["cross_project"] for c in document["commits"])
    assert all(c["reasons"] for c in document["commits"])
    assert "CROSS-PROJECT starter" in captured.err  # the note on stderr says what scored the commits
    assert not (ws / "mlflow").exists()  # no registry was created or needed
    assert not (ws / "registry_audit.db").exists()

    sarif_file = tmp_path / "out.sarif"
    main(["-w", str(ws), "predict", "--repo", str(repo.path), "--starter", "--format", "markdown",
          "--sarif-file", str(sarif_file), "--sarif-min-band", "low"])  # fmt: skip
    markdown = capsys.readouterr().out
    assert "Cross-project model" in markdown
    run = json.loads(sarif_file.read_text())["runs"][0]
    assert run["properties"]["model"]["cross_project"] is True
    result = run["results"][0]
    assert result["properties"]["crossProject"] is True
    assert "cross-project starter model" in result["message"]["text"]


def test_predict_refuses_the_starter_together_with_another_model(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("one", {"a.py": "x\n"}, when=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "-w",
                str(tmp_path / "ws"),
                "predict",
                "--repo",
                str(repo.path),
                "--starter",
                "--model-dir",
                str(tmp_path),
            ]
        )
    assert exit_info.value.code != 0


def test_predict_without_a_model_uses_the_starter_in_a_new_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new repository's first CI run: no model named, nothing registered in the workspace's own registry."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = _small_repo(tmp_path / "repo")
    ws = tmp_path / "ws"
    main(["-w", str(ws), "predict", "--repo", str(repo.path), "--format", "json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["model"]["cross_project"] is True
    assert document["commits"][0]["cross_project"] is True
    assert "no model of this repository" in captured.err
    assert "CROSS-PROJECT starter scores until `defectops run` trains one" in captured.err
    assert not (ws / "mlflow").exists()


def test_predict_without_a_model_on_a_tracking_server_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tracking server configured, a missing model is an error: the job must not quietly score with
    another model than the one its server lost."""
    tracking = tmp_path / "server.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tracking}")
    repo = _small_repo(tmp_path / "repo")
    with pytest.raises(SystemExit) as exit_info:
        main(["-w", str(tmp_path / "ws"), "predict", "--repo", str(repo.path), "--format", "json"])
    assert exit_info.value.code != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "starter" not in captured.err.lower()
    assert len(captured.err.strip().splitlines()) == 1
