"""The bridge's FastAPI application factory."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..settings import Settings
from ..version import __version__
from .auth import TokenAuth
from .enroll import router as enroll_router
from .management import router as management_router
from .portal import mount_portal
from .proxy import is_proxy_path, proxy
from .state import BridgeState

class BridgeApp:
    """Top-level ASGI app: plugin calls go straight to the proxy, the rest to FastAPI.

    The proxy is the hot path; FastAPI's routing and middleware stack would cost it about
    a third of the bridge's CPU per call. Auth wraps both.
    """

    def __init__(self, api: FastAPI) -> None:
        self.api = api
        self.state = api.state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_proxy_path(scope["path"]):
            await proxy(self.api.state.bridge, scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(settings: Settings) -> TokenAuth:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = BridgeState(settings)
        app.state.bridge = state
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="radical.edge bridge", version=__version__, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.include_router(management_router)
    app.include_router(enroll_router)
    mount_portal(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": f"invalid request: {exc.errors()}"}, status_code=422)

    return TokenAuth(BridgeApp(app), settings.token_value())
