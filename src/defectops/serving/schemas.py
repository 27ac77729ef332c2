"""Request and response bodies of the HTTP API (pydantic; they are also the OpenAPI documentation).

Every request body forbids unknown fields, so a misspelt metric is a 422 naming it instead of a silently
missing feature. Metrics must be finite, non-negative numbers given as JSON numbers (strict: ``"12"`` is
refused rather than guessed), because the change metrics of Kamei et al. are counts, ages and entropies.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from defectops.data import CONTRACT, DIFF, MESSAGE, METRIC_NAMES, PATHS, RICH_FEATURES
from defectops.serving.code_fields import CODE_FIELDS, CodeMetricFields

Metric = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
Flag = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, strict=True)]
Sha = Annotated[str, Field(pattern=r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")]


def _integral(value: object) -> object:
    """A JSON number with no fraction (``20.0``) is an integer in JSON Schema, so it is one here too; anything
    else goes on to the strict check (``true`` and ``"20"`` stay refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _timestamp_text(value: object) -> object:
    """A time is an ISO 8601 string, as the schema says (a number is not read as seconds since 1970)."""
    if value is not None and not isinstance(value, (str, datetime)):
        raise ValueError("a time is an ISO 8601 string with a zone")
    return value


#: A time given as an ISO 8601 string.
Timestamp = Annotated[datetime, BeforeValidator(_timestamp_text)]
TopK = Annotated[int, Field(ge=0, le=50, strict=True), BeforeValidator(_integral)]
#: A name that identifies something (a repository, a writer): no control characters (a NUL byte in a
#: logged name breaks every tool that reads it later), at most 255 characters.
Identifier = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
#: A flag given as a JSON boolean (never "yes" or "1": strict) or as a number in [0, 1].
StrictFlag = Annotated[bool, Field(strict=True)] | Flag

#: Fields of :class:`ChangeRecord` a model may use as numeric inputs.
NUMERIC_FIELDS: tuple[str, ...] = (
    *METRIC_NAMES,
    *RICH_FEATURES,
    *CODE_FIELDS,
)  # 14 features, churn, richer, code, Terraform
#: Text inputs a text-aware model may read: fields of :class:`ChangeRecord`, and (hybrid model) the changed
#: lines, which only /v1/commits/score provides (read from the repository, never sent).
TEXT_FIELDS: tuple[str, ...] = (MESSAGE, PATHS, DIFF)
#: Fields that identify a change rather than describe it (never model inputs).
ID_FIELDS: tuple[str, ...] = ("commit_sha", "repo")

#: A revision (a sha, a branch, HEAD~3...) without "..": a dot is never followed by another.
_REV_PART = r"[A-Za-z0-9](?:\.?[A-Za-z0-9_/@{}^~-])*\.?"
#: A range's BASE may not end with a dot, so the schema itself refuses ``BASE...HEAD`` (git's symmetric
#: difference, not a pull request's commits) and a client generating from the OpenAPI cannot send it.
_BASE_PART = r"[A-Za-z0-9](?:\.?[A-Za-z0-9_/@{}^~-])*"
_REVISION = re.compile(_REV_PART)
#: What a revision may be, in words, for the 422 of one that is not (the pattern said nothing to a user).
_REVISION_WORDS = (
    "revisions git knows: a sha, a branch or tag, HEAD~2 (letters, digits and _ / @ { } ^ ~ - ., starting "
    "with a letter or digit; no spaces, no ':')"
)
_REPOSITORY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


#: JSON Schema of the rules between fields that the validators below enforce, so the OpenAPI says them too
#: (schemathesis found schema-valid requests refused by these rules, issue #14).
_SHA_NEEDS_REPO: dict[str, Any] = {
    "anyOf": [
        {"properties": {"commit_sha": {"type": "null"}}},
        {"required": ["repo"], "properties": {"repo": {"type": "string"}}},
    ]
}
_ONE_COMMIT_TARGET: dict[str, Any] = {
    "oneOf": [
        {"required": ["commit"], "properties": {"commit": {"type": "string"}, "range": {"type": "null"}}},
        {"required": ["range"], "properties": {"range": {"type": "string"}, "commit": {"type": "null"}}},
    ]
}
_ONE_FEEDBACK_TARGET: dict[str, Any] = {
    "oneOf": [
        {
            "required": ["prediction_id"],
            "properties": {
                "prediction_id": {"type": "string"},
                "repo": {"type": "null"},
                "commit_sha": {"type": "null"},
            },
        },
        {
            "required": ["repo", "commit_sha"],
            "properties": {
                "prediction_id": {"type": "null"},
                "repo": {"type": "string"},
                "commit_sha": {"type": "string"},
            },
        },
    ]
}
_SHARE_MATCHES_MODE: dict[str, Any] = {
    "anyOf": [
        {"properties": {"mode": {"const": "off"}, "share": {"const": 0}}},
        {
            "required": ["mode", "share"],
            "properties": {"mode": {"enum": ["canary", "shadow"]}, "share": {"exclusiveMinimum": 0}},
        },
    ]
}


class ChangeRecord(CodeMetricFields):
    """The change metrics of one commit (Kamei et al. 2013), as mined by ``defectops mine``, and its code and
    Terraform metrics (``defectops mine --code-metrics``) for a model trained with them.

    Give the metrics the served model uses (``GET /v1/models`` lists them; the OpenAPI of a service with a
    model marks them required); a missing one is a 422. ``repo``
    and ``commit_sha`` are optional; with them, late feedback for the commit finds this prediction.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_SHA_NEEDS_REPO)

    ns: Metric | None = Field(default=None, description="Modified subsystems.")
    nd: Metric | None = Field(default=None, description="Modified directories.")
    nf: Metric | None = Field(default=None, description="Modified files.")
    entropy: Metric | None = Field(default=None, description="Spread of the change over files.")
    la: Metric | None = Field(default=None, description="Lines added.")
    ld: Metric | None = Field(default=None, description="Lines deleted.")
    lt: Metric | None = Field(default=None, description="Lines in the files before the change.")
    fix: StrictFlag | None = Field(
        default=None,
        description="Whether the change fixes a defect: 0 or 1 (true/false accepted, logged as 1.0/0.0).",
    )
    ndev: Metric | None = Field(default=None, description="Developers who changed the files before.")
    age: Metric | None = Field(default=None, description="Days since the files were last changed.")
    nuc: Metric | None = Field(default=None, description="Unique earlier changes of the files.")
    exp: Metric | None = Field(default=None, description="Author's earlier changes.")
    rexp: Metric | None = Field(default=None, description="Author's recent experience.")
    sexp: Metric | None = Field(default=None, description="Author's earlier changes to the subsystems.")
    churn: Metric | None = Field(default=None, description="la + ld (effort).")
    # The mined richer features (#20); `defectops mine` writes them, a model that chose them needs them.
    file_fixes: Metric | None = Field(default=None, description=CONTRACT["file_fixes"].description)
    dir_fixes: Metric | None = Field(default=None, description=CONTRACT["dir_fixes"].description)
    rel_churn: Metric | None = Field(default=None, description=CONTRACT["rel_churn"].description)
    src_churn: Metric | None = Field(default=None, description=CONTRACT["src_churn"].description)
    test_churn: Metric | None = Field(default=None, description=CONTRACT["test_churn"].description)
    doc_churn: Metric | None = Field(default=None, description=CONTRACT["doc_churn"].description)
    build_churn: Metric | None = Field(default=None, description=CONTRACT["build_churn"].description)
    author_30d: Metric | None = Field(default=None, description=CONTRACT["author_30d"].description)
    author_90d: Metric | None = Field(default=None, description=CONTRACT["author_90d"].description)
    src_share: Metric | None = Field(default=None, description=CONTRACT["src_share"].description)
    test_share: Metric | None = Field(default=None, description=CONTRACT["test_share"].description)
    doc_share: Metric | None = Field(default=None, description=CONTRACT["doc_share"].description)
    build_share: Metric | None = Field(default=None, description=CONTRACT["build_share"].description)
    message: str | None = Field(
        default=None, max_length=100_000, description="Commit message (text-aware models only)."
    )
    paths: str | None = Field(
        default=None, max_length=1_000_000, description="Changed paths, one a line (text-aware models only)."
    )
    commit_time: Annotated[AwareDatetime, BeforeValidator(_timestamp_text)] | None = Field(
        default=None,
        description="When the change was authored (with a zone). Not a model input: logged, so monitoring "
        "compares the features that grow with project age at the commit's time rather than the request's.",
    )
    commit_sha: Sha | None = Field(default=None, description="Full sha of the commit (needs repo).")
    repo: Identifier | None = Field(default=None, description="Repository name.")

    @field_validator("fix", mode="before")
    @classmethod
    def _flag_as_number(cls, value: object) -> object:
        """``true``/``false`` become 1.0/0.0 (the feature contract), so both endpoints log one type."""
        return CONTRACT["fix"].normalise(value) if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _sha_needs_repo(self) -> ChangeRecord:
        if self.commit_sha is not None and self.repo is None:
            raise ValueError("commit_sha needs repo: feedback joins predictions on (repo, commit_sha)")
        return self


class PredictRequest(BaseModel):
    """One or many changes to score."""

    model_config = ConfigDict(extra="forbid")

    records: list[ChangeRecord] = Field(
        min_length=1,
        fail_fast=True,  # stop at the first invalid record: rejecting costs no more than one record's errors
        description="The changes, at most the service's batch limit; a 422 reports the first invalid one.",
    )
    top_k: TopK | None = Field(
        default=None, description="Reasons per prediction (0: none, fastest); default: the service's setting."
    )


class ReasonOut(BaseModel):
    """A feature that raised or lowered the risk, in calibrated log-odds (exact TreeSHAP / linear terms)."""

    feature: str
    value: float
    contribution: float
    direction: Literal["raises", "lowers"]


class PredictionOut(BaseModel):
    """One answered prediction."""

    prediction_id: str = Field(description="Id under which the prediction is logged; send feedback with it.")
    probability: float = Field(description="Calibrated probability that the change induces a defect.")
    risk: bool = Field(description="probability >= threshold.")
    risk_band: Literal["minimal", "low", "medium", "high"] = Field(
        description="Against the model's base rate (base_rate): minimal under half of it; low from half of "
        "it to it; medium from once to twice it; high twice it and above (cuts in /v1/models risk_bands)."
    )
    base_rate: float | None = Field(
        description="The model's base rate: the share of defect-inducing changes it was trained on."
    )
    relative_risk: float | None = Field(description="probability / base_rate ('1.4x the base rate').")
    threshold: float
    model_name: str
    model_version: str
    reasons: list[ReasonOut]
    commit_sha: str | None = None
    repo: str | None = None
    cross_project: bool = Field(
        default=False,
        description="Scored by the cross-project starter (trained on other projects, not this repository).",
    )


class PredictResponse(BaseModel):
    predictions: list[PredictionOut]


class CommitScoreRequest(BaseModel):
    """Commits of a configured repository to mine (with the incremental miner state) and score."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=_ONE_COMMIT_TARGET)

    repo: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Repository id from the service's settings."
    )
    commit: str | None = Field(
        default=None, max_length=200, pattern=f"^{_REV_PART}$", description="A sha or revision name."
    )
    range_: str | None = Field(
        default=None,
        alias="range",
        max_length=401,
        pattern=f"^{_BASE_PART}\\.\\.{_REV_PART}$",
        description="BASE..HEAD.",
    )
    top_k: TopK | None = None

    @field_validator("range_", mode="before")
    @classmethod
    def _two_dots(cls, value: object) -> object:
        # Before the pattern, so the answer says what is wrong rather than "should match pattern": git's
        # BASE...HEAD was split at the first two dots and answered "unknown revision '.HEAD'".
        if isinstance(value, str) and "..." in value:
            raise ValueError("range must be BASE..HEAD (two dots), not BASE...HEAD")
        if isinstance(value, str) and ".." not in value:
            raise ValueError(f"range must be BASE..HEAD, got {value[:60]!r}; one revision goes in commit")
        if isinstance(value, str) and not all(_REVISION.fullmatch(part) for part in value.split("..", 1)):
            raise ValueError(f"range must be BASE..HEAD of two {_REVISION_WORDS}")
        return value

    @field_validator("commit", mode="before")
    @classmethod
    def _one_revision(cls, value: object) -> object:
        # The same: the answer was the pattern itself ("String should match pattern '^[A-Za-z0-9](?:...'").
        if isinstance(value, str) and ".." not in value and not _REVISION.fullmatch(value):
            raise ValueError(f"commit must be one of the {_REVISION_WORDS}")
        return value

    @field_validator("repo", mode="before")
    @classmethod
    def _repository_id(cls, value: object) -> object:
        if isinstance(value, str) and not _REPOSITORY_ID.fullmatch(value):
            raise ValueError(
                "repo is a repository id of the service (letters, digits, '_', '.', '-', e.g. "
                "'flask-4f7f71f96c', as defectops serve lists them when it starts), never a path"
            )
        return value

    @model_validator(mode="after")
    def _one_target(self) -> CommitScoreRequest:
        if (self.commit is None) == (self.range_ is None):
            raise ValueError("give exactly one of commit and range")
        if self.commit is not None and ".." in self.commit:
            raise ValueError("commit is one revision; use range for BASE..HEAD")
        if self.range_ is not None and self.range_.count("..") != 1:
            raise ValueError("range must be BASE..HEAD")
        return self


class BlockRiskOut(BaseModel):
    """One Terraform block a commit added or changed, scored by the repository's block-level model
    (``<model name>-blocks``, #17): the record ``defectops predict`` reports for it."""

    prediction_id: str = Field(description="Id under which the block's prediction is logged.")
    path: str
    address: str = Field(description="The block's Terraform address, e.g. module.eks_managed_node_group.")
    change: Literal["added", "changed"]
    first_line: int = Field(description="First line of the block after the commit.")
    last_line: int = Field(description="Last line of the block after the commit.")
    sha: str | None = None
    probability: float = Field(
        description="Calibrated probability that the change to the block induces a defect."
    )
    risk: bool = Field(description="probability >= threshold.")
    risk_band: Literal["minimal", "low", "medium", "high"] = Field(
        description="Against the block model's base rate, cut as for commits."
    )
    base_rate: float | None = Field(
        description="The share of defect-inducing blocks the block model learnt from."
    )
    relative_risk: float | None
    threshold: float
    model_name: str
    model_version: str
    reasons: list[ReasonOut]
    reasons_text: list[str] = Field(description="The reasons in words, as in predict's reports.")
    cross_project: bool = False


class CommitPredictionOut(PredictionOut):
    """One scored commit, with its changed Terraform blocks when the repository has a block-level model."""

    blocks: list[BlockRiskOut] | None = Field(
        default=None,
        description="The commit's added and changed Terraform blocks, riskiest first (absent without a block "
        "model: a repository that is not Terraform, or whose block model has no champion).",
    )


class CommitScoreResponse(BaseModel):
    repo: str
    revision: str
    predictions: list[CommitPredictionOut]
    skipped_merges: list[str] = Field(description="Merge commits of the range (not scored: no own change).")
    block_notes: list[str] | None = Field(
        default=None,
        description="Why Terraform blocks of these commits were not scored, when some were not (e.g. a "
        "shallow clone without the block table's history); absent otherwise.",
    )


class ErrorOut(BaseModel):
    """The body of every refusal the service itself decides (4xx/5xx other than request validation)."""

    detail: str = Field(description="Why, in one line.")


class FeedbackRequest(BaseModel):
    """Ground truth for a prediction id, or for a commit (``repo`` and ``commit_sha``) and all its
    predictions.

    There is no ``source``: the service records who wrote the label (``api:feedback`` or ``api:admin``, the
    role of the token), so a client cannot pass its label off as one from SZZ mining.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_ONE_FEEDBACK_TARGET)

    label: Annotated[int, Field(ge=0, le=1, strict=True), BeforeValidator(_integral)] = Field(
        description="1: defect-inducing, 0: clean."
    )
    prediction_id: str | None = Field(
        default=None,
        max_length=64,
        json_schema_extra={"format": "uuid"},
        description="Id of a logged prediction.",
    )
    repo: Identifier | None = Field(default=None, description="Repository name (with commit_sha).")
    commit_sha: Sha | None = Field(default=None, description="Full sha of the commit (with repo).")
    label_time: Timestamp | None = Field(
        default=None, description="When the truth became known (aware ISO 8601); default: now."
    )


class FeedbackResponse(BaseModel):
    """What was done with a label; ``pending`` when it is stored for a commit none of whose predictions are
    logged yet (labels often arrive before the commit is scored)."""

    feedback_id: int
    status: Literal["recorded", "duplicate", "replaced"]
    replaced_feedback_id: int | None
    matched_predictions: int = Field(
        description="Logged predictions the label applies to now (by id: the prediction and its shadows; by "
        "commit: every prediction logged for this repo and sha)."
    )
    pending: bool = Field(
        description="True when no logged prediction matches yet (only by commit): the label is kept and "
        "applies to the commit's predictions when they are logged, under the same repo and sha; monitoring "
        "and heal read it from then on."
    )


class BandSupportOut(BaseModel):
    band: Literal["minimal", "low", "medium", "high"]
    examples: int = Field(description="Out-of-fold training changes the model put in this band.")
    defects: int = Field(description="How many of them were defect-inducing.")


class RiskBandsOut(BaseModel):
    low: float = Field(
        description="Probability from which a change is 'low' (about half the base rate; 'minimal' below)."
    )
    medium: float = Field(description="Probability from which a change is 'medium' (the base rate).")
    high: float = Field(description="Probability from which a change is 'high' (about twice the base rate).")
    base_rate: float | None = Field(description="Share of defect-inducing changes in the training data.")
    support: list[BandSupportOut] = Field(
        description="The training examples behind each band (empty for a model too small for folds; for a "
        "model saved with three bands, medium and high only)."
    )
    low_derived: bool = Field(
        default=False,
        description="The 'low' cut is half the base rate of a model saved with three bands (before "
        "'minimal'), not checked against its training examples.",
    )


class ModelOut(BaseModel):
    name: str
    version: int
    run_id: str | None
    features: list[str]
    threshold: float
    risk_bands: RiskBandsOut
    scorer: str = Field(description="'booster' (LightGBM fast path), 'explain' or 'proba'.")
    loaded_at: datetime
    artifact_digest: str | None = Field(
        default=None, description="SHA-256 of the artifact files this model was read from."
    )
    cross_project: bool = Field(
        default=False,
        description="The cross-project starter (trained on other projects, not on this repository's labels).",
    )


class TrafficSplit(BaseModel):
    """How the challenger takes part: not at all, answering a share of records, or scored in the shadow."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_SHARE_MATCHES_MODE)

    mode: Literal["off", "canary", "shadow"] = "off"
    share: float = Field(
        default=0.0,
        strict=True,  # a JSON number: false or "0.5" is a 422, not a share
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="canary: share of records the challenger answers; shadow: share it also scores (logged, "
        "not returned). Records are assigned by a hash of their prediction id.",
    )

    @model_validator(mode="after")
    def _share_matches_mode(self) -> TrafficSplit:
        if self.mode == "off" and self.share != 0:
            raise ValueError("mode 'off' takes share 0")
        if self.mode != "off" and self.share == 0:
            raise ValueError(f"mode {self.mode!r} needs a share above 0")
        return self


class ModelsResponse(BaseModel):
    name: str
    ready: bool
    champion: ModelOut | None
    challenger: ModelOut | None
    traffic: TrafficSplit
    generation: int = Field(description="Changes made through the admin API so far (control file).")
    last_error: str | None = Field(
        description="Why the last reload or synchronisation was refused, if it was."
    )
    degraded: str | None = Field(
        default=None,
        description="Why an earlier champion serves instead of the registry's (it did not load at start-up).",
    )


class AdminAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    why: str = Field(min_length=1, max_length=1000, description="Recorded in the registry's audit history.")
    who: str = Field(default="api", min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")


class PromoteRequest(AdminAction):
    version: Annotated[int, Field(ge=1, strict=True), BeforeValidator(_integral)]
    force: bool = Field(default=False, description="Promote even a version whose promotion gate failed.")


class RollbackRequest(AdminAction):
    pass


class HealthOut(BaseModel):
    status: Literal["live", "ready", "degraded", "not ready"]
    detail: str | None = None
    degraded: bool = Field(
        default=False,
        description="The champion does not load; an earlier champion of the audit history serves (200).",
    )
    model_name: str | None = None
    model_version: int | None = None


def require_metrics(document: dict[str, Any], features: Sequence[str]) -> dict[str, Any]:
    """A copy of the OpenAPI ``document`` whose ``ChangeRecord`` requires ``features`` (the served model's
    inputs) as non-null numbers: a record without one of them is a 422 at scoring time, so the contract says
    so, and a client generated from it (or schemathesis) sends them. Without a served model, none is."""
    out = copy.deepcopy(document)
    record = out.get("components", {}).get("schemas", {}).get("ChangeRecord")
    if record is None or not features:
        return out
    properties = record.get("properties", {})
    for name in features:
        field = properties.get(name)
        if field is None:
            continue
        choices = [c for c in field.pop("anyOf", []) if c != {"type": "null"}]
        field.pop("default", None)
        if len(choices) == 1:
            field.update(choices[0])
        elif choices:
            field["anyOf"] = choices
    record["required"] = [name for name in features if name in properties]
    return out


def open_operations(document: dict[str, Any], schemes: Iterable[str]) -> dict[str, Any]:
    """``document`` (changed in place) with authentication optional on every operation secured by ``schemes``
    alone (an empty security requirement is OpenAPI's "or none"): the roles whose token is not configured,
    whose operations are open (scoring without a predict token, the UI's reads without a read token)."""
    open_schemes = set(schemes)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            security = operation.get("security") if isinstance(operation, dict) else None
            if security and {} not in security and all(set(need) <= open_schemes for need in security):
                operation["security"] = [{}, *security]
    return document
