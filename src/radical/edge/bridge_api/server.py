"""Run the bridge under uvicorn (HTTPS when a certificate and key are configured)."""
from __future__ import annotations

import logging

import uvicorn

from ..settings import Settings
from .app import create_app
from .state import LocalHostFactory


class RedactQuery(logging.Filter):
    """Drop query strings from access-log lines: they may carry `?token=`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            if isinstance(args[2], str) and "?" in args[2]:
                args[2] = args[2].split("?", 1)[0] + "?…"
            record.args = tuple(args)
        return True


def run_bridge(settings: Settings, local_factory: LocalHostFactory | None = None) -> None:
    ssl = {}
    if settings.bridge_cert and settings.bridge_key:
        ssl = {"ssl_certfile": settings.bridge_cert, "ssl_keyfile": settings.bridge_key}
    logging.getLogger("uvicorn.access").addFilter(RedactQuery())
    config = uvicorn.Config(
        create_app(settings, local_factory), host=settings.host, port=settings.port,
        log_level=settings.log_level.lower(), access_log=settings.access_log,
        log_config=None,  # uvicorn's lines go through our handler (logs.py): one format
        timeout_graceful_shutdown=3, timeout_keep_alive=30, backlog=2048,
        loop="uvloop", http="httptools", proxy_headers=False, **ssl,
    )
    uvicorn.Server(config).run()
