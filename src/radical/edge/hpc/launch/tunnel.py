"""Reverse SSH tunnels from a parent edge to the node where a child edge's job runs.

Compute nodes often cannot reach the login node's Redis. With ``tunnel=True`` the parent
edge, once the child's job is ACTIVE, opens an SSH connection *to the compute node* and asks
it to listen on ``127.0.0.1:<port>`` there (``forward_remote_port``): whatever connects to
that port is carried back over SSH and on to Redis from the parent's side. The parent then
writes ``"<port> <token>"`` into the child's port file (over SFTP on the same connection, so
no shared file system is needed); the wrapper script waits for that file, checks the token,
and points the child at ``redis://127.0.0.1:<port>/...``.

State lives on the parent (`TunnelManager`, one per psij plugin instance) and is mirrored
into the Redis hash ``keys.tunnel_info(edge_name)`` (expires a day after its last change).
Statuses: ``pending`` (job not running yet / connecting), ``active``, ``failed`` (the job is
canceled: its edge could never connect), ``done`` (the job ended; tunnel closed), and
``no_tunnel`` for names this parent knows nothing about. A dropped connection is re-opened
on the same remote port while the job runs.

SSH settings, connection options and port files: `.ssh`.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from ...app import keys
from ...constants import JOB_FINAL_STATES
from . import LaunchError, TunnelPlan, job_node, redis_endpoint
from .ssh import (
    SSHSettings,
    TunnelError,
    connect_options,
    remember_host_key,
    remove_port_file,
    write_port_file,
)

log = logging.getLogger(__name__)

#: how long a tunnel record stays in Redis after its last change
RECORD_TTL = 86400
#: after the child's job ended, keep the tunnel this long (at most) so the child edge can
#: withdraw its announcement cleanly instead of timing out of the topology
GRACE_SECONDS = 10.0
#: tries to open the first connection before the tunnel counts as failed
FIRST_ATTEMPTS = 3
#: tries to re-open a lost connection while the job still runs
RECONNECTS = 5
#: base of the back-off between connection attempts (seconds; doubles per failure, max 10)
RETRY_DELAY = 0.5

ACTIVE_STATES = ("pending", "active")
#: PSI/J job states in the order they can happen (terminal states share the last rank)
_JOB_RANK = {"NEW": 0, "QUEUED": 1, "ACTIVE": 2, "COMPLETED": 3, "FAILED": 3, "CANCELED": 3}


@dataclass
class Tunnel:
    """One child edge's tunnel, as its parent sees it."""

    edge_name: str
    token: str
    port_file: str
    redis_host: str
    redis_port: int
    status: str = "pending"
    port: int | None = None
    host: str | None = None
    job_id: str | None = None
    native_id: str | None = None
    executor: str | None = None
    job_state: str = "NEW"
    error: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    connects: int = 0
    attached: bool = False
    stopping: bool = False
    ending: bool = False
    task: asyncio.Task | None = None
    conn: Any = None
    cancel_job: Callable[[], Awaitable[Any]] | None = None

    def plan(self) -> TunnelPlan:
        return TunnelPlan(self.port_file, self.token)

    def describe(self, parent: str | None = None) -> dict[str, Any]:
        return {"edge_name": self.edge_name, "status": self.status, "port": self.port,
                "pid": os.getpid() if self.status == "active" else None,
                "host": self.host, "job_id": self.job_id, "native_id": self.native_id,
                "executor": self.executor, "job_state": self.job_state, "error": self.error,
                "parent_edge": parent, "connects": self.connects, "created": self.created,
                "updated": self.updated}


def _decode(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class TunnelManager:
    """Every tunnel one parent edge keeps; all methods run on the edge's loop except
    `job_state`, which any thread may call."""

    def __init__(self, parent: str, redis_url: str, loop: asyncio.AbstractEventLoop | None,
                 redis: Any = None, settings: SSHSettings | None = None) -> None:
        self.parent = parent
        self.redis_url = redis_url
        self.loop = loop
        self.redis = redis
        self.settings = settings or SSHSettings()
        self._tunnels: dict[str, Tunnel] = {}
        self._pending: set[asyncio.Future] = set()  # fire-and-forget work, kept referenced

    # -- bookkeeping ------------------------------------------------------------------------
    def get(self, name: str) -> Tunnel | None:
        return self._tunnels.get(name)

    def busy(self, name: str) -> bool:
        t = self._tunnels.get(name)
        return t is not None and t.status in ACTIVE_STATES

    def plan(self, name: str) -> Tunnel:
        """Reserve a tunnel for child `name` before its job is submitted.

        Raises `LaunchError` 409 when one is pending/active, 422 for a non-TCP Redis URL.
        """
        if self.busy(name):
            raise LaunchError(f"a tunnel for edge '{name}' is already "
                              f"{self._tunnels[name].status}", status=409)
        try:
            import asyncssh  # noqa: F401
        except ImportError:
            raise LaunchError("tunnels need asyncssh on the parent edge "
                              "(pip install 'radical.edge[hpc]')", status=501) from None
        host, port = redis_endpoint(self.redis_url)
        t = Tunnel(edge_name=name, token=secrets.token_hex(16), redis_host=host,
                   redis_port=port, port_file=self.settings.port_file(name))
        try:  # a stale file from an earlier run (its token would not match anyway)
            os.unlink(t.port_file)
        except OSError:
            pass
        self._tunnels[name] = t
        self._publish(t)
        return t

    def release(self, name: str, error: str) -> None:
        """The job was never submitted: forget the reservation (kept as failed)."""
        t = self._tunnels.get(name)
        if t is not None and t.status == "pending" and not t.attached:
            self._set(t, "failed", error=error)

    def attach(self, name: str, job_id: str, native_id: str | None, executor: str,
               cancel_job: Callable[[], Awaitable[Any]] | None = None) -> None:
        """The child's job exists; start as soon as it is ACTIVE (maybe already)."""
        t = self._tunnels[name]
        t.job_id, t.native_id, t.executor = job_id, native_id, executor
        t.cancel_job = cancel_job
        t.attached = True
        self._publish(t)
        self._react(t)

    def job_state(self, name: str, state: str, native_id: str | None = None,
                  job_id: str | None = None) -> None:
        """A psij state change of the child's job (thread-safe)."""
        if self.loop is not None and self.loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not self.loop:
                self.loop.call_soon_threadsafe(self._on_state, name, state, native_id, job_id)
                return
        self._on_state(name, state, native_id, job_id)

    def _on_state(self, name: str, state: str, native_id: str | None,
                  job_id: str | None = None) -> None:
        t = self._tunnels.get(name)
        if t is None or (job_id and t.job_id and job_id != t.job_id):
            return  # unknown, or a late report about an earlier job of the same name
        if _JOB_RANK.get(state, -1) <= _JOB_RANK.get(t.job_state, 0):
            return  # states only move forward (reports may arrive out of order)
        t.job_state = state
        if native_id and not t.native_id:
            t.native_id = native_id
        self._react(t)

    def _react(self, t: Tunnel) -> None:
        if t.job_state in JOB_FINAL_STATES:
            if (t.status in ACTIVE_STATES or t.task is not None) and not t.ending:
                t.ending = True
                self._spawn(self._stop(t, "done", grace=GRACE_SECONDS))
            return
        if t.job_state == "ACTIVE" and t.attached and t.task is None and \
                t.status == "pending" and not t.stopping:
            t.task = asyncio.ensure_future(self._run(t), loop=self.loop)

    # -- status ---------------------------------------------------------------------------
    async def lookup(self, name: str) -> dict[str, Any]:
        """This parent's view, else the Redis record (another parent), else ``no_tunnel``."""
        t = self._tunnels.get(name)
        if t is not None:
            return t.describe(self.parent)
        if self.redis is not None:
            try:
                raw = await self.redis.hgetall(keys.tunnel_info(name))
            except Exception as exc:
                log.warning("reading tunnel record of %s failed: %s", name, exc)
                raw = {}
            if raw:
                rec = {_decode(k): _decode(v) for k, v in raw.items()}
                out: dict[str, Any] = {k: (v if v != "" else None) for k, v in rec.items()}
                for key in ("port", "pid", "connects"):
                    if out.get(key) is not None:
                        out[key] = int(out[key])
                for key in ("created", "updated"):
                    if out.get(key) is not None:
                        out[key] = float(out[key])
                out["edge_name"] = name
                return out
        return {"edge_name": name, "status": "no_tunnel", "port": None, "pid": None}

    def _set(self, t: Tunnel, status: str, *, error: str | None = None) -> None:
        t.status = status
        if error is not None:
            t.error = error
        t.updated = time.time()
        log.info("tunnel %s: %s%s", t.edge_name, status, f" ({error})" if error else "")
        self._publish(t)

    def _publish(self, t: Tunnel) -> None:
        if self.redis is None or self.loop is None:
            return
        record = {k: ("" if v is None else str(v)) for k, v in t.describe(self.parent).items()}

        async def write() -> None:
            key = keys.tunnel_info(t.edge_name)
            try:
                await self.redis.hset(key, mapping=record)
                await self.redis.expire(key, RECORD_TTL)
            except Exception as exc:
                log.warning("writing tunnel record of %s failed: %s", t.edge_name, exc)

        self._spawn(write())

    def _spawn(self, coro: Any) -> asyncio.Future:
        """Run `coro` on the loop, keeping a reference until it ends (the loop holds only
        weak references to tasks: an unreferenced one may be collected mid-flight)."""
        fut = asyncio.ensure_future(coro, loop=self.loop)
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        return fut

    # -- the tunnel itself ----------------------------------------------------------------------
    async def _run(self, t: Tunnel) -> None:
        failures = 0
        try:
            while not t.stopping:
                try:
                    await self._open(t)
                    failures = 0
                    await t.conn.wait_closed()
                    if t.stopping:
                        break
                    log.warning("tunnel %s: SSH connection to %s lost; reconnecting",
                                t.edge_name, t.host)
                    self._set(t, "pending", error="connection lost; reconnecting")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if t.stopping:
                        break
                    failures += 1
                    limit = FIRST_ATTEMPTS if t.connects == 0 else RECONNECTS
                    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    log.warning("tunnel %s: attempt %d/%d failed: %s", t.edge_name, failures,
                                limit, text)
                    if failures >= limit:
                        await self._fail(t, text)
                        return
                    t.error = text
                await asyncio.sleep(min(RETRY_DELAY * 2.0 ** failures, 10.0) if failures
                                    else RETRY_DELAY)
        finally:
            await self._close_conn(t)

    async def _fail(self, t: Tunnel, error: str) -> None:
        self._set(t, "failed", error=error)
        t.stopping = True
        await self._close_conn(t)
        if t.cancel_job is not None and t.job_state not in JOB_FINAL_STATES:
            log.warning("tunnel %s failed; canceling job %s (its edge could never connect)",
                        t.edge_name, t.job_id)
            try:
                await t.cancel_job()
            except Exception as exc:
                log.warning("canceling job %s failed: %s", t.job_id, exc)

    async def _open(self, t: Tunnel) -> None:
        import asyncssh

        host = self.settings.host
        if not host:
            host = await asyncio.to_thread(job_node, t.executor or "", t.native_id)
        if not host:
            raise TunnelError(f"cannot tell which node job {t.native_id} runs on")
        t.host = host
        opts, record = connect_options(self.settings, host)
        conn = await asyncssh.connect(host, **opts)
        try:
            if record:
                remember_host_key(self.settings, host, conn)
            listener = await conn.forward_remote_port("127.0.0.1", t.port or 0,
                                                      t.redis_host, t.redis_port)
            if listener is None:
                raise TunnelError(f"{host} refused to listen on 127.0.0.1:{t.port or 0}")
            port = listener.get_port()
            await write_port_file(conn, t.port_file, f"{port} {t.token}\n")
        except BaseException:
            conn.close()
            raise
        t.conn, t.port = conn, port
        t.connects += 1
        t.error = None
        self._set(t, "active")
        log.warning("tunnel %s: node %s listens on 127.0.0.1:%d -> Redis %s:%d (parent %s)",
                    t.edge_name, host, port, t.redis_host, t.redis_port, self.parent)

    async def _close_conn(self, t: Tunnel) -> None:
        conn, t.conn = t.conn, None
        if conn is not None:
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), 5)
            except Exception:
                pass

    async def _child_gone(self, t: Tunnel, grace: float) -> None:
        """Wait (at most `grace` s) until the child edge has withdrawn its announcement."""
        if self.redis is None or t.status != "active":
            return
        end = time.monotonic() + grace
        key = keys.edge_info(t.edge_name)
        while time.monotonic() < end:
            try:
                if not await self.redis.exists(key):
                    return
            except Exception:
                return
            await asyncio.sleep(0.25)

    async def _stop(self, t: Tunnel, status: str, grace: float = 0.0) -> None:
        """The job ended: drop the port file, close the connection, record `status`."""
        if t.stopping and t.status not in ACTIVE_STATES:
            return
        if grace:
            await self._child_gone(t, grace)
        t.stopping = True
        if t.conn is not None:
            try:
                await asyncio.wait_for(remove_port_file(t.conn, t.port_file), 5)
            except Exception:
                pass
        task, t.task = t.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except BaseException:
                pass
        await self._close_conn(t)
        if t.status in ACTIVE_STATES:
            self._set(t, status)

    async def shutdown(self) -> None:
        """The parent edge stops: close every tunnel (their children lose Redis)."""
        for t in list(self._tunnels.values()):
            if t.status in ACTIVE_STATES or t.task is not None:
                await self._stop(t, "done")
