"""Query and answer shapes of the queue_info routes (CONTRACT section 6), for the API
description. Values are what the scheduler reports; more keys may appear per site."""
from __future__ import annotations

from typing import Any

from typing_extensions import NotRequired, TypedDict


class UserQuery(TypedDict):
    user: NotRequired[str]  # whose view (default: the edge's user)
    force: NotRequired[bool]  # bypass the short-lived cache


class Queue(TypedDict):
    name: str
    state: str
    time_limit: Any
    default: bool
    nodes_total: int
    nodes_available: int
    nodes_idle: int
    cpus_per_node: Any
    mem_per_node_mb: Any
    gpus_per_node: Any
    max_jobs_per_user: Any
    features: Any


class Queues(TypedDict):
    queues: dict[str, Queue]


class Job(TypedDict):
    job_id: str
    job_name: Any
    user: Any
    partition: Any
    state: str
    nodes: Any
    cpus: Any
    time_limit: Any
    time_used: Any
    submit_time: Any
    start_time: Any
    priority: Any
    account: Any
    node_list: Any


class Jobs(TypedDict):
    jobs: list[Job]


class Allocations(TypedDict):
    allocations: list[dict[str, Any]]  # account, user, fairshare, qos, max_jobs, ...


class JobAllocation(TypedDict):
    allocation: dict[str, Any] | None  # job_id, partition, n_nodes, nodelist, ... or null


class Backend(TypedDict):
    backend: str


class Canceled(TypedDict):
    job_id: NotRequired[str]
    canceled: bool
    status: NotRequired[str]
