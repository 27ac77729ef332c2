"""``predict --store`` on a shallow clone vs ``predict`` on a complete clone: time, bytes cloned, same metrics.

Usage (from the repository root; a local S3 server is started on 127.0.0.1 for the run):

    .venv/bin/python benchmarks/bench_store.py --repo /work/bench/terraform-aws-eks --model-dir MODEL \\
        [--rounds 3] [--workspace /tmp/bench-store]

MODEL is a folder from ``defectops models export`` (any model of the repository). Setup, once: the newest
non-merge commit is the "pushed head"; a trusted clone at its parent is mined and its miner state uploaded to ``s3://bench/<name>/state/miner.sqlite`` (what
``defectops state export --store`` does). Then, per round and side by side, what a CI job does for the
pushed HEAD:

* **store**: ``git clone --depth 2`` + ``defectops predict --store s3://...`` in a fresh workspace (loads the
  state, scores HEAD, writes the layout, saves the state back: the round then restores the seeded state);
* **full**: ``git clone`` (complete) + ``defectops predict`` in a fresh workspace (mines the history once).

Both commands run as subprocesses (startup and imports included, as in CI). Prints the medians, their
ratio, the clone sizes and whether both sides gave HEAD the same 14 metrics and probability (they must).
Results go to docs/benchmarks.md ("#17 S3 store").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from defectops.config import Workspace
from defectops.git import GitRepo
from defectops.mining import MineOptions, Miner
from defectops.storage import ArtifactStore

DEFECTOPS = str(Path(sys.executable).with_name("defectops"))
SERVER = """
import time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
while True:
    time.sleep(3600)
"""


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return seconds, done.stdout


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in (path / ".git").rglob("*") if f.is_file()) / 1e6


def head_commit(out: str) -> dict[str, Any]:
    commit: dict[str, Any] = json.loads(out)["commits"][0]
    return commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/bench-store"))
    args = parser.parse_args()
    root: Path = args.workspace
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        endpoint = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        env = {
            **os.environ,
            "DEFECTOPS_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
            region_name="us-east-1",
        ).create_bucket(Bucket="bench")  # fmt: skip
        url = f"s3://bench/{args.repo.name}"
        store = ArtifactStore.from_url(url, {"key": "bench", "secret": "bench", "endpoint_url": endpoint})
        # The "pushed head": the newest non-merge commit (a merge is listed, not scored), in a local copy.
        origin = root / "origin"
        subprocess.run(["git", "clone", "-q", f"file://{args.repo.resolve()}", str(origin)], check=True)
        pushed = subprocess.run(
            ["git", "-C", str(origin), "rev-list", "--no-merges", "-1", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        subprocess.run(["git", "-C", str(origin), "reset", "-q", "--hard", pushed], check=True)
        trusted = root / "trusted"
        subprocess.run(["git", "clone", "-q", f"file://{origin}", str(trusted)], check=True)
        subprocess.run(["git", "-C", str(trusted), "reset", "-q", "--hard", "HEAD~1"], check=True)
        miner = Miner(GitRepo.open(trusted), Workspace(root / "ws-trusted").ensure(), MineOptions())
        started = time.perf_counter()
        mined = miner.mine()
        mine_seconds = time.perf_counter() - started
        store.put_state(miner.store.path, "miner.sqlite")
        seeded = store.read_bytes("state/miner.sqlite")
        print(f"setup: mined {mined.commits} commits up to HEAD~1 in {mine_seconds:.1f} s; state "
              f"{len(seeded) / 1e6:.1f} MB in {url}/state/miner.sqlite")  # fmt: skip

        model = ["--model-dir", str(args.model_dir), "--format", "json"]
        times: dict[str, list[float]] = {"store": [], "full": []}
        answers: dict[str, dict[str, Any]] = {}
        sizes: dict[str, float] = {}
        for index in range(args.rounds):
            for side in ("store", "full"):
                clone, ws = root / f"{side}-{index}", root / f"ws-{side}-{index}"
                depth = ["--depth", "2"] if side == "store" else []
                source = f"file://{origin}"
                clone_s, _ = timed(["git", "clone", "-q", *depth, source, str(clone)], env)
                extra = ["--store", url] if side == "store" else []
                argv = [DEFECTOPS, "--workspace", str(ws), "predict", "--repo", str(clone), *model, *extra]
                predict_s, out = timed(argv, env)
                times[side].append(clone_s + predict_s)
                answers[side] = head_commit(out)
                sizes[side] = size_mb(clone)
                print(f"round {index + 1} {side:5}: clone {clone_s:5.2f} s + predict {predict_s:5.2f} s")
                if side == "store":
                    store.write_bytes("state/miner.sqlite", seeded)  # the next round starts from HEAD~1 again
        print("keys written:", ", ".join(k for k in store.list_keys() if not k.startswith("predictions/")),
              f"+ {len(store.list_predictions())} prediction file(s)")  # fmt: skip
        same = (
            answers["store"]["features"] == answers["full"]["features"]
            and answers["store"]["probability"] == answers["full"]["probability"]
        )
        med = {side: statistics.median(values) for side, values in times.items()}
        print(f"HEAD {answers['store']['sha'][:12]}: same metrics and probability on both sides: {same}")
        print(f"clone size: shallow {sizes['store']:.1f} MB, full {sizes['full']:.1f} MB")
        print(f"median clone+predict: store {med['store']:.2f} s, full {med['full']:.2f} s, "
              f"ratio full/store {med['full'] / med['store']:.2f}x")  # fmt: skip
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
