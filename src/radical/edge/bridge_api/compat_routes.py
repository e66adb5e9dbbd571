"""Routes the original bridge served beside the contract's core: `GET /edges` and
`GET /plugins/<name>.js` (a plugin's portal UI module); and `GET /bridge/broker`, which
lets an edge started the original way (`--url` = the bridge) find the Redis to join.

UI modules come from the portal (built-in plugins: a redirect to `/portal/js/<name>.js`, so
the module's relative imports resolve) or from a plugin package installed on the bridge
host: the `ui_module` its edges announce (relative to the plugin's module directory), else
`<name>.js` next to the plugin's module. The bridge finds that directory from the entry point
and the module spec alone: it never imports (runs) plugin code.
"""
from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse

from ..constants import PLUGIN_ENTRY_POINTS, TEST_PLUGIN_ENTRY_POINTS
from ..registry import Registry
from .portal import PORTAL_DIR

log = logging.getLogger(__name__)
router = APIRouter()

#: a plugin name as it may appear in `/plugins/<name>.js`
PLUGIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@router.get("/edges")
async def edges(request: Request) -> dict:
    """`{"edges": [{name, plugins, connected, plugin_count}], "total"}` (original shape)."""
    state = request.app.state.bridge
    listed = []
    for name, info in sorted(state.watcher.edges.items()):
        plugins = sorted((info.get("plugins") or {}).keys())
        listed.append({"name": name, "plugins": plugins, "connected": True,
                       "plugin_count": len(plugins), "role": info.get("role"),
                       "host": info.get("host")})
    return {"edges": listed, "total": len(listed)}


@router.get("/bridge/broker")
async def bridge_broker(request: Request) -> dict:
    """The Redis URL this bridge uses, for edges started the original way (`--url` = the
    bridge). Admin only (the guard's rule for the bridge's own routes): it carries the
    bridge's own Redis credentials; edges should enroll instead (`--enroll`)."""
    state = request.app.state.bridge
    return {"redis_url": state.settings.redis_url}


@router.get("/plugins/{filename}")
async def plugin_ui_module(filename: str, request: Request) -> object:
    name, dot, ext = filename.rpartition(".")
    if not dot or ext != "js" or not PLUGIN_NAME_RE.match(name) or ".." in name:
        raise HTTPException(404, f"no UI module '{filename[:140]}'")
    if (PORTAL_DIR / "js" / f"{name}.js").is_file():
        return RedirectResponse(f"/portal/js/{name}.js", status_code=307)
    path = installed_ui_module(name, announced_ui_module(request, name))
    if path is None:
        raise HTTPException(404, f"no UI module for plugin '{name}'")
    return FileResponse(str(path), media_type="text/javascript")


def announced_ui_module(request: Request, name: str) -> str | None:
    """The `ui_module` an edge announces for plugin `name`, if any does."""
    state = getattr(request.app.state, "bridge", None)
    for info in (state.watcher.edges.values() if state is not None else ()):
        declared = ((info.get("plugins") or {}).get(name) or {}).get("ui_module")
        if isinstance(declared, str) and declared:
            return declared
    return None


def installed_ui_module(name: str, declared: str | None = None) -> Path | None:
    """The UI module file a plugin installed on this host ships, or None."""
    plugins: Registry[type] = Registry("plugin")
    plugins.load_entry_points(PLUGIN_ENTRY_POINTS)
    plugins.load_entry_points(TEST_PLUGIN_ENTRY_POINTS)
    spec = plugins.path(name) if name in plugins.names() else None
    if spec is None:
        return None
    module_name = spec.partition(":")[0]
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if found is None or not found.origin:
        return None
    base = Path(found.origin).parent.resolve()
    candidates = [base / declared] if declared else []
    candidates.append(base / f"{name}.js")
    for path in candidates:
        path = path.resolve()
        if path.suffix == ".js" and path.is_file() and path.is_relative_to(base):
            return path
    return None
