"""Client of the staging plugin: the original `put/get/list` plus streamed, resumable,
sha256-checked `upload`/`download` of files of any size, and `stat/mkdir/delete`.

Imports only the SDK and httpx, so it works on a laptop without the edge side installed.
Uploads go in chunks (each one request whose raw body the bridge relays out of band, with
its own sha256); an interrupted upload resumes from the size the edge already has.
Downloads stream ranges straight into the target file; the whole-file digest is compared
with the edge's at the end of both.
"""
from __future__ import annotations

import base64
import hashlib
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Callable

from radical.edge.sdk.errors import EdgeError
from radical.edge.sdk.plugin import DEADLINE_HEADER, PluginClient

__all__ = ["StagingClient", "StagingIntegrityError", "Progress"]

#: called as progress(bytes_done, bytes_total) after each chunk
Progress = Callable[[int, int], None]

#: original-style `put` sends files up to this size base64-encoded in JSON
PUT_INLINE_LIMIT = 4 * 1024 * 1024
UPLOAD_CHUNK = 32 * 1024 * 1024  # below the bridge's default 64 MiB body limit
DOWNLOAD_CHUNK = 256 * 1024 * 1024
READ_BLOCK = 1024 * 1024
#: per-request deadline of transfer calls (s); the bridge caps it at its max_call_timeout
TRANSFER_TIMEOUT = 600.0
#: damaged chunks (422) an upload recovers from before it gives up
CHUNK_ATTEMPTS = 3


class StagingIntegrityError(EdgeError):
    """The file's sha256 on one side differs from the other's after a transfer."""


class _Damaged(Exception):
    """A chunk reached the edge damaged (422); the upload can continue from the edge's size."""

    def __init__(self, error: EdgeError, sent: int) -> None:
        super().__init__(str(error))
        self.error, self.sent = error, sent


class StagingClient(PluginClient):
    """Client-side interface of the staging plugin (paths on the edge are absolute)."""

    # -- the original API -------------------------------------------------------------------
    def put(self, src: str, tgt: str, overwrite: bool = False) -> dict[str, Any]:
        """Upload local `src` to `tgt` on the edge -> ``{"path", "size"}``.

        FileExistsError if `tgt` exists and not `overwrite`; small files travel as the
        original's base64 JSON, bigger ones through `upload`.
        """
        sid = self._require_sid()
        if not os.path.isfile(src):
            raise FileNotFoundError(f"Local file not found: {src}")
        try:
            if os.path.getsize(src) > PUT_INLINE_LIMIT:
                out = self.upload(src, tgt, overwrite=overwrite)
                return {"path": out["path"], "size": out["size"]}
            with open(src, "rb") as fh:
                content = base64.b64encode(fh.read()).decode("ascii")
            return self._post(f"put/{sid}", json={"filename": tgt, "content": content,
                                                  "overwrite": overwrite})
        except EdgeError as exc:
            if exc.status == 409:
                raise FileExistsError(exc.detail) from exc
            raise

    def get(self, src: str, tgt: str) -> dict[str, Any]:
        """Download `src` from the edge to local `tgt` (which must not exist) ->
        ``{"path": tgt, "size"}``; FileNotFoundError if `src` is missing."""
        self._require_sid()
        if os.path.exists(tgt):
            raise FileExistsError(f"Local target already exists: {tgt}")
        try:
            out = self.download(src, tgt)
        except EdgeError as exc:
            if exc.status == 404:
                raise FileNotFoundError(exc.detail) from exc
            raise
        return {"path": tgt, "size": out["size"]}

    def list(self, path: str) -> dict[str, Any]:
        """``{"path", "entries": [{name, type, size, ...}]}`` of a directory on the edge."""
        sid = self._require_sid()
        try:
            return self._post(f"list/{sid}", json={"path": path})
        except EdgeError as exc:
            if exc.status == 404:
                raise FileNotFoundError(exc.detail) from exc
            if exc.status == 400 and "not a directory" in exc.detail.lower():
                raise NotADirectoryError(exc.detail) from exc
            raise

    # -- more -------------------------------------------------------------------------------
    def stat(self, path: str, sha256: bool = False) -> dict[str, Any]:
        """``{path, name, type, size, mtime, mode}`` (+ ``sha256`` of a file if asked)."""
        return self._request("GET", f"stat/{self._require_sid()}",
                             params={"path": path, "sha256": sha256})

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except EdgeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def mkdir(self, path: str, parents: bool = True, exist_ok: bool = False) -> dict[str, Any]:
        return self._post(f"mkdir/{self._require_sid()}",
                          json={"path": path, "parents": parents, "exist_ok": exist_ok})

    def delete(self, path: str, recursive: bool = False) -> dict[str, Any]:
        return self._post(f"delete/{self._require_sid()}",
                          json={"path": path, "recursive": recursive})

    def roots(self) -> list[str]:
        """The directories the edge allows (no session needed)."""
        return self._get("roots")["roots"]

    # -- streamed transfers -----------------------------------------------------------------
    def upload(self, src: str | IO[bytes], tgt: str, *, overwrite: bool = False,
               resume: bool = False, chunk_size: int = UPLOAD_CHUNK, parallel: int = 2,
               progress: Progress | None = None, verify: bool = True) -> dict[str, Any]:
        """Send a local file (a path or a seekable binary file object) to `tgt` on the edge.

        Each chunk is one request carrying its sha256; `parallel` chunks are in flight at
        once (the edge writes them in order), so the bridge takes in one while the edge
        writes another. A chunk the edge got damaged (422: it kept nothing of it) makes the
        upload continue from the size the edge has, up to CHUNK_ATTEMPTS times. `resume`
        continues a file the edge already has part of; `verify` compares the whole file's
        digest at the end. Returns ``{"path", "size", "sha256", "sent"}`` (`sent`: bytes
        sent by this call; `sha256` None without `verify`).
        """
        sid = self._require_sid()
        own = isinstance(src, (str, os.PathLike))
        fh: IO[bytes] = open(src, "rb") if own else src  # type: ignore[arg-type]
        try:
            total = _size_of(fh)
            offset = self._resume_offset(tgt, total) if resume else 0
            sent = failures = 0
            while True:
                try:
                    sent += self._pump(sid, fh, tgt, offset, total, overwrite,
                                       max(1, chunk_size), max(1, parallel), progress)
                    break
                except _Damaged as exc:
                    failures += 1
                    if failures >= CHUNK_ATTEMPTS:
                        raise exc.error from None
                    sent += exc.sent
                    offset = self._resume_offset(tgt, total)
            digest = _hash_prefix(fh, total, hashlib.sha256()).hexdigest() if verify else None
        finally:
            if own:
                fh.close()
        if digest is not None:
            self._verify(tgt, digest)
        return {"path": tgt, "size": total, "sha256": digest, "sent": sent}

    def _pump(self, sid: str, fh: IO[bytes], tgt: str, offset: int, total: int,
              overwrite: bool, chunk_size: int, parallel: int,
              progress: Progress | None) -> int:
        """Send the file from `offset` with up to `parallel` chunks in flight; returns the
        bytes sent. Raises `_Damaged` when a chunk arrived damaged (recoverable)."""
        fh.seek(offset)
        pending: deque[tuple[Future, int]] = deque()
        pos, sent, first = offset, 0, True
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            try:
                while first or pos < total:
                    while len(pending) >= parallel:
                        sent += self._settle(pending, total, progress)
                    chunk = fh.read(chunk_size)
                    pending.append((pool.submit(self._send_chunk, sid, tgt, pos, chunk,
                                                overwrite), len(chunk)))
                    pos += len(chunk)
                    if first:  # alone: a failure the edge remembers must not refuse others
                        sent += self._settle(pending, total, progress)
                    first = False
                    if not chunk:
                        break
                while pending:
                    sent += self._settle(pending, total, progress)
            except BaseException as exc:
                errors = [exc] + [f.exception() for f, _ in pending]  # let them all end
                damaged = next((e for e in errors if isinstance(e, EdgeError)
                                and e.status == 422), None)
                if damaged is not None:
                    raise _Damaged(damaged, sent) from None
                raise
        return sent

    @staticmethod
    def _settle(pending: deque, total: int, progress: Progress | None) -> int:
        """Wait for the oldest chunk in flight; report progress; its size."""
        future, size = pending[0]
        end = future.result()
        pending.popleft()
        if progress is not None:
            progress(end, total)
        return size

    def download(self, src: str, tgt: str | IO[bytes], *, resume: bool = False,
                 overwrite: bool = False, chunk_size: int = DOWNLOAD_CHUNK,
                 progress: Progress | None = None, verify: bool = True) -> dict[str, Any]:
        """Stream `src` from the edge into a local path or binary file object.

        A local path that exists is refused unless `overwrite` (start over) or `resume`
        (continue from its size). Returns ``{"path", "size", "sha256", "received"}``.
        """
        sid = self._require_sid()
        info = self.stat(src)
        if info.get("type") != "file":
            raise EdgeError(400, f"not a regular file: {src} ({info.get('type')})",
                            edge=self._edge_id, plugin=self._plugin_name)
        total = int(info["size"] or 0)
        own = isinstance(tgt, (str, os.PathLike))
        whole = hashlib.sha256()
        offset = 0
        if own:
            exists = os.path.exists(tgt)  # type: ignore[arg-type]
            if exists and not (resume or overwrite):
                raise FileExistsError(f"Local target already exists: {tgt}")
            if exists and resume:
                offset = os.path.getsize(tgt)  # type: ignore[arg-type]
                if offset > total:
                    raise ValueError(f"local {tgt} ({offset} B) is longer than {src} ({total} B)")
                with open(tgt, "rb") as prev:  # type: ignore[arg-type]
                    _hash_prefix(prev, offset, whole)
            parent = os.path.dirname(os.path.abspath(tgt))  # type: ignore[arg-type]
            os.makedirs(parent, exist_ok=True)
            out: IO[bytes] = open(tgt, "ab" if (exists and resume) else "wb")  # type: ignore
        else:
            out = tgt  # type: ignore[assignment]
        received = 0
        try:
            while offset < total:
                length = min(chunk_size, total - offset)
                got = self._fetch(sid, src, offset, length, out, whole, progress, total)
                if got == 0:
                    raise EdgeError(None, f"{src} ended at {offset} of {total} bytes",
                                    edge=self._edge_id, plugin=self._plugin_name)
                offset += got
                received += got
        finally:
            if own:
                out.close()
        digest = whole.hexdigest()
        if verify:
            self._verify(src, digest)
        return {"path": tgt if own else None, "size": offset, "sha256": digest,
                "received": received}

    # -- helpers ----------------------------------------------------------------------------
    def _fetch(self, sid: str, src: str, offset: int, length: int, out: IO[bytes],
               whole: Any, progress: Progress | None, total: int) -> int:
        """One ranged GET streamed into `out`; returns the bytes written."""
        got = 0
        with self._http.stream("GET", self._url(f"download/{sid}"),
                               params={"path": src, "offset": offset, "length": length},
                               headers={DEADLINE_HEADER: f"{TRANSFER_TIMEOUT:g}"},
                               timeout=TRANSFER_TIMEOUT + 5) as response:
            if response.status_code >= 400:
                response.read()
                self._raise(response)
            for block in response.iter_bytes(READ_BLOCK):
                out.write(block)
                whole.update(block)
                got += len(block)
                if progress is not None:
                    progress(offset + got, total)
        return got

    def _send_chunk(self, sid: str, tgt: str, offset: int, chunk: bytes,
                    overwrite: bool) -> int:
        """One upload request (runs in a pool thread); the file's size after it."""
        params = {"path": tgt, "offset": offset, "overwrite": overwrite if offset == 0 else None,
                  "sha256": hashlib.sha256(chunk).hexdigest()}
        self._request("POST", f"upload/{sid}", content=chunk, params=params,
                      headers={"Content-Type": "application/octet-stream"},
                      timeout=TRANSFER_TIMEOUT)
        return offset + len(chunk)

    def _resume_offset(self, tgt: str, total: int) -> int:
        try:
            info = self.stat(tgt)
        except EdgeError as exc:
            if exc.status == 404:
                return 0
            raise
        size = int(info.get("size") or 0)
        if info.get("type") != "file" or size > total:
            raise FileExistsError(f"cannot resume: {tgt} on the edge is not a prefix of the "
                                  f"source ({info.get('type')}, {size} bytes)")
        return size

    def _verify(self, remote: str, digest: str) -> None:
        theirs = self.stat(remote, sha256=True).get("sha256")
        if theirs != digest:
            raise StagingIntegrityError(422, f"sha256 of {remote} on the edge is {theirs}, "
                                             f"the local copy's is {digest}",
                                        edge=self._edge_id, plugin=self._plugin_name)


def _size_of(fh: IO[bytes]) -> int:
    here = fh.tell()
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(here)
    return size


def _hash_prefix(fh: IO[bytes], length: int, digest: Any) -> Any:
    """Feed the first `length` bytes of `fh` to `digest`; returns it."""
    fh.seek(0)
    left = length
    while left > 0:
        block = fh.read(min(READ_BLOCK, left))
        if not block:
            break
        digest.update(block)
        left -= len(block)
    return digest
