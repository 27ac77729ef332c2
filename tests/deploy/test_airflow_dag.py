"""The Airflow DAG (deploy/airflow): its command lines are real defectops commands, run here on a real
repository, and, where Airflow is installed in its own environment (``$DEFECTOPS_AIRFLOW``, default
``/opt/defectops-airflow``; .ci/deploy-tools.sh installs it), Airflow itself loads the DAG."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from deploy_tools import DEPLOY, in_ci
from sample_repos import build_handworked

DAG_FILE = DEPLOY / "airflow" / "defectops_heal_dag.py"
DEFECTOPS = str(Path(sys.executable).parent / "defectops")


def load_dag_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("defectops_heal_dag", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dag_file_parses_without_airflow() -> None:
    module = load_dag_module()
    assert module.dag is None  # Airflow is not in the project's environment
    assert list(module.cli_commands("/r", "m")) == ["mine", "label", "heal"]


def test_the_task_command_lines_run_as_defectops_commands(tmp_path: Path) -> None:
    module = load_dag_module()
    repo = build_handworked(tmp_path / "repo")
    env = {**os.environ, "DEFECTOPS_WORKSPACE": str(tmp_path / "ws"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    lines = {
        name: module.shell_command(args) for name, args in module.cli_commands(str(repo.path), "m").items()
    }
    results = {}
    for name, line in lines.items():
        argv = shlex.split(line)
        assert argv[0] == "defectops"
        results[name] = subprocess.run(
            [DEFECTOPS, *argv[1:]], env=env, capture_output=True, text=True, check=False, timeout=600
        )
    assert results["mine"].returncode == 0, results["mine"].stderr
    assert json.loads(results["mine"].stdout)["commits"] == 7
    assert results["label"].returncode == 0, results["label"].stderr
    json.loads(results["label"].stdout)
    # heal runs one cycle; with no registered model yet it says so in one line, exit 7, before any work: the
    # DAG's heal task fails until `defectops run` has trained a first model (docs/deploy.md, first start).
    heal = results["heal"]
    assert heal.returncode == 7, heal.stderr
    assert heal.stderr.strip().startswith("error: nothing to heal: 'm' is not registered in this workspace")
    assert "\n" not in heal.stderr.strip()


def test_image_mode_runs_the_same_commands_in_the_image() -> None:
    module = load_dag_module()
    args = module.cli_commands("/srv/repo", "m")["heal"]
    line = shlex.split(
        module.shell_command(args, image="registry.example/defectops:0.1.0", workspace="/srv/ws")
    )
    image_at = line.index("registry.example/defectops:0.1.0")
    assert line[:3] == ["docker", "run", "--rm"]
    assert line[image_at + 1 :] == args
    assert "/srv/repo:/srv/repo:ro" in line
    assert "/srv/ws:/var/lib/defectops" in line
    passed = [line[i + 1] for i, part in enumerate(line[:image_at]) if part == "-e"]
    assert "DEFECTOPS_SERVE_LOG_URL" in passed
    assert all("=" not in name for name in passed)  # values come from the environment, never the line


_AIRFLOW_CHECK = r"""
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("defectops_heal")
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "tasks": sorted(dag.task_ids) if dag else None,
    "edges": sorted([t.task_id, d] for t in dag.tasks for d in t.downstream_task_ids) if dag else None,
    "commands": {t.task_id: t.bash_command for t in dag.tasks} if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
}))
"""


@pytest.mark.slow
def test_airflow_loads_the_dag(tmp_path: Path) -> None:
    home = Path(os.environ.get("DEFECTOPS_AIRFLOW", "/opt/defectops-airflow"))
    python = home / "bin" / "python"
    if not (home / ".pins").exists():  # written by .ci/deploy-tools.sh once Airflow is installed
        message = f"Airflow is not installed at {python.parent.parent}; run `bash .ci/deploy-tools.sh`"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / DAG_FILE.name).write_text(DAG_FILE.read_text())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "DEFECTOPS_REPO": "/srv/defectops/repo",
        "DEFECTOPS_MODEL_NAME": "defectops-app",
    }
    result = subprocess.run(
        [str(python), "-c", _AIRFLOW_CHECK, str(dags)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["tasks"] == ["heal", "label", "mine"]
    assert report["edges"] == [["label", "heal"], ["mine", "label"]]
    assert report["max_active_runs"] == 1
    assert report["commands"]["heal"].startswith("defectops heal --once --repo /srv/defectops/repo")
    # Without its two settings the DAG refuses to load, naming them.
    env.pop("DEFECTOPS_REPO")
    result = subprocess.run(
        [str(python), "-c", _AIRFLOW_CHECK, str(dags)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "DEFECTOPS_REPO" in " ".join(report["errors"].values())
