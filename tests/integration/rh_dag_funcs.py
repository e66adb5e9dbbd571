"""Functions the rhapsody-backend tests run on an edge by import path (``rh_dag_funcs:*`` is
on that edge's allow-list; the edge finds this module through PYTHONPATH)."""
from __future__ import annotations


async def seed(n: int) -> list[int]:
    """Stage 1: the numbers 1..n."""
    return list(range(1, n + 1))


async def square(values: list[int], i: int) -> int:
    """Stage 2 (fan-out): the square of one of the seeds."""
    return values[i] ** 2


async def total(*parts: int) -> int:
    """Stage 3 (fan-in): the sum of the squares."""
    return sum(parts)


def shout(text: str) -> str:
    """A plain (not async) function."""
    return text.upper()
