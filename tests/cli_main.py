"""``defectops <argv>`` through the real entry point, in-process, for tests that check exit codes and output."""

from __future__ import annotations

import pytest

from defectops.cli import main


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``defectops <argv>``; output printed before the call is discarded."""
    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
