"""Which features the main job trains on (``defectops run --features``), and why.

``kamei`` is the 14 change metrics; ``code`` adds the code metrics of the changed source files, ``terraform``
the Terraform block metrics of the changed ``.tf`` files, ``all`` both (docs/metrics.md). ``auto`` (the
default) looks at the history: a repository where at least :data:`IAC_SHARE` of the non-merge commits change
a ``.tf`` file is infrastructure as code, and gets ``all``; any other gets ``kamei``, so an application
repository pays nothing for blob parsing it would not use.

Why commits and 20 %: in the Terraform modules measured (terraform-aws-eks, -vpc, -iam) 59, 52 and 49 %
of the non-merge commits change a ``.tf`` file (the rest are releases, docs and CI); an application that
keeps its deployment in a ``terraform/`` folder changes it in a few percent of its commits. 20 % sits between
the two with room on both sides; a share of files would be skewed by commits that touch hundreds of files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from defectops.data import FEATURE_SETS
from defectops.errors import InputError
from defectops.mining import (
    COMMIT_COLUMNS,
    CodeMineResult,
    Miner,
    mine_code_metrics,
    read_code_metrics,
    with_code_metrics,
)

#: The choices of ``--features``: ``auto`` and the named sets of :data:`defectops.data.FEATURE_SETS`.
FEATURE_CHOICES: Final[tuple[str, ...]] = ("auto", *FEATURE_SETS)
#: The share of non-merge commits changing a ``.tf`` file from which ``auto`` treats a repository as IaC.
IAC_SHARE: Final = 0.20
#: Below this many non-merge commits ``auto`` does not decide on a share (a handful of commits says little).
IAC_MIN_COMMITS: Final = 10


@dataclass(frozen=True, slots=True)
class FeatureChoice:
    """The feature set a run uses (``name``, one of :data:`FEATURE_SETS`), its columns, and why."""

    name: str
    requested: str
    features: tuple[str, ...]
    reason: str
    terraform_share: float

    @property
    def needs_code_metrics(self) -> bool:
        """Whether the set has code or Terraform columns (so the code-metrics dataset must be mined)."""
        return self.name != "kamei"

    def as_dict(self) -> dict[str, Any]:
        return {
            "set": self.name,
            "requested": self.requested,
            "features": list(self.features),
            "count": len(self.features),
            "reason": self.reason,
            "terraform_share": round(self.terraform_share, 4),
        }


def check_choice(requested: str) -> str:
    """``requested`` if it is a known choice, else a one-line InputError naming the choices."""
    if requested not in FEATURE_CHOICES:
        raise InputError(f"unknown feature set {requested!r}: choose one of {', '.join(FEATURE_CHOICES)}")
    return requested


def terraform_share(commits: pd.DataFrame, files: pd.DataFrame) -> tuple[float, int]:
    """(share of non-merge commits that change at least one ``.tf`` file, number of non-merge commits)."""
    scored = commits.loc[~commits["is_merge"].astype(bool), "sha"].astype(str)
    if scored.empty:
        return 0.0, 0
    paths = files["path"].astype(str)
    tf_shas = set(files.loc[paths.str.lower().str.endswith(".tf"), "sha"].astype(str))
    return float(scored.isin(tf_shas).mean()), len(scored)


def choose_features(requested: str, commits: pd.DataFrame, files: pd.DataFrame) -> FeatureChoice:
    """The feature set for ``requested`` (``auto`` decides from the share of ``.tf`` changes)."""
    check_choice(requested)
    share, scored = terraform_share(commits, files)
    described = f"{share:.0%} of {scored} non-merge commits change a .tf file"
    if requested != "auto":
        name, reason = requested, f"asked for with --features {requested} ({described})"
    elif scored >= IAC_MIN_COMMITS and share >= IAC_SHARE:
        name = "all"
        reason = (
            f"infrastructure as code: {described} "
            f"(auto uses change + Terraform + code metrics from {IAC_SHARE:.0%})"
        )
    else:
        name = "kamei"
        reason = f"not infrastructure as code: {described} (auto adds Terraform metrics from {IAC_SHARE:.0%})"
    return FeatureChoice(
        name=name, requested=requested, features=FEATURE_SETS[name], reason=reason, terraform_share=share
    )


def with_feature_columns(
    miner: Miner,
    commits: pd.DataFrame,
    needed: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, CodeMineResult | None]:
    """``commits`` with the code and Terraform columns joined on when ``needed`` has any (mining the
    code-metrics dataset first: only commits not measured before are read), and what that pass did."""
    if not any(name in COMMIT_COLUMNS for name in needed):
        return commits, None
    result = mine_code_metrics(miner, progress=progress)
    return with_code_metrics(commits, read_code_metrics(miner)), result
