"""The model name of a repository is the same in every clone, and a name the user chose is kept."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from defectops.errors import InputError
from defectops.git import GitRepo
from defectops.mining import RepositoryNames, check_model_name, default_model_name
from gitrepo import RepoBuilder


@pytest.fixture
def origin(tmp_path: Path) -> RepoBuilder:
    repo = RepoBuilder.create(tmp_path / "origin")
    repo.commit("first", {"a.py": "x = 1\n"})
    repo.commit("second", {"a.py": "x = 2\n"})
    return repo


def _root(repo: RepoBuilder) -> str:
    return repo.git("rev-list", "--max-parents=0", "HEAD").strip()


def test_without_a_network_remote_the_root_commit_names_it_in_every_clone(
    origin: RepoBuilder, tmp_path: Path
) -> None:
    expected = f"defectops-{_root(origin)[:12]}"
    subprocess.run(["git", "clone", "-q", str(origin.path), str(tmp_path / "clone")], check=True)
    shutil.copytree(origin.path, tmp_path / "copy")
    # the origin has no remote, the clone has the origin's folder as its remote, the copy is elsewhere
    for path in (origin.path, tmp_path / "clone", tmp_path / "copy"):
        assert default_model_name(GitRepo.open(path)) == expected


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:Pallets/Flask.git",
        "https://x-access-token:t@github.com/pallets/flask",
        "ssh://git@github.com/pallets/flask.git/",
    ],
)
def test_a_network_remote_names_it_owner_and_name(origin: RepoBuilder, url: str) -> None:
    origin.git("remote", "add", "origin", url)
    assert default_model_name(GitRepo.open(origin.path)) == "defectops-pallets-flask"


def test_a_chosen_name_is_kept_in_the_workspace_for_every_clone(origin: RepoBuilder, tmp_path: Path) -> None:
    names = RepositoryNames(tmp_path / "ws")
    assert names.model_name(GitRepo.open(origin.path), "jit") == "jit"
    subprocess.run(["git", "clone", "-q", str(origin.path), str(tmp_path / "clone")], check=True)
    assert RepositoryNames(tmp_path / "ws").model_name(GitRepo.open(tmp_path / "clone")) == "jit"
    # another workspace knows nothing of it
    assert RepositoryNames(tmp_path / "other").model_name(GitRepo.open(origin.path)) == (
        f"defectops-{_root(origin)[:12]}"
    )


def test_a_name_the_registry_would_refuse_is_refused_early() -> None:
    assert check_model_name("defectops-pallets-flask") == "defectops-pallets-flask"
    with pytest.raises(InputError, match=r"invalid name '\.\./x'"):
        check_model_name("../x")


def test_what_heal_and_the_deploy_files_say_of_the_default_name_is_what_run_registers(
    origin: RepoBuilder,
) -> None:
    """heal's --model-name help, the compose .env example and the Airflow DAG said ``defectops run`` registers
    ``defectops-<repository id>`` (e.g. ``defectops-flask-cf54b27fc2``); it registers the remote's name."""
    import typer

    from defectops.cli import app

    origin.git("remote", "add", "origin", "https://github.com/pallets/flask.git")
    registered = default_model_name(GitRepo.open(origin.path))
    assert registered == "defectops-pallets-flask"
    heal = typer.main.get_command(app).commands["heal"]  # type: ignore[attr-defined]
    shown = next(param.help for param in heal.params if param.name == "model_name")
    assert f"e.g. {registered} from its remote" in shown
    root = Path(__file__).resolve().parents[2]
    for path in (
        "deploy/compose/.env.example",
        "deploy/airflow/defectops_heal_dag.py",
        "src/defectops/cli/heal.py",
    ):
        text = (root / path).read_text()
        assert "<repository id>" not in text, path
        assert registered in text, path
