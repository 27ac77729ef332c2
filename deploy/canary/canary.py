#!/usr/bin/env python3
"""The canary procedure of the Kubernetes overlays: seed a canary pod's traffic split, and judge a running
canary from Prometheus, then promote or roll back through the registry's audited aliases.

    python canary.py seed-control [--model-name NAME] [--share 1.0]
    python canary.py judge --prometheus URL [--model-name NAME] [--window 30m] [--matchers 'namespace="x"']
                           [--stable-url URL] [--who NAME] [--dry-run] [--json]

It runs inside the defectops image (``/opt/defectops-deploy/canary.py``) with the same environment as the
service (``DEFECTOPS_*``, ``MLFLOW_TRACKING_URI``, ``DEFECTOPS_AUDIT_DB_URL``).

``seed-control`` (the canary Deployment's init container) writes the serving control file of the pod's own
workspace with the traffic split "canary, share S": the service then lets the registry's ``challenger``
answer that share of records (1.0: all it can score), the documented way a split survives a restart.

``judge`` reads the stable and the canary track's live metrics from Prometheus' HTTP API over ``--window``:

- the canary has served at least ``--min-requests`` predictions, else the verdict is ``wait`` (exit 4);
- the version the canary pods report as challenger (``defectops_model_info``) is the registry's challenger;
- error rate: the canary's 5xx ratio at most ``--max-error-increase`` above the stable one's;
- p99 latency of ``/v1/predict``: at most ``--max-p99-ratio`` times the stable one's (differences below
  ``--p99-floor`` seconds are ignored);
- score distribution: the largest gap between the two tracks' score CDFs (bucketed Kolmogorov-Smirnov
  distance, from ``defectops_prediction_score``) at most ``--max-score-ks``;
- realized performance, where labels exist: the canary's realized ROC-AUC (``defectops_model_performance``)
  at most ``--max-roc-auc-drop`` below the stable one's; skipped, and said so, when either track has none.

Every check passes: the challenger is promoted (``ModelRegistry.promote``, audited with the readings as
evidence), and with ``--stable-url`` the stable service reloads (``POST /v1/models/reload`` with
``DEFECTOPS_SERVE_ADMIN_TOKEN``; its pods share the control file, so one call reaches them all); exit 0. A
check fails: the challenger is archived (``ModelRegistry.archive``, audited); exit 3. Errors exit 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

EXIT_PROMOTED = 0
EXIT_ERROR = 2
EXIT_ROLLED_BACK = 3
EXIT_WAIT = 4
STABLE = "stable"
CANARY = "canary"


class PrometheusError(RuntimeError):
    """Prometheus could not be queried or answered an error."""


@dataclass(frozen=True)
class Limits:
    min_requests: int = 200
    max_error_increase: float = 0.01
    max_p99_ratio: float = 1.5
    p99_floor: float = 0.05
    max_score_ks: float = 0.25
    max_roc_auc_drop: float = 0.02


@dataclass
class TrackReading:
    predictions: float = 0.0
    requests: float = 0.0
    error_ratio: float | None = None
    p99_seconds: float | None = None
    score_cdf: dict[float, float] = field(default_factory=dict)
    mean_score: float | None = None
    realized_roc_auc: float | None = None
    challenger_versions: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    decision: str  # promote | rollback | wait
    model_name: str
    challenger_version: int | None
    checks: list[dict[str, Any]]
    stable: dict[str, Any]
    canary: dict[str, Any]
    window: str
    score_ks: float | None = None
    actions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Prometheus:
    """The instant-query endpoint of Prometheus' HTTP API (``GET /api/v1/query``)."""

    def __init__(self, url: str, *, timeout: float = 30.0, at: float | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.at = at

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        params = {"query": expr}
        if self.at is not None:
            params["time"] = repr(self.at)
        request = urllib.request.Request(  # noqa: S310 - the operator's Prometheus URL
            f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}",
            headers={"Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - operator's URL
                document = json.load(answer)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            raise PrometheusError(f"{expr!r}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise PrometheusError(f"{expr!r}: {exc}") from None
        if document.get("status") != "success":
            raise PrometheusError(f"{expr!r}: {document.get('errorType')}: {document.get('error')}")
        data = document.get("data", {})
        if data.get("resultType") != "vector":
            raise PrometheusError(f"{expr!r}: expected a vector, got {data.get('resultType')!r}")
        out = []
        for sample in data.get("result", []):
            value = float(sample["value"][1])
            out.append((dict(sample.get("metric", {})), value))
        return out


def _selector(matchers: str, *extra: str) -> str:
    parts = [part for part in (matchers.strip(), *extra) if part]
    return "{" + ", ".join(parts) + "}"


def _by_track(samples: list[tuple[dict[str, str], float]]) -> dict[str, float]:
    return {labels.get("track", ""): value for labels, value in samples if math.isfinite(value)}


def read_tracks(prometheus: Prometheus, window: str, matchers: str = "") -> dict[str, TrackReading]:
    """Both tracks' readings over ``window`` (a PromQL duration such as ``30m``)."""
    tracks = {STABLE: TrackReading(), CANARY: TrackReading()}

    def sel(*extra: str) -> str:
        return _selector(matchers, 'track=~"stable|canary"', *extra)

    api = 'route=~"/v1/.*"'
    predict = 'route="/v1/predict"'
    served = 'served="true"'
    server_error = 'status=~"5.."'
    for track, value in _by_track(
        prometheus.query(f"sum by (track) (increase(defectops_predictions_total{sel(served)}[{window}]))")
    ).items():
        if track in tracks:
            tracks[track].predictions = value
    for track, value in _by_track(
        prometheus.query(f"sum by (track) (increase(defectops_http_requests_total{sel(api)}[{window}]))")
    ).items():
        if track in tracks:
            tracks[track].requests = value
    errors = _by_track(
        prometheus.query(
            f"sum by (track) (increase(defectops_http_requests_total{sel(api, server_error)}[{window}]))"
        )
    )
    for track, reading in tracks.items():
        if reading.requests > 0:
            reading.error_ratio = errors.get(track, 0.0) / reading.requests
    p99 = prometheus.query(
        "histogram_quantile(0.99, sum by (track, le) "
        f"(rate(defectops_http_request_duration_seconds_bucket{sel(predict)}[{window}])))"
    )
    for track, value in _by_track(p99).items():
        if track in tracks:
            tracks[track].p99_seconds = value
    buckets = prometheus.query(
        f"sum by (track, le) (increase(defectops_prediction_score_bucket{sel(served)}[{window}]))"
    )
    for labels, value in buckets:
        track = labels.get("track", "")
        if track in tracks and "le" in labels:
            tracks[track].score_cdf[float(labels["le"])] = value
    for reading in tracks.values():
        total = reading.score_cdf.get(math.inf)
        if total:
            reading.score_cdf = {le: count / total for le, count in sorted(reading.score_cdf.items())}
        else:
            reading.score_cdf = {}
    means = prometheus.query(
        f"sum by (track) (increase(defectops_prediction_score_sum{sel(served)}[{window}])) "
        f"/ sum by (track) (increase(defectops_prediction_score_count{sel(served)}[{window}]))"
    )
    for track, value in _by_track(means).items():
        if track in tracks:
            tracks[track].mean_score = value
    realized = prometheus.query(
        "max by (track) (defectops_model_performance"
        f"""{sel('source="realized"', 'metric="roc_auc"')})"""
    )
    for track, value in _by_track(realized).items():
        if track in tracks:
            tracks[track].realized_roc_auc = value
    info = prometheus.query(
        "max by (track, model_version) (defectops_model_info"
        f"""{sel('role="challenger"')}) == 1"""
    )
    for labels, _ in info:
        track = labels.get("track", "")
        if track in tracks:
            tracks[track].challenger_versions.append(labels.get("model_version", ""))
    return tracks


def ks_distance(a: dict[float, float], b: dict[float, float]) -> float | None:
    """Largest gap between two bucketed CDFs (same bucket bounds), None when either is empty."""
    if not a or not b:
        return None
    bounds = sorted(set(a) & set(b))
    if not bounds:
        return None
    return max(abs(a[le] - b[le]) for le in bounds)


def decide(tracks: dict[str, TrackReading], limits: Limits) -> tuple[str, list[dict[str, Any]], float | None]:
    """``(promote|rollback|wait, checks, score KS distance)`` from both tracks' readings."""
    stable, canary = tracks[STABLE], tracks[CANARY]
    checks: list[dict[str, Any]] = []

    def check(name: str, passed: bool | None, detail: str) -> None:
        checks.append({"check": name, "passed": passed, "detail": detail})

    if canary.predictions < limits.min_requests:
        check(
            "enough canary traffic",
            None,
            f"{canary.predictions:.0f} canary predictions in the window, need {limits.min_requests}",
        )
        return "wait", checks, None
    if stable.error_ratio is None or canary.error_ratio is None:
        check("error rate", False, "no request counts for one of the tracks")
    else:
        passed = canary.error_ratio <= stable.error_ratio + limits.max_error_increase
        check(
            "error rate",
            passed,
            f"canary {canary.error_ratio:.4f} vs stable {stable.error_ratio:.4f} "
            f"(allowed +{limits.max_error_increase})",
        )
    if stable.p99_seconds is None or canary.p99_seconds is None:
        check("p99 latency", False, "no latency histogram for one of the tracks")
    else:
        allowed = max(stable.p99_seconds * limits.max_p99_ratio, limits.p99_floor)
        check(
            "p99 latency",
            canary.p99_seconds <= allowed,
            f"canary {canary.p99_seconds * 1000:.1f} ms vs stable {stable.p99_seconds * 1000:.1f} ms "
            f"(allowed {allowed * 1000:.1f} ms)",
        )
    ks = ks_distance(stable.score_cdf, canary.score_cdf)
    if ks is None:
        check("score distribution", False, "no score histogram for one of the tracks")
    else:
        check(
            "score distribution",
            ks <= limits.max_score_ks,
            f"KS distance {ks:.3f} between the tracks' score CDFs (allowed {limits.max_score_ks}); mean "
            f"score canary {canary.mean_score if canary.mean_score is not None else float('nan'):.3f}, "
            f"stable {stable.mean_score if stable.mean_score is not None else float('nan'):.3f}",
        )
    if stable.realized_roc_auc is None or canary.realized_roc_auc is None:
        check("realized performance", None, "no realized ROC-AUC for both tracks yet (labels mature late)")
    else:
        check(
            "realized performance",
            canary.realized_roc_auc >= stable.realized_roc_auc - limits.max_roc_auc_drop,
            f"realized ROC-AUC canary {canary.realized_roc_auc:.3f} vs stable {stable.realized_roc_auc:.3f} "
            f"(allowed drop {limits.max_roc_auc_drop})",
        )
    failed = [c for c in checks if c["passed"] is False]
    return ("rollback" if failed else "promote"), checks, ks


def _summary(reading: TrackReading) -> dict[str, Any]:
    out = asdict(reading)
    out["score_cdf"] = {("+Inf" if math.isinf(le) else repr(le)): p for le, p in reading.score_cdf.items()}
    return out


def judge(
    prometheus: Prometheus,
    registry: Any,
    model_name: str,
    *,
    window: str,
    limits: Limits,
    who: str,
    now: datetime,
    matchers: str = "",
    dry_run: bool = False,
    reload: Any = None,
) -> Verdict:
    """Read, decide, act (unless ``dry_run``); ``registry`` is a :class:`defectops.registry.ModelRegistry`."""
    tracks = read_tracks(prometheus, window, matchers)
    challenger = registry.alias_version(model_name, "challenger")
    decision, checks, ks = decide(tracks, limits)
    served = sorted(set(tracks[CANARY].challenger_versions))
    if challenger is None:
        raise SystemExit(f"canary.py: {model_name} has no challenger in the registry; nothing to judge")
    if decision != "wait" and served != [str(challenger)]:
        raise SystemExit(
            f"canary.py: the canary pods report challenger version(s) {served or 'none'}, the registry's "
            f"challenger is v{challenger}; restart the canary Deployment before judging it"
        )
    verdict = Verdict(
        decision=decision,
        model_name=model_name,
        challenger_version=challenger,
        checks=checks,
        stable=_summary(tracks[STABLE]),
        canary=_summary(tracks[CANARY]),
        window=window,
        score_ks=ks,
    )
    if dry_run or decision == "wait":
        return verdict
    evidence = {"source": "canary", "window": window, "checks": checks, "score_ks": ks}
    if decision == "promote":
        registry.promote(
            model_name,
            challenger,
            who,
            f"canary passed over {window}: " + "; ".join(c["check"] for c in checks if c["passed"]),
            evidence,
            now=now,
        )
        verdict.actions.append(f"promoted v{challenger} to champion")
        if reload is not None:
            reload()
            verdict.actions.append("stable service reloaded")
    else:
        failed = [c["check"] + ": " + c["detail"] for c in checks if c["passed"] is False]
        registry.archive(
            model_name, challenger, who, "canary failed: " + "; ".join(failed), evidence, now=now
        )
        verdict.actions.append(f"archived challenger v{challenger} (rolled back to the champion)")
    return verdict


def _reload(stable_url: str) -> None:
    token = os.environ.get("DEFECTOPS_SERVE_ADMIN_TOKEN", "")
    if not token:
        raise SystemExit("canary.py: --stable-url needs DEFECTOPS_SERVE_ADMIN_TOKEN")
    request = urllib.request.Request(  # noqa: S310 - the operator's service URL
        f"{stable_url.rstrip('/')}/v1/models/reload",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=300) as answer:  # noqa: S310 - operator's URL
        if answer.status != 200:
            raise SystemExit(f"canary.py: the stable reload answered {answer.status}")


def _model_name(given: str | None) -> str:
    name = given or os.environ.get("DEFECTOPS_SERVE_MODEL_NAME", "")
    if not name:
        raise SystemExit("canary.py: give --model-name or set DEFECTOPS_SERVE_MODEL_NAME")
    return name


def seed_control(model_name: str, share: float, now: datetime) -> dict[str, Any]:
    """Write the canary split into this workspace's control file (what ``PUT /v1/traffic`` would write)."""
    from defectops.config import Settings
    from defectops.serving.control import ControlFile
    from defectops.serving.deployment import Traffic

    traffic = Traffic(mode="canary", share=share)
    control = ControlFile.for_model(Settings().resolved_workspace(), model_name)
    state = control.update(lambda current: (None, None, traffic, "canary pod: challenger answers"), now=now)
    return {"control_file": str(control.path), **state.to_document()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="canary.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed-control", help="write the canary split into this pod's control file")
    seed.add_argument("--model-name")
    seed.add_argument("--share", type=float, default=1.0)
    run = sub.add_parser("judge", help="judge the canary from Prometheus; promote or roll back")
    run.add_argument("--prometheus", required=True, help="Prometheus base URL (http://prometheus:9090)")
    run.add_argument("--model-name")
    run.add_argument("--window", default="30m", help="PromQL range of the comparison (default 30m)")
    run.add_argument("--matchers", default="", help='extra label matchers, e.g. namespace="defectops"')
    run.add_argument("--stable-url", help="stable service to reload after a promotion")
    run.add_argument("--who", default=None, help="recorded in the audit history (default: the OS user)")
    run.add_argument("--dry-run", action="store_true", help="decide only; move no alias")
    run.add_argument("--json", action="store_true", help="print the verdict as JSON")
    defaults = Limits()
    for name, value in asdict(defaults).items():
        run.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    if args.command == "seed-control":
        if not 0.0 < args.share <= 1.0:
            parser.error("--share must be in (0, 1]")
        print(json.dumps(seed_control(_model_name(args.model_name), args.share, now)))
        return 0
    from defectops.config import Settings
    from defectops.registry import ModelRegistry

    limits = Limits(**{name: getattr(args, name) for name in asdict(defaults)})
    registry = ModelRegistry.from_settings(Settings())
    try:
        verdict = judge(
            Prometheus(args.prometheus),
            registry,
            _model_name(args.model_name),
            window=args.window,
            limits=limits,
            who=args.who or getpass.getuser(),
            now=now,
            matchers=args.matchers,
            dry_run=args.dry_run,
            reload=(lambda: _reload(args.stable_url)) if args.stable_url else None,
        )
    except PrometheusError as exc:
        print(f"canary.py: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(verdict.as_dict(), indent=2, default=str))
    else:
        print(f"{verdict.model_name} challenger v{verdict.challenger_version}: {verdict.decision}")
        for item in verdict.checks:
            mark = {True: "pass", False: "FAIL", None: "skip"}[item["passed"]]
            print(f"  {mark:<4} {item['check']}: {item['detail']}")
        for action in verdict.actions:
            print(f"  -> {action}")
    return {"promote": EXIT_PROMOTED, "rollback": EXIT_ROLLED_BACK, "wait": EXIT_WAIT}[verdict.decision]


if __name__ == "__main__":
    sys.exit(main())
