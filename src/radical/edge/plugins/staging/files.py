"""Blocking file-system operations of the staging plugin (run them via `asyncio.to_thread`).

Every function takes a path the `PathPolicy` already resolved and raises `StagingError`
with the status the original plugin answered: 404 missing, 403 not permitted, 409 exists,
400 wrong kind (a directory where a file is expected and the like).
"""
from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import shutil
import stat as st
from typing import Any, Iterator

from .policy import StagingError

#: read size when hashing or streaming files
BLOCK = 1024 * 1024


#: errors a path name itself causes: too long, a symlink loop, invalid for this filesystem
BAD_NAME_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL})


@contextlib.contextmanager
def os_errors(path: str) -> Iterator[None]:
    """Map `OSError`s to the statuses a caller can act on."""
    try:
        yield
    except StagingError:
        raise
    except FileNotFoundError:
        raise StagingError(f"not found: {path}", 404) from None
    except FileExistsError:
        raise StagingError(f"already exists: {path}", 409) from None
    except PermissionError:
        raise StagingError(f"permission denied: {path}", 403) from None
    except NotADirectoryError:
        raise StagingError(f"not a directory: {path}", 400) from None
    except IsADirectoryError:
        raise StagingError(f"is a directory: {path}", 400) from None
    except OSError as exc:
        if exc.errno == errno.ENOTEMPTY:
            raise StagingError(f"directory not empty: {path}", 409) from None
        if exc.errno in BAD_NAME_ERRNOS:  # the caller's name, not the server, is at fault
            raise StagingError(f"{exc.strerror or exc}: {path}", 400) from None
        raise StagingError(f"{exc.strerror or exc}: {path}", 500) from None


def kind(mode: int) -> str:
    return "dir" if st.S_ISDIR(mode) else "file" if st.S_ISREG(mode) else "unknown"


def entry(path: str, name: str | None = None) -> dict[str, Any]:
    """`{name, type, size, mtime, mode}` of one directory entry (symlinks followed)."""
    name = os.path.basename(path) if name is None else name
    try:
        info = os.stat(path)
    except OSError:
        return {"name": name, "type": "unknown", "size": None}
    t = kind(info.st_mode)
    return {"name": name, "type": t, "size": info.st_size if t == "file" else None,
            "mtime": info.st_mtime, "mode": st.S_IMODE(info.st_mode)}


def stat_path(path: str, digest: bool = False) -> dict[str, Any]:
    """`entry` plus `path`; with `digest` the file's sha256 (404 if missing)."""
    with os_errors(path):
        os.stat(path)
        out = {"path": path, **entry(path)}
        if digest and out["type"] == "file":
            out["sha256"] = sha256_file(path)
    return out


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def list_dir(path: str) -> dict[str, Any]:
    """`{"path", "entries": [{name, type, size, ...}]}` sorted by name, as the original."""
    with os_errors(path):
        if not os.path.isdir(path):
            if not os.path.exists(path):
                raise FileNotFoundError(path)
            raise NotADirectoryError(path)
        names = sorted(os.listdir(path))
    return {"path": path, "entries": [entry(os.path.join(path, n), n) for n in names]}


def write_whole(path: str, data: bytes, overwrite: bool) -> dict[str, Any]:
    """The original `put`: parents created, 409 if the target exists without overwrite."""
    with os_errors(path):
        if os.path.isdir(path):
            raise IsADirectoryError(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if overwrite else "xb") as fh:
            fh.write(data)
        return {"path": path, "size": os.path.getsize(path)}


def read_whole(path: str, limit: int) -> dict[str, Any]:
    """The original `get`: the whole file base64-encoded (refused above `limit` bytes)."""
    with os_errors(path):
        if os.path.isdir(path):
            raise StagingError(f"not a regular file: {path}", 400)
        size = os.path.getsize(path)
        if size > limit:
            raise StagingError(f"{path} has {size} bytes, more than get() sends inline "
                               f"({limit}); use download()", 413)
        with open(path, "rb") as fh:
            data = fh.read()
    return {"path": path, "size": len(data), "content": base64.b64encode(data).decode("ascii")}


def make_dir(path: str, parents: bool, exist_ok: bool) -> dict[str, Any]:
    with os_errors(path):
        if parents:
            os.makedirs(path, exist_ok=exist_ok)
        else:
            try:
                os.mkdir(path)
            except FileExistsError:
                if not (exist_ok and os.path.isdir(path)):
                    raise
    return stat_path(path)


def delete(path: str, recursive: bool) -> dict[str, Any]:
    """Remove a file, a symlink (not its target) or a directory (non-empty: `recursive`)."""
    with os_errors(path):
        info = os.lstat(path)
        if st.S_ISDIR(info.st_mode):
            if recursive:
                shutil.rmtree(path)  # never follows symlinks out of the tree
            else:
                os.rmdir(path)
        else:
            os.unlink(path)
    return {"path": path, "deleted": True}


def open_for_upload(path: str, offset: int, overwrite: bool) -> Any:
    """A binary file positioned at `offset` for the next chunk of an upload.

    offset 0 starts the file (409 if it exists and `overwrite` is false); a later offset
    continues one, which must exist with exactly `offset` bytes (else 409 naming its size,
    so a client can resume from there).
    """
    with os_errors(path):
        if os.path.isdir(path):
            raise IsADirectoryError(path)
        if offset == 0:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return open(path, "wb" if overwrite else "xb")
        size = os.path.getsize(path)
        if size != offset:
            raise StagingError(f"cannot write at offset {offset}: {path} has {size} bytes "
                               f"(resume from offset {size})", 409)
        fh = open(path, "r+b")
        fh.seek(offset)
        return fh


def undo_upload(path: str, offset: int) -> None:
    """Forget a failed chunk: cut the file back to `offset`; a file the chunk at offset 0
    started is removed (so sending it again needs no `overwrite`)."""
    try:
        if offset == 0:
            os.unlink(path)
        else:
            with open(path, "r+b") as fh:
                fh.truncate(offset)
    except OSError:
        pass
