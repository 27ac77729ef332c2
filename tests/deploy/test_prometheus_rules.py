"""The Prometheus rules and configuration, checked and unit-tested by promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploy_tools import DEPLOY, find_tool

PROMETHEUS = DEPLOY / "prometheus"


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_tool("promtool"), *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=600
    )


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", "rules/defectops.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("tests_file", sorted(p.name for p in (PROMETHEUS / "tests").glob("*.yml")))
@pytest.mark.slow  # an integration test of over 15 s: CI's slow run
def test_promtool_test_rules(tests_file: str) -> None:
    result = _promtool("test", "rules", f"tests/{tests_file}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_the_issue_asks_for_is_there() -> None:
    import yaml

    groups = yaml.safe_load((PROMETHEUS / "rules" / "defectops.yml").read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    records = [rule["record"] for group in groups for rule in group["rules"] if "record" in rule]
    assert records
    assert {
        "DefectopsDriftDetected",
        "DefectopsRealizedPerformanceDrop",
        "DefectopsEstimatedPerformanceDrop",
        "DefectopsHighErrorRate",
        "DefectopsHighP99Latency",
        "DefectopsPredictionLogWriteFailures",
        "DefectopsModelNotRefreshed",
        "DefectopsDegraded",
    } <= alerts
    tested = "\n".join(p.read_text() for p in (PROMETHEUS / "tests").glob("*.yml"))
    untested = {alert for alert in alerts if f"alertname: {alert}" not in tested}
    assert untested == {"DefectopsPredictionLogSlowCommits"}, untested


def test_the_compose_prometheus_configuration(tmp_path: Path) -> None:
    # promtool resolves rule_files relative to the config; lay the stack's files out as the container sees
    # them (the rules mounted beside the configuration).
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "defectops.yml").write_text((PROMETHEUS / "rules" / "defectops.yml").read_text())
    config = (DEPLOY / "compose" / "prometheus.yml").read_text()
    assert "/etc/prometheus/rules/*.yml" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/rules/*.yml", "rules/*.yml"))
    result = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "21 rules found" in result.stdout
