"""The Celery options the edge relies on are set explicitly, so that Celery 5.x has nothing
to warn about on a broker reconnect (its CPendingDeprecationWarnings say "the default will
change in 6.0") and 6.0's new defaults change nothing here. The warning's absence from a
real edge's log across a Redis restart: tests/integration/test_call_semantics.py."""
from __future__ import annotations

from radical.edge.app.celery_app import make_celery
from radical.edge.settings import Settings


def test_reconnect_options_are_explicit() -> None:
    conf = make_celery(Settings(redis_url="redis://127.0.0.1:1/0")).conf
    # reconnect forever, at start and after a loss
    assert conf.broker_connection_retry is True
    assert conf.broker_connection_retry_on_startup is True
    assert conf.broker_connection_max_retries is None
    # 6.0's default; it only cancels late-acked tasks, and none is late-acked here
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert conf.task_acks_late is False
