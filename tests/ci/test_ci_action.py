"""The shell logic of action.yml, run with bash against real repositories the way a runner would run it.

The steps that only call other actions (setup-python, download-artifact, upload-sarif) cannot run here; the
two scripts that decide what is scored and how ``defectops predict`` is called, and what the step does with
its exit code, can. ``defectops`` in the action's virtual environment is replaced by a shim that runs the
command functions with the CLI's error mapping (one line, the error's exit code).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitrepo import RepoBuilder

ACTION = Path(__file__).resolve().parents[2] / "action.yml"
ZEROS = "0" * 40

SHIM = """
import sys
import typer
from defectops.cli.ci import predict
from defectops.errors import DefectOpsError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("predict")(predict)
app.command("unused")(lambda: None)  # two commands: "predict" stays a subcommand, as in the real CLI
try:
    app(args=sys.argv[1:], standalone_mode=False)
except DefectOpsError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def _step(name: str) -> dict[str, Any]:
    steps = yaml.safe_load(ACTION.read_text())["runs"]["steps"]
    (step,) = [s for s in steps if s.get("name") == name]
    return dict(step)


def _run(script: str, env: dict[str, str], cwd: Path) -> tuple[int, str, dict[str, str]]:
    output = cwd / "github_output"
    output.write_text("")
    full_env = {**os.environ, **env, "GITHUB_OUTPUT": str(output)}
    proc = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=full_env, capture_output=True, text=True, check=False
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc.returncode, proc.stdout + proc.stderr, outputs


def _choose(repo: RepoBuilder, tmp_path: Path, **env: str) -> tuple[int, str, dict[str, str]]:
    base = {
        "EVENT_NAME": "push", "PR_BASE": "", "PR_HEAD": "", "PUSH_BEFORE": "", "PUSH_AFTER": "",
        "OVERRIDE": "", "REPO_PATH": str(repo.path), "HAS_STATE": "false",
    }  # fmt: skip
    return _run(_step("Choose the commits")["run"], {**base, **env}, tmp_path)


def test_push_scores_the_pushed_range(risky_repo: RepoBuilder, tmp_path: Path) -> None:
    s = risky_repo.shas
    code, _log, out = _choose(risky_repo, tmp_path, PUSH_BEFORE=s[1], PUSH_AFTER=s[3])
    assert code == 0
    assert out == {"kind": "range", "value": f"{s[1]}..{s[3]}"}


@pytest.mark.parametrize("before", ["zeros", "missing", "not-an-ancestor"])
def test_push_without_a_usable_before_scores_the_head(
    risky_repo: RepoBuilder, tmp_path: Path, before: str
) -> None:
    s = risky_repo.shas
    value = {"zeros": ZEROS, "missing": "ab" * 20, "not-an-ancestor": s[3]}[before]
    after = s[2] if before == "not-an-ancestor" else s[3]  # a force-push back to c2
    code, log, out = _choose(risky_repo, tmp_path, PUSH_BEFORE=value, PUSH_AFTER=after)
    assert code == 0
    assert out == {"kind": "commit", "value": after}
    assert "::notice title=defectops::" in log


def test_pull_request_scores_base_to_head(risky_repo: RepoBuilder, tmp_path: Path) -> None:
    s = risky_repo.shas
    code, _log, out = _choose(risky_repo, tmp_path, EVENT_NAME="pull_request", PR_BASE=s[0], PR_HEAD=s[3])
    assert code == 0
    assert out == {"kind": "range", "value": f"{s[0]}..{s[3]}"}
    code, log, out = _choose(risky_repo, tmp_path, EVENT_NAME="pull_request", PR_BASE="cd" * 20, PR_HEAD=s[3])
    assert code == 1
    assert "::error title=defectops::the pull request's base or head commit is not in the clone" in log
    assert out == {}


def test_override_and_other_events(risky_repo: RepoBuilder, tmp_path: Path) -> None:
    assert _choose(risky_repo, tmp_path, OVERRIDE="HEAD~2..HEAD")[2] == {
        "kind": "range",
        "value": "HEAD~2..HEAD",
    }
    assert _choose(risky_repo, tmp_path, OVERRIDE="HEAD~1")[2] == {"kind": "commit", "value": "HEAD~1"}
    assert _choose(risky_repo, tmp_path, EVENT_NAME="workflow_dispatch")[2] == {
        "kind": "commit",
        "value": "HEAD",
    }


def test_shallow_clone_without_state_gets_advice(risky_repo: RepoBuilder, tmp_path: Path) -> None:
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth=2", f"file://{risky_repo.path}", str(clone)], check=True)
    shallow = RepoBuilder(clone)
    code, log, _out = _choose(shallow, tmp_path, EVENT_NAME="workflow_dispatch")
    assert code == 0
    assert "::warning title=defectops::shallow clone without a miner state" in log


def _score(
    repo: RepoBuilder, tmp_path: Path, model_dir: Path, kind: str, value: str, fail_on: str
) -> tuple[int, str, dict[str, str]]:
    runner_temp = tmp_path / "runner"
    venv_bin = runner_temp / "defectops-venv" / "bin"
    venv_bin.mkdir(parents=True)
    (runner_temp / "shim.py").write_text(SHIM)
    shim = venv_bin / "defectops"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{runner_temp / "shim.py"}" "$@"\n')
    shim.chmod(0o755)
    env = {
        "RUNNER_TEMP": str(runner_temp), "DEFECTOPS_WORKSPACE": str(runner_temp / "defectops-workspace"),
        "DEFECTOPS_INFORMATION_URI": "", "MLFLOW_TRACKING_URI": "", "KIND": kind, "VALUE": value,
        "REPO_PATH": str(repo.path), "MODEL_DIR": str(model_dir), "MODEL_NAME": "", "MODEL_ALIAS": "champion",
        "THRESHOLD": "", "FAIL_ON": fail_on, "TOP_K": "3", "STATE_URL": "", "STATE_ARTIFACT": "",
        "STATE_FILE": "", "STORE": "", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }  # fmt: skip
    return _run(_step("Score the commits")["run"], env, tmp_path)


def test_score_step_defers_the_risk_failure_until_after_the_upload(
    risky_repo: RepoBuilder, tmp_path: Path, tiny_model_dir: Path
) -> None:
    s = risky_repo.shas
    code, log, out = _score(risky_repo, tmp_path, tiny_model_dir, "range", f"{s[0]}..{s[3]}", "high")
    assert code == 0, log  # predict exited 10; the step records it and lets the SARIF upload run
    report = tmp_path / "runner" / "defectops-report"
    assert out == {
        "sarif-file": str(report / "defectops.sarif"),
        "markdown-file": str(report / "defectops.md"),
        "risk-found": "true",
    }
    assert "::error file=src/parser.py,line=1,title=defectops%3A high defect risk" in log
    assert (report / "defectops.sarif").is_file()
    assert (report / "defectops.md").read_text().startswith("<!-- defectops:predict -->\n")
    assert (tmp_path / "summary.md").read_text() == (report / "defectops.md").read_text()
    fail = _step("Fail on risky commits")
    assert fail["if"] == "steps.predict.outputs.risk-found == 'true'"
    assert "exit 10" in fail["run"]


def test_score_step_passes_other_failures_through(
    risky_repo: RepoBuilder, tmp_path: Path, tiny_model_dir: Path
) -> None:
    code, log, out = _score(risky_repo, tmp_path, tiny_model_dir, "commit", "deadbeef", "high")
    assert code == 3, log
    assert "error: " in log
    assert "unknown revision 'deadbeef'" in log
    assert out["risk-found"] == "false"
    calm, log, out = _score(
        risky_repo, tmp_path / "calm", tiny_model_dir, "commit", risky_repo.shas[3], "high"
    )
    assert calm == 0, log
    assert out["risk-found"] == "false"
