"""The staging plugin, edge side: files between clients and the edge's file system.

Routes (all need a session; paths are absolute paths on the edge, under the allowed roots):

    POST put/{sid}      {"filename", "content" (base64), "overwrite"} -> {"path", "size"}
    POST get/{sid}      {"filename"} -> {"path", "size", "content" (base64)}
    POST list/{sid}     {"path"} -> {"path", "entries": [{name, type, size, ...}]}
    GET  stat/{sid}     ?path=&sha256=true|false -> {path, name, type, size, mtime, mode[, sha256]}
    POST mkdir/{sid}    {"path", "parents": true, "exist_ok": false} -> stat of the directory
    POST delete/{sid}   {"path", "recursive": false} -> {"path", "deleted": true}
    POST upload/{sid}   ?path=&offset=0&overwrite=false&sha256=  raw body -> {path, offset,
                        written, size, sha256}
    GET  download/{sid} ?path=&offset=&length=  (or a Range header) -> the bytes

The first three are the original plugin's API (same shapes; a path outside the roots is 403
here, the original said 400). Errors: 400 bad argument, 403 outside the roots or not
permitted, 404 missing, 409 exists / wrong resume offset, 413 too big for inline `get`,
416 bad range, 422 sha256 mismatch.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import os
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..base import Plugin, PluginHostAPI, PluginSession, json_body
from . import files, transfer
from . import models as m
from .gate import UploadGate
from .policy import PathPolicy, StagingError

#: the original `get` returns the file base64-encoded in JSON: refuse files above this
INLINE_GET_LIMIT = 64 * 1024 * 1024


class StagingSession(PluginSession):
    """A client's handle on the edge's files; the policy is plugin-wide."""


def _flag(value: Any, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise StagingError(f"'{name}' must be true or false", 400)


class StagingPlugin(Plugin):
    """Upload, download, list, stat, mkdir and delete files on the edge."""

    plugin_name = "staging"
    version = "0.2.0"
    session_class = StagingSession
    client_class = "radical.edge.plugins.staging.client:StagingClient"
    ui_config = {
        "title": "File Staging",
        "icon": "📁",
        "description": "Browse the edge's files; upload and download files of any size.",
    }

    def __init__(self, app: PluginHostAPI, instance_name: str | None = None) -> None:
        super().__init__(app, instance_name)
        self.policy = PathPolicy(getattr(app.settings, "staging_roots", "") or None)
        self.gate = UploadGate()
        self.add_route_get("roots", self.roots_endpoint, response=m.Roots)
        self.add_route_post("put/{sid}", self.put_endpoint, body=m.PutBody, response=m.Written)
        self.add_route_post("get/{sid}", self.get_endpoint, body=m.GetBody,
                            response=m.FileContent)
        self.add_route_post("list/{sid}", self.list_endpoint, body=m.PathBody,
                            response=m.Listing)
        self.add_route_get("list/{sid}", self.list_endpoint, query=m.PathQuery,
                           response=m.Listing)
        self.add_route_get("stat/{sid}", self.stat_endpoint, query=m.StatQuery, response=m.Stat)
        self.add_route_post("mkdir/{sid}", self.mkdir_endpoint, body=m.MkdirBody,
                            response=m.Stat)
        self.add_route_post("delete/{sid}", self.delete_endpoint, body=m.DeleteBody,
                            response=m.Deleted)
        self.add_route_post("upload/{sid}", self.upload_endpoint, query=m.UploadQuery,
                            body=bytes, response=m.Uploaded)
        self.add_route_put("upload/{sid}", self.upload_endpoint, query=m.UploadQuery,
                           body=bytes, response=m.Uploaded)
        self.add_route_get("download/{sid}", self.download_endpoint, query=m.PathQuery,
                           response=bytes)

    def add_route_put(self, path: str, method: Any, **doc: Any) -> None:
        self._add_route("PUT", path, method, **doc)

    # -- helpers ----------------------------------------------------------------------------
    async def _path(self, value: Any) -> str:
        """The checked real path (realpath stats: off the loop)."""
        return await asyncio.to_thread(self.policy.check, value)

    async def _entry_path(self, value: Any) -> str:
        """For delete: the entry itself (a symlink is removed, not followed); its directory
        must resolve inside the roots and a root itself is never removed."""
        if not isinstance(value, str) or not value or not os.path.isabs(value) or "\x00" in value:
            await self._path(value)  # the same 400 as elsewhere (a NUL in the name included)
        norm = os.path.normpath(value)
        parent = await self._path(os.path.dirname(norm) or "/")
        path = os.path.join(parent, os.path.basename(norm))
        if not self.policy.allows(path) or path in self.policy.roots or norm in ("/", ""):
            raise StagingError(f"refusing to delete {value!r}: not inside an allowed root", 403)
        return path

    @staticmethod
    async def _body(request: Request) -> dict:
        body = await json_body(request, default={})
        if not isinstance(body, dict):
            raise StagingError("the body must be a JSON object", 400)
        return body

    # -- routes -----------------------------------------------------------------------------
    async def roots_endpoint(self, request: Request) -> dict:
        """The allowed roots (where a file browser starts)."""
        return {"roots": self.policy.roots}

    async def put_endpoint(self, request: Request) -> dict:
        self.get_session(request)
        body = await self._body(request)
        if not body.get("filename"):
            raise StagingError("Missing 'filename'", 400)
        content = body.get("content")
        if not isinstance(content, str):
            raise StagingError("Missing 'content' (base64 string)", 400)
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise StagingError("'content' is not valid base64", 400) from None
        path = await self._path(body["filename"])
        overwrite = _flag(body.get("overwrite"), "overwrite", False)
        return await asyncio.to_thread(files.write_whole, path, data, overwrite)

    async def get_endpoint(self, request: Request) -> dict:
        self.get_session(request)
        body = await self._body(request)
        if not body.get("filename"):
            raise StagingError("Missing 'filename'", 400)
        path = await self._path(body["filename"])
        return await asyncio.to_thread(files.read_whole, path, INLINE_GET_LIMIT)

    async def list_endpoint(self, request: Request) -> dict:
        self.get_session(request)
        if request.method == "GET":
            raw = request.query_params.get("path")
        else:
            raw = (await self._body(request)).get("path")
        if not raw:
            raise StagingError("Missing 'path'", 400)
        return await asyncio.to_thread(files.list_dir, await self._path(raw))

    async def stat_endpoint(self, request: Request) -> dict:
        self.get_session(request)
        path = await self._path(request.query_params.get("path"))
        digest = _flag(request.query_params.get("sha256"), "sha256", False)
        return await asyncio.to_thread(files.stat_path, path, digest)

    async def mkdir_endpoint(self, request: Request) -> dict:
        self.get_session(request)
        body = await self._body(request)
        path = await self._path(body.get("path"))
        return await asyncio.to_thread(files.make_dir, path,
                                       _flag(body.get("parents"), "parents", True),
                                       _flag(body.get("exist_ok"), "exist_ok", False))

    async def delete_endpoint(self, request: Request) -> dict:
        self.get_session(request)
        body = await self._body(request)
        path = await self._entry_path(body.get("path"))
        return await asyncio.to_thread(files.delete, path,
                                       _flag(body.get("recursive"), "recursive", False))

    async def upload_endpoint(self, request: Request) -> dict:
        self.get_session(request)
        q = request.query_params
        path = await self._path(q.get("path"))
        offset = transfer.int_arg(request, "offset", 0) or 0
        return await transfer.upload(request, path, offset,
                                     _flag(q.get("overwrite"), "overwrite", False),
                                     q.get("sha256"), self.gate)

    async def download_endpoint(self, request: Request) -> StreamingResponse:
        self.get_session(request)
        return await transfer.download(request, await self._path(request.query_params.get("path")))
