"""The Celery application shared by bridges and edges.

Choices that matter, and why:
- JSON only: no pickle ever crosses the wire (`accept_content=['json']`).
- At most once: the edge's task consumer runs with `no_ack=True` (see `EdgeAMQP`), so kombu
  keeps no "unacked" copy that a visibility timeout could redeliver; there are no retries.
  A call may submit a batch job: running it twice would be worse than failing it once.
- No result backend: replies go straight to the waiting bridge (see `protocol.py`).
- Task events off (they double the worker's CPU per task); worker heartbeats stay on so
  Flower still shows every edge as a worker `edge@<name>` with its queue `edge.<name>`.
"""
from __future__ import annotations

from typing import Any

from celery import Celery
from celery.app.amqp import AMQP

from ..settings import Settings
from . import keys, sentinel, tls


class EdgeAMQP(AMQP):
    """Consume task messages without acknowledgements: delivery is at most once."""

    def TaskConsumer(self, channel: Any, queues: Any = None, accept: Any = None, **kw: Any) -> Any:
        kw.setdefault("no_ack", True)
        return super().TaskConsumer(channel, queues=queues, accept=accept, **kw)


def make_celery(settings: Settings, main: str = "radical.edge") -> Celery:
    broker, sentinel_options = settings.redis_url, {}
    if sentinel.is_sentinel(broker):  # kombu's own sentinel form (see app/sentinel.py)
        broker, sentinel_options = sentinel.parse(broker).kombu_broker()
    broker_ssl = tls.celery_broker_ssl(broker)  # rediss://: kombu wants it apart
    broker = tls.strip_query(broker) if broker_ssl else broker
    app = Celery(main, broker=broker, amqp=EdgeAMQP, set_as_current=False)
    timeout = settings.redis_timeout
    app.conf.update(
        broker_use_ssl=broker_ssl,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        event_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=False,
        task_reject_on_worker_lost=False,
        task_default_queue=keys.DEFAULT_QUEUE,
        task_create_missing_queues=True,
        task_send_sent_event=False,
        worker_send_task_events=False,
        worker_prefetch_multiplier=256,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=True,
        # reconnect forever, at start and after a loss (workers/consumer.py's back-off);
        # both set, so Celery 5.x has no "will change in 6.0" deprecation to warn about
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Celery 6.0's default, set now: it only cancels late-acked tasks on a connection
        # loss, and no task here is late-acked (at most once), so it changes nothing; left
        # False, every reconnect logs a 6-line CPendingDeprecationWarning at WARNING
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_channel_error_retry=True,
        broker_heartbeat=0,
        broker_pool_limit=32,  # Flower runs ~8 inspects at once on one pool
        broker_transport_options={
            # irrelevant with no_ack, but keeps any stray unacked copy from coming back soon
            "visibility_timeout": 7 * 24 * 3600,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "socket_keepalive": True,
            "health_check_interval": 10,
            "retry_on_timeout": True,
            # another deployment on the same Redis: kombu's bindings and pidbox apart too
            **({"global_keyprefix": keys.KOMBU_PREFIX} if keys.KOMBU_PREFIX else {}),

            **sentinel_options,
        },
        control_queue_ttl=60,
        control_queue_expires=120,
        event_queue_ttl=30,
        event_queue_expires=120,
    )
    return app
