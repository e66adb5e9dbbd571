"""Name -> implementation registries, and the one `module:qualname` resolver.

Used by both sides (plugins and batch systems on the edge, client classes in the SDK), so it
imports nothing but the stdlib: the SDK stays httpx-only. An implementation is registered as
the object itself or as an import path; a path is imported only when first looked up, so an
edge without psij-python can still list and load sysinfo. Third parties add theirs through
an entry-point group.
"""
from __future__ import annotations

import logging
import pkgutil
import threading
from importlib import metadata
from typing import Any, Generic, Iterator, TypeVar

__all__ = ["Registry", "resolve"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def resolve(path: str) -> Any:
    """The object named by ``package.module:Qual.Name`` (or ``package.module.Name``).

    Raises ValueError for a malformed path, ImportError/AttributeError when it names nothing,
    and whatever the imported module raises while it is executed.
    """
    if not isinstance(path, str) or not path or path.startswith((":", ".")):
        raise ValueError(f"not an import path: {path!r} (want 'package.module:Name')")
    return pkgutil.resolve_name(path)


class Registry(Generic[T]):
    """Names -> implementations (objects or lazily imported `module:qualname` paths)."""

    def __init__(self, kind: str, builtins: dict[str, str | T] | None = None) -> None:
        self.kind = kind  # says what is registered, for messages ("plugin", "batch system")
        self._entries: dict[str, str | T] = dict(builtins or {})
        self._lock = threading.Lock()

    def register(self, name: str, impl: str | T) -> None:
        """Make `impl` (an object or its import path) known as `name`; a later call wins."""
        with self._lock:
            self._entries[name] = impl

    def load_entry_points(self, group: str) -> list[str]:
        """Register every entry point of `group` (by path, not imported); their names."""
        try:
            eps = list(metadata.entry_points(group=group))
        except Exception as exc:  # broken distribution metadata somewhere on sys.path
            log.warning("cannot read entry points of %s: %s", group, exc)
            return []
        for ep in eps:
            self.register(ep.name, ep.value)
        return [ep.name for ep in eps]

    def get(self, name: str) -> T:
        """The implementation of `name`, imported on first use (KeyError if unknown)."""
        entry = self._entries[name]
        if isinstance(entry, str):
            obj: T = resolve(entry)
            with self._lock:
                if self._entries.get(name) is entry:
                    self._entries[name] = obj
            return obj
        return entry

    def path(self, name: str) -> str | None:
        """The import path `name` was registered with (None if registered as an object)."""
        entry = self._entries.get(name)
        return entry if isinstance(entry, str) else None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
