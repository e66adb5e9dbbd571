"""Everything one bridge process holds: Redis clients, dispatcher, topology, SSE hub."""
from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Awaitable, Callable

from ..app import keys
from ..app.pipelined import Commands
from ..app.pubsub import subscribe_forever
from ..app.redis_conn import async_redis, redacted
from ..app.topology import TopologyWatcher, edge_summary
from ..settings import Settings
from .audit import AuditLog
from .dispatcher import CallDispatcher
from .events import EventHub
from .metrics import BridgeMetrics
from .tokens import TokenStore
from .work import WorkIndex

log = logging.getLogger(__name__)


#: builds and starts the plugin host of bridge-hosted plugins (given by the CLI, which may
#: import the edge runtime; bridge_api itself never does)
LocalHostFactory = Callable[[Settings, Any], Awaitable[Any]]


class BridgeState:
    def __init__(self, settings: Settings, local_factory: LocalHostFactory | None = None) -> None:
        self.settings = settings
        self._local_factory = local_factory
        self.bridge_id = uuid.uuid4().hex
        self.redis = async_redis(settings)
        self.pubsub_redis = async_redis(settings, pubsub=True)
        self.dispatcher = CallDispatcher(
            Commands(self.redis, settings.redis_url, settings.redis_timeout), self.bridge_id,
            settings.call_retention)
        self.hub = EventHub(self.redis, self.bridge_id, buffer_size=settings.events_buffer,
                            page_size=settings.sse_queue_size)
        self.tokens = TokenStore(self.redis, settings.token_value())
        self.audit = AuditLog(self.redis, self.bridge_id)
        self.work = WorkIndex(self.redis, settings.work_retention, settings.work_max_items,
                              tasks=settings.work_index_tasks)
        self.watcher = TopologyWatcher(self.redis, settings.topology_poll_seconds,
                                       self._on_topology, settings.heartbeat_ttl)
        self.metrics = BridgeMetrics(per_call=settings.metrics)
        self._tasks: list[asyncio.Task] = []
        self._celery: Any = None
        #: plugins hosted by the bridge itself (`--plugins`), listed as edge `bridge`
        self.local: Any = None

    async def start(self) -> None:
        spawn = asyncio.get_running_loop().create_task
        self._tasks = [
            spawn(subscribe_forever(self.pubsub_redis, self.settings.redis_url,
                                    [self.dispatcher.reply_channel, keys.TOPOLOGY_CHANNEL],
                                    self._on_message, self._on_subscribed,
                                    self._on_subscription_lost)),
            spawn(self.watcher.run()),
            spawn(self.hub.run()),
            spawn(self.audit.run()),
            spawn(self.work.run()),
            spawn(self.work.run_writer()),
        ]
        try:  # a first view before serving; Redis may be down, the watcher keeps trying
            await asyncio.wait_for(asyncio.gather(self.watcher.ready.wait(),
                                                  self.dispatcher.subscribed.wait()), 3.0)
        except asyncio.TimeoutError:
            log.warning("Redis at %s not answering yet; serving anyway",
                        redacted(self.settings.redis_url))
        if self._local_factory is not None:
            self.local = await self._local_factory(self.settings, self.redis)
            self.hub.topology(self.topology())
        log.info("bridge %s up: Redis %s, %d edges online", self.bridge_id[:8],
                 redacted(self.settings.redis_url), len(self.watcher.edges))

    async def stop(self) -> None:
        log.info("bridge %s stopping: %d calls in flight", self.bridge_id[:8],
                 self.dispatcher.pending)
        # calls still in flight are answered (and withdrawn where they can be) while the
        # command connection is open: uvicorn has cancelled them right before this
        await self.dispatcher.drain("the bridge stopped", timeout=2.0)
        await self.audit.flush()
        try:  # submissions still queued for the work index
            await asyncio.wait_for(self.work.flush(), 3)
        except Exception as exc:  # noqa: BLE001 - shutting down: say so, do not hang
            log.warning("work index: queued submissions not written at shutdown: %s", exc)
        if self.local is not None:
            await self.local.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.hub.close()
        await self.dispatcher.commands.close()
        await self.redis.aclose()
        await self.pubsub_redis.aclose()

    def _on_subscribed(self) -> None:
        self.dispatcher.subscribed.set()
        self.watcher.ping()

    def _on_subscription_lost(self, why: str) -> None:
        failed = self.dispatcher.connection_lost(why)
        if failed:
            log.warning("reply subscription lost (%s): %d calls answered with their outcome",
                        why, failed)

    def _on_message(self, channel: str, data: bytes) -> None:
        if channel == keys.TOPOLOGY_CHANNEL:
            word = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
            if word.startswith("leave:"):  # a clean withdrawal (see app/departures.py)
                self.edge_leaving(word[6:], "stopped")
            self.watcher.ping()
        else:
            self.dispatcher.on_reply(channel, data)

    def edge_leaving(self, name: str, reason: str) -> None:
        """Remember why `name` leaves; re-publish if that changes a departure shown already."""
        if self.watcher.departures.said(name, reason):
            self.hub.topology(self.topology())

    async def _on_topology(self, edges: dict, joined: set, left: set) -> None:
        for name in left:
            lost = self.dispatcher.edge_lost(name)
            if lost:
                log.warning("edge '%s' left (%d calls failed)", name, lost)
            else:
                log.info("edge '%s' left", name)
        for name in joined:
            log.info("edge '%s' joined", name)
        self.hub.topology(self.topology())
        if self.local is not None:
            await self.local.on_topology_change(self.topology()["edges"])

    def topology(self, url: str | None = None) -> dict[str, Any]:
        """The `data` object of `POST /edge/list` and of SSE topology events."""
        edges = {name: edge_summary(info) for name, info in sorted(self.watcher.edges.items())}
        if self.local is not None and self.local.plugins:
            edges = {"bridge": edge_summary(self.local.describe()), **edges}
        return {"bridge": {"url": url or self.settings.public_url(), "id": self.bridge_id},
                "edges": edges, "departed": self.watcher.departures.view()}

    @property
    def celery(self) -> Any:
        """A Celery app for remote control (created on first use: only disconnect needs it)."""
        if self._celery is None:
            from ..app.celery_app import make_celery

            self._celery = make_celery(self.settings)
        return self._celery
