"""Celery task strategy for `radical.edge.call`: straight from the consumer to the host loop.

A Celery "strategy" is the function the worker's consumer calls for each message of a task
type. The default one builds a Request, applies rate limits and ETAs, and runs the task in
the pool under the tracer; for a plugin call that only needs handing to an asyncio loop that
is pure overhead (about half of the edge's CPU per call here). This strategy decodes the
JSON body, drops calls whose deadline passed, and submits the rest to the plugin host —
unless the host no longer holds its name lease (then it stops consuming at once).
"""
from __future__ import annotations

import logging
import time
from typing import Any

from ..app.protocol import CallRequest, call_from_task_body

log = logging.getLogger(__name__)

_host: Any = None


def bind_host(host: Any) -> None:
    """Set the plugin host the strategy hands calls to (one per edge process)."""
    global _host
    _host = host


def call_strategy(task: Any, app: Any, consumer: Any, **_kw: Any):
    acks: list[bool] = []  # resolved on the first message: the consumer exists by then

    def on_message(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any,
                   **_kw: Any) -> None:
        if not acks:
            acks.append(not getattr(consumer.task_consumer, "no_ack", False))
        if acks[0]:  # only if someone turned acks back on: each ack is a Redis round trip
            message.ack()
        try:
            call = call_from_task_body(message.body if body is None else body)
        except ValueError as exc:
            log.error("discarding malformed call message: %s", exc)
            return
        call.received = time.time()
        if _host is not None and not _host.admit(call, getattr(message, "_raw", None)):
            if _host.exit_code:  # the name is someone else's now (not a Redis hiccup)
                _stop_consuming(consumer)
            return
        submit(call)

    return on_message


def _stop_consuming(consumer: Any) -> None:
    """This process lost its edge name: take nothing more from the queue."""
    for queue in list(consumer.task_consumer.queues if consumer.task_consumer else []):
        try:
            consumer.cancel_task_queue(queue.name)
        except Exception as exc:  # shutting down anyway (SIGTERM is on its way)
            log.warning("could not cancel consuming %s: %s", queue.name, exc)


def submit(call: CallRequest) -> None:
    if _host is None:
        log.error("no plugin host bound; dropping call %s", call.id)
        return
    _host.submit(call)
