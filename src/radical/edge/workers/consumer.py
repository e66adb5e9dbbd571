"""The edge's Celery consumer: reconnects to Redis on the project's back-off policy.

Stock Celery retries a lost broker connection at 2, 4, 6, ... s (kombu's linear default,
up to 30 s), so after a 30 s Redis outage an edge started consuming again ~12 s after Redis
was back. This consumer retries on `app.retry`'s schedule (capped at `retry.CAP`), logs the
outage once and the recovery once, and otherwise behaves exactly like Celery's.
"""
from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer
from celery.worker.consumer.consumer import maybe_shutdown

from ..app import retry

log = logging.getLogger(__name__)


class EdgeConsumer(Consumer):
    """`Consumer` whose broker reconnection follows `retry.Backoff`'s cap."""

    def ensure_connected(self, conn: Any) -> Any:
        backoff = retry.Backoff(f"edge broker connection to {conn.as_uri()}", logger=log)

        def on_error(exc: Exception, _interval: float) -> None:
            backoff.failed(exc)

        conn = conn.ensure_connection(on_error, self.app.conf.broker_connection_max_retries,
                                      callback=maybe_shutdown, **retry.kombu_intervals())
        backoff.succeeded()
        self.first_connection_attempt = False
        self.broker_connection_retry_attempt = 0
        return conn
