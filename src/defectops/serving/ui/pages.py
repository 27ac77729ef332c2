"""The web UI's pages: one layout (head, navigation, the read-token form, scripts) around each page's body.

Pages hold no data: each is a static shell whose script fetches its document from ``/ui/api/...``. A page is
its body fragment (``pages/<name>.html``) and its scripts; the layout (``pages/layout.html``) is written once,
so a change of navigation or head is made in one place.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Final

_PAGES_DIR: Final = resources.files("defectops.serving.ui") / "pages"
#: Every page draws charts and uses the shared helpers; its own script comes last.
_COMMON_SCRIPTS: Final = ("vendor/chart.umd.min.js",)


@dataclass(frozen=True, slots=True)
class Page:
    """One page: its title, its body fragment's file name, and its scripts under ``/ui/static/``."""

    title: str
    fragment: str
    script: str
    extra_scripts: tuple[str, ...] = ()

    @property
    def scripts(self) -> tuple[str, ...]:
        return (*_COMMON_SCRIPTS, *self.extra_scripts, "ui.js", self.script)


#: The pages by their path under ``/ui/`` ("" is the overview; "model" is served at /ui/models/<version>).
PAGES: Final = {
    "": Page("Overview", "index.html", "overview.js"),
    "commits": Page("Commits", "commits.html", "commits.js"),
    "monitoring": Page(
        "Monitoring", "monitoring.html", "monitoring.js", ("vendor/chartjs-chart-matrix.min.js",)
    ),
    "heal": Page("Heal", "heal.html", "heal.js"),
    "model": Page("Model card", "model.html", "model.js"),
}


@functools.lru_cache(maxsize=len(PAGES))
def render(path: str) -> bytes | None:
    """The HTML of the page at ``/ui/<path>`` (None for no such page); built once per process."""
    page = PAGES.get(path)
    if page is None:
        return None
    layout = Template(_PAGES_DIR.joinpath("layout.html").read_text(encoding="utf-8"))
    scripts = "\n".join(f'<script src="/ui/static/{name}"></script>' for name in page.scripts)
    html = layout.substitute(
        title=page.title,
        main=_PAGES_DIR.joinpath(page.fragment).read_text(encoding="utf-8"),
        scripts=scripts,
    )
    return html.encode("utf-8")
