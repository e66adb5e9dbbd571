"""Every knob of radical.edge, in one place, read from the environment (and CLI flags).

Environment names are `RADICAL_EDGE_<FIELD>` (e.g. `RADICAL_EDGE_REDIS_URL`), except the
contract's historical `RADICAL_BRIDGE_URL`, `RADICAL_BRIDGE_CERT` and `RADICAL_BRIDGE_KEY`.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    token: SecretStr | None = Field(None, description="bearer token; when set, every route needs it")
    call_timeout: float = Field(120.0, description="default deadline of a plugin call (s)")
    max_call_timeout: float = Field(3600.0, description="upper bound a caller may ask for (s)")
    max_body_bytes: int = Field(64 * 1024 * 1024, description="largest request body relayed")
    sse_queue_size: int = Field(2000, description="events buffered per SSE client")
    sse_ping_seconds: float = Field(15.0, description="SSE keep-alive comment interval")
    topology_poll_seconds: float = Field(1.0, description="how often liveness is re-read")
    access_log: bool = Field(False, description="uvicorn access log (query strings redacted)")

    # -- edge -----------------------------------------------------------------------------
    edge_name: str | None = Field(None, description="edge name (default: short hostname)")
    plugins: str = Field("all", description="'all' or comma-separated plugin names")
    heartbeat_seconds: float = Field(2.0, description="edge heartbeat interval")
    heartbeat_ttl: float = Field(6.0, description="edge is gone when no heartbeat this long")
    walltime_margin: float = Field(120.0, description="stop taking calls this long before walltime")
    allow_pickle: bool = Field(False, description="accept pickled functions (rhapsody), auth only")
    max_running_tasks: int = Field(64, description="rhapsody: executables running at once")
    log_level: str = Field("WARNING", description="log level of bridge and edges")

    # -- redis --
    enroll_redis_url: SecretStr | None = Field(
        None, description="bridge: Redis URL of a user allowed to create edge ACL users")
    enroll_redis_public_url: str | None = Field(
        None, description="bridge: Redis URL (no credentials) enrolled edges are told to use")
    enroll_ttl: float = Field(3600.0, description="lifetime of an enrollment token (s)")
    enroll_token: SecretStr | None = Field(
        None, description="edge: one-time enrollment token to redeem at the bridge (--url)")

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
