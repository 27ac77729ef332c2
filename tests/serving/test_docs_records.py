"""What docs/serving.md tells a client to send to ``POST /v1/predict`` matches the features models use.

A user who copied the page's 14-metric record to flask's champion of ``defectops run`` got a 422 naming 13
missing inputs the page never mentioned: the run's default model uses the mined features too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from defectops.data.columns import FEATURES, RICH_FEATURES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def _section() -> str:
    text = PAGE.read_text()
    start = text.index("### `POST /v1/predict`")
    return text[start : text.index("\n### ", start + 1)]


def test_the_example_record_holds_the_kamei_metrics() -> None:
    example = json.loads(re.search(r"```json\n(.*?)```", _section(), re.S).group(1))  # type: ignore[union-attr]
    sent = set(example["records"][0]) - {"repo", "commit_sha"}
    assert sent == set(FEATURES)
    assert len(sent) == 14


def test_the_page_names_every_mined_feature_a_run_model_also_needs() -> None:
    section = " ".join(_section().split())
    listed = re.search(r"13 mined features \((.*?); see", section)
    assert listed is not None
    names: set[str] = set()
    for name in re.findall(r"`([a-z0-9_*]+)`", listed.group(1)):
        kinds = ("src", "test", "doc", "build")
        names |= {name.replace("*", kind) for kind in kinds} if "*" in name else {name}
    assert names == set(RICH_FEATURES)
    assert len(RICH_FEATURES) == 13
    assert f"({len(FEATURES) + len(RICH_FEATURES)} inputs)" in section
