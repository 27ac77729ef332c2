"""``python -m defectops`` is the same command line as the ``defectops`` script."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_runs_the_cli_with_its_exit_codes() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "defectops", "--version"], capture_output=True, text=True, timeout=120
    )
    assert version.returncode == 0
    assert version.stdout.startswith("defectops ")
    usage = subprocess.run(
        [sys.executable, "-m", "defectops", "predict", "--bogus"], capture_output=True, text=True, timeout=120
    )
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines() == [
        "error: No such option: --bogus; try 'defectops predict --help'"
    ]
