"""The parent edge's SSH side of a tunnel: settings, connection options, host keys, port files.

`connect_options` turns `SSHSettings` into ``asyncssh.connect`` keywords (and applies the host
key policy); `remember_host_key` records a node's key under ``accept-new``;
`write_port_file` / `remove_port_file` manage the child's port file *on the node*, over the
tunnel's own connection (SFTP, else a shell command). The tunnel state machine is `.tunnel`.

SSH options (environment, read when the plugin starts):

``RADICAL_EDGE_SSH_USER``             login name on compute nodes (default: the edge's user)
``RADICAL_EDGE_SSH_PORT``             sshd port on compute nodes (default 22)
``RADICAL_EDGE_SSH_KEY_FILE``         private key (default: ssh-agent and ~/.ssh/id_*)
``RADICAL_EDGE_SSH_KNOWN_HOSTS``      known_hosts file (default ~/.ssh/known_hosts)
``RADICAL_EDGE_SSH_HOST_KEY_POLICY``  ``strict`` (default: the node's key must be known),
                                      ``accept-new`` (trust and record unknown hosts, refuse
                                      changed keys) or ``ignore`` (no checking; tests only)
``RADICAL_EDGE_SSH_HOST``             connect here instead of the job's node (debugging)
``RADICAL_EDGE_SSH_CONNECT_TIMEOUT``  seconds (default 15)
``RADICAL_EDGE_SSH_KEEPALIVE``        keepalive interval, seconds (default 15)
``RADICAL_EDGE_TUNNEL_DIR``           where port files go (default ~/.radical/edge/tunnels)
"""
from __future__ import annotations

import getpass
import logging
import os
import posixpath
import secrets
import shlex
from typing import Any

from ...settings import SSHSettings

log = logging.getLogger(__name__)


class TunnelError(RuntimeError):
    pass


def connect_options(settings: SSHSettings, host: str) -> tuple[dict[str, Any], bool]:
    """asyncssh.connect keywords, and whether to record the host key afterwards."""
    s = settings
    opts: dict[str, Any] = {"port": s.port, "username": s.user or getpass.getuser(),
                            "connect_timeout": s.connect_timeout,
                            "keepalive_interval": s.keepalive, "keepalive_count_max": 3}
    if s.key_file:
        opts["client_keys"] = [os.path.expanduser(s.key_file)]
    known = s.known_hosts_path()
    record = False
    if s.host_key_policy == "ignore":
        opts["known_hosts"] = None
    elif s.host_key_policy == "strict":
        if not os.path.isfile(known):
            raise TunnelError(f"known_hosts file {known} does not exist: add the compute "
                              "nodes' host keys, or set RADICAL_EDGE_SSH_HOST_KEY_POLICY="
                              "accept-new")
        opts["known_hosts"] = known
    else:  # accept-new: strict for hosts we know, trust-on-first-use for the others
        import asyncssh

        keys_found = False
        if os.path.isfile(known):
            matched = asyncssh.match_known_hosts(known, host, "", s.port)
            keys_found = any(matched[:3])
        if keys_found:
            opts["known_hosts"] = known
        else:
            opts["known_hosts"] = None
            record = True
    return opts, record


def remember_host_key(settings: SSHSettings, host: str, conn: Any) -> None:
    """Append the host key `conn` was offered to the known_hosts file (``accept-new``)."""
    key = conn.get_server_host_key()
    if key is None:
        return
    known = settings.known_hosts_path()
    pattern = host if settings.port == 22 else f"[{host}]:{settings.port}"
    line = f"{pattern} {key.export_public_key().decode().strip()}\n"
    os.makedirs(os.path.dirname(known), mode=0o700, exist_ok=True)
    with open(known, "a", encoding="utf-8") as fh:
        fh.write(line)
    log.warning("tunnel: trusting new host key of %s (recorded in %s)", pattern, known)


async def write_port_file(conn: Any, path: str, text: str) -> None:
    """Atomically write `path` on the remote node: SFTP, else a shell command."""
    import asyncssh

    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    try:
        async with conn.start_sftp_client() as sftp:
            await sftp.makedirs(posixpath.dirname(path), exist_ok=True)
            async with sftp.open(tmp, "w") as fh:
                await fh.write(text)
            try:
                await sftp.posix_rename(tmp, path)
            except asyncssh.SFTPError:
                if await sftp.exists(path):
                    await sftp.remove(path)
                await sftp.rename(tmp, path)
        return
    except asyncssh.ChannelOpenError:
        pass  # no SFTP subsystem: fall back to the shell
    q = shlex.quote
    cmd = (f"mkdir -p {q(posixpath.dirname(path))} && printf %s {q(text)} > {q(tmp)} "
           f"&& mv -f {q(tmp)} {q(path)}")
    result = await conn.run(cmd, check=False)
    if result.exit_status != 0:
        raise TunnelError(f"cannot write {path} on the node: {result.stderr!r}")


async def remove_port_file(conn: Any, path: str) -> None:
    """Remove `path` on the node (best effort: errors are ignored)."""
    if conn is None:
        return
    try:
        async with conn.start_sftp_client() as sftp:
            await sftp.remove(path)
    except Exception:
        pass
