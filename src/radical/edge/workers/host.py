"""The plugin host: one asyncio loop (own thread) running every plugin of an edge.

The Celery worker thread hands calls over with `submit` and returns to consuming at once;
each call runs as its own task on the host loop and publishes its reply when done, so many
calls are in flight together and a slow handler never holds up the others. Sessions, plugin
state, the announcer, the notifier and the topology watcher all live on this loop.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable

import orjson
from redis.exceptions import RedisError

from ..app import call_record, keys
from ..app.blobs import read_blob
from ..app.pipelined import Commands
from ..app.protocol import CallReply, CallRequest
from ..app.pubsub import subscribe_forever
from ..app.redis_conn import async_redis, sync_redis
from ..app.topology import TopologyWatcher, edge_summary
from ..logs import set_call_context as set_log_context
from ..plugins.api_doc import api_document
from ..plugins.base import Plugin
from ..plugins.host_api import HostState
from ..plugins.loader import MAX_REASON
from ..settings import Settings
from ..version import __version__
from .announcer import Announcer
from .call_runner import run_call
from .delivery import SeenCalls, too_late
from .lease import NameLease
from .notifier import Notifier
from .plugin_fanout import reap_sessions_forever, tell_topology
from .records import RecordWriter
from .reply_sender import ReplySender
from .router import Router
from .stats import EdgeStats

log = logging.getLogger(__name__)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (uvicorn[standard] brings it): cheaper I/O for every call."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class PluginHost:
    """Implements `plugins.host_api.PluginHostAPI` for an edge process."""

    def __init__(self, settings: Settings, edge_name: str, batch: Any = None) -> None:
        self.settings = settings
        self.edge_name = edge_name
        self.batch = batch
        in_alloc = bool(batch is not None and batch.in_allocation())
        allocation = batch.allocation() if in_alloc else None
        self.role = "compute" if in_alloc else "login"
        remaining = (allocation or {}).get("remaining_seconds")
        self.walltime_end: float | None = time.time() + remaining if remaining else None
        self.state = HostState(
            scheduler=getattr(batch, "name", None) if batch is not None else None,
            job_id=(allocation or {}).get("job_id"), allocation=allocation, batch=batch)
        self.router = Router()
        self.plugins: dict[str, Plugin] = {}
        #: plugins this edge does not offer, and why (announced: the portal shows it)
        self.unavailable: dict[str, str] = {}
        self.draining: str | None = None
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="plugin-host",
                                        daemon=True)
        self._inflight: set[asyncio.Task] = set()
        self.stats = EdgeStats()
        self._incoming: deque[CallRequest] = deque()
        self._wakeup_pending = False
        self._seen = SeenCalls()
        self._background: list[asyncio.Task] = []
        self._started = time.time()
        self.exit_code = 0  # non-zero once the name lease is lost to a successor
        self.api: tuple[str, bytes] | None = None  # (digest, JSON) of the plugins' routes
        self._lease_lock = asyncio.Lock()  # one re-claim decision at a time

    # -- PluginHostAPI ----------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def add_route(self, method: str, path: str, handler: Callable[..., Any]) -> None:
        self.router.add(method, path, handler)

    def notify(self, plugin: str, topic: str, data: dict) -> None:
        self.notifier.publish(plugin, topic, data)

    # -- life cycle -------------------------------------------------------------------------
    def start(self, plugin_classes: list[type[Plugin]], timeout: float = 60.0,
              skipped: dict[str, str] | None = None) -> None:
        """Start the loop and the plugins; `skipped`: plugins the loader could not load."""
        self.unavailable.update(skipped or {})
        self._thread.start()
        self._run(self._start(plugin_classes), timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._run(self._stop(), timeout)
        except Exception:
            log.exception("edge shutdown was not clean")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _run(self, coro: Any, timeout: float) -> Any:
        fut: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    async def _start(self, plugin_classes: list[type[Plugin]]) -> None:
        self.redis = async_redis(self.settings)
        self.pubsub_redis = async_redis(self.settings, pubsub=True)
        self.replies = Commands(self.redis, self.settings.redis_url, self.settings.redis_timeout)
        self.records = RecordWriter(self.replies)
        self.sender = ReplySender(self.replies, self.redis,
                                  chunk=self.settings.payload_chunk_bytes,
                                  window=self.settings.payload_window_chunks)
        self.lease = NameLease(self.redis, self.edge_name, self.settings.heartbeat_ttl)
        await self._claim_name()
        self.announcer = Announcer(sync_redis(self.settings), self.lease, self.describe,
                                   self.settings.heartbeat_seconds, self._lease_lost_from_thread,
                                   self._api_documents)
        self.announcer.start()  # keeps the lease from now on; announces once visible
        self.notifier = Notifier(self.redis, self.edge_name, self._loop,
                                 maxlen=self.settings.events_maxlen,
                                 hard_maxlen=self.settings.events_hard_maxlen,
                                 retention_s=self.settings.events_retention_seconds)
        self.notifier.start()
        for cls in plugin_classes:
            await self._start_plugin(cls)
        self.api = api_document(self.plugins)  # plugins are fixed from here on
        self.watcher = TopologyWatcher(self.redis, 5.0, self._on_topology)
        spawn = self._loop.create_task
        self._background += [
            spawn(self.watcher.run()),
            spawn(subscribe_forever(self.pubsub_redis, self.settings.redis_url,
                                    [keys.TOPOLOGY_CHANNEL],
                                    lambda _c, _d: self.watcher.ping(),
                                    self._on_redis_reconnect)),
            spawn(reap_sessions_forever(lambda: self.plugins.values())),
            spawn(self.records.run()),
        ]
        if self.walltime_end:
            self._background.append(spawn(self._watch_walltime()))

    async def _start_plugin(self, cls: type[Plugin]) -> None:
        """Create and start one plugin; one that fails is skipped with a WARNING naming it
        and the reason (and announced as unavailable), never stopping the edge."""
        name = getattr(cls, "plugin_name", None) or cls.__name__
        plugin: Plugin | None = None
        try:
            if not cls.is_enabled(self):
                reason = cls.disabled_reason(self)
                log.info("plugin %s is not enabled on this host: %s", name, reason)
                self.unavailable[name] = reason
                return
            plugin = cls(self)
            await plugin.startup()
        except Exception as exc:
            log.warning("skipping plugin %s: it failed to start: %s: %s", name,
                        type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            why = f"failed to start: {type(exc).__name__}: {exc}"
            self.unavailable[name] = why[:MAX_REASON]
            if plugin is not None:
                self.router.remove_prefix(plugin.instance_name)
                try:
                    await asyncio.wait_for(plugin.shutdown(), 10)
                except Exception:
                    log.debug("shutdown of the failed plugin %s failed too", name,
                              exc_info=True)
            else:
                self.router.remove_prefix(name)
            return
        self.plugins[plugin.instance_name] = plugin

    def announce(self, timeout: float = 30.0) -> None:
        """Join the topology; called once the Celery worker consumes (bridges then route
        calls here), so an edge is never listed before it can answer."""
        self._run(self._announce(), timeout)

    async def _announce(self) -> None:
        self.announcer.visible = True
        if not await self.announcer.beat():
            raise RuntimeError(f"edge '{self.edge_name}' lost its name before announcing")
        self.announcer.start()

    async def _claim_name(self) -> None:
        """Take the name's lease: wait out a dead predecessor, refuse a live one, purge.

        After a `kill -9` the old lease lingers until its TTL runs out; a restart waits for
        that instead of failing. Messages still queued were meant for the previous
        incarnation (whose callers got 503/504 already) and must never run now.
        """
        deadline = time.monotonic() + self.settings.heartbeat_ttl + 1
        while not await self.lease.try_claim():
            if time.monotonic() > deadline:
                raw = await self.redis.get(keys.edge_info(self.edge_name))
                info = orjson.loads(raw) if raw else {}
                raise RuntimeError(f"edge '{self.edge_name}' is already running "
                                   f"(host {info.get('host')}, pid {info.get('pid')})")
            await asyncio.sleep(0.25)
        purged = await self.redis.delete(keys.edge_queue_key(self.edge_name))
        if purged:
            log.warning("discarded calls queued for a previous edge '%s'", self.edge_name)

    async def _stop(self) -> None:
        await self.announcer.withdraw()
        for task in self._background:
            task.cancel()
        _done, stuck = await asyncio.wait(self._background, timeout=5)
        for task in stuck:
            log.warning("background task %s did not stop when cancelled", task.get_coro())
        for plugin in self.plugins.values():
            try:
                await asyncio.wait_for(plugin.shutdown(), 10)
            except Exception:
                log.exception("plugin %s did not shut down cleanly", plugin.instance_name)
        await self.notifier.flush()
        await self.notifier.stop()
        await asyncio.sleep(0.05)  # let the last replies go out
        await self.replies.close()
        await self.redis.aclose()
        await self.pubsub_redis.aclose()

    # -- calls ------------------------------------------------------------------------------
    def submit(self, call: CallRequest) -> None:
        """Hand a call to the loop; thread-safe and non-blocking.

        Wake-ups are coalesced: each costs a syscall on the loop's self-pipe, and under load
        the consumer thread hands over many calls per wake-up.
        """
        self._incoming.append(call)
        if not self._wakeup_pending:
            self._wakeup_pending = True
            self._loop.call_soon_threadsafe(self._take_incoming)

    def _take_incoming(self) -> None:
        self._wakeup_pending = False
        while self._incoming:
            call = self._incoming.popleft()
            task = self._loop.create_task(self._handle(call))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _handle(self, call: CallRequest) -> None:
        # this task's log records name the plugin and the call (logs.py)
        set_log_context(plugin=call.path.split("/", 2)[1] if "/" in call.path else "",
                        call=call.id)
        started = time.time()
        ttl = call_record.ttl_ms(call.deadline, self.settings.call_retention, started)
        if too_late(call, started):
            self._record(call, call_record.encode(
                call_record.NOT_DELIVERED, self.edge_name, "deadline passed before it started"),
                ttl)
            return
        if not self._seen.first_time(call.id, call.deadline):
            log.warning("dropped duplicate delivery of call %s", call.id)
            return
        if not (self.lease.certainly_held() or await self._lease_still_ours()):
            log.error("dropped call %s %s without running it: edge name '%s' is no longer "
                      "ours", call.method, call.path, self.edge_name)
            return
        if self.draining:
            reply = CallReply.error(call.id, 503, self.draining)
        else:
            self._record(call, call_record.encode(call_record.RUNNING, self.edge_name), ttl)
            source = read_blob(self.redis, call.body_ref, call.deadline) if call.body_ref else None
            try:
                reply = await run_call(self.router, call, {"edge": self.edge_name, "host": self},
                                       source, self.settings.payload_inline_bytes)
            finally:
                if source is not None:
                    await source.aclose()
                    await self._drop_blob(call.body_ref)
        reply.timing = [call.received or started, started, time.time()]
        self.stats.call_done(reply.status)
        # the outcome record goes out pipelined with the reply's PUBLISH, record first
        done = call_record.encode(call_record.DONE, self.edge_name, reply=reply,
                                  max_bytes=self.settings.call_record_max_bytes)
        self._record(call, done, ttl)
        if not await self.sender.send(call, reply):
            self.records.write_later(call.id, done, ttl)

    def _record(self, call: CallRequest, record: bytes, ttl: int) -> None:
        self.records.write(call.id, record, ttl)

    async def _drop_blob(self, key: str | None) -> None:
        """Delete what a handler left unread of an out-of-band request body."""
        try:
            await self.redis.delete(key)
        except (RedisError, OSError):
            pass  # its TTL removes it

    # -- the name lease ---------------------------------------------------------------------
    def admit(self, call: CallRequest, raw: Any, timeout: float = 10.0) -> bool:
        """Consumer thread: may this process take `call`? Free while the lease is certainly
        ours; otherwise asks Redis, and if the name now belongs to a successor hands a call
        meant for it back to the queue's head (or drops one meant for us) and shuts down."""
        if self.lease.certainly_held():
            return True
        try:
            return bool(self._run(self._admit_in_doubt(call, raw), timeout))
        except Exception as exc:  # Redis unreachable: not provably ours, do not run it
            log.error("cannot verify the lease of edge '%s' (%s); dropping call %s",
                      self.edge_name, exc, call.id)
            return False

    async def _admit_in_doubt(self, call: CallRequest, raw: Any) -> bool:
        if await self._lease_still_ours():
            return True
        if raw is not None and self.lease.expired_before(call.sent):
            await self.redis.rpush(keys.edge_queue_key(self.edge_name), orjson.dumps(raw))
            log.warning("handed call %s back to edge '%s''s successor", call.id,
                        self.edge_name)
        else:
            log.error("dropped call %s without running it: edge name '%s' is no longer ours",
                      call.id, self.edge_name)
        return False

    async def _lease_still_ours(self) -> bool:
        try:
            if await self.lease.holds():
                return True
        except (RedisError, OSError) as exc:
            log.error("cannot verify the lease of edge '%s': %s", self.edge_name, exc)
            return False
        return await self._on_lease_lost()

    def _lease_lost_from_thread(self) -> bool:
        """The heartbeat thread found the lease lost: decide on the plugin loop (re-claim or
        stop). If the loop is busy past a TTL, keep beating: the next beat asks again."""
        future = asyncio.run_coroutine_threadsafe(self._on_lease_lost(), self._loop)
        try:
            return bool(future.result(self.settings.heartbeat_ttl))
        except Exception:  # timed out (the loop is blocked) or the check itself failed
            return True

    async def _on_lease_lost(self) -> bool:
        """Re-claim the name if it is free (True); otherwise stop this edge (False)."""
        async with self._lease_lock:  # the heartbeat thread and a call may both ask at once
            return await self._reclaim_or_stop()

    async def _reclaim_or_stop(self) -> bool:
        if self.exit_code == 0:
            try:
                if await self.lease.try_claim():
                    log.warning("edge '%s' re-claimed its free name", self.edge_name)
                    return True
            except (RedisError, OSError) as exc:
                log.error("re-claiming edge '%s' failed: %s", self.edge_name, exc)
            self.exit_code = 3
            self.draining = f"edge '{self.edge_name}' lost its name to another process"
            log.error("%s; stopping without running further calls", self.draining)
            os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown, in the main thread
        return False

    # -- background -------------------------------------------------------------------------
    def _on_redis_reconnect(self) -> None:
        """(Re)subscribed: re-read the topology and re-announce at once (Redis may be new)."""
        self.watcher.ping()
        self.announcer.reannounce()

    async def _watch_walltime(self) -> None:
        assert self.walltime_end is not None
        stop_at = self.walltime_end - self.settings.walltime_margin
        await asyncio.sleep(max(0.0, stop_at - time.time()))
        left = max(0, int(self.walltime_end - time.time()))
        self.draining = (f"edge '{self.edge_name}' no longer takes calls: its batch job "
                         f"reaches its walltime in {left} s")
        log.warning(self.draining)
        self.announcer.changed()

    async def _on_topology(self, edges: dict, joined: set, left: set) -> None:
        view = {name: edge_summary(info) for name, info in edges.items()}
        await tell_topology(self.plugins.values(), view)

    # -- announcement -----------------------------------------------------------------------
    def _api_documents(self) -> dict[str, bytes]:
        return {keys.api_doc(self.api[0]): self.api[1]} if self.api else {}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.edge_name,
            "endpoint": {"type": "radical.edge", "transport": "celery",
                         "queue": keys.edge_queue(self.edge_name),
                         "worker": keys.edge_worker(self.edge_name)},
            "plugins": {name: p.describe() for name, p in self.plugins.items()},
            "unavailable": dict(self.unavailable),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "role": self.role,
            "scheduler": self.state.scheduler,
            "job_id": self.state.job_id,
            "allocation": self.state.allocation,
            "walltime_end": self.walltime_end,
            "accepting": self.draining is None,
            "started": self._started,
            "version": __version__,
            "stats": self.stats.snapshot(len(self._inflight)),
            "api": self.api[0] if self.api else None,
        }
