"""`/openapi.json`, Swagger UI at `/docs` and ReDoc at `/redoc`, all served from here.

The document needs `read` (it names the edges online). The two pages are static shells
like the portal's, public and holding no data: their script (portal/js/apidocs.js) fetches
the document with the tab's token. Swagger UI and ReDoc come from the `fastapi-offline`
wheel (MIT; nothing but the two upstream bundles and FastAPI, which the bridge has anyway),
so the pages load nothing from a CDN and work on sites without outbound access.
"""
from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .openapi import ApiDocs, merged

#: the vendored bundles (swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js)
ASSETS_DIR = files("fastapi_offline") / "static"
ASSETS_PATH = "/docs/assets"
#: the pages run only our own and the vendored scripts; ReDoc injects its styles inline and
#: runs its search in a blob: worker
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
       "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>{title} · radical.edge API</title>
  <link rel="icon" href="data:,">
  {head}
  <script type="module" src="portal/js/apidocs.js"></script>
</head>
<body data-ui="{ui}" style="margin:0">
  <form id="token-form" hidden style="font-family:sans-serif;margin:2em">
    <p id="token-why">This page needs a bridge token with scope <code>read</code>.</p>
    <input id="token" type="password" autocomplete="off" placeholder="token" size="48">
    <button type="submit">Show the API</button>
  </form>
  <div id="ui"></div>
</body>
</html>
"""


def _page(title: str, ui: str, head: str) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=title, ui=ui, head=head),
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})


def mount_api_docs(app: FastAPI) -> None:
    """Add the document, both pages and their assets to `app` (FastAPI's own are off)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=str(ASSETS_DIR)), name="apidocs-assets")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(await document(request.app))

    @app.get("/docs", include_in_schema=False)
    async def swagger_page() -> HTMLResponse:
        return _page("Swagger UI", "swagger",
                     '<link rel="stylesheet" href="docs/assets/swagger-ui.css">\n  '
                     '<script src="docs/assets/swagger-ui-bundle.js"></script>')

    @app.get("/redoc", include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return _page("ReDoc", "redoc", '<script src="docs/assets/redoc.standalone.js"></script>')


async def document(app: FastAPI) -> dict[str, Any]:
    """The bridge's own OpenAPI merged with the routes of every online edge's plugins."""
    state = app.state.bridge
    docs: ApiDocs | None = getattr(app.state, "api_docs", None)
    if docs is None:
        docs = app.state.api_docs = ApiDocs(state.redis)
    edge_docs = await docs.for_edges(dict(state.watcher.edges))
    local = getattr(state, "local", None)
    if local is not None and getattr(local, "api", None):
        edge_docs["bridge"] = ApiDocs.verified(*local.api)  # type: ignore[arg-type]
    return merged(app.openapi(), {k: v for k, v in edge_docs.items() if v})
