"""``GITHUB_STEP_SUMMARY`` naming a path that cannot be written: one warning line, the prediction and its exit code
kept (it was "internal error: IsADirectoryError", exit 70, after the annotations, with --fail-on and --store
never reached). Run through the real entry point, since that is where the internal error was made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_main import run_main
from defectops.ci.report import RISK_EXIT_CODE
from gitrepo import RepoBuilder


def _summary_paths(tmp_path: Path) -> list[tuple[Path, str]]:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    return [(folder, "Is a directory"), (tmp_path / "missing" / "summary.md", "No such file or directory")]


@pytest.mark.parametrize("case", [0, 1], ids=["a folder", "in a missing folder"])
def test_an_unwritable_step_summary_is_one_warning_and_the_prediction_stands(
    case: int,
    risky_repo: RepoBuilder,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary, reason = _summary_paths(tmp_path)[case]
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    shas = risky_repo.shas
    base = ["predict", "--repo", str(risky_repo.path), "--range", f"{shas[1]}..{shas[3]}",
            "--model-dir", str(tiny_model_dir), "--format", "github"]  # fmt: skip
    code, out, err = run_main(base, capsys)
    assert code == 0, err
    assert out.splitlines()[-1].startswith(
        "defectops: 2 commit(s) scored: 1 high, 0 medium, 0 low, 1 minimal"
    )
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: cannot write the job summary to {summary} (GITHUB_STEP_SUMMARY): {reason}; "
        "the annotations are unaffected"
    ]
    assert "error" not in err
    assert "Traceback" not in err

    # --fail-on still decides the exit code, after the warning
    store = tmp_path / "store"
    code, out, err = run_main([*base, "--fail-on", "high", "--store", str(store)], capsys)
    assert code == RISK_EXIT_CODE, err
    assert "::error file=src/parser.py" in out
    assert err.splitlines()[-1].startswith("error: 1 commit(s) reached --fail-on high")
    assert "internal error" not in err
    assert len(list((store / "predictions").glob("predictions_*.csv"))) == 2  # the store was written too
