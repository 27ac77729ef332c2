"""Hostile repositories through the CLI (issue #14): every case below, every command, in a process of its own.

    python benchmarks/probe_repos.py [--out DIR] [--parallel 2]

Builds each repository under ``DIR`` (a new temporary folder by default, outside any git work tree), then runs
``mine``, ``mine --commit HEAD``, ``label`` and ``run`` on it in turn, in one workspace, through the real entry point
(``defectops`` beside this Python, with this checkout's ``src`` first on ``PYTHONPATH``). Counts invocations,
exit codes, tracebacks and error outputs of more than one line; prints one row per case. A run is clean when
no invocation printed a traceback and every refusal is one line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from gitrepo import RepoBuilder, lines  # noqa: E402

COMMANDS: dict[str, list[str]] = {
    "mine": ["mine", "--repo", "{repo}", "-q"],
    "score": ["mine", "--repo", "{repo}", "--commit", "HEAD", "--json"],
    "label": ["label", "--repo", "{repo}", "-q"],
    "run": ["run", "--repo", "{repo}", "--budget-seconds", "1", "-q"],
}


def defectops_command() -> list[str]:
    return [str(Path(sys.executable).with_name("defectops"))]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFECTOPS_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DEFECTOPS_LOCK_WAIT_SECONDS"] = "0"
    return env


# ------------------------------------------------------------------------------------------------ cases


def _history(path: Path, commits: int = 6) -> RepoBuilder:
    repo = RepoBuilder.create(path)
    for i in range(commits):
        repo.commit(f"change {i}" if i % 3 else f"fix bug {i}", {f"m{i % 2}/a.py": lines(3 + i)}, days=3)
    return repo


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def case_missing(base: Path) -> Path:
    return base / "does-not-exist"


def case_file(base: Path) -> Path:
    (base / "a-file").write_text("not a repository\n")
    return base / "a-file"


def case_plain_dir(base: Path) -> Path:
    (base / "plain").mkdir()
    (base / "plain" / "x.py").write_text("x = 1\n")
    return base / "plain"


def case_empty_repo(base: Path) -> Path:
    return RepoBuilder.create(base / "empty").path


def case_one_commit(base: Path) -> Path:
    repo = RepoBuilder.create(base / "one")
    repo.commit("only", {"a.py": "x = 1\n"})
    return repo.path


def case_bare(base: Path) -> Path:
    origin = _history(base / "origin")
    _git("clone", "-q", "--bare", str(origin.path), str(base / "bare.git"))
    return base / "bare.git"


def case_shallow(base: Path) -> Path:
    origin = _history(base / "origin")
    _git("clone", "-q", "--depth", "2", f"file://{origin.path}", str(base / "shallow"))
    return base / "shallow"


def case_missing_object(base: Path) -> Path:
    repo = _history(base / "broken")
    blob = repo.git("rev-parse", "HEAD:m1/a.py").strip()
    os.remove(repo.path / ".git" / "objects" / blob[:2] / blob[2:])
    return repo.path


def case_truncated_object(base: Path) -> Path:
    repo = _history(base / "truncated")
    tree = repo.git("rev-parse", "HEAD^{tree}").strip()
    target = repo.path / ".git" / "objects" / tree[:2] / tree[2:]
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:7])
    return repo.path


def case_garbage_head(base: Path) -> Path:
    repo = _history(base / "head")
    (repo.path / ".git" / "HEAD").write_bytes(b"\x00\xffnot a ref\n")
    return repo.path


def case_dangling_gitfile(base: Path) -> Path:
    (base / "gitfile").mkdir()
    (base / "gitfile" / ".git").write_text("gitdir: /nonexistent/elsewhere.git\n")
    return base / "gitfile"


def case_non_utf8(base: Path) -> Path:
    repo = _history(base / "latin")
    (repo.path / os.fsdecode(b"caf\xe9.py")).write_bytes(b"caf\xe9 = 1\n")
    repo.git("add", "-A")
    message = base / "msg"
    message.write_bytes(b"R\xe9sum\xe9: fix \xff\xfe bug\n")
    repo.git("-c", "i18n.commitEncoding=latin-1", "commit", "-q", "-F", str(message))
    return repo.path


def case_odd_encodings(base: Path) -> Path:
    repo = _history(base / "encodings")
    repo.commit(
        "fix: utf-16, BOMs, CRLF, NUL",
        {
            "u16.py": "x = 1\r\ny = 2\r\n".encode("utf-16"),
            "bom.py": b"\xef\xbb\xbfx = 1\r\n",
            "nul.txt": b"a\x00b\nc\x00\n",
            "weird \t name\n.py": "z = 3\n",
            "ünïcødé/файл.py": "w = 4\n",
        },
        days=1,
    )
    return repo.path


def case_symlinks(base: Path) -> Path:
    repo = _history(base / "symlinks")
    (repo.path / "loop").symlink_to("loop")
    (repo.path / "outside").symlink_to("/etc/passwd")
    (repo.path / "dir-link").symlink_to(repo.path / "m0")
    repo.git("add", "-A")
    repo.commit("fix: add symlinks", days=1)
    return repo.path


def case_symlink_to_repo(base: Path) -> Path:
    repo = _history(base / "target")
    (base / "link").symlink_to(repo.path)
    return base / "link"


def case_huge_files(base: Path) -> Path:
    repo = _history(base / "huge")
    repo.commit(
        "fix: a 30 MB binary and a 5 MB line",
        {"blob.bin": os.urandom(30 * 1024 * 1024), "long.py": "x = '" + "a" * 5_000_000 + "'\n"},
        days=1,
    )
    repo.commit("fix: change the line", {"long.py": "x = '" + "b" * 5_000_000 + "'\n"}, days=1)
    return repo.path


def case_many_files(base: Path) -> Path:
    repo = _history(base / "many")
    for i in range(5000):
        folder = repo.path / f"d{i % 50}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.txt").write_text(f"{i}\n")
    repo.git("add", "-A")
    repo.commit("fix: import 5000 files", days=1)
    return repo.path


def case_odd_dates(base: Path) -> Path:
    repo = RepoBuilder.create(base / "dates")
    repo.commit("from the future", {"a.py": "x\n"}, when=datetime(2099, 1, 1, tzinfo=UTC))
    repo.commit("fix: from 1970", {"a.py": "y\n"}, when=datetime(1970, 1, 2, tzinfo=UTC))
    repo.commit(
        "fix: +14:00", {"a.py": "z\n"}, when=datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    )
    return repo.path


def case_merges_and_roots(base: Path) -> Path:
    repo = _history(base / "merges")
    repo.git("checkout", "-q", "--orphan", "other")
    repo.git("rm", "-rfq", ".")
    repo.commit("second root", {"b.py": "b\n"}, days=1)
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--allow-unrelated-histories", "-m", "merge two roots", "other")
    repo.commit("empty fix", allow_empty=True, days=1)
    repo.git("checkout", "-q", "--detach", "HEAD~1")
    return repo.path


def case_submodule(base: Path) -> Path:
    sub = _history(base / "sub")
    repo = _history(base / "super")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "vendor/sub")
    repo.commit("fix: add submodule", days=1)
    return repo.path


CASES: dict[str, Callable[[Path], Path]] = {
    name.removeprefix("case_"): value
    for name, value in globals().items()
    if name.startswith("case_") and callable(value)
}


# ------------------------------------------------------------------------------------------------ probe


def invoke(repo: Path, command: str, workspace: Path) -> dict[str, Any]:
    argv = [*defectops_command(), "-w", str(workspace), *(a.format(repo=repo) for a in COMMANDS[command])]
    done = subprocess.run(argv, capture_output=True, text=True, env=cli_env(), timeout=900, check=False)
    err = done.stderr.strip()
    return {
        "command": command,
        "code": done.returncode,
        "traceback": "Traceback" in done.stderr or "Traceback" in done.stdout,
        "multi_line_error": done.returncode != 0 and "\n" in err,
        "last": err.splitlines()[-1] if err else "",
    }


def probe_case(name: str, base: Path) -> dict[str, Any]:
    """Build one case and run every command on it in turn, in one workspace (``score`` after ``mine``)."""
    folder = base / name
    folder.mkdir(parents=True)
    repo = CASES[name](folder)
    results = [invoke(repo, command, folder / "ws") for command in COMMANDS]
    return {"case": name, "results": results}


def probe(base: Path | None = None, parallel: int = 2) -> dict[str, Any]:
    """Every case; ``base`` (default: a new temporary folder) must not lie inside a git work tree, or git
    would find the enclosing repository for the cases that are not one."""
    base = base or Path(tempfile.mkdtemp(prefix="probe-repos-"))
    with ThreadPoolExecutor(parallel) as pool:
        cases = list(pool.map(lambda name: probe_case(name, base), CASES))
    every = [r for c in cases for r in c["results"]]
    return {
        "cases": cases,
        "repositories": len(cases),
        "invocations": len(every),
        "succeeded": sum(r["code"] == 0 for r in every),
        "refused": sum(r["code"] != 0 for r in every),
        "tracebacks": sum(r["traceback"] for r in every),
        "multi_line_errors": sum(r["multi_line_error"] for r in every),
    }


def print_cases(result: dict[str, Any]) -> None:
    print(f"{'repository':<20} " + " ".join(f"{c:>6}" for c in COMMANDS) + "  first refusal")
    for case in result["cases"]:
        codes = " ".join(
            f"{r['code']:>5}{'!' if r['traceback'] or r['multi_line_error'] else ' '}"
            for r in case["results"]
        )
        refusal = next((r["last"] for r in case["results"] if r["code"] != 0), "")
        print(f"{case['case']:<20} {codes}  {refusal[:110]}")
    print(
        f"{result['repositories']} repositories, {result['invocations']} invocations: {result['succeeded']} "
        f"succeeded, {result['refused']} refused, {result['tracebacks']} tracebacks, "
        f"{result['multi_line_errors']} refusals of more than one line"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    print_cases(probe(args.out, args.parallel))


if __name__ == "__main__":
    main()
