"""The one ``git cat-file --batch`` reader shared by the miner, the code metrics and the labeler."""

from __future__ import annotations

from pathlib import Path

import pytest

from defectops.errors import GitError, MissingObjectError
from defectops.git.blobs import BlobReader
from defectops.git.repo import GitRepo
from gitrepo import RepoBuilder

GHOST = "1" * 40


@pytest.fixture
def repo(tmp_path: Path) -> RepoBuilder:
    builder = RepoBuilder.create(tmp_path / "repo")
    files: dict[str, str | bytes] = {f"f{i:03}.txt": f"file {i}\n" * (i + 1) for i in range(110)}
    files["empty.txt"] = ""
    files["no-newline.txt"] = "last"
    files["bin.dat"] = b"\x00\x01\n\x02"
    builder.commit("c1", files)
    return builder


def blob(repo: RepoBuilder, path: str) -> str:
    return repo.git("rev-parse", f"HEAD:{path}").strip()


def test_single_and_batched_reads(repo: RepoBuilder) -> None:
    with BlobReader(GitRepo.open(repo.path)) as reader:
        assert reader.read(blob(repo, "f002.txt")) == b"file 2\n" * 3
        assert reader.read(blob(repo, "empty.txt")) == b""
        assert reader.read(blob(repo, "no-newline.txt")) == b"last"
        assert reader.read(blob(repo, "bin.dat")) == b"\x00\x01\n\x02"
        # 110 ids are more than one direct write: the batch is written by a thread while answers are read
        oids = [blob(repo, f"f{i:03}.txt") for i in range(110)]
        got = list(reader.read_many(oids))
        assert [oid for oid, _ in got] == oids
        assert [data for _, data in got] == [f"file {i}\n".encode() * (i + 1) for i in range(110)]
        assert list(reader.read_many([])) == []
        assert reader.read(blob(repo, "f000.txt")) == b"file 0\n"  # still in step after the batch


def test_size_limit_reads_past_large_blobs(repo: RepoBuilder) -> None:
    small, big = blob(repo, "f000.txt"), blob(repo, "f100.txt")
    with BlobReader(GitRepo.open(repo.path)) as reader:
        assert dict(reader.read_many([big, small], max_bytes=100)) == {big: None, small: b"file 0\n"}


def test_missing_object_is_a_one_line_error_and_the_reader_recovers(repo: RepoBuilder) -> None:
    ok = blob(repo, "f001.txt")
    with BlobReader(GitRepo.open(repo.path)) as reader:
        with pytest.raises(MissingObjectError, match=f"object {GHOST} is missing"):
            reader.read(GHOST)
        with pytest.raises(MissingObjectError, match="missing"):
            list(reader.read_many([ok, GHOST, ok]))
        assert reader.read(ok) == b"file 1\n" * 2


def test_stopping_a_batch_early_keeps_the_reader_usable(repo: RepoBuilder) -> None:
    oids = [blob(repo, f"f{i:03}.txt") for i in range(110)]
    with BlobReader(GitRepo.open(repo.path)) as reader:
        answers = reader.read_many(oids)
        assert next(answers)[0] == oids[0]
        answers.close()  # the other answers are never read: that process is ended
        assert reader.read(oids[5]) == b"file 5\n" * 6


def test_blobs_only_refuses_other_objects(repo: RepoBuilder) -> None:
    commit = repo.head()
    with BlobReader(GitRepo.open(repo.path)) as reader:
        assert reader.read(commit).startswith(b"tree ")  # the miner and the labeler take what git prints
    with (
        BlobReader(GitRepo.open(repo.path), blobs_only=True) as reader,
        pytest.raises(GitError, match="is a commit, not a file's content"),
    ):
        reader.read(commit)
