"""A throwaway SSH server on 127.0.0.1 for tunnel tests (pure Python: asyncssh).

It stands in for a compute node's sshd: public-key login with a key made here, SFTP on the
real file system (the parent edge writes the tunnel port file through it), and remote port
forwarding (``ssh -R``). It runs on its own event loop in a thread of the test process and
records what clients asked for, so tests can check the tunnel really went through it.

`sshd.env()` gives the ``RADICAL_EDGE_SSH_*`` settings a parent edge needs to use it, with
a known_hosts file holding its host key (so the strict host-key policy is exercised).
"""
from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

asyncssh = pytest.importorskip("asyncssh")


class _Server(asyncssh.SSHServer):
    def __init__(self, sshd: LocalSSHD) -> None:
        self._sshd = sshd

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._sshd.connections += 1

    def begin_auth(self, username: str) -> bool:
        self._sshd.users.append(username)
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self._sshd.forward_requests.append((listen_host, listen_port))
        return listen_host in ("127.0.0.1", "localhost")


class LocalSSHD:
    """`start()` / `stop()`; `port`, `env()`, and counters of what clients did."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_file = workdir / "id_ed25519"
        self.client_key.write_private_key(str(self.client_key_file))
        os.chmod(self.client_key_file, 0o600)
        self.authorized = workdir / "authorized_keys"
        self.client_key.write_public_key(str(self.authorized))
        self.known_hosts = workdir / "known_hosts"
        self.port = 0
        self.connections = 0
        self.users: list[str] = []
        self.forward_requests: list[tuple[str, int]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-sshd",
                                        daemon=True)
        self._server: asyncssh.SSHAcceptor | None = None

    def start(self) -> LocalSSHD:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._server = fut.result(15)
        self.port = self._server.sockets[0].getsockname()[1]
        public = self.host_key.export_public_key().decode().strip()
        lines = [f"[{host}]:{self.port} {public}" for host in ("127.0.0.1", "localhost")]
        self.known_hosts.write_text("\n".join(lines) + "\n")
        return self

    async def _listen(self) -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1", 0, server_factory=lambda: _Server(self),
            server_host_keys=[self.host_key], authorized_client_keys=str(self.authorized),
            sftp_factory=True, allow_scp=False, process_factory=None)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            asyncio.run_coroutine_threadsafe(self._server.wait_closed(), self._loop).result(10)
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def env(self, tunnel_dir: Path | None = None) -> dict[str, str]:
        """Settings for a parent edge whose compute nodes are 'behind' this sshd."""
        env = {"RADICAL_EDGE_SSH_PORT": str(self.port),
               "RADICAL_EDGE_SSH_KEY_FILE": str(self.client_key_file),
               "RADICAL_EDGE_SSH_KNOWN_HOSTS": str(self.known_hosts),
               "RADICAL_EDGE_SSH_HOST_KEY_POLICY": "strict"}
        if tunnel_dir is not None:
            env["RADICAL_EDGE_TUNNEL_DIR"] = str(tunnel_dir)
        return env
