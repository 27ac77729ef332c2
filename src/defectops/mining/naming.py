"""The name a repository's model is registered under: the same in every clone, or the one its user chose.

Why not the folder: a second clone, a CI checkout or a moved folder is the same repository and must find the
same model (``heal --repo <clone>`` answered "no champion yet" when names hung on the absolute path). The
default name comes from what every clone shares (see :mod:`defectops.mining.identity`):

- the normalised network remote: ``git@github.com:pallets/flask.git`` → ``defectops-pallets-flask``;
- else (no remote, or a local folder as the remote) the root commit: ``defectops-<its first 12 hex digits>``;
- else (a shallow clone without a remote, which knows neither) the folder-based repository id.

A user who prefers another name gives it once (``defectops run --name jit``); the workspace keeps it in
``repository-names.json`` keyed by the same shared evidence, so every later command on any clone uses it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from defectops.errors import InputError, StateError
from defectops.git import GitRepo
from defectops.mining.identity import RepositoryIdentity

NAMES_FILE = "repository-names.json"
_VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _network_remote(identity: RepositoryIdentity) -> str:
    """The remote when it is a network one (``host/owner/name``); a local path differs between machines and
    clones (a clone of a local folder has that folder as its remote, the folder itself has none)."""
    remote = identity.remote
    return "" if not remote or remote.startswith("/") or "/" not in remote else remote


def identity_key(identity: RepositoryIdentity) -> str | None:
    """The key a name is kept under: the network remote, else the root commits, else None."""
    remote = _network_remote(identity)
    if remote:
        return f"remote:{remote}"
    if identity.roots:
        return f"roots:{identity.encode_roots()}"
    return None


def default_model_name(repo: GitRepo, identity: RepositoryIdentity | None = None) -> str:
    """The model name every clone of ``repo`` derives by itself (see the module docstring)."""
    found = identity if identity is not None else RepositoryIdentity.of(repo)
    remote = _network_remote(found)
    if remote:
        owner_and_name = [part for part in remote.split("/") if part][-2:]  # host/owner/name → owner-name
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(owner_and_name)).strip("-.").lower()
        if slug:
            return f"defectops-{slug}"[:128]
    if found.roots:
        return f"defectops-{found.roots[0][:12]}"
    return f"defectops-{repo.repo_id()}"


def check_model_name(name: str) -> str:
    """``name`` if the MLflow registry and every command accept it; InputError otherwise."""
    if not _VALID.match(name):
        raise InputError(
            f"invalid name {name!r}: letters, digits, '.', '_' or '-' (at most 128, starting alphanumeric)"
        )
    return name


BLOCK_MODEL_SUFFIX = "-blocks"


def block_model_name(name: str) -> str:
    """The registered name of a repository's Terraform block-level model, beside its commit model ``name``."""
    return check_model_name(f"{name}{BLOCK_MODEL_SUFFIX}")


class RepositoryNames:
    """Names users chose for their repositories, kept in the workspace (``repository-names.json``)."""

    def __init__(self, workspace_root: Path) -> None:
        self.path = workspace_root / NAMES_FILE

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StateError(f"{self.path}: unreadable ({exc}); fix or delete it") from None
        if not isinstance(document, dict):
            raise StateError(f"{self.path}: not a JSON object; fix or delete it")
        return {str(k): str(v) for k, v in document.items()}

    def model_name(self, repo: GitRepo, chosen: str | None = None) -> str:
        """The repository's model name: ``chosen`` (then kept for next time), else the kept one, else the
        default every clone derives."""
        identity = RepositoryIdentity.of(repo)
        key = identity_key(identity)
        names = self._read()
        if chosen is not None:
            check_model_name(chosen)
            if key is not None and names.get(key) != chosen:
                names[key] = chosen
                self._write(names)
            return chosen
        if key is not None and key in names:
            return names[key]
        return default_model_name(repo, identity)

    def _write(self, names: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".names-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(names, out, indent=2, sort_keys=True)
                out.write("\n")
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
