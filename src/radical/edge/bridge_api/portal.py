"""The portal: static files under `radical/edge/portal/`, served at `/` and `/portal/`."""
from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

PORTAL_DIR = files("radical.edge") / "portal"


def mount_portal(app: FastAPI) -> None:
    index = PORTAL_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def portal_index() -> object:
        if index.is_file():
            return FileResponse(str(index), media_type="text/html")
        return HTMLResponse("<h1>radical.edge bridge</h1><p>POST /edge/list</p>")

    app.mount("/portal", StaticFiles(directory=str(PORTAL_DIR), check_dir=False), name="portal")
