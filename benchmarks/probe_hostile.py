"""The amplification probe of issue #14 against a running ``defectops serve``.

    python benchmarks/probe_hostile.py http://127.0.0.1:8000 [--attackers 2] [--per-attacker 4] [--keys 400000]

Sends one hostile body (one record of ``--keys`` unknown keys) and reports the answer's status, size and time;
then measures one-record predictions from one client, first alone, then while ``--attackers`` clients send
``--per-attacker`` hostile bodies each. The served model must take the 14 Kamei metrics.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import httpx

METRICS = ("ns", "nd", "nf", "entropy", "la", "ld", "lt", "fix", "ndev", "age", "nuc", "exp", "rexp", "sexp")
JSON = {"content-type": "application/json"}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--per-attacker", type=int, default=4)
    parser.add_argument("--keys", type=int, default=400_000)
    args = parser.parse_args()
    hostile = json.dumps({"records": [{f"k{i}": 0 for i in range(args.keys)}]}).encode()
    good = json.dumps({"records": [dict.fromkeys(METRICS, 1.0)], "top_k": 0}).encode()

    started = time.perf_counter()
    answer = httpx.post(args.url + "/v1/predict", content=hostile, headers=JSON, timeout=300)
    print(
        f"hostile body {len(hostile):,} bytes -> {answer.status_code}, {len(answer.content):,} bytes, "
        f"{time.perf_counter() - started:.2f} s"
    )

    def timed(client: httpx.Client, into: list[float]) -> None:
        begin = time.perf_counter()
        client.post("/v1/predict", content=good, headers=JSON)
        into.append(time.perf_counter() - begin)

    quiet: list[float] = []
    with httpx.Client(base_url=args.url, timeout=300) as client:
        for _ in range(200):
            timed(client, quiet)
    print(f"quiet: p50 {_quantile(quiet, 0.5):.1f} ms, p99 {_quantile(quiet, 0.99):.1f} ms")

    loaded: list[float] = []
    stop = threading.Event()

    def normal() -> None:
        with httpx.Client(base_url=args.url, timeout=300) as client:
            while not stop.is_set():
                timed(client, loaded)

    def attack() -> None:
        with httpx.Client(base_url=args.url, timeout=300) as client:
            for _ in range(args.per_attacker):
                client.post("/v1/predict", content=hostile, headers=JSON)

    victim = threading.Thread(target=normal)
    victim.start()
    attackers = [threading.Thread(target=attack) for _ in range(args.attackers)]
    for thread in attackers:
        thread.start()
    for thread in attackers:
        thread.join()
    stop.set()
    victim.join()
    print(
        f"while {args.attackers * args.per_attacker} hostile requests arrive: {len(loaded)} requests, "
        f"p50 {_quantile(loaded, 0.5):.1f} ms, p99 {_quantile(loaded, 0.99):.1f} ms, "
        f"max {max(loaded) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
