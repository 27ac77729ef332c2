"""Event-driven scoring on loopback: receiver throughput, webhook-to-check-run latency, a burst, recovery.

    python benchmarks/bench_events.py [--events 5000] [--concurrency 32] [--pushes 30] [--burst 1000]
                                      [--visibility 5] [--backend redis[,kafka]] [--json out.json]

What it does, all on 127.0.0.1, with a real redis-server (Debian's, append-only file with
``appendfsync always``), ``defectops events serve`` and ``defectops events work`` as separate processes, the
loopback GitHub API server of the tests (tests/github_api.py) and a real git repository:
  1. receiver throughput: ``--events`` signed push webhooks (distinct delivery ids), ``--concurrency``
     connections from this process (the load generator; the receiver is another process), no worker running;
     accepted events per second = 202 answers / wall time;
  2. latency webhook -> check run, with 1 and then 2 workers: ``--pushes`` single-commit pushes, one at a
     time (not saturated); latency = the GitHub server's receipt of the check run minus the moment the
     webhook was sent; p50/p99 (after one warm-up push that mines the repository's history);
  3. a burst of ``--burst`` single-commit pushes sent as fast as they are accepted, 2 workers: acceptance
     rate, the deepest queue seen, time until every commit has its check run, and whether each has exactly one;
  4. recovery: the GitHub server holds the next check-run creation; the worker that holds the event (found by
     XPENDING) is killed with SIGKILL; time from the kill until the other worker has finished the event
     (visibility timeout ``--visibility`` s plus the work).

``--backend kafka`` runs phases 1 and 2 on the Kafka adapter instead, against the Tansu broker of the tests
(tests/kafka_server.py, memory storage; the SQL ledger in the workspace); ``--backend redis,kafka`` runs both,
one after the other, in the same run (phases 3 and 4 read Redis directly and run on Redis only).

Prints a table and writes JSON (``--json``). Nothing here is a unit test; timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench_serving import Connection  # noqa: E402
from defectops.training.models import make_model  # noqa: E402
from event_world import TOKEN, environment, push_payload, signed  # noqa: E402
from github_api import GitHubServer  # noqa: E402
from gitrepo import RepoBuilder, lines  # noqa: E402
from kafka_server import KafkaServer  # noqa: E402
from redis_server import RedisServer, free_port  # noqa: E402

WORK = ROOT / "benchmarks" / ".work" / "events"
CLI = "from defectops.cli import main; main()"


def _models(folder: Path) -> tuple[Path, Path]:
    found = []
    for name, seed in (("champion", 0), ("challenger", 1)):
        rng = np.random.default_rng(seed)
        la = np.floor(np.exp(rng.uniform(0, 7, 300)))
        frame = pd.DataFrame(
            {
                "la": la,
                "ld": np.floor(la * rng.uniform(0, 0.5, 300)),
                "nf": rng.integers(1, 10, 300).astype(float),
            }
        )
        y = (np.log(la) + rng.normal(0, 0.7, 300) > 5).astype(int)
        found.append(make_model("logreg", features=("la", "ld", "nf")).fit(frame, y).save(folder / name))
    return found[0], found[1]


class Processes:
    """The receiver and workers this benchmark starts, each in its own process group."""

    def __init__(self, env: dict[str, str], logs: Path = WORK) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        err = (self.logs / f"{name}.err").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-c", CLI, "events", *args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        self.running[name] = process
        return process

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        process = self.start(name, "work", "--consumer", name)
        deadline = time.monotonic() + 120
        while "is waiting for events" not in (self.logs / f"{name}.err").read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.logs / f"{name}.err").read_text())
            time.sleep(0.05)
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.running.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name, signal.SIGKILL)


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def _request(body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def _send_all(port: int, requests: list[bytes], connections: int) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    pending = list(reversed(requests))

    async def run() -> None:
        connection = await Connection.open(port)
        try:
            while pending:
                status = await connection.send(pending.pop())
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    return {"statuses": statuses, "seconds": elapsed, "accepted_per_second": statuses.get(202, 0) / elapsed}


def _client_process(port: int, requests: list[bytes], connections: int, out: Any) -> None:
    out.send(asyncio.run(_send_all(port, requests, connections)))
    out.close()


def _blast(port: int, deliveries: list[tuple[bytes, dict[str, str]]], connections: int) -> dict[str, Any]:
    """Send every delivery from a load generator in another process (lean keep-alive HTTP/1.1 client)."""
    requests = [_request(body, headers) for body, headers in deliveries]
    receive, send = mp.Pipe(duplex=False)
    process = mp.get_context("spawn").Process(
        target=_client_process, args=(port, requests, connections, send)
    )
    process.start()
    send.close()
    result: dict[str, Any] = receive.recv()
    process.join()
    return result


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def _wait_run(github: GitHubServer, sha: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = github.api.runs_for(sha)
        if runs:
            return runs[0]
        time.sleep(0.002)
    raise RuntimeError(f"no check run for {sha[:12]} within {timeout} s")


def _push(url: str, upstream: RepoBuilder, i: int, client: httpx.Client) -> tuple[str, float]:
    before = upstream.head()
    sha = upstream.commit(f"Change {i}", {f"src/m{i % 7}.py": lines(5 + i % 40, f"v{i}")}, days=0.01)
    body, headers = signed(push_payload(upstream, [sha], before=before), delivery=f"lat-{i}-{sha[:8]}")
    sent = time.time()
    response = client.post(url, content=body, headers=headers)
    if response.status_code != 202:
        raise RuntimeError(f"push {i}: {response.status_code} {response.text}")
    return sha, sent


def _latency(
    processes: Processes,
    url: str,
    upstream: RepoBuilder,
    github: GitHubServer,
    client: httpx.Client,
    pushes: int,
    counts: tuple[int, ...],
    phases: set[str],
) -> dict[str, Any]:
    """Phase 2: webhook -> check run with 1 and 2 workers; the 2 workers stay up for the next phases."""
    results: dict[str, Any] = {}
    for count in counts:
        names = [f"worker{count}-{i}" for i in range(count)]
        for name in names:
            processes.worker(name)
        sha, _ = _push(url, upstream, 10_000 * count, client)  # warm-up (mines history, loads models)
        _wait_run(github, sha, timeout=600)
        samples = []
        for i in range(pushes if "latency" in phases else 0):
            sha, sent = _push(url, upstream, 10_000 * count + i + 1, client)
            samples.append(_wait_run(github, sha)["received_at"] - sent)
            time.sleep(0.1)
        if not samples:
            continue
        results[f"latency_{count}_workers"] = {
            "n": len(samples),
            "p50_s": _percentile(samples, 50),
            "p99_s": _percentile(samples, 99),
            "max_s": max(samples),
            "mean_s": statistics.fmean(samples),
        }
        print(f"latency with {count} worker(s): {results[f'latency_{count}_workers']}", flush=True)
        if count == 1:
            for name in names:
                processes.stop(name)
    return results


def _receiver_phase(
    port: int, upstream: RepoBuilder, store: Any, events: int, concurrency: int
) -> dict[str, Any]:
    payload = push_payload(upstream, [upstream.head()], before=upstream.shas[-2])
    deliveries = [signed(payload, delivery=f"tp-{i}") for i in range(events)]
    found = _blast(port, deliveries, concurrency)
    found["stream_length_after"] = int(store.xlen("defectops:events"))
    store.delete("defectops:events")  # the throughput events are not worked off
    store.xgroup_create("defectops:events", "defectops-workers", id="0", mkstream=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--burst-timeout", type=float, default=1800)
    parser.add_argument("--visibility", type=float, default=5.0)
    parser.add_argument(
        "--redis-dir", type=Path, help="Folder of Redis's append-only file (default: on the work disk)"
    )
    parser.add_argument("--fsync", default="always", choices=["always", "everysec", "no"])
    parser.add_argument("--phases", default="receiver,latency,burst,recovery")
    parser.add_argument("--backend", default="redis", help="redis, kafka, or both: redis,kafka")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_before": os.getloadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    phases = set(args.phases.split(","))
    backends = args.backend.split(",")
    for backend in backends:
        root = WORK / backend if len(backends) > 1 else WORK
        root.mkdir(parents=True, exist_ok=True)
        print(f"== {backend}", flush=True)
        found = (_run_redis if backend == "redis" else _run_kafka)(args, phases, root)
        found["load_after"] = os.getloadavg()
        if len(backends) == 1:
            results.update(found)
        else:
            results[backend] = found
    text = json.dumps(results, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


def _world(
    root: Path, stream_env: dict[str, str], visibility: float
) -> tuple[GitHubServer, RepoBuilder, int, Processes]:
    """The GitHub server, the repository (30 commits), the receiver's port and the process set of one backend."""
    github = GitHubServer(TOKEN).start()
    upstream = RepoBuilder.create(root / "upstream")
    for i in range(30):
        upstream.commit(f"History {i}", {f"src/h{i % 5}.py": lines(10 + i, f"h{i}")}, days=1)
    port = free_port()
    env = {
        **os.environ,
        **environment(
            root,
            stream_env.get("DEFECTOPS_EVENTS_REDIS_URL", ""),
            github,
            upstream,
            _models(root / "models"),
            DEFECTOPS_EVENTS_PORT=str(port),
            DEFECTOPS_EVENTS_VISIBILITY_TIMEOUT=str(visibility),
            DEFECTOPS_EVENTS_MAX_BODY_BYTES=str(1024 * 1024),
            **stream_env,
        ),
    }
    return github, upstream, port, Processes(env, root)


def _run_kafka(args: argparse.Namespace, phases: set[str], root: Path) -> dict[str, Any]:
    """Phases 1 and 2 on the Kafka adapter (Tansu, memory storage)."""
    from defectops.config import EventsSettings
    from defectops.events import open_stream

    results: dict[str, Any] = {"backend": "kafka (Tansu, memory storage)"}
    broker = KafkaServer(root / "tansu")
    stream_env = {"DEFECTOPS_EVENTS_BACKEND": "kafka", "DEFECTOPS_EVENTS_KAFKA_SERVERS": broker.servers}
    github, upstream, port, processes = _world(root, stream_env, args.visibility)
    url = f"http://127.0.0.1:{port}/webhook"
    try:
        processes.start("receiver", "serve")
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        if "receiver" in phases:
            payload = push_payload(upstream, [upstream.head()], before=upstream.shas[-2])
            found = _blast(
                port, [signed(payload, delivery=f"tp-{i}") for i in range(args.events)], args.concurrency
            )
            settings = EventsSettings(backend="kafka", kafka_servers=broker.servers)
            stream = open_stream(settings, workspace=root / "ws")
            found["stream_length_after"] = stream.stats().length
            stream.close()
            results["receiver"] = found
            print(f"receiver: {found}", flush=True)
            # the throughput events are not worked off: the next phases use a topic of their own
            processes.stop("receiver")
            processes.env["DEFECTOPS_EVENTS_STREAM"] = "defectops:latency"
            processes.start("receiver", "serve")
            _wait_http(f"http://127.0.0.1:{port}/healthz")
        if "latency" in phases:
            with httpx.Client(timeout=30) as client:
                results.update(
                    _latency(processes, url, upstream, github, client, args.pushes, (1, 2), phases)
                )
    finally:
        processes.stop_all()
        github.stop()
        broker.stop()
    return results


def _run_redis(args: argparse.Namespace, phases: set[str], root: Path) -> dict[str, Any]:
    """Every phase on Redis (append-only file, ``--fsync``)."""
    results: dict[str, Any] = {"backend": "redis"}
    redis_dir = (args.redis_dir or root) / "bench-events-redis"
    if redis_dir.exists():
        shutil.rmtree(redis_dir)
    redis = RedisServer(redis_dir, fsync=args.fsync)
    github, upstream, port, processes = _world(
        root, {"DEFECTOPS_EVENTS_REDIS_URL": redis.url}, args.visibility
    )
    url = f"http://127.0.0.1:{port}/webhook"
    import redis as redis_py

    store = redis_py.Redis.from_url(redis.url)
    try:
        processes.start("receiver", "serve")
        _wait_http(f"http://127.0.0.1:{port}/healthz")

        # 1. receiver throughput (no worker)
        if "receiver" in phases:
            results["receiver"] = _receiver_phase(port, upstream, store, args.events, args.concurrency)
            print(f"receiver: {results['receiver']}", flush=True)
        if not phases & {"latency", "burst", "recovery"}:
            return results

        # 2. latency, 1 and 2 workers, one push at a time
        with httpx.Client(timeout=30) as client:
            counts = (1, 2) if "latency" in phases else (2,)
            results.update(_latency(processes, url, upstream, github, client, args.pushes, counts, phases))

            if "burst" in phases:
                # 3. burst: commits made first, then every push sent as fast as it is accepted (2 workers running)
                shas: list[str] = []
                deliveries = []
                for i in range(args.burst):
                    before = upstream.head()
                    sha = upstream.commit(
                        f"Burst {i}", {f"src/b{i % 11}.py": lines(3 + i % 50, f"b{i}")}, days=0.001
                    )
                    shas.append(sha)
                    deliveries.append(
                        signed(push_payload(upstream, [sha], before=before), delivery=f"burst-{i}")
                    )
                start = time.time()
                burst = _blast(port, deliveries, args.concurrency)
                deepest = 0
                deadline = time.monotonic() + args.burst_timeout
                done = 0
                while time.monotonic() < deadline:
                    deepest = max(deepest, int(store.xlen("defectops:events")))
                    with github.api.lock:
                        posted = {r["head_sha"] for r in github.api.check_runs}
                    done = sum(1 for sha in shas if sha in posted)
                    if done == len(shas):
                        break
                    time.sleep(0.5)
                drained = time.time() - start
                with github.api.lock:
                    per_commit = [
                        sum(1 for r in github.api.check_runs if r["head_sha"] == sha) for sha in shas
                    ]
                results["burst"] = {
                    "pushes": args.burst,
                    "accepted": burst["statuses"].get(202, 0),
                    "statuses": burst["statuses"],
                    "accept_seconds": burst["seconds"],
                    "accepted_per_second": burst["accepted_per_second"],
                    "deepest_queue": deepest,
                    "commits_reported": done,
                    "seconds_until_all_reported": drained,
                    "events_per_second_worked": done / drained,
                    "commits_with_exactly_one_run": sum(1 for n in per_commit if n == 1),
                    "dead_letters": int(store.xlen("defectops:events:dead")),
                }
                print(f"burst: {results['burst']}", flush=True)

            if "recovery" in phases:
                # 4. recovery after a worker is killed in the middle of an event
                github.api.hold_creations = True
                github.api.created.clear()
                sha, _ = _push(url, upstream, 99_999, client)
                if not github.api.created.wait(timeout=120):
                    raise RuntimeError("no check run creation to hold")
                [pending] = store.xpending_range("defectops:events", "defectops-workers", "-", "+", 10)
                consumer: Any = pending["consumer"]
                victim = consumer.decode()
                killed = time.time()
                processes.stop(victim, signal.SIGKILL)
                github.api.hold_creations = False
                github.api.release.set()
                while store.xlen("defectops:events") > 0:
                    time.sleep(0.01)
                results["recovery"] = {
                    "visibility_timeout_s": args.visibility,
                    "seconds_from_kill_to_done": time.time() - killed,
                    "check_runs_for_commit": len(github.api.runs_for(sha)),
                }
                print(f"recovery: {results['recovery']}", flush=True)
    finally:
        processes.stop_all()
        store.close()
        github.stop()
        redis.stop()
    return results


if __name__ == "__main__":
    main()
