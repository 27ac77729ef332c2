"""A workspace damaged by hand: a file where MLflow's artifact folder belongs.

Every command that opens the registry said ``internal error: FileExistsError`` with exit 70, as if defectops
had a bug; each now says in one line which path is wrong and how, with the exit code of a configuration
problem (2). Real commands on a workspace a real ``defectops run`` made.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from defectops.cli import main
from defectops.errors import ConfigError
from gitrepo import RepoBuilder


@pytest.fixture(scope="module")
def damaged_workspace(
    synthetic_repo: RepoBuilder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A workspace trained by ``run``, whose ``mlflow/artifacts`` folder was then replaced by a file."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            mp.delenv(name, raising=False)
        workspace = tmp_path_factory.mktemp("damaged") / "ws"
        main(
            [
                "-w",
                str(workspace),
                "run",
                "--repo",
                str(synthetic_repo.path),
                "--budget-seconds",
                "0",
                "--json",
            ]
        )
        artifacts = workspace / "mlflow" / "artifacts"
        shutil.rmtree(artifacts)
        artifacts.write_text("not a folder\n")
        yield workspace


@pytest.mark.usefixtures("quiet_mlflow")
@pytest.mark.parametrize(
    "command",
    [["models", "list"], ["serve"], ["heal", "--once", "--repo", "{repo}"], ["run", "--repo", "{repo}"]],
)
def test_a_file_where_the_artifact_folder_belongs_is_one_line_naming_it_with_exit_2(
    command: list[str],
    damaged_workspace: Path,
    synthetic_repo: RepoBuilder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["-w", str(damaged_workspace), *(part.format(repo=synthetic_repo.path) for part in command)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    artifacts = (damaged_workspace / "mlflow" / "artifacts").resolve()
    # run and heal say which step they are in first; the refusal is their last line
    assert err.splitlines()[-1] == (
        f"error: MLflow's artifact folder {artifacts} is a file, not a folder (a damaged workspace?): "
        "move it away and run the command again"
    )
    assert exit_info.value.code == ConfigError.exit_code == 2
    assert artifacts.read_text() == "not a folder\n"  # nothing was replaced or removed
