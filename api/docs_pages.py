"""/docs (Swagger UI) and /redoc (ReDoc) offline: their scripts and style sheets come from
the `fastapi-offline` wheel, which ships both bundles, and are served by the API from its
own origin under /docs-assets. No CDN: the page policy (api/page_policy.py) allows script
and style from this origin only, plus the one inline bootstrap script each page has."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
REDOC_PATH = "/redoc"
DOCS_ASSETS_PATH = "/docs-assets"
_ASSETS = Path(str(resources.files("fastapi_offline") / "static"))


def add_docs_pages(app: FastAPI) -> None:
    """`app` made with docs_url=None and redoc_url=None (FastAPI's own pages use a CDN)."""
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=_ASSETS), name="docs-assets")
    title = f"{app.title} API"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            redoc_js_url=f"{DOCS_ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
