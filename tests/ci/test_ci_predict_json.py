"""``defectops predict --json``: the flag every other command prints JSON with is ``--format json`` here too.

It was "No such option: --json" (exit 2), although the README says every command that produces results prints
them as JSON with ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from defectops.ci.report import RISK_EXIT_CODE
from gitrepo import RepoBuilder

Cli = Callable[..., Any]  # the ``cli`` fixture: run(*args) -> CliResult(code, out, err)


def _base(repo: RepoBuilder, model_dir: Path) -> list[str]:
    shas = repo.shas
    return [
        "predict",
        "--repo",
        str(repo.path),
        "--range",
        f"{shas[0]}..{shas[3]}",
        "--model-dir",
        str(model_dir),
    ]


def test_json_flag_prints_the_same_document_as_format_json(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path
) -> None:
    by_format = cli(*_base(risky_repo, tiny_model_dir), "--format", "json")
    assert by_format.code == 0, by_format
    by_flag = cli(*_base(risky_repo, tiny_model_dir), "--json")
    assert by_flag.code == 0, by_flag
    doc = json.loads(by_flag.out)  # stdout is one JSON document, nothing else
    assert doc == json.loads(by_format.out)
    assert [c["sha"] for c in doc["commits"]] == risky_repo.shas[1:4]
    assert [c["risk_band"] for c in doc["commits"]] == ["minimal", "high", "minimal"]
    both = cli(*_base(risky_repo, tiny_model_dir), "--json", "--format", "JSON")  # agreeing: fine
    assert both.code == 0, both
    assert json.loads(both.out) == doc


def test_json_flag_with_fail_on_prints_the_report_then_exits_10(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path
) -> None:
    result = cli(*_base(risky_repo, tiny_model_dir), "--json", "--fail-on", "high")
    assert result.code == RISK_EXIT_CODE, result
    doc = json.loads(result.out)
    assert doc["failed"] is True
    assert doc["failing_commits"] == [risky_repo.shas[2]]
    assert result.err.strip().splitlines()[-1].startswith("error: 1 commit(s) reached --fail-on high")


def test_json_flag_and_another_format_is_one_line_exit_2(
    cli: Cli, risky_repo: RepoBuilder, tiny_model_dir: Path
) -> None:
    result = cli(*_base(risky_repo, tiny_model_dir), "--json", "--format", "sarif")
    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        "error: --json and --format sarif ask for two outputs on stdout: give one (--json is --format json; "
        "--sarif-file and --markdown-file write the others to files)\n"
    )
