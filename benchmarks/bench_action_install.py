"""The GitHub Action's install, cold and warm, against the unpinned ``pip install`` it replaced (issue #13).

    python benchmarks/bench_action_install.py [--groups ci] [--skip-baseline]

Runs the commands of ``action.yml``'s "Install defectops" step, in a temporary folder, from this checkout (the
action's folder):

1. **cold**: an empty uv download cache and no uv yet: ``pip install --target uv==<pinned>``, ``uv sync --locked
   --only-group ci`` into a new environment, ``uv pip install --no-deps .``, and the removal of the packages'
   test suites;
2. **warm**: the same with uv and its cache kept (what ``actions/cache`` restores), into a new environment;
3. **baseline**: what the action did before: ``pip install .`` of every dependency, unpinned, into a new
   virtual environment, with pip's cache off (a fresh runner).

Prints seconds per phase, the installed size, and the ratios. Targets: cold at most 30 s, at most 400 MB.
Downloads from PyPI: the cold and baseline numbers include the network of the machine it runs on.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _uv_version() -> str:
    found = re.search(r'UV_VERSION: "([^"]+)"', (ROOT / "action.yml").read_text())
    if found is None:
        raise SystemExit("action.yml names no UV_VERSION")
    return found.group(1)


def _run(command: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def _size_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 1e6


def action_install(work: Path, groups: list[str], *, python: str) -> dict[str, float]:
    """One run of the action's install step; uv and its cache under ``work`` are kept between runs."""
    uv_dir, cache, venv = work / "uv", work / "uv-cache", work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    env = dict(os.environ, UV_CACHE_DIR=str(cache), UV_PROJECT_ENVIRONMENT=str(venv))
    env.pop("VIRTUAL_ENV", None)
    uv = uv_dir / "bin" / "uv"
    phases: dict[str, float] = {}
    started = time.perf_counter()
    phases["uv"] = 0.0
    if not uv.exists():
        phases["uv"] = _run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(uv_dir),
             f"uv=={_uv_version()}"],
            env,
        )  # fmt: skip
    only = [arg for group in groups for arg in ("--only-group", group)]
    phases["packages"] = _run(
        [str(uv), "sync", "--no-config", "--locked", "--no-python-downloads", "--python", python, *only], env
    )
    phases["defectops"] = _run(
        [
            str(uv),
            "pip",
            "install",
            "--no-config",
            "--python",
            str(venv / "bin" / "python"),
            "--no-deps",
            ".",
        ],
        env,
    )
    for tests in [p for p in (venv / "lib").glob("*/site-packages/**/tests") if p.is_dir()]:
        shutil.rmtree(tests, ignore_errors=True)
    for headers in ("pyarrow/include", "numpy/_core/include"):  # as action.yml: never used at run time
        for found in (venv / "lib").glob(f"*/site-packages/{headers}"):
            shutil.rmtree(found, ignore_errors=True)
    phases["total"] = time.perf_counter() - started
    phases["size_mb"] = _size_mb(venv)
    return phases


def baseline_install(work: Path, *, python: str) -> dict[str, float]:
    """The action before #13: a new virtual environment and ``pip install .``, unpinned, no cache."""
    venv = work / "baseline-venv"
    started = time.perf_counter()
    _run([python, "-m", "venv", str(venv)])
    env = dict(os.environ, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT)], env)
    return {"total": time.perf_counter() - started, "size_mb": _size_mb(venv)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default="ci", help="dependency groups, space-separated (as the action)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    groups = args.groups.split()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; groups: {' '.join(groups)}")
    with tempfile.TemporaryDirectory(prefix="bench-action-") as folder:
        work = Path(folder)
        cold = action_install(work, groups, python=args.python)
        warm = action_install(work, groups, python=args.python)
        for name, result in (("cold", cold), ("warm", warm)):
            print(
                f"action {name}: {result['total']:.1f} s (uv {result['uv']:.1f}, packages {result['packages']:.1f},"
                f" defectops {result['defectops']:.1f}); {result['size_mb']:.0f} MB installed"
            )
        if not args.skip_baseline:
            base = baseline_install(work, python=args.python)
            print(
                f"baseline (unpinned pip install .): {base['total']:.1f} s; {base['size_mb']:.0f} MB installed"
            )
            print(
                f"ratios: cold {cold['total'] / base['total']:.2f}x the baseline's time, "
                f"{cold['size_mb'] / base['size_mb']:.2f}x its size; warm {warm['total'] / base['total']:.2f}x"
            )
    print(f"targets: cold <= 30 s ({'met' if cold['total'] <= 30 else 'NOT met'}), "
          f"<= 400 MB ({'met' if cold['size_mb'] <= 400 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
