"""The service's A/B split, judged (issue #20): is the challenger's difference from the champion real yet?

The prediction log says which arm answered each request (:mod:`defectops.predlog`): ``served`` rows are the
answers, and a ``shadow_of`` row is the challenger scoring a request the champion answered (shadow mode).
In canary mode a share of requests is *served* by the challenger, so the log holds served rows of two
versions. :func:`ab_test` finds the arms in a window of the log and tests them with
:mod:`defectops.training` (``delong_paired`` on shadow pairs, ``delong_unpaired`` on canary arms, the
flag-rate and score-distribution proxies while labels are pending). Only labels dated at or before ``now``
count (matured), and, given when each version learnt its labels, only those dated after the later of the two
arms learnt theirs (:func:`defectops.predlog.unlearnt`: a request for an older commit carries a label one arm
may have trained on, which favours it); the verdict stays "not yet significant" until the label test's
p-value is below alpha.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from defectops.errors import InputError
from defectops.predlog import PredictionLog, matured, unlearnt
from defectops.training import (
    TestResult,
    delong_paired,
    delong_unpaired,
    score_shift,
    two_proportion_test,
)

Mode = Literal["shadow", "canary", "none"]

#: When a version of a model learnt its labels, given the model's name and the version (None: it learnt none
#: of this repository's, the cross-project starter): ``ModelRegistry.labels_learnt_at``.
LearntAt = Callable[[str, str], datetime | None]


@dataclass(frozen=True, slots=True)
class ABResult:
    """The A/B comparison of one window of the log: arms, counts, tests and the verdict in words."""

    model_name: str | None
    mode: Mode
    version_a: str | None
    version_b: str | None
    since: datetime
    until: datetime
    n_a: int
    n_b: int
    matured: int
    matured_defective: int
    labels: TestResult | None
    flag_rate: TestResult | None
    scores: TestResult | None
    verdict: str
    #: Matured labels left out because they were known when one of the arms learnt its labels.
    known_when_trained: int = 0

    @property
    def significant(self) -> bool:
        return self.labels is not None and self.labels.significant

    def as_dict(self) -> dict[str, Any]:
        shadow = self.mode == "shadow"
        role_a, role_b = ("champion", "challenger") if shadow else ("older version", "newer version")
        return {
            "model_name": self.model_name,
            "mode": self.mode,
            "a": {"version": self.version_a, "role": role_a, "predictions": self.n_a},
            "b": {"version": self.version_b, "role": role_b, "predictions": self.n_b},
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "matured_labels": self.matured,
            "matured_defective": self.matured_defective,
            "known_when_trained": self.known_when_trained,
            "labels_test": None if self.labels is None else self.labels.as_dict(),
            "proxy_flag_rate": None if self.flag_rate is None else self.flag_rate.as_dict(),
            "proxy_scores": None if self.scores is None else self.scores.as_dict(),
            "significant": self.significant,
            "verdict": self.verdict,
        }


def _evidence(frame: pd.DataFrame, now: datetime, learnt: datetime | None) -> pd.DataFrame:
    """The rows of ``frame`` whose label has matured and was not known at ``learnt``."""
    return unlearnt(matured(frame, now), learnt)


def _later(model: str, a: str, b: str, learnt_at: LearntAt | None) -> datetime | None:
    """When the later of versions ``a`` and ``b`` learnt its labels (None: neither learnt any, or unknown)."""
    if learnt_at is None:
        return None
    times = [t for t in (learnt_at(model, a), learnt_at(model, b)) if t is not None]
    return max(times) if times else None


def _flags(frame: pd.DataFrame) -> int:
    return int((frame["score"].astype("float64") >= frame["threshold"].astype("float64")).sum())


def shadow_pairs(frame: pd.DataFrame) -> tuple[pd.DataFrame, str, str] | None:
    """Shadow rows joined with the served answer they shadow (``score_a`` champion, ``score_b`` challenger),
    for the most common (served version, shadow version) pair; None without shadow rows."""
    shadow = frame.loc[~frame["served"].astype(bool) & frame["shadow_of"].notna()]
    served = frame.loc[frame["served"].astype(bool)]
    partner = served.loc[:, ["prediction_id", "model_version", "score", "threshold"]].rename(
        columns={"prediction_id": "shadow_of", "model_version": "version_a", "score": "score_a",
                 "threshold": "threshold_a"}
    )  # fmt: skip
    pairs = shadow.merge(partner, on="shadow_of", how="inner", validate="many_to_one")
    if pairs.empty:
        return None
    pairs = pairs.rename(
        columns={"score": "score_b", "threshold": "threshold_b", "model_version": "version_b"}
    )
    top = pairs.groupby(["version_a", "version_b"]).size().sort_values(ascending=False).index[0]
    chosen = pairs.loc[(pairs["version_a"] == top[0]) & (pairs["version_b"] == top[1])]
    return chosen.reset_index(drop=True), str(top[0]), str(top[1])


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (10**12, version)


def ab_test(
    log: PredictionLog,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    model_name: str | None = None,
    learnt_at: LearntAt | None = None,
) -> ABResult:
    """The A/B test of the predictions created in ``[since, until)`` (module docstring). ``learnt_at`` says
    when each version learnt its labels; without it every matured label counts."""
    if since >= until:
        raise InputError("the A/B window is empty: since must be before until")
    frame = log.window(since, until, model_name=model_name, as_of=now)
    if model_name is None and len(frame) and frame["model_name"].nunique() > 1:
        # Versions are numbered per model: two repositories' v1 in one workspace's log are not one arm, and
        # one model's v1 against another's v2 is no A/B test (validate --ab mixed them into a "canary").
        names = ", ".join(sorted(str(name) for name in frame["model_name"].unique()))
        raise InputError(
            f"the prediction log holds predictions of several models ({names}): choose one with --model-name"
        )
    base: dict[str, Any] = {"model_name": model_name, "since": since, "until": until}
    paired = shadow_pairs(frame) if len(frame) else None
    model = model_name or (str(frame["model_name"].iloc[0]) if len(frame) else "")
    if paired is not None:
        pairs, version_a, version_b = paired
        learnt = _later(model, version_a, version_b, learnt_at)
        return _shadow_result(pairs, version_a, version_b, now, learnt, base)
    served = frame.loc[frame["served"].astype(bool)] if len(frame) else frame
    versions = sorted({str(v) for v in served["model_version"]}, key=_version_key) if len(served) else []
    if len(versions) < 2:
        why = (
            "no A/B split in the log: "
            + (f"every served prediction came from v{versions[0]}" if versions else "no served predictions")
            + ("" if versions or model_name is None else f" of {model_name!r}")
            + " and none was shadowed (defectops serve: PUT /v1/traffic mode shadow or canary)"
        )
        return ABResult(mode="none", version_a=versions[0] if versions else None, version_b=None,
                        n_a=len(served), n_b=0, matured=0, matured_defective=0, labels=None,
                        flag_rate=None, scores=None, verdict=why, **base)  # fmt: skip
    counts = served["model_version"].astype(str).value_counts()
    version_a, version_b = sorted(counts.index[:2], key=_version_key)
    learnt = _later(model, str(version_a), str(version_b), learnt_at)
    return _canary_result(served, str(version_a), str(version_b), now, learnt, base)


def _shadow_result(
    pairs: pd.DataFrame,
    version_a: str,
    version_b: str,
    now: datetime,
    learnt: datetime | None,
    base: dict[str, Any],
) -> ABResult:
    ripe = len(matured(pairs, now))
    evidence = _evidence(pairs, now, learnt)
    labels = None
    if len(evidence) and evidence["label"].nunique() == 2:
        y = evidence["label"].to_numpy(dtype=np.float64)
        labels = delong_paired(y, evidence["score_a"].to_numpy(float), evidence["score_b"].to_numpy(float))
    flags_a = int((pairs["score_a"] >= pairs["threshold_a"]).sum())
    flags_b = int((pairs["score_b"] >= pairs["threshold_b"]).sum())
    flag_rate = two_proportion_test(flags_a, len(pairs), flags_b, len(pairs))
    scores = score_shift(pairs["score_a"].to_numpy(float), pairs["score_b"].to_numpy(float), paired=True)
    return ABResult(
        mode="shadow", version_a=version_a, version_b=version_b, n_a=len(pairs), n_b=len(pairs),
        matured=len(evidence), matured_defective=int(evidence["label"].sum()) if len(evidence) else 0,
        labels=labels, flag_rate=flag_rate, scores=scores,
        verdict=verdict(labels, flag_rate, scores, len(evidence), version_a, version_b),
        known_when_trained=ripe - len(evidence), **base,
    )  # fmt: skip


def _canary_result(
    served: pd.DataFrame,
    version_a: str,
    version_b: str,
    now: datetime,
    learnt: datetime | None,
    base: dict[str, Any],
) -> ABResult:
    arm_a = served.loc[served["model_version"].astype(str) == version_a]
    arm_b = served.loc[served["model_version"].astype(str) == version_b]
    ripe = len(matured(arm_a, now)) + len(matured(arm_b, now))
    ripe_a, ripe_b = _evidence(arm_a, now, learnt), _evidence(arm_b, now, learnt)
    labels = None
    if len(ripe_a) and len(ripe_b) and ripe_a["label"].nunique() == 2 and ripe_b["label"].nunique() == 2:
        labels = delong_unpaired(
            ripe_a["label"].to_numpy(float), ripe_a["score"].to_numpy(float),
            ripe_b["label"].to_numpy(float), ripe_b["score"].to_numpy(float),
        )  # fmt: skip
    flag_rate = two_proportion_test(_flags(arm_a), len(arm_a), _flags(arm_b), len(arm_b))
    scores = score_shift(arm_a["score"].to_numpy(float), arm_b["score"].to_numpy(float), paired=False)
    counted = len(ripe_a) + len(ripe_b)
    defective = int(ripe_a["label"].sum() + ripe_b["label"].sum()) if counted else 0
    return ABResult(
        mode="canary", version_a=version_a, version_b=version_b, n_a=len(arm_a), n_b=len(arm_b),
        matured=counted, matured_defective=defective, labels=labels, flag_rate=flag_rate, scores=scores,
        verdict=verdict(labels, flag_rate, scores, counted, version_a, version_b),
        known_when_trained=ripe - counted, **base,
    )  # fmt: skip


def verdict(
    labels: TestResult | None,
    flag_rate: TestResult | None,
    scores: TestResult | None,
    matured: int,
    version_a: str,
    version_b: str,
) -> str:
    """The answer in one sentence: significant only on matured labels; proxies are reported as proxies."""
    if labels is not None and labels.significant:
        side = "better" if labels.difference > 0 else "worse"
        return (
            f"significant: v{version_b} ranks {side} than v{version_a} on {matured} matured labels "
            f"(ROC-AUC {labels.b:.3f} vs {labels.a:.3f}, {labels.name} p={labels.p_value:.3g})"
        )
    if labels is None:
        head = f"not yet significant: {matured} matured labels, both classes needed for a ROC-AUC test"
    else:
        need = "no sample size detects a zero difference" if labels.needed is None else (
            f"about {labels.needed:,} matured labels needed at 80% power for the observed difference"
        )  # fmt: skip
        head = (
            f"not yet significant: ROC-AUC {labels.b:.3f} vs {labels.a:.3f} (difference "
            f"{labels.difference:+.3f}, p={labels.p_value:.3g}) on {matured} matured labels; {need}"
        )
    proxies = []
    if flag_rate is not None and flag_rate.significant:
        proxies.append(f"flag rate {flag_rate.b:.1%} vs {flag_rate.a:.1%} (p={flag_rate.p_value:.3g})")
    if scores is not None and scores.significant:
        proxies.append(f"score distributions differ ({scores.name}, p={scores.p_value:.3g})")
    if proxies:
        head += "; the arms behave differently (proxy, not quality): " + ", ".join(proxies)
    return head
