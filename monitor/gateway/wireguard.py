"""WireGuard mode for devices off the district network: read the key file mitmproxy's WireGuard
server uses (``--mode wireguard:FILE@PORT``) and write the matching client configuration."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

DEFAULT_PORT = 51820  # mitmproxy's WireGuard port without @PORT
DEFAULT_ADDRESS = "10.0.0.1"  # the tunnel address mitmproxy writes in its own client config
# mitmproxy answers DNS queries sent through the tunnel to this address itself, with the
# gateway's resolver (dns_name_servers, or the system's); the address is fixed in mitmproxy
TUNNEL_DNS = "10.0.0.53"
KEY_FIELDS = ("server_key", "client_key")


@dataclass(frozen=True)
class ServerKeys:
    """The two private keys of one mitmproxy WireGuard server: its own and its one client's."""

    server_key: str
    client_key: str


def public_key(private: str) -> str:
    """The WireGuard public key (base64) of a private key (base64 of 32 bytes)."""
    try:
        raw = base64.b64decode(private.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("not base64") from e
    if len(raw) != 32:
        raise ValueError(f"{len(raw)} bytes, a WireGuard key has 32")
    pub = X25519PrivateKey.from_private_bytes(raw).public_key()
    return base64.b64encode(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def new_key() -> str:
    raw = X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def new_server_conf() -> str:
    """A new key file in mitmproxy's format (what it writes on its first start)."""
    return json.dumps({name: new_key() for name in KEY_FIELDS}, indent=4) + "\n"


def parse_server_conf(text: str, source: str) -> ServerKeys:
    """The keys of mitmproxy's WireGuard key file (JSON); ValueError naming the file, the line
    and the field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}, line {e.lineno}: not JSON ({e.msg})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object with {' and '.join(KEY_FIELDS)}")
    keys: dict[str, str] = {}
    for name in KEY_FIELDS:
        value = data.get(name)
        if not isinstance(value, str):
            raise ValueError(f"{source}: field {name!r} is missing or not a string")
        try:
            public_key(value)
        except ValueError as e:
            raise ValueError(f"{source}: field {name!r} is not a WireGuard key ({e})") from e
        keys[name] = value.strip()
    return ServerKeys(**keys)


def read_server_conf(path: Path) -> ServerKeys:
    return parse_server_conf(path.read_text(encoding="utf-8"), str(path))


def parse_endpoint(value: str) -> tuple[str, int]:
    """HOST, HOST:PORT, [V6] or [V6]:PORT as (host, port); the port defaults to 51820."""
    value = value.strip()
    host, port = value, DEFAULT_PORT
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r}: write an IPv6 endpoint as [ADDRESS]:PORT")
        if rest:
            port = _port(rest[1:], value)
    elif value.count(":") == 1:
        host, _, p = value.partition(":")
        port = _port(p, value)
    elif ":" in value:
        raise ValueError(f"{value!r}: write an IPv6 endpoint as [ADDRESS]:PORT")
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"{value!r} has no host: the gateway's public name or address")
    return host, port


def _port(text: str, value: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
    return int(text)


def parse_tunnel_address(value: str) -> ipaddress.IPv4Address:
    """The device's IPv4 address inside the tunnel, which the district maps to the device in
    district.yaml's addresses."""
    text = value.strip().removesuffix("/32")
    try:
        address = ipaddress.ip_address(text)
    except ValueError as e:
        raise ValueError(f"{value!r} is not an IPv4 address") from e
    if not isinstance(address, ipaddress.IPv4Address):
        raise ValueError(f"{value!r}: the tunnel address must be IPv4 (IPv6: --address6)")
    if (
        str(address) == TUNNEL_DNS
        or address.is_loopback
        or address.is_unspecified
        or address.is_multicast
    ):
        raise ValueError(f"{value!r} cannot be a device's tunnel address")
    return address


def parse_tunnel_address6(value: str) -> ipaddress.IPv6Address:
    """The device's IPv6 address inside the tunnel (mapped like the IPv4 one)."""
    text = value.strip().strip("[]").removesuffix("/128")
    try:
        address = ipaddress.ip_address(text)
    except ValueError as e:
        raise ValueError(f"{value!r} is not an IPv6 address") from e
    if not isinstance(address, ipaddress.IPv6Address):
        raise ValueError(f"{value!r}: the address must be IPv6")
    if (
        address.is_loopback
        or address.is_unspecified
        or address.is_multicast
        or address.is_link_local
        or address.ipv4_mapped is not None
    ):
        raise ValueError(f"{value!r} cannot be a device's tunnel address")
    return address


def render_client(
    keys: ServerKeys,
    endpoint: tuple[str, int],
    address: ipaddress.IPv4Address,
    address6: ipaddress.IPv6Address | None = None,
    *,
    server_file: str = "",
) -> str:
    """The device's configuration (wg-quick format, as WireGuard's apps import it). Both
    address families enter the tunnel (mitmproxy's own configuration routes IPv4 only, which
    would let a device's IPv6 connections go past the proxy)."""
    host, port = endpoint
    host_text = f"[{host}]" if ":" in host else host
    addresses = f"{address}/32" + (f", {address6}/128" if address6 is not None else "")
    head = "# Student monitor: a district device's WireGuard tunnel to the gateway's proxy"
    lines = [head]
    if server_file:
        lines.append(f"# server key file: {server_file}")
    lines += [
        "[Interface]",
        f"PrivateKey = {keys.client_key}",
        f"Address = {addresses}",
        f"DNS = {TUNNEL_DNS}",
        "",
        "[Peer]",
        f"PublicKey = {public_key(keys.server_key)}",
        "AllowedIPs = 0.0.0.0/0, ::/0",
        f"Endpoint = {host_text}:{port}",
        "",
    ]
    return "\n".join(lines)
