"""Progress lines and the code-metrics summary shared by ``mine`` and ``run``.

Why lines and not only a bar: a bar drawn on a terminal vanishes in a CI log or a redirected stderr, where a
long mine would then look hung. These lines go to stderr on a terminal or not, a few per pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from defectops.console import stderr

#: At most this many progress lines per pass (plus the last one).
LINES_PER_PASS = 10
#: And never more often than every this many commits.
MIN_STEP = 50


def progress_lines(what: str) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback printing ``<what>: done/total commits, rate, elapsed`` on stderr every
    ``max(MIN_STEP, total / LINES_PER_PASS)`` commits and at the end; ``done == 0`` restarts the clock."""
    started = [time.monotonic()]  # the pass starts now, or when it says (done, total) = (0, total)

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == 0:
            started[0] = now
            return
        step = max(MIN_STEP, -(-total // LINES_PER_PASS))
        if done % step and done != total:
            return
        elapsed = now - started[0]
        rate = done / elapsed if elapsed > 0 else 0.0
        stderr.print(
            f"[dim]{what}: {done}/{total} commits ({done / max(total, 1):.0%}), {rate:,.1f} commits/s, "
            f"{elapsed:.0f} s[/]",
            highlight=False,
        )

    return report


def code_summary(result: Any) -> str:
    """A :class:`defectops.mining.CodeMineResult` for people: what was measured, its wall time, and every
    file that could not be measured, counted by reason."""
    lines = [
        f"code metrics: {result.commits} commits measured ({result.new_commits} now, {result.files} files: "
        f"{result.terraform_files} .tf of which {result.hcl1_files} read as HCL1) in {result.seconds:.1f} s",
        f"files not measured: {result.failed_files}",
    ]
    lines += [f"  {count} {reason}" for reason, count in result.failures[:10]]
    if len(result.failures) > 10:
        rest = sum(count for _, count in result.failures[10:])
        lines.append(
            f"  {rest} more, for {len(result.failures) - 10} other reasons ({result.failures_dataset})"
        )
    return "\n".join(lines)
