"""Redis Sentinel URLs: one setting that bridges, edges and Celery all understand.

    RADICAL_EDGE_REDIS_URL=sentinel://[[user]:password@]host1:port1,host2:port2/<master>[/<db>]

lists the sentinels (any subset will do, at least one must answer) and the name of the
monitored master. Every client asks a sentinel for the current master and asks again after
a connection error, so after a failover commands, subscriptions and the Celery consumer
reconnect to the promoted replica. The password authenticates against the Redis servers;
the sentinels themselves are contacted without one.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

SCHEME = "sentinel://"


@dataclass(frozen=True)
class SentinelURL:
    hosts: list[tuple[str, int]]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None

    def kombu_broker(self) -> tuple[str, dict]:
        """kombu's form: `sentinel://h1:p1/db;sentinel://h2:p2/db` + `master_name` option."""
        auth = ""
        if self.password:
            auth = f"{self.username or ''}:{self.password}@"
        url = ";".join(f"sentinel://{auth}{h}:{p}/{self.db}" for h, p in self.hosts)
        return url, {"master_name": self.master}


def is_sentinel(url: str) -> bool:
    return url.startswith(SCHEME)


def parse(url: str) -> SentinelURL:
    """Parse a `sentinel://` URL; ValueError says what is wrong (no secrets in it)."""
    if not is_sentinel(url):
        raise ValueError("not a sentinel:// URL")
    rest = url[len(SCHEME):]
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        cred, _, netloc = netloc.rpartition("@")
        user, _, pw = cred.partition(":")
        username, password = (unquote(user) or None), (unquote(pw) or None)
    hosts = []
    for item in netloc.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"sentinel address {item!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    parts = [p for p in path.split("?")[0].split("/") if p]
    if not parts:
        raise ValueError("sentinel URL names no master: use sentinel://host:port/<master>")
    db = parts[1] if len(parts) > 1 else "0"
    if not db.isdigit():
        raise ValueError(f"database {db!r} is not a number")
    return SentinelURL(hosts, unquote(parts[0]), int(db), username, password)
