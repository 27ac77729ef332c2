"""Web UI benchmark: the overview page's weight and load time with 100,000 logged predictions.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_ui.py [--predictions 100000] [--repeat 10]

A real service (uvicorn on 127.0.0.1, the real app) over a real MLflow registry (a seeded LightGBM champion,
registered and promoted) and a SQLite prediction log holding ``--predictions`` served predictions of commits
spread over the last 30 days (seeded), plus a few hundred labels. Measured, cold (a new connection and no cache
each time):

1. the bytes of everything the overview loads: the HTML, the stylesheet, the scripts (Chart.js included) and
   its JSON document (``/ui/api/overview``); target under 500 KB;
2. the time to fetch all of it, one request after the other as a browser's first visit would; median and
   worst of ``--repeat`` runs; target under 1 s;
3. with Debian's chromium when it is installed (Playwright with the system browser): the time from navigation
   to the page drawn from its document (the last part, the versions table, present), in a fresh browser
   context each run (no cache); the JSON document alone is timed too.

Results go to docs/benchmarks.md ("Web UI").
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from defectops.config import ServeSettings, Settings  # noqa: E402
from defectops.data.schemas import FEATURES  # noqa: E402
from defectops.predlog import FeedbackRecord, PredictionLog, PredictionRecord  # noqa: E402
from defectops.registry import ModelRegistry, TrackingConfig, ensure_experiment, log_training_run  # noqa: E402
from serving.conftest_api import fit_model  # noqa: E402 - the test suite's seeded model

NOW = datetime.now(UTC)
ASSETS = (
    "/ui/",
    "/ui/static/ui.css",
    "/ui/static/vendor/chart.umd.min.js",
    "/ui/static/ui.js",
    "/ui/static/overview.js",
    "/ui/api/overview",
)


def build(workspace: Path, predictions: int) -> tuple[ModelRegistry, str]:
    """A registry with a promoted champion and a log of ``predictions`` served commit predictions."""
    config = TrackingConfig.resolve(workspace)
    ensure_experiment(config)
    model, frame = fit_model(0)
    run = log_training_run(
        model,
        features=list(FEATURES),
        reference=frame,
        params={"seed": 0},
        metrics={"roc_auc": 0.8},
        dataset_fingerprint="bench-ui",
        config=config,
        threshold=model.threshold_,
        reference_max_rows=200,
    )
    registry = ModelRegistry(config)
    registry.register("bench-ui", run.model_uri, who="bench", why="benchmark", now=NOW)
    registry.promote("bench-ui", 1, "bench", "benchmark", now=NOW)
    url = f"sqlite:///{workspace / 'predictions.db'}"
    rng = np.random.default_rng(0)
    with PredictionLog.from_url(url) as log:
        for start in range(0, predictions, 5000):
            count = min(5000, predictions - start)
            scores = rng.beta(2, 5, count)
            ages = rng.uniform(0, 30 * 86400, count)
            batch = [
                PredictionRecord(
                    prediction_id=str(
                        uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | start + i, version=4)
                    ),
                    created_at=NOW - timedelta(seconds=float(ages[i])),
                    model_name="bench-ui",
                    model_version="1",
                    served=True,
                    inputs={name: float(rng.gamma(2.0, 10.0)) for name in FEATURES},
                    score=float(scores[i]),
                    threshold=0.5,
                    risk_label=int(scores[i] >= 0.5),
                    risk_band="high" if scores[i] >= 0.5 else ("medium" if scores[i] >= 0.2 else "low"),
                    repo=f"repo-{(start + i) % 5}",
                    commit_sha=f"{start + i:040x}",
                )
                for i in range(count)
            ]
            log.record(batch)
        labels = [
            FeedbackRecord(
                label=int(rng.random() < 0.2), repo=f"repo-{i % 5}", commit_sha=f"{i:040x}", source="szz"
            )
            for i in range(0, min(predictions, 50_000), 100)
        ]
        log.add_feedback_batch(labels, now=NOW)
    return registry, url


def cold_load(base: str) -> tuple[float, int]:
    """Fetch the overview and everything it loads, in order, on a fresh connection: (seconds, bytes)."""
    began = time.perf_counter()
    total = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in ASSETS:
            response = client.get(path)
            response.raise_for_status()
            total += len(response.content)
    return time.perf_counter() - began, total


def browser_loads(base: str, repeat: int) -> list[float] | None:
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            for _ in range(repeat):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                began = time.perf_counter()
                page.goto(base + "/ui/", wait_until="load")
                page.wait_for_selector("#versions table")  # the document arrived and every part is drawn
                times.append(time.perf_counter() - began)
                context.close()
        finally:
            browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from serving.live_server import served_app

    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        workspace = Path(tmp)
        began = time.perf_counter()
        registry, url = build(workspace, args.predictions)
        print(f"built {args.predictions} predictions in {time.perf_counter() - began:.1f} s", flush=True)
        settings = Settings(workspace=workspace, mode="local")
        serve = ServeSettings(model_name="bench-ui", log_url=url, poll_seconds=3600.0)
        with served_app(settings, serve, registry) as base:
            cold_load(base)  # first use: imports, the registry's first query, SQLite's page cache
            loads = [cold_load(base) for _ in range(args.repeat)]
            document = len(httpx.get(base + "/ui/api/overview").content)
            json_times = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                httpx.get(base + "/ui/api/overview").raise_for_status()
                json_times.append(time.perf_counter() - began)
            browser = browser_loads(base, args.repeat)
    seconds = [s for s, _ in loads]
    size = loads[-1][1]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"date: {NOW:%Y-%m-%d %H:%M} UTC; load average {os.getloadavg()[0]:.2f}")
    print(f"overview bytes: {size} ({size / 1024:.0f} KiB; JSON document {document} bytes)")
    print(
        f"cold load (HTTP, sequential): median {statistics.median(seconds) * 1000:.0f} ms, worst {max(seconds) * 1000:.0f} ms"
    )
    print(f"overview document alone: median {statistics.median(json_times) * 1000:.0f} ms")
    if browser is not None:
        print(
            f"chromium (navigation to the page drawn): median {statistics.median(browser) * 1000:.0f} ms, "
            f"worst {max(browser) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
