"""Micro-benchmark: IdentityResolver.resolve() over 200,000 random client addresses.

10,000 people, devices and DHCP leases, plus a static map of 300 entries at several prefix
lengths. Prints ns per call for a realistic mix and for each path on its own, then the cost of
building a resolver and of reading 10,000 leases from each file format (the reload path).

    /tmp/v/bin/python bench/bench_identity.py
"""

from __future__ import annotations

import ipaddress
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from monitor.model import Device, Person
from monitor.people.identity import IdentityResolver, StaticRoute
from monitor.people.leases import Lease, read_dhcpd_leases, read_dnsmasq_leases, read_kea_leases

N = 10_000
CALLS = 200_000
NOW = 1_709_640_000
rng = random.Random(20240305)


def v4(i: int, base: str = "127.16.0.0") -> str:
    return str(ipaddress.IPv4Address(int(ipaddress.IPv4Address(base)) + i))


def mac(i: int) -> str:
    return "02:00:" + ":".join(f"{(i >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


people = {f"s-{i:05d}": Person(f"s-{i:05d}", f"test.student{i}", "student") for i in range(N)}
by_username = {p.username: p for p in people.values()}
devices = [Device(f"cb-{i:05d}", mac(i), f"s-{i:05d}", "sch-01", "chromebook") for i in range(N)]
leased = [v4(i) for i in range(N)]
leases = {a: Lease(mac(i), NOW + 3600) for i, a in enumerate(leased)}
routes = [StaticRoute(ipaddress.ip_network("127.200.0.0/16"), name="guest")]
routes += [
    StaticRoute(ipaddress.ip_network(f"127.100.{i}.0/24"), name=f"lab-{i}") for i in range(99)
]
routes += [
    StaticRoute(ipaddress.ip_network(f"127.0.{i // 250}.{i % 250 + 1}/32"), person=f"s-{i:05d}")
    for i in range(200)
]
static_hits = ["127.200.1.2", "127.100.7.9", "127.0.0.5", "127.0.0.77"]


def build() -> IdentityResolver:
    return IdentityResolver(
        people=people,
        by_username=by_username,
        devices=devices,
        leases=[leases],
        static=routes,
        clock=lambda: float(NOW),
    )


def per_call(fn: Callable[[str, str | None], object], addrs: list[tuple[str, str | None]]) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter_ns()
        for a, u in addrs:
            fn(a, u)
        best = min(best, (time.perf_counter_ns() - t0) / len(addrs))
    return best


def main() -> None:
    t0 = time.perf_counter()
    r = build()
    build_ms = (time.perf_counter() - t0) * 1000
    print(f"build: {N} people/devices/leases, {len(routes)} static entries: {build_ms:.1f} ms")

    def pick(kind: str) -> tuple[str, str | None]:
        if kind == "dhcp":
            return rng.choice(leased), None
        if kind == "static":
            return rng.choice(static_hits), None
        if kind == "miss":
            return v4(rng.randrange(1 << 20), "198.18.0.0"), None
        if kind == "mapped":
            return "::ffff:" + rng.choice(leased), None
        if kind == "ipv6":
            return f"2001:db8::{rng.randrange(1 << 16):x}", None
        return rng.choice(leased), f"test.student{rng.randrange(N)}"  # proxy_auth

    mix = ["dhcp"] * 55 + ["static"] * 15 + ["miss"] * 15 + ["mapped"] * 10 + ["proxy_auth"] * 5
    scenarios = {"mix": mix} | {
        k: [k] for k in ("dhcp", "static", "miss", "mapped", "ipv6", "proxy_auth")
    }
    print(f"resolve() over {CALLS:,} random addresses (best of 3):")
    for name, kinds in scenarios.items():
        addrs = [pick(rng.choice(kinds)) for _ in range(CALLS)]
        print(f"  {name:<11} {per_call(r.resolve, addrs):7.0f} ns/call")

    with tempfile.TemporaryDirectory() as d:
        p = Path(d)
        dhcpd = "".join(
            f"lease {a} {{\n  starts 2 2024/03/05 08:00:00;\n  ends 2 2024/03/05 20:00:00;\n"
            f"  cltt 2 2024/03/05 08:00:00;\n  binding state active;\n  next binding state free;\n"
            f'  hardware ethernet {mac(i)};\n  uid "\\001\\002";\n  client-hostname "cb";\n}}\n'
            for i, a in enumerate(leased)
        )
        (p / "dhcpd.leases").write_text(dhcpd)
        (p / "dnsmasq.leases").write_text(
            "".join(f"{NOW + 3600} {mac(i)} {a} cb-{i} *\n" for i, a in enumerate(leased))
        )
        (p / "kea.csv").write_text(
            "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,"
            "state,user_context,pool_id\n"
            + "".join(
                f"{a},{mac(i)},,3600,{NOW + 3600},1,0,0,,0,,0\n" for i, a in enumerate(leased)
            )
        )
        for name, reader, f in (
            ("dhcpd", read_dhcpd_leases, "dhcpd.leases"),
            ("dnsmasq", read_dnsmasq_leases, "dnsmasq.leases"),
            ("kea", read_kea_leases, "kea.csv"),
        ):
            t0 = time.perf_counter()
            table = reader(p / f, now=NOW)
            ms = (time.perf_counter() - t0) * 1000
            assert len(table) == N, (name, len(table))
            print(f"read {N:,} {name} leases: {ms:.1f} ms")


if __name__ == "__main__":
    main()
