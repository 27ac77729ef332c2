"""#17: the block-level model on Terraform repositories, evaluated over time.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_terraform_blocks.py [--repo PATH ...] [--json OUT]

For each repository (default /work/bench/terraform-aws-{eks,vpc,iam}), one after the other, in a fresh
workspace:

1. labels: SZZ as ``defectops run`` does it (AG-SZZ, 90 waiting days, labels as known now);
2. block links: the traced lines of ``.tf`` files placed in the block that held them at the inducing commit
   (:func:`defectops.labeling.block_links`, timed, with what was dropped and why);
3. block features of every changed block (:func:`defectops.mining.block_features`, timed, parse caches
   cleared first);
4. the block-level model (:func:`defectops.training.evaluate_block_model`): held-out window = the labelled
   blocks of the latest 20 % of commits with labelled blocks; trained only on blocks made 90 days before
   it, with the labels known when it began; LightGBM defaults (no hyperparameter chosen on any data);
   ROC-AUC, PR-AUC, Recall@20% effort (effort = block churn), Effort@20% recall, Popt, IFA.

The machine is shared: timings are floors. Results go to docs/benchmarks.md ("#17 Terraform").
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from defectops.config import Settings, Workspace
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, block_links, label_repository
from defectops.mining import block_features
from defectops.mining.terraform_blocks import clear_span_cache
from defectops.training import evaluate_block_model

DEFAULT_REPOS = tuple(f"/work/bench/terraform-aws-{name}" for name in ("eks", "vpc", "iam"))
SHOWN = ("roc_auc", "pr_auc", "recall_at_20_effort", "effort_at_20_recall", "popt", "ifa")


def bench_repository(path: Path, now: datetime) -> dict[str, Any]:
    clear_span_cache()
    with tempfile.TemporaryDirectory(prefix="bench-tfb-") as tmp:
        workspace = Workspace.from_settings(Settings(workspace=Path(tmp) / "ws")).ensure()
        repo = GitRepo.open(path)
        began = time.perf_counter()
        labels = label_repository(repo, workspace, now=now, options=LabelOptions(waiting_days=90))
        label_seconds = time.perf_counter() - began
        began = time.perf_counter()
        links, stats = block_links(repo, labels.links)
        link_seconds = time.perf_counter() - began
        began = time.perf_counter()
        features = block_features(repo)
        feature_seconds = time.perf_counter() - began
        blocks = features.frame
        evaluation = evaluate_block_model(blocks, links, now=now)
        return {
            "repo": path.name,
            "commits": features.commits,
            "tf_file_changes": features.tf_files,
            "unread_files": features.unread_files,
            "block_rows": len(blocks),
            "block_changes": blocks["change"].value_counts().to_dict(),
            "szz_links": len(labels.links),
            "block_links": len(links),
            "link_stats": stats.as_dict(),
            "label_seconds": label_seconds,
            "link_seconds": link_seconds,
            "feature_seconds": feature_seconds,
            "evaluation": evaluation.as_dict(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", type=Path, help="a Terraform repository (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    now = datetime.now(UTC)
    results = []
    for path in args.repo or map(Path, DEFAULT_REPOS):
        results.append(bench_repository(path, now))
        print(f"done {path.name}: load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"# bench_terraform_blocks, {now:%Y-%m-%d %H:%M} UTC")
    print("\n## labels and features (timings are floors on a shared machine)")
    print("repo | commits | block rows | SZZ links | block links | traced .tf lines mapped | dropped | s")
    for r in results:
        s = r["link_stats"]
        print(
            f"{r['repo']} | {r['commits']} | {r['block_rows']} {r['block_changes']} | {r['szz_links']} | "
            f"{r['block_links']} | {s['mapped_lines']}/{s['lines']} | {s['dropped']} | "
            f"SZZ {r['label_seconds']:.1f}, block links {r['link_seconds']:.1f}, "
            f"block features {r['feature_seconds']:.1f} (unread file versions {r['unread_files']})"
        )
    print("\n## block-level model, held-out window (latest 20 % of commits with labelled blocks)")
    print("repo | " + " | ".join(SHOWN) + " | train (defective) / test (defective) | test commits | window")
    for r in results:
        e = r["evaluation"]
        cells = [f"{e[k]:.3f}" if isinstance(e[k], float) else str(e[k]) for k in SHOWN]
        print(
            f"{r['repo']} | " + " | ".join(cells) + f" | {e['train_rows']} ({e['train_defective']}) / "
            f"{e['test_rows']} ({e['test_defective']}) | {e['test_commits']} | {e['window'][0]} .. "
            f"{e['window'][1]}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
