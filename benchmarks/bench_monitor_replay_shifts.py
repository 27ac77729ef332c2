"""Injected drift, the tables and the HTTP helpers of the monitoring replay (benchmarks/bench_monitor_replay.py, issue 12).

A shift is applied to copies of the served windows (the log's rows: real mined features, re-scored with the
champion in-process, as the service would score them) from a start time on:

- a jump in change size: ``la``, ``ld``, ``nf`` (and ``churn``) times k, for commits after the start; and
  the same with the churn measures a real jump moves too (``src_churn``, ``test_churn``, ``doc_churn``,
  ``build_churn``, ``rel_churn``: :data:`CHURN_MEASURES`);
- a new team of authors: ``exp``, ``rexp``, ``sexp`` (and ``author_30d``, ``author_90d``) = 0 for a share p
  of the commits after the start;
- a drop in label quality: a share q of the labels that *arrive* after the start flipped (whatever the
  commit's age: a labelling process gets worse from a day on, for every label it produces from then).

The monitor checks the shifted windows at the replay's cadence; the shift counts as detected within 2
windows when one check whose window ends no later than ``start + 2 x window_days`` raises an alarm (with
tumbling windows, ``--step-weeks`` = window length, that is the first or second window; with sliding
windows advanced weekly, the checks of the first two window lengths, the first ones only partly shifted).
The same horizon counts a **diagnosis** apart from the alarm: for a change-size jump, material drift of
the features it scales in ``alarm_drift_checks`` checks in a row; for a new team, the newcomer signal
sustained; label quality has none (no feature moves).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
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

from defectops.config import MonitoringSettings
from defectops.data import labels_as_of

TOKEN = "replay-feedback-token"
REPO_ID = "replay"
SIZE_FEATURES = ("la", "ld", "nf")
#: The churn measures a real jump in change size moves as well (#20's richer features, where mined):
#: churn by kind of path, and churn relative to the files' size (``(la + ld) / lt``).
CHURN_MEASURES = ("src_churn", "test_churn", "doc_churn", "build_churn", "rel_churn")
EXPERIENCE = ("exp", "rexp", "sexp", "author_30d", "author_90d")  # the last two where mined (#20)

Shift = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


@dataclass
class Week:
    """One simulated week: what was served and sent, and the monitoring check at its end (if any)."""

    index: int
    end: datetime
    n_scored: int = 0
    n_feedback: int = 0
    checked: bool = False
    n_window: int = 0
    n_matured: int = 0
    state: str = "-"
    alarm: bool = False
    reasons: list[str] = field(default_factory=list)
    realized_auc: float | None = None
    realized_note: str = ""
    estimated_auc: float | None = None
    eventual_auc: float | None = None
    eventual_n: int = 0
    monitored: bool = False
    decision: str = "-"
    perf_drop: bool = False
    eventual_drop: bool = False
    window: pd.DataFrame | None = None
    served: pd.DataFrame | None = None
    #: The labels that arrived during the check's window (monitoring.arrived_labels), and their ROC-AUC.
    labelled: pd.DataFrame | None = None
    arrived_auc: float | None = None
    n_arrived: int = 0
    drift_signal: bool = False
    #: The newcomer check's signal (a new team of authors), and whether it was sustained (diagnosis).
    newcomer_signal: bool = False
    newcomer_sustained: bool = False
    alarm_kinds: str = ""
    #: The features that drifted materially (test significant, PSI >= alarm_drift_psi) in a judged window.
    material: frozenset[str] = frozenset()
    wall_end: datetime = field(default_factory=lambda: datetime.now(UTC))


def size_jump(k: float, also: tuple[str, ...] = ()) -> Shift:
    def apply(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        out = frame.copy()
        for name in (*SIZE_FEATURES, *also):
            if name in out.columns:
                scaled = out[name].astype(float) * k
                out[name] = scaled if name == "rel_churn" else np.round(scaled)
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


#: The features whose sustained material drift diagnoses a shift. A new team's diagnosis is the newcomer
#: signal (the experience features drift in numpy's and scrapy's unshifted windows all year, so their drift
#: tells nothing). Label quality moves no feature: only realized performance (an alarm) can see it.
SHIFTED_FEATURES: dict[str, frozenset[str]] = {
    "size": frozenset(SIZE_FEATURES),
    "size_all": frozenset((*SIZE_FEATURES, *CHURN_MEASURES)),
    "team": frozenset(),
    "labels": frozenset(),
}


def material_features(result: Any, settings: MonitoringSettings) -> frozenset[str]:
    """The features of a monitoring result that drift materially, in a window large enough to be judged."""
    from defectops.monitoring.alarms import material

    if result.n_window < settings.min_alarm_predictions:
        return frozenset()
    return frozenset(f.feature for f in result.features if f.test is not None and material(f, settings))


def sustained(history: Sequence[bool], checks: int) -> bool:
    """The last ``checks`` entries are all true (the monitor's persistence rule)."""
    return len(history) >= checks and all(history[-checks:])


def baseline_diagnosed(checks: Sequence[Week], horizon_ends: set[datetime], shift: str, n: int) -> bool:
    """Whether the unshifted checks ending at ``horizon_ends`` already had the shift's diagnosis."""
    targets, run = SHIFTED_FEATURES[shift], 0
    for w in checks:
        if not w.n_window:
            continue
        run = run + 1 if w.material & targets else 0
        if w.end in horizon_ends and ((targets and run >= n) or (shift == "team" and w.newcomer_sustained)):
            return True
    return False


SHIFTS: dict[str, tuple[str, list[tuple[str, Shift]]]] = {
    "size": ("change size: la, ld, nf x k", [(f"k={k:g}", size_jump(k)) for k in (1.5, 2, 3, 5)]),
    "size_all": (
        "change size, all its measures: la, ld, nf and the churn measures x k",
        [(f"k={k:g}", size_jump(k, CHURN_MEASURES)) for k in (1.5, 2, 3, 5)],
    ),
    "team": (
        "new team: author experience = 0 for share p",
        [(f"p={p:g}", new_team(p)) for p in (0.1, 0.25, 0.5, 1.0)],
    ),
    "labels": (
        "label quality: share q of arriving labels flipped",
        [(f"q={q:g}", label_noise(q)) for q in (0.1, 0.25, 0.5)],
    ),
}


def shifted_rows(window: pd.DataFrame, shift: str, start: datetime) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The rows a shift starting at ``start`` touches: later commits, or (labels) labels arriving later."""
    column = "label_time" if shift == "labels" else "commit_time"
    if column not in window.columns:
        return np.zeros(len(window), dtype=bool)
    times = pd.to_datetime(window[column], utc=True, format="ISO8601")
    return (times > pd.Timestamp(start)).fillna(False).to_numpy(dtype=bool)


@dataclass
class Detection:
    shift: str
    size: str
    start: datetime
    delay_days: float | None
    checks: int
    heal_delay_days: float | None
    baseline_alarm: bool
    #: Days to the first sustained newcomer signal (shown as diagnosis whether or not it alarms).
    newcomer_delay_days: float | None = None
    #: Whether the unshifted windows of the horizon had a sustained newcomer signal.
    baseline_newcomers: bool = False
    #: Days to the first diagnosis: material drift of a shifted feature in ``alarm_drift_checks`` checks in
    #: a row (a new team: the newcomer signal sustained); None: not within the horizon.
    diagnosis_delay_days: float | None = None
    #: Whether the unshifted windows of the horizon had that diagnosis already.
    baseline_diagnosis: bool = False

    @property
    def detected_delay_days(self) -> float | None:
        """Days to the first sign a user is given: an alarm, heal's drift trigger or the diagnosis.

        A run stops at heal's drift trigger, so a trigger before the diagnosis was sustained is a detection
        the diagnosis column alone would count as a miss.
        """
        delays = [
            d for d in (self.delay_days, self.heal_delay_days, self.diagnosis_delay_days) if d is not None
        ]
        return min(delays) if delays else None

    @property
    def baseline_detected(self) -> bool:
        """The unshifted windows of the horizon already alarmed or had the diagnosis: not attributable."""
        return self.baseline_alarm or self.baseline_diagnosis


def fmt(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def week_table(weeks: Sequence[Week], min_alarm: int) -> list[str]:
    lines = [
        "| week ending | scored | labels sent | window n | labels judged | state | alarm (why) | realized ROC-AUC "
        "(as the policy judges it) | on the labels arrived in the window (n) | estimated ROC-AUC (CBPE) "
        "| realized with final labels (n) | heal would |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in weeks:
        if not w.checked:
            continue
        why = "; ".join(r[:90] for r in w.reasons[:2]) if w.reasons else ""
        alarm = f"**yes**: {why}" if w.alarm else ("no" + (f" ({why})" if why else ""))
        if w.n_window and w.n_window < min_alarm:
            alarm += f" [window < {min_alarm}: silent]"
        realized = fmt(w.realized_auc) if w.realized_auc is not None else (w.realized_note[:40] or "–")
        lines.append(
            f"| {w.end:%Y-%m-%d} | {w.n_scored} | {w.n_feedback} | {w.n_window} | {w.n_matured} | {w.state} | "
            f"{alarm} | {realized} | {fmt(w.arrived_auc)} ({w.n_arrived}) | {fmt(w.estimated_auc)} "
            f"| {fmt(w.eventual_auc)} ({w.eventual_n}) "
            f"| {w.decision} |"
        )
    return lines


def summary(weeks: Sequence[Week], min_alarm: int) -> dict[str, Any]:
    checks = [w for w in weeks if w.checked and w.n_window > 0]
    alarms = [w for w in checks if w.alarm]
    false = [w for w in alarms if not w.perf_drop]
    false_eventual = [w for w in false if not w.eventual_drop]
    quiet = [w for w in checks if not w.perf_drop]
    sizes = [w.n_window for w in checks]
    return {
        "weeks": len(weeks),
        "scored": sum(w.n_scored for w in weeks),
        "labels_sent": sum(w.n_feedback for w in weeks),
        "windows": len(checks),
        "windows_large_enough": sum(1 for n in sizes if n >= min_alarm),
        "window_min_median_max": [
            min(sizes, default=0),
            float(np.median(sizes)) if sizes else 0.0,
            max(sizes, default=0),
        ],
        "windows_with_realized_auc": sum(1 for w in checks if w.realized_auc is not None),
        "windows_with_arrived_auc": sum(1 for w in checks if w.arrived_auc is not None),
        "arrived_labels_min_median_max": [
            min((w.n_arrived for w in checks), default=0),
            float(np.median([w.n_arrived for w in checks])) if checks else 0.0,
            max((w.n_arrived for w in checks), default=0),
        ],
        "alarms_by_rule": {
            kind: sum(1 for w in alarms if kind in w.alarm_kinds)
            for kind in ("realized", "cbpe", "drift", "newcomers")
        },
        "drift_signals": sum(1 for w in checks if w.drift_signal),
        "newcomer_signals": sum(1 for w in checks if w.newcomer_signal),
        "newcomer_sustained": [f"{w.end:%Y-%m-%d}" for w in checks if w.newcomer_sustained],
        "false_alarm_weeks": [f"{w.end:%Y-%m-%d} {w.alarm_kinds}" for w in false],
        "alarms": len(alarms),
        "perf_drop_windows": len(checks) - len(quiet),
        "false_alarms": len(false),
        "false_alarm_rate": len(false) / len(quiet) if quiet else None,
        "false_alarms_final_labels_also_no_drop": len(false_eventual),
        "eventual_drop_windows": sum(1 for w in checks if w.eventual_drop),
        # the champion ages through the replay (heal would have replaced it): false alarms per quarter of age
        "false_alarms_by_quarter": [
            f"{sum(1 for w in false if 13 * q <= w.index < 13 * q + 13)}/"
            f"{sum(1 for w in quiet if 13 * q <= w.index < 13 * q + 13)}"
            for q in range(4)
        ],
        "decisions": {
            d: sum(1 for w in checks if w.decision == d) for d in sorted({w.decision for w in checks})
        },
    }


def detection_table(detections: Sequence[Detection], window_days: float) -> list[str]:
    lines = [
        f"| shift | size | runs | alarm within 2 windows ({2 * window_days:g} days) | power | alarm, runs "
        "without a baseline alarm | delays (days) | heal's drift trigger within the horizon | diagnosed within "
        "2 windows (sustained drift of a scaled feature; a new team: the newcomer signal): runs "
        "without it in the baseline | diagnosis delays | newcomer signal "
        "sustained (diagnosis): runs without one in the baseline, delays |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys((d.shift, d.size) for d in detections))
    for shift, size in keys:
        group = [d for d in detections if d.shift == shift and d.size == size]
        hit = [d for d in group if d.delay_days is not None]
        clean = [d for d in group if not d.baseline_alarm]
        clean_hit = [d for d in clean if d.delay_days is not None]
        delays = ", ".join("–" if d.delay_days is None else f"{d.delay_days:.0f}" for d in group)
        healed = sum(1 for d in group if d.heal_delay_days is not None)
        clean_power = f"{len(clean_hit)}/{len(clean)}" if clean else "–"
        quiet = [d for d in group if not d.baseline_newcomers]
        seen = sum(1 for d in quiet if d.newcomer_delay_days is not None)
        newcomer_delays = ", ".join(
            "–" if d.newcomer_delay_days is None else f"{d.newcomer_delay_days:.0f}" for d in group
        )
        undiagnosed = [d for d in group if not d.baseline_diagnosis]
        diagnosed = sum(1 for d in undiagnosed if d.diagnosis_delay_days is not None)
        diagnosis = f"{diagnosed}/{len(undiagnosed)}" if shift != "labels" else "n/a (no feature moves)"
        diagnosis_delays = ", ".join(
            "–" if d.diagnosis_delay_days is None else f"{d.diagnosis_delay_days:.0f}" for d in group
        )
        lines.append(
            f"| {SHIFTS[shift][0]} | {size} | {len(group)} | {len(hit)} | {len(hit) / len(group):.0%} "
            f"| {clean_power} | {delays} | {healed}/{len(group)} | {diagnosis} "
            f"| {diagnosis_delays if shift != 'labels' else ''} | {seen}/{len(quiet)}: {newcomer_delays} |"
        )
    return lines


def detected_table(detections: Sequence[Detection], window_days: float) -> list[str]:
    """Detection as the issue counts it: the monitor tells the user (alarm or diagnosis) within 2 windows.

    Counted over the runs whose unshifted horizon had neither an alarm nor the shift's diagnosis; label
    quality moves no feature, so only an alarm (realized performance) can detect it.
    """
    lines = [
        f"| shift | size | detected within 2 windows ({2 * window_days:g} days; alarm, heal's drift trigger "
        "or diagnosis): runs with neither in the unshifted horizon | power | delays (days) |",
        "|---|---|---|---|---|",
    ]
    for shift, size in dict.fromkeys((d.shift, d.size) for d in detections):
        group = [d for d in detections if d.shift == shift and d.size == size]
        clean = [d for d in group if not d.baseline_detected]
        hit = [d for d in clean if d.detected_delay_days is not None]
        power = f"{len(hit) / len(clean):.0%}" if clean else "–"
        delays = ", ".join(
            "–" if d.detected_delay_days is None else f"{d.detected_delay_days:.0f}" for d in clean
        )
        lines.append(f"| {SHIFTS[shift][0]} | {size} | {len(hit)}/{len(clean)} | {power} | {delays} |")
    return lines


def horizon(weeks: Sequence[Week], start_index: int, step_weeks: int, window_days: float) -> list[Week]:
    """The checks from ``start_index`` on whose window ends within two window lengths of the shift start."""
    start = weeks[start_index].end - timedelta(days=7 * step_weeks)
    limit = start + timedelta(days=2 * window_days)
    out = [w for w in weeks[start_index:] if w.checked and w.end <= limit]
    if len(out) < 2:  # at least two windows, whatever the lengths
        out = [w for w in weeks[start_index:] if w.checked][:2]
    return out


def cut_window(frame: pd.DataFrame, end: datetime, days: float) -> pd.DataFrame:
    """The served commits of the ``days`` before ``end`` (by commit time: the replay compresses serving)."""
    if "commit_time" not in frame.columns:
        return frame.iloc[0:0]
    times = pd.to_datetime(frame["commit_time"], utc=True, format="ISO8601")
    keep = (times > pd.Timestamp(end - timedelta(days=days))) & (times <= pd.Timestamp(end))
    return frame.loc[keep.to_numpy()].reset_index(drop=True)


def final_auc(
    window: pd.DataFrame, final: pd.Series, settings: MonitoringSettings
) -> tuple[float | None, int]:
    """ROC-AUC of the window's served scores on the labels known at the repository's head (the truth)."""
    from sklearn.metrics import roc_auc_score

    if len(window) == 0:
        return None, 0
    y = window["commit_sha"].map(final)
    known = y.notna().to_numpy()
    labels = y[known].astype(int).to_numpy()
    positives = int(labels.sum())
    enough = min(positives, len(labels) - positives) >= settings.min_realized_per_class
    if len(labels) < settings.min_realized_labels or not enough:
        return None, len(labels)
    return float(roc_auc_score(labels, window["score"].to_numpy(dtype=float)[known])), len(labels)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(base: str, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{path}: HTTP {exc.code}: {exc.read()[:500]!r}") from None


def alarm_kinds(reasons: Sequence[str]) -> str:
    """Which rules raised the alarm: realized, cbpe, drift, newcomers (space-separated)."""
    kinds = {
        "realized"
        if r.startswith("realized")
        else "cbpe"
        if r.startswith("estimated")
        else "newcomers"
        if r.startswith("a new team?")
        else "drift"
        for r in reasons
    }
    return " ".join(sorted(kinds))


def apply_shift(
    frame: pd.DataFrame,
    shift: str,
    start: datetime,
    apply: Shift,
    rng: np.random.Generator,
    score: Callable[[pd.DataFrame], Any],
) -> pd.DataFrame:
    """``frame`` with the shift applied to the rows it touches (re-scored unless only labels changed)."""
    rows = shifted_rows(frame, shift, start)
    if not rows.any():
        return frame
    part = apply(frame.loc[rows], rng)
    if shift != "labels":
        part["score"] = score(part)
    return pd.concat([frame.loc[~rows], part]).sort_index()


def short_decision(retrain: bool, blocked_by: str | None, fired: Sequence[str]) -> str:
    """heal's decision in a few words."""
    if retrain:
        return "retrain (" + ", ".join(fired) + ")"
    if blocked_by:
        return "blocked (" + ", ".join(fired) + ")"
    return "no_action"


def start_service(
    workspace: Path, clone: Path, log: Path, repo_id: str, token: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``defectops serve`` on a free local port, serving ``clone`` as ``repo_id``; returns it and its URL."""
    port = free_port()
    env = {
        **os.environ,
        "DEFECTOPS_WORKSPACE": str(workspace),
        "DEFECTOPS_SERVE_REPOSITORIES": json.dumps({repo_id: str(clone)}),
        "DEFECTOPS_SERVE_FEEDBACK_TOKEN": token,
    }
    command = [
        str(Path(sys.executable).with_name("defectops")),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
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


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


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


def week_heads(
    clone: Path, head_sha: str, t0_sha: str, t0: datetime, n_weeks: int
) -> list[tuple[datetime, str]]:
    out: list[tuple[datetime, str]] = []
    previous = t0_sha
    for w in range(n_weeks):
        end = t0 + timedelta(days=7 * (w + 1))
        sha = git(clone, "rev-list", "-1", "--first-parent", f"--before={end.isoformat()}", head_sha).strip()
        out.append((end, sha or previous))
        previous = sha or previous
    return out


def serve_weeks(
    base: str, clone: Path, shas: tuple[str, str, datetime], labels: pd.DataFrame, n: int
) -> list[Week]:
    """Score each week's commits through the API, then send the labels that became known during the week."""
    head_sha, t0_sha, t0 = shas
    served: set[str] = set()
    sent: set[str] = set()
    previous = t0_sha
    weeks: list[Week] = []
    for index, (end, sha) in enumerate(week_heads(clone, head_sha, t0_sha, t0, n)):
        week = Week(index=index, end=end)
        if sha != previous:
            body = {"repo": REPO_ID, "range": f"{previous}..{sha}", "top_k": 1}
            answer = post(base, "/v1/commits/score", body)
            served.update(str(p["commit_sha"]) for p in answer["predictions"])
            week.n_scored = len(answer["predictions"])
            previous = sha
        known = labels_as_of(labels, end)
        known = known.loc[
            (known["verdict"] != "unknown") & known["sha"].isin(served) & ~known["sha"].isin(sent)
        ]
        for sha_, verdict, at in zip(known["sha"], known["verdict"], known["label_known_at"], strict=True):
            label = 1 if verdict == "defect" else 0
            body = {
                "repo": REPO_ID,
                "commit_sha": str(sha_),
                "label": label,
                "label_time": pd.Timestamp(at).isoformat(),
            }
            post(base, "/v1/feedback", body, TOKEN)
            sent.add(str(sha_))
        week.n_feedback = len(known)
        weeks.append(week)
        # The service stamps predictions and feedback with the wall clock: this week ends now.
        week.wall_end = datetime.now(UTC)
        print(
            f"  week {index:2d} ending {end:%Y-%m-%d}: {week.n_scored} scored, {len(known)} labels",
            flush=True,
        )
    return weeks
