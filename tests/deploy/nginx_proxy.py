"""Run Debian's nginx with the shipped `deploy/nginx/radical-edge.conf` in its own prefix.

The tests follow docs/deploy.md: the shipped file is used as it is, only its ports, paths
and server name are replaced (`render_site`), and it is included in the `http` block of a
minimal main configuration, as Debian's /etc/nginx/nginx.conf includes conf.d/*.conf.
"""
from __future__ import annotations

import re
import shutil
import socket
import ssl
from pathlib import Path
from typing import Callable

from radical.edge import services
from radical.edge.services import Service, TLSFiles

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx" / "radical-edge.conf"
SHIPPED_STREAM = ROOT / "deploy" / "nginx" / "radical-edge-redis-stream.conf"
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")  # libnginx-mod-stream


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _sub(pattern: str, repl: str, text: str, count: int = 1) -> str:
    """re.subn that insists on `count` matches: the shipped file changed if it fails."""
    new, n = re.subn(pattern, repl, text, flags=re.M)
    if n != count:
        raise AssertionError(f"shipped nginx file: expected {count} x /{pattern}/, found {n}")
    return new


def render_stream(listen: str, redis: str) -> str:
    """The shipped Redis pass-through (stream context) on `listen`, forwarding to `redis`."""
    text = SHIPPED_STREAM.read_text()
    text = _sub(r"^(\s*)server \S+;(\s*# CHANGE: Redis)", rf"\g<1>server {redis};\g<2>", text)
    return _sub(r"^(\s*)listen \S+;", rf"\g<1>listen {listen};", text)


def render_site(listen: str, upstreams: list[str], tls: TLSFiles, log_dir: Path,
                server_name: str) -> str:
    """The shipped site file with the lines marked CHANGE filled in for this run."""
    text = SHIPPED.read_text()
    servers = re.findall(r"^(\s*)server 127\.0\.0\.1:\d+ (.*);$", text, flags=re.M)
    if len(servers) < 1:
        raise AssertionError(f"{SHIPPED.name}: no upstream server lines")
    indent, options = servers[0]
    lines = "".join(f"{indent}server {addr} {options};\n" for addr in upstreams)
    text = re.sub(r"^\s*server 127\.0\.0\.1:\d+ .*;\n", "", text, flags=re.M)
    text, n = re.subn(r"^upstream radical_edge_bridges \{\n",
                      lambda m: m.group(0) + lines, text, flags=re.M)
    if n != 1:
        raise AssertionError(f"{SHIPPED.name}: no `upstream radical_edge_bridges` block")
    text = _sub(r"^(\s*)listen 443 ssl;", rf"\g<1>listen {listen} ssl;", text)
    text = _sub(r"^(\s*)server_name \S+;", rf"\g<1>server_name {server_name};", text)
    text = _sub(r"ssl_certificate\s+/\S+;", f"ssl_certificate {tls.cert};", text)
    text = _sub(r"ssl_certificate_key\s+/\S+;", f"ssl_certificate_key {tls.key};", text)
    text = _sub(r"/var/log/nginx/radical-edge\.access\.log", str(log_dir / "access.log"), text)
    text = _sub(r"/var/log/nginx/radical-edge\.error\.log", str(log_dir / "error.log"), text)
    return text


def main_conf(prefix: Path, site: Path, stream: Path | None = None) -> str:
    """What Debian's nginx.conf sets around conf.d (and stream.d), every path in `prefix`."""
    temp = "\n".join(f"    {kind}_temp_path {prefix / 'tmp' / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    streams = (f"load_module {STREAM_MODULE};\nstream {{ include {stream}; }}\n"
               if stream else "")
    return f"""{streams}daemon off;
worker_processes 1;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'logs' / 'main-error.log'} info;
events {{ worker_connections 256; }}
http {{
    default_type application/octet-stream;
{temp}
    access_log off;
    include {site};
}}
"""


def start_nginx(prefix: Path, listen: str, upstreams: list[str], tls: TLSFiles,
                server_name: str = "localhost", netns: str | None = None,
                redis_stream: tuple[str, str] | None = None,
                edit: Callable[[str], str] | None = None) -> Service:
    """nginx with the shipped site on `listen` (host:port) in front of `upstreams`;
    `redis_stream` = (listen, redis host:port): also the shipped Redis TLS pass-through.
    `edit`: a change to the rendered site (only for tests of what one directive does).

    `extra` holds `access_log` (one line per request, with the bridge that served it).
    """
    binary = nginx_binary()
    if binary is None:
        raise services.ServiceError("nginx not installed (scripts/setup.sh --dev installs it)")
    logs = prefix / "logs"
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
        (prefix / sub).chmod(0o755)
    site = prefix / "radical-edge.conf"
    text = render_site(listen, upstreams, tls, logs, server_name)
    site.write_text(edit(text) if edit else text)
    stream = None
    if redis_stream:
        stream = prefix / "radical-edge-redis-stream.conf"
        stream.write_text(render_stream(*redis_stream))
    conf = prefix / "nginx.conf"
    conf.write_text(main_conf(prefix, site, stream))
    svc = services._spawn(f"nginx-{listen.replace(':', '-')}",
                          [binary, "-p", str(prefix), "-c", str(conf)], logs, netns=netns)
    svc.extra.update(access_log=logs / "access.log", conf=conf, site=site)
    return svc


def wait_listening(svc: Service, host: str, port: int, timeout: float = 15.0) -> None:
    """Until nginx accepts TLS connections on host:port (or it exited)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def up() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1) as sock:
                with ctx.wrap_socket(sock):
                    return True
        except OSError:
            return False

    services.wait_until(up, timeout, f"nginx on {host}:{port}", svc)


def upstreams_served(access_log: Path, path_part: str) -> list[str]:
    """`upstream=` of every logged request whose request line contains `path_part`."""
    found = []
    for line in access_log.read_text().splitlines():
        if path_part in line:
            match = re.search(r"upstream=(\S+(?:, \S+)*) upstream_status=", line)
            if match:
                found.append(match.group(1))
    return found
