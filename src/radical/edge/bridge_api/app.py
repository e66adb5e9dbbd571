"""The bridge's FastAPI application factory."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from ..settings import Settings
from ..version import __version__
from .auth import TokenAuth
from .management import router as management_router
from .portal import mount_portal
from .proxy import proxy
from .state import BridgeState

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(settings: Settings) -> FastAPI:
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
    mount_portal(app)
    # plain Starlette route: the hot path skips FastAPI's dependency machinery
    app.router.routes.append(Route("/{edge}/{plugin}/{rest:path}", proxy, methods=ALL_METHODS))
    app.router.routes.append(Route("/{edge}/{plugin}", proxy, methods=ALL_METHODS))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": f"invalid request: {exc.errors()}"}, status_code=422)

    app.add_middleware(TokenAuth, token=settings.token_value())
    return app
