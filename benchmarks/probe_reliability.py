"""Issue #14's probe as one scripted suite, against real ``defectops serve`` processes on 127.0.0.1.

    python benchmarks/probe_reliability.py [--only repos,amplification,kill,promotions,schemathesis,concurrency]
                                           [--kill-rounds 3] [--cycles 10] [--json out.json]

Set-up: a seeded synthetic repository (tests/synthetic_history.py, 321 commits) and three ``defectops run``
on it (the 14 change metrics), so the registry holds v1 (champion), v2 and v3 of one model. Then:

* ``repos``: the hostile repositories of benchmarks/probe_repos.py through the CLI (invocations, tracebacks);
* ``amplification``: benchmarks/probe_hostile.py's 7.5 MB body of 400,000 unknown keys (answer size and time),
  and one client's p50/p99 with nothing else, then while 2 clients send 4 such bodies each (5 bursts);
* ``kill``: 4 clients predict, the service (one worker) is killed with SIGKILL after 300 answers, 3 rounds:
  acknowledged predictions vs those in the prediction log;
* ``promotions``: 4 clients predict against 2 workers while the champion is promoted back and forth and
  reloaded; then v3's artifact is truncated and promoted (API and CLI: refused), and the served champion's
  files are damaged in place and reloaded (refused, the old model serves on), then restored;
* ``schemathesis``: ``st run --checks all`` on the OpenAPI (bounded budget, fixed seed, admin token);
* ``concurrency``: benchmarks/probe_concurrency.sh (3 ``run`` at once, 2 rounds; 4 ``mine``, 3 rounds).

Every server's stderr is kept and searched for tracebacks. Prints one table and writes JSON. Timings depend on
the machine and its load: the load average is printed with each section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

import probe_repos  # noqa: E402
from bench_serving import base_env, free_port, load_average, percentile, wait_http  # noqa: E402
from probe_hostile import METRICS, hostile_answer, latency_under_attack, quiet_latency  # noqa: E402

WORK = ROOT / "benchmarks" / ".work" / "reliability"
ADMIN = "probe-admin-token-5f1c0e9a7b3d2468"
SERVE = "import typer; from defectops.cli.serve import serve; typer.run(serve)"
SECTIONS = ("repos", "amplification", "kill", "promotions", "schemathesis", "concurrency")


def cli(workspace: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [*probe_repos.defectops_command(), "-w", str(workspace), *args]
    done = subprocess.run(argv, capture_output=True, text=True, env=probe_repos.cli_env(), check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"defectops {' '.join(args)}: {done.stderr.strip()[-2000:]}")
    return done


def prepare(work: Path) -> tuple[Path, Path, str]:
    """The synthetic repository and a workspace whose registry holds v1 (champion), v2 and v3."""
    from synthetic_history import build_synthetic

    repo = build_synthetic(work / "repo").path
    workspace = work / "ws"
    name = ""
    for _ in range(3):
        out = cli(workspace, "run", "--repo", str(repo), "--budget-seconds", "2", "--features", "kamei",
                  "-q", "--json").stdout  # fmt: skip
        name = json.loads(out)["registry"]["model_name"]
    return repo, workspace, name


class Service:
    """A ``defectops serve`` child process (its own process group) with stderr kept in a file."""

    def __init__(
        self, workspace: Path, name: str, log: Path, workers: int, tag: str, access_log: bool = False
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr = log.parent / f"serve-{tag}.err"
        env = base_env(workspace) | {
            "DEFECTOPS_SERVE_ADMIN_TOKEN": ADMIN,
            "DEFECTOPS_SERVE_LOG_URL": f"sqlite:///{log}",
            "DEFECTOPS_SERVE_POLL_SECONDS": "0.2",
            "DEFECTOPS_SERVE_ACCESS_LOG": "true" if access_log else "false",
        }
        args = ["--port", str(self.port), "--workers", str(workers), "--model-name", name]
        with self.stderr.open("a") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVE, *args],
                env=env,
                stdout=err,  # uvicorn's access log (when on) goes to stdout
                stderr=err,
                start_new_session=True,
            )
        wait_http(self.url + "/health/ready")
        deadline = time.monotonic() + 120
        while self.stderr.read_text().count("Application startup complete") < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start: {self.stderr}")
            time.sleep(0.1)

    def tracebacks(self) -> int:
        return self.stderr.read_text(errors="replace").count("Traceback")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        self.kill()


def admin(client: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return client.request(method, path, json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=300)


class Load:
    """``clients`` threads sending one-record predictions until stopped; keeps statuses, latencies and the
    prediction ids of the answers (acknowledged predictions)."""

    def __init__(self, url: str, clients: int = 4, stop_on_error: bool = False) -> None:
        self.url = url
        self.ok: list[str] = []
        self.failed: list[str] = []
        self.latencies: list[float] = []
        self.stop_on_error = stop_on_error
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._fire, args=(i,)) for i in range(clients)]
        for thread in self._threads:
            thread.start()

    def _fire(self, seed: int) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            i = seed
            while not self._stop.is_set():
                record = {name: float((i * (k + 3)) % 17) for k, name in enumerate(METRICS)}
                record["fix"] = float(i % 2)
                started = time.perf_counter()
                try:
                    response = client.post("/v1/predict", json={"records": [record], "top_k": 0})
                except httpx.HTTPError as exc:
                    if self.stop_on_error:
                        return  # the service went away (killed): nothing more is acknowledged
                    self.failed.append(type(exc).__name__)
                    continue
                if response.status_code == 200:
                    self.latencies.append(time.perf_counter() - started)
                    self.ok.append(response.json()["predictions"][0]["prediction_id"])
                else:
                    self.failed.append(str(response.status_code))
                i += 4

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def wait_for(self, answers: int, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while len(self.ok) < answers and time.monotonic() < deadline:
            time.sleep(0.01)


# ------------------------------------------------------------------------------------------------ sections


def amplification(workspace: Path, name: str, work: Path) -> dict[str, Any]:
    service = Service(workspace, name, work / "amplification.db", 1, "amplification")
    try:
        result: dict[str, Any] = {"load_before": load_average()}
        result["one"] = hostile_answer(service.url)
        result["quiet"] = quiet_latency(service.url)
        result["attack"] = latency_under_attack(service.url, attackers=2, per_attacker=4, bursts=5)
        result["tracebacks"] = service.tracebacks()
        result["load_after"] = load_average()
        return result
    finally:
        service.stop()


def _logged_ids(log: Path) -> set[str]:
    from defectops.predlog import PredictionLog

    with PredictionLog.from_url(f"sqlite:///{log}") as opened:
        window = opened.window(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    return set(window["prediction_id"])


def kill_rounds(workspace: Path, name: str, work: Path, rounds: int, answers: int = 300) -> dict[str, Any]:
    log = work / "kill.db"
    result: dict[str, Any] = {"load_before": load_average(), "rounds": []}
    for round_ in range(1, rounds + 1):
        service = Service(workspace, name, log, 1, f"kill-{round_}")
        load = Load(service.url, clients=4, stop_on_error=True)
        load.wait_for(answers)
        service.kill()
        load.stop()
        logged = _logged_ids(log)
        acknowledged = set(load.ok)
        result["rounds"].append(
            {
                "acknowledged": len(acknowledged),
                "logged_of_acknowledged": len(acknowledged & logged),
                "lost": len(acknowledged - logged),
                "log_rows_total": len(logged),
                "failed_before_kill": len(load.failed),
                "tracebacks": service.tracebacks(),
            }
        )
    result["load_after"] = load_average()
    return result


def _artifact_files(workspace: Path, name: str, version: int) -> list[Path]:
    """The serialised estimator files of one registered version (MLflow 3: a logged model's folder)."""
    import mlflow

    from defectops.registry.tracking import TrackingConfig, activate

    activate(TrackingConfig.resolve(workspace))
    source = mlflow.MlflowClient().get_model_version(name, str(version)).source
    found = re.search(r"m-[0-9a-f]+", source or "")
    if found is None:
        raise RuntimeError(f"cannot find the logged model of {name} v{version} (source {source!r})")
    root = Path(mlflow.get_logged_model(found.group(0)).artifact_location.removeprefix("file://"))
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".skops", ".pkl", ".txt", ".json")]
    return [p for p in files if p.name.startswith("model.")] or files


def promotions(workspace: Path, name: str, work: Path, cycles: int) -> dict[str, Any]:
    service = Service(workspace, name, work / "promotions.db", 2, "promotions")
    actions: dict[str, list[int]] = {"promote": [], "reload": []}
    result: dict[str, Any] = {"load_before": load_average(), "cycles": cycles}
    load = Load(service.url, clients=4)
    try:
        load.wait_for(50)
        with httpx.Client(base_url=service.url) as client:
            for i in range(cycles):
                for version in (2, 1):
                    body = {"version": version, "why": f"probe cycle {i}", "force": True}
                    actions["promote"].append(admin(client, "POST", "/v1/models/promote", body).status_code)
                    actions["reload"].append(admin(client, "POST", "/v1/models/reload").status_code)
            for path in _artifact_files(workspace, name, 3):
                path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])
            body = {"version": 3, "why": "probe: a truncated artifact", "force": True}
            refused = admin(client, "POST", "/v1/models/promote", body)
            result["corrupt_promote_api"] = {
                "status": refused.status_code,
                "detail": refused.json().get("detail"),
            }
            done = cli(workspace, "models", "promote", name, "3", "--force", "--why", "probe", check=False)
            result["corrupt_promote_cli"] = {"exit": done.returncode, "stderr": done.stderr.strip()[-300:]}
            served = _artifact_files(workspace, name, 1)
            saved = {path: path.read_bytes() for path in served}
            for path in served:
                path.write_bytes(b"damaged in place")
            damaged = admin(client, "POST", "/v1/models/reload")
            result["damaged_reload"] = {"status": damaged.status_code}
            for path, data in saved.items():
                path.write_bytes(data)
            result["restored_reload"] = {"status": admin(client, "POST", "/v1/models/reload").status_code}
            models = client.get("/v1/models").json()
            result["champion_after"] = models["champion"]["version"] if models.get("champion") else None
        time.sleep(1.0)
    finally:
        load.stop()
        result["tracebacks"] = service.tracebacks()
        service.stop()
    result["actions"] = {k: {str(s): v.count(s) for s in sorted(set(v))} for k, v in actions.items()}
    result["requests"] = len(load.ok) + len(load.failed)
    result["failed_requests"] = len(load.failed)
    result["failures"] = sorted(set(load.failed))
    ms = [s * 1000 for s in load.latencies]
    result["p50_ms"], result["p99_ms"] = percentile(ms, 50), percentile(ms, 99)
    result["load_after"] = load_average()
    return result


def schemathesis(workspace: Path, name: str, work: Path, examples: int) -> dict[str, Any]:
    service = Service(workspace, name, work / "schemathesis.db", 1, "schemathesis", access_log=True)
    report = work / "schemathesis.json"
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{service.url}/openapi.json", "--checks", "all",
        "--max-examples", str(examples), "--seed", "14", "--no-shrink", "--workers", "1",
        "--request-timeout", "30", "--header", f"Authorization: Bearer {ADMIN}",
        "--report", "json", "--report-json-path", str(report), "--output-truncate", "false",
    ]  # fmt: skip
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False, cwd=work)
    finally:
        tracebacks = service.tracebacks()
        service.stop()
    document = json.loads(report.read_text()) if report.exists() else {}
    (work / "schemathesis.out").write_text(done.stdout + done.stderr)
    return {
        "exit": done.returncode,
        "seconds": time.perf_counter() - started,
        "cases": document.get("test_cases", {}),
        "operations": document.get("operations", {}),
        "failures": len(document.get("failures", [])),
        "errors": len(document.get("errors", [])),
        "statuses": _statuses(work / "serve-schemathesis.err"),
        "tracebacks": tracebacks,
    }


def _statuses(access_log: Path) -> dict[str, int]:
    """Answers by HTTP status, from uvicorn's access log lines."""
    counts: dict[str, int] = {}
    for found in re.finditer(r'HTTP/1\.1" (\d{3})', access_log.read_text(errors="replace")):
        counts[found.group(1)] = counts.get(found.group(1), 0) + 1
    return dict(sorted(counts.items()))


def concurrency(repo: Path, work: Path) -> dict[str, Any]:
    from synthetic_history import build_synthetic  # noqa: F401 - the repository was built by prepare

    script = ROOT / "benchmarks" / "probe_concurrency.sh"
    env = probe_repos.cli_env() | {"DEFECTOPS": probe_repos.defectops_command()[0]}
    env.pop("DEFECTOPS_LOCK_WAIT_SECONDS")  # the default: a second process waits
    expected = int(subprocess.run(["git", "-C", str(repo), "rev-list", "--count", "HEAD"],
                                  capture_output=True, text=True, check=True).stdout)  # fmt: skip
    result: dict[str, Any] = {"load_before": load_average(), "expected_commits": expected}
    for label, rounds, n, args in (
        ("run", 2, 3, ["run", "--repo", str(repo), "--budget-seconds", "2", "-q"]),
        ("mine", 3, 4, ["mine", "--repo", str(repo), "-q"]),
    ):
        folder = work / f"concurrency-{label}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = time.perf_counter()
        done = subprocess.run(["bash", str(script), str(rounds), str(n), *args], capture_output=True,
                              text=True, env=env | {"PROBE_DIR": str(folder)}, check=False)  # fmt: skip
        states = [int(c) if c.isdigit() else -1 for c in re.findall(r"state commits=(\S+)", done.stdout)]
        totals = re.search(r"failed processes: (\d+), bad workspaces: (\d+)", done.stdout)
        outputs = "".join(p.read_text(errors="replace") for p in folder.glob("out_*"))
        result[label] = {
            "rounds": rounds,
            "processes": rounds * n,
            "failed_processes": int(totals.group(1)) if totals else -1,
            "corrupt_workspaces": (int(totals.group(2)) if totals else rounds)
            + sum(c != expected for c in states),
            "states": states,
            "tracebacks": outputs.count("Traceback"),
            "seconds": time.perf_counter() - started,
        }
    result["load_after"] = load_average()
    return result


# ------------------------------------------------------------------------------------------------ report


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} x {status}" for status, n in counts.items()) or "none"


def table(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(probe, result, target) rows."""
    rows: list[tuple[str, str, str]] = []
    if "repos" in report:
        r = report["repos"]
        rows.append((f"hostile repositories ({r['repositories']}) through mine, mine --commit, label, run",
                     f"{r['invocations']} invocations, {r['succeeded']} succeeded, {r['refused']} refused, "
                     f"{r['tracebacks']} tracebacks, {r['multi_line_errors']} multi-line refusals",
                     "0 tracebacks"))  # fmt: skip
    if "amplification" in report:
        a = report["amplification"]
        one, quiet, attack = a["one"], a["quiet"], a["attack"]
        rows.append(
            (
                f"{one['body_bytes']:,}-byte body of 400,000 unknown keys",
                f"{one['status']}, {one['answer_bytes']:,} bytes, {one['seconds'] * 1000:.0f} ms",
                "bounded",
            )
        )
        rows.append(
            (
                "one client, nothing else arriving",
                f"p50 {quiet['p50_ms']:.1f} ms, p99 {quiet['p99_ms']:.1f} ms",
                "-",
            )
        )
        rows.append((f"one client while 2 clients send 4 such bodies each, {attack['bursts']} times",
                     f"{attack['requests']} requests ({attack['failed']} failed), p50 {attack['p50_ms']:.1f} ms, "
                     f"p99 {attack['p99_ms']:.1f} ms, max {attack['max_ms']:.0f} ms", "p99 < 50 ms"))  # fmt: skip
    if "kill" in report:
        k = report["kill"]["rounds"]
        rows.append((f"kill -9 under load (4 clients), {len(k)} rounds",
                     f"{sum(r['acknowledged'] for r in k)} acknowledged "
                     f"({', '.join(str(r['acknowledged']) for r in k)}), "
                     f"{sum(r['logged_of_acknowledged'] for r in k)} of them logged, "
                     f"{sum(r['lost'] for r in k)} lost", "0 lost"))  # fmt: skip
    if "promotions" in report:
        p = report["promotions"]
        rows.append((f"{2 * p['cycles']} promotions and {2 * p['cycles'] + 2} reloads under load "
                     f"(4 clients, 2 workers)",
                     f"{p['requests']:,} requests, {p['failed_requests']} failed; promotions "
                     f"{_counts(p['actions']['promote'])}, reloads {_counts(p['actions']['reload'])}; "
                     f"p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms",
                     "0 failed"))  # fmt: skip
        rows.append(("truncated artifact promoted (API; CLI)",
                     f"{p['corrupt_promote_api']['status']}; exit {p['corrupt_promote_cli']['exit']}; "
                     f"champion after: v{p['champion_after']}", "refused"))  # fmt: skip
        rows.append(
            (
                "served champion's files damaged, then reload; restored, then reload",
                f"{p['damaged_reload']['status']}; {p['restored_reload']['status']}",
                "refused; 200",
            )
        )
    if "schemathesis" in report:
        s = report["schemathesis"]
        cases = s["cases"]
        rows.append(("schemathesis --checks all on the OpenAPI",
                     f"{cases.get('generated', '?')} cases, {cases.get('with_failures', '?')} with failures, "
                     f"{s['errors']} errors; answers: {_counts(s['statuses'])}; {s['seconds']:.0f} s",
                     "0 server errors, 0 violations"))  # fmt: skip
    if "concurrency" in report:
        c = report["concurrency"]
        for label in ("run", "mine"):
            x = c[label]
            rows.append((f"{x['processes'] // x['rounds']} x `{label}` at once on one workspace, {x['rounds']} rounds",
                         f"{x['failed_processes']} of {x['processes']} processes failed, states {x['states']}, "
                         f"{x['corrupt_workspaces']} corrupt workspaces", "0 corrupt"))  # fmt: skip
    tracebacks = sum(
        report[s].get("tracebacks", 0) for s in ("amplification", "promotions", "schemathesis") if s in report
    )
    if "kill" in report:
        tracebacks += sum(r["tracebacks"] for r in report["kill"]["rounds"])
    rows.append(("tracebacks in the services' logs", str(tracebacks), "0"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="Comma-separated sections to run.")
    parser.add_argument("--kill-rounds", type=int, default=3)
    parser.add_argument(
        "--cycles", type=int, default=10, help="Promotion cycles (v2 then v1, each reloaded)."
    )
    parser.add_argument("--examples", type=int, default=25, help="Schemathesis examples per operation.")
    parser.add_argument("--json", type=Path, default=WORK / "results.json")
    args = parser.parse_args()
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}: choose from {', '.join(SECTIONS)}")

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "load_start": load_average(),
    }
    print(f"machine: {report['machine']}, load {report['load_start']}", flush=True)
    repo, workspace, name = WORK / "repo", WORK / "ws", ""
    if set(only) - {"repos"}:
        started = time.perf_counter()
        repo, workspace, name = prepare(WORK)
        print(f"set-up: {name} v1-v3 trained in {time.perf_counter() - started:.0f} s", flush=True)
    steps = {
        "repos": lambda: probe_repos.probe(),  # in /tmp: outside this checkout's work tree
        "amplification": lambda: amplification(workspace, name, WORK),
        "kill": lambda: kill_rounds(workspace, name, WORK, args.kill_rounds),
        "promotions": lambda: promotions(workspace, name, WORK, args.cycles),
        "schemathesis": lambda: schemathesis(workspace, name, WORK, args.examples),
        "concurrency": lambda: concurrency(repo, WORK),
    }
    for section in SECTIONS:
        if section in only:
            began = time.perf_counter()
            print(f"{section}: load {load_average()}", flush=True)
            report[section] = steps[section]()
            report[section]["section_seconds"] = round(time.perf_counter() - began, 1)
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    report["load_end"] = load_average()
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if "repos" in report:
        probe_repos.print_cases(report["repos"])
    print(f"\n{report['date']}, {report['machine']}; load {report['load_start']} -> {report['load_end']}")
    print("| probe | result | target |\n|---|---|---|")
    for row in table(report):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
