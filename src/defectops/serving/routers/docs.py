"""``GET /docs``: Swagger UI for the API, with its files served by the service itself.

FastAPI's default page loads Swagger UI from a CDN, so it is blank on a machine without internet access (an
air-gapped cluster, a laptop on a train). The files come from the ``swagger-ui-bundle`` package instead, under
``/docs/assets``. ReDoc is not offered: no maintained package ships it.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"

router = APIRouter(tags=["docs"])


@router.get("/docs", include_in_schema=False)
async def swagger_ui() -> HTMLResponse:
    """The interactive API documentation, with no request leaving the service."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="defectops API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )


def mount_assets(app: FastAPI) -> None:
    """Serve Swagger UI's files from the installed package."""
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
