"""``/ui``: the web UI's pages and their JSON documents (``/ui/api/...``).

The pages are static HTML shells with the vendored Chart.js; they hold no data, so they are served to
anyone, and each fetches its document from ``/ui/api/...``, which needs the read token when one is
configured (:func:`defectops.serving.deps.require_reader`). Documents are built on a worker thread: they read
SQL stores and the registry, which would otherwise stall the event loop that answers predictions.
"""

from __future__ import annotations

import functools
from functools import partial
from importlib import resources
from typing import Annotated, Any, Final, Literal
from uuid import UUID

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from defectops.errors import NotFoundError
from defectops.serving.deps import ReaderDep, ServiceDep
from defectops.serving.service import PredictionService
from defectops.serving.ui.card import model_card
from defectops.serving.ui.commits import CommitFilter, GitInfoCache, commit_detail, commit_list
from defectops.serving.ui.history import heal_timeline, monitoring
from defectops.serving.ui.models import Explainers
from defectops.serving.ui.overview import overview
from defectops.serving.ui.pages import render

router = APIRouter(prefix="/ui", include_in_schema=False)
api = APIRouter(prefix="/ui/api", tags=["ui"])

STATIC: Final = resources.files("defectops.serving.ui") / "static"
_MEDIA: Final = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".md": "text/plain"}
#: Static files are versioned with the package; a day of caching keeps page loads small.
_CACHE: Final = "public, max-age=86400"


class UiState:
    """What the pages' documents keep between requests (loaded versions, git lookups)."""

    def __init__(self, service: PredictionService) -> None:
        self.explainers = Explainers(service)
        self.git = GitInfoCache()


def ui_state(request: Request) -> UiState:
    state: UiState | None = getattr(request.app.state, "ui", None)
    if state is None:
        state = request.app.state.ui = UiState(request.app.state.service)
    return state


def _page(path: str) -> Response:
    content = render(path)
    if content is None:
        raise NotFoundError(f"no page /ui/{path}")
    return Response(content, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/")
async def index() -> Response:
    return _page("")


@router.get("/models/{version}")
async def card_page(version: int) -> Response:
    return _page("model")


@functools.lru_cache(maxsize=64)
def _static_file(name: str) -> bytes | None:
    """A file of ``static/`` (read once: they ship with the package and never change while it runs)."""
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    path = STATIC.joinpath(*parts)
    return path.read_bytes() if path.is_file() else None


@router.get("/static/{name:path}")
async def static(name: str) -> Response:
    content = _static_file(name)
    if content is None:
        raise NotFoundError(f"no static file {name!r}")
    suffix = "." + name.rsplit(".", 1)[-1]
    return Response(
        content, media_type=_MEDIA.get(suffix, "application/octet-stream"), headers={"Cache-Control": _CACHE}
    )


@router.get("/{page}")
async def page(page: str) -> Response:
    if not page or page == "model":  # the overview is /ui/, a model card /ui/models/<version>
        raise NotFoundError(f"no page /ui/{page}")
    return _page(page)


# -- documents --------------------------------------------------------------------------------------------


@api.get("/overview")
async def overview_doc(service: ServiceDep, _reader: ReaderDep) -> dict[str, Any]:
    """The served model, versions with alias history, last heal cycles, predictions per hour, latency."""
    return await anyio.to_thread.run_sync(partial(overview, service, service.clock()))


@api.get("/commits")
async def commits_doc(
    request: Request,
    service: ServiceDep,
    _reader: ReaderDep,
    repo: Annotated[str | None, Query(max_length=255)] = None,
    author: Annotated[str | None, Query(max_length=200)] = None,
    path: Annotated[str | None, Query(max_length=500)] = None,
    band: Annotated[
        Literal["", "minimal", "low", "medium", "high"] | None, Query(description="'' for any band")
    ] = None,
    days: Annotated[int, Query(ge=1, le=3660)] = 30,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The riskiest commits of the last ``days``, filtered by repository, author, path and band."""
    filters = CommitFilter(
        repo=repo or None, author=author or None, path=path or None, band=band or None, days=days, limit=limit
    )
    state = ui_state(request)
    return await anyio.to_thread.run_sync(partial(commit_list, service, state.git, filters, service.clock()))


@api.get("/commits/{prediction_id}", responses={404: {"description": "No logged prediction has this id."}})
async def commit_doc(
    request: Request, service: ServiceDep, _reader: ReaderDep, prediction_id: UUID
) -> dict[str, Any]:
    """One commit's prediction: its reasons against the training distribution, and its reviews."""
    state = ui_state(request)
    return await anyio.to_thread.run_sync(
        partial(commit_detail, service, state.explainers, state.git, str(prediction_id))
    )


@api.get("/monitoring")
async def monitoring_doc(
    service: ServiceDep,
    _reader: ReaderDep,
    windows: Annotated[int, Query(ge=1, le=52)] = 8,
    days: Annotated[int, Query(ge=1, le=365)] = 7,
) -> dict[str, Any]:
    """Drift per feature per monitored window, performance, alerts; score distribution per log window."""
    return await anyio.to_thread.run_sync(
        partial(monitoring, service, service.clock(), windows=windows, days=days)
    )


@api.get("/heal")
async def heal_doc(service: ServiceDep, _reader: ReaderDep) -> dict[str, Any]:
    """The heal loop's decisions with their evidence, and the alias moves."""
    return await anyio.to_thread.run_sync(partial(heal_timeline, service, service.clock()))


@api.get("/models/{version}", responses={404: {"description": "The served model has no such version."}})
async def card_doc(
    request: Request,
    service: ServiceDep,
    _reader: ReaderDep,
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> dict[str, Any]:
    """The model card of one version."""
    state = ui_state(request)
    return await anyio.to_thread.run_sync(
        partial(model_card, service, state.explainers, version, service.clock())
    )
