"""``heal --once`` and ``monitor`` in a workspace with no model: one line, a non-zero exit, no traceback, and
no mining or MLflow run first (the embedded registry is not even created)."""

from __future__ import annotations

from pathlib import Path

import pytest

from defectops.cli import main
from gitrepo import ALICE, RepoBuilder


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    captured = capsys.readouterr()
    return int(stopped.value.code or 0), captured.err


def test_heal_once_without_a_model_answers_in_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = RepoBuilder.create(tmp_path / "app")
    repo.commit("initial import", {"a.py": "x = 1\n"}, author=ALICE, days=0)
    workspace = tmp_path / "ws"
    code, err = _run(["--workspace", str(workspace), "heal", "--once", "--repo", str(repo.path)], capsys)
    assert code == 7  # NotFoundError
    assert err.startswith("error: nothing to heal: 'defectops-")  # the repository's name (its root commit)
    assert err.rstrip().endswith(
        f"is not registered in this workspace; train it first (defectops run --repo {repo.path})"
    )
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert not (workspace / "state").exists()  # nothing was mined
    assert not (workspace / "mlflow" / "mlflow.db").exists()  # the registry was not even created


def test_monitor_without_files_or_a_model_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = tmp_path / "ws"
    code, err = _run(["--workspace", str(workspace), "monitor"], capsys)
    assert code == 7
    assert err.startswith(f"error: no model is registered in the workspace {workspace}")
    assert err.count("\n") == 1
    code, err = _run(["--workspace", str(workspace), "monitor", "--since", "yesterday"], capsys)
    assert code == 2  # InputError, before the registry is looked at
    assert "--since 'yesterday': use a duration (7d, 12h, 2w) or a date (YYYY-MM-DD)" in err
    code, err = _run(["--workspace", str(workspace), "monitor", "--window", "w.parquet"], capsys)
    assert code == 2
    assert "file mode needs both --reference and --window" in err
