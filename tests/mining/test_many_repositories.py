"""`defectops mine --repos FILE`: local worker processes and a real Dask LocalCluster."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from defectops.cli import main
from defectops.mining.many import mine_many
from gitrepo import BOB, RepoBuilder, lines
from sample_repos import build_handworked


@pytest.fixture
def repo_list(tmp_path: Path) -> Path:
    first = build_handworked(tmp_path / "first")
    second = RepoBuilder.create(tmp_path / "second")
    second.commit("one", {"x.py": lines(3)})
    second.commit("two", {"x.py": lines(5)}, author=BOB, days=2)
    listing = tmp_path / "repos.txt"
    # a path, a clone URL, a comment, a blank line and a path that is not a repository
    listing.write_text(f"{first.path}\n# comment\n\nfile://{second.path}\n{tmp_path / 'missing'}\n")
    return listing


def check_partitions(out: Path) -> None:
    frame = pd.read_parquet(out / "commits_all", engine="pyarrow") if (out / "commits_all").exists() else None
    assert frame is None
    parts = sorted(p.name for p in out.iterdir())
    assert len(parts) == 2
    assert all(p.startswith("repo=") for p in parts)
    sizes = sorted(len(pd.read_parquet(out / p / "commits.parquet")) for p in parts)
    assert sizes == [2, 7]


def test_local_workers(repo_list: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = mine_many(repo_list, workers=2, out=out, workspace_root=tmp_path / "ws")
    assert summary["mined"] == 2
    assert summary["failed"] == 1
    failed = next(r for r in summary["repositories"] if "error" in r)
    assert "no such directory" in failed["error"]
    check_partitions(out)


def test_dask_local_cluster(repo_list: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster

    out = tmp_path / "out"
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        summary = mine_many(
            repo_list, dask_address=cluster.scheduler_address, out=out, workspace_root=tmp_path / "ws"
        )
    assert summary["mined"] == 2
    assert summary["failed"] == 1
    check_partitions(out)


def test_cli_repos_json(repo_list: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["-w", str(tmp_path / "ws"), "mine", "--repos", str(repo_list), "--workers", "1", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert (document["mined"], document["failed"]) == (2, 1)


@pytest.mark.slow  # an integration test of over 10 s: CI's slow run
def test_unreachable_dask_scheduler_is_one_line_error(
    repo_list: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["-w", str(tmp_path / "ws"), "mine", "--repos", str(repo_list), "--dask", "tcp://127.0.0.1:9"])
    assert exc.value.code == 2
    assert "cannot reach the scheduler" in capsys.readouterr().err
