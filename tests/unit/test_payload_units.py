"""Out-of-band payload pieces that need no Redis: sentinel URLs, wire fields, rendering."""
from __future__ import annotations

import asyncio
import os
import tempfile

import orjson
import pytest
from starlette.responses import FileResponse, Response, StreamingResponse

from radical.edge.app import sentinel
from radical.edge.app.protocol import CallReply, CallRequest, call_from_task_body, celery_message
from radical.edge.workers.call_runner import render


def test_sentinel_url_parses_hosts_master_db_and_password():
    conf = sentinel.parse("sentinel://:s%40cret@10.0.0.1:26379,[::1]:26380/mymaster/3")
    assert conf.hosts == [("10.0.0.1", 26379), ("::1", 26380)]
    assert (conf.master, conf.db, conf.password, conf.username) == ("mymaster", 3, "s@cret", None)
    url, options = conf.kombu_broker()
    assert url == ("sentinel://:s@cret@10.0.0.1:26379/3;sentinel://:s@cret@::1:26380/3")
    assert options == {"master_name": "mymaster"}


def test_sentinel_url_defaults_db_zero():
    assert sentinel.parse("sentinel://h:1/m").db == 0


@pytest.mark.parametrize("bad", ["redis://h:1/0", "sentinel://h:1", "sentinel://h/m",
                                 "sentinel://h:x/m", "sentinel://h:1/m/x"])
def test_bad_sentinel_urls_are_refused(bad):
    with pytest.raises(ValueError):
        sentinel.parse(bad)


def test_body_ref_travels_in_the_celery_message():
    call = CallRequest.new(reply_to="r", timeout=5, method="POST", path="/p/x")
    call.body_ref, call.body_size = "redge:blob:abc", 123
    raw = orjson.loads(celery_message(call, "edge.e"))
    back = call_from_task_body(raw["body"])
    assert (back.body_ref, back.body_size) == ("redge:blob:abc", 123)


def test_reply_pointer_round_trips_and_stream_stays_local():
    reply = CallReply(id="i", status=200, headers=[["a", "b"]], body_ref="redge:blob:x",
                      stream=b"x" * 10)
    data = orjson.loads(reply.dumps())
    assert "stream" not in data and data["body_ref"] == "redge:blob:x"
    assert CallReply.loads(reply.dumps()).body_ref == "redge:blob:x"
    assert "body_ref" not in orjson.loads(CallReply.build("i", 200, b"ok").dumps())


def _run(coro):
    return asyncio.run(coro)


async def _drain(stream) -> bytes:
    if isinstance(stream, bytes):
        return stream
    return b"".join([c async for c in stream])


def test_render_keeps_small_bodies_inline_and_big_ones_raw():
    small = _run(render("i", Response(b"a" * 100), inline=100))
    assert small.stream is None and small.body_bytes() == b"a" * 100
    big = _run(render("i", Response(b"a" * 101), inline=100))
    assert big.body is None and big.body_b64 is None and big.stream == b"a" * 101
    assert _run(render("i", {"x": "y" * 200}, inline=100)).stream is not None


def test_render_streams_only_what_exceeds_the_threshold():
    def gen(n):
        for _ in range(n):
            yield b"0123456789"

    short = _run(render("i", StreamingResponse(gen(5)), inline=100))
    assert short.stream is None and short.body_bytes() == b"0123456789" * 5

    async def long() -> tuple:
        reply = await render("i", StreamingResponse(gen(50)), inline=100)
        return reply.body, await _drain(reply.stream)

    assert _run(long()) == (None, b"0123456789" * 50)


def test_render_streams_big_files_without_reading_them_whole():
    with tempfile.NamedTemporaryFile(delete=False) as fh:
        fh.write(os.urandom(3000))
    try:
        async def big() -> bytes:
            reply = await render("i", FileResponse(fh.name), inline=1000)
            assert not isinstance(reply.stream, bytes)
            return await _drain(reply.stream)

        assert _run(big()) == open(fh.name, "rb").read()
        small = _run(render("i", FileResponse(fh.name), inline=5000))
        assert small.stream is None and len(small.body_bytes()) == 3000
    finally:
        os.unlink(fh.name)
