"""The shell logic of action.yml, run with bash against real repositories the way a runner would run it.

The steps that only call other actions (setup-python, download-artifact, upload-sarif) cannot run here; the
two scripts that decide what is scored and how ``defectops predict`` is called, and what the step does with
its exit code, can. ``defectops`` in the action's virtual environment is replaced by a shim that runs the
command functions with the CLI's error mapping (one line, the error's exit code).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitrepo import RepoBuilder, lines

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
    repo: RepoBuilder,
    tmp_path: Path,
    model_dir: Path,
    kind: str,
    value: str,
    fail_on: str,
    **extra: str,
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
        "SARIF_MIN_BAND": "medium", "SAVE_STATE": "auto", "EVENT_NAME": "push",
    }  # fmt: skip
    return _run(_step("Score the commits")["run"], {**env, **extra}, tmp_path)


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


@pytest.mark.parametrize(
    ("event", "save_state", "saved"),
    [("push", "auto", True), ("pull_request", "auto", False), ("pull_request", "true", True),
     ("push", "false", False)],
)  # fmt: skip
def test_store_input_saves_the_miner_state_on_pushes(
    risky_repo: RepoBuilder, tmp_path: Path, tiny_model_dir: Path, event: str, save_state: str, saved: bool
) -> None:
    assert yaml.safe_load(ACTION.read_text())["inputs"]["save-state"]["default"] == "auto"
    store = tmp_path / "store"
    code, log, _out = _score(
        risky_repo, tmp_path, tiny_model_dir, "commit", risky_repo.shas[3], "",
        STORE=str(store), SAVE_STATE=save_state, EVENT_NAME=event,
    )  # fmt: skip
    assert code == 0, log
    assert (store / "history" / "prediction_history_master.csv").is_file()
    assert (store / "state" / "miner.sqlite").is_file() is saved


def test_store_input_refuses_an_unknown_save_state(
    risky_repo: RepoBuilder, tmp_path: Path, tiny_model_dir: Path
) -> None:
    code, log, _out = _score(
        risky_repo, tmp_path, tiny_model_dir, "commit", "HEAD", "",
        STORE=str(tmp_path / "store"), SAVE_STATE="sometimes", EVENT_NAME="push",
    )  # fmt: skip
    assert code == 2
    assert "save-state must be auto, true or false, got 'sometimes'" in log


def _sarif_bands(tmp_path: Path) -> list[str]:
    doc = json.loads((tmp_path / "runner" / "defectops-report" / "defectops.sarif").read_text())
    return [r["properties"]["riskBand"] for r in doc["runs"][0]["results"]]


def test_sarif_min_band_input_reaches_predict(
    risky_repo: RepoBuilder, tmp_path: Path, tiny_model_dir: Path
) -> None:
    inputs = yaml.safe_load(ACTION.read_text())["inputs"]
    assert inputs["sarif-min-band"]["default"] == "medium"
    assert _step("Score the commits")["env"]["SARIF_MIN_BAND"] == "${{ inputs.sarif-min-band }}"
    s = risky_repo.shas
    code, log, _out = _score(risky_repo, tmp_path / "a", tiny_model_dir, "range", f"{s[1]}..{s[3]}", "")
    assert code == 0, log
    assert _sarif_bands(tmp_path / "a") == [
        "high"
    ]  # the minimal-risk c3 is no code-scanning alert by default
    code, log, _out = _score(
        risky_repo, tmp_path / "b", tiny_model_dir, "range", f"{s[1]}..{s[3]}", "", SARIF_MIN_BAND="minimal"
    )
    assert code == 0, log
    assert _sarif_bands(tmp_path / "b") == ["high", "minimal"]


def test_threshold_failure_carries_annotations_and_the_last_step_says_why(
    risky_repo: RepoBuilder, tmp_path: Path, tiny_model_dir: Path
) -> None:
    risky_repo.commit("Add helpers", {"src/helpers.py": lines(60)}, days=1)  # about 0.07: low band
    s = risky_repo.shas
    code, log, out = _score(
        risky_repo, tmp_path, tiny_model_dir, "range", f"{s[2]}..{s[4]}", "any", THRESHOLD="0.01"
    )
    assert code == 0, log
    assert out["risk-found"] == "true"
    errors = [line for line in log.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1, log  # c4 fails; c3 (about 0.0001) does not
    assert errors[0].startswith("::error file=src/helpers.py,line=1,title=defectops%3A low defect risk")
    assert errors[0].endswith(
        "Fails --fail-on any: flagged risky (probability at or above the threshold 0.010)."
    )
    fail = _step("Fail on risky commits")
    code, log, _out = _run(fail["run"], {"FAIL_ON": "any"}, tmp_path)
    assert code == 10
    assert log.startswith(
        "::error title=defectops::fail-on any: a commit's probability reached the threshold"
    )


# --- the install: locked, lean, cached ---------------------------------------------------------------------

ROOT = ACTION.parent


def _plan(tmp_path: Path, python: str = sys.executable, **env: str) -> dict[str, str]:
    base = {"ACTION_PATH": str(ROOT), "PYTHON": python, "UV_VERSION": "0.13.8", "MODEL_NAME": "",
            "STATE_URL": "", "STORE": ""}  # fmt: skip
    code, log, out = _run(_step("Plan the install")["run"], {**base, **env}, tmp_path)
    assert code == 0, log
    return out


@pytest.mark.parametrize(
    ("env", "groups"),
    [
        ({}, "ci"),
        ({"MODEL_NAME": "jit"}, "ci ci-registry"),
        ({"STATE_URL": "s3://bucket/defectops/state/repo.sqlite"}, "ci ci-s3"),
        ({"STORE": "s3://bucket/defectops"}, "ci ci-s3"),
        ({"STORE": "/mnt/store", "STATE_URL": "/mnt/store/state/repo.sqlite"}, "ci"),
        ({"MODEL_NAME": "jit", "STORE": "s3://bucket/x"}, "ci ci-registry ci-s3"),
    ],
)
def test_install_plan_picks_only_the_groups_the_inputs_need(
    tmp_path: Path, env: dict[str, str], groups: str
) -> None:
    out = _plan(tmp_path, **env)
    assert out["groups"] == groups
    lock = hashlib.sha256((ROOT / "uv.lock").read_bytes()).hexdigest()
    assert out["cache-key"] == f"uv0.13.8-{lock[:16]}-{groups.replace(' ', '+')}"


def test_install_cache_is_keyed_on_the_lock_python_and_groups() -> None:
    cache = _step("Restore the install cache")
    assert cache["uses"] == "actions/cache@v5"
    assert cache["with"]["path"].splitlines() == [
        "${{ runner.temp }}/defectops-uv",
        "${{ runner.temp }}/defectops-uv-cache",
    ]
    key = cache["with"]["key"]
    for part in ("runner.os", "runner.arch", "steps.python.outputs.python-version",
                 "steps.install-plan.outputs.cache-key"):  # fmt: skip
        assert part in key
    install = _step("Install defectops")
    assert install["env"]["UV_CACHE_DIR"] == "${{ runner.temp }}/defectops-uv-cache"
    steps = [s["name"] for s in yaml.safe_load(ACTION.read_text())["runs"]["steps"]]
    assert steps.index("Restore the install cache") < steps.index("Install defectops")


def test_action_pins_the_uv_of_dev_py() -> None:
    dev = (ROOT / "dev.py").read_text()
    pinned = dev.split('UV_VERSION = "', 1)[1].split('"', 1)[0]
    for name in ("Plan the install", "Install defectops"):
        assert _step(name)["env"]["UV_VERSION"] == pinned


FAKE_UV = """#!/bin/sh
echo "uv $* (cwd $(pwd))" >> "$CALLS"
if [ "$1" = sync ]; then
  mkdir -p "$UV_PROJECT_ENVIRONMENT/bin" "$UV_PROJECT_ENVIRONMENT/lib/python3.12/site-packages/numpy/tests"
  mkdir -p "$UV_PROJECT_ENVIRONMENT/lib/python3.12/site-packages/numpy/testing"
fi
"""
FAKE_PYTHON = """#!/bin/sh
echo "python $*" >> "$CALLS"
target="$(echo "$*" | sed 's/.*--target \\([^ ]*\\).*/\\1/')"
mkdir -p "$target/bin" && cp "$FAKE_UV" "$target/bin/uv" && chmod +x "$target/bin/uv"
"""


def _install(tmp_path: Path, groups: str) -> list[str]:
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    fake_uv = tmp_path / "fake-uv"
    fake_uv.write_text(FAKE_UV)
    python = tmp_path / "fake-python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {
        "ACTION_PATH": str(ROOT), "PYTHON": str(python), "UV_VERSION": "0.13.8",
        "UV_CACHE_DIR": str(runner_temp / "defectops-uv-cache"), "INSTALL_GROUPS": groups,
        "RUNNER_TEMP": str(runner_temp), "CALLS": str(calls), "FAKE_UV": str(fake_uv),
    }  # fmt: skip
    code, log, _out = _run(_step("Install defectops")["run"], env, tmp_path)
    assert code == 0, log
    return calls.read_text().splitlines()


def test_install_syncs_the_locked_groups_then_the_project_without_dependencies(tmp_path: Path) -> None:
    venv = tmp_path / "runner" / "defectops-venv"
    uv_dir = tmp_path / "runner" / "defectops-uv"
    python = tmp_path / "fake-python"
    assert _install(tmp_path, "ci ci-registry") == [
        f"python -m pip install --quiet --disable-pip-version-check --target {uv_dir} uv==0.13.8",
        f"uv sync --no-config --locked --no-python-downloads --python {python} --only-group ci "
        f"--only-group ci-registry (cwd {ROOT})",
        f"uv pip install --no-config --python {venv}/bin/python --no-deps . (cwd {ROOT})",
    ]
    site = venv / "lib" / "python3.12" / "site-packages"
    assert not (site / "numpy" / "tests").exists()  # test suites pruned
    assert (site / "numpy" / "testing").is_dir()  # nothing else
    # the next job restores uv from the cache: no pip at all
    (tmp_path / "calls").unlink()
    calls = _install(tmp_path, "ci")
    assert [c.split(" ", 2)[:2] for c in calls] == [["uv", "sync"], ["uv", "pip"]]


def test_the_ci_groups_are_locked_and_cover_what_predict_imports(
    risky_repo: RepoBuilder, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """Every distribution ``predict --model-dir`` imports is in the lean install (the ``ci`` group's closure
    in uv.lock): a heavy import added to the scoring path fails here, not in an adopter's workflow."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    groups = packages["defectops"]["dev-dependencies"]
    assert {"ci", "ci-registry", "ci-s3"} <= set(groups)
    closure: set[str] = set()
    todo = [d["name"] for d in groups["ci"]]
    while todo:
        name = todo.pop()
        if name not in closure:
            closure.add(name)
            todo += [d["name"] for d in packages[name].get("dependencies", [])]
    assert not closure & {"mlflow-skinny", "mlflow", "sqlalchemy", "optuna", "fastapi", "distributed", "s3fs"}
    probe = f"""
import sys, importlib.metadata as md
from typer.testing import CliRunner
from defectops.cli import app
result = CliRunner().invoke(app, ["predict", "--repo", {str(risky_repo.path)!r}, "--model-dir",
                                  {str(tiny_model_dir)!r}, "--format", "sarif"])
assert result.exit_code == 0, result.output
owners = md.packages_distributions()
print(" ".join(sorted({{d for m in list(sys.modules) for d in owners.get(m.split(".")[0], [])}})))
"""
    env = {**os.environ, "DEFECTOPS_WORKSPACE": str(tmp_path / "ws")}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    imported = {name.lower().replace("_", "-") for name in proc.stdout.split()}
    assert "pandas" in imported
    # imported only because the development environment has them (each import is guarded by its importer):
    # numpy.f2py's charset_normalizer, joblib's psutil, pandas' pytz, setuptools' distutils hook at startup,
    # pandera's hypothesis strategies (and hypothesis' sortedcontainers; schemathesis brings them to dev)
    optional = {"charset-normalizer", "psutil", "pytz", "setuptools", "hypothesis", "sortedcontainers"}
    assert imported - closure - optional - {"defectops"} == set()
