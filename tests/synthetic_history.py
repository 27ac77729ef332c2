"""A seeded, real git history big enough to train on: features that matter, and fixes SZZ can trace.

Large changes by newcomers introduce defects (one of their lines is fixed 15–45 days later by a commit whose
message says so); small changes by regulars do not. Dates start in 2020, so with a 90-day waiting period every
label has matured by the time the tests run.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from gitrepo import EPOCH, Author, RepoBuilder

REGULARS = [Author(f"Regular {i}", f"regular{i}@example.com") for i in range(3)]
NEWCOMERS = [Author(f"Newcomer {i}", f"new{i}@example.com") for i in range(6)]
MODULES = ("core", "io", "ui", "net")


def build_synthetic(path: Path, commits: int = 320, seed: int = 42) -> RepoBuilder:
    rng = random.Random(seed)
    repo = RepoBuilder.create(path)
    files = {f"{m}/f{k}.py": [f"{m} {k} line {i}\n" for i in range(20)] for m in MODULES for k in range(3)}
    repo.commit(
        "initial import", {p: "".join(body) for p, body in files.items()}, author=REGULARS[0], when=EPOCH
    )
    pending: list[tuple[int, str, str]] = []  # (day the fix lands, path, the defective line)
    day = 0
    for n in range(commits):
        day += rng.randint(2, 5)
        when = EPOCH + timedelta(days=day)
        due = next((p for p in pending if p[0] <= day), None)
        if due is not None:
            pending.remove(due)
            _, target, bad_line = due
            body = files[target]
            if bad_line in body:
                body[body.index(bad_line)] = bad_line.replace("change", "fixed")
                repo.commit(
                    f"Fix crash in {target}", {target: "".join(body)}, author=rng.choice(REGULARS), when=when
                )
                continue
        risky = rng.random() < 0.3
        author = rng.choice(NEWCOMERS) if risky else rng.choice(REGULARS)
        target = rng.choice(sorted(files))
        body = files[target]
        size = rng.randint(25, 60) if risky else rng.randint(1, 4)
        position = rng.randint(0, len(body))
        added = [f"change {n} line {i}\n" for i in range(size)]
        body[position:position] = added
        message = f"Add feature {n} to {target}" if risky else f"Tweak {target}"
        repo.commit(message, {target: "".join(body)}, author=author, when=when)
        if risky and rng.random() < 0.8:
            pending.append((day + rng.randint(15, 45), target, rng.choice(added)))
    return repo
