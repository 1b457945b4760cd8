from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.people.leases import (
    LEASE_FORMATS,
    Lease,
    LeaseFileError,
    LeaseFormat,
    read_dhcpd_leases,
    read_dnsmasq_leases,
    read_kea_leases,
    read_leases,
)

NOW = 1709640000  # 2024-03-05 12:00:00 UTC
IN_1H = 1709643600
AT_20H = 1709668800  # 2024-03-05 20:00:00 UTC


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# -- ISC dhcpd ----------------------------------------------------------------------------

DHCPD = r"""# The format of this file is documented in the dhcpd.leases(5) manual page.
# This lease file was written by isc-dhcp-4.4.3-P1

# authoring-byte-order entry is generated, DO NOT DELETE
authoring-byte-order little-endian;

server-duid "\000\001\000\001,\256\0071RT\000\022\064V";

failover peer "dhcp-failover" state {
  my state normal at 2 2024/03/05 06:00:00;
  partner state normal at 2 2024/03/05 06:00:01;
}

lease 192.0.2.10 {
  starts 2 2024/03/05 08:00:00;
  ends 2 2024/03/05 20:00:00;
  cltt 2 2024/03/05 08:00:00;
  binding state active;
  next binding state free;
  rewind binding state free;
  hardware ethernet aa:bb:cc:00:00:01;
  uid "\001\252\273\314\000\000\001";
  set vendor-class-identifier = "MSFT 5.0";
  client-hostname "cb-0001";
}
lease 192.0.2.11 {
  starts 2 2024/03/05 06:00:00;
  ends 2 2024/03/05 10:00:00;
  tstp 2 2024/03/05 10:00:00;
  binding state active;
  hardware ethernet aa:bb:cc:00:00:02;
}
lease 192.0.2.12 {
  starts 2 2024/03/05 08:00:00;
  ends 2 2024/03/05 20:00:00;
  binding state active;
  hardware ethernet aa:bb:cc:00:00:03;
}
lease 192.0.2.13 {
  starts 2 2024/03/05 07:00:00;
  ends 2 2024/03/05 19:00:00;
  binding state active;
  hardware ethernet aa:bb:cc:00:00:04;
}
lease 192.0.2.14 {
  starts 2 2024/03/05 08:00:00;
  ends never;
  binding state active;
  hardware ethernet AA:BB:CC:00:00:05;
}
lease 192.0.2.15 {
  starts epoch 1709625600; # Tue Mar 05 08:00:00 2024
  ends epoch 1709668800; # Tue Mar 05 20:00:00 2024
  binding state active;
  hardware ethernet aa:bb:cc:0:0:6;
}
lease 192.0.2.16 {
  starts 2 2024/03/05 08:00:00;
  ends 2 2024/03/05 20:00:00;
  binding state backup;
  hardware ethernet aa:bb:cc:00:00:07;
}
lease 192.0.2.17 {
  starts 2 2024/03/05 08:00:00;
  ends 2 2024/03/05 20:00:00;
  hardware ethernet aa:bb:cc:00:00:08;
}
lease 192.0.2.18 {
  starts 2 2024/03/05 08:00:00;
  ends 2 2024/03/05 20:00:00;
  binding state active;
  hardware infiniband 80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01;
}
lease 192.0.2.19 {
  starts 2 2024/03/05 08:00:00;
  ends 2 2024/03/05 20:00:00;
  binding state active;
  hardware ethernet aa:bb:cc:00:00:0a;
  on expiry {
    set ddns-fwd-name = "cb-0010.example.test";
    unset ddns-txt;
  }
}
host cb-static {
  dynamic;
  hardware ethernet aa:bb:cc:00:00:ff;
  fixed-address 192.0.2.200;
}
ia-na "\001\000\000\000\000\003\000\001\252\273\314\000\000\001" {
  cltt 2 2024/03/05 08:00:00;
  iaaddr 2001:db8::10 {
    binding state active;
    preferred-life 375;
    max-life 600;
    ends 2 2024/03/05 20:00:00;
  }
}
lease 192.0.2.12 {
  starts 2 2024/03/05 08:00:00;
  ends 2 2024/03/05 11:30:00;
  tstp 2 2024/03/05 11:30:00;
  binding state free;
  hardware ethernet aa:bb:cc:00:00:03;
}
lease 192.0.2.13 {
  starts 2 2024/03/05 11:00:00;
  ends 2 2024/03/05 23:00:00;
  binding state active;
  hardware ethernet aa:bb:cc:00:00:44;
}
"""


def test_dhcpd_active_leases(tmp_path: Path) -> None:
    table = read_dhcpd_leases(write(tmp_path, "dhcpd.leases", DHCPD), now=NOW)
    assert table == {
        "192.0.2.10": Lease("aa:bb:cc:00:00:01", AT_20H),
        # .11 ended at 10:00; .12 was released by a later block; .16 is a failover backup;
        # .18 is InfiniBand, not a MAC address
        "192.0.2.13": Lease("aa:bb:cc:00:00:44", AT_20H + 3 * 3600),  # the later block wins
        "192.0.2.14": Lease("aa:bb:cc:00:00:05", None),  # ends never
        "192.0.2.15": Lease("aa:bb:cc:00:00:06", AT_20H),  # db-time-format local
        "192.0.2.17": Lease("aa:bb:cc:00:00:08", AT_20H),  # no binding state: active until ends
        "192.0.2.19": Lease("aa:bb:cc:00:00:0a", AT_20H),
    }


def test_dhcpd_now_decides_what_is_active(tmp_path: Path) -> None:
    p = write(tmp_path, "dhcpd.leases", DHCPD)
    early = read_dhcpd_leases(p, now=datetime(2024, 3, 5, 9, 0, tzinfo=UTC))
    assert "192.0.2.11" in early  # not yet ended at 09:00
    late = read_dhcpd_leases(p, now=AT_20H)
    assert set(late) == {"192.0.2.13", "192.0.2.14"}  # ends is exclusive


def test_dhcpd_later_file_wins(tmp_path: Path) -> None:
    old = write(tmp_path, "dhcpd.leases~", DHCPD)
    new = write(
        tmp_path,
        "dhcpd.leases",
        "lease 192.0.2.10 {\n  starts 2 2024/03/05 11:00:00;\n  ends 2 2024/03/05 11:10:00;\n"
        "  binding state released;\n  hardware ethernet aa:bb:cc:00:00:01;\n}\n",
    )
    assert "192.0.2.10" not in read_leases("dhcpd", [old, new], now=NOW)
    assert "192.0.2.10" in read_leases("dhcpd", [new, old], now=NOW)


GOOD_LEASE = (
    "lease 192.0.2.1 {\n"
    "  starts 2 2024/03/05 08:00:00;\n"
    "  ends 2 2024/03/05 20:00:00;\n"
    "  binding state active;\n"
    "  hardware ethernet aa:bb:cc:00:00:01;\n"
    "}\n"
)


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (
            "lease 192.0.2.2 {\n  ends 2 2024/03/05 20:00:00;\n  binding state active;\n"
            "  hardware ethernet aa:bb:cc:00:00:zz;\n}\n",
            "10: field 'hardware': 'aa:bb:cc:00:00:zz' is not a MAC address",
        ),
        (
            "lease 192.0.2.2 {\n  ends 2 2024/13/05 20:00:00;\n  binding state active;\n}\n",
            "8: field 'ends': '2024/13/05 20:00:00': month must be in 1..12",
        ),
        (
            "lease 192.0.2.2 {\n  ends tomorrow;\n}\n",
            "8: field 'ends': 'tomorrow' is not a time",
        ),
        (
            "lease 192.0.2.2 {\n  starts epoch soon;\n  ends never;\n}\n",
            "8: field 'starts': 'soon' is not a number of seconds",
        ),
        (
            "lease 192.0.2.2 {\n  binding state active;\n"
            "  hardware ethernet aa:bb:cc:00:00:02;\n}\n",
            "7: field 'ends': lease 192.0.2.2 has no 'ends' line",
        ),
        (
            "lease 192.0.2.2 {\n  ends never;\n  binding active;\n}\n",
            "9: field 'binding state': expected 'binding state STATE;'",
        ),
        (
            "lease 192.0.2.2 {\n  ends never;\n  hardware ethernet;\n}\n",
            "9: field 'hardware': expected 'hardware TYPE ADDRESS;'",
        ),
        ("lease 192.0.2.300 {\n  ends never;\n}\n", "7: field 'lease': '192.0.2.300' is not an IP"),
        ("lease 192.0.2.2;\n", "7: field 'lease': expected 'lease ADDRESS { … }'"),
        (
            "lease 192.0.2.2 {\n  ends never\n  binding state active;\n}\n",
            "8: field 'ends': 'never binding state active' is not a time",  # no ';' after never
        ),
        (
            "lease 192.0.2.2 {\n  ends never;\n  abandoned\n}\n",
            "9: statement is missing its ';'",
        ),
        ("lease 192.0.2.2 {\n  ends never;\n", "9: unterminated block (missing '}')"),
        ("}\n", "7: '}' without a block to close"),
        ('lease 192.0.2.2 {\n  uid "\\001\n}\n', "8: unterminated string"),
    ],
)
def test_dhcpd_malformed_lease_rejects_the_file(tmp_path: Path, block: str, problem: str) -> None:
    p = write(tmp_path, "dhcpd.leases", GOOD_LEASE + block)
    with pytest.raises(LeaseFileError) as ei:
        read_dhcpd_leases(p, now=NOW)
    assert ei.value.problems[0].startswith(f"{p}:{problem}"), ei.value.problems


def test_dhcpd_reports_every_bad_lease(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "dhcpd.leases",
        "lease 192.0.2.1 {\n  ends never;\n  hardware ethernet zz;\n}\n"
        "lease 192.0.2.2 {\n  ends 9 2024/03/05 20:00:00;\n}\n",
    )
    with pytest.raises(LeaseFileError) as ei:
        read_dhcpd_leases(p, now=NOW)
    assert len(ei.value.problems) == 2
    assert ei.value.problems[1].startswith(f"{p}:6: field 'ends':")
    assert str(ei.value).startswith(f"{p}: lease file rejected, 2 problems:")


# -- dnsmasq ------------------------------------------------------------------------------

DNSMASQ = f"""{AT_20H} aa:bb:cc:00:00:01 192.0.2.10 cb-0001 01:aa:bb:cc:00:00:01
{NOW - 60} aa:bb:cc:00:00:02 192.0.2.11 cb-0002 *
0 aa:bb:cc:00:00:03 192.0.2.12 * *
{AT_20H} 20-80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01 192.0.2.13 * *
{AT_20H} 00- 192.0.2.14 * ff:00:00:00:01
{IN_1H} aa:bb:cc:00:00:06 192.0.2.15 lt-0006 *
{AT_20H} aa:bb:cc:00:00:66 192.0.2.15 lt-0066 *
duid 00:01:00:01:2c:ae:07:31:52:54:00:12:34:56
{AT_20H} 12345 2001:db8::10 cb-0001 00:01:00:01:2c:ae:07:31:aa:bb:cc:00:00:01
{AT_20H} T678 2001:db8::11 * 00:03:00:01:aa:bb:cc:00:00:01
"""


def test_dnsmasq_active_leases(tmp_path: Path) -> None:
    table = read_dnsmasq_leases(write(tmp_path, "dnsmasq.leases", DNSMASQ), now=NOW)
    assert table == {
        "192.0.2.10": Lease("aa:bb:cc:00:00:01", AT_20H),
        # .11 expired a minute ago; .13 and .14 are not Ethernet; IPv6 lines have no MAC
        "192.0.2.12": Lease("aa:bb:cc:00:00:03", None),  # expiry 0: infinite
        "192.0.2.15": Lease("aa:bb:cc:00:00:66", AT_20H),  # the later line wins
    }


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("soon aa:bb:cc:00:00:09 192.0.2.20 * *", "field 'expiry': 'soon' is not a number"),
        ("0 aa:bb:cc:00:00 192.0.2.20 * *", "field 'mac': 'aa:bb:cc:00:00' is not a MAC address"),
        ("0 zz-00:11 192.0.2.20 * *", "field 'mac': 'zz-00:11' is not a hardware address"),
        ("0 aa:bb:cc:00:00:09 192.0.2.256 * *", "field 'address': '192.0.2.256' is not an IP"),
        ("0 aa:bb:cc:00:00:09 2001:db8::9 * *", "field 'address': '2001:db8::9' is not an IPv4"),
        ("0 aa:bb:cc:00:00:09 192.0.2.20 *", "expected 5 fields"),
        ("duid", "field 'duid': expected 'duid SERVER-DUID'"),
    ],
)
def test_dnsmasq_malformed_line_rejects_the_file(tmp_path: Path, line: str, problem: str) -> None:
    p = write(tmp_path, "dnsmasq.leases", f"{AT_20H} aa:bb:cc:00:00:01 192.0.2.10 * *\n{line}\n")
    with pytest.raises(LeaseFileError) as ei:
        read_dnsmasq_leases(p, now=NOW)
    assert ei.value.problems[0].startswith(f"{p}:2: {problem}"), ei.value.problems


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (f"{AT_20H} 12345 192.0.2.30 * *", "field 'address': '192.0.2.30' is not an IPv6"),
        (f"{AT_20H} aa:bb 2001:db8::30 * *", "field 'iaid': 'aa:bb' is not an IAID"),
    ],
)
def test_dnsmasq_malformed_ipv6_line(tmp_path: Path, line: str, problem: str) -> None:
    p = write(tmp_path, "dnsmasq.leases", f"duid 00:01:00:01\n{line}\n")
    with pytest.raises(LeaseFileError) as ei:
        read_dnsmasq_leases(p, now=NOW)
    assert len(ei.value.problems) == 1
    assert ei.value.problems[0].startswith(f"{p}:2: {problem}"), ei.value.problems


# -- Kea ----------------------------------------------------------------------------------

KEA4_HEADER = (
    "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,"
    "state,user_context,pool_id\n"
)
KEA4 = KEA4_HEADER + (
    f"192.0.2.10,aa:bb:cc:00:00:01,01:aa:bb:cc:00:00:01,3600,{IN_1H},1,0,0,cb-0001,0,,0\n"
    f"192.0.2.11,aa:bb:cc:00:00:02,,3600,{NOW - 1},1,0,0,cb-0002,0,,0\n"
    f"192.0.2.12,aa:bb:cc:00:00:03,,3600,{IN_1H},1,0,0,,0,,0\n"
    f"192.0.2.12,aa:bb:cc:00:00:03,,0,{NOW - 600},1,0,0,,0,,0\n"
    f"192.0.2.13,,,86400,{AT_20H},1,0,0,,1,,0\n"
    f"192.0.2.14,aa:bb:cc:00:00:04,,4294967295,{NOW + 4294967295},1,0,0,,0,,0\n"
    f"192.0.2.15,aa:bb:cc:00:00:05,,3600,{IN_1H},1,0,0,,2,,0\n"
    f"192.0.2.16,AA:BB:CC:00:00:06,,3600,{IN_1H},1,1,1,lt&#x2c0006,0,"
    '{ "class": "a"&#x2c "b": 2 },3\n'
    f"192.0.2.17,aa:bb:cc:00:00:07,,3600,{NOW - 100},1,0,0,,0,,0\n"
    f"192.0.2.17,aa:bb:cc:00:00:77,,3600,{AT_20H},1,0,0,,0,,0\n"
    f"192.0.2.18,80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01,,3600,{IN_1H},"
    "1,0,0,,0,,0\n"
)


def test_kea_active_leases(tmp_path: Path) -> None:
    table = read_kea_leases(write(tmp_path, "kea-leases4.csv", KEA4), now=NOW)
    assert table == {
        "192.0.2.10": Lease("aa:bb:cc:00:00:01", IN_1H),
        # .11 expired; .12 released by a later row; .13 declined; .15 expired-reclaimed;
        # .18 is not an Ethernet address
        "192.0.2.14": Lease("aa:bb:cc:00:00:04", None),  # infinite valid lifetime
        "192.0.2.16": Lease("aa:bb:cc:00:00:06", IN_1H),  # escaped commas in cells
        "192.0.2.17": Lease("aa:bb:cc:00:00:77", AT_20H),  # the later row wins
    }


def test_kea_files_oldest_first(tmp_path: Path) -> None:
    older = write(
        tmp_path,
        "kea-leases4.csv.2",
        KEA4_HEADER
        + f"192.0.2.20,aa:bb:cc:00:00:20,,3600,{IN_1H},1,0,0,,0,,0\n"
        + f"192.0.2.21,aa:bb:cc:00:00:21,,3600,{IN_1H},1,0,0,,0,,0\n",
    )
    current = write(
        tmp_path,
        "kea-leases4.csv",
        KEA4_HEADER + f"192.0.2.20,aa:bb:cc:00:00:20,,0,{NOW - 5},1,0,0,,0,,0\n",
    )
    table = read_leases("kea", [older, current], now=NOW)
    assert set(table) == {"192.0.2.21"}


def test_kea_old_schema_without_state(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "kea-leases4.csv",
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname\n"
        f"192.0.2.30,aa:bb:cc:00:00:30,,3600,{IN_1H},1,0,0,host30\n",
    )
    assert read_kea_leases(p, now=NOW) == {"192.0.2.30": Lease("aa:bb:cc:00:00:30", IN_1H)}


def test_kea_ipv6(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "kea-leases6.csv",
        "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,"
        "fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source,pool_id\n"
        f"2001:db8::10,00:01:00:01:2c:ae:07:31:aa:bb:cc:00:00:01,3600,{IN_1H},1,3000,0,1,128,"
        "0,0,,aa:bb:cc:00:00:01,0,,1,4,0\n"
        f"2001:db8::11,00:03:00:01:aa:bb:cc:00:00:02,3600,{IN_1H},1,3000,0,2,128,0,0,,,0,,,,0\n"
        f"2001:db8:1::,00:03:00:01:aa:bb:cc:00:00:03,3600,{IN_1H},1,3000,2,3,56,0,0,,"
        "aa:bb:cc:00:00:03,0,,1,4,0\n"
        f"2001:DB8:0::0012,00:03:00:01:aa:bb:cc:00:00:04,3600,{IN_1H},1,3000,1,4,128,0,0,,"
        "aa:bb:cc:00:00:04,0,,1,4,0\n",
    )
    assert read_kea_leases(p, now=NOW) == {
        "2001:db8::10": Lease("aa:bb:cc:00:00:01", IN_1H),
        # ::11 has no hwaddr; 2001:db8:1::/56 is a delegated prefix
        "2001:db8::12": Lease("aa:bb:cc:00:00:04", IN_1H),  # canonical address text
    }


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (f"192.0.2.300,aa:bb:cc:00:00:09,,3600,{IN_1H},1,0,0,,0,,0", "field 'address': "),
        (f"192.0.2.40,aa:bb:cc:00:00:zz,,3600,{IN_1H},1,0,0,,0,,0", "field 'hwaddr': "),
        ("192.0.2.40,aa:bb:cc:00:00:09,,3600,soon,1,0,0,,0,,0", "field 'expire': 'soon' is not"),
        (f"192.0.2.40,aa:bb:cc:00:00:09,,-1,{IN_1H},1,0,0,,0,,0", "field 'valid_lifetime': "),
        (f"192.0.2.40,aa:bb:cc:00:00:09,,3600,{IN_1H},1,0,0,,x,,0", "field 'state': "),
        (f"192.0.2.40,,,3600,{IN_1H},1,0,0,,0,,0", "field 'hwaddr': empty hardware address"),
        (f"192.0.2.40,aa:bb:cc:00:00:09,,3600,{IN_1H},1,0,0,,0,,0,9", "row has 13 columns"),
    ],
)
def test_kea_malformed_row_rejects_the_file(tmp_path: Path, row: str, problem: str) -> None:
    p = write(
        tmp_path,
        "kea-leases4.csv",
        KEA4_HEADER + f"192.0.2.10,aa:bb:cc:00:00:01,,3600,{IN_1H},1,0,0,,0,,0\n{row}\n",
    )
    with pytest.raises(LeaseFileError) as ei:
        read_kea_leases(p, now=NOW)
    assert ei.value.problems[0].startswith(f"{p}:3: {problem}"), ei.value.problems


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("ip,mac,expiry", "address, hwaddr, valid_lifetime, expire"),
        ("address,hwaddr,valid_lifetime,expire,state,state", "a column twice"),
    ],
)
def test_kea_bad_header(tmp_path: Path, header: str, missing: str) -> None:
    p = write(tmp_path, "kea-leases4.csv", f"\n{header}\n192.0.2.1,aa:bb:cc:00:00:01,0\n")
    with pytest.raises(LeaseFileError) as ei:
        read_kea_leases(p, now=NOW)
    assert ei.value.problems == (
        f"{p}:2: field 'header': not a Kea lease file header (missing {missing})",
    )


# -- common -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", LEASE_FORMATS)
def test_empty_files_have_no_leases(tmp_path: Path, fmt: LeaseFormat) -> None:
    assert read_leases(fmt, write(tmp_path, f"{fmt}.leases", "\n"), now=NOW) == {}


def test_bad_arguments(tmp_path: Path) -> None:
    p = write(tmp_path, "x", "")
    with pytest.raises(ValueError, match="unknown lease file format 'isc'"):
        read_leases("isc", p, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        read_dhcpd_leases(p, now=datetime(2024, 3, 5, 12))
    with pytest.raises(LeaseFileError, match="cannot read file"):
        read_dnsmasq_leases(tmp_path / "missing", now=NOW)
    bad = tmp_path / "bin"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(LeaseFileError, match="not UTF-8"):
        read_kea_leases(bad, now=NOW)
