"""Service settings: the admin token rules (the service refuses to start with unsafe ones), repositories,
and the environment hand-over to worker processes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from defectops.config import LOCAL_ADMIN_TOKEN, ServeSettings, Settings, is_loopback
from defectops.config.serve import token_bits
from defectops.errors import ConfigError
from defectops.serving.app import create_app
from defectops.serving.server import settings_environment
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient, Session, admin

STRONG = "0123456789abcdef-strong"


@pytest.fixture(autouse=True)
def _no_serve_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("DEFECTOPS_SERVE_"):
            monkeypatch.delenv(key)


def _settings(mode: str = "local") -> Settings:
    return Settings(workspace=Path("/nonexistent/ws"), mode=mode)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "needs an admin token"),
        (LOCAL_ADMIN_TOKEN, "refuses the well-known local admin token"),
        ("short-token", "too weak"),
        ("aaaaaaaaaaaaaaaa", "too weak"),  # issue #14: 16 characters were enough
        ("a" * 64, "too weak"),  # long, but one character
        ("0123456789abcdef", "too weak"),  # 64 bits of hex
        ("   ", "is empty"),
    ],
)
def test_outside_local_mode_a_strong_token_is_required(token: str | None, message: str) -> None:
    serve = ServeSettings(admin_token=token)
    with pytest.raises(ConfigError, match=message):
        serve.check(_settings("production"))
    with pytest.raises(ConfigError, match=message):
        create_app(_settings("production"), serve)  # refused before anything is opened


def test_a_strong_token_is_accepted_anywhere() -> None:
    serve = ServeSettings(admin_token=STRONG, host="0.0.0.0")
    assert serve.check(_settings("production")) == STRONG
    assert serve.check(_settings("local")) == STRONG


def test_beyond_loopback_every_token_needs_128_bits_even_in_local_mode() -> None:
    # Issue #14: a 1-character token was accepted in local mode on 0.0.0.0.
    with pytest.raises(ConfigError, match="DEFECTOPS_SERVE_ADMIN_TOKEN is too weak"):
        ServeSettings(admin_token="x", host="0.0.0.0").check(_settings())
    with pytest.raises(ConfigError, match="DEFECTOPS_SERVE_FEEDBACK_TOKEN is too weak"):
        ServeSettings(admin_token=STRONG, feedback_token="feedback", host="0.0.0.0").check(_settings())
    assert ServeSettings(admin_token="x").check(_settings()) == "x"  # a laptop: loopback and local mode


def test_the_roles_tokens_must_differ() -> None:
    with pytest.raises(ConfigError, match="must differ"):
        ServeSettings(admin_token=STRONG, feedback_token=STRONG).check(_settings("production"))


@pytest.mark.parametrize(
    ("token", "bits"),
    [
        ("0" * 32, 128),
        ("xy" * 11, 22 * math.log2(36)),
        ("Ab1" * 8, 24 * math.log2(62)),
        ("é" * 10, 10 * math.log2(95)),
    ],
)
def test_token_strength_is_length_times_the_bits_of_its_alphabet(token: str, bits: float) -> None:
    assert token_bits(token) == pytest.approx(bits)


def test_a_random_hex_token_of_16_bytes_is_strong_enough() -> None:
    import secrets

    for _ in range(200):
        ServeSettings(admin_token=secrets.token_hex(16), host="0.0.0.0").check(_settings("production"))
        ServeSettings(admin_token=secrets.token_urlsafe(22), host="0.0.0.0").check(_settings("production"))


def test_local_mode_falls_back_to_the_local_token_on_loopback_only() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert ServeSettings(host=host).check(_settings()) == LOCAL_ADMIN_TOKEN
    for host in ("0.0.0.0", "10.1.2.3", "example.com"):
        with pytest.raises(ConfigError, match="only allowed on a loopback address"):
            ServeSettings(host=host).check(_settings())
    assert not is_loopback("::")


def test_the_local_token_opens_the_admin_endpoints_in_local_mode(
    deployed: Deployed, make_client: MakeClient
) -> None:
    client = make_client(deployed.name, admin_token=None)
    assert client.post("/v1/models/reload", headers=admin(LOCAL_ADMIN_TOKEN)).status_code == 200
    assert client.post("/v1/models/reload", headers=admin("test-admin-token-0123456789")).status_code == 403


def test_repositories_come_from_json_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "app").mkdir()
    monkeypatch.setenv("DEFECTOPS_SERVE_REPOSITORIES", f'{{"app": "{tmp_path / "app"}"}}')
    serve = ServeSettings()
    assert serve.repositories == {"app": tmp_path / "app"}
    serve.check(_settings())
    monkeypatch.setenv("DEFECTOPS_SERVE_REPOSITORIES", f'{{"gone": "{tmp_path / "gone"}"}}')
    with pytest.raises(ConfigError, match="is not a directory"):
        ServeSettings().check(_settings())
    with pytest.raises(ValidationError, match="repository id"):
        ServeSettings(repositories={"../etc": tmp_path})


def test_worker_processes_rebuild_the_same_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = ServeSettings(
        host="127.0.0.1",
        port=8123,
        workers=3,
        model_name="jit-lgbm",
        admin_token=STRONG,
        feedback_token=STRONG + "-feedback",
        predict_token=STRONG + "-predict",
        log_url=f"sqlite:///{tmp_path / 'log.db'}",
        repositories={"app": tmp_path},
        max_batch=50,
        top_k=2,
        threshold=0.3,
        access_log=True,
    )
    for key, value in settings_environment(original).items():
        monkeypatch.setenv(key, value)
    rebuilt = ServeSettings()
    secrets = {"admin_token": None, "feedback_token": None, "predict_token": None}
    assert rebuilt.model_dump() | secrets == original.model_dump() | secrets
    for name in secrets:
        assert getattr(rebuilt, name).get_secret_value() == getattr(original, name).get_secret_value()


def test_invalid_model_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="invalid model name"):
        ServeSettings(model_name="../../etc").check(_settings())


def test_the_only_model_with_a_champion_is_served_by_default() -> None:
    from defectops.config import DEFAULT_MODEL_NAME
    from defectops.registry import choose_model_name as choose
    from defectops.registry.records import RegisteredModelInfo

    def choose_model_name(models: list[RegisteredModelInfo]) -> str:
        return choose(models, DEFAULT_MODEL_NAME)

    def info(name: str, **aliases: int) -> RegisteredModelInfo:
        return RegisteredModelInfo(name=name, aliases=aliases, latest_version=2, versions=2)

    assert choose_model_name([]) == DEFAULT_MODEL_NAME  # nothing yet: wait under the default name
    assert choose_model_name([info("a", challenger=2)]) == DEFAULT_MODEL_NAME
    assert choose_model_name([info("a", challenger=2), info("defectops-app", champion=1)]) == "defectops-app"
    with pytest.raises(ConfigError, match=r"several registered models have a champion \(a, b\)"):
        choose_model_name([info("b", champion=1), info("a", champion=2)])
    # each command names its own way to choose: the events worker reads no --model-name
    with pytest.raises(ConfigError, match=r"\(a, b\); choose one with DEFECTOPS_EVENTS_MODEL_NAME$"):
        choose([info("b", champion=1), info("a", champion=2)], "", "DEFECTOPS_EVENTS_MODEL_NAME")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEFECTOPS_SERVE_LOG_DURABILITY", "sometimes", "Input should be 'kill' or 'power-loss'"),
        ("DEFECTOPS_SERVE_PORT", "http", "Input should be a valid integer"),
    ],
)
def test_a_bad_setting_in_the_environment_is_one_line_naming_the_variable(
    variable: str,
    value: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from defectops.cli import main

    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path))
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--model-name", "m"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: invalid setting {variable}: {message}")
    assert "\n" not in error
    assert "Traceback" not in error


@pytest.mark.parametrize("exists", [True, False], ids=["empty-folder", "no-folder"])
def test_serve_on_a_workspace_where_nothing_was_trained_is_one_line_and_creates_nothing(
    exists: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It created the MLflow database (and its folder) and the prediction log, then refused."""
    from defectops.cli import main

    workspace = tmp_path / "ws"
    if exists:
        workspace.mkdir()
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "DEFECTOPS_MLFLOW_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["-w", str(workspace), "serve", "--port", "0"])
    assert exit_info.value.code == 7
    error = capsys.readouterr().err.strip()
    assert error == (
        "error: model 'defectops' is not registered (nothing is registered yet); train one with `defectops run`, "
        "name another with --model-name, or start anyway with --wait-for-model"
    )
    assert sorted(tmp_path.rglob("*")) == ([workspace] if exists else [])


def test_serve_of_a_model_the_registry_lacks_leaves_no_prediction_log_behind(
    deployed: Deployed,
    api_session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The prediction log was opened (and created) before the model was looked up."""
    from defectops.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", api_session.config.tracking_uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["-w", str(tmp_path / "ws"), "serve", "--model-name", "never-registered", "--port", "0"])
    assert exit_info.value.code == 7
    error = capsys.readouterr().err
    assert "model 'never-registered' is not registered (registered: " in error
    assert deployed.name in error
    assert not (tmp_path / "ws" / "predictions.db").exists()
