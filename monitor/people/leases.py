"""DHCP lease files → the leases active at a given moment: address → Lease(mac, expires).

Three servers' files are read (IPv4 always; IPv6 where the file carries a MAC address):

- ISC dhcpd ``dhcpd.leases``: ``lease ADDRESS { … }`` blocks. ``ends`` (``W YYYY/MM/DD HH:MM:SS``
  in UTC, ``epoch N``, or ``never``) and ``hardware ethernet`` are read; ``starts`` is checked
  but not used, so clock skew between the DHCP server and the gateway cannot hide a fresh lease.
  The last block for an address wins (dhcpd appends every change). A lease is active when its
  ``binding state`` is ``active`` (with no ``binding state`` line, when ``ends`` is in the future,
  as dhcpd itself decides) and ``ends`` is after ``now``. DHCPv6 ``ia-na``/``ia-ta``/``ia-pd``
  blocks carry no MAC address and are skipped, as are host, class, failover and other blocks.
- dnsmasq ``dnsmasq.leases``: ``EXPIRY MAC ADDRESS HOSTNAME CLIENT-ID`` per line, expiry in
  seconds since the epoch, ``0`` for an infinite lease. Non-Ethernet hardware (dnsmasq writes a
  ``TT-`` type prefix) is skipped. The DHCPv6 part after the ``duid`` line carries an IAID, not a
  MAC address, and is checked but skipped.
- Kea memfile CSV (``kea-leases4.csv``: ``address,hwaddr,client_id,valid_lifetime,expire,
  subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id``; older schema versions with
  fewer columns and ``kea-leases6.csv`` too). Columns are found by name. A row is active when
  ``state`` is 0 (default) and ``expire`` is after ``now`` (``valid_lifetime`` 4294967295 is
  infinite). Later rows win; pass Kea's files oldest first (``.1``, ``.2``, then the current file)
  so that releases recorded later override older grants. IPv6 prefix delegations and rows with
  an empty or non-Ethernet ``hwaddr`` are skipped.

A malformed lease rejects the whole file with one :class:`LeaseFileError` listing every problem as
``file:line: field 'x': message``. A half-read lease file would attribute addresses to the wrong
people, so the caller keeps the tables it had (a file caught mid-write by the DHCP server fails
with "unterminated block" and is read again on the next reload).
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple

from monitor.people.devices import normalise_mac
from monitor.yamlfile import RejectedFileError, read_regular_file, shorten

LeaseFormat = Literal["dhcpd", "dnsmasq", "kea"]
LEASE_FORMATS: tuple[LeaseFormat, ...] = ("dhcpd", "dnsmasq", "kea")
KEA_INFINITE = 0xFFFFFFFF  # Kea's "infinite" valid lifetime


class Lease(NamedTuple):
    """A lease active at the time the file was read."""

    mac: str  # lowercase aa:bb:cc:dd:ee:ff
    expires: int | None  # seconds since the epoch; None: never


LeaseTable = dict[str, Lease]  # canonical address text (ipaddress' str()) → lease


class LeaseFileError(RejectedFileError):
    """A lease file is malformed; ``problems`` lists every ``file:line: …`` message."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        super().__init__(path, "lease file", problems)


def epoch_of(now: float | datetime) -> float:
    """Seconds since the epoch for ``now`` (a timezone-aware datetime or a number)."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime")
        return now.timestamp()
    return float(now)


def read_leases(
    fmt: LeaseFormat, paths: str | Path | Sequence[str | Path], *, now: float | datetime
) -> LeaseTable:
    """Read lease files of one format (``dhcpd``, ``dnsmasq`` or ``kea``), oldest file first."""
    if fmt == "dhcpd":
        reader = read_dhcpd_leases
    elif fmt == "dnsmasq":
        reader = read_dnsmasq_leases
    elif fmt == "kea":
        reader = read_kea_leases
    else:
        raise ValueError(f"unknown lease file format '{fmt}' (one of {', '.join(LEASE_FORMATS)})")
    return reader(paths, now=now)


# -- shared -------------------------------------------------------------------------------


@dataclass
class _Collector:
    """Problems, and the last record per address of one file."""

    path: str
    problems: list[str] = field(default_factory=list)
    # address → (mac, or None when the hardware is not Ethernet; expires; state is active)
    last: dict[str, tuple[str | None, int | None, bool]] = field(default_factory=dict)

    def problem(self, line: int, fld: str, message: str) -> None:
        where = f"field '{fld}': " if fld else ""
        self.problems.append(f"{self.path}:{line}: {where}{message}")


def _paths(paths: str | Path | Sequence[str | Path]) -> list[str]:
    if isinstance(paths, str | Path):
        return [str(paths)]
    return [str(p) for p in paths]


def _read_text(path: str) -> str:
    try:
        raw = read_regular_file(path)
    except OSError as e:
        raise LeaseFileError(path, [f"{path}: cannot read file: {e.strerror or e}"]) from e
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LeaseFileError(path, [f"{path}: not UTF-8 text (byte {e.start})"]) from e


def _address(text: str) -> str:
    """Canonical text of an IPv4 or IPv6 host address; ValueError otherwise."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"'{shorten(text)}' is not an IP address") from None


def _read_all(
    paths: str | Path | Sequence[str | Path], now: float | datetime, parser: type[_Parser]
) -> LeaseTable:
    t = epoch_of(now)
    last: dict[str, tuple[str | None, int | None, bool]] = {}
    for path in _paths(paths):
        c = _Collector(path)
        parser(c).parse(_read_text(path))
        if c.problems:
            raise LeaseFileError(path, c.problems)
        last.update(c.last)  # a later file's record for an address replaces an earlier one
    return {
        addr: Lease(mac, expires)
        for addr, (mac, expires, active) in last.items()
        if active and mac is not None and (expires is None or expires > t)
    }


class _Parser:
    def __init__(self, c: _Collector) -> None:
        self.c = c

    def parse(self, text: str) -> None:
        raise NotImplementedError


# -- ISC dhcpd ----------------------------------------------------------------------------


class _Stmt(NamedTuple):
    words: list[str]
    block: list[_Stmt] | None  # None: a simple statement ending in ';'
    line: int


class _DhcpdSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message


# One findall over the whole file (C speed): strings, punctuation and newlines, words,
# comments, and a lone '"' that can only be an unterminated string.
_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[{};\n]|[^\s{};"#]+|#[^\n]*|"')


def _statements(text: str) -> list[_Stmt]:
    """The statement tree of a dhcpd lease file (the grammar of dhcpd.conf, no semantics)."""
    top: list[_Stmt] = []
    cur = top
    stack: list[list[_Stmt]] = []
    words: list[str] = []
    first = 0  # line of words[0]
    line = 1
    for tok in _TOKEN.findall(text):
        c = tok[0]
        if c == "\n":
            line += 1
            continue
        if c == ";":
            if words:
                cur.append(_Stmt(words, None, first))
                words = []
            continue
        if c == "{":
            block: list[_Stmt] = []
            cur.append(_Stmt(words, block, first if words else line))
            words = []
            stack.append(cur)
            cur = block
            continue
        if c == "}":
            if not stack:
                raise _DhcpdSyntaxError(line, "'}' without a block to close")
            if words:
                raise _DhcpdSyntaxError(first, "statement is missing its ';'")
            cur = stack.pop()
            continue
        if c == "#":
            continue
        if c == '"':
            if len(tok) == 1:
                raise _DhcpdSyntaxError(line, "unterminated string")
            tok = tok[1:-1]
        if not words:
            first = line
        words.append(tok)
    if stack:
        raise _DhcpdSyntaxError(line, "unterminated block (missing '}'): the file may be mid-write")
    if words:
        raise _DhcpdSyntaxError(first, "statement is missing its ';'")
    return top


_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_TIME = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})")


def _dhcpd_time(args: list[str]) -> int | None:
    """``W YYYY/MM/DD HH:MM:SS`` (UTC), ``epoch N`` or ``never``; ValueError if malformed."""
    if args == ["never"]:
        return None
    if len(args) == 2 and args[0] == "epoch":
        if not args[1].isdigit():
            raise ValueError(f"'{shorten(args[1])}' is not a number of seconds")
        return int(args[1])
    if len(args) == 3 and args[0].isdigit() and int(args[0]) <= 6:
        d, t = _DATE.fullmatch(args[1]), _TIME.fullmatch(args[2])
        if d and t:
            y, mo, dd, h, mi, sec = (int(x) for x in d.groups() + t.groups())
            try:
                datetime(y, mo, dd, h, mi, sec)  # validates month, day, hour …
            except ValueError as e:
                raise ValueError(f"'{args[1]} {args[2]}': {e}") from None
            return calendar.timegm((y, mo, dd, h, mi, sec, 0, 0, 0))
    shown = shorten(" ".join(args))
    raise ValueError(
        f"'{shown}' is not a time (expected 'W YYYY/MM/DD HH:MM:SS', 'epoch N' or 'never')"
    )


class _DhcpdParser(_Parser):
    def parse(self, text: str) -> None:
        try:
            stmts = _statements(text)
        except _DhcpdSyntaxError as e:
            self.c.problem(e.line, "", e.message)
            return
        for st in stmts:
            # everything but leases (server-duid, failover, host, class, ia-na …) has no MAC
            if st.words and st.words[0] == "lease":
                self._lease(st)

    def _lease(self, st: _Stmt) -> None:
        c = self.c
        if len(st.words) != 2 or st.block is None:
            c.problem(st.line, "lease", "expected 'lease ADDRESS { … }'")
            return
        try:
            addr = _address(st.words[1])
        except ValueError as e:
            c.problem(st.line, "lease", str(e))
            return
        ok = True
        ends: int | None = None
        seen_ends = False
        state: str | None = None
        mac: str | None = None
        for s in st.block:
            if not s.words:
                continue
            key, args = s.words[0], s.words[1:]
            if key in ("starts", "ends") and s.block is None:
                try:
                    value = _dhcpd_time(args)
                except ValueError as e:
                    c.problem(s.line, key, str(e))
                    ok = False
                    continue
                if key == "ends":
                    ends, seen_ends = value, True
            elif key == "binding" and s.block is None:
                if len(args) != 2 or args[0] != "state":
                    c.problem(s.line, "binding state", "expected 'binding state STATE;'")
                    ok = False
                else:
                    state = args[1]
            elif key == "hardware" and s.block is None:
                if len(args) != 2:
                    c.problem(s.line, "hardware", "expected 'hardware TYPE ADDRESS;'")
                    ok = False
                elif args[0] == "ethernet":
                    try:
                        mac = normalise_mac(args[1])
                    except ValueError as e:
                        c.problem(s.line, "hardware", str(e))
                        ok = False
                else:
                    mac = None  # token-ring, fddi, infiniband: not in a MAC inventory
        if not seen_ends and ok:
            c.problem(st.line, "ends", f"lease {addr} has no 'ends' line")
            ok = False
        if ok:
            # with no binding state, dhcpd itself counts the lease active until it ends
            c.last[addr] = (mac, ends, state is None or state == "active")


def read_dhcpd_leases(
    paths: str | Path | Sequence[str | Path], *, now: float | datetime
) -> LeaseTable:
    """Active leases in ISC dhcpd lease files (the last block per address wins)."""
    return _read_all(paths, now, _DhcpdParser)


# -- dnsmasq ------------------------------------------------------------------------------


_HWTYPE = re.compile(r"[0-9a-fA-F]{2}")


class _DnsmasqParser(_Parser):
    def parse(self, text: str) -> None:
        c = self.c
        v6 = False
        for n, raw in enumerate(text.split("\n"), 1):
            fields = raw.split()
            if not fields:
                continue
            if fields[0] == "duid":
                if len(fields) != 2:
                    c.problem(n, "duid", "expected 'duid SERVER-DUID'")
                v6 = True
                continue
            if len(fields) != 5:
                c.problem(
                    n,
                    "",
                    f"expected 5 fields (expiry mac address hostname client-id), got {len(fields)}",
                )
                continue
            expiry_s, hw, addr_s = fields[0], fields[1], fields[2]
            if not expiry_s.isdigit():
                c.problem(n, "expiry", f"'{shorten(expiry_s)}' is not a number of seconds")
                continue
            expires = int(expiry_s) or None  # 0: infinite
            try:
                ip = ipaddress.ip_address(addr_s)
            except ValueError:
                c.problem(n, "address", f"'{shorten(addr_s)}' is not an IP address")
                continue
            if v6:
                if ip.version != 6:
                    c.problem(n, "address", f"'{addr_s}' is not an IPv6 address (after 'duid')")
                elif not hw.removeprefix("T").isdigit():
                    c.problem(n, "iaid", f"'{shorten(hw)}' is not an IAID")
                continue  # an IAID, not a MAC address: nothing to match a device with
            if ip.version != 4:
                c.problem(n, "address", f"'{addr_s}' is not an IPv4 address (before 'duid')")
                continue
            mac: str | None
            if ("-" in hw and ":" in hw) or hw.endswith("-"):
                # dnsmasq prefixes non-Ethernet hardware with its ARP type
                if not _HWTYPE.fullmatch(hw.partition("-")[0]):
                    c.problem(n, "mac", f"'{shorten(hw)}' is not a hardware address")
                    continue
                mac = None
            else:
                try:
                    mac = normalise_mac(hw)
                except ValueError as e:
                    c.problem(n, "mac", str(e))
                    continue
            c.last[str(ip)] = (mac, expires, True)


def read_dnsmasq_leases(
    paths: str | Path | Sequence[str | Path], *, now: float | datetime
) -> LeaseTable:
    """Active IPv4 leases in dnsmasq lease files (expiry 0 is an infinite lease)."""
    return _read_all(paths, now, _DnsmasqParser)


# -- Kea memfile CSV ----------------------------------------------------------------------

_KEA_REQUIRED = ("address", "hwaddr", "valid_lifetime", "expire")
_HWOCTET = re.compile(r"[0-9a-fA-F]{1,2}")


class _KeaParser(_Parser):
    def parse(self, text: str) -> None:
        c = self.c
        lines = text.split("\n")
        header: dict[str, int] | None = None
        width = 0
        for n, raw in enumerate(lines, 1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            cells = line.split(",")  # Kea escapes commas inside values as &#x2c
            if header is None:
                names = [x.strip() for x in cells]
                header = {name: i for i, name in enumerate(names)}
                width = len(names)
                missing = [k for k in _KEA_REQUIRED if k not in header]
                if missing or len(header) != width:
                    what = ", ".join(missing) if missing else "a column twice"
                    c.problem(n, "header", f"not a Kea lease file header (missing {what})")
                    return
                continue
            if len(cells) != width:
                c.problem(n, "", f"row has {len(cells)} columns, the header has {width}")
                continue
            self._row(n, cells, header)

    def _row(self, n: int, cells: list[str], header: dict[str, int]) -> None:
        c = self.c

        def number(name: str, default: int | None = None) -> int | None:
            i = header.get(name)
            if i is None and default is not None:
                return default  # a column of a later schema version than the file's
            text = cells[i].strip() if i is not None else ""
            if not text.isdigit():
                c.problem(n, name, f"'{shorten(text)}' is not a non-negative integer")
                return None
            return int(text)

        try:
            addr = _address(cells[header["address"]].strip())
        except ValueError as e:
            c.problem(n, "address", str(e))
            return
        valid = number("valid_lifetime")
        expire = number("expire")
        state = number("state", 0)
        lease_type = number("lease_type", 0)  # DHCPv6 only: 0 NA, 1 TA, 2 PD
        if valid is None or expire is None or state is None or lease_type is None:
            return
        hw = cells[header["hwaddr"]].strip()
        mac: str | None = None
        if hw:
            octets = hw.split(":")
            if not all(_HWOCTET.fullmatch(o) for o in octets):
                c.problem(n, "hwaddr", f"'{shorten(hw)}' is not a hardware address")
                return
            if len(octets) == 6:
                mac = normalise_mac(hw)
        elif state == 0 and "duid" not in header:
            # Kea itself refuses this: only declined DHCPv4 leases may have a blank hwaddr
            c.problem(n, "hwaddr", "empty hardware address in an active lease")
            return
        if lease_type == 2:
            return  # a delegated IPv6 prefix, not a host address
        expires = None if valid == KEA_INFINITE else expire
        c.last[addr] = (mac, expires, state == 0)


def read_kea_leases(
    paths: str | Path | Sequence[str | Path], *, now: float | datetime
) -> LeaseTable:
    """Active leases in Kea memfile CSV files, read in the order given (oldest first)."""
    return _read_all(paths, now, _KeaParser)
