"""The gateway's nftables ruleset: devices' connections spread over the proxy workers by the
device's address, with ``jhash ip saddr mod N`` mapped to the worker ports and ``redirect``.

Why a redirect by source-address hash, and not ``SO_REUSEPORT`` on one port: the kernel spreads
a reuseport group by the connection's 4-tuple, so one device's connections (a browser opens
dozens) land on different workers, and whatever a worker keeps per address multiplies by N (the
per-address connection limit lets a device hold N times ``monitor_max_client_connections``).
A hash of the source address alone keeps every connection of a device on one worker, and a
redirect is a destination NAT: the source address reaches the addon unchanged, and identity
(static maps, DHCP leases) depends on it. The mapping is visible and testable with ``nft list
ruleset``; the seed is fixed, so a device keeps its worker across reloads of the ruleset (and
connections already open keep theirs anyway: conntrack holds their NAT).

Two modes, matching ``monitor proxy --mode``:

- ``regular``: the proxy port devices are told (PAC file, Chromebook policy) is redirected,
  per device, to the workers' ports.
- ``transparent``: TCP 80 and 443 from device networks to the addresses in the sets
  ``@catalogue4`` / ``@catalogue6`` (filled by the district resolver, dnsmasq's ``nftset=``) go
  to the workers; everything else is routed untouched. HTTP/3 (UDP 443) is refused so browsers
  fall back to TCP, DNS is allowed to the district resolver only, DNS over TLS and QUIC (853)
  is refused.

In both, a worker port is reachable through the redirect only (from outside the gateway): a
device that connects to a worker port itself would bypass the hash.

The sets, the map and the chains are declared, then the chains and the map flushed and filled,
so loading the file again replaces the rules and keeps the addresses the resolver has put in the
sets. The rule keeps a device's hash bucket in the packet mark of a redirected connection's first
packet (delivered locally, so no routing decision downstream sees it) to look it up in the map
``workers``; with ``monitor proxy --nft-failover`` the supervisor points a dead worker's bucket
at a live worker until it is back (:mod:`monitor.gateway.failover`). Pure: no
I/O; the CLI is ``monitor gateway nftables``.
"""

from __future__ import annotations

import ipaddress
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

TABLE = "student_monitor"  # table inet student_monitor: the resolver's nftset= names it
WORKER_MAP = "workers"  # hash bucket -> worker port; monitor proxy --nft-failover rewrites it
SETS = ("catalogue4", "catalogue6")
MODES = ("regular", "transparent")
SEED = 0x5EED  # fixed: the same device maps to the same worker after a reload
CATALOGUE_PORTS = (80, 443)
_IFNAME = re.compile(r"[A-Za-z0-9_.:@+-]{1,15}")  # Linux IFNAMSIZ - 1, no quotes or spaces

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class RulesetSpec:
    """What the ruleset redirects. Build it with :func:`ruleset_spec` (which checks input)."""

    mode: str
    workers: int
    worker_port_base: int
    listen_port: int = 3128
    lan_if: str = ""
    device_nets: tuple[Network, ...] = ()
    resolvers: tuple[Address, ...] = ()
    command: str = ""  # the command line that generated it, written in the header
    ports: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "ports", tuple(self.worker_port_base + i for i in range(self.workers))
        )


def parse_networks(text: str) -> tuple[Network, ...]:
    """``10.10.0.0/16,2001:db8::/64`` → networks; a host address is a /32 or /128."""
    out: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=True))
        except ValueError as e:
            raise ValueError(f"{part!r} is not a network (CIDR such as 10.10.0.0/16): {e}") from e
    return tuple(out)


def parse_addresses(text: str) -> tuple[Address, ...]:
    out: list[Address] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_address(part))
        except ValueError as e:
            raise ValueError(f"{part!r} is not an IP address") from e
    return tuple(out)


def ruleset_spec(
    mode: str,
    workers: int,
    worker_port_base: int,
    *,
    listen_port: int = 3128,
    lan_if: str = "",
    device_nets: Sequence[Network] = (),
    resolvers: Sequence[Address] = (),
    command: str = "",
) -> RulesetSpec:
    """A checked :class:`RulesetSpec`; ``ValueError`` names the bad value."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose regular or transparent")
    if workers < 1:
        raise ValueError(f"{workers} workers: at least 1")
    last = worker_port_base + workers - 1
    if worker_port_base < 1 or last > 65535:
        raise ValueError(
            f"worker ports {worker_port_base}-{last} are outside 1-65535: choose a base "
            f"between 1 and {65536 - workers}"
        )
    if not 0 < listen_port < 65536:
        raise ValueError(f"listen port {listen_port} is outside 1-65535")
    if mode == "regular" and worker_port_base <= listen_port <= last:
        raise ValueError(
            f"listen port {listen_port} is one of the worker ports {worker_port_base}-{last}: "
            "devices' port and the workers' ports must differ"
        )
    if mode == "transparent":
        clash = [p for p in CATALOGUE_PORTS if worker_port_base <= p <= last]
        if clash:
            raise ValueError(f"worker ports {worker_port_base}-{last} include port {clash[0]}")
    if lan_if and not _IFNAME.fullmatch(lan_if):
        raise ValueError(f"interface name {lan_if!r}: at most 15 letters, digits, '.', '_', '-'")
    if resolvers and mode != "transparent":
        raise ValueError("a resolver is for transparent mode only (regular mode leaves DNS alone)")
    return RulesetSpec(
        mode,
        workers,
        worker_port_base,
        listen_port,
        lan_if,
        tuple(device_nets),
        tuple(resolvers),
        command,
    )


# -- rendering ------------------------------------------------------------------------------


def _set(items: Iterable[object]) -> str:
    return "{ " + ", ".join(str(i) for i in items) + " }"


def _worker_map(spec: RulesetSpec, family: str) -> str:
    """The device's hash bucket (kept in the packet mark of the connection's first packet,
    which the redirect delivers locally) looked up in the map ``workers``, which the
    supervisor rewrites while a worker is down (:mod:`monitor.gateway.failover`)."""
    saddr = "ip saddr" if family == "ipv4" else "ip6 saddr"
    return (
        f"meta mark set jhash {saddr} mod {spec.workers} seed {SEED:#x} "
        f"redirect to : meta mark map @{WORKER_MAP}"
    )


def _devices(spec: RulesetSpec, family: str) -> str:
    """The match of the devices of one address family: the LAN interface and the device
    networks of that family, or all of that family on the interface when none are given (a
    device network list without IPv6 must not let IPv6 go around the proxy)."""
    iif = "iifname $LAN_IF " if spec.lan_if else ""
    nets = [n for n in spec.device_nets if (n.version == 4) == (family == "ipv4")]
    if nets:
        return iif + ("ip saddr $DEVICE_NETS4" if family == "ipv4" else "ip6 saddr $DEVICE_NETS6")
    return iif + f"meta nfproto {family}"


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=94, initial_indent="# ", subsequent_indent="# ")


def _header(spec: RulesetSpec) -> list[str]:
    what = {
        "regular": f"devices' connections to the proxy port {spec.listen_port} go",
        "transparent": "devices' TCP 80 and 443 to catalogue addresses (the sets catalogue4 and "
        "catalogue6, filled by the district resolver) goes",
    }[spec.mode]
    ports = (
        f"ports {spec.ports[0]}-{spec.ports[-1]}" if spec.workers > 1 else f"port {spec.ports[0]}"
    )
    lines = ["#!/usr/sbin/nft -f"]
    lines += _comment(
        f"Student activity monitor, {spec.mode} mode: {what} to the proxy workers on "
        f"{ports} (`monitor proxy --workers {spec.workers} --worker-port-base "
        f"{spec.worker_port_base}`), each device to one worker chosen by a hash of its address. "
        "The redirect keeps the address, which identifies the device."
    )
    if spec.command:
        lines += ["# Generated by:", f"#   {spec.command}"]
    kept = " and keeps the addresses in the sets" if spec.mode == "transparent" else ""
    lines += _comment(
        f"Load with `nft -f FILE`; loading it again replaces these rules{kept}. Remove with "
        f"`nft delete table inet {TABLE}`."
    )
    if not spec.lan_if:
        lines += _comment("No --lan-if: the rules match packets from every interface.")
    return lines


def _defines(spec: RulesetSpec) -> list[str]:
    out: list[str] = []
    if spec.lan_if:
        out.append(f'define LAN_IF = "{spec.lan_if}"')
    v4 = [n for n in spec.device_nets if n.version == 4]
    v6 = [n for n in spec.device_nets if n.version == 6]
    if v4:
        out.append(f"define DEVICE_NETS4 = {_set(v4)}")
    if v6:
        out.append(f"define DEVICE_NETS6 = {_set(v6)}")
    if spec.mode == "regular":
        out.append(f"define PROXY_PORT = {spec.listen_port}")
    else:
        r4 = [a for a in spec.resolvers if a.version == 4]
        r6 = [a for a in spec.resolvers if a.version == 6]
        if r4:
            out.append(f"define RESOLVER4 = {_set(r4)}")
        if r6:
            out.append(f"define RESOLVER6 = {_set(r6)}")
    first, last = spec.ports[0], spec.ports[-1]
    out.append(
        f"define WORKER_PORTS = {first}-{last}"
        if last > first
        else f"define WORKER_PORTS = {first}"
    )
    return out


def _chains(spec: RulesetSpec) -> dict[str, tuple[str, list[str]]]:
    """chain name → (its hook line, its rules with their comments)."""
    pre: list[str] = []
    if spec.mode == "regular":
        pre.append("# the proxy port, per device address, to one worker")
        for fam in ("ipv4", "ipv6"):
            pre.append(f"{_devices(spec, fam)} tcp dport $PROXY_PORT {_worker_map(spec, fam)}")
    else:
        pre += [
            "# TCP 80/443 to catalogue addresses (the district resolver adds them to the sets),",
            "# per device address, to one worker; everything else is routed untouched",
        ]
        for fam, daddr in (("ipv4", "ip daddr @catalogue4"), ("ipv6", "ip6 daddr @catalogue6")):
            pre.append(
                f"{_devices(spec, fam)} {daddr} tcp dport {_set(CATALOGUE_PORTS)} "
                f"{_worker_map(spec, fam)}"
            )
    inp = [
        "# the workers are reached through the redirect only: connecting to a worker port",
        "# directly would go around the hash (loopback stays open for local checks)",
        'iifname != "lo" tcp dport $WORKER_PORTS ct status & dnat == 0 counter drop',
    ]
    chains = {
        "prerouting": ("type nat hook prerouting priority dstnat; policy accept;", pre),
        "input": ("type filter hook input priority filter; policy accept;", inp),
    }
    if spec.mode == "transparent":
        fwd: list[str] = [
            "# no HTTP/3: mitmproxy's transparent mode carries TCP only; refused at once, so",
            "# browsers fall back to TCP, which is redirected above",
        ]
        fwd += [f"{_devices(spec, f)} udp dport 443 counter reject" for f in ("ipv4", "ipv6")]
        fwd += [
            "# DNS to the district resolver only: it fills the catalogue sets, so a device",
            "# asking another resolver would get addresses the sets do not hold",
        ]
        for fam, daddr, name in (
            ("ipv4", "ip daddr", "RESOLVER4"),
            ("ipv6", "ip6 daddr", "RESOLVER6"),
        ):
            has = any((a.version == 4) == (fam == "ipv4") for a in spec.resolvers)
            other = f"{daddr} != ${name} " if has else ""
            dns = "meta l4proto { tcp, udp } th dport 53 counter reject"
            fwd.append(f"{_devices(spec, fam)} {other}{dns}")
        fwd.append("# no DNS over TLS or over QUIC: devices fall back to the district resolver")
        fwd += [
            f"{_devices(spec, f)} meta l4proto {{ tcp, udp }} th dport 853 counter reject"
            for f in ("ipv4", "ipv6")
        ]
        chains["forward"] = ("type filter hook forward priority filter; policy accept;", fwd)
    return chains


def render_ruleset(spec: RulesetSpec) -> str:
    """The nftables file for ``spec`` (``nft -f``), the same text for the same input."""
    chains = _chains(spec)
    out = [*_header(spec), "", *_defines(spec), "", f"table inet {TABLE} {{"]
    if spec.mode == "transparent":
        out += [
            "\t# filled by the district resolver (dnsmasq nftset=) with catalogue addresses",
            "\tset catalogue4 {",
            "\t\ttype ipv4_addr; flags timeout;",
            "\t}",
            "\tset catalogue6 {",
            "\t\ttype ipv6_addr; flags timeout;",
            "\t}",
        ]
    out += [
        "\t# hash bucket of a device's address -> its worker's port (see prerouting); while a",
        "\t# worker is down, `monitor proxy --nft-failover` points its bucket at a live worker",
        f"\tmap {WORKER_MAP} {{ type mark : inet_service; }}",
    ]
    for name, (hook, _rules) in chains.items():
        out.append(f"\tchain {name} {{ {hook} }}")
    out.append("}")
    out += [f"flush chain inet {TABLE} {name}" for name in chains]
    out.append(f"flush map inet {TABLE} {WORKER_MAP}")
    out.append(f"table inet {TABLE} {{")
    pairs = ", ".join(f"{i} : {port}" for i, port in enumerate(spec.ports))
    out += [
        f"\tmap {WORKER_MAP} {{",
        "\t\ttype mark : inet_service;",
        f"\t\telements = {{ {pairs} }}",
        "\t}",
        "",
    ]
    for i, (name, (_hook, rules)) in enumerate(chains.items()):
        if i:
            out.append("")
        out.append(f"\tchain {name} {{")
        out += [f"\t\t{rule}" for rule in rules]
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"


# -- nft's verdict on a ruleset ---------------------------------------------------------------

# nft's error lines: "/dev/stdin:18:6-15: Error: Could not process rule: File exists"
_NFT_ERROR = re.compile(r"^(?:[^\n:]*):(\d+):(?:\d+)(?:-\d+)?: Error: (.+)$", re.M)
_HINTS = (
    (
        re.compile(r"^\s*(set|chain) (\w+)"),
        "File exists",
        "the table inet {table} already holds a {kind} {name} declared differently (another "
        "type, flags or hook, e.g. from an older ruleset): remove the table (`nft delete table "
        "inet {table}`) and load again, then restart the resolver so that it refills the sets",
    ),
    (
        re.compile(r"redirect|jhash|reject"),
        "No such file or directory",
        "this kernel lacks an nftables expression this line uses (modules nft_redirect and "
        "nf_nat for redirect, nft_hash for jhash, nft_reject_inet for reject)",
    ),
)


def explain_nft_errors(stderr: str, ruleset: str, source: str = "ruleset") -> list[str]:
    """nft's complaints about ``ruleset`` (its stderr from ``nft -f``), one message per error,
    each naming the ruleset line and quoting it, with what to do where the cause is known."""
    lines = ruleset.splitlines()
    out: list[str] = []
    for m in _NFT_ERROR.finditer(stderr):
        number, message = int(m.group(1)), m.group(2).strip()
        text = lines[number - 1].strip() if 0 < number <= len(lines) else ""
        explained = f"{source} line {number}: {message}" + (f": {text}" if text else "")
        for pattern, needle, hint in _HINTS:
            found = pattern.search(text)
            if found and needle in message:
                kind, name = (found.group(1), found.group(2)) if found.groups() else ("", "")
                explained += " (" + hint.format(table=TABLE, kind=kind, name=name) + ")"
        out.append(explained)
    if not out and stderr.strip():
        out.append(f"{source}: {stderr.strip()}")
    return out
