"""``--sarif-file`` and ``--markdown-file`` naming a path that cannot be written are refused before anything is
scored or stored. They were written after the table had shown the predictions and before ``--store``: exit 2
with the acknowledged predictions never reaching the store. Run through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_main import run_main
from gitrepo import RepoBuilder


def test_an_unwritable_output_file_is_refused_before_any_work(
    risky_repo: RepoBuilder, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    a_folder = tmp_path / "a-folder"
    a_folder.mkdir()
    shas = risky_repo.shas
    base = ["predict", "--repo", str(risky_repo.path), "--range", f"{shas[1]}..{shas[3]}",
            "--model-dir", str(tiny_model_dir), "--store", str(store)]  # fmt: skip

    code, out, err = run_main([*base, "--sarif-file", str(a_file / "risk.sarif")], capsys)
    assert code == 2
    assert out == ""  # nothing scored, so nothing acknowledged
    assert (
        err
        == f"error: --sarif-file: cannot write {a_file / 'risk.sarif'}: {a_file} is a file, not a folder\n"
    )
    assert not store.exists()

    code, out, err = run_main([*base, "--markdown-file", str(a_folder)], capsys)
    assert code == 2
    assert out == ""
    assert err == f"error: --markdown-file: cannot write {a_folder}: it is a folder\n"
    assert not store.exists()
    assert list(a_folder.iterdir()) == []

    # writable paths, in folders that do not exist yet: both files and the store are written
    sarif, markdown = tmp_path / "out" / "new" / "risk.sarif", tmp_path / "out" / "risk.md"
    code, out, err = run_main([*base, "--sarif-file", str(sarif), "--markdown-file", str(markdown)], capsys)
    assert code == 0, err
    assert sarif.is_file()
    assert markdown.is_file()
    assert len(list((store / "predictions").glob("predictions_*.csv"))) == 2  # c2 and c3
