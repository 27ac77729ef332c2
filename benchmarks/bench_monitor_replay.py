"""Monitoring replayed on real history (issue 12): 12 months of a repository served week by week.

Usage (from the repository root; one repository at a time, each run takes minutes):

    .venv/bin/python benchmarks/bench_monitor_replay.py --repos /work/bench/numpy [--window-days 30] \
        [--step-weeks 1] [--min-alarm-predictions N] [--reference as-logged scored] [--saved DIR] [--quick]

``--saved DIR`` keeps each served replay (pickled) and re-monitors it on the next run without training or
serving again (``--fresh`` serves anew).

Per repository R (a local clone; nothing of it is copied into this repository):

1. T0 = R's head commit time - 365 days. A shared clone in a temporary folder is checked out at the last
   first-parent commit before T0 and the champion is trained there as ``defectops run`` does
   (:func:`defectops.pipeline.run` with ``now=T0``): only commits and labels known at T0.
2. The labels of the whole history are computed once (SZZ at the head) with the time each became known (a
   defect: its fix; clean: the end of the waiting period); :func:`defectops.data.labels_as_of` gives what
   was known at any week's end.
3. ``defectops serve`` runs as a subprocess. Each week: ``POST /v1/commits/score`` with the range of the
   week's commits, then ``POST /v1/feedback`` with every label of a served commit that became known during
   the week (with its ``label_time``).
4. A check every ``--step-weeks`` weeks: the window is read from the service's SQLite log as of the moment
   that week's feedback was sent (so only the labels known by then) and cut to the commits of the last
   ``--window-days`` (heal's ``window_days`` by default); :func:`monitor_window` runs as heal's monitor
   step runs it (the recent reference, the champion's threshold and held-out ROC-AUC, now = the week's
   end) and heal's pure :func:`decide` gets the inputs its decide step would build. Nothing is retrained:
   every week is judged against the T0 champion.
5. Injected drift (bench_monitor_replay_shifts.py) on copies of the windows.

Alarm policies (``--policy``, :data:`POLICIES`, docs/benchmarks.md): **old** (realized on the window's
matured labels, any significant drift in one check), **2026-12-04** (realized on the labels that arrived in
the window, drift only with PSI >= 0.25 in 2 consecutive checks, from 30% of the feature groups), **new**
(the defaults), **new+newcomers** (the defaults with the newcomer signal as an alarm) and **2026-12-05**
(the defaults before the score's drift was judged against the reference advanced to the window's time). A false alarm is an alarm in a window where
neither the realized ROC-AUC on the arrived labels (the same for both policies) nor the CBPE estimate is more
than ``max_performance_drop`` below the held-out one (CBPE: below the lower of it and the reference's
estimate). Target: at most 1 in 10. The ROC-AUC on the labels known at the head is shown as the truth.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import pickle
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench_monitor_replay_shifts import (
    REPO_ID,
    SHIFTED_FEATURES,
    SHIFTS,
    TOKEN,
    Detection,
    Week,
    alarm_kinds,
    apply_shift,
    baseline_diagnosed,
    cut_window,
    detected_table,
    detection_table,
    final_auc,
    fmt,
    git,
    horizon,
    material_features,
    prepare_clone,
    serve_weeks,
    short_decision,
    start_service,
    summary,
    sustained,
    week_table,
)
from defectops.config import HealSettings, MonitoringSettings, Settings, Workspace
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, label_repository
from defectops.mining import RepositoryNames
from defectops.monitoring import (
    MonitoringResult,
    arrived_labels,
    estimated_roc_auc,
    monitor_window,
    recent_reference,
)
from defectops.monitoring.performance import realized_performance
from defectops.pipeline import RunOptions, run
from defectops.pipeline.heal import DecideInputs, Decision, Realized, decide
from defectops.predlog import PredictionLog, default_url
from defectops.registry import LoadedModel, ModelRegistry
from defectops.training import known_labels


@dataclass
class Champion:
    name: str
    version: int
    model: LoadedModel
    reference: pd.DataFrame
    history: pd.DataFrame
    baseline_auc: float | None
    baseline_f1: float | None
    reference_estimated_auc: float | None
    reference_span: str


#: The alarm policies the replay compares (changes to the monitor's defaults). "old": before issue 12's
#: second pass; "2026-12-04": the second pass (a drift signal from 30% of the feature groups); "new": the
#: defaults; "new+newcomers": the defaults with the newcomer signal as an alarm.
POLICIES: dict[str, dict[str, object]] = {
    "old": {
        "alarm_drift_psi": 0.0,
        "alarm_drift_checks": 1,
        "alarm_on_streams": True,
        "alarm_feature_share": 0.3,
    },
    "2026-12-04": {"alarm_feature_share": 0.3},
    "new": {},
    "new+newcomers": {"newcomer_alarm": True},
    "2026-12-05": {"score_at_window_time": False},
}


@dataclass
class Config:
    """The replay's settings: the monitor's and heal's, with the window the run chose."""

    monitoring: MonitoringSettings
    heal: HealSettings
    window_days: float
    step_weeks: int
    policy: str = "new"

    def for_policy(self, policy: str) -> Config:
        """The settings of one alarm policy: "new" (the defaults) or "old" (before issue 12's second pass)."""
        monitoring = self.monitoring.model_copy(update=POLICIES[policy])
        return dataclasses.replace(self, monitoring=monitoring, policy=policy)


@dataclass
class Replay:
    repo: str
    t0: datetime
    champion: Champion
    weeks: list[Week]
    labels: pd.DataFrame
    seconds: dict[str, float]


def load_champion(settings: Settings, clone: Path, t0: datetime, heal: HealSettings) -> Champion:
    name = RepositoryNames(Workspace.from_settings(settings).root).model_name(GitRepo.open(clone))
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
    scores = span.frame["score"].to_numpy(dtype=np.float64) if "score" in span.frame.columns else None
    return Champion(
        name=name,
        version=version,
        model=registry.load(name, version=version),
        reference=span.frame,
        history=snapshot,
        baseline_auc=auc if auc is not None and math.isfinite(auc) else None,
        baseline_f1=f1 if f1 is not None and math.isfinite(f1) else None,
        reference_estimated_auc=estimated_roc_auc(scores) if scores is not None else None,
        reference_span=span.describe(),
    )


def replay_repo(source: Path, args: argparse.Namespace, tmp: Path, config: Config) -> Replay:
    print(f"== {source}", flush=True)
    seconds: dict[str, float] = {}
    clone, head_sha, t0_sha, head, t0 = prepare_clone(source, tmp)
    settings = Settings(workspace=tmp / f"{source.name}-workspace")
    started = time.perf_counter()
    result = run(RunOptions(repo=clone, budget_seconds=args.budget_seconds, recent=0), settings, now=t0)
    seconds["train"] = time.perf_counter() - started
    print(f"  trained at T0 {t0:%Y-%m-%d}: {result.registered!r}", flush=True)
    champion = load_champion(settings, clone, t0, config.heal)
    print(
        f"  champion {champion.name} v{champion.version}, held-out ROC-AUC {fmt(champion.baseline_auc)}, "
        f"reference {champion.reference_span}, its CBPE ROC-AUC {fmt(champion.reference_estimated_auc)}",
        flush=True,
    )
    git(clone, "checkout", "-q", "-B", "replay", head_sha)
    started = time.perf_counter()
    label_ws = Workspace(tmp / "labels-workspace").ensure()
    labelled = label_repository(
        GitRepo.open(clone), label_ws, now=head, options=LabelOptions(revision=head_sha), store=False
    )
    labels = labelled.labels
    seconds["labels"] = time.perf_counter() - started
    print(f"  labels of the whole history: {len(labels)} rows in {seconds['labels']:.0f} s", flush=True)
    workspace = Workspace.from_settings(settings).root
    process, base = start_service(workspace, clone, tmp / f"{source.name}-serve.log", REPO_ID, TOKEN)
    started = time.perf_counter()
    try:
        weeks = serve_weeks(base, clone, (head_sha, t0_sha, t0), labels, args.weeks)
    finally:
        process.terminate()
        process.wait(timeout=60)
    seconds["serve"] = time.perf_counter() - started
    started = time.perf_counter()
    with PredictionLog.from_url(default_url(workspace)) as log:
        first_wall = weeks[0].wall_end - timedelta(hours=6)
        for week in weeks:  # everything served so far, with the feedback received by the week's end
            wall = week.wall_end
            week.served = log.window(
                first_wall,
                wall + timedelta(microseconds=1),
                model_name=champion.name,
                served=True,
                as_of=wall,
            )
    seconds["read_windows"] = time.perf_counter() - started
    return Replay(source.name, t0, champion, weeks, labels, seconds)


def cut_weeks(replay: Replay, config: Config) -> None:
    """Each check's window: the served commits of the last ``window_days``, and its ROC-AUC on final labels."""
    labels = replay.labels
    final = labels.loc[labels["verdict"] != "unknown"].set_index("sha")["verdict"].eq("defect").astype(int)
    for week in replay.weeks:
        week.checked = (week.index + 1) % config.step_weeks == 0
        if week.checked and week.served is not None:
            week.window = cut_window(week.served, week.end, config.window_days)
            week.eventual_auc, week.eventual_n = final_auc(week.window, final, config.monitoring)
            week.labelled = arrived_labels(
                week.served,
                since=week.end - timedelta(days=config.window_days),
                now=week.end,
                horizon_days=config.monitoring.label_horizon_days,
            )
            week.n_arrived = len(week.labelled)
            if len(week.labelled):
                judged = realized_performance(
                    week.labelled, now=week.end, settings=config.monitoring, basis="arrived"
                )
                week.arrived_auc = judged.roc_auc


def with_scored_reference(champion: Champion) -> Champion:
    """The champion with its scores on its reference rows (in-sample: it was refitted on them at T0)."""
    reference = champion.reference.copy()
    reference["score"] = champion.model.score(reference)
    scores = reference["score"].to_numpy(dtype=np.float64)
    return dataclasses.replace(
        champion, reference=reference, reference_estimated_auc=estimated_roc_auc(scores)
    )


def monitor_week(
    champion: Champion,
    week: Week,
    window: pd.DataFrame,
    config: Config,
    history: Sequence[bool],
    labelled: pd.DataFrame | None = None,
    newcomer_history: Sequence[bool] = (),
) -> MonitoringResult:
    """One check as heal's monitor step runs it, under the run's policy."""
    reference = champion.reference
    arrived = config.policy != "old"
    if arrived and labelled is None:
        labelled = week.labelled if week.labelled is not None else window.iloc[0:0]
    features = [f for f in champion.model.meta.features if f in window.columns and f in reference.columns]
    return monitor_window(
        reference,
        window,
        now=week.end,
        settings=config.monitoring,
        labelled=labelled if arrived else None,
        drift_history=history,
        newcomer_history=newcomer_history,
        features=features,
        decision_threshold=champion.model.meta.threshold,
        history=champion.history,
        baseline_roc_auc=champion.baseline_auc,
        rescore=champion.model.score if "score" in reference.columns else None,
    )


def performance_dropped(result: MonitoringResult, week: Week, champion: Champion, margin: float) -> bool:
    """Realized ROC-AUC (on the labels arrived in the window) below the held-out one, or CBPE below the lower
    of the reference's and the held-out: the same criterion whatever the policy."""
    realized, estimated = week.arrived_auc, result.estimated.roc_auc
    if (
        realized is not None
        and champion.baseline_auc is not None
        and champion.baseline_auc - realized > margin
    ):
        return True
    expected = champion.reference_estimated_auc
    if expected is not None and champion.baseline_auc is not None:
        expected = min(expected, champion.baseline_auc)  # as the monitor judges it (in-sample scores)
    return estimated is not None and expected is not None and expected - estimated > margin


def heal_decision(
    champion: Champion,
    result: MonitoringResult | None,
    previous: list[bool],
    new_labels: int,
    days: float,
    heal: HealSettings,
) -> Decision:
    realized = None
    if result is not None:
        r = result.realized
        mixed = r.basis == "arrived"  # as heal's decide step: F1 and Brier depend on the arrival mix
        realized = Realized(
            n_matured=r.n_matured,
            n_positive=r.n_positive,
            roc_auc=r.roc_auc,
            f1=None if mixed else r.f1,
            brier=None if mixed else r.brier,
        )
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
        days_since_last_challenger=days,
        last_registered_version=champion.version,
    )
    return decide(inputs, heal)


def monitor_replay(
    champion: Champion, weeks: Sequence[Week], labels: pd.DataFrame, t0: datetime, config: Config
) -> None:
    previous: list[bool] = []
    signals: list[bool] = []  # the drift signal of each earlier check (persistence)
    newcomers: list[bool] = []  # the same for the newcomer check
    margin = config.monitoring.max_performance_drop
    for week in weeks:
        if not week.checked or week.window is None:
            continue
        window = week.window
        week.n_window = len(window)
        result = (
            monitor_week(champion, week, window, config, signals, newcomer_history=newcomers)
            if len(window)
            else None
        )
        monitored = result if len(window) >= config.heal.min_window_predictions else None
        if result is not None:
            signals.append(bool(result.drift_signal))
            week.drift_signal = bool(result.drift_signal)
            week.newcomer_signal = bool(result.newcomers and result.newcomers.signal)
            week.newcomer_sustained = bool(result.newcomers and result.newcomers.sustained)
            newcomers.append(week.newcomer_signal)
            week.alarm_kinds = alarm_kinds(result.alarm_reasons)
            week.material = material_features(result, config.monitoring)
            week.state, week.alarm = result.state, result.alarm
            if result.alarm:
                week.reasons = list(result.alarm_reasons)
            elif result.reasons:
                week.reasons = [f"diagnosis: {', '.join(result.drifted_features) or 'score/stream'} drift"]
            week.n_matured = result.realized.n_matured
            week.realized_auc = result.realized.roc_auc
            week.realized_note = result.realized.skipped_reason or ""
            week.estimated_auc = result.estimated.roc_auc
            week.perf_drop = performance_dropped(result, week, champion, margin)
        if week.eventual_auc is not None and champion.baseline_auc is not None:
            week.eventual_drop = champion.baseline_auc - week.eventual_auc > margin
        week.monitored = monitored is not None
        known = known_labels(labels, week.end)
        new_labels = int((pd.to_datetime(known["label_known_at"], utc=True) > pd.Timestamp(t0)).sum())
        days = (week.end - t0) / timedelta(days=1)
        decision = heal_decision(champion, monitored, previous, new_labels, days, config.heal)
        week.decision = short_decision(decision.retrain, decision.blocked_by, decision.fired)
        if monitored is not None:
            previous.append(monitored.alarm)


def inject(replay: Replay, starts: Sequence[int], seed: int, config: Config) -> list[Detection]:
    """Each shift and size from each start week: the first alarm within two window lengths, and heal's."""
    out: list[Detection] = []
    champion = replay.champion
    weeks = replay.weeks
    checks = [w for w in weeks if w.checked]
    for shift, (_, sizes) in SHIFTS.items():
        for size, apply in sizes:
            for start_week in starts:
                index = next((i for i, w in enumerate(weeks) if w.checked and w.index >= start_week), None)
                if index is None:
                    continue
                start = weeks[index].end - timedelta(days=7 * config.step_weeks)
                window_checks = horizon(weeks, index, config.step_weeks, config.window_days)
                previous = [w.alarm for w in checks if w.end <= start and w.monitored]
                signals = [w.drift_signal for w in checks if w.end <= start and w.n_window]
                newcomers = [w.newcomer_signal for w in checks if w.end <= start and w.n_window]
                targets, persist = SHIFTED_FEATURES[shift], config.monitoring.alarm_drift_checks
                diagnosis = [bool(w.material & targets) for w in checks if w.end <= start and w.n_window]
                diagnosis_delay: float | None = None
                delay: float | None = None
                heal_delay: float | None = None
                newcomer_delay: float | None = None
                for offset, week in enumerate(window_checks):
                    window = week.window
                    if window is None or len(window) == 0:
                        continue
                    rng = np.random.default_rng([seed, start_week, offset])
                    changed = apply_shift(window, shift, start, apply, rng, champion.model.score)
                    labelled = None
                    if week.labelled is not None:  # the same shift on the labels that arrived
                        labelled = apply_shift(week.labelled, shift, start, apply, rng, champion.model.score)
                    result = monitor_week(champion, week, changed, config, signals, labelled, newcomers)
                    signals.append(bool(result.drift_signal))
                    newcomers.append(bool(result.newcomers and result.newcomers.signal))
                    if result.alarm and delay is None:
                        delay = (week.end - start) / timedelta(days=1)
                    newcomer = bool(result.newcomers and result.newcomers.sustained)
                    if newcomer and newcomer_delay is None:
                        newcomer_delay = (week.end - start) / timedelta(days=1)
                    diagnosis.append(bool(material_features(result, config.monitoring) & targets))
                    seen = (targets and sustained(diagnosis, persist)) or (shift == "team" and newcomer)
                    if seen and diagnosis_delay is None:
                        diagnosis_delay = (week.end - start) / timedelta(days=1)
                    if len(window) >= config.heal.min_window_predictions:
                        decision = heal_decision(champion, result, previous, 0, 365.0, config.heal)
                        previous.append(result.alarm)
                        if "drift" in decision.fired:
                            heal_delay = (week.end - start) / timedelta(days=1)
                            break
                baseline = any(w.alarm for w in window_checks)
                out.append(
                    Detection(
                        shift,
                        size,
                        start,
                        delay,
                        len(window_checks),
                        heal_delay,
                        baseline,
                        newcomer_delay,
                        any(w.newcomer_sustained for w in window_checks),
                        diagnosis_delay,
                        baseline_diagnosed(checks, {w.end for w in window_checks}, shift, persist),
                    )
                )
    return out


def report(replay: Replay, detections: list[Detection], config: Config, variant: str) -> None:
    champion, minimum = replay.champion, config.monitoring.min_alarm_predictions
    print(
        f"\n#### {replay.repo}, policy {config.policy}, reference {variant}: T0 {replay.t0:%Y-%m-%d}, champion v{champion.version} "
        f"(held-out ROC-AUC {fmt(champion.baseline_auc)}, reference {champion.reference_span}, CBPE ROC-AUC "
        f"on it {fmt(champion.reference_estimated_auc)}); window {config.window_days:g} days, a check every "
        f"{config.step_weeks} week(s), alarms from {minimum} predictions\n"
    )
    print("\n".join(week_table(replay.weeks, minimum)))
    print(json.dumps(summary(replay.weeks, minimum), default=str))
    print("\n".join(detection_table(detections, config.window_days)))
    print("\n".join(detected_table(detections, config.window_days)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    default_repos = [Path("/work/bench/flask"), Path("/work/bench/requests"), Path("/work/bench/numpy")]
    parser.add_argument("--repos", nargs="+", type=Path, default=default_repos)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--budget-seconds", type=float, default=20.0)
    parser.add_argument(
        "--starts", type=int, nargs="+", default=[10, 18, 26, 34, 42], help="Shift start weeks."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--window-days", type=float, default=None, help="Monitored window (default: heal's, 30)."
    )
    parser.add_argument(
        "--step-weeks", type=int, default=1, help="A check every this many weeks (1: weekly)."
    )
    parser.add_argument(
        "--min-alarm-predictions",
        type=int,
        default=None,
        help="Override the monitor's and heal's minimum window.",
    )
    parser.add_argument(
        "--reference",
        nargs="+",
        choices=["as-logged", "scored"],
        default=["as-logged", "scored"],
        help="as-logged: the reference snapshot as the registry holds it; scored: with the champion's scores.",
    )
    parser.add_argument(
        "--saved",
        type=Path,
        default=None,
        help="Folder keeping each served replay: re-monitor without serving.",
    )
    parser.add_argument(
        "--policy",
        nargs="+",
        choices=list(POLICIES),
        default=["2026-12-04", "new", "new+newcomers"],
        help="Alarm policies: old (one check, any significant drift, realized on the window's own labels), "
        "2026-12-04 (drift from 30%% of the feature groups), new (the defaults), new+newcomers (the newcomer "
        "signal alarms), 2026-12-05 (the score's drift judged against the reference's scores as trained).",
    )
    parser.add_argument("--fresh", action="store_true", help="Serve again even when a saved replay exists.")
    parser.add_argument("--quick", action="store_true", help="12 weeks, starts 6 and 9.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    args = parser.parse_args()
    if args.quick:
        args.weeks, args.starts = 12, [6, 9]
    monitoring, heal = MonitoringSettings(), HealSettings()
    if args.min_alarm_predictions is not None:
        monitoring = monitoring.model_copy(update={"min_alarm_predictions": args.min_alarm_predictions})
        heal = heal.model_copy(update={"min_window_predictions": args.min_alarm_predictions})
    config = Config(monitoring, heal, args.window_days or heal.window_days, args.step_weeks)
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()}; {' '.join(sys.argv)}",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="replay-"))
    try:
        for source in args.repos:
            started = time.perf_counter()
            saved = args.saved / f"{source.name}.pickle" if args.saved else None
            if saved is not None and saved.is_file() and not args.fresh:
                replay = pickle.loads(saved.read_bytes())  # our own file, written below
                print(f"== {source}: served windows read from {saved}", flush=True)
            else:
                replay = replay_repo(source.resolve(), args, tmp, config)
                if saved is not None:
                    saved.parent.mkdir(parents=True, exist_ok=True)
                    saved.write_bytes(pickle.dumps(replay))
            if replay.weeks[0].served is not None:  # saved before --window-days mattered: its windows stay
                cut_weeks(replay, config)
            for variant, policy in [(v, p) for v in args.reference for p in args.policy]:
                run_config = config.for_policy(policy)
                monitored = copy.copy(replay)
                monitored.weeks = [copy.copy(w) for w in replay.weeks]
                if variant == "scored":
                    monitored.champion = with_scored_reference(replay.champion)
                elif "score" in replay.champion.reference.columns:
                    monitored.champion = dataclasses.replace(
                        replay.champion, reference=replay.champion.reference.drop(columns=["score"])
                    )
                started = time.perf_counter()
                monitor_replay(monitored.champion, monitored.weeks, replay.labels, replay.t0, run_config)
                detections = inject(monitored, args.starts, args.seed, run_config)
                replay.seconds[f"monitor_{variant}_{policy}"] = time.perf_counter() - started
                report(monitored, detections, run_config, variant)
            print(
                json.dumps({k: round(v) for k, v in replay.seconds.items()}),
                f"load {os.getloadavg()}",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"# done {datetime.now(UTC):%H:%M} UTC, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
