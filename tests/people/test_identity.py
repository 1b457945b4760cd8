from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from monitor.model import Device, Identity, Person
from monitor.people.devices import read_inventory
from monitor.people.identity import (
    UNKNOWN,
    IdentityResolver,
    StaticMap,
    StaticRoute,
    address_key,
    load_static_map,
    parse_static_map,
)
from monitor.people.leases import Lease, read_dnsmasq_leases
from monitor.yamlfile import ConfigError

NOW = 1709640000.0
LATER = NOW + 3600

PEOPLE = {
    p.sourced_id: p
    for p in (
        Person("s-0011", "test.student11", "student"),
        Person("s-0012", "Test.Student12", "student"),
        Person("t-0001", "test.teacher1", "teacher"),
    )
}
BY_USERNAME = {p.username.lower(): p for p in PEOPLE.values()}
DEVICES = (
    Device("cb-0012", "02:00:00:00:00:12", "test.student12", "sch-01", "chromebook"),
    Device("cb-0001", "02:00:00:00:00:01", "t-0001", "sch-01", "laptop"),
    Device("cart-07", "02:00:00:00:00:07", None, "sch-01", "chromebook"),
    Device("cb-gone", "02:00:00:00:00:99", "s-9999", "sch-01", "chromebook"),
)
LEASES = {
    "127.0.0.11": Lease("02:00:00:00:00:12", int(LATER)),
    "127.0.0.20": Lease("02:00:00:00:00:01", None),
    "127.0.0.21": Lease("02:00:00:00:00:07", int(LATER)),
    "127.0.0.22": Lease("02:00:00:00:00:99", int(LATER)),
    "127.0.0.23": Lease("02:00:00:00:00:aa", int(LATER)),  # not a district device
    "2001:db8::20": Lease("02:00:00:00:00:01", int(LATER)),
}


def route(
    cidr: str, person: str | None = None, device: str | None = None, name: str | None = None
) -> StaticRoute:
    return StaticRoute(ipaddress.ip_network(cidr), person, device, name, "test.yaml", 1)


STATIC = (
    route("127.0.0.11/32", person="s-0011"),
    route("127.0.0.0/8", name="lab"),
    route("127.0.1.0/24", device="cart-07"),
    route("127.0.1.7/32", person="test.teacher1"),  # a username, in any case
    route("127.0.1.0/28", name="library"),
    route("2001:db8::/32", name="v6lab"),
    route("2001:db8::1/128", person="s-0012"),
)


def resolver(
    order: Sequence[str] = ("proxy_auth", "static", "dhcp"), now: float = NOW, **kw: Any
) -> IdentityResolver:
    args: dict[str, Any] = dict(
        people=PEOPLE,
        by_username=BY_USERNAME,
        devices=DEVICES,
        leases=[LEASES],
        static=STATIC,
        order=order,
        clock=lambda: now,
    )
    args.update(kw)
    return IdentityResolver(**args)


def who(ident: Identity) -> tuple[str | None, str | None, str, str | None]:
    return (
        ident.person.sourced_id if ident.person else None,
        ident.device.device_id if ident.device else None,
        ident.source,
        ident.network,
    )


@pytest.mark.parametrize(
    ("order", "user", "expected"),
    [
        (("proxy_auth", "static", "dhcp"), "test.teacher1", ("t-0001", None, "proxy_auth", None)),
        (("proxy_auth", "static", "dhcp"), "TEST.TEACHER1", ("t-0001", None, "proxy_auth", None)),
        (("proxy_auth", "static", "dhcp"), None, ("s-0011", None, "static", None)),
        (("proxy_auth", "static", "dhcp"), "nobody", ("s-0011", None, "static", None)),
        (("static", "proxy_auth", "dhcp"), "test.teacher1", ("s-0011", None, "static", None)),
        (("dhcp", "static", "proxy_auth"), "test.teacher1", ("s-0012", "cb-0012", "dhcp", None)),
        (("proxy_auth", "dhcp"), None, ("s-0012", "cb-0012", "dhcp", None)),
        (("proxy_auth",), None, (None, None, "unknown", None)),
    ],
)
def test_source_order_decides(
    order: tuple[str, ...], user: str | None, expected: tuple[object, ...]
) -> None:
    # 127.0.0.11: static map says s-0011, its DHCP lease is cb-0012 of test.student12
    assert who(resolver(order).resolve("127.0.0.11", user)) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.1.7", ("t-0001", None, "static", None)),  # /32 beats /28, /24 and /8
        ("127.0.1.8", (None, None, "static", "library")),  # /28 beats /24
        ("127.0.1.200", (None, "cart-07", "static", None)),  # /24: a shared device, no user
        ("127.9.9.9", (None, None, "static", "lab")),  # /8
        ("2001:db8::1", ("s-0012", None, "static", None)),
        ("2001:db8:ffff::1", (None, None, "static", "v6lab")),
        ("198.51.100.1", (None, None, "unknown", None)),
        ("2001:db9::1", (None, None, "unknown", None)),
    ],
)
def test_longest_prefix_wins(address: str, expected: tuple[object, ...]) -> None:
    assert who(resolver(("static",)).resolve(address)) == expected


@pytest.mark.parametrize(
    ("address", "same_as"),
    [
        ("::ffff:127.0.0.11", "127.0.0.11"),
        ("::FFFF:7f00:b", "127.0.0.11"),
        ("::ffff:127.0.1.7", "127.0.1.7"),
        ("2001:db8::1%eth0", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:0DB8:0:0::1", "2001:db8::1"),
    ],
)
def test_addresses_are_normalised(address: str, same_as: str) -> None:
    r = resolver(("static", "dhcp"))
    assert r.resolve(address) == r.resolve(same_as)
    assert r.resolve(address) is not UNKNOWN
    assert address_key(address) == address_key(same_as)


@pytest.mark.parametrize(
    "address", ["", "127.1", "127.0.0.256", "0x7f.0.0.1", "not-an-ip", "/run/x.sock", "1.2.3.4\0"]
)
def test_unparseable_addresses_are_unknown(address: str) -> None:
    assert address_key(address) is None
    assert resolver().resolve(address) is UNKNOWN
    assert who(resolver().resolve(address, "test.student11")) == (
        "s-0011",
        None,
        "proxy_auth",
        None,
    )


def test_address_keys_keep_families_apart() -> None:
    assert address_key("0.0.0.1") == 1
    assert address_key("::1") != address_key("0.0.0.1")
    assert address_key("::ffff:0.0.0.1") == 1


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.20", ("t-0001", "cb-0001", "dhcp", None)),  # assigned by sourcedId
        ("127.0.0.11", ("s-0012", "cb-0012", "dhcp", None)),  # assigned by username
        ("127.0.0.21", (None, "cart-07", "dhcp", None)),  # shared device
        ("127.0.0.22", (None, "cb-gone", "dhcp", None)),  # its user left the roster
        ("127.0.0.23", (None, None, "unknown", None)),  # a lease, but not a district device
        ("2001:db8::20", ("t-0001", "cb-0001", "dhcp", None)),
        ("::ffff:127.0.0.20", ("t-0001", "cb-0001", "dhcp", None)),
    ],
)
def test_dhcp_lease_to_device_to_person(address: str, expected: tuple[object, ...]) -> None:
    assert who(resolver(("dhcp",)).resolve(address)) == expected


def test_devices_carry_the_resolved_user() -> None:
    r = resolver(("dhcp",))
    device = r.resolve("127.0.0.11").device
    assert device is not None and device.user == "s-0012"  # username → sourcedId
    gone = r.resolve("127.0.0.22").device
    assert gone is not None and gone.user is None
    assert r.warnings == (
        "device 'cb-gone': assigned user 's-9999' is not in the roster; "
        "the device is kept with no user",
    )


def test_a_lease_that_ended_after_loading_no_longer_answers() -> None:
    assert resolver(("dhcp",), now=LATER - 1).resolve("127.0.0.11").source == "dhcp"
    assert resolver(("dhcp",), now=LATER).resolve("127.0.0.11") is UNKNOWN
    assert resolver(("dhcp",), now=LATER * 10).resolve("127.0.0.20").source == "dhcp"  # never


def test_later_lease_table_wins() -> None:
    newer = {"127.0.0.20": Lease("02:00:00:00:00:aa", None)}  # now a visitor's laptop
    r = resolver(("dhcp",), leases=[LEASES, newer])
    assert r.resolve("127.0.0.20") is UNKNOWN
    assert resolver(("dhcp",), leases=[newer, LEASES]).resolve("127.0.0.20").source == "dhcp"


def test_stats() -> None:
    assert resolver().stats == {
        "devices": 4,
        "devices_without_user": 2,
        "leases": 6,
        "leases_unknown_mac": 1,
        "static_entries": 7,
    }


def test_resolver_is_immutable() -> None:
    r = resolver()
    with pytest.raises(AttributeError, match="immutable"):
        setattr(r, "_dhcp", {})  # noqa: B010
    with pytest.raises(AttributeError):
        setattr(r, "extra", 1)  # noqa: B010
    assert r.resolve("127.0.0.11").source == "static"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"order": ()}, "order"),
        ({"order": ("proxy_auth", "ldap")}, "order"),
        ({"order": ("dhcp", "dhcp")}, "order"),
        ({"devices": DEVICES + (Device("cb-0012", "02:00:00:00:01:00"),)}, "'cb-0012' appears"),
        ({"devices": DEVICES + (Device("cb-x", "02:00:00:00:00:12"),)}, "02:00:00:00:00:12"),
        (
            {"static": [route("127.0.0.5/32", person="s-9999")]},
            "test.yaml:1: entry '127.0.0.5/32': field 'person'",
        ),
        ({"static": [route("127.0.0.5/32", device="cb-none")]}, "field 'device'"),
        (
            {"static": [route("127.0.0.0/8", name="a"), route("127.0.0.0/8", name="b")]},
            "mapped twice",
        ),
    ],
)
def test_bad_builds(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolver(**kw)


# -- static map files ---------------------------------------------------------------------


def test_static_map_from_a_district_config(tmp_path: Path) -> None:
    p = tmp_path / "district.yaml"
    p.write_text(
        "policy: {}\n"
        "addresses:\n"
        "  - cidr: 127.0.0.11/32\n"
        "    person: s-0011\n"
        "  - cidr: 10.20.0.0/16\n"
        "    network: guest\n"
        "    note: visitors' Wi-Fi\n"
        "  - cidr: 127.0.1.7\n"
        "    device: cb-0001\n"
        "  - cidr: ::ffff:127.0.2.0/120\n"
        "    network: mapped\n"
    )
    m = load_static_map(p, people=PEOPLE, by_username=BY_USERNAME, devices=DEVICES)
    assert [(str(r.network), r.person, r.device, r.name, r.line) for r in m.routes] == [
        ("127.0.0.11/32", "s-0011", None, None, 3),
        ("10.20.0.0/16", None, None, "guest", 5),
        ("127.0.1.7/32", None, "cb-0001", None, 8),
        ("127.0.2.0/24", None, None, "mapped", 10),
    ]
    r = resolver(("static",), static=m)
    assert who(r.resolve("10.20.3.4")) == (None, None, "static", "guest")
    assert who(r.resolve("127.0.1.7")) == ("t-0001", "cb-0001", "static", None)
    assert who(r.resolve("::ffff:127.0.2.9")) == (None, None, "static", "mapped")


def test_static_map_bare_list_and_empty(tmp_path: Path) -> None:
    p = tmp_path / "addresses.yaml"
    p.write_text("- cidr: 2001:db8::/32\n  network: v6lab\n")
    assert [r.name for r in load_static_map(p).routes] == ["v6lab"]
    p.write_text("")
    assert load_static_map(p) == StaticMap(path=str(p))
    p.write_text("policy: {}\n")
    assert len(load_static_map(p)) == 0
    p.write_text("just text\n")
    with pytest.raises(ConfigError, match=rf"{p}:1: expected a mapping with 'addresses'"):
        load_static_map(p)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            "  - cidr: 127.0.0.300/32\n    person: s-0011\n",
            "2: entry '127.0.0.300/32': field 'cidr': '127.0.0.300/32' is not an address or CIDR "
            "block",
        ),
        (
            "  - cidr: 10.20.0.1/16\n    network: guest\n",
            "2: entry '10.20.0.1/16': field 'cidr': '10.20.0.1/16' is not an address or CIDR "
            "block: 10.20.0.1/16 has host bits set",
        ),
        (
            "  - cidr: 10.20.0.0/16\n    person: s-0011\n    network: guest\n",
            "4: entry '10.20.0.0/16': field 'network': give only one of 'person', 'device' or "
            "'network' (this entry also has 'person')",
        ),
        ("  - cidr: 10.20.0.0/16\n", "2: entry '10.20.0.0/16': give one of"),
        (
            "  - cidr: 10.20.0.0/16\n    person: s-9999\n",
            "3: entry '10.20.0.0/16': field 'person': 's-9999' is not a sourcedId or username",
        ),
        (
            "  - cidr: 10.20.0.0/16\n    device: cb-none\n",
            "3: entry '10.20.0.0/16': field 'device': 'cb-none' is not a deviceId",
        ),
        (
            "  - cidr: 10.20.0.0/16\n    network: guest\n  - cidr: 10.20.0.0/16\n    network: b\n",
            "4: entry '10.20.0.0/16': field 'cidr': 10.20.0.0/16 is already mapped at line 2",
        ),
        (
            "  - cidr: 10.20.0.0/16\n    netwrok: guest\n",
            "3: entry '10.20.0.0/16': field 'netwrok': unknown key",
        ),
        (
            "  - cidr: 10.20.0.0/16\n    network: Guest Wi-Fi\n",
            "3: entry '10.20.0.0/16': field 'network': network names are 1-40",
        ),
        ("  - person: s-0011\n", "2: entry [0]: field 'cidr': required field is missing"),
        ("  - 10.20.0.0/16\n", "2: entry [0]: each entry must be a mapping"),
        ("    cidr: 10.20.0.0/16\n", "2: the address map must be a list"),
    ],
)
def test_static_map_errors_name_file_line_and_field(
    tmp_path: Path, entries: str, message: str
) -> None:
    p = tmp_path / "district.yaml"
    p.write_text("addresses:\n" + entries)
    with pytest.raises(ConfigError) as ei:
        load_static_map(p, people=PEOPLE, by_username=BY_USERNAME, devices=DEVICES)
    assert str(ei.value).startswith(f"{p}:{message}"), str(ei.value)


def test_static_map_without_lookups_defers_the_person_check(tmp_path: Path) -> None:
    p = tmp_path / "district.yaml"
    p.write_text("addresses:\n  - cidr: 127.0.0.5\n    person: s-9999\n")
    m = load_static_map(p)  # no roster given: not checked here …
    with pytest.raises(ValueError, match=rf"{p}:2: entry '127.0.0.5/32': field 'person'"):
        resolver(static=m)  # … but the resolver refuses it


def test_parse_static_map_from_plain_data() -> None:
    m = parse_static_map([{"cidr": "127.0.0.0/8", "network": "lab"}], "inline")
    assert m.routes[0].name == "lab" and m.routes[0].line == 0
    assert parse_static_map(None, "inline") == StaticMap(path="inline")


# -- end to end from files ----------------------------------------------------------------


def test_resolver_built_from_real_files(tmp_path: Path) -> None:
    inv = tmp_path / "devices.csv"
    inv.write_text(
        "deviceId,macAddress,assignedUser,school,kind\n"
        "cb-0012,02-00-00-00-00-12,test.student12,sch-01,chromebook\n"
        "cart-07,0200.0000.0007,,sch-01,chromebook\n"
    )
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text(
        f"{int(LATER)} 02:00:00:00:00:12 127.0.0.40 cb-0012 *\n"
        f"{int(NOW) - 5} 02:00:00:00:00:07 127.0.0.41 cart-07 *\n"
    )
    static = tmp_path / "district.yaml"
    static.write_text("addresses:\n  - cidr: 127.0.0.0/24\n    network: lab\n")
    devices = read_inventory(inv).devices
    r = IdentityResolver(
        people=PEOPLE,
        by_username=BY_USERNAME,
        devices=devices,
        leases=[read_dnsmasq_leases(leases, now=NOW)],
        static=load_static_map(static, people=PEOPLE, by_username=BY_USERNAME, devices=devices),
        order=["proxy_auth", "dhcp", "static"],
        clock=lambda: NOW,
    )
    assert who(r.resolve("::ffff:127.0.0.40")) == ("s-0012", "cb-0012", "dhcp", None)
    assert who(r.resolve("127.0.0.41")) == (None, None, "static", "lab")  # lease expired
    assert who(r.resolve("127.0.0.40", "Test.Teacher1")) == ("t-0001", None, "proxy_auth", None)


def test_an_empty_resolver_knows_nobody() -> None:
    r = IdentityResolver(people={}, by_username={})
    assert r.resolve("127.0.0.11", "test.student11") is UNKNOWN
    assert r.order == ("proxy_auth", "static", "dhcp") and r.warnings == ()
