"""A Redis Sentinel cluster on free ports (a master, replicas, sentinels): for the Sentinel
tests and for trying Sentinel out (docs/deploy-redis.md). Built on `services`' Redis and
process helpers; nothing in the edge or the bridge needs it.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .services import (Service, ServiceError, _spawn, free_port, redis_server_binary,
                       start_redis, wait_until)


def sentinel_binary() -> list[str] | None:
    """`redis-sentinel` (Debian's package), else `redis-server --sentinel` (same program)."""
    found = shutil.which("redis-sentinel")
    if found:
        return [found]
    server = redis_server_binary()
    return [server, "--sentinel"] if server else None


@dataclass
class SentinelCluster:
    """A master, its replicas and sentinels on free ports; `url` is the sentinel:// URL."""

    master_name: str
    master: Service
    replicas: list[Service]
    sentinels: list[Service]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.extra['port']}" for s in self.sentinels)
        return f"sentinel://{hosts}/{self.master_name}/0"

    def current_master_port(self, timeout: float = 1.0) -> int | None:
        """The master port the sentinels agree on now (None if none answers)."""
        import redis

        for s in self.sentinels:
            if not s.alive():
                continue
            try:
                client = redis.Redis(port=s.extra["port"], socket_timeout=timeout,
                                     socket_connect_timeout=timeout)
                try:
                    host_port = client.sentinel_get_master_addr_by_name(self.master_name)
                finally:
                    client.close()
                if host_port:
                    return int(host_port[1])
            except (redis.RedisError, OSError):
                continue
        return None

    def by_port(self, port: int) -> Service:
        return next(s for s in [self.master, *self.replicas] if s.extra["port"] == port)

    def stop(self) -> None:
        for svc in [*self.sentinels, *self.replicas, self.master]:
            svc.stop()


def start_sentinel_cluster(log_dir: Path | None = None, master_name: str = "radical",
                           replicas: int = 1, sentinels: int = 3,
                           down_after_ms: int = 1000, failover_timeout_ms: int = 4000
                           ) -> SentinelCluster:
    """Start a master, `replicas` replicas and `sentinels` sentinels (quorum: a majority).

    For tests and for trying Sentinel out: `down_after_ms` is how long the master must be
    unreachable before the sentinels fail over (production uses seconds, see
    docs/deploy-redis.md).
    """
    import redis

    sentinel_cmd = sentinel_binary()
    if sentinel_cmd is None:
        raise ServiceError("no redis-sentinel or redis-server found (apt-get install "
                           "redis-sentinel)")
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="radical-edge-sentinel-"))
    master = start_redis(log_dir=log_dir)
    started: list[Service] = [master]
    try:
        reps = []
        for _ in range(replicas):
            rep = start_redis(log_dir=log_dir)
            started.append(rep)
            client = redis.Redis(port=rep.extra["port"], socket_timeout=2)
            client.replicaof("127.0.0.1", master.extra["port"])
            client.close()
            reps.append(rep)

        def synced(rep: Service) -> bool:
            client = redis.Redis(port=rep.extra["port"], socket_timeout=1)
            try:
                return client.info("replication").get("master_link_status") == "up"
            except (redis.RedisError, OSError):
                return False
            finally:
                client.close()

        for rep in reps:
            wait_until(lambda: synced(rep), 20, "replica to sync", rep)
        quorum = sentinels // 2 + 1
        sents = []
        for _ in range(sentinels):
            port = free_port()
            workdir = Path(tempfile.mkdtemp(prefix="radical-edge-sentinel-"))
            conf = workdir / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {workdir}\n"
                f"sentinel monitor {master_name} 127.0.0.1 {master.extra['port']} {quorum}\n"
                f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
                f"sentinel failover-timeout {master_name} {failover_timeout_ms}\n"
                f"sentinel parallel-syncs {master_name} 1\n")
            svc = _spawn(f"sentinel-{port}", [*sentinel_cmd, str(conf)]
                         if sentinel_cmd[-1] != "--sentinel"
                         else [sentinel_cmd[0], str(conf), "--sentinel"], log_dir)
            svc.extra.update(port=port, conf=str(conf))
            started.append(svc)
            sents.append(svc)
        cluster = SentinelCluster(master_name, master, reps, sents)

        def discovered() -> bool:
            for s in sents:
                client = redis.Redis(port=s.extra["port"], socket_timeout=1)
                try:
                    info = client.sentinel_master(master_name)
                    if (int(info.get("num-slaves", 0)) < replicas
                            or int(info.get("num-other-sentinels", 0)) < sentinels - 1):
                        return False
                except (redis.RedisError, OSError):
                    return False
                finally:
                    client.close()
            return True

        wait_until(discovered, 30, "sentinels to discover each other and the replicas",
                   interval=0.2)
        return cluster
    except BaseException:
        for svc in reversed(started):
            svc.stop()
        raise
