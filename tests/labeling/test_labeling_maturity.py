"""Label maturity: clean only after the waiting period, defect from the first fix's time, and labels as of a
past time. Every date below is worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from defectops.data import VERDICT
from defectops.data.labels import compute_labels, empty_links, labels_as_of
from defectops.errors import InputError


def _day(month: int, day: int) -> datetime:
    return datetime(2020, month, day, tzinfo=UTC)


def _commits() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sha": ["a" * 40, "b" * 40, "c" * 40, "d" * 40],
            "committed_at": [_day(1, 1), _day(3, 1), _day(5, 1), _day(5, 20)],
            "is_merge": [False, False, False, False],
        }
    )


def _links() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fix_sha": ["f" * 40, "e" * 40, "9" * 40],
            "inducing_sha": ["a" * 40, "c" * 40, None],
            "path": ["x.py", "y.py", None],
            "lines": [[1], [2], []],
            "variant": ["ag", "ag", "ag"],
            "evidence": ["szz:message", "szz:message", "unlinkable:only-additions"],
            "fix_committed_at": pd.to_datetime([_day(4, 15), _day(5, 25), _day(5, 21)], utc=True),
        }
    )


def _by_sha(frame: pd.DataFrame) -> dict[str, tuple[str, str]]:
    return {row.sha[0]: (row.verdict, str(row.label_known_at)) for row in frame.itertuples()}


def test_labels_now_with_a_90_day_wait() -> None:
    labels = compute_labels(_commits(), _links(), now=_day(6, 1), waiting_days=90)
    assert _by_sha(labels) == {
        "a": ("defect", "2020-04-15 00:00:00+00:00"),  # fixed on 04-15
        "b": ("clean", "2020-05-30 00:00:00+00:00"),  # 03-01 + 90 days = 05-30 <= 06-01
        "c": ("defect", "2020-05-25 00:00:00+00:00"),  # fixed on 05-25, before its 90 days were over
        "d": ("unknown", "NaT"),  # 05-20 + 90 days = 08-18 > 06-01, no fix
    }
    assert labels.set_index("sha").loc["a" * 40, "first_fix_sha"] == "f" * 40


def test_a_fix_after_now_does_not_count() -> None:
    labels = compute_labels(_commits(), _links(), now=_day(5, 1), waiting_days=90)
    # The fix of c lands on 05-25, after now (05-01): c is only 0 days old, so unknown.
    assert _by_sha(labels)["c"] == ("unknown", "NaT")
    assert _by_sha(labels)["a"] == ("defect", "2020-04-15 00:00:00+00:00")


def test_zero_wait_makes_unfixed_commits_clean_at_once() -> None:
    labels = compute_labels(_commits(), empty_links(), now=_day(5, 20), waiting_days=0)
    assert _by_sha(labels)["d"] == ("clean", "2020-05-20 00:00:00+00:00")


def test_labels_as_of_past_times() -> None:
    labels = compute_labels(_commits(), _links(), now=_day(6, 1), waiting_days=90)
    # 04-01: only a and b exist. a's fix (04-15) is in the future, its 90 days ended 03-31 -> clean then.
    assert _by_sha(labels_as_of(labels, _day(4, 1))) == {
        "a": ("clean", "2020-03-31 00:00:00+00:00"),
        "b": ("unknown", "NaT"),  # 03-01 + 90 = 05-30
    }
    # 04-20: a's fix has landed.
    assert _by_sha(labels_as_of(labels, _day(4, 20)))["a"] == ("defect", "2020-04-15 00:00:00+00:00")
    # 05-26: c's fix (05-25) is known, d (05-20) is too young, b still waits until 05-30.
    assert _by_sha(labels_as_of(labels, _day(5, 26))) == {
        "a": ("defect", "2020-04-15 00:00:00+00:00"),
        "b": ("unknown", "NaT"),
        "c": ("defect", "2020-05-25 00:00:00+00:00"),
        "d": ("unknown", "NaT"),
    }
    # As of now, nothing changes.
    pd.testing.assert_frame_equal(labels_as_of(labels, _day(6, 1)), labels.reset_index(drop=True))


def test_fix_dated_before_its_bug_is_known_from_the_commit() -> None:
    links = _links()
    links.loc[0, "fix_committed_at"] = pd.Timestamp("2019-12-01", tz="UTC")  # clock skew
    labels = compute_labels(_commits(), links, now=_day(6, 1), waiting_days=90)
    assert _by_sha(labels)["a"] == ("defect", "2020-01-01 00:00:00+00:00")


def test_naive_times_and_negative_waits_are_refused() -> None:
    with pytest.raises(InputError, match="time zone"):
        compute_labels(_commits(), _links(), now=datetime(2020, 6, 1), waiting_days=90)
    with pytest.raises(InputError, match="waiting_days"):
        compute_labels(_commits(), _links(), now=_day(6, 1), waiting_days=-1)
    labels = compute_labels(_commits(), _links(), now=_day(6, 1), waiting_days=90)
    with pytest.raises(InputError, match="time zone"):
        labels_as_of(labels, datetime(2020, 6, 1))


def test_stored_labels_follow_the_waiting_period(tmp_path, run_labels) -> None:
    from gitrepo import RepoBuilder

    repo = RepoBuilder.create(tmp_path / "r")
    old = repo.commit("Add a", {"a.py": "a = 1\n"})  # 2020-01-01
    young = repo.commit("Add b", {"b.py": "b = 1\n"}, days=80)  # 2020-03-21
    result = run_labels(repo.path, now=datetime(2020, 4, 10, tzinfo=UTC), waiting_days=90)
    # old: 01-01 + 90 = 03-31 <= 04-10 -> clean; young: 03-21 + 90 = 06-19 > 04-10 -> unknown.
    got = {row.sha: (row.verdict, str(row.label_known_at)) for row in result.labels.itertuples()}
    assert got == {old: ("clean", "2020-03-31 00:00:00+00:00"), young: ("unknown", "NaT")}
    stored = pd.read_parquet(result.labels_path)
    assert list(stored.columns) == list(result.labels.columns)
    assert dict(zip(stored["sha"], stored[VERDICT], strict=True)) == {old: "clean", young: "unknown"}


def test_labels_stored_before_the_verdict_rename_still_load(tmp_path, workspace, run_labels) -> None:
    """A labels.parquet of an older version named the verdict column ``label``: it loads as ``verdict``."""
    from defectops.data import label_counts, training_table, upgrade_labels
    from defectops.git.repo import GitRepo
    from defectops.labeling.pipeline import load_labels
    from defectops.pipeline.heal import FrameSource
    from gitrepo import RepoBuilder

    repo = RepoBuilder.create(tmp_path / "r")
    old = repo.commit("Add a", {"a.py": "a = 1\n"})  # 2020-01-01
    young = repo.commit("Add b", {"b.py": "b = 1\n"}, days=80)  # 2020-03-21
    now = datetime(2020, 4, 10, tzinfo=UTC)
    result = run_labels(repo.path, now=now, waiting_days=90)
    current = load_labels(workspace, GitRepo.open(repo.path))
    assert VERDICT in current.columns
    assert "label" not in current.columns

    old_style = current.rename(columns={VERDICT: "label"})
    assert list(old_style.columns)[:2] == ["sha", "label"]
    old_style.to_parquet(result.labels_path, index=False)
    loaded = load_labels(workspace, GitRepo.open(repo.path))
    pd.testing.assert_frame_equal(loaded, current)
    assert dict(zip(loaded["sha"], loaded[VERDICT], strict=True)) == {old: "clean", young: "unknown"}

    # the readers of an in-memory labels table accept the old name too; a current table is left as it is
    assert upgrade_labels(current) is current
    assert label_counts(old_style) == {"defect": 0, "clean": 1, "unknown": 1}
    pd.testing.assert_frame_equal(labels_as_of(old_style, now), labels_as_of(current, now))
    assert list(FrameSource(pd.DataFrame(), old_style).labels.columns) == list(current.columns)
    commits = pd.DataFrame(
        {
            "sha": [old, young],
            "is_merge": [False, False],
            "author_time": [datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 3, 21, tzinfo=UTC)],
            "churn": [1, 1],
            "message": ["Add a", "Add b"],
            **{name: [1.0, 1.0] for name in ("ns", "nd", "nf", "entropy", "la", "ld", "lt", "fix")},
            **{name: [1.0, 1.0] for name in ("ndev", "age", "nuc", "exp", "rexp", "sexp")},
        }
    )
    table = training_table(commits, old_style, as_of=now)
    assert table["commit"].tolist() == [old]
    assert table["label"].tolist() == [0]  # the 0/1 target keeps its name
