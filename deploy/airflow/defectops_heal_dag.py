"""Airflow DAG: the defectops cycle as three tasks, mine -> label -> heal, once an hour.

Each task runs the defectops CLI, either installed on the Airflow workers (the default) or from the defectops
image through ``docker run`` (set ``DEFECTOPS_IMAGE``). Mining and labelling are incremental; ``defectops heal
--once`` repeats both as its refresh step (cheap when nothing is new) and then watches, gates, monitors,
decides and trains. Splitting mine and label out gives each its own retries, logs and duration in Airflow.

Configuration (the worker's environment; secrets come from Airflow connections/secret backends rendered into
the environment, never from this file):

- ``DEFECTOPS_REPO`` (required): the git clone the model learns from, kept pulled by a task of your own;
- ``DEFECTOPS_MODEL_NAME`` (required): the registered model, named after the remote by ``defectops run``
  (e.g. ``defectops-pallets-flask``; ``defectops models list`` shows it);
- ``DEFECTOPS_WORKSPACE``, ``MLFLOW_TRACKING_URI``, ``DEFECTOPS_SERVE_LOG_URL``, ``DEFECTOPS_AUDIT_DB_URL``:
  as for the service (docs/deploy.md); passed into the container in image mode;
- ``DEFECTOPS_IMAGE``: run the CLI from this image instead of the worker's installation;
- ``DEFECTOPS_HEAL_SCHEDULE``: cron expression (default ``17 * * * *``).

Exit code 75 of ``heal --once`` means another cycle of the same model is still running: the task is skipped,
not failed. The DAG never runs two cycles at once (``max_active_runs=1``).
"""

from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta

#: Environment variables handed to the CLI in image mode (values are read by the container, not logged).
PASSED_ENV = (
    "DEFECTOPS_WORKSPACE",
    "DEFECTOPS_MODE",
    "MLFLOW_TRACKING_URI",
    "DEFECTOPS_SERVE_LOG_URL",
    "DEFECTOPS_AUDIT_DB_URL",
    "DEFECTOPS_SERVE_MODEL_NAME",
)
#: ``heal --once``: another cycle of this model holds the lock (EX_TEMPFAIL).
EXIT_ANOTHER_CYCLE = 75


def cli_commands(repo: str, model_name: str) -> dict[str, list[str]]:
    """The defectops command of each task (arguments after ``defectops``)."""
    return {
        "mine": ["mine", "--repo", repo, "--quiet", "--json"],
        "label": ["label", "--repo", repo, "--quiet", "--json"],
        "heal": ["heal", "--once", "--repo", repo, "--model-name", model_name, "--json"],
    }


def shell_command(args: list[str], image: str | None = None, workspace: str | None = None) -> str:
    """One task's shell line: ``defectops ARGS`` on the worker, or the same inside ``image``."""
    if not image:
        return shlex.join(["defectops", *args])
    repo = args[args.index("--repo") + 1]
    docker = ["docker", "run", "--rm", "--network", "host", "-v", f"{repo}:{repo}:ro"]
    if workspace:
        docker += ["-v", f"{workspace}:/var/lib/defectops"]
    for name in PASSED_ENV:
        if name != "DEFECTOPS_WORKSPACE":
            docker += ["-e", name]  # the value comes from the worker's environment, never the command line
    return shlex.join([*docker, image, *args])


def _build_dag() -> object:
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    repo = os.environ.get("DEFECTOPS_REPO", "")
    model_name = os.environ.get("DEFECTOPS_MODEL_NAME", "")
    if not repo or not model_name:
        # An import error in Airflow's UI names what is missing; a DAG with a guessed repository would not.
        raise RuntimeError(
            "defectops_heal: set DEFECTOPS_REPO and DEFECTOPS_MODEL_NAME for the DAG processor"
        )
    image = os.environ.get("DEFECTOPS_IMAGE") or None
    workspace = os.environ.get("DEFECTOPS_WORKSPACE") or None
    commands = cli_commands(repo, model_name)
    with DAG(
        dag_id="defectops_heal",
        description="defectops: mine -> label -> heal (one self-healing cycle)",
        schedule=os.environ.get("DEFECTOPS_HEAL_SCHEDULE", "17 * * * *"),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
        tags=["defectops"],
    ) as dag:
        tasks = [
            BashOperator(
                task_id=name,
                bash_command=shell_command(args, image, workspace),
                # The worker's environment (credentials included) reaches the CLI unchanged.
                append_env=True,
                skip_on_exit_code=EXIT_ANOTHER_CYCLE if name == "heal" else None,
                execution_timeout=timedelta(minutes=55),
            )
            for name, args in commands.items()
        ]
        tasks[0] >> tasks[1] >> tasks[2]
    return dag


try:
    import airflow  # noqa: F401 - only to know whether Airflow is installed
except ImportError:  # imported for its command lines (tests, tooling) without Airflow
    dag = None
else:
    dag = _build_dag()
