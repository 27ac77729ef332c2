"""The canary procedure (deploy/canary/canary.py) against a real Prometheus and a real registry.

Prometheus here is the real server (Debian's ``prometheus``) on a loopback port, over a TSDB backfilled with
``promtool tsdb create-blocks-from openmetrics`` from series shaped exactly like a scraped stable and canary
track of ``defectops serve`` (the metric names and labels of serving/metrics.py, ``track`` from the pod
label). Three scenarios live side by side under a ``scenario`` label. The registry is the embedded MLflow
registry with a real model registered twice (champion v1, challenger v2); the judge moves its aliases through
``ModelRegistry.promote`` / ``archive``, and the audit history must say so.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from deploy_stack import free_port, stop
from deploy_tools import DEPLOY, find_tool

STEP = 15  # seconds between samples, a scrape interval
MINUTES = 40
SCORE_BOUNDS = [round(0.05 * i, 2) for i in range(1, 21)]
LATENCY_BOUNDS = [0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]


def load_canary() -> ModuleType:
    spec = importlib.util.spec_from_file_location("defectops_canary", DEPLOY / "canary" / "canary.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["defectops_canary"] = module
    spec.loader.exec_module(module)
    return module


canary = load_canary()


@dataclass(frozen=True)
class Track:
    rate: float  # /v1/predict requests per second
    error_share: float  # share answered 500
    latency_bucket: float  # every request's latency falls into the bucket with this upper bound
    score_shift: int  # score histogram shifted by this many buckets
    version: str
    role: str


SCENARIOS = {
    "good": {
        "stable": Track(20.0, 0.001, 0.01, 0, "1", "champion"),
        "canary": Track(2.0, 0.001, 0.01, 0, "2", "challenger"),
    },
    "bad": {
        "stable": Track(20.0, 0.001, 0.01, 0, "1", "champion"),
        "canary": Track(2.0, 0.10, 0.25, 6, "2", "challenger"),
    },
    "quiet": {
        "stable": Track(20.0, 0.001, 0.01, 0, "1", "champion"),
        "canary": Track(0.02, 0.0, 0.01, 0, "2", "challenger"),
    },
}


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def openmetrics(end: float) -> str:
    """The scraped series of every scenario and track from ``end - MINUTES`` to ``end``."""
    times = [end - MINUTES * 60 + i * STEP for i in range(MINUTES * 60 // STEP + 1)]
    families: dict[str, tuple[str, list[str]]] = {
        "defectops_http_requests": ("counter", []),
        "defectops_http_request_duration_seconds": ("histogram", []),
        "defectops_predictions": ("counter", []),
        "defectops_prediction_score": ("histogram", []),
        "defectops_model_info": ("gauge", []),
    }
    score_weights = [math.exp(-(((i + 0.5) / 20 - 0.25) ** 2) / 0.02) for i in range(20)]
    for scenario, tracks in SCENARIOS.items():
        for track, t in tracks.items():
            base = {"job": "defectops-api", "scenario": scenario, "track": track}
            route = {**base, "method": "POST", "route": "/v1/predict"}
            ok = {**route, "status": "200"}
            bad = {**route, "status": "500"}
            lines = families["defectops_http_requests"][1]
            for labels, share in ((ok, 1 - t.error_share), (bad, t.error_share)):
                for i, ts in enumerate(times):
                    lines.append(
                        f"defectops_http_requests_total{_labels(**labels)} {t.rate * share * i * STEP} {ts}"
                    )
            lines = families["defectops_http_request_duration_seconds"][1]
            for bound in [*LATENCY_BOUNDS, math.inf]:
                le = "+Inf" if math.isinf(bound) else repr(bound)
                for i, ts in enumerate(times):
                    count = t.rate * i * STEP if bound >= t.latency_bucket else 0.0
                    lines.append(
                        f"defectops_http_request_duration_seconds_bucket{_labels(**route, le=le)} {count} {ts}"
                    )
            for i, ts in enumerate(times):
                lines.append(
                    f"defectops_http_request_duration_seconds_count{_labels(**route)} {t.rate * i * STEP} {ts}"
                )
                lines.append(
                    f"defectops_http_request_duration_seconds_sum{_labels(**route)} "
                    f"{t.rate * i * STEP * t.latency_bucket / 2} {ts}"
                )
            model = {**base, "model_name": "m", "model_version": t.version}
            served = t.rate * (1 - t.error_share)
            lines = families["defectops_predictions"][1]
            for i, ts in enumerate(times):
                lines.append(
                    f"defectops_predictions_total{_labels(**model, risk_band='low', served='true')} {served * i * STEP} {ts}"
                )
            weights = (
                score_weights[-t.score_shift :] + score_weights[: -t.score_shift]
                if t.score_shift
                else score_weights
            )
            total = sum(weights)
            shares = [w / total for w in weights]
            lines = families["defectops_prediction_score"][1]
            cumulative = 0.0
            for bound, share in zip([*SCORE_BOUNDS[:-1], 1.0], shares, strict=True):
                cumulative += share
                for i, ts in enumerate(times):
                    lines.append(
                        f"defectops_prediction_score_bucket{_labels(**model, served='true', le=repr(bound))} "
                        f"{served * i * STEP * min(cumulative, 1.0)} {ts}"
                    )
            for i, ts in enumerate(times):
                n = served * i * STEP
                lines.append(
                    f"defectops_prediction_score_bucket{_labels(**model, served='true', le='+Inf')} {n} {ts}"
                )
                lines.append(f"defectops_prediction_score_count{_labels(**model, served='true')} {n} {ts}")
                lines.append(
                    f"defectops_prediction_score_sum{_labels(**model, served='true')} {n * 0.25} {ts}"
                )
            lines = families["defectops_model_info"][1]
            for role, version in (("champion", "1"), ("challenger", "2")):
                for ts in times:
                    lines.append(
                        f"defectops_model_info{_labels(**base, model_name='m', model_version=version, role=role)} 1 {ts}"
                    )
    out = []
    for name, (kind, lines) in families.items():
        out.append(f"# TYPE {name} {kind}")
        out.extend(lines)
    out.append("# EOF")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    """A real Prometheus over the backfilled series; yields (URL, the series' last timestamp)."""
    promtool = find_tool("promtool")
    server = find_tool("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    end = float(int(time.time()) - 120)
    (folder / "series.om").write_text(openmetrics(end))
    data = folder / "data"
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(folder / "series.om"), str(data)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    port = free_port()
    with (folder / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                server,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=30d",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (folder / "prometheus.log").read_text()
            time.sleep(0.3)
        yield url, end
    finally:
        stop(process)


@dataclass
class Registered:
    """The session's embedded registry and a model name of this test: v1 champion, v2 challenger."""

    registry: object
    name: str


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real embedded MLflow registry (migrated once) and one logged tiny model."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from defectops.registry.registry import ModelRegistry
    from defectops.registry.runs import log_training_run
    from defectops.registry.tracking import TrackingConfig, ensure_experiment

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        config = TrackingConfig.resolve(tmp_path_factory.mktemp("canary-ws"))
        ensure_experiment(config)
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(
            {"la": rng.integers(0, 200, 80).astype(float), "nf": rng.integers(1, 9, 80).astype(float)}
        )
        y = (frame["la"] > 100).astype(int).to_numpy()
        run = log_training_run(
            LogisticRegression(max_iter=300).fit(frame, y),
            features=["la", "nf"],
            reference=frame,
            params={},
            metrics={"roc_auc": 0.8},
            dataset_fingerprint="fp",
            config=config,
            threshold=0.5,
        )
        yield ModelRegistry(config), run


@pytest.fixture
def registry(tracking, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Model ``m-<test>``: v1 champion, v2 challenger (the same real logged model twice)."""
    registry, run = tracking
    name = "m-" + request.node.name.removeprefix("test_")[:60]
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    registry.register(name, run.model_uri, who="test", why="first", now=t0)
    registry.promote(name, 1, "test", "first champion", now=t0)
    registry.register(name, run.model_uri, who="test", why="challenger", now=t0)
    return Registered(registry, name)


def _judge(prometheus: tuple[str, float], registered: Registered, scenario: str, **kw):  # type: ignore[no-untyped-def]
    url, end = prometheus
    return canary.judge(
        canary.Prometheus(url, at=end),
        registered.registry,
        registered.name,
        window="30m",
        limits=canary.Limits(),
        who="canary-test",
        now=datetime(2026, 12, 3, tzinfo=UTC),
        matchers=f'scenario="{scenario}"',
        **kw,
    )


def test_a_healthy_canary_is_promoted_through_the_audited_alias(prometheus, registry) -> None:  # type: ignore[no-untyped-def]
    reloads: list[bool] = []
    verdict = _judge(prometheus, registry, "good", reload=lambda: reloads.append(True))
    assert verdict.decision == "promote", verdict.checks
    assert [c["passed"] for c in verdict.checks] == [True, True, True, None]  # no realized labels yet
    assert verdict.canary["predictions"] > 200
    assert verdict.score_ks is not None
    assert verdict.score_ks < 0.01
    assert registry.registry.aliases(registry.name) == {"champion": 2}
    moves = registry.registry.history(registry.name)
    assert (moves[-2].alias, moves[-2].action, moves[-2].to_version, moves[-2].who) == (
        "champion",
        "promote",
        2,
        "canary-test",
    )
    assert moves[-2].evidence["source"] == "canary"
    assert reloads == [True]


def test_a_failing_canary_is_rolled_back_and_its_challenger_archived(prometheus, registry) -> None:  # type: ignore[no-untyped-def]
    verdict = _judge(prometheus, registry, "bad")
    assert verdict.decision == "rollback"
    failed = {c["check"] for c in verdict.checks if c["passed"] is False}
    assert failed == {"error rate", "p99 latency", "score distribution"}
    assert registry.registry.aliases(registry.name) == {"champion": 1}
    last = registry.registry.history(registry.name)[-1]
    assert (last.alias, last.action, last.from_version, last.to_version) == ("challenger", "archive", 2, None)
    assert "error rate" in last.why


def test_too_little_canary_traffic_waits_and_moves_nothing(prometheus, registry) -> None:  # type: ignore[no-untyped-def]
    before = registry.registry.history(registry.name)
    verdict = _judge(prometheus, registry, "quiet")
    assert verdict.decision == "wait"
    assert registry.registry.aliases(registry.name) == {"champion": 1, "challenger": 2}
    assert registry.registry.history(registry.name) == before


def test_dry_run_decides_without_acting(prometheus, registry) -> None:  # type: ignore[no-untyped-def]
    verdict = _judge(prometheus, registry, "bad", dry_run=True)
    assert verdict.decision == "rollback"
    assert verdict.actions == []
    assert registry.registry.aliases(registry.name) == {"champion": 1, "challenger": 2}


def test_the_command_line_exit_codes(prometheus, registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, _ = prometheus
    env = {
        **os.environ,
        "DEFECTOPS_WORKSPACE": str(registry.registry.config.workspace),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    # The series end two minutes ago; a 40-minute window still holds the quiet scenario's few requests.
    result = subprocess.run(
        [
            sys.executable,
            str(DEPLOY / "canary" / "canary.py"),
            "judge",
            "--prometheus",
            url,
            "--model-name",
            registry.name,
            "--window",
            "40m",
            "--matchers",
            'scenario="quiet"',
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == canary.EXIT_WAIT, result.stdout + result.stderr
    result = subprocess.run(
        [
            sys.executable,
            str(DEPLOY / "canary" / "canary.py"),
            "judge",
            "--prometheus",
            "http://127.0.0.1:9",
            "--model-name",
            registry.name,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == canary.EXIT_ERROR
    assert "canary.py:" in result.stderr
