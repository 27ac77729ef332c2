"""`defectops mine` end to end through the CLI: results, JSON, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from defectops.cli import main
from gitrepo import ALICE, BOB, RepoBuilder, lines


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines_ = [line for line in err.splitlines() if line.strip()]
    assert len(lines_) == 1, err
    assert "Traceback" not in err
    return lines_[0]


def test_mine_json_summary_and_out_file(
    handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.parquet"
    code, stdout, _ = run_cli(
        ["-w", str(tmp_path / "ws"), "mine", "--repo", str(handworked.path), "--out", str(out), "--json"],
        capsys,
    )
    assert code == 0
    document = json.loads(stdout)
    assert document["commits"] == 7
    assert document["new_commits"] == 7
    assert document["summary"]["scored_commits"] == 7
    assert document["out_rows"] == 7
    assert pd.read_parquet(out)["sha"].tolist() == handworked.shas
    fingerprint = json.loads(out.with_name("out.parquet.fingerprint.json").read_text())
    assert fingerprint["source_head"] == handworked.shas[-1]
    assert fingerprint["rows"] == 7
    assert len(fingerprint["content_sha256"]) == 64


def test_since_limits_written_rows_not_history(
    handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "recent.parquet"
    args = [
        "-w",
        str(tmp_path / "ws"),
        "mine",
        "--repo",
        str(handworked.path),
        "--since",
        "2020-02-02",
        "--out",
        str(out),
        "--json",
    ]
    code, _, _ = run_cli(args, capsys)
    assert code == 0
    frame = pd.read_parquet(out)
    # c6 (day 40 = 2020-02-10) and c7 (day 50) are after 2020-02-02 (c5 is day 31 = 2020-02-01); their history metrics still see c1..c5.
    assert frame["sha"].tolist() == handworked.shas[5:]
    assert frame.iloc[1]["exp"] == 2


def test_commit_and_range_scoring_json(
    handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = str(tmp_path / "ws")
    handworked.git("branch", "-f", "base", handworked.shas[4])
    assert (
        run_cli(["-w", ws, "mine", "--repo", str(handworked.path), "--branch", "base", "--json"], capsys)[0]
        == 0
    )
    code, stdout, _ = run_cli(
        [
            "-w",
            ws,
            "mine",
            "--repo",
            str(handworked.path),
            "--branch",
            "base",
            "--range",
            f"{handworked.shas[4]}..{handworked.shas[6]}",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    commits = json.loads(stdout)["commits"]
    assert [c["sha"] for c in commits] == handworked.shas[5:]
    assert commits[1]["sexp"] == 1  # c7, worked out by hand in test_change_metrics.py


def test_not_a_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["-w", str(tmp_path / "ws"), "mine", "--repo", str(tmp_path)], capsys)
    assert code == 3
    assert "not a git repository" in one_line_error(err)


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["-w", str(tmp_path / "ws"), "mine", "--repo", str(tmp_path / "nope")], capsys)
    assert code == 3
    assert "no such directory" in one_line_error(err)


def test_empty_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    RepoBuilder.create(tmp_path / "empty")
    code, _, err = run_cli(["-w", str(tmp_path / "ws"), "mine", "--repo", str(tmp_path / "empty")], capsys)
    assert code == 3
    assert "no commits" in one_line_error(err)


def test_shallow_clone_is_refused_unless_allowed(
    handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", f"file://{handworked.path}", str(shallow)], check=True
    )
    ws = str(tmp_path / "ws")
    code, _, err = run_cli(["-w", ws, "mine", "--repo", str(shallow)], capsys)
    assert code == 3
    assert "shallow clone" in one_line_error(err)
    code, stdout, _ = run_cli(["-w", ws, "mine", "--repo", str(shallow), "--allow-shallow", "--json"], capsys)
    assert code == 0
    assert json.loads(stdout)["commits"] == 2


def test_shallow_boundary_commit_cannot_be_scored(
    handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{handworked.path}", str(shallow)], check=True
    )
    exported = tmp_path / "state.sqlite"
    ws_full = str(tmp_path / "full")
    handworked.git("branch", "-f", "base", handworked.shas[5])
    assert (
        run_cli(["-w", ws_full, "mine", "--repo", str(handworked.path), "--branch", "base"], capsys)[0] == 0
    )
    assert (
        run_cli(
            [
                "-w",
                ws_full,
                "state",
                "export",
                "--repo",
                str(handworked.path),
                "--branch",
                "base",
                "--out",
                str(exported),
            ],
            capsys,
        )[0]
        == 0
    )
    ws = str(tmp_path / "ci")
    assert run_cli(["-w", ws, "state", "import", "--repo", str(shallow), str(exported)], capsys)[0] == 0
    code, _, err = run_cli(["-w", ws, "mine", "--repo", str(shallow), "--commit", "HEAD"], capsys)
    assert code == 3
    assert "fetch at least one more commit" in one_line_error(err)


def test_shallow_ci_clone_scores_with_imported_state(
    handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # CI: a depth-2 clone (the new commit and its parent) and the state exported where history was mined.
    ws_full = str(tmp_path / "full")
    handworked.git("branch", "-f", "base", handworked.shas[5])
    assert (
        run_cli(["-w", ws_full, "mine", "--repo", str(handworked.path), "--branch", "base"], capsys)[0] == 0
    )
    exported = tmp_path / "state.sqlite"
    assert (
        run_cli(
            [
                "-w",
                ws_full,
                "state",
                "export",
                "--repo",
                str(handworked.path),
                "--branch",
                "base",
                "--out",
                str(exported),
            ],
            capsys,
        )[0]
        == 0
    )
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", f"file://{handworked.path}", str(shallow)], check=True
    )
    ws = str(tmp_path / "ci")
    assert run_cli(["-w", ws, "state", "import", "--repo", str(shallow), str(exported)], capsys)[0] == 0
    code, stdout, _ = run_cli(
        ["-w", ws, "mine", "--repo", str(shallow), "--commit", "HEAD", "--json"], capsys
    )
    assert code == 0
    (commit,) = json.loads(stdout)["commits"]
    # the values of c7 worked out by hand: the imported state supplies the history the clone lacks
    assert (commit["exp"], commit["sexp"], commit["ndev"], commit["la"]) == (2, 1, 0, 2)


def test_missing_objects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = RepoBuilder.create(tmp_path / "broken")
    repo.commit("one", {"a.txt": lines(3)})
    repo.commit("two", {"a.txt": lines(4)})
    blob = repo.git("rev-parse", "HEAD:a.txt").strip()
    os.remove(repo.path / ".git" / "objects" / blob[:2] / blob[2:])
    code, _, err = run_cli(["-w", str(tmp_path / "ws"), "mine", "--repo", str(repo.path)], capsys)
    assert code == 3
    assert "missing" in one_line_error(err).lower()


def test_bad_options_are_one_line_errors(
    handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = str(tmp_path / "ws")
    code, _, err = run_cli(["-w", ws, "mine", "--repo", str(handworked.path), "--since", "yesterday"], capsys)
    assert code == 2
    assert "--since" in one_line_error(err)
    code, _, err = run_cli(
        ["-w", ws, "mine", "--repo", str(handworked.path), "--out", str(tmp_path / "x.csv")], capsys
    )
    assert code == 2
    code, _, err = run_cli(
        ["-w", ws, "mine", "--repo", str(handworked.path), "--commit", "nosuchrev"], capsys
    )
    assert code == 4  # no state yet: told to mine first
    run_cli(["-w", ws, "mine", "--repo", str(handworked.path)], capsys)
    code, _, err = run_cli(
        ["-w", ws, "mine", "--repo", str(handworked.path), "--commit", "nosuchrev"], capsys
    )
    assert code == 3
    assert "unknown revision" in one_line_error(err)
    code, _, err = run_cli(["-w", ws, "mine", "--repo", str(handworked.path), "--range", "..HEAD"], capsys)
    assert code == 2


def test_non_utf8_paths_and_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = RepoBuilder.create(tmp_path / "latin")
    repo.commit("first", {"ok.txt": "x\n"})
    (repo.path / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"caf\xe9\n")
    repo.git("add", "-A")
    message = tmp_path / "msg"
    message.write_bytes(b"R\xe9sum\xe9 du bug\n")
    repo.git(
        "commit",
        "-q",
        "-F",
        str(message),
        env={"GIT_AUTHOR_DATE": "2020-02-01T00:00:00Z", "GIT_COMMITTER_DATE": "2020-02-01T00:00:00Z"},
    )
    out = tmp_path / "out.parquet"
    code, _, err = run_cli(
        ["-w", str(tmp_path / "ws"), "mine", "--repo", str(repo.path), "--out", str(out), "--quiet"], capsys
    )
    assert code == 0, err
    frame = pd.read_parquet(out)
    assert frame.iloc[1]["la"] == 1
    assert "sum" in frame.iloc[1]["message"]
    (files_path,) = (tmp_path / "ws" / "datasets").glob("*/files.parquet")
    files = pd.read_parquet(files_path)
    # the byte 0xE9 is not UTF-8: it stays visible as an escape instead of being dropped or crashing
    assert "caf\\xe9.txt" in set(files["path"])


def test_submodules_are_recorded_not_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = RepoBuilder.create(tmp_path / "sub")
    sub.commit("sub", {"s.txt": "s\n"})
    repo = RepoBuilder.create(tmp_path / "main")
    repo.commit("first", {"a.txt": lines(2)}, author=ALICE)
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "vendor/sub")
    repo.commit("add submodule", author=BOB, days=1)
    out = tmp_path / "out.parquet"
    code, _, err = run_cli(
        ["-w", str(tmp_path / "ws"), "mine", "--repo", str(repo.path), "--out", str(out), "--quiet"], capsys
    )
    assert code == 0, err
    row = pd.read_parquet(out).iloc[1]
    # .gitmodules (a text file, 3 lines) counts; the gitlink vendor/sub does not.
    assert (row["nf"], row["la"], row["ns"]) == (1, 3, 1)


def test_five_thousand_file_commit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = RepoBuilder.create(tmp_path / "big")
    for i in range(5000):
        folder = repo.path / f"d{i % 50}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.txt").write_text(f"{i}\n")
    repo.git("add", "-A")
    repo.commit("import 5000 files")
    out = tmp_path / "out.parquet"
    code, _, err = run_cli(
        ["-w", str(tmp_path / "ws"), "mine", "--repo", str(repo.path), "--out", str(out), "--quiet"], capsys
    )
    assert code == 0, err
    row = pd.read_parquet(out).iloc[0]
    # 5000 one-line files in 50 directories under 50 subsystems; equal shares: entropy log2(5000)
    assert (row["nf"], row["nd"], row["ns"], row["la"]) == (5000, 50, 50, 5000)
    assert row["entropy"] == pytest.approx(12.287712379549449)


def test_bare_repository_is_mined(
    handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(handworked.path), str(bare)], check=True)
    code, stdout, _ = run_cli(["-w", str(tmp_path / "ws"), "mine", "--repo", str(bare), "--json"], capsys)
    assert code == 0
    assert json.loads(stdout)["commits"] == 7


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_training_on_a_mined_table_without_labels_says_how_to_train(
    command: str, handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``defectops mine --out T`` then ``defectops train --data T`` (README's step by step) told the user to pass
    --mapping with a label column the mined table does not have."""
    out = tmp_path / "mined.parquet"
    ws = str(tmp_path / "ws")
    assert run_cli(["-w", ws, "mine", "--repo", str(handworked.path), "--out", str(out)], capsys)[0] == 0
    code, _, err = run_cli(["-w", ws, command, "--data", str(out)], capsys)
    assert code == 2
    assert one_line_error(err) == (
        f"error: {out} is a table of mined change metrics without labels; `defectops run --repo PATH` "
        "labels and trains on a mined repository (--data takes a labelled table: a label column and a time "
        "column, mapped with --mapping)"
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("HEAD~2...HEAD", "error: invalid range 'HEAD~2...HEAD': use BASE..HEAD (two dots)"),
        ("HEAD", "error: --range 'HEAD': expected BASE..HEAD"),
    ],
)
def test_a_range_that_is_not_base_dot_dot_head_is_one_line(
    given: str, message: str, handworked: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mine --range A...B`` said "unknown revision '.B'"; ``mine --range HEAD`` scored HEAD as one commit."""
    ws = str(tmp_path / "ws")
    assert run_cli(["-w", ws, "mine", "--repo", str(handworked.path)], capsys)[0] == 0
    code, out, err = run_cli(["-w", ws, "mine", "--repo", str(handworked.path), "--range", given], capsys)
    assert code == 2
    assert out == ""
    assert one_line_error(err) == message
