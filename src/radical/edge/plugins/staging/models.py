"""Request and answer shapes of the staging routes, for the published API description."""
from __future__ import annotations

from typing import Literal

from typing_extensions import NotRequired, TypedDict


class PathBody(TypedDict):
    path: str  # absolute, inside an allowed root


class PutBody(TypedDict):
    filename: str  # absolute target path, inside an allowed root
    content: str  # the file's bytes, base64
    overwrite: NotRequired[bool]


class GetBody(TypedDict):
    filename: str


class MkdirBody(TypedDict):
    path: str
    parents: NotRequired[bool]
    exist_ok: NotRequired[bool]


class DeleteBody(TypedDict):
    path: str
    recursive: NotRequired[bool]


class PathQuery(TypedDict):
    path: str


class StatQuery(TypedDict):
    path: str
    sha256: NotRequired[bool]


class UploadQuery(TypedDict):
    path: str
    offset: NotRequired[int]  # where this chunk goes (resumable uploads)
    overwrite: NotRequired[bool]
    sha256: NotRequired[str]  # the chunk's expected digest


class Roots(TypedDict):
    roots: list[str]


class Written(TypedDict):
    path: str
    size: int


class FileContent(TypedDict):
    path: str
    size: int
    content: str  # base64


class Entry(TypedDict):
    name: str
    type: Literal["file", "dir", "unknown"]
    size: int | None
    mtime: NotRequired[float]
    mode: NotRequired[int]


class Listing(TypedDict):
    path: str
    entries: list[Entry]


class Stat(Entry):
    path: str
    sha256: NotRequired[str]


class Deleted(TypedDict):
    path: str
    deleted: bool


class Uploaded(TypedDict):
    path: str
    offset: int
    written: int
    size: int
    sha256: str
