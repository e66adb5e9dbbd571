"""Start an edge: plugin host + Celery worker `edge@<name>` consuming `edge.<name>`."""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Any

import celery.apps.worker
from celery.signals import worker_ready

from ..app import acl, keys
from ..app.keys import validate_name
from ..app.celery_app import make_celery
from ..logs import signal_safe_say
from ..plugins import loader
from ..settings import Settings
from .host import PluginHost
from .strategy import bind_host, submit

log = logging.getLogger(__name__)

#: the plugin loop waits for the GIL while Celery's consumer thread finishes a delivery;
#: a shorter switch interval hands it over sooner (measured: see bench/RESULTS.md)
SWITCH_INTERVAL = 0.0002

def default_edge_name() -> str:
    return socket.gethostname().split(".")[0]


def detect_batch() -> Any:
    try:
        from ..hpc.batch import detect_batch_system
    except ImportError:
        return None
    return detect_batch_system()


def build_worker(settings: Settings, name: str) -> Any:
    app = make_celery(settings)
    # kombu's unacked bookkeeping under this edge's own names: its Redis ACL covers them
    app.conf.broker_transport_options.update(acl.kombu_unacked_options(name))

    @app.task(name=keys.CALL_TASK, Strategy="radical.edge.workers.strategy:call_strategy",
              ignore_result=True, acks_late=False, bind=False)
    def call(call: dict) -> None:  # only reached if a caller bypasses the strategy (eager)
        from ..app.protocol import CallRequest

        submit(CallRequest.from_dict(call))

    return app.Worker(
        hostname=keys.edge_worker(name), queues=[keys.edge_queue(name)], pool="solo",
        concurrency=1, loglevel=settings.log_level.upper(), without_mingle=True,
        without_gossip=True, quiet=True, redirect_stdouts=False, optimization="fair",
        consumer_cls="radical.edge.workers.consumer:EdgeConsumer",
    )


def die_with_parent() -> None:
    """Inside a batch job: get SIGTERM when the job's shell dies, so the edge never outlives
    its job. Schedulers find a job's processes by their process tree and environment; a
    process title library (setproctitle, which Celery uses when installed) overwrites what
    /proc shows of the environment, and an orphan is no longer in the tree. Linux only."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGTERM, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() == 1:  # the parent died before we asked: act on it now
            os.kill(os.getpid(), signal.SIGTERM)
    except (OSError, AttributeError) as exc:
        log.warning("cannot tie the edge to its batch job's shell: %s", exc)


def run_edge(settings: Settings, name: str | None = None, plugins: str | None = None) -> int:
    """Run until stopped (SIGTERM/SIGINT or Celery remote-control shutdown)."""
    name = validate_name(name or settings.edge_name or default_edge_name())
    sys.setswitchinterval(SWITCH_INTERVAL)
    classes, skipped = loader.select_with_reasons(plugins or settings.plugins)
    host = PluginHost(settings, name, detect_batch())
    if host.role == "compute":
        die_with_parent()
    host.start(classes, skipped=skipped)
    bind_host(host)
    log.info("edge '%s' up: plugins %s, role %s, queue %s", name,
             ", ".join(host.plugins) or "none", host.role, keys.edge_queue(name))
    worker = build_worker(settings, name)
    celery.apps.worker.safe_say = signal_safe_say  # its shutdown lines in our log format

    def ready(sender: Any = None, **_kw: Any) -> None:
        host.announce()

    worker_ready.connect(ready, weak=False)
    try:
        worker.start()
    finally:
        worker_ready.disconnect(ready)
        bind_host(None)
        host.stop()
        log.info("edge '%s' stopped", name)
    return int(host.exit_code or worker.exitcode or 0)
