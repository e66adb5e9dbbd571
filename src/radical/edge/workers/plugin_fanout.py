"""What a plugin host does for all its plugins at once, shared by the edge's `PluginHost`
and the bridge's `LocalPluginHost`: tell them about topology changes and reap idle sessions.
One plugin's failure is logged and never stops the others."""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Iterable

from ..plugins.base import Plugin

log = logging.getLogger(__name__)

#: how often idle sessions are looked for (s)
REAP_SECONDS = 5.0


async def tell_topology(plugins: Iterable[Plugin], edges: dict) -> None:
    for plugin in list(plugins):
        try:
            await plugin.on_topology_change(edges)
        except Exception:
            log.exception("on_topology_change of %s failed", plugin.instance_name)


async def reap_sessions_forever(plugins: Callable[[], Iterable[Plugin]]) -> None:
    while True:
        await asyncio.sleep(REAP_SECONDS)
        for plugin in list(plugins()):
            try:
                await plugin.reap_expired()
            except Exception:
                log.exception("reaping sessions of %s failed", plugin.instance_name)
