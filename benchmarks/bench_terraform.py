"""#17: change metrics alone vs change + Terraform (+ code) metrics, on Terraform repositories, in one run.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_terraform.py [--repo PATH ...] [--budget-seconds S] [--json OUT]

For each repository (default /work/bench/terraform-aws-{eks,vpc,iam}), in a fresh workspace:

1. mining speed: the change metrics (``Miner.mine``) are timed, then the code and Terraform metrics of every
   non-merge commit (``mine_code_metrics``, parse caches cleared first); printed as commits/s of each pass
   and of both together, and the ratio "without / with block metrics";
2. labels: SZZ as ``defectops run`` does it (90 waiting days, labels as known now);
3. quality: ``train_candidate`` (the training step of ``defectops run``) once per feature set on the same
   commits and labels: the held-out window is the latest 20 % of labelled commits, and the model scored on it
   was trained only on the labels known when that window began (time-ordered, never random). Reported:
   ROC-AUC, PR-AUC, F1, Recall@20% effort, Popt and the other effort-aware metrics of
   :func:`defectops.training.evaluate_predictions`, for ``kamei`` (14 change metrics), ``terraform``
   (+ 37 Terraform block metrics) and ``all`` (+ 13 code metrics).

The machine is shared: timings are floors. Results go to docs/benchmarks.md ("#17 Terraform").
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from defectops.config import Settings, Workspace
from defectops.data import FEATURE_SETS, read_table
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, label_repository
from defectops.mining import MineOptions, Miner, mine_code_metrics, read_code_metrics, with_code_metrics
from defectops.mining.terraform import clear_parse_cache
from defectops.training import CandidateOptions, train_candidate

DEFAULT_REPOS = tuple(f"/work/bench/terraform-aws-{name}" for name in ("eks", "vpc", "iam"))
SETS = ("kamei", "terraform", "all")
SHOWN = ("roc_auc", "pr_auc", "f1", "recall_at_20_effort", "effort_at_20_recall", "popt", "ifa")


def bench_repository(path: Path, budget: float, now: datetime) -> dict[str, Any]:
    clear_parse_cache()
    with tempfile.TemporaryDirectory(prefix="bench-tf-") as tmp:
        workspace = Workspace.from_settings(Settings(workspace=Path(tmp) / "ws")).ensure()
        repo = GitRepo.open(path)
        miner = Miner(repo, workspace, MineOptions())
        began = time.perf_counter()
        mined = miner.mine()
        change_seconds = time.perf_counter() - began
        began = time.perf_counter()
        code = mine_code_metrics(miner)
        code_seconds = time.perf_counter() - began
        commits = with_code_metrics(read_table(mined.dataset), read_code_metrics(miner))
        files = read_table(mined.files_dataset)
        labels = label_repository(repo, workspace, now=now, options=LabelOptions(waiting_days=90)).labels
        quality: dict[str, Any] = {}
        for name in SETS:
            options = CandidateOptions(budget_seconds=budget, features=FEATURE_SETS[name])
            candidate = train_candidate(commits, labels, files, now=now, options=options)
            evaluation = candidate.evaluation.as_dict()
            quality[name] = {key: evaluation.get(key) for key in (*SHOWN, "train_rows", "test_rows")}
        scored = code.commits
        return {
            "repo": path.name,
            "commits": mined.commits,
            "scored_commits": scored,
            "tf_files": code.terraform_files,
            "hcl1_files": code.hcl1_files,
            "failed_files": code.failed_files,
            "failures": code.failures,
            "change_seconds": change_seconds,
            "code_seconds": code_seconds,
            "commits_per_second_without": mined.commits / change_seconds,
            "commits_per_second_with": mined.commits / (change_seconds + code_seconds),
            "slowdown": (change_seconds + code_seconds) / change_seconds,
            "quality": quality,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", type=Path, help="a Terraform repository (repeatable)")
    parser.add_argument(
        "--budget-seconds", type=float, default=0.0, help="tuning budget per model (0: defaults)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    now = datetime.now(UTC)
    results = [bench_repository(p, args.budget_seconds, now) for p in (args.repo or map(Path, DEFAULT_REPOS))]
    print(f"# bench_terraform, {now:%Y-%m-%d}, budget {args.budget_seconds} s per model")
    print("\n## mining speed (commits/s; timings are floors on a shared machine)")
    print(
        "repo | commits | change only | change + code/Terraform | slowdown | .tf files | HCL1 | not measured"
    )
    for r in results:
        print(
            f"{r['repo']} | {r['commits']} | {r['commits_per_second_without']:.1f} "
            f"({r['change_seconds']:.1f} s) | {r['commits_per_second_with']:.2f} ({r['code_seconds']:.1f} s more) | "
            f"{r['slowdown']:.0f}x | {r['tf_files']} | {r['hcl1_files']} | {r['failed_files']}"
        )
    print("\n## held-out window (latest 20 % of labelled commits, trained on labels known before it)")
    print("repo | features | " + " | ".join(SHOWN) + " | train/test rows")
    for r in results:
        base = r["quality"]["kamei"]
        for name in SETS:
            q = r["quality"][name]
            cells = [f"{q[k]:.3f}" if isinstance(q[k], float) else str(q[k]) for k in SHOWN]
            print(f"{r['repo']} | {name} | " + " | ".join(cells) + f" | {q['train_rows']}/{q['test_rows']}")
        for name in SETS[1:]:
            q = r["quality"][name]
            print(
                f"{r['repo']} | {name} vs kamei | ROC-AUC x{q['roc_auc'] / base['roc_auc']:.3f}, "
                f"Recall@20% x{q['recall_at_20_effort'] / max(base['recall_at_20_effort'], 1e-9):.3f}, "
                f"Popt x{q['popt'] / base['popt']:.3f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
