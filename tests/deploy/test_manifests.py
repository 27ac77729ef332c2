"""The Kubernetes manifests: every overlay renders with kustomize, the rendered objects validate against the
Kubernetes schemas (kubernetes-validate, strict) and the prometheus-operator CRDs, and they say what the
issue asks (probes, resources, restricted security context, the canary's own track and workspace)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy_tools import DEPLOY, find_tool, tools_dir

OVERLAYS = sorted(p.name for p in (DEPLOY / "k8s" / "overlays").iterdir() if p.is_dir())
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    kubectl = find_tool("kubectl")
    out = {}
    folder = tmp_path_factory.mktemp("rendered")
    for overlay in OVERLAYS:
        result = subprocess.run(
            [kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{overlay}: {result.stderr}"
        out[overlay] = folder / f"{overlay}.yaml"
        out[overlay].write_text(result.stdout)
    return out


def _objects(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(path.read_text()) if d}


def test_both_overlays_exist() -> None:
    assert OVERLAYS == ["canary", "stable"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_validate_strict(rendered: dict[str, Path], overlay: str) -> None:
    validator = find_tool("kubernetes-validate")
    result = subprocess.run(
        [validator, "--strict", "--kubernetes-version", "1.33.0", str(rendered[overlay])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout
    kinds = {kind for kind, _ in _objects(rendered[overlay])}
    # Every built-in object was validated; only the two CRD kinds lack a schema there (checked below).
    warned = [line for line in result.stdout.splitlines() if line.startswith("WARN")]
    assert all("ServiceMonitor" in line or "PrometheusRule" in line for line in warned), warned
    assert len([line for line in result.stdout.splitlines() if " passed " in line]) == len(
        [k for k in kinds if k not in {"ServiceMonitor", "PrometheusRule"}]
    )


def test_the_monitoring_objects_validate_against_the_operator_crds(rendered: dict[str, Path]) -> None:
    python = tools_dir() / "bin" / "python"
    find_tool("kubernetes-validate")  # the tools venv is there (skip/fail with the install hint otherwise)
    result = subprocess.run(
        [str(python), str(HERE / "validate_crds.py"), str(rendered["stable"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    assert "ServiceMonitor/defectops-api" in result.stdout
    assert "PrometheusRule/defectops" in result.stdout


def test_the_prometheus_rule_holds_exactly_the_rules_file(rendered: dict[str, Path]) -> None:
    rule = _objects(rendered["stable"])[("PrometheusRule", "defectops")]
    rules_file = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "defectops.yml").read_text())
    assert rule["spec"] == rules_file


def test_the_stable_track(rendered: dict[str, Path]) -> None:
    objects = _objects(rendered["stable"])
    kinds = {kind for kind, _ in objects}
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
        "CronJob",
        "PersistentVolumeClaim",
        "Ingress",
    } <= kinds
    assert all(o["metadata"].get("namespace") == "defectops" for o in objects.values())
    deployment = objects[("Deployment", "defectops-api")]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
    }
    assert secrets == {
        "DEFECTOPS_SERVE_ADMIN_TOKEN": "defectops-secrets",
        "DEFECTOPS_SERVE_LOG_URL": "defectops-secrets",
        "DEFECTOPS_AUDIT_DB_URL": "defectops-secrets",
    }
    config = next(o for (k, _), o in objects.items() if k == "ConfigMap")
    assert not any("PASSWORD" in key or "TOKEN" in key for key in config["data"])
    cron = objects[("CronJob", "defectops-heal")]
    heal = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert heal["args"][:2] == ["heal", "--once"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    monitor = objects[("ServiceMonitor", "defectops-api")]
    assert monitor["spec"]["podTargetLabels"] == ["track"]


def test_the_canary_track_is_a_second_deployment_with_its_own_split(rendered: dict[str, Path]) -> None:
    objects = _objects(rendered["canary"])
    kinds = sorted(kind for kind, _ in objects)
    assert kinds == ["ConfigMap", "Deployment", "Ingress", "Service", "ServiceAccount"]
    deployment = objects[("Deployment", "defectops-api-canary")]
    assert deployment["spec"]["selector"]["matchLabels"]["track"] == "canary"
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["track"] == "canary"
    init = pod["spec"]["initContainers"][0]
    assert init["command"][-4:] == ["/opt/defectops-deploy/canary.py", "seed-control", "--share", "1.0"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert "emptyDir" in volumes["workspace"]
    assert "persistentVolumeClaim" not in volumes["workspace"]
    service = objects[("Service", "defectops-api-canary")]
    assert service["spec"]["selector"]["track"] == "canary"
    ingress = objects[("Ingress", "defectops-api-canary")]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert 0 < int(annotations["nginx.ingress.kubernetes.io/canary-weight"]) < 100
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == "defectops-api-canary"
    # The stable overlay's ServiceMonitor selects the canary Service too, so both tracks are scraped.
    selector = _objects(rendered["stable"])[("ServiceMonitor", "defectops-api")]["spec"]["selector"]
    assert selector["matchLabels"].items() <= service["metadata"]["labels"].items()
