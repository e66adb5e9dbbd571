"""Every knob of radical.edge, in one place, read from the environment (and CLI flags).

Environment names are `RADICAL_EDGE_<FIELD>` (e.g. `RADICAL_EDGE_REDIS_URL`), except the
contract's historical `RADICAL_BRIDGE_URL`, `RADICAL_BRIDGE_CERT` and `RADICAL_BRIDGE_KEY`.

`Settings` is what bridges, edges and the CLI share; the groups only one component reads
(`PsijSettings`, `SSHSettings`, `LaunchSettings`) are separate classes here too, so every knob
is found in this one file.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Redis key prefix of the default deployment (its Celery queues keep the plain `edge.<name>`)
DEFAULT_REDIS_PREFIX = "redge"
#: what a Redis key prefix may look like (it becomes part of every key and queue name)
REDIS_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
REDIS_PREFIX_ENV = "RADICAL_EDGE_REDIS_PREFIX"


def _check_prefix(value: str) -> str:
    if not REDIS_PREFIX_RE.match(value):
        raise ValueError(f"invalid {REDIS_PREFIX_ENV} {value!r}: use letters, digits, '_' or '-' "
                         "(at most 64, starting with a letter or digit)")
    return value


def redis_prefix_from_env() -> str:
    """The Redis key prefix of this process (`RADICAL_EDGE_REDIS_PREFIX`, default `redge`).

    Read once when `app.keys` is imported: every process of one deployment (bridge, edges,
    child edges, Flower) must agree on it, so it comes from the environment, not from a flag.
    """
    return _check_prefix(os.environ.get(REDIS_PREFIX_ENV, "").strip() or DEFAULT_REDIS_PREFIX)


class Settings(BaseSettings):
    """Configuration shared by the bridge, edges and the CLI."""

    model_config = SettingsConfigDict(env_prefix="RADICAL_EDGE_", extra="ignore")

    # -- broker ---------------------------------------------------------------------------
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis used as broker")
    redis_timeout: float = Field(5.0, description="socket timeout of Redis calls (s)")

    # -- bridge ---------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="bridge bind address")
    port: int = Field(8000, description="bridge port")
    bridge_url: str | None = Field(
        None,
        validation_alias=AliasChoices("RADICAL_BRIDGE_URL", "RADICAL_EDGE_BRIDGE_URL"),
        description="public URL of the bridge (clients and /edge/list)",
    )
    bridge_cert: str | None = Field(
        None, validation_alias=AliasChoices("RADICAL_BRIDGE_CERT", "RADICAL_EDGE_BRIDGE_CERT")
    )
    bridge_key: str | None = Field(
        None, validation_alias=AliasChoices("RADICAL_BRIDGE_KEY", "RADICAL_EDGE_BRIDGE_KEY")
    )
    token: SecretStr | None = Field(None, description="the admin bearer token (default: the "
                                                      "token file's, see token_file)")
    call_timeout: float = Field(120.0, description="default deadline of a plugin call (s)")
    max_call_timeout: float = Field(3600.0, description="upper bound a caller may ask for (s)")
    max_body_bytes: int = Field(64 * 1024 * 1024, description="largest request body relayed")
    sse_queue_size: int = Field(2000, description="SSE replay page (XRANGE count)")
    sse_ping_seconds: float = Field(15.0, description="SSE keep-alive comment interval")
    topology_poll_seconds: float = Field(1.0, description="how often liveness is re-read")
    access_log: bool = Field(False, description="uvicorn access log (query strings redacted)")
    metrics: bool = Field(True, description="count every relayed call for /metrics (off: "
                                             "/metrics serves states only)")
    metrics_public: bool = Field(False, description="serve GET /metrics without a token (a "
                                                    "scraper on a trusted network); default: "
                                                    "needs scope read")

    # -- edge -----------------------------------------------------------------------------
    edge_name: str | None = Field(None, description="edge name (default: short hostname)")
    plugins: str = Field("all", description="'all' or comma-separated plugin names")
    heartbeat_seconds: float = Field(2.0, description="edge heartbeat interval")
    heartbeat_ttl: float = Field(6.0, description="edge is gone when no heartbeat this long")
    walltime_margin: float = Field(120.0, description="stop taking calls this long before walltime")
    allow_pickle: bool = Field(False, description="accept pickled functions (rhapsody), auth only")
    max_running_tasks: int = Field(64, description="rhapsody: executables running at once")
    log_level: str = Field("INFO", description="log level of bridge and edges (lifecycle is "
                                                "INFO, trouble WARNING/ERROR)")
    log_json: bool = Field(False, description="log JSON lines instead of text (--log-json)")

    # -- rhapsec --
    rhapsody_functions: str = Field(
        "", description="rhapsody: task functions allowed besides the built-in ones "
                        "(comma-separated 'pkg.mod:func' or 'pkg.mod:*')")
    rhapsody_function_workers: int = Field(
        0, description="rhapsody: worker processes running function tasks (0: one per CPU)")
    rhapsody_max_body_bytes: int = Field(
        16 * 1024 * 1024, description="rhapsody: largest submit body decoded (bytes)")
    rhapsody_max_body_items: int = Field(
        2_000_000, description="rhapsody: most values (all levels) in one submit body")

    # -- layer --
    redis_prefix: str = Field(DEFAULT_REDIS_PREFIX, description=(
        "prefix of every Redis key and (when not the default) Celery queue: two deployments "
        "with different prefixes share one Redis without seeing each other. `app.keys` reads "
        "it from the environment once, at import (`redis_prefix_from_env`)"))

    @field_validator("redis_prefix")
    @classmethod
    def _redis_prefix(cls, value: str) -> str:
        return _check_prefix(value)

    # -- compat --
    bridge_plugins: str = Field("", description="plugins the bridge hosts itself, served "
                                                "under /bridge/<plugin>/ ('' = none)")

    # -- calls --
    call_retention: float = Field(600.0, description="keep a call's outcome record this long "
                                                     "after its deadline (s)")
    call_record_max_bytes: int = Field(1024 * 1024, description="replies larger than this are "
                                       "recorded as status + note, without the body")
    idempotency_ttl: float = Field(3600.0, description="remember an Idempotency-Key this long (s)")
    work_retention: float = Field(30 * 86400.0, description="keep an entry of the work index "
                                  "(GET /work) this long after its last change (s)")
    work_max_items: int = Field(10_000, description="newest work items kept per identity")
    work_index_tasks: bool = Field(True, description="index every rhapsody task for GET /work "
                                   "(psij jobs always are); it costs ~25 µs of CPU per task, mostly "
                                   "Redis's: off, big rhapsody batches through one bridge run "
                                   "faster (bench/RESULTS.md)")

    # -- events --
    events_maxlen: int = Field(
        50_000, description="size retention: the stream keeps at least the newest N entries")
    events_retention_seconds: float = Field(
        3600.0, description="entries older than this are trimmed (time retention, MINID); 0 = off")
    events_hard_maxlen: int = Field(
        500_000, description="beyond this length the stream is trimmed even past unread entries")
    events_buffer: int = Field(20_000, description="newest notifications a bridge keeps in memory")
    events_send_timeout: float = Field(
        30.0, description="an SSE client that accepts no data this long is disconnected (s)")

    # -- auth --
    no_auth: bool = Field(False, description="serve anonymous callers (as admin): never on "
                                             "a shared machine; `--no-auth` sets it")
    token_file: str = Field("~/.radical/edge/token",
                            description="the bridge's admin token, created 0600 when missing")
    allowed_hosts: str = Field("", description="extra Host names the bridge answers "
                                               "(comma-separated; '*' = any)")
    login_ttl: float = Field(12 * 3600.0, description="lifetime of a portal login cookie (s)")
    flower_auth_file: str = Field("~/.radical/edge/flower-auth", description=(
        "`radical-edge flower`: 'user:password' of Flower's basic auth, created 0600 when "
        "missing"))

    # -- payloads --
    payload_inline_bytes: int = Field(
        256 * 1024, description="bodies larger than this travel out of band as Redis chunks")
    payload_chunk_bytes: int = Field(1024 * 1024, description="size of one out-of-band chunk")
    payload_window_chunks: int = Field(
        16, description="chunks a streaming reply may run ahead of the bridge reading it")

    # -- redis --
    enroll_redis_url: SecretStr | None = Field(
        None, description="bridge: Redis URL of a user allowed to create edge ACL users")
    enroll_redis_public_url: str | None = Field(
        None, description="bridge: Redis URL (no credentials) enrolled edges are told to use")
    enroll_ttl: float = Field(3600.0, description="lifetime of an enrollment token (s)")
    enroll_token: SecretStr | None = Field(
        None, description="edge: one-time enrollment token to redeem at the bridge (--url)")

    # -- staging --
    staging_roots: str = Field(
        "", description="staging: directories files may be read/written under, separated by "
                        "os.pathsep ('' = $HOME and the temporary directory)")

    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token else None

    def public_url(self) -> str:
        if self.bridge_url:
            return self.bridge_url.rstrip("/")
        scheme = "https" if self.bridge_cert and self.bridge_key else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def with_overrides(self, **overrides: Any) -> "Settings":
        """A copy with CLI flags applied (None means: flag not given)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        return self.model_copy(update=values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


class PsijSettings(BaseSettings):
    """Where the psij plugin keeps its files and how often it polls (`plugins.psij.executors`)."""

    model_config = SettingsConfigDict(env_prefix="RADICAL_EDGE_", extra="ignore",
                                      env_ignore_empty=True)

    psij_dir: str = "~/.radical/edge/psij"
    psij_poll: float = 1.0

    @field_validator("psij_poll", mode="before")
    @classmethod
    def _poll(cls, value: Any) -> float:
        """At least 0.2 s; a value that is not a number means the default (1 s)."""
        try:
            return max(0.2, float(value or 1.0))
        except (TypeError, ValueError):
            return 1.0


class SSHSettings(BaseSettings):
    """How a parent edge reaches compute nodes for tunnels (`hpc.launch.ssh`)."""

    model_config = SettingsConfigDict(env_prefix="RADICAL_EDGE_SSH_", extra="ignore")

    user: str | None = None
    port: int = 22
    key_file: str | None = None
    known_hosts: str | None = None
    host_key_policy: Literal["strict", "accept-new", "ignore"] = "strict"
    host: str | None = None
    connect_timeout: float = 15.0
    keepalive: float = 15.0
    tunnel_dir: str = Field("~/.radical/edge/tunnels", validation_alias=AliasChoices(
        "RADICAL_EDGE_TUNNEL_DIR", "RADICAL_EDGE_SSH_TUNNEL_DIR"))

    def known_hosts_path(self) -> str:
        return os.path.expanduser(self.known_hosts or "~/.ssh/known_hosts")

    def port_file(self, edge_name: str) -> str:
        """Where the port file of child `edge_name` goes (the same path on the node)."""
        return os.path.join(os.path.expanduser(self.tunnel_dir), f"{edge_name}.port")


class LaunchSettings(BaseSettings):
    """Settings of a parent edge for launching child edges (`hpc.launch`)."""

    model_config = SettingsConfigDict(env_prefix="RADICAL_EDGE_", extra="ignore")

    #: ``RADICAL_EDGE_WRAPPER``: the wrapper script to use (see `find_wrapper`)
    wrapper: str | None = None


# -- lucid --
class LucidSettings(BaseSettings):
    """Settings of the lucid plugin (RADICAL-Pilot sessions on an edge)."""

    model_config = SettingsConfigDict(env_prefix="RADICAL_EDGE_", extra="ignore")

    #: ``RADICAL_EDGE_LUCID_DIR``: RP session dirs and pilot sandboxes, one per edge and
    #: session, removed when the session closes
    lucid_dir: str = "~/.radical/edge/lucid"
    #: ``RADICAL_EDGE_LUCID_MAX_WAIT``: longest a `task_wait` call waits before answering
    #: with the task's current state (s; keep it below the call timeout)
    lucid_max_wait: float = 30.0


# -- xgfabric --
class XGFabricSettings(BaseSettings):
    """Settings of the xgfabric plugin (multi-cluster workflows driven from one edge)."""

    model_config = SettingsConfigDict(env_prefix="RADICAL_EDGE_", extra="ignore")

    #: ``RADICAL_EDGE_XGFABRIC_DIR``: where workflow/resource configs are saved (a session
    #: may point elsewhere with ``set_workdir``)
    xgfabric_dir: str = "~/.radical/edge/xgfabric"
    #: ``RADICAL_EDGE_XGFABRIC_ALLOC_TIMEOUT``: longest wait for a child edge in a batch job
    #: to join the bridge (s; a cluster whose job does not start in time is dropped)
    xgfabric_alloc_timeout: float = 600.0
    #: ``RADICAL_EDGE_XGFABRIC_RELEASE_TIMEOUT``: longest wait for a released child edge to
    #: leave the bridge after its batch job was canceled (s)
    xgfabric_release_timeout: float = 60.0
