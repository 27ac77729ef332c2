"""The commits page's documents: the riskiest recent commits, and one commit's reasons in context.

The list comes from the prediction log (served predictions of commits, one per commit, riskiest first).
Author and changed paths are not logged; for a repository the service is configured to mine they are read
from git (one ``git log --no-walk`` per page, cached: a commit never changes), so a commit of a repository the
service does not know shows no author and cannot match an author or path filter.

A commit's detail recomputes its reasons with the version that scored it (the same exact scorer the answer
used) and compares each reason's value with its distribution among the defect-inducing and the clean
commits of that version's training reference: the quartiles of both groups and the commit's percentile in
each, as Mozilla's bugbug shows it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from defectops.data import DIFF, LABEL
from defectops.errors import DefectOpsError, InputError
from defectops.serving.ui.models import Explainers, base_rate, input_matrix, text_inputs
from defectops.training import probability_text

if TYPE_CHECKING:
    import pandas as pd

    from defectops.predlog import PredictionRecord
    from defectops.serving.service import PredictionService

BANDS: Final = ("minimal", "low", "medium", "high")
#: Reasons shown for one commit.
TOP_REASONS: Final = 5
#: Commits kept in the git-information cache.
GIT_CACHE: Final = 20_000


@dataclass(frozen=True, slots=True)
class CommitFilter:
    """The list's filters (all optional); ``author`` and ``path`` match case-insensitive substrings."""

    repo: str | None = None
    author: str | None = None
    path: str | None = None
    band: str | None = None
    days: int = 30
    limit: int = 50

    def __post_init__(self) -> None:
        if self.band is not None and self.band not in BANDS:
            raise InputError(f"band must be one of {', '.join(BANDS)}, got {self.band!r}")
        if not 1 <= self.days <= 3660:
            raise InputError(f"days must lie in 1..3660, got {self.days}")
        if not 1 <= self.limit <= 500:
            raise InputError(f"limit must lie in 1..500, got {self.limit}")


@dataclass(frozen=True, slots=True)
class GitInfo:
    author: str
    email: str
    paths: tuple[str, ...]


class GitInfoCache:
    """Author and changed paths of commits of the configured repositories, read from git once each."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], GitInfo | None] = {}
        self._lock = threading.Lock()

    def lookup(self, service: PredictionService, repo: str, shas: list[str]) -> dict[str, GitInfo | None]:
        path = service.repositories.get(repo)
        if path is None:
            return dict.fromkeys(shas)
        with self._lock:
            missing = [sha for sha in shas if (repo, sha) not in self._known]
        found: dict[str, GitInfo | None] = dict.fromkeys(missing)
        if missing:
            found.update(_read_git(path, missing))
            with self._lock:
                if len(self._known) > GIT_CACHE:
                    self._known.clear()
                self._known.update({(repo, sha): info for sha, info in found.items()})
        with self._lock:
            return {sha: self._known.get((repo, sha)) for sha in shas}


def _read_git(path: Any, shas: list[str]) -> dict[str, GitInfo]:
    """One ``git log --no-walk`` for all ``shas``; commits git does not have are left out."""
    from defectops.git import GitRepo

    repo = GitRepo.open(path)
    known = repo.run("cat-file", "--batch-check", stdin="\n".join(shas).encode() + b"\n", check=False)
    lines = [line.split() for line in known.decode().splitlines()]
    present = [parts[0] for parts in lines if len(parts) >= 2 and parts[1] == "commit"]
    if not present:
        return {}
    out = repo.run("log", "--no-walk=unsorted", "--format=%x1e%H%x00%an%x00%ae", "--name-only", *present)
    result: dict[str, GitInfo] = {}
    for block in out.decode("utf-8", "replace").split("\x1e"):
        if not block.strip():
            continue
        head, _, rest = block.partition("\n")
        sha, author, email = [*head.split("\x00"), "", ""][:3]
        result[sha] = GitInfo(author, email, tuple(line for line in rest.splitlines() if line.strip()))
    return result


def commit_url(service: PredictionService, repo: str | None, sha: str | None) -> str | None:
    template = service.serve.repository_urls.get(repo or "")
    return template.replace("{sha}", sha) if template and sha else None


def commit_list(
    service: PredictionService, git: GitInfoCache, filters: CommitFilter, now: datetime
) -> dict[str, Any]:
    """The riskiest served commit predictions of the last ``days``, filtered."""
    narrowing = filters.author is not None or filters.path is not None
    records = service.log.riskiest(
        since=now - timedelta(days=filters.days),
        repo=filters.repo,
        band=filters.band,
        model_name=service.manager.model_name,
        limit=500 if narrowing else filters.limit,
    )
    by_repo: dict[str, list[str]] = {}
    for record in records:
        by_repo.setdefault(str(record.repo), []).append(str(record.commit_sha))
    info = {repo: git.lookup(service, repo, shas) for repo, shas in by_repo.items()}
    rows = []
    for record in records:
        details = info[str(record.repo)].get(str(record.commit_sha))
        if not _matches(details, filters):
            continue
        rows.append(_row(service, record, details))
        if len(rows) >= filters.limit:
            break
    reviews = service.log.reviews([row["prediction_id"] for row in rows])
    latest = {review.prediction_id: review.verdict for review in reviews}
    for row in rows:
        row["review"] = latest.get(row["prediction_id"])
    champion = service.deployment.champion
    return {
        "generated_at": now.isoformat(),
        "filters": {
            "repo": filters.repo,
            "author": filters.author,
            "path": filters.path,
            "band": filters.band,
            "days": filters.days,
        },
        "repositories": sorted(set(service.repositories) | set(by_repo)),
        "base_rate": base_rate(champion) if champion is not None else None,
        "commits": rows,
    }


def _matches(details: GitInfo | None, filters: CommitFilter) -> bool:
    if filters.author is not None:
        needle = filters.author.lower()
        if details is None or (needle not in details.author.lower() and needle not in details.email.lower()):
            return False
    if filters.path is not None:
        needle = filters.path.lower()
        if details is None or not any(needle in path.lower() for path in details.paths):
            return False
    return True


def shown_probability(service: PredictionService, record: PredictionRecord) -> str:
    """The score as every surface shows it beside its band (:func:`defectops.training.probability_text`),
    against the cuts of the version that scored it when the service holds that version (the overview lists
    those cuts); 3 decimals otherwise."""
    deployment = service.deployment
    held = [m for m in (deployment.champion, deployment.challenger) if m is not None]
    bands = next((m.bands for m in held if str(m.version) == record.model_version), None)
    return probability_text(record.score, bands)


def _row(service: PredictionService, record: PredictionRecord, details: GitInfo | None) -> dict[str, Any]:
    return {
        "prediction_id": record.prediction_id,
        "repo": record.repo,
        "commit_sha": record.commit_sha,
        "created_at": record.created_at.isoformat(),
        "model_version": record.model_version,
        "probability": record.score,
        "probability_text": shown_probability(service, record),
        "threshold": record.threshold,
        "risk_band": record.risk_band,
        "author": details.author if details else None,
        "paths": list(details.paths[:8]) if details else [],
        "changed_paths": len(details.paths) if details else None,
        "url": commit_url(service, record.repo, record.commit_sha),
    }


def commit_detail(
    service: PredictionService, explainers: Explainers, git: GitInfoCache, prediction_id: str
) -> dict[str, Any]:
    """One logged prediction with its reasons and their training distributions, and its reviews."""
    record = service.log.get(prediction_id)
    version = int(record.model_version)
    document: dict[str, Any] = {
        "prediction_id": record.prediction_id,
        "repo": record.repo,
        "commit_sha": record.commit_sha,
        "created_at": record.created_at.isoformat(),
        "model_version": record.model_version,
        "probability": record.score,
        "probability_text": shown_probability(service, record),
        "threshold": record.threshold,
        "risk_band": record.risk_band,
        "url": commit_url(service, record.repo, record.commit_sha),
        "reviews": [review.as_dict() for review in service.log.reviews([record.prediction_id])],
    }
    if record.repo and record.commit_sha:
        details = git.lookup(service, record.repo, [record.commit_sha]).get(record.commit_sha)
        document["author"] = details.author if details else None
        document["paths"] = list(details.paths) if details else []
    try:
        model = explainers.model(version)
    except DefectOpsError as exc:
        document.update(base_rate=None, reasons=[], reasons_error=f"v{version} cannot be loaded: {exc}")
        return document
    inputs: list[dict[str, object]] = [dict(record.inputs)]
    if DIFF in model.text_columns:
        changed = _changed_lines(service, record)
        if changed is None:
            document["reasons_error"] = (
                "reasons recomputed without the changed lines, which are never logged and whose repository "
                "this service does not mine: they may differ from the ones served"
            )
        inputs[0][DIFF] = changed or ""
    scores = model.score(input_matrix(model, inputs), text_inputs(model, inputs), TOP_REASONS)
    reference = explainers.reference(version)
    document["base_rate"] = base_rate(model)
    document["reasons"] = [
        {**reason, "distribution": _distribution(reference, str(reason["feature"]), reason["value"])}
        for reason in scores.reasons[0]
    ]
    return document


def _changed_lines(service: PredictionService, record: PredictionRecord) -> str | None:
    """The changed lines a hybrid model read when it scored ``record``'s commit, read again from the clone
    (they are scored, never logged); None when the service does not mine that repository."""
    path = service.repositories.get(record.repo or "")
    if path is None or not record.commit_sha:
        return None
    from defectops.git import GitRepo, changed_lines

    return changed_lines(GitRepo.open(path), [record.commit_sha]).get(record.commit_sha, "")


def _distribution(reference: pd.DataFrame | None, feature: str, value: Any) -> dict[str, Any] | None:
    """Quartiles of ``feature`` among defect-inducing and clean reference commits, and ``value``'s
    percentile in each group (None without a labelled reference holding the feature)."""
    if reference is None or feature not in reference.columns or LABEL not in reference.columns:
        return None
    labels = reference[LABEL]
    column = reference[feature].astype("float64")
    groups: dict[str, Any] = {}
    for name, mask in (("defect", labels == 1), ("clean", labels == 0)):
        values = column[mask.fillna(False).astype(bool)].dropna().to_numpy()
        if not len(values):
            groups[name] = None
            continue
        q10, q25, q50, q75, q90 = np.quantile(values, [0.1, 0.25, 0.5, 0.75, 0.9]).tolist()
        percentile = (
            float((values < value).mean() + 0.5 * (values == value).mean()) * 100.0
            if isinstance(value, int | float)
            else None
        )
        groups[name] = {
            "n": len(values),
            "q10": q10,
            "q25": q25,
            "median": q50,
            "q75": q75,
            "q90": q90,
            "percentile": percentile,
        }
    return groups
