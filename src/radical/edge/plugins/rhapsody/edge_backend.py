"""A rhapsody execution backend that runs tasks on a radical.edge edge, through the bridge.

``rhapsody.Session(backends=[EdgeExecutionBackend(bridge_url=..., edge="hpc1")])`` (or a
radical-asyncflow ``WorkflowEngine``) then runs its tasks on the edge's rhapsody plugin,
which executes them with the edge's own rhapsody backends (``backends=["concurrent"]``).

Client side only: it uses the plugin's `RhapsodyClient` (httpx through the SDK) and
rhapsody's base class; nothing of the edge runtime.  The client calls are blocking, so they
run in worker threads (`asyncio.to_thread`); completion is push-based: the bridge's event
stream delivers ``task_status`` / ``task_status_batch`` notifications on the SDK's listener
thread, which hands each finished record to the event loop (rhapsody's callbacks must run
there).  A stream gap, or `poll_idle` seconds without news while tasks are outstanding,
re-polls the edge for the missing tasks, so a lost notification delays a result but never
loses it.

A batch the edge refuses (403 for a function outside its allow-list or a pickle it does not
accept, 422 for a bad spec) fails its tasks with the edge's detail instead of raising out of
``Session.submit_tasks``: the refused request is bisected until the refused tasks are
isolated, so only they fail (a batch naming one function only is refused as a whole).

Importing this module registers the class with rhapsody's `BackendRegistry` as ``"edge"``,
so ``rhapsody.get_backend("edge", bridge_url=..., edge=...)`` works as well.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from rhapsody.api.errors import BackendError, RhapsodyError, TaskExecutionError
from rhapsody.backends.base import BaseBackend
from rhapsody.backends.constants import StateMapper
from rhapsody.backends.discovery import BackendRegistry

from radical.edge.sdk import BridgeClient
from radical.edge.sdk.errors import EdgeError

from .client import TERMINAL_STATES, RhapsodyClient
from .client_wire import decode_record

__all__ = ["EdgeExecutionBackend", "EdgeTaskError", "REGISTRY_NAME"]

log = logging.getLogger("radical.edge.sdk.rhapsody.backend")

#: the name under which rhapsody's `BackendRegistry` knows this backend
REGISTRY_NAME = "edge"
#: the fields of a rhapsody task that travel to the edge (the rest is local bookkeeping:
#: futures, asyncflow's dependency metadata, telemetry fields, ...)
_SPEC_FIELDS = frozenset({"uid", "executable", "arguments", "function", "args", "kwargs",
                          "task_backend_specific_kwargs", "input_files", "output_files",
                          "name", "cwd", "env", "shell", "timeout", "ranks", "type"})
#: result fields copied from the edge's record into the caller's task
_RESULT_FIELDS = ("stdout", "stderr", "exit_code", "return_value", "error", "traceback")
#: a submit refused because of some of its tasks (bisected to find them)
_REFUSED = frozenset({403, 422})


class EdgeTaskError(RhapsodyError):
    """A task that failed on the edge (or that the edge refused): carries the edge's detail."""

    def __init__(self, uid: str, message: str, status: int | None = None) -> None:
        self.uid = uid
        self.status = status
        super().__init__(f"task {uid}: {message}")


class EdgeExecutionBackend(BaseBackend):
    """Run rhapsody tasks on an edge's rhapsody plugin (see the module doc).

    `backends` are the rhapsody backends the edge session uses; `token` defaults to the
    SDK's lookup (``$RADICAL_EDGE_TOKEN``, the local bridge's token file).  `poll_idle`:
    seconds without any news while tasks are outstanding before the edge is asked directly.
    """

    #: tasks per submit request (each request is accepted or refused as a whole)
    submit_chunk = 4096

    def __init__(self, bridge_url: str | None = None, edge: str | None = None,
                 backends: list[str] | str | None = ("concurrent",),
                 token: str | None = None, *, plugin: str = "rhapsody",
                 name: str = REGISTRY_NAME, init_timeout: float = 120.0,
                 poll_idle: float = 5.0, cert: str | None = None,
                 bridge_client: BridgeClient | None = None) -> None:
        if not edge:
            raise ValueError("EdgeExecutionBackend needs the name of an edge (edge=...)")
        super().__init__(name=name)
        self.bridge_url = bridge_url
        self.edge = edge
        self.plugin = plugin
        self.remote_backends = [backends] if isinstance(backends, str) else \
            (list(backends) if backends else None)
        self.init_timeout = init_timeout
        self.poll_idle = poll_idle
        self._token = token
        self._cert = cert
        self._bc = bridge_client
        self._own_bc = bridge_client is None
        self._client: RhapsodyClient | None = None
        self._callback_func: Callable[[dict, str], None] = lambda task, state: None
        self._pending: dict[str, dict] = {}  # uid -> the caller's task (event loop only)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock: asyncio.Lock | None = None
        self._kick: asyncio.Event | None = None
        self._poller: asyncio.Task | None = None
        self._fetches: set[asyncio.Task] = set()  # full records of cut notifications
        self._last_news = time.monotonic()
        self._state = "INITIALIZED"
        StateMapper.register_backend_states_with_defaults(backend=self)
        StateMapper.register_backend_tasks_states_with_defaults(backend=self)

    # -- start ------------------------------------------------------------------------------
    def __await__(self):
        """``backend = await EdgeExecutionBackend(...)`` opens the edge session now."""
        return self._start().__await__()

    async def __aenter__(self) -> "EdgeExecutionBackend":
        return await self._start()

    async def __aexit__(self, *_exc: Any) -> None:
        await self.shutdown()

    async def _start(self) -> "EdgeExecutionBackend":
        """Open the edge session once (lazily on the first submit if not awaited)."""
        if self._client is not None:
            return self
        if self._state == "SHUTDOWN":
            raise RhapsodyError(f"backend {self.name!r} is shut down")
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._client is None:
                self._loop = asyncio.get_running_loop()
                self._kick = asyncio.Event()
                try:
                    self._client = await asyncio.to_thread(self._open)
                except Exception as exc:
                    await asyncio.to_thread(self._abandon)
                    raise BackendError(self.name, f"cannot open a rhapsody session on edge "
                                                  f"{self.edge!r}: {exc}") from exc
                self._poller = asyncio.create_task(self._poll_loop(),
                                                   name=f"{self.name}-poller")
        return self

    def _open(self) -> RhapsodyClient:
        """Worker thread: connect, open the session, follow its notifications."""
        if self._bc is None:
            self._bc = BridgeClient(self.bridge_url, cert=self._cert, token=self._token)
        self._bc.register_gap_callback(self._on_gap)
        client = self._bc.get_edge_client(self.edge).get_plugin(
            self.plugin, backends=self.remote_backends, init_timeout=self.init_timeout)
        if not isinstance(client, RhapsodyClient):
            client.close()
            raise RhapsodyError(f"plugin {self.plugin!r} of edge {self.edge!r} is not a "
                                f"rhapsody plugin ({type(client).__name__})")
        for topic in ("task_status", "task_status_batch"):
            # this backend tracks completion itself: the client need not keep copies
            client.unregister_notification_callback(client._on_notification, topic)
            client.register_notification_callback(self._on_notification, topic)
        return client

    def _abandon(self) -> None:
        """Worker thread: undo a failed `_open` (a bridge client we made is closed)."""
        if self._bc is None:
            return
        self._bc.unregister_gap_callback(self._on_gap)
        if self._own_bc:
            self._bc.close()
            self._bc = None

    # -- rhapsody interface -----------------------------------------------------------------
    def register_callback(self, func: Callable[[dict, str], None]) -> None:
        self._callback_func = func

    def get_task_states_map(self) -> StateMapper:
        return StateMapper(backend=self)

    def state(self) -> str:
        """INITIALIZED, RUNNING (tasks were submitted) or SHUTDOWN."""
        return self._state

    def task_state_cb(self, task: dict, state: str) -> None:
        """Unused: states reach rhapsody through the registered callback."""

    def build_task(self, task: dict) -> None:
        """Nothing to prepare: tasks travel as plain dicts."""

    async def submit_tasks(self, tasks: list[dict]) -> None:
        """Send `tasks` to the edge; they complete later through `register_callback`."""
        await self._start()
        self._state = "RUNNING"
        client = self._client
        assert client is not None
        wire: list[dict] = []
        for task in tasks:
            self._pending[task["uid"]] = task
            wire.append(_spec(task))
        chunks = [wire[i:i + self.submit_chunk] for i in range(0, len(wire),
                                                               self.submit_chunk)]
        await asyncio.gather(*(self._submit(chunk) for chunk in chunks))

    async def _submit(self, chunk: list[dict]) -> None:
        client = self._client
        assert client is not None
        try:
            acks = await asyncio.to_thread(client.submit_tasks, chunk)
            client.forget([t["uid"] for t in chunk])  # inline results: kept by us, not it
        except EdgeError as exc:
            if exc.status in _REFUSED and len(chunk) > 1 and \
                    not (exc.status == 403 and _same_function(chunk)):
                # one refused task refuses the whole request: bisect to find which
                half = len(chunk) // 2
                await asyncio.gather(self._submit(chunk[:half]), self._submit(chunk[half:]))
                return
            self._refuse(chunk, exc.detail if exc.detail is not None else str(exc),
                         exc.status)
            return
        except Exception as exc:  # bridge down, timeout: these tasks cannot be tracked
            log.warning("%s: submit of %d tasks failed: %s", self.name, len(chunk), exc)
            self._refuse(chunk, f"submit failed: {exc}", None)
            return
        for ack in acks:
            if not isinstance(ack, dict):
                continue
            if ack.get("state") in TERMINAL_STATES and "exit_code" in ack:
                self._finish(ack)  # a small batch answered with full results
            elif ack.get("uid") in self._pending:
                self._callback_func(self._pending[ack["uid"]], "RUNNING")

    def _refuse(self, chunk: list[dict], detail: Any, status: int | None) -> None:
        for spec in chunk:
            task = self._pending.pop(spec["uid"], None)
            if task is None:
                continue
            task["error"] = str(detail)
            task["exception"] = EdgeTaskError(spec["uid"], f"refused by edge {self.edge!r}"
                                              f" ({status}): {detail}", status)
            self._callback_func(task, "FAILED")

    async def cancel_task(self, uid: str) -> bool:
        """Cancel one task on the edge; False if it is not outstanding here."""
        if uid not in self._pending or self._client is None:
            return False
        try:
            answer = await asyncio.to_thread(self._client.cancel_task, uid)
        except EdgeError as exc:
            log.info("%s: cancel of %s refused: %s", self.name, uid, exc)
            return False
        if isinstance(answer, dict) and answer.get("state") in TERMINAL_STATES:
            self._finish({"uid": uid, "state": answer["state"]})
        return True

    async def cancel_all_tasks(self) -> int:
        """Cancel every outstanding task of this backend; the number the edge canceled."""
        if self._client is None or not self._pending:
            return 0
        answer = await asyncio.to_thread(self._client.cancel_all_tasks)
        self._kick_poll()  # the CANCELED notifications may be batched: do not wait idle
        return int(answer.get("canceled", 0)) if isinstance(answer, dict) else 0

    async def shutdown(self) -> None:
        """Close the edge session (the edge cancels what still runs) and the connection.

        Tasks still outstanding are reported CANCELED so no waiter hangs.
        """
        if self._state == "SHUTDOWN":
            return
        self._state = "SHUTDOWN"
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except (asyncio.CancelledError, Exception):
                pass
            self._poller = None
        client, self._client = self._client, None
        bc = self._bc
        if bc is not None:
            bc.unregister_gap_callback(self._on_gap)

        def close() -> None:
            if client is not None:
                client.close()
            if bc is not None and self._own_bc:
                bc.close()

        await asyncio.to_thread(close)
        for uid in list(self._pending):
            task = self._pending.pop(uid)
            self._callback_func(task, "CANCELED")

    # -- completion -------------------------------------------------------------------------
    def _on_notification(self, edge: str, plugin: str, topic: str, data: Any) -> None:
        """Listener thread: hand this session's finished records to the event loop."""
        client, loop = self._client, self._loop
        if client is None or loop is None or not isinstance(data, dict) or \
                data.get("sid") != client.sid:
            return
        records = (data.get("tasks") or []) if topic == "task_status_batch" else [data]
        done = [r for r in records if isinstance(r, dict) and r.get("state") in TERMINAL_STATES]
        if done:
            try:
                loop.call_soon_threadsafe(self._finish_many, done)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _on_gap(self, gap: dict) -> None:
        """Listener thread: notifications were lost; re-poll the outstanding tasks now."""
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._kick_poll)
            except RuntimeError:
                pass

    def _kick_poll(self) -> None:
        if self._kick is not None:
            self._kick.set()

    def _finish_many(self, records: list[dict]) -> None:
        for record in records:
            self._finish(record)

    def _finish(self, record: dict) -> None:
        """Event loop: complete the caller's task from the edge's record (once)."""
        self._last_news = time.monotonic()
        uid = record.get("uid")
        if uid not in self._pending:
            return
        if record.get("stdout_truncated") or record.get("stderr_truncated"):
            # the notification cut a huge output: fetch the whole record first
            fetch = asyncio.get_running_loop().create_task(self._finish_full(uid))
            self._fetches.add(fetch)
            fetch.add_done_callback(self._fetches.discard)
            return
        task = self._pending.pop(uid)
        record = decode_record(record)
        state = record["state"]
        for key in _RESULT_FIELDS:
            if key in record:
                task[key] = record[key]
        task["exception"] = None
        if state == "FAILED":
            task["exception"] = _failure(task["uid"], record)
        self._callback_func(task, state)

    async def _finish_full(self, uid: str) -> None:
        client = self._client
        if client is None:
            return
        try:
            record = await asyncio.to_thread(client.get_task, uid)
        except Exception as exc:  # the poll loop tries again
            log.info("%s: fetching task %s failed: %s", self.name, uid, exc)
            return
        for key in ("stdout_truncated", "stderr_truncated"):
            record.pop(key, None)
        if record.get("state") in TERMINAL_STATES:
            self._finish(record)

    async def _poll_loop(self) -> None:
        """Ask the edge for outstanding tasks after a gap or `poll_idle` s without news."""
        assert self._kick is not None
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), self.poll_idle)
                kicked = True
            except asyncio.TimeoutError:
                kicked = False
            self._kick.clear()
            if not self._pending or self._client is None:
                continue
            if not kicked and time.monotonic() - self._last_news < self.poll_idle:
                continue
            uids = list(self._pending)
            try:
                records = await asyncio.to_thread(self._client.snapshot, uids)
            except Exception as exc:  # the next round tries again
                log.info("%s: polling %d tasks failed: %s", self.name, len(uids), exc)
                continue
            self._last_news = time.monotonic()
            self._finish_many([r for r in records if r.get("state") in TERMINAL_STATES])


def _spec(task: dict) -> dict:
    """The plain dict sent to the edge for one rhapsody task (the edge's default backend)."""
    out = {k: v for k, v in task.items() if v is not None and k in _SPEC_FIELDS}
    if isinstance(out.get("args"), tuple):
        out["args"] = list(out["args"])
    if not out.get("task_backend_specific_kwargs"):
        out.pop("task_backend_specific_kwargs", None)
    if task.get("capture_stdio"):
        out["capture_stdio"] = True
    return out


def _same_function(chunk: list[dict]) -> bool:
    """True if every task names the same function (refused alike: no point bisecting)."""
    names = set()
    for spec in chunk:
        fn = spec.get("function")
        if fn is None:
            return False
        names.add(fn if isinstance(fn, str) else
                  (getattr(fn, "__module__", None), getattr(fn, "__qualname__", id(fn))))
        if len(names) > 1:
            return False
    return True


def _failure(uid: str, record: dict) -> BaseException:
    """The exception rhapsody sets on a FAILED task's future."""
    exit_code = record.get("exit_code")
    if exit_code not in (None, 0) and not record.get("exception"):
        return TaskExecutionError(uid, record.get("stderr") or "", exit_code)
    message = record.get("exception") or record.get("error") or "failed on the edge"
    return EdgeTaskError(uid, str(message))


BackendRegistry.register_backend(REGISTRY_NAME, EdgeExecutionBackend)
