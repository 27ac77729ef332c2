"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning (``github/codeql-action/upload-sarif``).

One rule per risk band (``defectops/high-risk-change`` error, ``medium`` warning, ``low`` and ``minimal``
note) and one result per scored commit in ``min_band`` or above (``medium`` by default: a commit below the
base rate is not worth a code-scanning alert). ``note`` is the lowest level GitHub shows; SARIF keeps ``none``
for results that are not failures of a rule, so ``minimal``, when asked for, is a ``note`` like ``low``. Each
rule's description gives its band's probabilities as multiples of the base rate, and the base rate; each
result's message gives the commit's probability as a multiple of the base rate, and the base rate. A result's
locations are the commit's files with the most churn that still exist after
it (GitHub shows the first), at the first line the commit added there. ``partialFingerprints`` carry the
commit sha, so the same commit scored again (same band, same rule) matches its earlier alert instead of
opening a new one. ``properties`` hold the probability, band, threshold, model and the reasons
(machine-readable and in words).

A commit that only deleted files has nothing left to point at; its result points at the first deleted file
(GitHub then lists the alert without a code view). A commit that changed no file at all (``--allow-empty``)
has no location and is left out of the SARIF file; it still appears in every other format.
"""

from __future__ import annotations

from typing import Any

from defectops import __version__
from defectops.ci.reasons import describe
from defectops.ci.report import CommitPrediction, PredictionReport
from defectops.training import RiskBand, probability_text, relative_text

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "defectops"
#: Where the rules' help points unless the caller knows better (the action passes its own repository).
DEFAULT_INFORMATION_URI = "https://github.com/defectops/defectops"
FINGERPRINT_KEY = "defectopsCommit/v1"

_HELP_TAIL = "The result lists the change metrics that raised or lowered the risk most."
_LEVEL = {RiskBand.HIGH: "error", RiskBand.MEDIUM: "warning", RiskBand.LOW: "note", RiskBand.MINIMAL: "note"}
#: Rule order (and ``ruleIndex``): minimal came last, so the indices of the first three never changed.
_ORDER = (RiskBand.HIGH, RiskBand.MEDIUM, RiskBand.LOW, RiskBand.MINIMAL)


def rule_id(band: RiskBand) -> str:
    return f"defectops/{band.value}-risk-change"


def _rules(report: PredictionReport) -> list[dict[str, Any]]:
    bands = report.model.bands
    advice = {
        RiskBand.HIGH: "Review this change with extra care: it is much riskier than a usual change here.",
        RiskBand.MEDIUM: "Riskier than a usual change here: a second look at the listed reasons is worth it.",
        RiskBand.LOW: "Below the usual risk of a change here.",
        RiskBand.MINIMAL: "Well below the usual risk of a change here: nothing to look at.",
    }
    rules = []
    for band in _ORDER:
        range_text = bands.range_text(band)
        title = f"{band.value.capitalize()} defect risk change"
        rules.append(
            {
                "id": rule_id(band),
                "name": f"{band.value.capitalize()}RiskChange",
                "shortDescription": {"text": title},
                "fullDescription": {
                    "text": f"A commit the just-in-time defect model places in the {band.value} risk band: "
                    f"{range_text}."
                },
                "help": {
                    "text": f"{advice[band]} {_HELP_TAIL}",
                    "markdown": f"**{title}**: {advice[band]} {_HELP_TAIL}",
                },
                "defaultConfiguration": {"level": _LEVEL[band]},
                "properties": {
                    "tags": ["defect-prediction", "just-in-time", "maintainability"],
                    "precision": "medium",
                },
            }
        )
    return rules


def _locations(commit: CommitPrediction) -> list[dict[str, Any]]:
    files = list(commit.hotspots())
    if not files and commit.info.files:
        files = [commit.info.files[0]]
    return [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": max(1, f.first_line)},
            }
        }
        for f in files
    ]


def _message(commit: CommitPrediction, report: PredictionReport) -> str:
    reasons = "; ".join(describe(r) for r in commit.scored.reasons)
    subject = f' "{commit.info.subject}"' if commit.info.subject else ""
    relative = relative_text(commit.scored.probability, report.model.bands)
    text = (
        f"Commit {commit.short_sha}{subject} has a {commit.band.value} defect risk: probability "
        f"{probability_text(commit.scored.probability, report.model.bands)}"
        f"{f', {relative}' if relative else ''} "
        f"(threshold {report.threshold:.3f})."
    )
    if report.model.cross_project:
        text = f"{text} Scored by the cross-project starter model (trained on other projects, not this one)."
    text = f"{text} Reasons: {reasons}." if reasons else text
    return " ".join([text, *(f"Note: {note}." for note in commit.notes)])


def render_sarif(
    report: PredictionReport,
    *,
    information_uri: str = DEFAULT_INFORMATION_URI,
    min_band: RiskBand = RiskBand.MEDIUM,
) -> dict[str, Any]:
    """The SARIF log (a JSON-ready dict) of one predict run: a result per commit in ``min_band`` or above."""
    rule_index = {band: i for i, band in enumerate(_ORDER)}
    reported = _ORDER[: rule_index[min_band] + 1]
    results = []
    skipped = []
    for commit in report.commits:
        if commit.band not in reported:
            continue
        locations = _locations(commit)
        if not locations:
            skipped.append(commit.sha)
            continue
        results.append(
            {
                "ruleId": rule_id(commit.band),
                "ruleIndex": rule_index[commit.band],
                "level": _LEVEL[commit.band],
                "message": {"text": _message(commit, report)},
                "locations": locations,
                "partialFingerprints": {FINGERPRINT_KEY: commit.sha},
                "properties": {
                    "commit": commit.sha,
                    "probability": commit.scored.probability,
                    "riskBand": commit.band.value,
                    "baseRate": commit.scored.known_base_rate,
                    "risk": commit.scored.risk,
                    "threshold": commit.scored.threshold,
                    "model": commit.scored.model_name,
                    "modelVersion": commit.scored.model_version,
                    "crossProject": commit.scored.cross_project,
                    "reasons": [r.as_dict() for r in commit.scored.reasons],
                    "reasonsText": [describe(r) for r in commit.scored.reasons],
                },
            }
        )
    rules = _rules(report)
    if any(c.blocks for c in report.commits):  # the Terraform blocks (#17), with their own rules
        from defectops.ci.formats.blocks import block_results, block_rules

        results += block_results(report, first_rule_index=len(rules), min_band=min_band)
        rules += block_rules()
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": information_uri,
                "rules": rules,
            }
        },
        "columnKind": "utf16CodeUnits",
        "results": results,
        "properties": {
            "model": report.model.describe(),
            "revisions": list(report.revisions),
            "skippedMerges": list(report.skipped_merges),
            "commitsWithoutFiles": skipped,
            "minRiskBand": min_band.value,
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
