"""Which import-path functions a rhapsody task may name: the edge admin's allow-list.

A task's ``function`` runs as the edge's user, so an import path is a request to run code:
``os:system``, ``builtins:exec`` or ``pickle:loads`` would be a shell for anyone who can
submit.  Only these are allowed:

* ``radical.edge.plugins.rhapsody.functions:*`` (the project's own small functions);
* entries of ``RADICAL_EDGE_RHAPSODY_FUNCTIONS`` (comma-separated): ``pkg.mod:func`` (that
  callable; a dotted qualname such as ``pkg.mod:Class.method`` is allowed when named
  exactly) or ``pkg.mod:*`` (every public function *defined in* ``pkg.mod`` — not names it
  imported from elsewhere, not private ``_names``, not attributes of attributes);
* entry points of the group ``radical.edge.functions`` (``value`` = ``pkg.mod:func`` or a
  module ``pkg.mod``, which allows ``pkg.mod:*``): packaged functions an admin installs.

The check runs on the *text* of the path, before anything is imported (importing a module
runs its code); wildcard matches are checked again on the resolved object.  Everything else
is refused with 403 and a detail that names the function and how to allow it.
"""
from __future__ import annotations

import logging
import re
import types
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

from ...registry import resolve
from .errors import TaskSpecError

__all__ = ["BUILTIN_ALLOWED", "ENTRY_POINT_GROUP", "FunctionPolicy", "split_path",
           "resolve_allowed"]

log = logging.getLogger(__name__)

#: always allowed: the project's own example/benchmark functions
BUILTIN_ALLOWED = ("radical.edge.plugins.rhapsody.functions:*",)
#: entry-point group of packaged functions an edge admin installs
ENTRY_POINT_GROUP = "radical.edge.functions"
_NAME = r"[A-Za-z_]\w*"
_MODULE = re.compile(rf"^{_NAME}(\.{_NAME})*$")
_QUALNAME = re.compile(rf"^{_NAME}(\.{_NAME})*$")
_PUBLIC = re.compile(r"^[A-Za-z]\w*$")


def split_path(path: str) -> list[tuple[str, str]]:
    """Candidate (module, qualname) readings of `path` (``mod:q`` or legacy ``mod.attr``)."""
    if ":" in path:
        module, _, qualname = path.partition(":")
        if _MODULE.match(module) and _QUALNAME.match(qualname):
            return [(module, qualname)]
        return []
    if not _MODULE.match(path):
        return []
    parts = path.split(".")
    # the longest module prefix first, like pkgutil.resolve_name's progressive import
    return [(".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts) - 1, 0, -1)]


@dataclass
class FunctionPolicy:
    """The allow-list: exact ``module:qualname`` entries and ``module:*`` wildcards."""

    exact: set[str] = field(default_factory=set)
    modules: set[str] = field(default_factory=set)

    @classmethod
    def from_settings(cls, spec: str | None = "", *, entry_point_group: str | None =
                      ENTRY_POINT_GROUP) -> "FunctionPolicy":
        """Built-ins + the comma-separated `spec` + installed entry points of the group."""
        policy = cls()
        entries: list[str] = list(BUILTIN_ALLOWED)
        entries += [e.strip() for e in (spec or "").split(",") if e.strip()]
        if entry_point_group:
            entries += _entry_point_values(entry_point_group)
        for entry in entries:
            policy.add(entry)
        return policy

    def add(self, entry: str) -> None:
        """Allow ``mod:func``, ``mod:*`` or a bare module ``mod`` (= ``mod:*``)."""
        entry = entry.strip()
        module, sep, qualname = entry.partition(":")
        if not _MODULE.match(module) or (sep and qualname != "*"
                                         and not _QUALNAME.match(qualname)):
            log.warning("ignoring malformed rhapsody function allow-list entry %r "
                        "(use 'package.module:function' or 'package.module:*')", entry)
            return
        if not sep or qualname == "*":
            self.modules.add(module)
        else:
            self.exact.add(f"{module}:{qualname}")

    def match(self, path: str) -> tuple[str, str, bool] | None:
        """The allowed (module, qualname, via_wildcard) reading of `path`, or None."""
        for module, qualname in split_path(path):
            if f"{module}:{qualname}" in self.exact:
                return module, qualname, False
            if module in self.modules and _PUBLIC.match(qualname):
                return module, qualname, True
        return None

    def describe(self) -> list[str]:
        return sorted(self.exact | {f"{m}:*" for m in self.modules})


def _entry_point_values(group: str) -> list[str]:
    try:
        return [ep.value for ep in entry_points(group=group)]
    except Exception as exc:  # a broken distribution must not stop the edge
        log.warning("cannot read entry points %r: %s", group, exc)
        return []


def refusal(path: str) -> str:
    """The 403 detail for a function outside the allow-list."""
    return (f"function {path!r} is not allowed on this edge: only functions the edge admin "
            f"allows may run (the project's own {BUILTIN_ALLOWED[0]}, entries of "
            "RADICAL_EDGE_RHAPSODY_FUNCTIONS such as 'mypkg.tasks:*,numpy:sum', and entry "
            f"points of the group '{ENTRY_POINT_GROUP}'); ask the admin to add it there")


def resolve_allowed(policy: FunctionPolicy, path: str) -> tuple[str, Callable[..., Any]]:
    """``("module:qualname", callable)`` that `path` names, if the policy allows it.

    The plugin's one resolver of task functions (via `registry.resolve`).

    Raises `TaskSpecError`: 403 outside the allow-list, 422 when an allowed path does not
    import or names no callable.
    """
    if not split_path(path):
        raise TaskSpecError(f"function {path!r} is not an import path: use "
                            "'package.module:function'")
    found = policy.match(path)
    if found is None:
        raise TaskSpecError(refusal(path), 403)
    module, qualname, wildcard = found
    try:
        obj: Any = resolve(f"{module}:{qualname}")
    except ImportError as exc:
        raise TaskSpecError(f"cannot import function {path!r}: {exc}") from None
    except AttributeError:
        raise TaskSpecError(f"cannot import function {path!r}: module {module!r} "
                            f"has no attribute {qualname!r}") from None
    except Exception as exc:  # a module failing at import time
        raise TaskSpecError(f"cannot import function {path!r}: "
                            f"{type(exc).__name__}: {exc}") from None
    if not callable(obj) or isinstance(obj, types.ModuleType):
        raise TaskSpecError(f"function {path!r} names a {type(obj).__name__}, "
                            "not a callable")
    if wildcard and getattr(obj, "__module__", None) != module:
        # `mod:*` covers what `mod` defines, not what it imported (e.g. `mod:system`)
        raise TaskSpecError(refusal(path) + f" ('{module}:*' covers only functions defined "
                            f"in {module!r}; {qualname!r} comes from "
                            f"{getattr(obj, '__module__', None)!r})", 403)
    return f"{module}:{qualname}", obj
