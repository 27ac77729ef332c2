"""Throughput of ``--code-metrics`` (lizard + Terraform block metrics) on real repositories.

Usage (from the repository root; clones live in the git-ignored benchmarks/.work/):

    git clone -q --no-checkout <url or mirror> benchmarks/.work/terraform-aws-eks
    git clone -q --no-checkout <url or mirror> benchmarks/.work/requests
    .venv/bin/python benchmarks/bench_code_metrics.py [--repo PATH ...] [--limit N] [--cross-check]

For each repository: read every commit (oldest first) with the miner's log parser, then time
``code_metrics`` over them and ``aggregate_per_commit`` over its rows, and print non-merge commits per second.
``--cross-check`` also parses every ``.tf`` blob of the history both incrementally and as a whole file and
reports any difference (there must be none). Results go to docs/benchmarks.md ("Code metrics").
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from defectops.errors import TerraformParseError
from defectops.git.log import LOG_OPTIONS, parse_log
from defectops.git.records import ChangeType, Commit
from defectops.git.repo import GitRepo
from defectops.mining.code_aggregate import aggregate_per_commit
from defectops.mining.code_metrics import code_metrics
from defectops.mining.terraform import (
    TerraformMetrics,
    clear_parse_cache,
    parse_terraform,
)

WORK = Path(__file__).resolve().parent / ".work"
DEFAULT_REPOS = ("terraform-aws-eks", "requests")


def read_commits(repo: GitRepo) -> list[Commit]:
    return list(parse_log(repo.stream(*LOG_OPTIONS, "--topo-order", "--reverse", "HEAD")))


def bench(path: Path, limit: int | None) -> dict[str, float]:
    repo = GitRepo.open(path)
    clear_parse_cache()  # no carry-over between repositories
    t0 = time.perf_counter()
    commits = read_commits(repo)
    if limit is not None:
        commits = commits[:limit]
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    rows = list(code_metrics(repo, commits))
    t2 = time.perf_counter()
    per_commit = aggregate_per_commit(rows, shas=[c.sha for c in commits])
    t3 = time.perf_counter()
    cpu = time.process_time() - cpu1  # this process only (git cat-file is a few % on top)
    scored = sum(1 for c in commits if not c.is_merge)
    seconds = t3 - t1
    kinds = Counter(r.language for r in rows)
    skipped = Counter(r.skipped for r in rows if r.skipped)
    errors = sum(r.parse_error for r in rows)
    print(f"{path.name}: {len(commits)} commits ({scored} non-merge), log+parse {t1 - t0:.1f} s")
    print(
        f"  code metrics: {len(rows)} file rows {dict(kinds.most_common(6))}, skipped {dict(skipped)}, "
        f"parse errors {errors}"
    )
    print(
        f"  code_metrics {t2 - t1:.1f} s + aggregate {t3 - t2:.2f} s = {seconds:.1f} s -> "
        f"{scored / seconds:.1f} commits/s, {len(rows) / seconds:.1f} files/s ({len(per_commit)} commit rows)"
    )
    print(f"  CPU {cpu:.1f} s -> {scored / cpu:.1f} commits per CPU-second (load average {_load()})")
    return {"commits": scored, "seconds": seconds, "cpu": cpu, "rows": len(rows)}


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def cross_check(path: Path) -> int:
    """Parse every .tf blob of the history incrementally and whole; return the number of differences."""
    repo = GitRepo.open(path)
    blobs = sorted(
        {
            f.new_blob
            for c in read_commits(repo)
            for f in c.files
            if f.path.lower().endswith(".tf") and f.change_type != ChangeType.DELETED and not f.binary
        }
    )
    proc = subprocess.run(
        ["git", "-C", str(repo.path), "cat-file", "--batch"],
        input="".join(b + "\n" for b in blobs).encode(),
        capture_output=True,
        check=True,
    )
    out, pos, texts = proc.stdout, 0, []
    for _ in blobs:
        newline = out.index(b"\n", pos)
        size = int(out[pos:newline].split()[2])
        texts.append(out[newline + 1 : newline + 1 + size].decode("utf-8", errors="replace"))
        pos = newline + 1 + size + 1

    def outcome(text: str, incremental: bool) -> TerraformMetrics | str:
        try:
            return parse_terraform(text, incremental=incremental)
        except TerraformParseError as exc:
            return f"error: {exc}"

    differences = errors = 0
    t_inc = t_whole = 0.0
    for blob, text in zip(blobs, texts, strict=True):
        t0 = time.perf_counter()
        inc = outcome(text, True)
        t1 = time.perf_counter()
        whole = outcome(text, False)
        t2 = time.perf_counter()
        t_inc += t1 - t0
        t_whole += t2 - t1
        errors += isinstance(whole, str)
        if isinstance(inc, str) != isinstance(whole, str) or (not isinstance(inc, str) and inc != whole):
            differences += 1
            print(f"  DIFFERENCE in blob {blob}: incremental={inc!r:.120} whole={whole!r:.120}")
    print(
        f"{path.name}: cross-check of {len(blobs)} .tf blobs: {differences} differences, "
        f"{errors} parse errors; incremental {t_inc:.1f} s, whole-file {t_whole:.1f} s"
    )
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repo", action="append", type=Path, help="repository (default: the clones in .work/)"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N commits")
    parser.add_argument(
        "--cross-check", action="store_true", help="incremental vs whole-file Terraform parse"
    )
    args = parser.parse_args()
    repos = args.repo or [WORK / name for name in DEFAULT_REPOS if (WORK / name).exists()]
    if not repos:
        print(
            f"no repositories: clone {', '.join(DEFAULT_REPOS)} into {WORK} or pass --repo", file=sys.stderr
        )
        return 2
    print(
        f"python {platform.python_version()}, {platform.machine()}, git "
        f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.split()[-1]}"
    )
    for path in repos:
        bench(path, args.limit)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB")
    if args.cross_check:
        differences = sum(cross_check(path) for path in repos)
        return 1 if differences else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
