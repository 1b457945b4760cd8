"""``monitor sensor`` as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "sensor", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", ["dns.pcap", "tls.pcap", "quic.pcap", "mixed.pcapng"])
def test_tsv_matches_golden(name: str) -> None:
    r = monitor("--pcap", str(DATA / name))
    assert r.returncode == 0, r.stderr
    assert r.stdout == (DATA / f"{name.split('.')[0]}.out").read_text()


def test_tsv_columns() -> None:
    r = monitor("--pcap", str(DATA / "vlan.pcap"), "--format", "tsv")
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert rows[0] == [
        "2024-05-01T08:00:00.000000Z",
        "192.0.2.20",
        "198.51.100.53",
        "dns",
        "www.tiktok.com",
        "tiktok",
    ]
    assert all(len(row) == 6 for row in rows)


def test_json_lines_and_stats() -> None:
    r = monitor("--pcap", str(DATA / "quic.pcap"), "--format", "json", "--stats")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (DATA / "quic.jsonl.out").read_text()
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert {o["version"] for o in objs} == {1, 0x6B3343CF}
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    assert stats["packets"] == 8 and stats["malformed"] == {"quic_decrypt_failed": 1}


def test_district_catalogue_adds_a_platform(tmp_path: Path) -> None:
    extra = tmp_path / "district.yaml"
    extra.write_text(
        "version: 1\n"
        "platforms:\n"
        "  - id: fakevideo\n"
        "    name: Fake Video\n"
        "    owner: Example Org\n"
        "    category: video\n"
        "    min_age: 13\n"
        "    suffixes: [example.org]\n"
    )
    r = monitor("--pcap", str(DATA / "tls.pcap"), "--catalog", str(extra))
    assert r.returncode == 0, r.stderr
    assert "\tvideo.example.org\tfakevideo\n" in r.stdout
    assert "\tpublic.example.com\t-\n" in r.stdout


def test_broken_catalogue_is_rejected(tmp_path: Path) -> None:
    extra = tmp_path / "district.yaml"
    extra.write_text("version: 1\nplatforms:\n  - id: Bad Id\n")
    r = monitor("--pcap", str(DATA / "tls.pcap"), "--catalog", str(extra))
    assert r.returncode == 1 and r.stdout == ""
    assert str(extra) in r.stderr


def test_config_without_district_yaml_is_an_error(tmp_path: Path) -> None:
    r = monitor("--pcap", str(DATA / "dns.pcap"), "--config", str(tmp_path))
    assert r.returncode == 1 and r.stdout == ""
    assert str(tmp_path / "district.yaml") in r.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "exactly one of --pcap FILE or --iface IFACE"),
        (("--pcap", str(DATA / "dns.pcap"), "--iface", "lo"), 2, "exactly one of"),
        (("--pcap", "/nonexistent/x.pcap"), 1, "/nonexistent/x.pcap: cannot open"),
        (("--pcap", str(DATA / "dns.out")), 1, "not a pcap or pcapng file"),
        (("--pcap", str(DATA / "dns.pcap"), "--format", "xml"), 2, "Invalid value for '--format'"),
        # fails while resolving the name, before any socket is opened
        (("--iface", "nonexistent-if0"), 1, "cannot capture on nonexistent-if0"),
    ],
)
def test_usage_errors(args: tuple[str, ...], code: int, message: str) -> None:
    r = monitor(*args)
    assert r.returncode == code
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_installed_entry_point() -> None:
    exe = Path(sys.executable).parent / "monitor"
    if not exe.exists():
        pytest.skip("no installed monitor script next to this interpreter")
    r = subprocess.run(
        [str(exe), "sensor", "--pcap", str(DATA / "rawip.pcap")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout == (DATA / "rawip.out").read_text()
