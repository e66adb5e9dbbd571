"""rhapsody's streamed task output (plugins/rhapsody/stream.py) with real subprocesses and a
real event loop: quick tasks send nothing partial, slow ones send their output as it comes,
in order, with offsets, and the final text is complete."""
from __future__ import annotations

import asyncio
import sys

import pytest

pytest.importorskip("rhapsody")

from radical.edge.plugins.rhapsody import stream  # noqa: E402


def run(script: str) -> tuple[list[tuple[float, str, int, str]], dict, tuple[str, str]]:
    async def main():
        sent: list[tuple[float, str, int, str]] = []
        loop = asyncio.get_running_loop()
        task: dict = {"uid": "t1"}
        out = stream.TaskOutput(task, lambda t, s, o, d: sent.append((loop.time(), s, o, d)),
                                loop)
        start = loop.time()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-u", "-c", script,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await stream.collect(proc, out)
        final = out.finish()
        return [(t - start, s, o, d) for t, s, o, d in sent], task, final
    return asyncio.run(main())


def test_a_quick_task_sends_no_partial_output():
    sent, _task, final = run("print('hello'); import sys; print('oops', file=sys.stderr)")
    assert sent == []
    assert final == ("hello\n", "oops\n")


def test_a_slow_task_streams_in_order_with_offsets():
    script = ("import sys, time\n"
              "print('first'); time.sleep(1.0)\n"
              "print('second'); print('warn', file=sys.stderr); time.sleep(1.0)\n"
              "print('third')")
    sent, task, final = run(script)
    out = [(o, d) for _, s, o, d in sent if s == "stdout"]
    assert out[0] == (0, "first\n")
    assert sent[0][0] >= stream.FIRST_DELAY - 0.05  # held back during the quiet period
    text = ""
    for offset, data in out:  # contiguous: each piece starts where the last ended
        assert offset == len(text)
        text += data
    # print() writes the text and its newline separately (-u): a piece may end mid-line, and
    # what came last may arrive only with the exit (then only the final record has it)
    assert text.startswith("first\nsecond")
    assert "first\nsecond\nthird\n".startswith(text)
    assert len(out) >= 2  # 'second' came a second after 'first': its own message
    assert [(o, d) for _, s, o, d in sent if s == "stderr"] == [(0, "warn\n")]
    assert final == ("first\nsecond\nthird\n", "warn\n")
    assert task["stdout"] == text  # what a task/{uid} read saw while it ran


def test_split_utf8_is_decoded_whole():
    script = ("import sys, time\n"
              "b = 'héllo'.encode()\n"
              "sys.stdout.buffer.write(b[:2]); sys.stdout.flush(); time.sleep(0.7)\n"
              "sys.stdout.buffer.write(b[2:]); sys.stdout.flush(); time.sleep(0.7)")
    sent, _task, final = run(script)
    assert "".join(d for _, s, _o, d in sent if s == "stdout") == "héllo"
    assert final[0] == "héllo"
