"""A site of network-namespace "hosts" (scripts/netns_hosts.sh) and a real OpenSSH sshd on
its compute node, for the multi-host deployment test.

`NetnsSite.create()` picks a unique id and free subnets, runs `netns_hosts.sh up`, and
`remove()` runs `down` (kills what still runs inside by PID, deletes everything by name);
it is also registered with atexit, so a crashed test leaves nothing behind.
"""
from __future__ import annotations

import atexit
import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from radical.edge import services
from radical.edge.services import Service

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "netns_hosts.sh"


def can_make_namespaces() -> str | None:
    """None if this process may create network namespaces, else why not."""
    if shutil.which("ip") is None:
        return "iproute2 (ip) not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    return None


class NetnsSite:
    """Namespaces `ns[role]` (redis, bridge, login, cmp) and their addresses."""

    def __init__(self, site_id: str, net: int) -> None:
        self.id, self.net = site_id, net
        self.ns = {role: f"redge-{site_id}-{role}" for role in ("redis", "bridge", "login", "cmp")}
        site, cnet = f"10.231.{net}", f"10.231.{net + 1}"
        self.redis_ip, self.bridge_ip, self.login_ip = f"{site}.1", f"{site}.2", f"{site}.3"
        self.client_ip = f"{site}.254"  # this process's own address on the site LAN
        self.bridge_cn_ip, self.login_cn_ip, self.cmp_ip = f"{cnet}.2", f"{cnet}.3", f"{cnet}.10"
        self._removed = False

    @classmethod
    def create(cls, attempts: int = 8) -> NetnsSite:
        # first remove what runs killed with SIGKILL left behind (their owner is gone)
        subprocess.run([str(SCRIPT), "clean"], capture_output=True, timeout=120)
        last = ""
        for _ in range(attempts):
            site = cls(uuid.uuid4().hex[:6], random.randrange(2, 253, 2))
            res = subprocess.run([str(SCRIPT), "up", site.id, str(site.net)],
                                 capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "NETNS_HOSTS_OWNER": str(os.getpid())})
            if res.returncode == 0:
                atexit.register(site.remove)
                return site
            last = res.stderr.strip()
            if "in use" not in last:
                break
        raise RuntimeError(f"netns_hosts.sh up failed: {last}")

    def remove(self) -> None:
        if not self._removed:
            subprocess.run([str(SCRIPT), "down", self.id], capture_output=True, timeout=60)
            self._removed = True

    def exists(self) -> bool:
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                               timeout=10).stdout
        return f"redge-{self.id}-" in names

    def connect_error(self, role: str, host: str, port: int) -> str | None:
        """Try a TCP connect from inside `role`'s namespace: None if it worked, else the error."""
        code = ("import socket,sys\ns=socket.socket(); s.settimeout(3)\n"
                f"try:\n  s.connect(({host!r},{port}))\n"
                "except OSError as e:\n  print(e); sys.exit(1)")
        res = subprocess.run(["ip", "netns", "exec", self.ns[role], sys.executable, "-c", code],
                             capture_output=True, text=True, timeout=20)
        return None if res.returncode == 0 else (res.stdout + res.stderr).strip()

    def tcp_remotes(self, role: str, pid: int) -> list[tuple[str, int]]:
        """Remote (address, port) of `pid`'s established TCP connections, as `ss` sees them
        inside `role`'s namespace (psutil would read this process's namespace instead)."""
        res = subprocess.run(["ip", "netns", "exec", self.ns[role], "ss", "-Htnp",
                              "state", "established"], capture_output=True, text=True,
                             timeout=10, check=True)
        found = []
        for line in res.stdout.splitlines():
            fields = line.split()
            if f"pid={pid}," in line and len(fields) >= 4:
                host, _, port = fields[3].rpartition(":")
                found.append((host.strip("[]"), int(port)))
        return found

    def namespace_of(self, pid: int) -> str:
        res = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True,
                             text=True, timeout=10)
        return res.stdout.strip()


class ComputeSSHD:
    """Debian's OpenSSH sshd on the compute node: key login for root, remote forwarding to
    its own loopback only, internal SFTP (the parent writes the tunnel's port file)."""

    def __init__(self, workdir: Path, site: NetnsSite) -> None:
        self.workdir, self.site = workdir, site
        workdir.mkdir(parents=True, exist_ok=True)
        self.host_key = workdir / "ssh_host_ed25519_key"
        self.client_key = workdir / "id_ed25519"
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True, timeout=30)
        self.authorized = workdir / "authorized_keys"
        shutil.copy(f"{self.client_key}.pub", self.authorized)
        self.known_hosts = workdir / "known_hosts"
        host_pub = Path(f"{self.host_key}.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"{site.cmp_ip} {' '.join(host_pub)}\n")
        self.conf = workdir / "sshd_config"
        self.conf.write_text(f"""ListenAddress {site.cmp_ip}:22
HostKey {self.host_key}
PidFile {workdir / 'sshd.pid'}
AuthorizedKeysFile {self.authorized}
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding remote
GatewayPorts no
X11Forwarding no
PermitTunnel no
Subsystem sftp internal-sftp
""")
        self.service: Service | None = None

    def start(self, log_dir: Path) -> ComputeSSHD:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        binary = shutil.which("sshd") or "/usr/sbin/sshd"
        self.service = services._spawn(f"sshd-{self.site.id}",
                                       [binary, "-D", "-e", "-f", str(self.conf)], log_dir,
                                       netns=self.site.ns["cmp"])
        services.wait_until(lambda: self.site.connect_error("login", self.site.cmp_ip, 22)
                            is None, 20, "sshd on the compute node", self.service, interval=0.2)
        return self

    def edge_env(self, tunnel_dir: Path) -> dict[str, str]:
        """SSH settings of the login-node edge (docs/hpc.md): strict host keys."""
        return {"RADICAL_EDGE_SSH_HOST": self.site.cmp_ip, "RADICAL_EDGE_SSH_PORT": "22",
                "RADICAL_EDGE_SSH_USER": "root",
                "RADICAL_EDGE_SSH_KEY_FILE": str(self.client_key),
                "RADICAL_EDGE_SSH_KNOWN_HOSTS": str(self.known_hosts),
                "RADICAL_EDGE_SSH_HOST_KEY_POLICY": "strict",
                "RADICAL_EDGE_TUNNEL_DIR": str(tunnel_dir)}

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
