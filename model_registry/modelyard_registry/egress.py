"""Which secrets an endpoint may use and which addresses the server may call.

An admin registers endpoints, but a registration must not turn the server into a way to read
its own environment (``api_key_env: "DATABASE_URL"`` sent as a Bearer token to any URL) or to
reach what only the server can reach (cloud metadata at 169.254.169.254, link-local
neighbours). So: a key comes only from a variable whose name matches ``secret_env_allow``;
an endpoint's host must resolve to addresses inside ``egress_allow`` (when set), and never to
link-local or metadata addresses. Both are checked at registration and again at call time (a
name can resolve elsewhere later).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

from .errors import InvalidInput, ModelyardError
from .settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Always refused: link-local (where cloud metadata lives) and the well-known metadata names.
ALWAYS_REFUSED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.azure.com"})


def allowed_secret(name: str, patterns: str) -> bool:
    """Whether ``name`` matches one of the comma-separated ``patterns`` (``MODELYARD_SECRET_*``)."""
    return any(fnmatch.fnmatchcase(name, p.strip()) for p in patterns.split(",") if p.strip())


def check_secret_name(name: str | None, patterns: str) -> None:
    """Registration: a 422 naming ``api_key_env`` for a variable outside the allowlist."""
    if name and not allowed_secret(name, patterns):
        raise InvalidInput(
            "api_key_env must name a variable matching the secret allowlist "
            f"({patterns}); other variables are never sent to an endpoint",
            field="api_key_env")


def read_secret(name: str | None, patterns: str) -> str | None:
    """Call time: the key, or None when no variable is named or the name is not allowlisted.

    An entry stored before the allowlist existed sends no key rather than the variable.
    """
    if not name or not allowed_secret(name, patterns):
        return None
    return os.environ.get(name)


class EgressPolicy:
    """``egress_allow``: comma-separated hosts, addresses or networks.

    Empty allows any address except the always-refused ones.
    """

    def __init__(self, allow: str, cache_s: float = 30.0) -> None:
        self.hosts: set[str] = set()
        self.networks: list[IPNetwork] = []
        for item in filter(None, (p.strip() for p in allow.split(","))):
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.hosts.add(item.lower())
        self.cache_s = cache_s
        self._ok: dict[str, float] = {}

    def check(self, url: str, field: str = "base_url") -> None:
        """Raise ``InvalidInput`` naming ``field`` (not the addresses) unless ``url`` may be called.

        A positive answer is kept ``cache_s`` seconds per host (no DNS lookup per call).
        """
        host = (urlparse(url).hostname or "").lower().rstrip(".")
        now = time.monotonic()
        if self._ok.get(host, 0.0) > now:
            return
        if not host or host in METADATA_HOSTS:
            raise InvalidInput("the endpoint's host is not allowed", field=field)
        addresses = _resolve(host)
        if not addresses:
            raise InvalidInput("the endpoint's host does not resolve", field=field)
        for address in addresses:
            if any(address in net for net in ALWAYS_REFUSED if net.version == address.version):
                raise InvalidInput("the endpoint resolves to a link-local or metadata address, "
                                   "which is never called", field=field)
            if (self.hosts or self.networks) and host not in self.hosts and not any(
                    address in net for net in self.networks if net.version == address.version):
                raise InvalidInput("the endpoint is outside the egress allowlist "
                                   "(MODELYARD_EGRESS_ALLOW)", field=field)
        self._ok[host] = now + self.cache_s


def _resolve(host: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return []
    out: list[IPAddress] = []
    for info in infos:
        try:
            out.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return out


def gguf_dirs(settings: Settings) -> list[Path]:
    """Directories ``gguf_path`` may point into.

    ``settings.gguf_dirs``, else the model cache under ``home`` and the bundled packages' folders.
    """
    if settings.gguf_dirs.strip():
        return [Path(d.strip()).expanduser().resolve()
                for d in settings.gguf_dirs.split(",") if d.strip()]
    from .bundled import BUNDLED

    dirs = [settings.models_dir.resolve()]
    for model in BUNDLED.values():
        try:
            dirs += [p.parent.resolve() for p in model.parts()]
        except (ImportError, OSError, ModelyardError):  # that package is not installed
            continue
    return list(dict.fromkeys(dirs))


def check_gguf_path(path: str, settings: Settings) -> Path:
    """The resolved path, or a 422 naming ``gguf_path``.

    The answer is the same whether or not the file exists: the API must not let a caller probe
    the server's disk.
    """
    resolved = Path(path).expanduser().resolve()
    if not any(resolved.is_relative_to(d) for d in gguf_dirs(settings)):
        raise InvalidInput("gguf_path must be inside an allowed directory (MODELYARD_GGUF_DIRS; "
                           "default: the model cache and the bundled models)", field="gguf_path")
    return resolved
