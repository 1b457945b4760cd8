"""Who is behind a request: proxy authentication, static address maps, or DHCP lease → device →
assigned user.

An :class:`IdentityResolver` is built once from the roster lookups, the device inventory, the
lease tables and the static address map, with every lookup precomputed, so that ``resolve()``
costs a few dict lookups. It is immutable: a reload builds a new resolver and swaps the
reference (one attribute assignment, atomic for the event loop).

Sources, tried in a configurable order (default ``proxy_auth``, ``static``, ``dhcp``); the first
that answers gives the whole :class:`~monitor.model.Identity`:

- ``proxy_auth``: the username from Proxy-Authorization (regular proxy mode), matched without
  regard to case against roster usernames. An unknown username does not answer.
- ``static``: the longest address map entry containing the address. It answers with a person,
  a device (and its assigned user) or a named network with no person (``guest``).
- ``dhcp``: an active lease for the address whose MAC address is in the device inventory; it
  answers with the device and its assigned user (None for shared devices). A lease that ended
  after the tables were read no longer answers: the address may already be someone else's.

Nothing answering gives ``Identity(None, None, "unknown")``, as does an address that cannot be
parsed (the proxy must not fall over on a Unix socket peer or garbage).

Static address map (YAML, e.g. a section of the district configuration file)::

    addresses:
      - cidr: 127.0.0.11/32        # an address or a CIDR block (no host bits set)
        person: s-0011             # a roster sourcedId or username
      - cidr: 127.0.1.0/24
        device: cart-07            # a deviceId from the inventory
      - cidr: 10.20.0.0/16
        network: guest             # a named network with no person
        note: visitors' Wi-Fi      # free text, ignored

Each entry names exactly one of ``person``, ``device`` or ``network``; the same block twice is an
error. Errors read ``file:line: entry 'CIDR': field 'x': message``.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from socket import AF_INET, AF_INET6, inet_pton
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from monitor.model import Device, Identity, Person
from monitor.people.leases import Lease
from monitor.yamlfile import ConfigError, LineDict, LineList, load_yaml, shorten, validate

SOURCES = ("proxy_auth", "static", "dhcp")
DEFAULT_ORDER: tuple[str, ...] = ("proxy_auth", "static", "dhcp")
UNKNOWN = Identity(person=None, device=None, source="unknown")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_V6 = 1 << 128  # added to IPv6 keys so that one dict holds both families
_MAPPED = b"\x00" * 10 + b"\xff\xff"  # ::ffff:0:0/96, IPv4-mapped IPv6 addresses
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


# -- static address map -------------------------------------------------------------------


def _network(text: str) -> IPNetwork:
    """Parse an address or CIDR block; IPv4-mapped IPv6 blocks become IPv4 blocks."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as e:
        # ipaddress explains host bits and bad prefixes; its "does not appear" adds nothing
        why = "" if "does not appear" in str(e) else f": {e}"
        raise ValueError(f"'{shorten(text)}' is not an address or CIDR block{why}") from None
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


class StaticEntryModel(BaseModel):
    """One entry of a static address map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cidr: str
    person: str | None = None
    device: str | None = None
    network: str | None = None
    note: str = ""

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        return str(_network(v))

    @field_validator("person", "device")
    @classmethod
    def _ref(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be empty")
        return v.strip() if v is not None else None

    @field_validator("network")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME_RE.match(v):
            raise ValueError("network names are 1-40 characters of a-z, 0-9, '-' and '_'")
        return v


@dataclass(frozen=True, slots=True)
class StaticRoute:
    """A validated static map entry: ``network`` → person, device or a named network."""

    network: IPNetwork
    person: str | None = None  # a sourcedId or username, as written
    device: str | None = None  # a deviceId
    name: str | None = None  # a named network with no person
    path: str = ""
    line: int = 0

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}: entry '{self.network}'"


@dataclass(frozen=True, slots=True)
class StaticMap:
    routes: tuple[StaticRoute, ...] = ()
    path: str = ""

    def __len__(self) -> int:
        return len(self.routes)


def find_person(
    ref: str, people: Mapping[str, Person], by_username: Mapping[str, Person]
) -> Person | None:
    """The person a reference names: a sourcedId, else a username (any case)."""
    return people.get(ref) or by_username.get(ref.lower())


def parse_static_map(
    data: Any,
    path: str | Path,
    *,
    root: Any = None,
    base_loc: Sequence[str | int] = (),
    people: Mapping[str, Person] | None = None,
    by_username: Mapping[str, Person] | None = None,
    devices: Iterable[Device] | None = None,
) -> StaticMap:
    """Validate a list of static map entries (from ``load_yaml``), raising ConfigError.

    ``root``/``base_loc`` locate the list inside a larger document for line numbers. People
    and devices are checked when their lookups are given.
    """
    spath = str(path)
    root = data if root is None else root
    if data is None:
        return StaticMap(path=spath)
    if not isinstance(data, list):
        line = getattr(data, "line", None)
        raise ConfigError(spath, line, "", "the address map must be a list of entries")
    lines = data.item_lines if isinstance(data, LineList) else [0] * len(data)
    device_ids = None if devices is None else {d.device_id for d in devices}
    seen: dict[str, int] = {}
    routes: list[StaticRoute] = []
    for i, entry in enumerate(data):
        loc = (*base_loc, i)
        where = (
            f"entry '{shorten(entry['cidr'])}'"
            if isinstance(entry, dict) and isinstance(entry.get("cidr"), str)
            else f"entry [{i}]"
        )
        if not isinstance(entry, dict):
            raise ConfigError(spath, lines[i] or None, where, "each entry must be a mapping")
        m = validate(StaticEntryModel, entry, spath, where=where, base_loc=loc, root=root)
        key_lines: dict[str, int] = getattr(entry, "key_lines", {})
        entry_line = lines[i] or None
        given = [k for k in ("person", "device", "network") if getattr(m, k) is not None]
        if not given:
            raise ConfigError(
                spath, entry_line, where, "give one of 'person', 'device' or 'network'"
            )
        if len(given) > 1:
            raise ConfigError(
                spath,
                key_lines.get(given[1], entry_line),
                f"{where}: field '{given[1]}'",
                f"give only one of 'person', 'device' or 'network' (this entry also has "
                f"'{given[0]}')",
            )
        if m.cidr in seen:
            raise ConfigError(
                spath,
                key_lines.get("cidr", entry_line),
                f"{where}: field 'cidr'",
                f"{m.cidr} is already mapped at line {seen[m.cidr]}",
            )
        seen[m.cidr] = lines[i]
        if m.person is not None and (people is not None or by_username is not None):
            if find_person(m.person, people or {}, by_username or {}) is None:
                raise ConfigError(
                    spath,
                    key_lines.get("person", entry_line),
                    f"{where}: field 'person'",
                    f"'{shorten(m.person)}' is not a sourcedId or username in the roster",
                )
        if m.device is not None and device_ids is not None and m.device not in device_ids:
            raise ConfigError(
                spath,
                key_lines.get("device", entry_line),
                f"{where}: field 'device'",
                f"'{shorten(m.device)}' is not a deviceId in the device inventory",
            )
        routes.append(
            StaticRoute(
                network=_network(m.cidr),
                person=m.person,
                device=m.device,
                name=m.network,
                path=spath,
                line=lines[i],
            )
        )
    return StaticMap(routes=tuple(routes), path=spath)


def load_static_map(
    path: str | Path,
    *,
    key: str = "addresses",
    people: Mapping[str, Person] | None = None,
    by_username: Mapping[str, Person] | None = None,
    devices: Iterable[Device] | None = None,
) -> StaticMap:
    """Load the ``key`` section of a YAML file (or a file that is just the list)."""
    spath = str(path)
    raw = load_yaml(spath)
    if raw is None:
        return StaticMap(path=spath)
    if isinstance(raw, LineList):
        return parse_static_map(raw, spath, people=people, by_username=by_username, devices=devices)
    if not isinstance(raw, LineDict):
        raise ConfigError(spath, getattr(raw, "line", 1), "", f"expected a mapping with '{key}'")
    return parse_static_map(
        raw.get(key),
        spath,
        root=raw,
        base_loc=(key,),
        people=people,
        by_username=by_username,
        devices=devices,
    )


# -- addresses ----------------------------------------------------------------------------


def address_key(address: str) -> int | None:
    """An int key for a client address: IPv4 as is, IPv6 plus 2**128; None if unparseable.

    IPv4-mapped IPv6 (``::ffff:127.0.0.11``) becomes the IPv4 address; a ``%zone`` and
    brackets are dropped.
    """
    try:
        if ":" not in address:
            return int.from_bytes(inet_pton(AF_INET, address))
        if "%" in address:
            address = address.partition("%")[0]
        if address.startswith("["):
            address = address.strip("[]")
        raw = inet_pton(AF_INET6, address)
    except (OSError, ValueError):
        return None
    if raw[:12] == _MAPPED:
        return int.from_bytes(raw[12:])
    return int.from_bytes(raw) | _V6


def _key_of(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped
        return int(mapped) if mapped is not None else int(addr) | _V6
    return int(addr)


# -- resolver -----------------------------------------------------------------------------

_Table = tuple[tuple[int, dict[int, Identity]], ...]  # (shift, prefix → identity), longest first
_Source = Callable[["IdentityResolver", int | None, str | None], Identity | None]


class IdentityResolver:
    """Immutable address/username → Identity lookup; see the module docstring."""

    __slots__ = (
        "_chain",
        "_chain_anon",
        "_clock",
        "_dhcp",
        "_order",
        "_static4",
        "_static6",
        "_stats",
        "_users",
        "_warnings",
    )

    _chain: tuple[_Source, ...]
    _chain_anon: tuple[_Source, ...]  # without proxy_auth, for requests with no proxy user
    _clock: Callable[[], float]
    _dhcp: dict[int, tuple[Identity, float]]
    _order: tuple[str, ...]
    _static4: _Table
    _static6: _Table
    _stats: dict[str, int]
    _users: dict[str, Identity]
    _warnings: tuple[str, ...]

    def __init__(
        self,
        *,
        people: Mapping[str, Person],
        by_username: Mapping[str, Person],
        devices: Iterable[Device] = (),
        leases: Iterable[Mapping[str, Lease]] = (),
        static: StaticMap | Iterable[StaticRoute] = (),
        order: Sequence[str] = DEFAULT_ORDER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Precompute every lookup; raise ValueError for a bad order, duplicate devices or a
        static entry naming an unknown person or device.

        ``leases`` are merged in the order given (a later table's lease for an address wins).
        Devices whose assigned user is not in the roster stay, with no user, and are listed
        in ``warnings``.
        """
        order_t = tuple(order)
        unknown = [s for s in order_t if s not in SOURCES]
        if unknown or not order_t or len(set(order_t)) != len(order_t):
            raise ValueError(
                f"identity source order {list(order_t)} is invalid: name each of "
                f"{', '.join(SOURCES)} at most once, at least one"
            )
        warnings: list[str] = []
        stats: dict[str, int] = {}
        set_ = object.__setattr__

        users = {
            name.lower(): Identity(person=p, device=None, source="proxy_auth")
            for name, p in by_username.items()
        }

        by_id, by_mac, owner = _devices(devices, people, by_username, warnings)
        stats["devices"] = len(by_id)
        stats["devices_without_user"] = sum(1 for d in by_id.values() if d.user is None)

        merged: dict[int, Lease] = {}
        for table in leases:
            for addr, lease in table.items():
                merged[_key_of(ipaddress.ip_address(addr))] = lease
        dhcp: dict[int, tuple[Identity, float]] = {}
        for k, lease in merged.items():
            device = by_mac.get(lease.mac)
            if device is None:
                continue  # not a district device (BYOD, guests): counted, not warned
            ident = Identity(person=owner.get(device.device_id), device=device, source="dhcp")
            dhcp[k] = (ident, math.inf if lease.expires is None else float(lease.expires))
        stats["leases"] = len(merged)
        stats["leases_unknown_mac"] = len(merged) - len(dhcp)

        routes = static.routes if isinstance(static, StaticMap) else tuple(static)
        levels4: dict[int, dict[int, Identity]] = {}
        levels6: dict[int, dict[int, Identity]] = {}
        for r in routes:
            ident = _static_identity(r, people, by_username, by_id, owner)
            net = r.network
            bits = net.max_prefixlen
            levels = levels4 if bits == 32 else levels6
            level = levels.setdefault(bits - net.prefixlen, {})
            prefix = int(net.network_address) >> (bits - net.prefixlen)
            if prefix in level:
                raise ValueError(f"{r.where}: field 'cidr': {net} is mapped twice")
            level[prefix] = ident
        stats["static_entries"] = len(routes)

        set_(self, "_order", order_t)
        set_(self, "_clock", clock)
        set_(self, "_users", users)
        set_(self, "_dhcp", dhcp)
        set_(self, "_static4", tuple(sorted(levels4.items())))
        set_(self, "_static6", tuple(sorted(levels6.items())))
        set_(self, "_warnings", tuple(warnings))
        set_(self, "_stats", stats)
        # plain functions, not bound methods: no reference cycle keeps an old resolver alive
        fns = {"proxy_auth": _proxy_auth, "static": _static, "dhcp": _from_dhcp}
        # sources with nothing in them are left out: each call saved is ~100 ns per request
        empty = {"proxy_auth": not users, "static": not routes, "dhcp": not dhcp}
        chain = tuple(fns[s] for s in order_t if not empty[s])
        set_(self, "_chain", chain)
        set_(self, "_chain_anon", tuple(f for f in chain if f is not _proxy_auth))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("IdentityResolver is immutable: build a new one to reload")

    @property
    def order(self) -> tuple[str, ...]:
        return self._order

    @property
    def warnings(self) -> tuple[str, ...]:
        """Problems that did not stop the build (unknown assigned users)."""
        return self._warnings

    @property
    def stats(self) -> dict[str, int]:
        """Counts for logs: devices, leases, leases of unknown devices, static entries."""
        return dict(self._stats)

    def resolve(self, client_address: str, proxy_user: str | None = None) -> Identity:
        """Who is behind ``client_address`` (and the proxy-authenticated user, if any)."""
        key = address_key(client_address)
        for source in self._chain if proxy_user else self._chain_anon:
            hit = source(self, key, proxy_user)
            if hit is not None:
                return hit
        return UNKNOWN


def _proxy_auth(r: IdentityResolver, key: int | None, user: str | None) -> Identity | None:
    return r._users.get(user.lower()) if user else None


def _static(r: IdentityResolver, key: int | None, user: str | None) -> Identity | None:
    if key is None:
        return None
    if key < _V6:
        levels = r._static4
    else:
        levels, key = r._static6, key ^ _V6
    for shift, level in levels:  # shortest shift = longest prefix first
        hit = level.get(key >> shift)
        if hit is not None:
            return hit
    return None


def _from_dhcp(r: IdentityResolver, key: int | None, user: str | None) -> Identity | None:
    if key is None:
        return None
    hit = r._dhcp.get(key)
    if hit is None or hit[1] <= r._clock():
        return None
    return hit[0]


def _devices(
    devices: Iterable[Device],
    people: Mapping[str, Person],
    by_username: Mapping[str, Person],
    warnings: list[str],
) -> tuple[dict[str, Device], dict[str, Device], dict[str, Person]]:
    """Devices by id and by MAC, with ``user`` resolved to a sourcedId, and their owners."""
    by_id: dict[str, Device] = {}
    by_mac: dict[str, Device] = {}
    owner: dict[str, Person] = {}
    for d in devices:
        if d.device_id in by_id:
            raise ValueError(f"device '{shorten(d.device_id)}' appears twice in the inventory")
        person = find_person(d.user, people, by_username) if d.user else None
        if d.user and person is None:
            warnings.append(
                f"device '{shorten(d.device_id)}': assigned user '{shorten(d.user)}' is not in "
                "the roster; "
                "the device is kept with no user"
            )
        resolved = replace(d, user=person.sourced_id if person else None)
        by_id[d.device_id] = resolved
        if person is not None:
            owner[d.device_id] = person
        if d.mac is not None:
            if d.mac in by_mac:
                raise ValueError(
                    f"MAC address {d.mac} belongs to devices "
                    f"'{shorten(by_mac[d.mac].device_id)}' and '{shorten(d.device_id)}'"
                )
            by_mac[d.mac] = resolved
    return by_id, by_mac, owner


def _static_identity(
    r: StaticRoute,
    people: Mapping[str, Person],
    by_username: Mapping[str, Person],
    by_id: Mapping[str, Device],
    owner: Mapping[str, Person],
) -> Identity:
    if r.person is not None:
        person = find_person(r.person, people, by_username)
        if person is None:
            raise ValueError(
                f"{r.where}: field 'person': '{shorten(r.person)}' is not a sourcedId or username "
                "in the roster"
            )
        return Identity(person=person, device=None, source="static")
    if r.device is not None:
        device = by_id.get(r.device)
        if device is None:
            raise ValueError(
                f"{r.where}: field 'device': '{shorten(r.device)}' is not a deviceId in the "
                "device inventory"
            )
        return Identity(person=owner.get(r.device), device=device, source="static")
    return Identity(person=None, device=None, source="static", network=r.name)
