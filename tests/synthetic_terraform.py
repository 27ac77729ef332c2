"""A seeded, real git history of a Terraform module, big enough to train on.

Like :mod:`synthetic_history`, but in ``.tf`` files: newcomers add whole resource blocks (one attribute line
of which a later "Fix ..." commit corrects, 15–45 days on), regulars change one attribute of an existing
resource. So the Terraform metrics (a resource added vs changed) tell the two apart, and SZZ can trace every
fix. A README commit every few commits keeps the share of ``.tf`` changes below 100 %.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from gitrepo import EPOCH, RepoBuilder
from synthetic_history import NEWCOMERS, REGULARS

TF_FILES = ("network.tf", "compute.tf", "iam.tf")


def _block(n: int, size: int) -> list[str]:
    body = [f'  attr_{i} = "change {n} value {i}"\n' for i in range(size)]
    return [f'resource "aws_instance" "r{n}" {{\n', f'  ami = "ami-{n}"\n', *body, "}\n", "\n"]


def build_terraform_history(path: Path, commits: int = 200, seed: int = 7) -> RepoBuilder:
    rng = random.Random(seed)
    repo = RepoBuilder.create(path)
    files = {name: [*_block(1000 + k, 2)] for k, name in enumerate(TF_FILES)}
    files["variables.tf"] = ['variable "region" {\n', '  default = "eu-west-1"\n', "}\n"]
    repo.commit("initial module", {p: "".join(b) for p, b in files.items()}, author=REGULARS[0], when=EPOCH)
    pending: list[tuple[int, str, str]] = []
    day = 0
    for n in range(commits):
        day += rng.randint(2, 5)
        when = EPOCH + timedelta(days=day)
        due = next((p for p in pending if p[0] <= day), None)
        if due is not None:
            pending.remove(due)
            _, target, bad = due
            body = files[target]
            if bad in body:
                body[body.index(bad)] = bad.replace("change", "fixed")
                repo.commit(f"Fix {target}", {target: "".join(body)}, author=rng.choice(REGULARS), when=when)
                continue
        if n % 5 == 4:
            repo.commit(f"Docs {n}", {"README.md": f"release {n}\n"}, author=rng.choice(REGULARS), when=when)
            continue
        risky = rng.random() < 0.3
        target = rng.choice(TF_FILES)
        body = files[target]
        if risky:
            block = _block(n, rng.randint(4, 10))
            body.extend(block)
            repo.commit(
                f"Add r{n} to {target}", {target: "".join(body)}, author=rng.choice(NEWCOMERS), when=when
            )
            if rng.random() < 0.8:
                attributes = [line for line in block if line.startswith("  attr_")]
                pending.append((day + rng.randint(15, 45), target, rng.choice(attributes)))
        else:
            amis = [i for i, line in enumerate(body) if line.startswith("  ami = ")]
            i = rng.choice(amis)
            body[i] = body[i].rstrip('"\n') + f'-t{n}"\n'
            repo.commit(f"Tweak {target}", {target: "".join(body)}, author=rng.choice(REGULARS), when=when)
    return repo
