"""The at-scale configuration, measured: per-worker throughput and memory of ``defectops serve`` on the
PostgreSQL prediction log behind an MLflow tracking server (PostgreSQL + S3), the log's size per prediction,
and mining several repositories on a Dask LocalCluster.

    DEFECTOPS_TEST_POSTGRES_URL="$(bash .ci/postgres.sh)" \
        .venv/bin/python benchmarks/bench_deploy.py [--seconds 15] [--connections 8] [--repos 4] \
        [--repo-commits 1500] [--dask-workers 4] [--json out.json]

Everything runs on 127.0.0.1 as real processes (tests/deploy_stack.py: moto's S3 server, ``mlflow server`` on
PostgreSQL, ``defectops serve``); the load generator is benchmarks/bench_serving.py's keep-alive asyncio
client in its own process, so on a 2-core machine it competes with the server for the CPU: the figures are
what one such machine delivers, client included. Results are printed and written as JSON (docs/deploy.md
quotes them). Nothing here is a unit test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import httpx  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench_serving import measure  # noqa: E402
from deploy_stack import (  # noqa: E402
    defectops_serve,
    mlflow_server,
    pg_schemas,
    run_cli,
    s3_environment,
    s3_server,
)
from synthetic_history import build_synthetic  # noqa: E402

FEATURES = ["ns", "nd", "nf", "entropy", "la", "ld", "lt", "fix", "ndev", "age", "nuc", "exp", "rexp", "sexp"]


def rss_of_tree(pid: int) -> dict[int, int]:
    """RSS in bytes of ``pid`` and all its descendants, from /proc."""
    out: dict[int, int] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                out[current] = int(line.split()[1]) * 1024
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(FileNotFoundError):
                pending += [int(c) for c in (task / "children").read_text().split()]
    return out


def bodies(records: list[dict[str, Any]], size: int, top_k: int) -> list[bytes]:
    out = []
    for start in range(0, len(records) - size + 1, size):
        out.append(json.dumps({"records": records[start : start + size], "top_k": top_k}).encode())
    return out


def serve_and_load(
    env: dict[str, str],
    log_url: str,
    model: str,
    records: list[dict[str, Any]],
    args: Any,
    workers: int,
    logs: Path,
) -> dict[str, Any]:
    with defectops_serve(env, log_url, model, logs, workers=workers) as service:
        port = int(service.url.rsplit(":", 1)[1])
        path = "/v1/predict"
        single = bodies(records, 1, 5)
        batch = bodies(records, 100, 0)
        httpx.post(
            f"{service.url}{path}",
            content=bodies(records, 1, 5)[0],
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        idle = rss_of_tree(service.process.pid)
        results: dict[str, Any] = {"workers": workers}
        results["single_top5"] = measure(
            {
                "kind": "closed",
                "port": port,
                "path": path,
                "bodies": single,
                "seconds": args.seconds,
                "connections": args.connections,
            }
        )
        results["batch100_top0"] = measure(
            {
                "kind": "closed",
                "port": port,
                "path": path,
                "bodies": batch,
                "seconds": args.seconds,
                "connections": 2,
            }
        )
        loaded = rss_of_tree(service.process.pid)
        results["rss_idle_mib"] = {str(k): round(v / 2**20, 1) for k, v in idle.items()}
        results["rss_after_load_mib"] = {str(k): round(v / 2**20, 1) for k, v in loaded.items()}
        return results


def log_size(log_url: str) -> dict[str, Any]:
    engine = sa.create_engine(log_url)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT count(*) FROM predictions").scalar_one()
        table = connection.exec_driver_sql("SELECT pg_table_size('predictions')").scalar_one()
        total = connection.exec_driver_sql("SELECT pg_total_relation_size('predictions')").scalar_one()
        indexes = connection.exec_driver_sql("SELECT pg_indexes_size('predictions')").scalar_one()
    engine.dispose()
    per_row = total / rows if rows else float("nan")
    return {
        "rows": rows,
        "table_bytes": table,
        "index_bytes": indexes,
        "total_bytes": total,
        "bytes_per_prediction": round(per_row, 1),
        "gib_per_million": round(per_row * 1e6 / 2**30, 2),
    }


def dask_mining(args: Any, folder: Path) -> dict[str, Any]:
    from distributed import LocalCluster

    repos = []
    for seed in range(args.repos):
        repos.append(build_synthetic(folder / f"repo{seed}", commits=args.repo_commits, seed=seed).path)
    listing = folder / "repos.txt"
    listing.write_text("\n".join(str(p) for p in repos) + "\n")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    timings: dict[str, Any] = {"repositories": len(repos), "commits_each": args.repo_commits + 1}
    start = time.perf_counter()
    run_cli(["-w", str(folder / "ws-seq"), "mine", "--repos", str(listing), "--quiet", "--json"], env)
    timings["sequential_seconds"] = round(time.perf_counter() - start, 2)
    with LocalCluster(
        n_workers=args.dask_workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        start = time.perf_counter()
        result = run_cli(
            [
                "-w",
                str(folder / "ws-dask"),
                "mine",
                "--repos",
                str(listing),
                "--dask",
                cluster.scheduler_address,
                "--quiet",
                "--json",
            ],
            env,
        )
        timings["dask_seconds"] = round(time.perf_counter() - start, 2)
        timings["dask_workers"] = args.dask_workers
    timings["dask_result"] = json.loads(result.stdout)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repos", type=int, default=4)
    parser.add_argument("--repo-commits", type=int, default=1500)
    parser.add_argument("--dask-workers", type=int, default=4)
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    postgres = os.environ.get("DEFECTOPS_TEST_POSTGRES_URL", "")
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "load_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        folder = Path(tmp)
        logs = folder / "logs"
        logs.mkdir()
        if not args.skip_serving:
            if not postgres:
                sys.exit("set DEFECTOPS_TEST_POSTGRES_URL (bash .ci/postgres.sh prints it)")
            repo = build_synthetic(folder / "repo")
            with (
                pg_schemas(postgres, "mlflow", "predlog", "audit") as urls,
                s3_server("bench") as endpoint,
                mlflow_server(urls["mlflow"], "s3://bench/mlflow", endpoint, logs) as tracking,
            ):
                env = {
                    **os.environ,
                    **s3_environment(endpoint),
                    "MLFLOW_TRACKING_URI": tracking,
                    "MLFLOW_DISABLE_TELEMETRY": "true",
                    "DEFECTOPS_WORKSPACE": str(folder / "ws"),
                    "DEFECTOPS_AUDIT_DB_URL": urls["audit"],
                }
                start = time.perf_counter()
                run_cli(
                    ["run", "--repo", str(repo.path), "--budget-seconds", "0", "--recent", "0", "--json"], env
                )
                report["run_seconds_against_tracking_server"] = round(time.perf_counter() - start, 1)
                model = json.loads(run_cli(["models", "list", "--json"], env).stdout)["models"][0]["name"]
                # The model is named after the repository's identity (#13), not its dataset folder: the
                # workspace holds one repository here, so its one commits dataset is the one to replay.
                (dataset,) = (folder / "ws" / "datasets").glob("*/commits.parquet")
                commits = pd.read_parquet(dataset)
                records = [{name: float(row[name]) for name in FEATURES} for _, row in commits.iterrows()]
                records = (records * (2000 // len(records) + 1))[:2000]
                report["serving"] = [
                    serve_and_load(env, urls["predlog"], model, records, args, workers, logs)
                    for workers in (1, 2)
                ]
                report["prediction_log"] = log_size(urls["predlog"])
        report["dask_mining"] = dask_mining(args, folder)
    report["load_after"] = os.getloadavg()
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
