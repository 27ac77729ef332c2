#!/usr/bin/env python3
"""Set up defectops and run it, with nothing on the machine but Python 3.11+ and git.

Why a script and not a Makefile: a fresh machine may lack make, but never the Python this project needs.
It creates `.venv`, installs the pinned uv into it, installs the project exactly as `uv.lock` says (bytecode
compiled, so imports are fast), and then runs what was asked:

    python3 dev.py run [ARGS...]   the main job on embedded defaults (`defectops run --repo .` by default)
    python3 dev.py test [ARGS...]  the test suite (pytest)
    python3 dev.py lint            ruff and mypy (strict on src/, and on benchmarks/)
    python3 dev.py shell CMD...    any command inside the environment

Installation is skipped while `uv.lock` and `pyproject.toml` are unchanged since the last one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

UV_VERSION = "0.13.8"
ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".defectops-installed"


#: Optional extras the development environment installs too (the Kafka adapter's client and the hybrid
#: model's encoder, for their tests).
EXTRAS = ["kafka", "hybrid"]


def _fingerprint(groups: list[str]) -> str:
    digest = hashlib.sha256()
    for name in ("uv.lock", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    digest.update(",".join(groups + EXTRAS).encode())
    digest.update(UV_VERSION.encode())
    return digest.hexdigest()


def _run(cmd: list[str], **kwargs: object) -> None:
    result = subprocess.run(cmd, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_environment(groups: list[str]) -> None:
    """Create the venv and install the locked dependencies unless they are already there."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit(f"defectops needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = _fingerprint(groups)
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("dev.py: creating .venv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = BIN / "uv"
    if not uv.exists():
        print(f"dev.py: installing uv {UV_VERSION}", file=sys.stderr)
        _run(
            [
                str(BIN / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"uv=={UV_VERSION}",
            ]
        )
    print("dev.py: installing defectops and its locked dependencies", file=sys.stderr)
    group_args: list[str] = ["--no-default-groups"]
    for group in groups:
        group_args += ["--group", group]
    for extra in EXTRAS:
        group_args += ["--extra", extra]
    env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(VENV), VIRTUAL_ENV=str(VENV))
    _run(
        [str(uv), "sync", "--frozen", "--compile-bytecode", "--python", str(BIN / "python"), *group_args],
        cwd=ROOT,
        env=env,
    )
    STAMP.write_text(wanted)


def _exec(cmd: list[str]) -> None:
    env = dict(os.environ, VIRTUAL_ENV=str(VENV), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(cmd, env=env, check=False)
    sys.exit(result.returncode)


def main(argv: list[str]) -> None:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return
    action, rest = argv[0], argv[1:]
    if action == "run":
        ensure_environment(["dev", "bench", "kafka-test"])
        _exec([str(BIN / "defectops"), "run", *(rest or ["--repo", "."])])
    elif action == "test":
        ensure_environment(["dev", "bench", "kafka-test"])
        _exec([str(BIN / "python"), "-m", "pytest", *rest])
    elif action == "lint":
        ensure_environment(["dev", "bench", "kafka-test"])
        # The benchmarks are type-checked too (they call the public API and rot silently otherwise), less
        # strictly: they call untyped third-party code and the test helpers under tests/.
        benchmarks = [
            "mypy",
            "benchmarks",
            "--ignore-missing-imports",
            "--disable-error-code",
            "no-untyped-call",
        ]
        for cmd in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"], benchmarks):
            result = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=ROOT, check=False)
            if result.returncode != 0:
                sys.exit(result.returncode)
    elif action == "shell":
        ensure_environment(["dev", "bench", "kafka-test"])
        _exec(rest or [os.environ.get("SHELL", "/bin/sh")])
    else:
        sys.exit(f"dev.py: unknown action {action!r}; try: run, test, lint, shell")


if __name__ == "__main__":
    main(sys.argv[1:])
