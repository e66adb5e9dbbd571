"""Which paths the staging plugin may touch: absolute paths under the allowed roots.

A caller names a path on the edge; we resolve it with `realpath` (every symlink followed)
and accept it only if the result lies under one of the roots (also resolved). A symlink
inside a root that points outside is therefore refused, as is `..` climbing out. The
check runs off the event loop (realpath stats every component, possibly on a slow NFS).
"""
from __future__ import annotations

import os
import tempfile

from ...errors import StatusError

__all__ = ["StagingError", "PathPolicy", "default_roots"]


class StagingError(StatusError):
    """A staging request that cannot be served; `status` says why (400/403/404/409/422)."""

    status = 400


def default_roots() -> list[str]:
    """`$HOME` and the temporary directory, as the original plugin allowed."""
    return [os.path.expanduser("~"), tempfile.gettempdir()]


class PathPolicy:
    """Allowed roots, resolved once; `check` maps a requested path to its real path."""

    def __init__(self, roots: list[str] | str | None = None) -> None:
        if isinstance(roots, str):
            roots = [r for r in roots.split(os.pathsep) if r.strip()]
        self.roots = [os.path.realpath(os.path.expanduser(r)) for r in (roots or default_roots())]

    def allows(self, real: str) -> bool:
        return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep)
                   for root in self.roots)

    def check(self, path: object) -> str:
        """The real path of `path`: 400 if not an absolute path, 403 outside the roots."""
        if not isinstance(path, str) or not path:
            raise StagingError("a non-empty 'path' string is required", 400)
        if "\x00" in path:
            raise StagingError("path contains a NUL byte", 400)
        if not os.path.isabs(path):
            raise StagingError(f"path must be absolute: {path!r}", 400)
        real = os.path.realpath(path)
        if not self.allows(real):
            raise StagingError(f"path is outside the allowed directories: {path!r}"
                               + (f" (resolves to {real!r})" if real != path else ""), 403)
        return real
