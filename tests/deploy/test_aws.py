"""The ECS/Fargate outline: the task definitions and services, rendered as documented (``envsubst``), are
valid requests of the ECS API as botocore's service model defines them (the validation boto3 runs before it
sends a request), and run the image's real commands."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.session import Session
from botocore.validate import ParamValidator

from deploy_tools import DEPLOY

AWS = DEPLOY / "aws"
VALUES = {
    "AWS_ACCOUNT_ID": "123456789012",
    "AWS_REGION": "eu-west-1",
    "DEFECTOPS_MODEL_NAME": "defectops-app",
    "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000",
    "EFS_FILE_SYSTEM_ID": "fs-0123456789abcdef0",
    "EFS_ACCESS_POINT_ID": "fsap-0123456789abcdef0",
    "ECS_CLUSTER": "defectops",
    "PRIVATE_SUBNET_A": "subnet-0aaa",
    "PRIVATE_SUBNET_B": "subnet-0bbb",
    "API_SECURITY_GROUP": "sg-0aaa",
    "SCHEDULER_SECURITY_GROUP": "sg-0bbb",
    "API_TARGET_GROUP_ARN": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/defectops/0123",
    "ARTIFACT_BUCKET": "acme-defectops-artifacts",
}


def render(path: Path) -> Any:
    text = path.read_text()
    names = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    assert names <= set(VALUES), names - set(VALUES)
    for name in names:
        text = text.replace("${" + name + "}", VALUES[name])
    return json.loads(text)


def _validate(operation: str, params: dict[str, Any]) -> None:
    model = Session().get_service_model("ecs")
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize("name", ["api-task-definition.json", "scheduler-task-definition.json"])
def test_task_definitions_are_valid_register_requests(name: str) -> None:
    task = render(AWS / name)
    _validate("RegisterTaskDefinition", task)
    container = task["containerDefinitions"][0]
    assert container["user"] == "10001:10001"
    secrets = {s["name"] for s in container["secrets"]}
    assert "DEFECTOPS_SERVE_LOG_URL" in secrets
    plain = {e["name"] for e in container["environment"]}
    assert not any("TOKEN" in n or "PASSWORD" in n or (n.endswith("_URL") and "LOG" in n) for n in plain)
    assert task["volumes"][0]["efsVolumeConfiguration"]["transitEncryption"] == "ENABLED"


def test_the_commands_are_the_cli_s() -> None:
    api = render(AWS / "api-task-definition.json")["containerDefinitions"][0]
    scheduler = render(AWS / "scheduler-task-definition.json")["containerDefinitions"][0]
    assert api["command"] == ["serve", "--workers", "2", "--wait-for-model"]
    assert "/health/ready" in " ".join(api["healthCheck"]["command"])
    assert scheduler["command"][:3] == ["scheduler", "--every-minutes", "60"]
    from typer.main import get_command

    from defectops.cli import app

    commands = get_command(app).commands  # type: ignore[attr-defined]
    for argv in (api["command"], scheduler["command"]):
        commands[argv[0]].make_context(argv[0], list(argv[1:]))  # an unknown option would raise here


def test_services_are_valid_create_service_requests() -> None:
    services = render(AWS / "services.json")
    assert set(services) == {"api", "scheduler"}
    for service in services.values():
        _validate("CreateService", service)
    assert services["scheduler"]["desiredCount"] == 1  # one loop; heal also refuses a concurrent cycle


def test_the_s3_policy_is_least_privilege_on_the_artifact_prefix() -> None:
    policy = render(AWS / "mlflow-artifacts-s3-policy.json")
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert "s3:*" not in actions
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    resources = {statement["Resource"] for statement in policy["Statement"]}
    assert resources == {
        "arn:aws:s3:::acme-defectops-artifacts",
        "arn:aws:s3:::acme-defectops-artifacts/mlflow/*",
    }
