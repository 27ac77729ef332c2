"""Every output format of ``defectops predict``, rendered from one hand-built report and checked exactly.

The report has one commit per situation a renderer must handle: a high-risk commit whose subject carries
markdown/HTML characters, a medium one with a mention, a percent sign and a comma in its file name, a low one
that only deleted a file, an empty commit (no file at all), and a merge commit that was not scored.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from defectops import __version__
from defectops.ci.changes import ChangedFile, CommitInfo
from defectops.ci.formats.github import append_summary, escape_data, escape_property, render_github
from defectops.ci.formats.jsondoc import render_json
from defectops.ci.formats.markdown import escape, render_markdown
from defectops.ci.formats.sarif import FINGERPRINT_KEY, SARIF_SCHEMA, render_sarif
from defectops.ci.formats.table import render_table
from defectops.ci.model_source import ModelSource
from defectops.ci.report import CommitPrediction, FailOn, PredictionReport
from defectops.training.models import JITModel
from defectops.training.risk import Reason, RiskBand, RiskBands, Scored

HIGH = "1111111111112222222222223333333333334444"
MEDIUM = "2222222222223333333333334444444444445555"
LOW = "3333333333334444444444445555555555556666"
EMPTY = "4444444444445555555555556666666666667777"
MERGE = "9999999999998888888888887777777777776666"


def _commit(
    sha: str,
    probability: float,
    band: RiskBand,
    subject: str,
    files: tuple[ChangedFile, ...],
    *reasons: Reason,
) -> CommitPrediction:
    scored = Scored(
        probability=probability,
        risk=probability >= 0.5,
        band=band,
        threshold=0.5,
        model_name="jit",
        model_version="7",
        reasons=reasons,
        sha=sha,
        base_rate=0.2,
    )
    info = CommitInfo(
        sha=sha, subject=subject, author_name="Bob", author_email="bob@example.com", files=files
    )
    return CommitPrediction(scored=scored, info=info, features={"la": 1.0})


@pytest.fixture
def report(tiny_model: JITModel) -> PredictionReport:
    source = ModelSource(
        model=tiny_model,
        name="jit",
        version="7",
        threshold=0.5,
        bands=RiskBands(low=0.1, medium=0.2, high=0.4, base_rate=0.2),
        origin="models:/jit/7",
    )
    commits = (
        _commit(
            HIGH, 0.912, RiskBand.HIGH, "Add parser | fast <b>",
            (
                ChangedFile("src/parser.py", None, "A", 800, 0, False, 1),
                ChangedFile("src/app.py", None, "M", 12, 0, False, 21),
                ChangedFile("old.txt", None, "D", 0, 5, False, 1),
                ChangedFile("README", None, "M", 1, 0, False, 3),
            ),
            Reason("la", 812.0, 1.25, level="high"), Reason("nf", 2.0, -0.1, level="low"),
        ),
        _commit(
            MEDIUM, 0.3, RiskBand.MEDIUM, "Use @bob's helper, 50% faster",
            (ChangedFile("lib/a,b.py", None, "M", 3, 1, False, 7),),
            Reason("exp", 3.0, 0.2),
        ),
        _commit(LOW, 0.16, RiskBand.LOW, "Docs", (ChangedFile("docs/old.md", None, "D", 0, 4, False, 1),)),
        _commit(EMPTY, 0.04, RiskBand.MINIMAL, "Empty _marker_", ()),
    )  # fmt: skip
    return PredictionReport(
        repo="/work/repo",
        revisions=("base..head",),
        model=source,
        threshold=0.5,
        commits=commits,
        skipped_merges=(MERGE,),
        fail_on=FailOn.MEDIUM,
    )


def test_markdown_is_exactly_the_pull_request_comment(report: PredictionReport) -> None:
    expected = "\n".join(
        [
            "<!-- defectops:predict -->",
            "### Defect risk: 1 high, 1 medium, 1 low, 1 minimal",
            "",
            "Model `jit` version 7, threshold 0.500; risk bands: base rate 20.0%; low from 0.100 (0.5x), medium from "
            "0.200 (1x), high from 0.400 (2x the base rate).",
            "",
            "| Commit | Subject | Risk | Probability | vs base rate (20.0%) | Top reasons |",
            "| --- | --- | --- | --- | --- | --- |",
            "| `111111111111` | Add parser \\| fast &lt;b&gt; | high | 0.912 | 4.5x | many lines added (la=812) raised the "
            "risk; few files changed (nf=2) lowered the risk |",
            "| `222222222222` | Use &#64;bob's helper, 50% faster | medium | 0.300 | 1.5x | the author's experience (exp=3) "
            "raised the risk |",
            "| `333333333333` | Docs | low | 0.160 | 0.8x | - |",
            "| `444444444444` | Empty \\_marker\\_ | minimal | 0.040 | 0.2x | - |",
            "",
            "Not scored: 1 merge commit (`999999999999`); their changes are scored in the commits they merge.",
            "",
            "Fail-on `medium`: 2 commits reached it: `111111111111`, `222222222222`.",
            "",
        ]
    )
    assert render_markdown(report) == expected


def test_markdown_escape() -> None:
    assert escape("a|b\nc `x` *y* [l](u) <i> @me & ~s~ \\") == (
        "a\\|b c \\`x\\` \\*y\\* \\[l\\](u) &lt;i&gt; &#64;me &amp; \\~s\\~ \\\\"
    )


def test_sarif_has_the_required_fields_and_one_result_per_located_commit(report: PredictionReport) -> None:
    doc = render_sarif(report, information_uri="https://example.org/defectops", min_band=RiskBand.MINIMAL)
    assert json.loads(json.dumps(doc)) == doc  # plain JSON types only
    assert doc["version"] == "2.1.0"
    assert doc["$schema"] == SARIF_SCHEMA
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "defectops"
    assert driver["version"] == __version__
    assert driver["informationUri"] == "https://example.org/defectops"
    rules = driver["rules"]
    assert [r["id"] for r in rules] == [
        "defectops/high-risk-change",
        "defectops/medium-risk-change",
        "defectops/low-risk-change",
        "defectops/minimal-risk-change",
    ]
    assert [r["defaultConfiguration"]["level"] for r in rules] == ["error", "warning", "note", "note"]
    for rule in rules:
        assert rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"]
        assert rule["help"]["text"]
        assert rule["properties"]["tags"] == ["defect-prediction", "just-in-time", "maintainability"]
    assert rules[0]["fullDescription"]["text"] == (
        "A commit the just-in-time defect model places in the high risk band: "
        "probability at or above 0.400 (2x or more the base rate of 20.0%)."
    )
    assert rules[3]["fullDescription"]["text"] == (
        "A commit the just-in-time defect model places in the minimal risk band: "
        "probability below 0.100 (under 0.5x the base rate of 20.0%)."
    )
    assert rules[2]["help"]["text"].startswith("Below the usual risk of a change here.")

    results = run["results"]
    # the empty commit has no file to point at, so it is left out (and listed in the run's properties)
    assert [r["partialFingerprints"] for r in results] == [
        {FINGERPRINT_KEY: HIGH},
        {FINGERPRINT_KEY: MEDIUM},
        {FINGERPRINT_KEY: LOW},
    ]
    assert run["properties"]["commitsWithoutFiles"] == [EMPTY]
    assert run["properties"]["skippedMerges"] == [MERGE]
    assert [(r["ruleId"], r["ruleIndex"], r["level"]) for r in results] == [
        ("defectops/high-risk-change", 0, "error"),
        ("defectops/medium-risk-change", 1, "warning"),
        ("defectops/low-risk-change", 2, "note"),
    ]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert isinstance(result["message"]["text"], str)
        assert result["message"]["text"]
        for location in result["locations"]:
            physical = location["physicalLocation"]
            assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
            assert isinstance(physical["region"]["startLine"], int)
            assert physical["region"]["startLine"] >= 1

    def located(result: dict[str, object]) -> list[tuple[str, int]]:
        return [
            (
                loc["physicalLocation"]["artifactLocation"]["uri"],
                loc["physicalLocation"]["region"]["startLine"],
            )
            for loc in result["locations"]  # type: ignore[attr-defined]
        ]

    # most churn first, deleted files skipped; a deletion-only commit points at its deleted file
    assert located(results[0]) == [("src/parser.py", 1), ("src/app.py", 21), ("README", 3)]
    assert located(results[1]) == [("lib/a,b.py", 7)]
    assert located(results[2]) == [("docs/old.md", 1)]

    assert results[0]["message"]["text"] == (
        'Commit 111111111111 "Add parser | fast <b>" has a high defect risk: probability 0.912, '
        "4.5x the base rate of 20.0% (threshold 0.500). "
        "Reasons: many lines added (la=812) raised the risk; few files changed (nf=2) lowered the risk."
    )
    assert results[2]["message"]["text"] == (
        'Commit 333333333333 "Docs" has a low defect risk: probability 0.160, 0.8x the base rate of 20.0% (threshold 0.500).'
    )
    assert results[0]["properties"] == {
        "commit": HIGH,
        "probability": 0.912,
        "riskBand": "high",
        "baseRate": 0.2,
        "risk": True,
        "threshold": 0.5,
        "model": "jit",
        "modelVersion": "7",
        "crossProject": False,
        "reasons": [
            {"feature": "la", "value": 812.0, "contribution": 1.25, "direction": "raises"},
            {"feature": "nf", "value": 2.0, "contribution": -0.1, "direction": "lowers"},
        ],
        "reasonsText": [
            "many lines added (la=812) raised the risk",
            "few files changed (nf=2) lowered the risk",
        ],
    }


@pytest.mark.parametrize(
    ("min_band", "expected"),
    [
        (None, [HIGH, MEDIUM]),  # the default: medium and high
        (RiskBand.MEDIUM, [HIGH, MEDIUM]),
        (RiskBand.HIGH, [HIGH]),
        (RiskBand.LOW, [HIGH, MEDIUM, LOW]),
        (RiskBand.MINIMAL, [HIGH, MEDIUM, LOW]),  # the minimal commit changed no file: nothing to point at
    ],
)
def test_sarif_reports_the_bands_from_min_band_up(
    report: PredictionReport, min_band: RiskBand | None, expected: list[str]
) -> None:
    doc = render_sarif(report) if min_band is None else render_sarif(report, min_band=min_band)
    run = doc["runs"][0]
    assert [r["properties"]["commit"] for r in run["results"]] == expected
    assert run["properties"]["minRiskBand"] == (min_band or RiskBand.MEDIUM).value
    assert len(run["tool"]["driver"]["rules"]) == 4  # rule indexes stay the same whatever is reported


def test_github_workflow_commands_exactly(report: PredictionReport) -> None:
    assert render_github(report) == [
        "111111111111 high 0.912 (4.5x the base rate of 20.0%)",
        "::error file=src/parser.py,line=1,title=defectops%3A high defect risk (0.912)::Commit 111111111111 "
        '"Add parser | fast <b>": probability 0.912, 4.5x the base rate of 20.0%25 (threshold 0.500). '
        "Reasons: many lines added (la=812) raised "
        "the risk; few files changed (nf=2) lowered the risk. Fails --fail-on medium: in the medium or high band "
        "(probability at or above 0.200).",
        "222222222222 medium 0.300 (1.5x the base rate of 20.0%)",
        "::error file=lib/a%2Cb.py,line=7,title=defectops%3A medium defect risk (0.300)::Commit 222222222222 "
        '"Use @bob\'s helper, 50%25 faster": probability 0.300, 1.5x the base rate of 20.0%25 (threshold 0.500). '
        "Reasons: the author's "
        "experience (exp=3) raised the risk. Fails --fail-on medium: in the medium or high band (probability "
        "at or above 0.200).",
        "333333333333 low 0.160 (0.8x the base rate of 20.0%)",
        "444444444444 minimal 0.040 (0.2x the base rate of 20.0%)",
        "defectops: 4 commit(s) scored: 1 high, 1 medium, 1 low, 1 minimal; 1 merge commit(s) not scored",
    ]


def test_github_medium_is_a_warning_when_it_does_not_fail_the_run(report: PredictionReport) -> None:
    lines = render_github(dataclasses.replace(report, fail_on=None))
    assert lines[3].startswith("::warning file=lib/a%2Cb.py,line=7,")
    assert not any("Fails --fail-on" in line for line in lines)


def test_github_every_failing_commit_is_an_error_even_in_the_low_band(report: PredictionReport) -> None:
    """``--fail-on any --threshold 0.01``: low-band commits fail the run, so each carries an ``::error``, with a
    location when the commit left a changed file and without one when it only deleted files or changed none."""
    flagged = tuple(
        dataclasses.replace(c, scored=dataclasses.replace(c.scored, threshold=0.01, risk=True))
        for c in report.commits
    )
    lines = render_github(dataclasses.replace(report, commits=flagged, threshold=0.01, fail_on=FailOn.ANY))
    errors = [line for line in lines if line.startswith("::")]
    assert len(errors) == 4
    assert all(line.startswith("::error ") for line in errors)
    why = "Fails --fail-on any: flagged risky (probability at or above the threshold 0.010)."
    assert all(line.endswith(why) for line in errors)
    assert errors[2] == (
        "::error title=defectops%3A low defect risk (0.160)::Commit 333333333333 "
        f'"Docs": probability 0.160, 0.8x the base rate of 20.0%25 (threshold 0.010). {why}'
    )
    assert errors[3] == (
        "::error title=defectops%3A minimal defect risk (0.040)::Commit 444444444444 "
        f'"Empty _marker_": probability 0.040, 0.2x the base rate of 20.0%25 (threshold 0.010). {why}'
    )


def test_github_escaping() -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"


def test_github_summary_is_appended(report: PredictionReport, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("## earlier step\n")
    append_summary(report, summary)
    assert summary.read_text() == "## earlier step\n" + render_markdown(report)


def test_json_document_structure(report: PredictionReport) -> None:
    doc = render_json(report)
    assert json.loads(json.dumps(doc)) == doc
    assert list(doc) == [
        "repo", "revisions", "model", "threshold", "counts", "commits", "skipped_merges", "fail_on", "failed",
        "failing_commits", "notes",
    ]  # fmt: skip
    assert doc["model"] == {
        "name": "jit",
        "version": "7",
        "threshold": 0.5,
        "bands": {"low": 0.1, "medium": 0.2, "high": 0.4, "base_rate": 0.2, "support": []},
        "origin": "models:/jit/7",
        "cross_project": False,
        "description": None,
    }
    assert doc["counts"] == {"high": 1, "medium": 1, "low": 1, "minimal": 1}
    assert doc["failed"] is True
    assert doc["failing_commits"] == [HIGH, MEDIUM]
    first = doc["commits"][0]
    assert sorted(first) == sorted(
        [
            "sha", "probability", "risk", "risk_band", "base_rate", "relative_risk", "threshold", "model_name",
            "model_version", "reasons", "cross_project",
            "subject", "author_name", "author_email", "reasons_text", "features", "files", "notes",
        ]
    )  # fmt: skip
    assert first["notes"] == []
    assert first["files"][1] == {
        "path": "src/app.py",
        "old_path": None,
        "change_type": "M",
        "added": 12,
        "deleted": 0,
        "binary": False,
        "first_line": 21,
    }


def test_table_has_one_row_per_commit(report: PredictionReport) -> None:
    table = render_table(report)
    assert [c.header for c in table.columns] == ["commit", "risk", "probability", "subject", "top reasons"]
    assert table.row_count == 4
    assert list(table.columns[0].cells) == ["111111111111", "222222222222", "333333333333", "444444444444"]
    assert list(table.columns[2].cells) == ["0.912 (4.5x)", "0.300 (1.5x)", "0.160 (0.8x)", "0.040 (0.2x)"]
    assert list(table.columns[1].cells) == [
        "[bold red]high[/]",
        "[yellow]medium[/]",
        "[green]low[/]",
        "[blue]minimal[/]",
    ]
    assert "base rate 20.0%; low from 0.100 (0.5x)" in str(table.title)


def test_check_run_headline_counts_every_band_with_the_base_rate(report: PredictionReport) -> None:
    from defectops.events.checks import headline

    assert headline(report) == (
        "Defect risk: 1 high, 1 medium, 1 low, 1 minimal (highest 0.912, 4.5x the base rate of 20.0%)"
    )
    one = dataclasses.replace(report, commits=report.commits[3:])
    assert headline(one) == "Defect risk: minimal (probability 0.040, 0.2x the base rate of 20.0%)"
