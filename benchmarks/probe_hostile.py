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


def hostile_body(keys: int) -> bytes:
    return json.dumps({"records": [{f"field_{i}": 0 for i in range(keys)}]}).encode()  # 7.5 MB for 400,000


def hostile_answer(url: str, keys: int = 400_000) -> dict[str, float]:
    """One hostile body (one record of ``keys`` unknown keys): its size, the answer's status, size and time."""
    hostile = hostile_body(keys)
    started = time.perf_counter()
    answer = httpx.post(url + "/v1/predict", content=hostile, headers=JSON, timeout=300)
    return {
        "body_bytes": len(hostile),
        "status": answer.status_code,
        "answer_bytes": len(answer.content),
        "seconds": time.perf_counter() - started,
    }


def _timed(client: httpx.Client, good: bytes, into: list[float], failed: list[int]) -> None:
    begin = time.perf_counter()
    status = client.post("/v1/predict", content=good, headers=JSON).status_code
    into.append(time.perf_counter() - begin)
    if status != 200:
        failed.append(status)


def quiet_latency(url: str, requests: int = 200) -> dict[str, float]:
    """p50/p99 (ms) of one-record predictions from one client with nothing else arriving."""
    good = json.dumps({"records": [dict.fromkeys(METRICS, 1.0)], "top_k": 0}).encode()
    quiet: list[float] = []
    failed: list[int] = []
    with httpx.Client(base_url=url, timeout=300) as client:
        for _ in range(requests):
            _timed(client, good, quiet, failed)
    return {"requests": len(quiet), "failed": len(failed), "p50_ms": _quantile(quiet, 0.5),
            "p99_ms": _quantile(quiet, 0.99)}  # fmt: skip


def latency_under_attack(
    url: str, attackers: int = 2, per_attacker: int = 4, keys: int = 400_000, bursts: int = 1
) -> dict[str, float]:
    """p50/p99/max (ms) of one client's one-record predictions while ``attackers`` clients send
    ``per_attacker`` hostile bodies each, ``bursts`` times in a row (more samples of the victim)."""
    hostile = hostile_body(keys)
    good = json.dumps({"records": [dict.fromkeys(METRICS, 1.0)], "top_k": 0}).encode()
    loaded: list[float] = []
    failed: list[int] = []
    stop = threading.Event()

    def normal() -> None:
        with httpx.Client(base_url=url, timeout=300) as client:
            while not stop.is_set():
                _timed(client, good, loaded, failed)

    def attack() -> None:
        with httpx.Client(base_url=url, timeout=300) as client:
            for _ in range(per_attacker):
                client.post("/v1/predict", content=hostile, headers=JSON)

    started = time.perf_counter()
    victim = threading.Thread(target=normal)
    victim.start()
    for _ in range(bursts):
        threads = [threading.Thread(target=attack) for _ in range(attackers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    stop.set()
    victim.join()
    return {
        "hostile_requests": attackers * per_attacker,
        "bursts": bursts,
        "seconds": time.perf_counter() - started,
        "requests": len(loaded),
        "failed": len(failed),
        "p50_ms": _quantile(loaded, 0.5),
        "p99_ms": _quantile(loaded, 0.99),
        "max_ms": max(loaded) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--per-attacker", type=int, default=4)
    parser.add_argument("--keys", type=int, default=400_000)
    args = parser.parse_args()
    one = hostile_answer(args.url, args.keys)
    print(
        f"hostile body {one['body_bytes']:,} bytes -> {one['status']}, {one['answer_bytes']:,} bytes, "
        f"{one['seconds']:.2f} s"
    )
    quiet = quiet_latency(args.url)
    print(f"quiet: p50 {quiet['p50_ms']:.1f} ms, p99 {quiet['p99_ms']:.1f} ms")
    loaded = latency_under_attack(args.url, args.attackers, args.per_attacker, args.keys)
    print(
        f"while {loaded['hostile_requests']} hostile requests arrive: {loaded['requests']} requests, "
        f"p50 {loaded['p50_ms']:.1f} ms, p99 {loaded['p99_ms']:.1f} ms, max {loaded['max_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
