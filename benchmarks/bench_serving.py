"""Speed of the prediction service, side by side with ``mlflow models serve`` of the same model.

    python benchmarks/bench_serving.py [--seconds 15] [--rates 300 50] [--connections 8] [--batches 30]
                                       [--tmpfs] [--two-workers] [--json out.json]

What it does, all on 127.0.0.1, in one run:
  1. trains the default model (LightGBM, 14 change metrics) on the first 80% of the OpenStack data
     (../shared/data/jit/openstack.csv), logs it with ``log_training_run`` (scikit-learn flavour,
     ``pyfunc_predict_fn="predict_proba"``) into a fresh MLflow registry under benchmarks/.work/serving, and
     makes it the champion;
  2. measures one SQLite WAL commit with synchronous=FULL on the workspace disk (the fsync an answer waits
     for with ``power-loss`` durability), then starts ``defectops serve`` (one worker; prediction log: SQLite
     WAL on the workspace disk) with the default durability ``kill`` (synchronous=NORMAL: an answer survives
     a kill of the service) and, as a second configuration, with ``power-loss`` (synchronous=FULL: every answer
     waits for an fsync); with ``--tmpfs`` also the default with the log on /dev/shm (no disk at all), with
     ``--two-workers`` also ``--workers 2``;
  3. starts ``mlflow models serve -m models:/<name>/1 --env-manager local`` (MLflow's FastAPI scoring server);
  4. drives each server from a load generator in another process (a lean asyncio HTTP/1.1 client with
     keep-alive connections and pre-encoded requests, so the client costs little of the two cores):
     * fixed rate: single-record requests at ``--rate`` per second for ``--seconds``, open loop (latency is
       measured from the moment a request was due, so a slow server cannot hide its queue), ``--connections``
       connections;
     * maximum throughput: closed loop, ``--connections`` connections, single records, ``--seconds``;
     * 1,000-record batches, one at a time (defectops with reasons, and without: ``top_k=0``).
  Rows are test rows of OpenStack, cycled. Before timing, the answers of both servers for the same rows are
  compared (same probabilities), so the comparison is like for like.

Prints a table and writes JSON (``--json``). Nothing here is a unit test; timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "serving"
DATA = ROOT.parent / "shared" / "data" / "jit" / "openstack.csv"
FEATURES = ["ns", "nd", "nf", "entropy", "la", "ld", "lt", "fix", "ndev", "age", "nuc", "exp", "rexp", "sexp"]
MODEL = "openstack-lgbm"
ADMIN = "bench-admin-token-0123456789"
SERVE = "import typer; from defectops.cli.serve import serve; typer.run(serve)"


# ------------------------------------------------------------------------------------------------ model


def prepare_registry(workspace: Path) -> tuple[list[list[float]], float]:
    """Train, log, register and promote; return test rows and the model's threshold."""
    import pandas as pd

    from defectops.registry.registry import ModelRegistry
    from defectops.registry.runs import log_training_run
    from defectops.registry.tracking import TrackingConfig, ensure_experiment
    from defectops.training.models import make_model

    frame = pd.read_csv(DATA).rename(columns={"entrophy": "entropy"})
    frame["label"] = (frame["bug"] > 0).astype(int)
    frame["time"] = pd.to_datetime(frame["date"], unit="s", utc=True)
    cut = int(len(frame) * 0.8)
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    model = make_model("lightgbm")
    model.fit(train[[*FEATURES, "time"]], train["label"])
    config = TrackingConfig.resolve(workspace)
    ensure_experiment(config)
    run = log_training_run(
        model,
        features=FEATURES,
        reference=train[FEATURES],
        params=model.get_params(),
        metrics={},
        dataset_fingerprint="openstack-first-80",
        config=config,
        threshold=model.threshold_,
    )
    registry = ModelRegistry(config)
    now = datetime.now(UTC)
    version = registry.register(MODEL, run.model_uri, who="bench", why="bench", now=now).version
    registry.promote(MODEL, version, "bench", "bench", now=now)
    return test[FEATURES].astype(float).values.tolist(), float(model.threshold_)


# ------------------------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def base_env(workspace: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFECTOPS_", "MLFLOW_", "PROMETHEUS_"))}
    env.update(
        {
            "DEFECTOPS_WORKSPACE": str(workspace),
            "DEFECTOPS_MODE": "local",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
    )
    return env


def start_defectops(
    workspace: Path, log_url: str, workers: int = 1, durability: str = "kill"
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = base_env(workspace) | {
        "DEFECTOPS_SERVE_ADMIN_TOKEN": ADMIN,
        "DEFECTOPS_SERVE_LOG_URL": log_url,
        "DEFECTOPS_SERVE_LOG_DURABILITY": durability,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "--port", str(port), "--workers", str(workers), "--model-name", MODEL],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_http(f"http://127.0.0.1:{port}/health/ready")
    return process, port


def start_mlflow(workspace: Path) -> tuple[subprocess.Popen[bytes], int]:
    from defectops.registry.tracking import TrackingConfig

    port = free_port()
    config = TrackingConfig.resolve(workspace)
    env = base_env(workspace) | {"MLFLOW_TRACKING_URI": config.tracking_uri}
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{MODEL}/1",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_http(f"http://127.0.0.1:{port}/ping")
    return process, port


def stop(process: subprocess.Popen[bytes], group: bool = False) -> None:
    """SIGTERM (the whole process group for MLflow's shell wrapper), then make sure nothing is left behind."""
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError):  # worker processes of a server that did not stop cleanly
        os.killpg(process.pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------------ payloads


def defectops_body(rows: list[list[float]], top_k: int | None = None) -> bytes:
    document: dict[str, Any] = {"records": [dict(zip(FEATURES, row, strict=True)) for row in rows]}
    if top_k is not None:
        document["top_k"] = top_k
    return json.dumps(document).encode()


def mlflow_body(rows: list[list[float]]) -> bytes:
    return json.dumps({"dataframe_split": {"columns": FEATURES, "data": rows}}).encode()


def http_request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def post(port: int, path: str, body: bytes) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


# ------------------------------------------------------------------------------------------------ client


class Connection:
    """One keep-alive HTTP/1.1 connection that sends pre-encoded requests and reads whole responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(latencies: list[float], seconds: float, errors: int) -> dict[str, float]:
    ms = [v * 1000 for v in latencies]
    return {
        "requests": len(ms),
        "errors": errors,
        "seconds": round(seconds, 3),
        "throughput_rps": round(len(ms) / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


async def fixed_rate(
    port: int, requests: list[bytes], rate: float, seconds: float, connections: int
) -> dict[str, float]:
    """Open loop: request i is due at start + i / rate; latency counts from when it was due."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    opened = [await Connection.open(port) for _ in range(connections)]
    for connection in opened:
        pool.put_nowait(connection)
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    tasks = []
    start = loop.time() + 0.05

    async def one(i: int, due: float) -> None:
        nonlocal errors
        connection = await pool.get()
        try:
            status = await connection.send(requests[i % len(requests)])
        finally:
            pool.put_nowait(connection)
        if status == 200:
            latencies.append(loop.time() - due)
        else:
            errors += 1

    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    for connection in opened:
        connection.close()
    result = summary(latencies, elapsed, errors)
    result["offered_rps"] = rate
    return result


async def closed_loop(port: int, requests: list[bytes], seconds: float, connections: int) -> dict[str, float]:
    """Each connection sends its next request as soon as the previous answer arrived."""
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    counter = 0

    async def worker() -> None:
        nonlocal errors, counter
        connection = await Connection.open(port)
        try:
            while loop.time() < end:
                counter += 1
                sent = loop.time()
                status = await connection.send(requests[counter % len(requests)])
                if status == 200:
                    latencies.append(loop.time() - sent)
                else:
                    errors += 1
        finally:
            connection.close()

    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return summary(latencies, loop.time() - start, errors)


async def sequential(port: int, requests: list[bytes], count: int) -> dict[str, float]:
    connection = await Connection.open(port)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        sent = loop.time()
        status = await connection.send(requests[i % len(requests)])
        if status == 200:
            latencies.append(loop.time() - sent)
        else:
            errors += 1
    connection.close()
    return summary(latencies, loop.time() - start, errors)


def client_process(job: dict[str, Any], out: Any) -> None:
    """Run one measurement in this (separate) process and send the summary back."""
    requests = [http_request(job["path"], body) for body in job["bodies"]]
    kind = job["kind"]
    if kind == "fixed":
        coro = fixed_rate(job["port"], requests, job["rate"], job["seconds"], job["connections"])
    elif kind == "closed":
        coro = closed_loop(job["port"], requests, job["seconds"], job["connections"])
    else:
        coro = sequential(job["port"], requests, job["count"])
    out.send(asyncio.run(coro))
    out.close()


def measure(job: dict[str, Any]) -> dict[str, float]:
    receive, send = mp.Pipe(duplex=False)
    process = mp.get_context("spawn").Process(target=client_process, args=(job, send))
    process.start()
    send.close()
    result: dict[str, float] = receive.recv()
    process.join()
    return result


# ------------------------------------------------------------------------------------------------ main


def commit_latency(path: Path, commits: int = 300) -> dict[str, float]:
    """p50/p99 of one small SQLite WAL commit with synchronous=FULL (an fsync) on the disk at ``path``."""
    import sqlite3

    database = path / "fsync-probe.db"
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE t (a TEXT)")
    seconds = []
    for i in range(commits):
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t VALUES (?)", (str(i) * 50,))
        connection.execute("COMMIT")
        seconds.append(time.perf_counter() - started)
    connection.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(percentile(ms, 50), 2), "p99_ms": round(percentile(ms, 99), 2)}


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_suite(
    name: str,
    port: int,
    path: str,
    single: list[bytes],
    batch: list[tuple[str, list[bytes]]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    print(f"  {name}: warm-up", flush=True)
    measure(
        {
            "kind": "closed",
            "port": port,
            "path": path,
            "bodies": single,
            "seconds": 2.0,
            "connections": args.connections,
        }
    )
    results: dict[str, Any] = {"load_before": load_average()}
    for rate in args.rates:
        print(f"  {name}: fixed rate {rate}/s", flush=True)
        results[f"fixed_{int(rate)}"] = measure(
            {
                "kind": "fixed",
                "port": port,
                "path": path,
                "bodies": single,
                "rate": rate,
                "seconds": args.seconds,
                "connections": args.connections,
            }
        )
    print(f"  {name}: maximum throughput", flush=True)
    results["max_throughput"] = measure(
        {
            "kind": "closed",
            "port": port,
            "path": path,
            "bodies": single,
            "seconds": args.seconds,
            "connections": args.connections,
        }
    )
    for label, bodies in batch:
        print(f"  {name}: 1,000-record batches ({label})", flush=True)
        results[f"batch_1000_{label}"] = measure(
            {"kind": "sequential", "port": port, "path": path, "bodies": bodies, "count": args.batches}
        )
    results["load_after"] = load_average()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="Duration of each load phase.")
    parser.add_argument("--rates", type=float, nargs="+", default=[300.0, 50.0], help="Fixed request rates.")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batches", type=int, default=30, help="1,000-record requests per configuration.")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--tmpfs", action="store_true", help="Also measure the log on /dev/shm.")
    parser.add_argument(
        "--two-workers", action="store_true", help="Also measure defectops serve --workers 2 (log on disk)."
    )
    parser.add_argument("--json", type=Path, default=WORK / "results.json")
    args = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    workspace = WORK / "ws"
    workspace.mkdir(parents=True)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, load {load_average()}", flush=True)
    print("training and registering the model", flush=True)
    rows, threshold = prepare_registry(workspace)
    singles = [[row] for row in rows[:2000]]
    batches = [rows[i : i + 1000] for i in range(0, 3000, 1000)]

    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "settings": vars(args) | {"json": str(args.json)},
        "model": {"kind": "lightgbm", "features": len(FEATURES), "threshold": threshold},
    }
    defectops_single = [defectops_body(r) for r in singles]
    defectops_batches = [
        ("reasons", [defectops_body(b) for b in batches]),
        ("no_reasons", [defectops_body(b, top_k=0) for b in batches]),
    ]
    shm = Path("/dev/shm")
    report["disk_commit_before"] = commit_latency(workspace)
    print(f"disk: one SQLite WAL commit with fsync: {report['disk_commit_before']}", flush=True)
    configurations = [
        ("defectops", f"sqlite:///{workspace / 'predictions.db'}", 1, "kill"),
        ("defectops_power_loss", f"sqlite:///{workspace / 'predictions-pl.db'}", 1, "power-loss"),
    ]
    if args.tmpfs and shm.is_dir():
        tmpfs_log = f"sqlite:///{shm / f'defectops-bench-{os.getpid()}.db'}"
        configurations.append(("defectops_log_on_tmpfs", tmpfs_log, 1, "kill"))
    if args.two_workers:
        configurations.append(
            ("defectops_2_workers", f"sqlite:///{workspace / 'predictions-2w.db'}", 2, "kill")
        )
    for name, log_url, workers, durability in configurations:
        print(f"{name}: starting", flush=True)
        process, port = start_defectops(workspace, log_url, workers, durability)
        try:
            report[name] = run_suite(name, port, "/v1/predict", defectops_single, defectops_batches, args)
            sample = post(port, "/v1/predict", defectops_body(rows[:20], top_k=0))
            report.setdefault("_sample", {})["defectops"] = [p["probability"] for p in sample["predictions"]]
        finally:
            stop(process)
        if "tmpfs" in name:
            for suffix in ("", "-wal", "-shm"):
                Path(log_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)

    if not args.skip_mlflow:
        print("mlflow models serve: starting", flush=True)
        process, port = start_mlflow(workspace)
        try:
            mlflow_single = [mlflow_body(r) for r in singles]
            mlflow_batches = [("no_reasons", [mlflow_body(b) for b in batches])]
            answer = post(port, "/invocations", mlflow_body(rows[:20]))["predictions"]
            report["_sample"]["mlflow"] = [float(p[1]) if isinstance(p, list) else float(p) for p in answer]
            report["mlflow"] = run_suite("mlflow", port, "/invocations", mlflow_single, mlflow_batches, args)
        finally:
            stop(process, group=True)
        gap = max(
            abs(a - b)
            for a, b in zip(report["_sample"]["defectops"], report["_sample"]["mlflow"], strict=True)
        )
        report["same_probabilities_max_abs_diff"] = gap
        print(f"same rows, both servers: max |probability difference| = {gap:.2e}", flush=True)
        theirs = report["mlflow"]["max_throughput"]["throughput_rps"]
        report["throughput_ratio_vs_mlflow"] = {
            name: round(report[name]["max_throughput"]["throughput_rps"] / theirs, 2) if theirs else None
            for name, _, _, _ in configurations
        }

    report["disk_commit_after"] = commit_latency(workspace)
    report.pop("_sample", None)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
