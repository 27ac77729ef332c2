"""Monitoring replayed on real history (issue 12): 12 months of a repository served week by week.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_monitor_replay.py --repos /work/bench/numpy /work/bench/flask \
        [--weeks 52] [--quick] [--markdown]

Per repository R (a local clone; nothing of it is copied into this repository):

1. T0 = R's head commit time - 365 days. A shared clone in a temporary folder is checked out at the last
   first-parent commit before T0 and the champion is trained there the way ``defectops run`` does it
   (:func:`defectops.pipeline.run` with ``now=T0``, tuning budget ``--budget-seconds``): only commits and
   labels known at T0. The clone is then moved to R's head.
2. The labels of the whole history are computed once (SZZ, ``now`` = head time) with the time each became
   known (a defect: its fix; clean: the end of the waiting period); :func:`defectops.data.labels_as_of`
   gives exactly what was known at any week's end.
3. ``defectops serve`` runs as a subprocess on 127.0.0.1 with that workspace and the clone configured. For
   each week w: ``POST /v1/commits/score`` with the range of first-parent commits of the week; then every
   label of a served commit that became known during the week goes to ``POST /v1/feedback`` (with its
   ``label_time``).
4. Monitoring as of the week's end: the service writes predictions with the wall-clock time, so the week's
   simulated end is mapped onto the wall-clock moment its scoring and feedback were finished. The window is
   read from the service's SQLite log (:meth:`PredictionLog.window` with ``as_of`` = that moment: only the
   feedback received by then) and cut to the commits of the last ``window_days`` (heal's window) by commit
   time; :func:`monitor_window` runs with ``now`` = the simulated week end, the recent reference heal uses,
   the champion's threshold and training ROC-AUC. Heal's pure :func:`decide` gets the inputs heal's decide
   step would build (monitored only with ``min_window_predictions``, earlier alarms of this champion, new
   labels since T0, days since the champion's registration). Nothing is trained.
5. Injected drift, in copies of the served windows (the log's rows: real mined features, re-scored with the
   champion in-process, as the service would score them): from start week s on, a jump in change size (la,
   ld, nf times k), a new team (exp, rexp, sexp = 0 for a share p of the commits), a drop in label quality
   (a share q of the matured labels flipped). Detected within 2 windows: an alarm at week s or s+1.

A false alarm is an alarm in a window where neither the realized (window) nor the CBPE-estimated ROC-AUC is
more than the gate's margin (``MonitoringSettings.max_performance_drop`` = heal's ``max_roc_auc_drop``)
below the champion's training ROC-AUC. Target: at most 1 window in 10.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defectops.config import HealSettings, MonitoringSettings, Settings, Workspace
from defectops.data import labels_as_of
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, label_repository
from defectops.monitoring import monitor_window, recent_reference
from defectops.monitoring.report import MonitoringResult
from defectops.pipeline import RunOptions, run
from defectops.pipeline.heal.decide import DecideInputs, Decision, Realized, decide
from defectops.predlog import PredictionLog, default_url
from defectops.registry import LoadedModel, ModelRegistry

TOKEN = "replay-feedback-token"
REPO_ID = "replay"
SIZE_FEATURES = ("la", "ld", "nf")
EXPERIENCE = ("exp", "rexp", "sexp")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(base: str, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{path}: HTTP {exc.code}: {exc.read()[:500]!r}") from None


@dataclass
class Week:
    index: int
    end: datetime
    n_scored: int = 0
    n_feedback: int = 0
    wall_end: datetime = field(default_factory=lambda: datetime.now(UTC))
    n_window: int = 0
    n_matured: int = 0
    state: str = "-"
    alarm: bool = False
    reasons: list[str] = field(default_factory=list)
    realized_auc: float | None = None
    realized_note: str = ""
    estimated_auc: float | None = None
    cumulative_auc: float | None = None
    cumulative_n: int = 0
    monitored: bool = False
    decision: str = "-"
    perf_drop: bool = False
    window: pd.DataFrame | None = None


@dataclass
class Champion:
    name: str
    version: int
    model: LoadedModel
    reference: pd.DataFrame
    history: pd.DataFrame
    baseline_auc: float | None
    baseline_f1: float | None
    reference_span: str


@dataclass
class Replay:
    repo: str
    t0: datetime
    head: datetime
    champion: Champion
    weeks: list[Week]
    labels: pd.DataFrame
    train_seconds: float
    label_seconds: float
    serve_seconds: float


def prepare_clone(source: Path, tmp: Path) -> tuple[Path, str, str, datetime, datetime]:
    clone = tmp / source.name
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(source), str(clone)], check=True)
    if git(source, "for-each-ref", "refs/replace").strip():
        git(clone, "fetch", "-q", "origin", "refs/replace/*:refs/replace/*")
    head_sha = git(source, "rev-parse", "HEAD").strip()
    head = datetime.fromtimestamp(int(git(source, "log", "-1", "--format=%ct", head_sha)), UTC)
    t0 = head - timedelta(days=365)
    t0_sha = git(clone, "rev-list", "-1", "--first-parent", f"--before={t0.isoformat()}", head_sha).strip()
    git(clone, "checkout", "-q", "-B", "replay", t0_sha)
    return clone, head_sha, t0_sha, head, t0


def train_at(clone: Path, workspace: Path, t0: datetime, budget: float) -> float:
    started = time.perf_counter()
    settings = Settings(workspace=workspace)  # type: ignore[call-arg]
    result = run(RunOptions(repo=clone, budget_seconds=budget, recent=0), settings, now=t0)
    print(f"  trained at T0: {result.registered!r} (trained={result.trained})", flush=True)
    return time.perf_counter() - started


def load_champion(workspace: Path, clone: Path, t0: datetime, heal: HealSettings) -> Champion:
    from defectops.cli._support import repository_model

    settings = Settings(workspace=workspace)  # type: ignore[call-arg]
    name = repository_model(settings, clone)
    registry = ModelRegistry.from_settings(settings)
    version = registry.alias_version(name, "champion")
    if version is None:
        raise SystemExit(f"{name}: no champion after training at T0")
    info = registry.get_version(name, version)
    snapshot = registry.load_reference(name, version=version)
    span = recent_reference(
        snapshot,
        trained_at=t0,
        waiting_days=settings.label_waiting_days,
        span_days=heal.reference_days,
        min_rows=heal.min_reference_rows,
    )
    auc, f1 = info.metrics.get("roc_auc"), info.metrics.get("f1")
    return Champion(
        name=name,
        version=version,
        model=registry.load(name, version=version),
        reference=span.frame,
        history=snapshot,
        baseline_auc=auc if auc is not None and math.isfinite(auc) else None,
        baseline_f1=f1 if f1 is not None and math.isfinite(f1) else None,
        reference_span=span.describe(),
    )


def all_labels(clone: Path, tmp: Path, head_sha: str, head: datetime) -> pd.DataFrame:
    workspace = Workspace(tmp / "labels-workspace").ensure()
    options = LabelOptions(revision=head_sha)
    return label_repository(GitRepo.open(clone), workspace, now=head, options=options, store=False).labels


def start_service(workspace: Path, clone: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DEFECTOPS_WORKSPACE": str(workspace),
        "DEFECTOPS_SERVE_REPOSITORIES": json.dumps({REPO_ID: str(clone)}),
        "DEFECTOPS_SERVE_FEEDBACK_TOKEN": TOKEN,
    }
    exe = Path(sys.executable).with_name("defectops")
    command = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(base + "/health/ready", timeout=2) as response:
                if response.status == 200:
                    return process, base
        except (urllib.error.URLError, OSError):
            pass
        if process.poll() is not None:
            raise SystemExit(f"defectops serve exited: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("defectops serve did not become ready in 300 s")


def week_heads(clone: Path, head_sha: str, t0_sha: str, t0: datetime, n_weeks: int) -> list[tuple[datetime, str]]:
    out: list[tuple[datetime, str]] = []
    previous = t0_sha
    for w in range(n_weeks):
        end = t0 + timedelta(days=7 * (w + 1))
        sha = git(clone, "rev-list", "-1", "--first-parent", f"--before={end.isoformat()}", head_sha).strip()
        out.append((end, sha or previous))
        previous = sha or previous
    return out


def monitor_week(
    champion: Champion,
    window: pd.DataFrame,
    now: datetime,
    settings: MonitoringSettings,
) -> MonitoringResult:
    features = [f for f in champion.model.meta.features if f in window.columns and f in champion.reference.columns]
    return monitor_window(
        champion.reference,
        window,
        now=now,
        settings=settings,
        features=features,
        decision_threshold=champion.model.meta.threshold,
        history=champion.history,
        baseline_roc_auc=champion.baseline_auc,
    )


def performance_dropped(result: MonitoringResult, baseline: float | None, margin: float) -> bool:
    if baseline is None:
        return False
    values = [result.realized.roc_auc, result.estimated.roc_auc]
    return any(v is not None and math.isfinite(v) and baseline - v > margin for v in values)


def cut_window(frame: pd.DataFrame, end: datetime, days: float) -> pd.DataFrame:
    if "commit_time" not in frame.columns:
        return frame.iloc[0:0]
    times = pd.to_datetime(frame["commit_time"], utc=True, format="ISO8601")
    keep = (times > pd.Timestamp(end - timedelta(days=days))) & (times <= pd.Timestamp(end))
    return frame.loc[keep.to_numpy()].reset_index(drop=True)


def cumulative_auc(frame: pd.DataFrame, now: datetime) -> tuple[float | None, int]:
    from sklearn.metrics import roc_auc_score

    if len(frame) == 0:
        return None, 0
    labelled = frame.loc[frame["label"].notna()]
    if "label_time" in labelled.columns:
        known = pd.to_datetime(labelled["label_time"], utc=True) <= pd.Timestamp(now)
        labelled = labelled.loc[known.fillna(False).to_numpy(dtype=bool)]
    y = labelled["label"].astype(int).to_numpy()
    if len(y) < 30 or min(int(y.sum()), int(len(y) - y.sum())) < 5:
        return None, len(y)
    return float(roc_auc_score(y, labelled["score"].astype(float).to_numpy())), len(y)


def heal_decision(
    champion: Champion,
    result: MonitoringResult | None,
    previous: list[bool],
    new_labels: int,
    days_since: float,
    heal: HealSettings,
) -> Decision:
    realized = None
    if result is not None:
        r = result.realized
        realized = Realized(n_matured=r.n_matured, n_positive=r.n_positive, roc_auc=r.roc_auc, f1=r.f1, brier=r.brier)
    inputs = DecideInputs(
        champion_version=champion.version,
        monitored=result is not None,
        drift=result is not None and result.alarm,
        drift_reasons=list(result.alarm_reasons) if result is not None else [],
        previous_drift=previous,
        realized=realized,
        baseline_roc_auc=champion.baseline_auc,
        baseline_f1=champion.baseline_f1,
        new_labels=new_labels,
        days_since_last_challenger=days_since,
        last_registered_version=champion.version,
    )
    return decide(inputs, heal)


def short_decision(decision: Decision) -> str:
    if decision.retrain:
        return "retrain (" + ", ".join(decision.fired) + ")"
    if decision.blocked_by:
        return "blocked (" + ", ".join(decision.fired) + ")"
    return "no_action"


def replay_repo(source: Path, args: argparse.Namespace, tmp: Path) -> Replay:
    heal = HealSettings()
    settings = MonitoringSettings()
    print(f"== {source}", flush=True)
    clone, head_sha, t0_sha, head, t0 = prepare_clone(source, tmp)
    workspace = tmp / f"{source.name}-workspace"
    train_seconds = train_at(clone, workspace, t0, args.budget_seconds)
    champion = load_champion(workspace, clone, t0, heal)
    print(f"  champion {champion.name} v{champion.version}, training ROC-AUC {champion.baseline_auc}, "
          f"reference {champion.reference_span}", flush=True)
    git(clone, "checkout", "-q", "-B", "replay", head_sha)
    started = time.perf_counter()
    labels = all_labels(clone, tmp, head_sha, head)
    label_seconds = time.perf_counter() - started
    print(f"  labels of the whole history: {len(labels)} rows in {label_seconds:.0f} s", flush=True)
    process, base = start_service(workspace, clone, tmp / f"{source.name}-serve.log")
    weeks: list[Week] = []
    started = time.perf_counter()
    try:
        served: set[str] = set()
        sent: set[str] = set()
        previous = t0_sha
        for index, (end, sha) in enumerate(week_heads(clone, head_sha, t0_sha, t0, args.weeks)):
            week = Week(index=index, end=end)
            if sha != previous:
                answer = post(base, "/v1/commits/score", {"repo": REPO_ID, "range": f"{previous}..{sha}", "top_k": 1})
                for p in answer["predictions"]:
                    served.add(str(p["commit_sha"]))
                week.n_scored = len(answer["predictions"])
                previous = sha
            known = labels_as_of(labels, end)
            known = known.loc[(known["verdict"] != "unknown") & known["sha"].isin(served) & ~known["sha"].isin(sent)]
            for sha_, verdict, at in zip(known["sha"], known["verdict"], known["label_known_at"], strict=True):
                post(
                    base,
                    "/v1/feedback",
                    {
                        "repo": REPO_ID,
                        "commit_sha": str(sha_),
                        "label": 1 if verdict == "defect" else 0,
                        "label_time": pd.Timestamp(at).isoformat(),
                    },
                    TOKEN,
                )
                sent.add(str(sha_))
            week.n_feedback = len(known)
            week.wall_end = datetime.now(UTC)
            weeks.append(week)
            print(f"  week {index:2d} ending {end:%Y-%m-%d}: {week.n_scored} scored, {week.n_feedback} labels sent",
                  flush=True)
    finally:
        process.terminate()
        process.wait(timeout=60)
    serve_seconds = time.perf_counter() - started
    with PredictionLog.from_url(default_url(workspace)) as log:
        first_wall = weeks[0].wall_end - timedelta(hours=6)
        for week in weeks:
            frame = log.window(
                first_wall, week.wall_end + timedelta(microseconds=1), model_name=champion.name,
                served=True, as_of=week.wall_end,
            )
            week.cumulative_auc, week.cumulative_n = cumulative_auc(frame, week.end)
            week.window = cut_window(frame, week.end, args.window_days or heal.window_days)
    monitor_replay(champion, weeks, labels, t0, settings, heal)
    return Replay(source.name, t0, head, champion, weeks, labels, train_seconds, label_seconds, serve_seconds)


def monitor_replay(
    champion: Champion,
    weeks: Sequence[Week],
    labels: pd.DataFrame,
    t0: datetime,
    settings: MonitoringSettings,
    heal: HealSettings,
) -> None:
    from defectops.training import known_labels

    previous: list[bool] = []
    for week in weeks:
        window = week.window
        assert window is not None
        week.n_window = len(window)
        result = monitor_week(champion, window, week.end, settings) if len(window) else None
        monitored = result if len(window) >= heal.min_window_predictions else None
        if result is not None:
            week.state, week.alarm = result.state, result.alarm
            week.reasons = list(result.alarm_reasons) if result.alarm else [
                f"diagnosis: {', '.join(result.drifted_features) or 'no feature'} drift"
            ] if result.reasons else []
            week.n_matured = result.realized.n_matured
            week.realized_auc = result.realized.roc_auc
            week.realized_note = result.realized.skipped_reason or ""
            week.estimated_auc = result.estimated.roc_auc
            week.perf_drop = performance_dropped(result, champion.baseline_auc, settings.max_performance_drop)
        week.monitored = monitored is not None
        known = known_labels(labels, week.end)
        new_labels = int((pd.to_datetime(known["label_known_at"], utc=True) > pd.Timestamp(t0)).sum())
        decision = heal_decision(champion, monitored, previous, new_labels, (week.end - t0) / timedelta(days=1), heal)
        week.decision = short_decision(decision)
        if monitored is not None:
            previous.append(monitored.alarm)


# -- injected drift ------------------------------------------------------------------------------------------


Shift = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


def size_jump(k: float) -> Shift:
    def apply(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        out = frame.copy()
        for name in SIZE_FEATURES:
            if name in out.columns:
                out[name] = np.round(out[name].astype(float) * k)
        if "churn" in out.columns and {"la", "ld"} <= set(out.columns):
            out["churn"] = out["la"] + out["ld"]
        return out

    return apply


def new_team(p: float) -> Shift:
    def apply(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        out = frame.copy()
        chosen = rng.random(len(out)) < p
        for name in EXPERIENCE:
            if name in out.columns:
                out.loc[chosen, name] = 0.0
        return out

    return apply


def label_noise(q: float) -> Shift:
    def apply(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        out = frame.copy()
        labelled = out["label"].notna().to_numpy()
        flip = labelled & (rng.random(len(out)) < q)
        out.loc[flip, "label"] = 1 - out.loc[flip, "label"].astype(int)
        return out

    return apply


SHIFTS: dict[str, tuple[str, list[tuple[str, Shift]]]] = {
    "size": ("change size: la, ld, nf x k", [(f"k={k:g}", size_jump(k)) for k in (1.5, 2, 3, 5)]),
    "team": ("new team: exp, rexp, sexp = 0 for share p", [(f"p={p:g}", new_team(p)) for p in (0.1, 0.25, 0.5, 1.0)]),
    "labels": ("label quality: share q of matured labels flipped", [(f"q={q:g}", label_noise(q)) for q in (0.1, 0.25, 0.5)]),
}


@dataclass
class Detection:
    shift: str
    size: str
    start: int
    delay: int | None
    baseline_alarm: bool
    monitored: bool


def inject(replay: Replay, starts: Sequence[int], seed: int) -> list[Detection]:
    settings = MonitoringSettings()
    heal = HealSettings()
    out: list[Detection] = []
    champion = replay.champion
    for shift, (_, sizes) in SHIFTS.items():
        for size, apply in sizes:
            for start in starts:
                start_time = replay.weeks[start].end - timedelta(days=7)
                delay: int | None = None
                baseline_alarm = False
                monitored = False
                for offset in (0, 1):
                    week = replay.weeks[start + offset]
                    window = week.window
                    assert window is not None
                    if len(window) == 0:
                        continue
                    rng = np.random.default_rng(seed + start * 31 + offset)
                    times = pd.to_datetime(window["commit_time"], utc=True, format="ISO8601")
                    shifted = (times > pd.Timestamp(start_time)).to_numpy()
                    changed = window.copy()
                    if shifted.any():
                        part = apply(window.loc[shifted], rng)
                        if shift != "labels":
                            part["score"] = champion.model.score(part)
                        changed.loc[shifted] = part
                    result = monitor_week(champion, changed, week.end, settings)
                    monitored = monitored or len(window) >= heal.min_window_predictions
                    baseline_alarm = baseline_alarm or week.alarm
                    if result.alarm and delay is None:
                        delay = offset
                out.append(Detection(shift, size, start, delay, baseline_alarm, monitored))
    return out


# -- reporting -----------------------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def week_table(replay: Replay) -> list[str]:
    lines = [
        "| week ending | scored | labels sent | window n | matured | state | alarm (why) | realized ROC-AUC (window) "
        "| estimated ROC-AUC (CBPE) | realized, all served so far (n) | heal would |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in replay.weeks:
        why = "; ".join(r[:90] for r in w.reasons[:2]) if w.reasons else ""
        alarm = f"**yes**: {why}" if w.alarm else ("no" + (f" ({why})" if why else ""))
        if w.n_window and w.n_window < MonitoringSettings().min_alarm_predictions:
            alarm += f" [window < {MonitoringSettings().min_alarm_predictions}: silent]"
        realized = fmt(w.realized_auc) if w.realized_auc is not None else (w.realized_note or "–")
        lines.append(
            f"| {w.end:%Y-%m-%d} | {w.n_scored} | {w.n_feedback} | {w.n_window} | {w.n_matured} | {w.state} | "
            f"{alarm} | {realized} | {fmt(w.estimated_auc)} | {fmt(w.cumulative_auc)} ({w.cumulative_n}) | {w.decision} |"
        )
    return lines


def summary(replay: Replay) -> dict[str, Any]:
    weeks = replay.weeks
    evaluated = [w for w in weeks if w.n_window > 0]
    alarms = [w for w in evaluated if w.alarm]
    false = [w for w in alarms if not w.perf_drop]
    return {
        "repo": replay.repo,
        "t0": replay.t0,
        "weeks": len(weeks),
        "scored": sum(w.n_scored for w in weeks),
        "labels_sent": sum(w.n_feedback for w in weeks),
        "windows_evaluated": len(evaluated),
        "windows_large_enough": sum(1 for w in evaluated if w.n_window >= MonitoringSettings().min_alarm_predictions),
        "median_window": float(np.median([w.n_window for w in weeks])) if weeks else 0.0,
        "alarms": len(alarms),
        "false_alarms": len(false),
        "perf_drop_windows": sum(1 for w in evaluated if w.perf_drop),
        "false_alarm_rate": len(false) / len(evaluated) if evaluated else None,
        "retrain": sum(1 for w in weeks if w.decision.startswith("retrain")),
        "decisions": sorted({w.decision for w in weeks}),
    }


def detection_table(detections: Sequence[Detection]) -> list[str]:
    lines = [
        "| shift | size | start weeks | monitored (window ≥ 100) | detected within 2 windows | power | delays (windows) "
        "| baseline already alarmed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys((d.shift, d.size) for d in detections))
    for shift, size in keys:
        group = [d for d in detections if d.shift == shift and d.size == size]
        hit = [d for d in group if d.delay is not None]
        delays = ", ".join("–" if d.delay is None else str(d.delay) for d in group)
        lines.append(
            f"| {SHIFTS[shift][0]} | {size} | {len(group)} | {sum(d.monitored for d in group)} | {len(hit)} "
            f"| {len(hit) / len(group):.0%} | {delays} | {sum(d.baseline_alarm for d in group)} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", nargs="+", type=Path,
                        default=[Path("/work/bench/numpy"), Path("/work/bench/flask"), Path("/work/bench/requests")])
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--budget-seconds", type=float, default=20.0)
    parser.add_argument("--starts", type=int, nargs="+", default=[10, 18, 26, 34, 42, 49],
                        help="Weeks from which drift is injected (each one run).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window-days", type=float, default=None, help="Monitored window (default: heal's).")
    parser.add_argument("--quick", action="store_true", help="12 weeks, starts 6 and 9.")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    args = parser.parse_args()
    if args.quick:
        args.weeks, args.starts = 12, [6, 9]
    args.starts = [s for s in args.starts if s + 1 < args.weeks]
    stamp = datetime.now(UTC)
    print(f"# {stamp:%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; {' '.join(sys.argv)}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="replay-"))
    results: list[tuple[Replay, list[Detection]]] = []
    try:
        for source in args.repos:
            started = time.perf_counter()
            replay = replay_repo(source.resolve(), args, tmp)
            detections = inject(replay, args.starts, args.seed)
            results.append((replay, detections))
            print(f"  {replay.repo}: {time.perf_counter() - started:.0f} s (train {replay.train_seconds:.0f}, "
                  f"labels {replay.label_seconds:.0f}, serving {replay.serve_seconds:.0f})", flush=True)
            print("\n".join(week_table(replay)))
            print(json.dumps(summary(replay), default=str, indent=1))
            print("\n".join(detection_table(detections)), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"# done {datetime.now(UTC):%H:%M} UTC, load {os.getloadavg()[0]:.1f}")
    if args.markdown:
        for replay, detections in results:
            s = summary(replay)
            print(f"\n#### {replay.repo}: T0 {replay.t0:%Y-%m-%d}, champion v{replay.champion.version} "
                  f"(training ROC-AUC {fmt(replay.champion.baseline_auc)}), reference {replay.champion.reference_span}\n")
            rate = s["false_alarm_rate"]
            print(f"False alarms: {s['false_alarms']} of {s['windows_evaluated']} windows "
                  f"({'–' if rate is None else f'{rate:.1%}'}; target ≤ 10%); alarms {s['alarms']}, "
                  f"windows with a performance drop {s['perf_drop_windows']}, "
                  f"windows of ≥ 100 predictions {s['windows_large_enough']}.\n")
            print("\n".join(week_table(replay)))
            print()
            print("\n".join(detection_table(detections)))


if __name__ == "__main__":
    main()
