"""One heal cycle at a time: each path through it, with the real registry, log, control file and audit table."""

from __future__ import annotations

import copy
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from defectops.config import HealSettings
from defectops.data import VERDICT
from defectops.errors import DataError, ModelError
from defectops.pipeline.heal import (
    FrameSource,
    History,
    RepositorySource,
    replay,
)
from defectops.predlog import FeedbackRecord, PredictionRecord
from defectops.registry.audit import AuditLog, HealRecord
from defectops.registry.records import CHALLENGER, CHAMPION
from gitrepo import RepoBuilder
from heal_world import (
    WAITING_DAYS,
    Stack,
    WorldSpec,
    bootstrap_champion,
    commits_frame,
    day,
    generate,
    heal_tracking,
    labels_frame,
    mlflow_environment_restored,
    stack,
)

__all__ = ["heal_tracking", "mlflow_environment_restored", "stack"]  # fixtures pytest finds here

QUIET = WorldSpec(seed=3, days=340, per_day=4, drift_day=None)


@pytest.fixture(scope="module")
def quiet_world() -> pd.DataFrame:
    return generate(QUIET)


def frame_source(world: pd.DataFrame) -> FrameSource:
    return FrameSource(commits_frame(world), labels_frame(world, end=day(QUIET.days)))


def expected_new_labels(world: pd.DataFrame, since: datetime, now: datetime) -> int:
    """Labels that became known in (since, now], worked out from the history itself: a defect is known when
    its fix lands, any other change 30 days after it was made (the waiting period)."""
    fixed = world["defect"] & (world["fix_time"] <= pd.Timestamp(now))
    known_at = world["fix_time"].where(fixed, world["time"] + pd.Timedelta(days=WAITING_DAYS))
    return int(((known_at > pd.Timestamp(since)) & (known_at <= pd.Timestamp(now))).sum())


def test_without_a_champion_the_cycle_says_so(stack: Stack) -> None:
    report = stack.healer(None, HealSettings()).cycle(day(10))
    assert [(r.step, r.outcome) for r in report.records] == [("start", "no_champion")]
    assert "defectops run" in report.records[0].reason
    assert report.champion_version is None
    stored = AuditLog(f"sqlite:///{stack.workspace / 'heal.db'}").events(HealRecord, stack.name)
    assert [r.id for r in stored] == [r.id for r in report.records]
    run = MlflowClient(tracking_uri=stack.registry.config.tracking_uri).get_run(str(report.mlflow_run_id))
    assert run.info.status == "FINISHED"
    assert run.data.tags["defectops.heal.start"] == "no_champion"


def test_the_window_minimum_counts_a_commit_scored_twice_once(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    source = frame_source(quiet_world)
    first = bootstrap_champion(stack.registry, stack.name, source, day(240))
    # 60 commits, each scored twice (a pull request's two pushes): 120 logged rows, 60 changes
    stack.log.record(
        [
            PredictionRecord(
                prediction_id=f"00000000-0000-4000-8000-{n:012d}",
                created_at=day(260) + timedelta(hours=n),
                model_name=stack.name,
                model_version=str(first),
                served=True,
                inputs={"la": 1.0},
                score=0.2,
                threshold=0.5,
                risk_label=0,
                risk_band="low",
                repo="syn",
                commit_sha=f"{n % 60:040x}",
            )
            for n in range(120)
        ]
    )
    report = stack.healer(source, HealSettings(min_new_labels=100_000)).cycle(day(270))
    monitored = report.record("monitor")
    assert monitored is not None
    assert monitored.outcome == "skipped"
    assert monitored.reason.startswith(f"120 served predictions (60 changes) of v{first} from 2024-08-28")
    assert ": fewer than 100, and 0 labels arrived" in monitored.reason


def test_new_labels_train_a_challenger_into_the_shadow_and_it_expires_unjudged(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    source = frame_source(quiet_world)
    first = bootstrap_champion(stack.registry, stack.name, source, day(240))
    settings = HealSettings(
        budget_seconds=0.0, min_new_labels=50, max_shadow_days=10, min_days_between_challengers=30
    )
    healer = stack.healer(source, settings)
    report = healer.cycle(day(270))
    assert [(r.step, r.outcome) for r in report.records] == [
        ("refresh", "ok"),
        ("monitor", "skipped"),  # no service: no served predictions
        ("decide", "retrain"),
        ("train", "shadow"),
    ]
    monitored = report.record("monitor")
    assert monitored is not None
    # the period in monitor's words: the window starts at the promotion (day 240, 2024-08-28), which is
    # later than 30 days before day 270 (2024-09-27)
    assert monitored.reason == (
        f"0 served predictions of v{first} from 2024-08-28 00:00 to 2024-09-27 00:00 UTC (at most the last "
        f"30 days, DEFECTOPS_HEAL_WINDOW_DAYS; v{first} champion from 2024-08-28 00:00 UTC on): fewer than "
        "100, and 0 labels arrived (fewer than 30); 0 predictions in 30 days: no rate to extrapolate a window "
        "from (DEFECTOPS_HEAL_WINDOW_DAYS)"
    )
    decide_record = report.record("decide")
    assert decide_record is not None
    new_labels = decide_record.evidence["inputs"]["new_labels"]
    assert new_labels == expected_new_labels(quiet_world, day(240), day(270))
    assert new_labels >= 50
    train = report.record("train")
    assert train is not None
    assert train.evidence["triggers"] == ["new_labels"]
    challenger = train.challenger_version
    assert challenger == first + 1
    assert stack.registry.aliases(stack.name) == {CHAMPION: first, CHALLENGER: challenger}
    control = stack.control()
    assert (control.champion, control.challenger) == (first, challenger)
    assert (control.traffic.mode, control.traffic.share) == ("shadow", 1.0)
    assert report.traffic == {"mode": "shadow", "share": 1.0}
    # the training run is the challenger's, and it learnt the labels known at the cycle
    register = [e for e in stack.registry.history(stack.name, alias=CHALLENGER) if e.to_version == challenger]
    assert register[0].evidence["labels_as_of"] == day(270).isoformat()
    assert healer.trained_at(challenger) == day(270)
    # every decision is in the cycle's MLflow run and replays to the same verdict
    client = MlflowClient(tracking_uri=stack.registry.config.tracking_uri)
    stored = client.download_artifacts(str(report.mlflow_run_id), "heal/records.json")
    document = pd.read_json(stored, typ="series")["records"]
    assert [r["step"] for r in document] == ["refresh", "monitor", "decide", "train"]
    assert client.get_run(str(report.mlflow_run_id)).data.tags["defectops.heal.train"] == "shadow"
    assert replay(decide_record, config=stack.registry.config).matches

    # 15 days later no shadow prediction has a label (no service ran): past max_shadow_days it is archived
    later = healer.cycle(day(285))
    gate = later.record("gate")
    assert gate is not None
    assert gate.outcome == "expired"
    assert "0 of the needed 200" in gate.reason
    assert stack.registry.aliases(stack.name) == {CHAMPION: first}
    control = stack.control()
    assert (control.challenger, control.traffic.mode) == (None, "off")
    assert later.outcome("decide") == "blocked"  # the last challenger is 15 < 30 days old
    assert stack.registry.get_version(stack.name, challenger).status == "archived"


@pytest.mark.slow  # an integration test of over 10 s: CI's slow run
def test_offline_gate_judges_at_once_on_commits_the_champion_never_saw(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    source = frame_source(quiet_world)
    first = bootstrap_champion(stack.registry, stack.name, source, day(240))
    settings = HealSettings(budget_seconds=0.0, min_new_labels=50, gate_on="offline")
    report = stack.healer(source, settings).cycle(day(330))
    train = report.record("train")
    assert train is not None
    assert train.outcome in ("promoted", "archived")
    decision = train.evidence["decision"]
    # the window: commits made since the champion was trained (day 240) whose label is known at day 330
    assert decision["n_labels"] == train.evidence["evaluation"]["test_rows"]
    assert decision["n_labels"] >= 200
    assert decision["passed"] is (train.outcome == "promoted")
    assert replay(train, config=stack.registry.config).matches
    aliases = stack.registry.aliases(stack.name)
    assert CHALLENGER not in aliases
    assert aliases[CHAMPION] == (train.challenger_version if decision["passed"] else first)
    control = stack.control()
    assert (control.champion, control.challenger, control.traffic.mode) == (aliases[CHAMPION], None, "off")


def test_online_mode_updates_a_copy_of_the_champion_with_the_new_labels(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    source = frame_source(quiet_world)
    first = bootstrap_champion(stack.registry, stack.name, source, day(240), kind="online")
    settings = HealSettings(budget_seconds=0.0, min_new_labels=50)
    healer = stack.healer(source, settings, online=True)
    champion = healer.model(first).estimator
    coef_before = np.array(champion.sgd_.coef_, copy=True)
    trained_rows = int(champion.n_train_)
    snapshot = copy.deepcopy(champion.class_counts_)
    report = healer.cycle(day(300))
    train = report.record("train")
    assert train is not None
    assert train.outcome == "shadow"
    assert train.evidence["model_kind"] == "online"
    new = expected_new_labels(quiet_world, day(240), day(300))
    assert train.evidence["evaluation"]["partial_fit_rows"] == new
    challenger = stack.registry.load(stack.name, version=int(train.challenger_version or 0)).estimator
    assert challenger.kind == "online"
    assert int(challenger.n_train_) == trained_rows + new
    assert not np.allclose(challenger.sgd_.coef_, coef_before)
    # the champion itself never changed (partial_fit ran on a copy), in memory nor in the registry
    assert np.array_equal(champion.sgd_.coef_, coef_before)
    assert np.array_equal(champion.class_counts_, snapshot)
    reloaded = stack.registry.load(stack.name, version=first).estimator
    assert np.array_equal(reloaded.sgd_.coef_, coef_before)


def test_a_challenger_registered_elsewhere_is_adopted_into_the_shadow(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    source = frame_source(quiet_world)
    first = bootstrap_champion(stack.registry, stack.name, source, day(240))
    outside = stack.registry.register(
        stack.name, f"models:/{stack.name}/{first}", who="bob", why="try this", now=day(250)
    )
    report = stack.healer(source, HealSettings(min_new_labels=100_000)).cycle(day(260))
    gate = report.record("gate")
    assert gate is not None
    assert (gate.outcome, gate.challenger_version) == ("shadow", outside.version)
    control = stack.control()
    assert (control.challenger, control.traffic.mode) == (outside.version, "shadow")


class BrokenSource:
    def refresh(self, now: datetime) -> History:
        raise DataError("the dataset failed its schema check")


def test_a_failing_cycle_is_recorded_and_raised(stack: Stack, quiet_world: pd.DataFrame) -> None:
    bootstrap_champion(stack.registry, stack.name, frame_source(quiet_world), day(240))
    healer = stack.healer(BrokenSource(), HealSettings())
    with pytest.raises(DataError, match="schema check"):
        healer.cycle(day(250))
    records = healer.audit.events(HealRecord, stack.name)
    assert [(r.step, r.outcome) for r in records] == [("error", "failed")]
    assert "DataError" in records[0].reason
    run = MlflowClient(tracking_uri=stack.registry.config.tracking_uri).get_run(str(records[0].mlflow_run_id))
    assert run.info.status == "FAILED"


class ArtifactStoreDownSource:
    """The real history source, but while it refreshes the artifact store of the cycle's running MLflow run
    stops working: its artifact folder's place is taken by a file, so nothing can be logged under it (as with
    an S3 server that answers 500, or a full disk)."""

    def __init__(self, inner: FrameSource | None, stack: Stack) -> None:
        self.inner = inner
        self.stack = stack

    def refresh(self, now: datetime) -> History:
        client = MlflowClient(tracking_uri=self.stack.registry.config.tracking_uri)
        experiment = client.get_experiment_by_name(self.stack.registry.config.experiment_name)
        assert experiment is not None
        [run] = client.search_runs(
            [experiment.experiment_id],
            f"attributes.status = 'RUNNING' and tags.`defectops.model_name` = '{self.stack.name}'",
        )
        artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
        artifacts.parent.mkdir(parents=True, exist_ok=True)
        artifacts.write_text("not a folder")
        if self.inner is None:
            raise DataError("the dataset failed its schema check")
        return self.inner.refresh(now)


def _heal_runs(stack: Stack) -> list[str]:
    client = MlflowClient(tracking_uri=stack.registry.config.tracking_uri)
    experiment = client.get_experiment_by_name(stack.registry.config.experiment_name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], f"tags.`defectops.model_name` = '{stack.name}'")
    return [r.info.status for r in runs if r.data.tags.get("defectops.kind") == "heal"]


def test_a_cycle_whose_artifacts_cannot_be_logged_ends_its_run_failed_and_says_so_in_one_line(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    # Was: the run stayed RUNNING for ever, and the error was the artifact store's raw exception.
    bootstrap_champion(stack.registry, stack.name, frame_source(quiet_world), day(240))
    healer = stack.healer(ArtifactStoreDownSource(frame_source(quiet_world), stack), HealSettings())
    with pytest.raises(ModelError, match="cannot log the heal cycle to its MLflow run") as raised:
        healer.cycle(day(250))
    assert "\n" not in str(raised.value)
    assert _heal_runs(stack) == ["FAILED"]
    records = healer.audit.events(HealRecord, stack.name)
    # The cycle itself ran and is audited, and so is why its MLflow run is incomplete.
    assert [r.step for r in records] == ["refresh", "monitor", "decide", "error"]
    assert "cannot log the heal cycle" in records[-1].reason


def test_a_failing_cycle_whose_artifacts_cannot_be_logged_raises_its_own_error(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    # Was: the error of logging the failed cycle replaced the cycle's own error.
    bootstrap_champion(stack.registry, stack.name, frame_source(quiet_world), day(240))
    healer = stack.healer(ArtifactStoreDownSource(None, stack), HealSettings())
    with pytest.raises(DataError, match="schema check"):
        healer.cycle(day(250))
    assert _heal_runs(stack) == ["FAILED"]
    records = healer.audit.events(HealRecord, stack.name)
    assert [(r.step, r.outcome) for r in records] == [("error", "failed")]


def test_naive_time_is_refused(stack: Stack) -> None:
    from defectops.errors import InputError

    with pytest.raises(InputError, match="timezone-aware"):
        stack.healer(None, HealSettings()).cycle(datetime(2026, 1, 1))


# ----------------------------------------------------------------------------------------------------------
# a real repository: incremental mining and labelling, and its labels sent to the service's log


def test_repository_source_mines_labels_and_feeds_the_labels_to_logged_predictions(
    stack: Stack, synthetic_repo: RepoBuilder, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(synthetic_repo.path), str(clone)], check=True)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    source = RepositorySource(clone, stack.workspace / "ws", waiting_days=90, workers=1)
    first = bootstrap_champion(stack.registry, stack.name, source, now)
    history = source.refresh(now)
    labels = history.labels
    known = labels.loc[(labels[VERDICT] != "unknown") & ~labels["is_merge"]]
    # the service scored three of the repository's commits (as /v1/commits/score logs them), one SZZ finds clean
    clean = str(known.loc[known[VERDICT] == "clean", "sha"].iloc[0])
    scored = [clean, *[sha for sha in known["sha"].head(3) if sha != clean][:2]]
    stack.log.record(
        [
            PredictionRecord(
                prediction_id=f"00000000-0000-4000-8000-00000000000{i}",
                created_at=now - timedelta(days=1),
                model_name=stack.name,
                model_version=str(first),
                served=True,
                inputs={"la": 1.0},
                score=0.2,
                threshold=0.5,
                risk_label=0,
                risk_band="low",
                repo="syn",
                commit_sha=sha,
            )
            for i, sha in enumerate(scored)
        ]
    )
    # a reviewer reported the clean one as defect-inducing through POST /v1/feedback before the cycle
    reported = FeedbackRecord(label=1, repo="syn", commit_sha=clean, source="api:feedback")
    stack.log.add_feedback(reported, now=now - timedelta(hours=2))
    healer = stack.healer(source, HealSettings(min_new_labels=100_000), feedback_repo="syn")
    report = healer.cycle(now)
    refresh = report.record("refresh")
    assert refresh is not None
    # every label known now went to the log once; the three scored commits found their predictions; SZZ's
    # clean verdict (no fix within the waiting period) left the reported defect current (it replaced it before)
    assert refresh.evidence["feedback"] == {
        "recorded": len(known) - 1,
        "duplicate": 0,
        "replaced": 0,
        "matched_predictions": 3,
        "kept": 1,
    }
    assert refresh.reason == (
        f"history brought up to now; labels sent to the prediction log: {len(known) - 1} new, 0 corrected "
        "(they match 3 logged predictions); 1 clean verdict left a defect reported through the API in place"
    )
    window = stack.log.window(now - timedelta(days=2), now, as_of=now)
    verdicts = known.set_index("sha")[VERDICT].to_dict()
    expected = [1 if sha == clean else int(verdicts[sha] == "defect") for sha in scored]
    assert window.set_index("commit_sha").loc[scored, "label"].astype(int).tolist() == expected

    # a new commit: mined incrementally; its label is not known yet, so nothing new reaches the log
    builder = RepoBuilder(clone)
    builder.git("config", "user.name", "Test Runner")
    builder.git("config", "user.email", "runner@example.com")
    builder.commit("Tweak core/f0.py", {"core/f0.py": "changed\n"}, when=now - timedelta(hours=1))
    again = healer.cycle(now + timedelta(days=1))
    refresh = again.record("refresh")
    assert refresh is not None
    assert refresh.evidence["new_commits"] == 1
    # labels dated since the previous cycle minus the 30-day lookback are sent again: all duplicates
    assert refresh.evidence["feedback_since"] == (now - timedelta(days=30)).isoformat(timespec="microseconds")
    feedback = refresh.evidence["feedback"]
    assert feedback["recorded"] == 0
    assert feedback["replaced"] == 0
    again_known = known.loc[
        pd.to_datetime(known["label_known_at"], utc=True) > pd.Timestamp(now - timedelta(days=30))
    ]
    assert feedback["duplicate"] == len(again_known)


def test_without_feedback_repo_labels_find_predictions_by_commit_under_any_repository_id(
    stack: Stack, synthetic_repo: RepoBuilder, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(synthetic_repo.path), str(clone)], check=True)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    source = RepositorySource(clone, stack.workspace / "ws", waiting_days=90, workers=1)
    first = bootstrap_champion(stack.registry, stack.name, source, now)
    labels = source.refresh(now).labels
    known = labels.loc[(labels[VERDICT] != "unknown") & ~labels["is_merge"]]
    shas = known["sha"].head(3).tolist()

    def logged(number: int, repo: str, sha: str, when: datetime) -> PredictionRecord:
        return PredictionRecord(
            prediction_id=f"00000000-0000-4000-8000-{number:012d}",
            created_at=when,
            model_name=stack.name,
            model_version=str(first),
            served=True,
            inputs={"la": 1.0},
            score=0.2,
            threshold=0.5,
            risk_label=0,
            risk_band="low",
            repo=repo,
            commit_sha=sha,
        )

    # The Action logged two commits as "acme/app", a service's --repository one as "syn"; another
    # repository's commit (not in this history) must not be touched.
    other = "f" * 40
    stack.log.record(
        [
            logged(1, "acme/app", shas[0], now - timedelta(days=1)),
            logged(2, "acme/app", shas[1], now - timedelta(days=1)),
            logged(3, "syn", shas[2], now - timedelta(days=1)),
            logged(4, "elsewhere", other, now - timedelta(days=1)),
        ]
    )
    healer = stack.healer(source, HealSettings(min_new_labels=100_000))
    refresh = healer.cycle(now).record("refresh")
    assert refresh is not None
    assert refresh.evidence["feedback_repos"] == ["acme/app", "syn"]
    assert refresh.evidence["feedback_repos_first_sync"] == ["acme/app", "syn"]
    # every known label went to both ids once; each id's predictions found theirs
    assert refresh.evidence["feedback"] == {
        "recorded": 2 * len(known),
        "duplicate": 0,
        "replaced": 0,
        "matched_predictions": 3,
        "kept": 0,
    }
    # the line says why there are twice as many new labels as commits (flask: "7611 new" for 3806 commits)
    assert refresh.reason == (
        f"history brought up to now; labels sent to the prediction log: {2 * len(known)} new, 0 corrected "
        "(they match 3 logged predictions), under 2 repository ids (acme/app, syn), each with its own copy of a "
        "commit's label"
    )
    window = stack.log.window(now - timedelta(days=2), now, as_of=now).set_index("prediction_id")
    expected = known.set_index("sha")[VERDICT].eq("defect").astype(int)
    for number, sha in ((1, shas[0]), (2, shas[1]), (3, shas[2])):
        assert int(window.loc[f"00000000-0000-4000-8000-{number:012d}", "label"]) == expected[sha]
    assert pd.isna(window.loc["00000000-0000-4000-8000-000000000004", "label"])

    # A day later a third id appears for an old commit: it gets the whole history, the others only what is new.
    later = now + timedelta(days=1)
    stack.log.record([logged(5, "octo/app", shas[0], later - timedelta(hours=1))])
    refresh = healer.cycle(later).record("refresh")
    assert refresh is not None
    assert refresh.evidence["feedback_repos"] == ["acme/app", "octo/app", "syn"]
    assert refresh.evidence["feedback_repos_first_sync"] == ["octo/app"]
    assert refresh.evidence["feedback"]["recorded"] == len(known)  # octo/app's, once each
    window = stack.log.window(later - timedelta(days=1), later, as_of=later).set_index("prediction_id")
    assert int(window.loc["00000000-0000-4000-8000-000000000005", "label"]) == expected[shas[0]]


def test_one_cycle_at_a_time_per_model(stack: Stack) -> None:
    import fcntl

    from defectops.errors import HealBusyError

    healer = stack.healer(None, HealSettings())
    healer.lock_path.parent.mkdir(parents=True, exist_ok=True)
    with healer.lock_path.open("a+") as other:  # another process (an overrunning cron job) holds the lock
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(HealBusyError, match="another heal cycle"):
            healer.cycle(day(10))
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    assert healer.audit.events(HealRecord, stack.name) == []  # nothing was done, nothing recorded
    assert healer.cycle(day(11)).records[0].outcome == "no_champion"  # free again


@pytest.mark.parametrize(
    ("kept", "said"),
    [
        (0, "labels sent to the prediction log: 3 new, 0 corrected (they match 2 logged predictions)"),
        (
            1,
            "labels sent to the prediction log: 3 new, 0 corrected (they match 2 logged predictions); 1 clean "
            "verdict left a defect reported through the API in place",
        ),
        (
            2,
            "labels sent to the prediction log: 3 new, 0 corrected (they match 2 logged predictions); 2 clean "
            "verdicts left defects reported through the API in place",
        ),
    ],
)
def test_the_refresh_line_counts_kept_defects_in_words(kept: int, said: str) -> None:
    """heal --once on flask after one defect was posted said "1 clean verdicts left defects reported ..."."""
    from defectops.pipeline.heal.feedback import FeedbackCounts
    from defectops.pipeline.heal.refresh import _feedback_line

    assert _feedback_line(FeedbackCounts(recorded=3, matched_predictions=2, kept=kept)) == said


def test_the_gate_leaves_out_labels_known_when_the_models_were_trained(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    """Shadow requests for older commits carry labels the models may have learnt (scrapy: the five commits
    `run` listed as the riskiest recent ones, scored through the service, were all training rows). The
    gate judges only on labels that became known after both models learnt theirs."""
    source = frame_source(quiet_world)
    first = bootstrap_champion(stack.registry, stack.name, source, day(240))
    outside = stack.registry.register(
        stack.name, f"models:/{stack.name}/{first}", who="bob", why="try this", now=day(250)
    )
    settings = HealSettings(min_new_labels=100_000)
    healer = stack.healer(source, settings)
    adopted = healer.cycle(day(260)).record("gate")
    assert adopted is not None
    assert adopted.outcome == "shadow"

    def pair(number: int, sha: str) -> list[PredictionRecord]:
        served = f"00000000-0000-4000-8000-{number:012d}"
        common = {"created_at": day(261), "model_name": stack.name, "inputs": {"la": 1.0}, "threshold": 0.5,
                  "risk_label": 0, "risk_band": "low", "repo": "syn", "commit_sha": sha}  # fmt: skip
        return [
            PredictionRecord(
                prediction_id=served, model_version=str(first), served=True, score=0.2, **common
            ),
            PredictionRecord(
                prediction_id=f"00000000-0000-4000-9000-{number:012d}",
                model_version=str(outside.version),
                served=False,
                shadow_of=served,
                score=0.3,
                **common,
            ),
        ]

    old = [f"{n:040x}" for n in range(1, 31)]  # labelled on day 100: the models learnt these
    new = [f"{n:040x}" for n in range(31, 41)]  # labelled on day 265, after both were trained
    stack.log.record([row for n, sha in enumerate(old + new) for row in pair(n, sha)])
    labelled = [
        FeedbackRecord(label=n % 2, repo="syn", commit_sha=sha, label_time=day(100 if sha in old else 265))
        for n, sha in enumerate(old + new)
    ]
    stack.log.add_feedback_batch([r.model_copy(update={"source": "szz"}) for r in labelled], now=day(266))
    gate = healer.cycle(day(270)).record("gate")
    assert gate is not None
    assert gate.outcome == "waiting"
    assert gate.evidence["matured"] == 10  # 40 had matured labels; 30 of them were training rows
    assert gate.evidence["known_when_trained"] == 30
    assert gate.reason == (
        f"10 of 200 shadow predictions of v{outside.version} have matured labels (not counted: 30 more were "
        "already known when the models compared were trained)"
    )


def test_the_rollback_watch_leaves_out_labels_known_when_the_models_were_trained(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    """The same rule for the watch: the new champion learnt labels its predecessor never saw, so requests
    for those commits would make it look better than it is and hold a rollback back."""
    source = frame_source(quiet_world)
    first = bootstrap_champion(stack.registry, stack.name, source, day(240))
    second = stack.registry.register(
        stack.name, f"models:/{stack.name}/{first}", who="bob", why="retrained", now=day(250)
    ).version
    stack.registry.promote(stack.name, second, "bob", "looks better", now=day(255), force=True)
    stack.serve_learnt_and_new(second, features_of=first)
    watch = stack.healer(source, HealSettings(min_new_labels=100_000)).cycle(day(270)).record("watch")
    assert watch is not None
    assert watch.outcome == "watching"
    assert watch.evidence["check"]["n"] == 10  # 40 had matured labels; 30 of them were training rows
    assert watch.evidence["known_when_trained"] == 30
    assert "(not counted: 30 more were already known when the models compared were trained)" in watch.reason


def test_new_labels_in_the_log_leave_out_those_the_champion_learnt(
    stack: Stack, quiet_world: pd.DataFrame
) -> None:
    """Without a history source the decide step counts the new labels in the prediction log: a request for an
    older commit served since the champion was trained carries a label it learnt, which is no new label (30
    of the 40 here), and must not bring a retraining closer."""
    first = bootstrap_champion(stack.registry, stack.name, frame_source(quiet_world), day(240))
    stack.serve_learnt_and_new(first)
    decided = stack.healer(None, HealSettings(min_new_labels=100_000)).cycle(day(270)).record("decide")
    assert decided is not None
    assert decided.evidence["inputs"]["new_labels"] == 10
    assert decided.evidence["new_labels_counted_in"] == "prediction log"
