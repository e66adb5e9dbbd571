"""A stand-in for the original radical.edge 0.2.0 client (not installable here: it is not
on PyPI), reproducing exactly what it puts on the wire and how it reads answers:

- one `httpx.Client(base_url=<bridge url>, verify=<cert or False>, timeout=60)`; a URL with
  user info (`http://:TOKEN@host:port`) makes httpx send HTTP Basic credentials;
- edge and plugin discovery through `POST /edge/list`; every plugin URL is the plugin's
  `namespace` (relative to the bridge) + `/` + the route;
- `register_session` is a bare POST (plugin clients that take arguments send JSON);
- errors: any status >= 400 raises `RuntimeError("HTTP N — [edge/plugin] — detail")` with
  `detail` read from the JSON body;
- notifications: one thread streaming `GET {url}/events`, reading only `data: ` lines.

Plugin clients are looked up by plugin name in a local registry, as the original looked
them up in its `Plugin` class registry. Written for the compatibility tests only.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any, Callable

import httpx


def raise_for(resp: httpx.Response, context: str = "") -> None:
    if resp.is_error:
        try:
            detail = str(resp.json().get("detail") or "")
        except Exception:
            detail = resp.text or ""
        parts = [f"HTTP {resp.status_code}"] + [p for p in (context, detail) if p]
        raise RuntimeError(" — ".join(parts))


class BridgeClient:
    def __init__(self, url: str | None = None, cert: str | None = None) -> None:
        self._url = (url or os.environ.get("RADICAL_BRIDGE_URL", "")).rstrip("/")
        self._cert = cert or os.environ.get("RADICAL_BRIDGE_CERT")
        if not self._url:
            raise ValueError("Bridge URL required")
        self._http = httpx.Client(base_url=self._url, verify=self._cert or False, timeout=60.0)
        self._callbacks: dict[tuple, list[Callable]] = {}
        self._topology_callbacks: list[Callable] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.connected = threading.Event()

    def register_callback(self, edge_id=None, plugin_name=None, topic=None, callback=None):
        self._callbacks.setdefault((edge_id, plugin_name, topic), []).append(callback)
        self._ensure_listener()

    def register_topology_callback(self, callback: Callable) -> None:
        self._topology_callbacks.append(callback)
        self._ensure_listener()

    def _ensure_listener(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._listen, daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        try:
            with httpx.stream("GET", f"{self._url}/events", verify=self._cert or False,
                              timeout=None) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    if self._stop.is_set():
                        break
                    if not line.startswith("data: ") or not line[6:]:
                        continue
                    payload = json.loads(line[6:])
                    if payload.get("topic") == "topology":
                        self.connected.set()
                        for cb in self._topology_callbacks:
                            cb(payload.get("data", {}).get("edges", {}))
                    elif payload.get("topic") == "notification":
                        n = payload.get("data", {})
                        for (e, p, t), cbs in list(self._callbacks.items()):
                            if (e in (None, n.get("edge")) and p in (None, n.get("plugin"))
                                    and t in (None, n.get("topic"))):
                                for cb in cbs:
                                    cb(n.get("edge"), n.get("plugin"), n.get("topic"),
                                       n.get("data", {}))
        except Exception:
            pass

    def close(self) -> None:
        self._stop.set()
        self._http.close()

    def list_edges(self) -> list[str]:
        resp = self._http.post("/edge/list")
        raise_for(resp)
        return list(resp.json().get("data", {}).get("edges", {}).keys())

    def get_edge_client(self, edge_id: str) -> "EdgeClient":
        return EdgeClient(self, edge_id)


class EdgeClient:
    def __init__(self, bc: BridgeClient, edge_id: str) -> None:
        self._bc, self._edge_id = bc, edge_id

    def list_plugins(self) -> dict:
        resp = self._bc._http.post("/edge/list")
        raise_for(resp)
        return resp.json().get("data", {}).get("edges", {}).get(self._edge_id, {}) \
            .get("plugins", {})

    def get_plugin(self, plugin_name: str, **session_kwargs: Any) -> "PluginClient":
        info = self.list_plugins().get(plugin_name)
        if not info:
            raise RuntimeError(f"Plugin '{plugin_name}' unknown on '{self._edge_id}'")
        client_cls = CLIENTS.get(plugin_name)
        if client_cls is None:  # the original's way: the Plugin class registry
            from radical.edge.plugin_base import Plugin

            client_cls = getattr(Plugin.get_plugin_class(plugin_name), "client_class", None)
        if client_cls is None:
            raise RuntimeError(f"Plugin class for '{plugin_name}' not found")
        client = client_cls(self._bc._http, info["namespace"], bridge_client=self._bc,
                            edge_id=self._edge_id, plugin_name=plugin_name)
        client.register_session(**session_kwargs)
        return client


class PluginClient:
    def __init__(self, http_client, base_url, bridge_client=None, edge_id=None,
                 plugin_name=None) -> None:
        self._http = http_client
        self._base_url = base_url.rstrip("/")
        self._bc, self._edge_id, self._plugin_name = bridge_client, edge_id, plugin_name
        self._sid: str | None = None

    @property
    def sid(self) -> str | None:
        return self._sid

    def _url(self, path: str) -> str:
        return f"{self._base_url}/{path.lstrip('/')}"

    def _raise(self, resp: httpx.Response, context: str = "") -> None:
        origin = "/".join(filter(None, [self._edge_id, self._plugin_name]))
        raise_for(resp, f"[{origin}] {context}" if context else f"[{origin}]")

    def register_notification_callback(self, callback, topic=None) -> None:
        self._bc.register_callback(self._edge_id, self._plugin_name, topic, callback)

    def register_session(self, **kwargs: Any) -> None:
        resp = self._http.post(self._url("register_session"))
        self._raise(resp)
        self._sid = resp.json()["sid"]

    def unregister_session(self) -> None:
        if self._sid:
            resp = self._http.post(self._url(f"unregister_session/{self._sid}"))
            self._raise(resp)
            self._sid = None

    def close(self) -> None:
        try:
            self.unregister_session()
        except Exception:
            pass

    def _get(self, path: str, **params: Any) -> Any:
        resp = self._http.get(self._url(path), params=params or None)
        self._raise(resp)
        return resp.json()

    def _post(self, path: str, payload: Any = None) -> Any:
        resp = self._http.post(self._url(path), json=payload)
        self._raise(resp)
        return resp.json()


class SysInfoClient(PluginClient):
    def get_metrics(self) -> dict:
        return self._get(f"metrics/{self.sid}")

    def homedir(self) -> str:
        return self._get("homedir")["homedir"]

    def host_role(self) -> dict:
        return self._get("host_role")


def _opts(user: str | None, force: bool) -> dict:
    params: dict[str, Any] = {"force": str(force).lower()}
    if user:
        params["user"] = user
    return params


class QueueInfoClient(PluginClient):
    def get_info(self, user=None, force=False) -> dict:
        return self._get(f"get_info/{self.sid}", **_opts(user, force))

    def list_jobs(self, queue, user=None, force=False) -> dict:
        return self._get(f"list_jobs/{self.sid}/{queue}", **_opts(user, force))

    def list_all_jobs(self, user=None, force=False) -> dict:
        return self._get(f"list_all_jobs/{self.sid}", **_opts(user, force))

    def list_allocations(self, user=None, force=False) -> dict:
        return self._get(f"list_allocations/{self.sid}", **_opts(user, force))

    def cancel_job(self, job_id: str) -> dict:
        return self._post(f"cancel/{self.sid}/{job_id}")

    def job_allocation(self) -> dict | None:
        return self._get("job_allocation")["allocation"]

    def backend(self) -> str:
        return self._get("backend")["backend"]


class PSIJClient(PluginClient):
    def submit_job(self, job_spec: dict, executor: str = "local") -> dict:
        return self._post(f"submit/{self.sid}", {"job_spec": job_spec, "executor": executor})

    def get_job_status(self, job_id: str, stdout_offset: int = 0,
                       stderr_offset: int = 0) -> dict:
        return self._get(f"status/{self.sid}/{job_id}", stdout_offset=stdout_offset,
                         stderr_offset=stderr_offset)

    def list_jobs(self) -> dict:
        return self._get(f"list_jobs/{self.sid}")

    def cancel_job(self, job_id: str) -> dict:
        return self._post(f"cancel/{self.sid}/{job_id}")


class RhapsodyClient(PluginClient):
    """Session init and task completion through SSE, as the original did."""

    def register_session(self, backends=None, init_timeout=120, **_kw: Any) -> None:
        seen: dict[str, dict] = {}  # by sid: the answer may come before the POST returns
        cond = threading.Condition()

        def on_status(_e, _p, _t, data):
            if data.get("status") in ("ready", "failed"):
                with cond:
                    seen[data.get("sid")] = data
                    cond.notify_all()

        self._done: dict[str, dict] = {}
        self._cond = threading.Condition()
        self.register_notification_callback(on_status, topic="session_status")
        self.register_notification_callback(self._on_task, topic="task_status")
        self.register_notification_callback(self._on_batch, topic="task_status_batch")
        self._bc.connected.wait(10)
        payload = {"backends": backends} if backends else {}
        resp = self._http.post(self._url("register_session"), json=payload)
        self._raise(resp)
        self._sid = sid = resp.json()["sid"]
        if resp.json().get("status") == "ready":
            return
        with cond:
            if not cond.wait_for(lambda: sid in seen, init_timeout):
                raise RuntimeError("session did not become ready")
        if seen[sid]["status"] == "failed":
            raise RuntimeError(f"session failed: {seen[sid].get('error')}")

    def _on_task(self, _e, _p, _t, data) -> None:
        if data.get("state") in ("DONE", "FAILED", "CANCELED"):
            with self._cond:
                self._done[data["uid"]] = data
                self._cond.notify_all()

    def _on_batch(self, e, p, t, data) -> None:
        for task in data.get("tasks", []):
            self._on_task(e, p, t, task)

    def submit_tasks(self, task_dicts: list[dict]) -> list[dict]:
        for task in task_dicts:
            task.setdefault("uid", f"task.{uuid.uuid4().hex[:12]}")
        return self._post(f"submit/{self.sid}", {"tasks": task_dicts})

    def wait_tasks(self, uids: list[str], timeout: float | None = None) -> list[dict]:
        end = time.monotonic() + (timeout or 600)
        with self._cond:
            while not all(u in self._done for u in uids):
                if not self._cond.wait(max(0.0, end - time.monotonic())):
                    raise TimeoutError(f"tasks not done: {uids}")
        return [self._done[u] for u in uids]

    def get_task(self, uid: str) -> dict:
        return self._get(f"task/{self.sid}/{uid}")

    def list_tasks(self) -> dict:
        return self._get(f"list_tasks/{self.sid}")

    def cancel_task(self, uid: str) -> dict:
        return self._post(f"cancel/{self.sid}/{uid}")

    def cancel_all_tasks(self) -> dict:
        return self._post(f"cancel_all/{self.sid}")


#: the original found these through its Plugin class registry, keyed by plugin name
class StagingClient(PluginClient):
    """The original's wire: whole files base64-encoded in JSON; 409/404/400 mapped to the
    exceptions its callers catch."""

    def put(self, src: str, tgt: str, overwrite: bool = False) -> dict:
        import base64

        with open(src, "rb") as fh:
            content = base64.b64encode(fh.read()).decode("ascii")
        resp = self._http.post(self._url(f"put/{self.sid}"), json={
            "filename": tgt, "content": content, "overwrite": overwrite})
        if resp.status_code == 409:
            raise FileExistsError(resp.json().get("detail", "Target exists"))
        self._raise(resp, f"staging put {src!r} -> {tgt!r}")
        return resp.json()

    def get(self, src: str, tgt: str) -> dict:
        import base64

        if os.path.exists(tgt):
            raise FileExistsError(f"Local target already exists: {tgt}")
        resp = self._http.post(self._url(f"get/{self.sid}"), json={"filename": src})
        if resp.status_code == 404:
            raise FileNotFoundError(resp.json().get("detail", "File not found"))
        self._raise(resp, f"staging get {src!r} -> {tgt!r}")
        data = resp.json()
        os.makedirs(os.path.dirname(tgt) or ".", exist_ok=True)
        with open(tgt, "wb") as fh:
            fh.write(base64.b64decode(data["content"]))
        return {"path": tgt, "size": data["size"]}

    def list(self, path: str) -> dict:
        resp = self._http.post(self._url(f"list/{self.sid}"), json={"path": path})
        if resp.status_code == 404:
            raise FileNotFoundError(resp.json().get("detail", "Not found"))
        if resp.status_code == 400:
            detail = resp.json().get("detail", "")
            if "not a directory" in detail.lower():
                raise NotADirectoryError(detail)
            raise ValueError(detail)
        self._raise(resp, f"staging list {path!r}")
        return resp.json()


CLIENTS: dict[str, type[PluginClient]] = {
    "sysinfo": SysInfoClient, "queue_info": QueueInfoClient, "psij": PSIJClient,
    "rhapsody": RhapsodyClient, "staging": StagingClient,
}
