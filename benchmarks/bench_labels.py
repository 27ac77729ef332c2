"""Labelling speed and blame agreement on a real repository: the one-pass line tracker vs per-fix ``git blame``.

    .venv/bin/python benchmarks/bench_labels.py --repo benchmarks/.work/labels-numpy [--variant ag]
        [--sample 200] [--seed 1] [--incremental 300]

What it runs, on the same revision:
  1. ``defectops label`` over the whole history from scratch (full pass, into a temporary workspace): wall
     time, CPU time of this process and of its git children, peak RSS;
  2. per-fix ``git blame -w`` (``git blame`` for ``--variant b``) on the parent of a random sample of the
     linked fixes, one blame per file, as SZZ tools do: time per blame, extrapolated to every traced fix;
  3. the agreement of the pass's line attributions with those blames, over every blamed line of the sample
     (the target is at least 98%); disagreements are listed;
  4. with ``--incremental N``: a full pass at the N-th first-parent ancestor, then an incremental run to the
     tip, and a check that its links and labels equal the full pass.
It prints the machine's load so that numbers measured on a shared machine can be judged.
Results go to docs/benchmarks.md ("Labels").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from defectops.config import Workspace
from defectops.git.repo import GitRepo
from defectops.labeling.pipeline import LabelOptions, LabelResult, label_repository
from defectops.labeling.szz import SzzOptions


def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def run_full(
    repo: GitRepo, options: LabelOptions, now: datetime, revision: str | None = None
) -> tuple[LabelResult, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-labels-") as tmp:
        workspace = Workspace(Path(tmp)).ensure()
        opts = (
            options
            if revision is None
            else LabelOptions(szz=options.szz, waiting_days=options.waiting_days, revision=revision)
        )
        cpu0 = _cpu()
        t0 = time.perf_counter()
        result = label_repository(repo, workspace, now=now, options=opts)
        wall = time.perf_counter() - t0
        cpu1 = _cpu()
    return result, {"wall": wall, "cpu_self": cpu1[0] - cpu0[0], "cpu_git": cpu1[1] - cpu0[1]}


def blame_file(
    path: Path, rev: str, file: str, whitespace: bool, ignore_revs: Path | None = None
) -> tuple[list[str], float]:
    args = ["git", "-C", str(path), "blame", "--porcelain"]
    if whitespace:
        args.append("-w")
    if ignore_revs is not None:
        args += ["--ignore-revs-file", str(ignore_revs)]
    t0 = time.perf_counter()
    proc = subprocess.run([*args, rev, "--", file], capture_output=True, check=False)
    seconds = time.perf_counter() - t0
    origins: list[str] = []
    current = ""
    for line in proc.stdout.split(b"\n"):
        if line.startswith(b"\t"):
            origins.append(current)
        elif len(line) > 41 and line[40:41] == b" " and all(c in b"0123456789abcdef" for c in line[:40]):
            current = line[:40].decode()
    return origins, seconds


def agreement(
    repo: GitRepo,
    links: pd.DataFrame,
    sample: int,
    seed: int,
    whitespace: bool,
    ignore_revs: Path | None = None,
) -> dict[str, Any]:
    traced = links[links["evidence"].str.startswith("szz:") & links["inducing_sha"].notna()]
    fixes = sorted(set(traced["fix_sha"]))
    rng = random.Random(seed)
    chosen = rng.sample(fixes, min(sample, len(fixes)))
    by_fix: dict[str, list[Any]] = defaultdict(list)
    for row in traced[traced["fix_sha"].isin(set(chosen))].itertuples():
        by_fix[str(row.fix_sha)].append(row)
    lines = agree = 0
    blames = 0
    blame_seconds = 0.0
    mismatches: list[str] = []
    for fix in chosen:
        files: dict[str, list[Any]] = defaultdict(list)
        for row in by_fix[fix]:
            files[row.path].append(row)
        for file, rows in files.items():
            origins, seconds = blame_file(repo.path, f"{fix}^", file, whitespace, ignore_revs)
            blames += 1
            blame_seconds += seconds
            for row in rows:
                for line in row.lines:
                    lines += 1
                    got = origins[int(line) - 1] if int(line) - 1 < len(origins) else "(no line)"
                    if got == row.inducing_sha:
                        agree += 1
                    elif len(mismatches) < 15:
                        mismatches.append(
                            f"{fix[:10]} {file}:{line} pass={row.inducing_sha[:10]} blame={got[:10]}"
                        )
    traced_files = traced[["fix_sha", "path"]].drop_duplicates()
    per_blame = blame_seconds / blames if blames else 0.0
    return {
        "sampled_fixes": len(chosen),
        "blames": blames,
        "blamed_lines": lines,
        "agreeing_lines": agree,
        "agreement": agree / lines if lines else 1.0,
        "blame_seconds": blame_seconds,
        "seconds_per_blame": per_blame,
        "traced_fixes": len(fixes),
        "traced_fix_files": len(traced_files),
        "extrapolated_blame_seconds": per_blame * len(traced_files),
        "mismatches": mismatches,
    }


def incremental_check(
    repo: GitRepo, options: LabelOptions, now: datetime, back: int, full: LabelResult
) -> dict[str, Any]:
    base = repo.run("rev-parse", f"HEAD~{back}").decode().strip()
    with tempfile.TemporaryDirectory(prefix="bench-labels-inc-") as tmp:
        workspace = Workspace(Path(tmp)).ensure()
        at_base = LabelOptions(szz=options.szz, waiting_days=options.waiting_days, revision=base)
        label_repository(repo, workspace, now=now, options=at_base)
        t0 = time.perf_counter()
        cpu0 = _cpu()
        tip = label_repository(repo, workspace, now=now, options=options)
        wall = time.perf_counter() - t0
        cpu1 = _cpu()
    same_labels = tip.labels.reset_index(drop=True).equals(full.labels.reset_index(drop=True))
    key = ["fix_sha", "path", "inducing_sha", "evidence"]
    a = tip.links.sort_values(key, na_position="first").reset_index(drop=True)
    b = full.links.sort_values(key, na_position="first").reset_index(drop=True)
    same_links = (
        len(a) == len(b)
        and a.drop(columns=["lines"]).equals(b.drop(columns=["lines"]))
        and all(list(x) == list(y) for x, y in zip(a["lines"], b["lines"], strict=True))
    )
    return {
        "base": base,
        "mode": tip.summary.mode,
        "new_commits": tip.summary.new_commits,
        "wall": wall,
        "cpu_self": cpu1[0] - cpu0[0],
        "cpu_git": cpu1[1] - cpu0[1],
        "lazy_files": tip.summary.pass_stats.lazy_files,
        "labels_equal_full": bool(same_labels),
        "links_equal_full": bool(same_links),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--variant", choices=["ag", "b"], default="ag")
    parser.add_argument("--sample", type=int, default=200, help="fixes to blame one by one")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--incremental", type=int, default=0, help="also time an incremental run of N commits"
    )
    parser.add_argument(
        "--no-ignore-revs", action="store_true", help="do not use .git-blame-ignore-revs (AG-SZZ uses it)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    repo = GitRepo.open(args.repo)
    now = datetime.now(UTC)
    ignore_name = None if args.no_ignore_revs or args.variant == "b" else ".git-blame-ignore-revs"
    options = LabelOptions(szz=SzzOptions(variant=args.variant, ignore_revs_file=ignore_name))
    report: dict[str, Any] = {
        "repo": str(repo.path),
        "head": repo.resolve("HEAD"),
        "variant": args.variant,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": _load(),
    }
    say = (lambda *_: None) if args.json else (lambda text: print(text, flush=True))
    say(f"repository      {report['repo']} @ {report['head'][:12]} ({report['variant']}-SZZ)")
    say(f"machine         {report['machine']}; {report['date']}")
    say(f"load            before: {report['load_before']}")

    result, timing = run_full(repo, options, now)
    summary = result.summary.as_dict()
    full = report["full"] = {
        **timing,
        "commits": summary["commits"],
        "fixes": summary["new_fixes"],
        "linked_fixes": summary["new_linked_fixes"],
        "links": summary["links_total"],
        "unlinkable": summary["new_unlinkable"],
        "labels": summary["labels"],
        "pass": summary["pass"],
        "seconds": summary["seconds"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    report["load_after_pass"] = _load()
    report["ignored_revs"] = summary["ignored_revs"]
    say(
        f"one pass        {full['wall']:.1f} s wall; CPU {full['cpu_self']:.1f} s python + {full['cpu_git']:.1f} s git"
        f" children; peak RSS {full['peak_rss_mb']:.0f} MB; {report['load_after_pass']}"
    )
    say(
        f"                {full['commits']:,} commits ({full['pass']['merges']:,} merges, "
        f"{full['pass']['merge_files_resolved']:,} merged files changed on both sides, "
        f"{full['pass']['merge_files_aligned_here']:,} without git's diff), {full['fixes']:,} fixes, "
        f"{full['linked_fixes']:,} linked, {full['links']:,} links; unlinkable {full['unlinkable']}"
    )
    say(f"                labels {full['labels']}; desync hunks {full['pass']['desync_hunks']}")
    say(f"ignore-revs     {report['ignored_revs']} commits ignored (the blame below uses the same list)")

    with tempfile.NamedTemporaryFile("wb", suffix=".ignore-revs") as handle:
        ignore_file: Path | None = None
        if summary["ignored_revs"] and ignore_name is not None:
            # Blame with the same list the pass used, so that like is compared with like.
            on_disk = repo.path / ignore_name
            data = on_disk.read_bytes() if on_disk.is_file() else repo.run("show", f"HEAD:{ignore_name}")
            handle.write(data)
            handle.flush()
            ignore_file = Path(handle.name)
        blame = report["blame"] = agreement(
            repo, result.links, args.sample, args.seed, args.variant == "ag", ignore_file
        )
    flag = "-w " if args.variant == "ag" else ""
    say(
        f"per-fix blame   {blame['blames']} `git blame {flag}` runs for {blame['sampled_fixes']} fixes: "
        f"{1000 * blame['seconds_per_blame']:.0f} ms per file; all {blame['traced_fix_files']:,} traced files "
        f"of {blame['traced_fixes']:,} fixes -> {blame['extrapolated_blame_seconds']:.0f} s "
        f"({blame['extrapolated_blame_seconds'] / max(full['wall'], 1e-9):.1f}x the pass)"
    )
    say(
        f"agreement       {blame['agreeing_lines']:,} of {blame['blamed_lines']:,} blamed lines = "
        f"{100 * blame['agreement']:.2f}% (target >= 98%)"
    )
    for line in blame["mismatches"]:
        say(f"                  differs: {line}")
    if args.incremental:
        inc = report["incremental"] = incremental_check(repo, options, now, args.incremental, result)
        say(
            f"incremental     {inc['new_commits']:,} new commits after {inc['base'][:12]} ({inc['mode']}): "
            f"{inc['wall']:.1f} s wall, CPU {inc['cpu_self']:.1f} s + {inc['cpu_git']:.1f} s git; "
            f"{inc['lazy_files']:,} files loaded with blame; labels equal full: {inc['labels_equal_full']}, "
            f"links equal full: {inc['links_equal_full']}"
        )
    report["load_after"] = _load()
    say(f"load            after: {report['load_after']}")
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        print()


if __name__ == "__main__":
    main()
