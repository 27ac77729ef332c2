"""A seeded, real-shaped history of changes for the self-healing tests, and the pieces to replay it.

The history: change metrics of Kamei et al. drawn per author team, defects with fixes 10–40 days later, and
labels that mature the way :mod:`defectops.data.labels` says (a defect is known when its fix lands, a
clean change after the waiting period). Two eras:

* **A** (before ``drift_day``): regulars make small changes, newcomers larger ones; defects come with size
  and inexperience (logit rises with log(la) and falls with log(exp)).
* **B** (from ``drift_day``): a new team of authors makes most changes, and changes get much larger (a shift
  in change size). What makes a change risky changes too: the new team's large changes are clean unless
  they are scattered (high entropy, many files). A model of era A flags every large change and misses
  the scattered small-team ones, so it loses most of its edge; a model that has seen era-B labels does not.

Everything is a function of the seed, so runs are identical. ``commits_frame`` and ``labels_frame`` give the
tables the training code reads (as mined, and labels with ``label_known_at``) for
:class:`defectops.pipeline.heal.FrameSource`; ``feedback_events`` gives the labels the service receives, in
the order and at the time they become known.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from defectops.data.columns import METRIC_NAMES
from defectops.data.labels import LINK_COLUMNS, compute_labels
from defectops.registry.tracking import TrackingConfig, ensure_experiment

START = datetime(2024, 1, 1, tzinfo=UTC)
WAITING_DAYS = 30


@dataclass(frozen=True)
class WorldSpec:
    seed: int = 7
    days: int = 540
    per_day: int = 4
    drift_day: int | None = 300


def _sha(seed: int, index: int) -> str:
    return hashlib.sha1(f"{seed}:{index}".encode()).hexdigest()


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def generate(spec: WorldSpec) -> pd.DataFrame:
    """One row per change: sha, time, team, the 14 metrics, churn, defect, fix_time (NaT if clean)."""
    rng = np.random.default_rng(spec.seed)
    rows: list[dict[str, Any]] = []
    index = 0
    for day in range(spec.days):
        drifted = spec.drift_day is not None and day >= spec.drift_day
        for slot in range(spec.per_day):
            time = START + timedelta(days=day, hours=9 + 2 * slot, minutes=int(rng.integers(0, 60)))
            if drifted:
                team = "team-b" if rng.random() < 0.65 else "regular"
            else:
                team = "newcomer" if rng.random() < 0.35 else "regular"
            if team == "regular":
                exp = float(rng.uniform(300, 1500))
                la = float(np.round(rng.lognormal(2.3, 0.8)))
            elif team == "newcomer":
                exp = float(rng.uniform(0, 40))
                la = float(np.round(rng.lognormal(3.4, 0.8)))
            else:  # the new team: inexperienced here, and much larger changes
                exp = float(rng.uniform(0, 40))
                la = float(np.round(rng.lognormal(4.6, 0.6)))
            nf = float(1 + rng.poisson(1.5 if team != "team-b" else 2.5))
            ns = float(min(nf, 1 + rng.binomial(2, 0.3)))
            nd = float(min(nf, ns + rng.binomial(2, 0.4)))
            entropy = 0.0 if nf == 1 else float(rng.uniform(0.1, 1.0) * math.log2(nf))
            ld = float(np.round(la * rng.uniform(0.1, 0.6)))
            record = {
                "ns": ns,
                "nd": nd,
                "nf": nf,
                "entropy": round(entropy, 4),
                "la": la,
                "ld": ld,
                "lt": float(np.round(rng.lognormal(5.0, 1.0))),
                "fix": float(rng.random() < 0.2),
                "ndev": float(1 + rng.poisson(3)),
                "age": round(float(rng.exponential(30.0)), 2),
                "nuc": float(1 + rng.poisson(5)),
                "exp": round(exp, 1),
                "rexp": round(exp * float(rng.uniform(0.05, 0.3)), 2),
                "sexp": round(exp * float(rng.uniform(0.2, 0.8)), 1),
            }
            if team == "team-b":
                logit = -3.2 + 1.6 * record["entropy"] + 0.35 * (nf - 2.0)
            else:
                logit = -3.3 + 0.9 * math.log1p(la) - 0.45 * math.log1p(exp) + 0.4 * record["fix"]
            defect = bool(rng.random() < _sigmoid(logit))
            fix_time = time + timedelta(days=float(rng.uniform(10, 40))) if defect else pd.NaT
            rows.append(
                {
                    "sha": _sha(spec.seed, index),
                    "time": time,
                    "day": day,
                    "team": team,
                    **record,
                    "churn": la + ld,
                    "defect": defect,
                    "fix_time": fix_time,
                }
            )
            index += 1
    frame = pd.DataFrame(rows)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["fix_time"] = pd.to_datetime(frame["fix_time"], utc=True)
    return frame


def commits_frame(world: pd.DataFrame) -> pd.DataFrame:
    """The changes as the miner stores them (the columns training_table reads)."""
    commits = pd.DataFrame({"sha": world["sha"], "is_merge": False})
    for name in METRIC_NAMES:
        commits[name] = world[name].astype("float64")
    commits["author_time"] = world["time"]
    commits["committed_at"] = world["time"]
    commits["author_name"] = world["team"]
    commits["message"] = "change"
    return commits


def labels_frame(world: pd.DataFrame, *, end: datetime, waiting_days: int = WAITING_DAYS) -> pd.DataFrame:
    """Labels as known at ``end`` (defect known at its fix, clean after the waiting period), by the real
    labelling code, from one fix link per defect."""
    defects = world.loc[world["defect"] & (world["fix_time"] <= pd.Timestamp(end))]
    links = pd.DataFrame(
        {
            "fix_sha": [_sha(-1, i) for i in range(len(defects))],
            "inducing_sha": defects["sha"].to_numpy(),
            "path": "src/a.py",
            "lines": [[1] for _ in range(len(defects))],
            "variant": "ag",
            "evidence": "test",
            "fix_committed_at": defects["fix_time"].to_numpy(),
        }
    )[LINK_COLUMNS]
    commits = pd.DataFrame({"sha": world["sha"], "committed_at": world["time"], "is_merge": False})
    return compute_labels(commits, links, now=end, waiting_days=waiting_days)


def feedback_events(world: pd.DataFrame, waiting_days: int = WAITING_DAYS) -> pd.DataFrame:
    """Every label change the service hears about, in time order: (time, sha, label).

    A defect fixed within the waiting period is heard once, at the fix. Otherwise the change is first heard
    as clean when the waiting period ends, and a later fix corrects it to defective.
    """
    events: list[tuple[pd.Timestamp, str, int]] = []
    wait = pd.Timedelta(days=waiting_days)
    for sha, time, defect, fix in zip(
        world["sha"], world["time"], world["defect"], world["fix_time"], strict=True
    ):
        clean_at = time + wait
        if defect and fix <= clean_at:
            events.append((fix, sha, 1))
            continue
        events.append((clean_at, sha, 0))
        if defect:
            events.append((fix, sha, 1))
    frame = pd.DataFrame(events, columns=["time", "sha", "label"])
    return frame.sort_values(["time", "sha"], kind="stable").reset_index(drop=True)


def day(n: float) -> datetime:
    return START + timedelta(days=n)


# ----------------------------------------------------------------------------------------------------------
# Shared MLflow store (migrating a fresh SQLite database costs seconds: once per session)

_TRACKING: dict[Path, TrackingConfig] = {}


@pytest.fixture(scope="session")
def heal_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingConfig]:
    """The session's embedded MLflow store, migrated once even though several modules import this."""
    base = tmp_path_factory.getbasetemp()
    if base not in _TRACKING:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        workspace = tmp_path_factory.mktemp("heal-ws")
        config = TrackingConfig.resolve(workspace)
        with _mlflow_environment_kept():
            ensure_experiment(config)
        _TRACKING[base] = config
    return _TRACKING[base]


@contextmanager
def _mlflow_environment_kept() -> Iterator[None]:
    """Put ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI`` back as they were.

    ``mlflow.set_tracking_uri`` (called by every registry operation) also writes the URI into ``os.environ``;
    left there, it would point later tests that resolve their store from the environment (``defectops run``
    in tests/pipeline/test_run_main_job.py) at this session's store.
    """
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def mlflow_environment_restored() -> Iterator[None]:
    """Every test of a module that imports this leaves the MLflow environment variables as it found them."""
    with _mlflow_environment_kept():
        yield


def unique_name(request: pytest.FixtureRequest) -> str:
    """A registered-model name unique to the test (test node names are unique in a session)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:90].strip("-")


# ----------------------------------------------------------------------------------------------------------
# Serving the history through the real service, with late feedback


class SimClock:
    """The service's clock: returns the simulated time the test sets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


REPO_KEY = "sim"
ADMIN_TOKEN = "heal-test-admin-token-0123456789"


def record_of(row: Any) -> dict[str, Any]:
    """One change as the API's JSON record (the 14 metrics, churn, and the commit it belongs to)."""
    record: dict[str, Any] = {name: float(getattr(row, name)) for name in METRIC_NAMES}
    record["repo"] = REPO_KEY
    record["commit_sha"] = str(row.sha)
    return record


class Simulation:
    """Replays ``world`` day by day through a started TestClient of the real app: each change is scored when
    it is made, each label is posted when it becomes known (late), and heal cycles run in between."""

    def __init__(self, world: pd.DataFrame, client: Any, clock: SimClock, serve_from: int) -> None:
        self.world = world
        self.client = client
        self.clock = clock
        self.serve_from = serve_from
        served = world.loc[world["day"] >= serve_from]
        events = feedback_events(world)
        self.events = events.loc[events["sha"].isin(set(served["sha"]))].reset_index(drop=True)
        self._next_event = 0
        self.requests = 0
        self.feedback = 0

    @property
    def service(self) -> Any:
        return self.client.app.state.service

    def serve_day(self, n: int) -> None:
        """Score the changes of day ``n`` (one request, as a CI job scoring the day's pushes would, at the
        time of the day's first change), then post the labels that became known that day."""
        rows = list(self.world.loc[self.world["day"] == n].itertuples())
        if rows:
            self.clock.now = rows[0].time.to_pydatetime()
            body = {"records": [record_of(row) for row in rows], "top_k": 0}
            response = self.client.post("/v1/predict", json=body)
            if response.status_code != 200:
                raise AssertionError(f"predict failed: {response.status_code} {response.text}")
            self.requests += 1
        self.deliver_until(day(n + 1))

    def deliver_until(self, until: datetime) -> None:
        stamp = pd.Timestamp(until)
        events = self.events
        while self._next_event < len(events) and events.at[self._next_event, "time"] < stamp:
            event = events.iloc[self._next_event]
            moment = event["time"].to_pydatetime()
            self.clock.now = moment
            body = {
                "label": int(event["label"]),
                "repo": REPO_KEY,
                "commit_sha": str(event["sha"]),
                "label_time": moment.isoformat(),
            }
            response = self.client.post(
                "/v1/feedback", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            if response.status_code not in (200, 201):
                raise AssertionError(f"feedback failed: {response.status_code} {response.text}")
            self.feedback += 1
            self._next_event += 1

    def follow_control(self) -> bool:
        """What the service's poller does every second: apply a newer control file written by the loop."""
        return bool(self.service.manager.poll_once())

    def deployment(self) -> dict[str, Any]:
        document: dict[str, Any] = self.client.get("/v1/models").json()
        return document


def bootstrap_champion(
    registry: Any, name: str, source: Any, now: datetime, *, kind: str = "lightgbm"
) -> int:
    """Train, register and promote the first model the way the main job does (first-model gate)."""
    from defectops.data.schemas import EFFORT, LABEL
    from defectops.registry.runs import register_trained_model
    from defectops.training.candidate import CandidateOptions, train_candidate

    history = source.refresh(now)
    options = CandidateOptions(kind=kind, budget_seconds=0.0, waiting_days=WAITING_DAYS)
    candidate = train_candidate(history.commits, history.labels, history.files, now=now, options=options)
    version = register_trained_model(
        registry,
        name,
        candidate.model,
        features=candidate.features,
        table=candidate.table_now,
        metrics=candidate.metrics,
        dataset_fingerprint=history.fingerprint,
        now=now,
        who="test",
        why="first model",
        job="test",
        evidence={"labels_as_of": now.isoformat()},
    ).version
    outcome = registry.apply_gate(
        name,
        version.version,
        y_true=candidate.window[LABEL].to_numpy(),
        effort=candidate.window[EFFORT].to_numpy(),
        challenger_scores=candidate.window_probability,
        champion_scores=None,
        champion_version=None,
        who="test",
        now=now,
    )
    if not outcome.promoted:
        raise AssertionError(f"the first model did not pass its floor: {outcome.decision.reason}")
    return int(version.version)


def start_service(workspace: Path, registry: Any, name: str, clock: SimClock, log_url: str) -> Any:
    """A started TestClient of the real FastAPI app (lifespan run: log opened, champion loaded)."""
    from fastapi.testclient import TestClient

    from defectops.config import ServeSettings, Settings
    from defectops.serving.app import create_app

    serve = ServeSettings(model_name=name, admin_token=ADMIN_TOKEN, log_url=log_url, poll_seconds=3600.0)
    app = create_app(Settings(workspace=workspace, mode="local"), serve, registry=registry, clock=clock)
    client = TestClient(app)
    client.__enter__()
    return client


@dataclass
class Stack:
    """One test's model name and its real parts: the session's registry, a prediction log, a workspace."""

    name: str
    registry: Any
    log: Any
    log_url: str
    workspace: Path

    def healer(self, source: Any | None, settings: Any, **options: Any) -> Any:
        """A healer wired to this stack (control file and audit table in the workspace)."""
        from defectops.pipeline.heal import Healer
        from defectops.registry.audit import AuditLog
        from defectops.serving.control import ControlFile

        return Healer(
            model_name=self.name,
            registry=self.registry,
            log=self.log,
            control=ControlFile.for_model(self.workspace, self.name),
            audit=AuditLog(f"sqlite:///{self.workspace / 'heal.db'}"),
            settings=settings,
            source=source,
            waiting_days=WAITING_DAYS,
            **options,
        )

    def control(self) -> Any:
        from defectops.serving.control import ControlFile

        return ControlFile.for_model(self.workspace, self.name).read()

    def serve_learnt_and_new(self, version: int, *, features_of: int | None = None) -> None:
        """Forty served predictions of ``version`` on day 261: 30 for commits SZZ labelled on day 100 (a model
        trained after it learnt them: requests for older commits) and 10 labelled on day 265, half of each
        defect-inducing (inputs: the features of ``features_of``, default ``version``)."""
        from defectops.predlog import FeedbackRecord, PredictionRecord

        features = self.registry.load(self.name, version=features_of or version).meta.features
        shas = [(f"{n:040x}", day(100 if n <= 30 else 265)) for n in range(1, 41)]
        common = {"created_at": day(261), "model_name": self.name, "model_version": str(version), "served": True,
                  "threshold": 0.5, "risk_label": 0, "risk_band": "low", "repo": "syn"}  # fmt: skip
        self.log.record(
            [
                PredictionRecord(
                    prediction_id=f"00000000-0000-4000-8000-{version:04d}{n:08d}",
                    inputs=dict.fromkeys(features, float(n)),
                    score=0.1 + 0.008 * n,
                    commit_sha=sha,
                    **common,
                )
                for n, (sha, _) in enumerate(shas)
            ]
        )
        labels = [
            FeedbackRecord(label=n % 2, repo="syn", commit_sha=sha, label_time=at, source="szz")
            for n, (sha, at) in enumerate(shas)
        ]
        self.log.add_feedback_batch(labels, now=day(266))


@pytest.fixture
def stack(heal_tracking: TrackingConfig, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    from defectops.predlog.log import PredictionLog
    from defectops.registry.registry import ModelRegistry

    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    log = PredictionLog.from_url(url)
    yield Stack(unique_name(request), ModelRegistry(heal_tracking), log, url, tmp_path)
    log.close()
