"""The bridge's FastAPI application factory."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..settings import Settings
from ..version import __version__
from .access import router as access_router
from .apidocs import mount_api_docs
from .auth import BridgeGuard
from .bridge_plugins import hosted_plugin
from .bridge_plugins import serve as serve_bridge_plugin
from .compat_routes import router as compat_router
from .envelope import error_body
from .calls import router as calls_router
from .events import serve_events
from .enroll import router as enroll_router
from .management import router as management_router
from .observability import router as observability_router
from .portal import mount_portal
from .work_api import router as work_router
from .proxy import is_proxy_path, proxy
from .state import BridgeState, LocalHostFactory

class BridgeApp:
    """Top-level ASGI app: plugin calls go straight to the proxy, the rest to FastAPI.

    The proxy is the hot path; FastAPI's routing and middleware stack would cost it about
    a third of the bridge's CPU per call. `BridgeGuard` (auth, host, origin, audit) wraps both.
    """

    def __init__(self, api: FastAPI) -> None:
        self.api = api
        self.state = api.state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_proxy_path(scope["path"]):
            await proxy(self.api.state.bridge, scope, receive, send)
        elif scope["type"] == "http" and hosted_plugin(
                getattr(self.api.state, "bridge", None), scope["path"]):
            await serve_bridge_plugin(self.api.state.bridge, scope, receive, send)
        elif scope["type"] == "http" and scope["path"] == "/events":
            await serve_events(self.api, scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(settings: Settings, local_factory: LocalHostFactory | None = None) -> BridgeGuard:
    """The bridge's ASGI app; `local_factory` starts the plugins the bridge hosts itself."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = BridgeState(settings, local_factory)
        app.state.bridge = state
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    # /openapi.json, /docs and /redoc are apidocs.py's: plugin routes merged, no CDN
    app = FastAPI(title="radical.edge bridge", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(management_router)
    app.include_router(compat_router)
    app.include_router(calls_router)
    app.include_router(access_router)
    app.include_router(enroll_router)
    app.include_router(work_router)
    app.include_router(observability_router)
    mount_portal(app)
    mount_api_docs(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RedisError)
    async def broker_error(_request: Request, exc: RedisError) -> JSONResponse:
        return JSONResponse(error_body(503, f"broker unavailable: {type(exc).__name__}"),
                            status_code=503)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(422, f"invalid request: {exc.errors()}"), status_code=422)

    return BridgeGuard(BridgeApp(app), app, settings)
