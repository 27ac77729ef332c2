"""``predict --store`` on a shallow clone: history context from the store, the seed's layout, state saved back.

Run through the real entry point (``defectops.cli.main``) on a local folder and on the local S3 server
(moto on 127.0.0.1). The process metrics of the scored commits are worked out by hand below and must equal
what a complete clone computes for the same commit.
"""

from __future__ import annotations

import math
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from cli_main import run_main
from defectops.mining.state import StateStore
from defectops.storage.artifacts import ArtifactStore
from gitrepo import BOB, RepoBuilder, lines
from s3_server import BUCKET, CREDENTIALS, s3_endpoint

__all__ = ["s3_endpoint"]  # fixture

YEAR_DAYS = 365.25
METRICS = ["ns", "nd", "nf", "entropy", "la", "ld", "lt", "fix", "ndev", "age", "nuc", "exp", "rexp", "sexp"]
APP_AFTER_C1 = lines(10).replace("line 0\n", "LINE 0\n").replace("line 1\n", "LINE 1\n")

# Hand-worked metrics of c3 (Bob, 2020-01-06, "Use util in app": src/app.py +3, lib/util.py -1):
#   ns = nd = nf = 2 (src, lib); la 3, ld 1; entropy of churns (3, 1) = -(.75 log2 .75 + .25 log2 .25);
#   lt = 10 + 4 lines before; ndev: app.py {alice, bob} + util.py {alice} = 2; age: app.py last changed by c1
#   (01-03, 3 days), util.py by c2 (01-04, 2 days) -> 2.5; nuc {c1, c2} = 2; exp: Bob's c1 = 1;
#   rexp = 1 / (1 + 3 / 365.25); sexp: Bob's c1 touched {src}, which c3 touches too = 1.
C3 = {
    "ns": 2, "nd": 2, "nf": 2, "entropy": -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)),
    "la": 3, "ld": 1, "lt": 14, "fix": 0, "ndev": 2, "age": 2.5, "nuc": 2, "exp": 1,
    "rexp": 1 / (1 + 3 / YEAR_DAYS), "sexp": 1,
}  # fmt: skip
# Hand-worked metrics of c4 (Alice, 2020-01-07, "Fix crash in util": lib/util.py +1, 3 lines before):
#   one file: ns = nd = nf = 1, entropy 0; ndev: util.py {alice (c2), bob (c3)} = 2; age 1 day (c3);
#   nuc {c3} = 1; exp: Alice's c0 and c2 = 2; rexp = 1/(1 + 6/365.25) + 1/(1 + 3/365.25); sexp: c2 touched
#   {lib} (c0 touched {src, ''}) = 1; fix: "Fix ..." is a fix message.
C4 = {
    "ns": 1, "nd": 1, "nf": 1, "entropy": 0.0, "la": 1, "ld": 0, "lt": 3, "fix": 1, "ndev": 2, "age": 1.0,
    "nuc": 1, "exp": 2, "rexp": 1 / (1 + 6 / YEAR_DAYS) + 1 / (1 + 3 / YEAR_DAYS), "sexp": 1,
}  # fmt: skip


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def where(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """None for local folders, or the local S3 server's endpoint, set up as in CI (endpoint from the
    setting, credentials from the AWS variables)."""
    if request.param == "local":
        return None
    endpoint: str = request.getfixturevalue("s3_endpoint")
    monkeypatch.setenv("DEFECTOPS_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["secret"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return endpoint


def new_store_url(endpoint: str | None, folder: Path) -> str:
    """An empty store: ``folder``, or a fresh prefix of the test bucket."""
    return str(folder) if endpoint is None else f"s3://{BUCKET}/ci/{uuid.uuid4().hex}"


def open_store(url: str, endpoint: str | None) -> ArtifactStore:
    return ArtifactStore.from_url(url, endpoint_url=endpoint)


def build_source(path: Path) -> RepoBuilder:
    """c0 Alice 01-01 (src/app.py 10, README 1); c1 Bob 01-03 (app.py 2 lines changed); c2 Alice 01-04
    (new lib/util.py, 4 lines)."""
    repo = RepoBuilder.create(path)
    repo.commit("initial import", {"src/app.py": lines(10), "README": "a\n"}, days=0)
    repo.commit("Rework app", {"src/app.py": APP_AFTER_C1}, author=BOB, days=2)
    repo.commit("Add util", {"lib/util.py": lines(4, "u")}, days=1)
    return repo


def shallow_clone(source: RepoBuilder, target: Path, depth: int) -> RepoBuilder:
    subprocess.run(
        ["git", "clone", "-q", f"--depth={depth}", f"file://{source.path}", str(target)],
        check=True,
        capture_output=True,
    )
    clone = RepoBuilder(target, clock=source.clock)
    clone.git("config", "commit.gpgsign", "false")
    return clone


def add_c3(repo: RepoBuilder) -> str:
    return repo.commit(
        "Use util in app",
        {"src/app.py": APP_AFTER_C1 + lines(3, "extra"), "lib/util.py": lines(3, "u")},
        author=BOB,
        days=2,
    )


def metrics_row(store: ArtifactStore, sha: str) -> dict[str, Any]:
    current = store.read_metrics_current()
    row = current.loc[current["sha"] == sha]
    assert len(row) == 1, current
    return {name: row.iloc[0][name] for name in METRICS}


def assert_metrics(got: dict[str, Any], expected: dict[str, float]) -> None:
    for name in METRICS:
        assert float(got[name]) == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


def test_shallow_clone_gets_its_history_from_the_store(
    where: str | None,
    tmp_path: Path,
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = where
    store_url = new_store_url(endpoint, tmp_path / "store")
    source = build_source(tmp_path / "source")
    model = ["--model-dir", str(tiny_model_dir)]

    # A trusted job with the complete history mines it and seeds the store.
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws-trusted"))
    assert run_main(["mine", "--repo", str(source.path)], capsys)[0] == 0
    code, out, err = run_main(["state", "export", "--repo", str(source.path), "--store", store_url], capsys)
    assert code == 0, err
    assert "state/miner.sqlite" in out

    # CI: a depth-1 clone (c2 only), a new commit on it.
    clone = shallow_clone(source, tmp_path / "ci", depth=1)
    c3 = add_c3(clone)
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws-ci-0"))
    code, _, err = run_main(["predict", "--repo", str(clone.path), *model], capsys)
    assert code == 4, err
    assert "shallow clone and there is no miner state" in err
    empty = new_store_url(endpoint, tmp_path / "empty-store")
    code, _, err = run_main(["predict", "--repo", str(clone.path), *model, "--store", empty], capsys)
    assert code == 4, err
    assert "has no miner state yet: seed it once" in err

    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws-ci-1"))
    code, out, err = run_main(["predict", "--repo", str(clone.path), *model, "--store", store_url], capsys)
    assert code == 0, err
    assert "loaded the miner state" in err
    assert "saved the miner state" in err
    store = open_store(store_url, endpoint)
    assert_metrics(metrics_row(store, c3), C3)
    keys = store.list_keys()
    (prediction_key,) = [k for k in keys if k.startswith("predictions/")]
    assert prediction_key.startswith(f"predictions/predictions_{c3}_")
    assert set(keys) == {
        prediction_key,
        "history/prediction_history_master.csv",
        "metrics/metrics_current.csv",
        "metrics/metrics_history.csv",
        "state/miner.sqlite",
    }
    history = store.read_history()
    assert history["commit"].tolist() == [c3]
    assert int(store.read_metrics_history()["exact"].iloc[0]) == 1
    # The state was advanced to c3 and saved back; it still knows the repository's root commit.
    saved = StateStore(store.get_state("miner.sqlite", tmp_path / "saved.sqlite")).info()
    assert saved is not None
    assert (saved.head, saved.commits, saved.roots) == (c3, 4, (source.shas[0],))

    # The same commit on the complete clone: the same metrics (no store there).
    source.git("fetch", "-q", str(clone.path), "main")
    source.git("merge", "-q", "--ff-only", "FETCH_HEAD")
    assert source.head() == c3
    source.clock = clone.clock
    full_store = tmp_path / "full-store"
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws-full"))
    code, _, err = run_main(
        ["predict", "--repo", str(source.path), *model, "--store", str(full_store)], capsys
    )
    assert code == 0, err
    assert metrics_row(ArtifactStore.from_url(full_store), c3) == metrics_row(store, c3)

    # Re-running the job on the same commit: the store's state already holds it.
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws-ci-rerun"))
    code, _, err = run_main(["predict", "--repo", str(clone.path), *model, "--store", store_url], capsys)
    assert code == 4, err
    assert "it was scored and saved before" in err

    # The next push: a depth-2 clone (c4 and c3) starts from the state the first job saved.
    c4 = source.commit("Fix crash in util", {"lib/util.py": lines(3, "u") + "guard\n"}, days=1)
    second = shallow_clone(source, tmp_path / "ci-2", depth=2)
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws-ci-2"))
    code, _, err = run_main(["predict", "--repo", str(second.path), *model, "--store", store_url], capsys)
    assert code == 0, err
    assert_metrics(metrics_row(store, c4), C4)
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws-full"))
    code, _, err = run_main(
        ["predict", "--repo", str(source.path), *model, "--store", str(full_store)], capsys
    )
    assert code == 0, err
    assert metrics_row(ArtifactStore.from_url(full_store), c4) == metrics_row(store, c4)
    assert store.read_history()["commit"].tolist() == [c3, c4]
    assert store.read_metrics_history()["sha"].tolist() == [c3, c4]
    assert len(store.list_predictions()) == 2


def test_pull_requests_do_not_save_the_state(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = build_source(tmp_path / "source")
    store_url = str(tmp_path / "store")
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws-trusted"))
    assert run_main(["mine", "--repo", str(source.path)], capsys)[0] == 0
    assert run_main(["state", "export", "--repo", str(source.path), "--store", store_url], capsys)[0] == 0
    before = ArtifactStore.from_url(store_url).read_bytes("state/miner.sqlite")
    clone = shallow_clone(source, tmp_path / "pr", depth=1)
    c3 = add_c3(clone)

    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws-pr"))
    code, _, err = run_main(
        ["predict", "--repo", str(clone.path), "--model-dir", str(tiny_model_dir), "--store", store_url,
         "--no-save-state"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    store = ArtifactStore.from_url(store_url)
    assert store.read_bytes("state/miner.sqlite") == before
    assert_metrics(metrics_row(store, c3), C3)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["state", "export", "--repo", "."], "give exactly one of --out FILE or --store URL"),
        (["predict", "--store", "ftp://x/y"], "unsupported artifact store URL"),
    ],
)
def test_store_mistakes_are_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = build_source(tmp_path / "source")
    argv = [a if a != "." else str(source.path) for a in argv]
    if argv[0] == "predict":
        argv += ["--repo", str(source.path), "--starter"]
    code, out, err = run_main(argv, capsys)
    assert code != 0
    assert fragment in err, err
    assert "Traceback" not in err + out
