"""The WireGuard client configuration (monitor.gateway.wireguard) and ``monitor gateway
wireguard-client``: keys as mitmproxy derives them, the device's tunnel address checked against
the district's address map, and bad input refused with the file, line and field. The tunnel
itself runs in test_wireguard_netns.py."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import mitmproxy_rs
import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.gateway import wireguard as wg

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "district"


@pytest.fixture
def district(tmp_path: Path) -> Path:
    """The example district with its state directory in tmp_path (nothing written to var/)."""
    d = tmp_path / "district"
    shutil.copytree(EXAMPLE, d)
    text = (d / "district.yaml").read_text()
    text = re.sub(r"(?m)^state_dir: .*$", f"state_dir: {tmp_path / 'state'}", text)
    (d / "district.yaml").write_text(text)
    return d


def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "wg.conf"
    keys = {"server_key": mitmproxy_rs.wireguard.genkey(), "client_key": wg.new_key()}
    path.write_text(json.dumps(keys, indent=4))
    return path


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["gateway", "wireguard-client", *args])
    return r.exit_code, r.stdout, r.stderr


def test_public_keys_are_mitmproxys() -> None:
    for key in (mitmproxy_rs.wireguard.genkey(), wg.new_key(), wg.new_key()):
        assert wg.public_key(key) == mitmproxy_rs.wireguard.pubkey(key)


def test_a_new_key_file_is_one_mitmproxy_reads(tmp_path: Path) -> None:
    data = json.loads(wg.new_server_conf())
    assert set(data) == {"server_key", "client_key"}
    for key in data.values():
        mitmproxy_rs.wireguard.pubkey(key)  # raises on a key mitmproxy refuses


def test_the_client_configuration(district: Path, tmp_path: Path) -> None:
    path = keyfile(tmp_path)
    keys = json.loads(path.read_text())
    code, out, err = run("--config", str(district), "--server-conf", str(path),
                         "--endpoint", "vpn.district.example:51821", "--address", "198.51.100.11")  # fmt: skip
    assert code == 0, err
    fields = dict(re.findall(r"^(\w+) = (.+)$", out, re.M))
    assert fields == {
        "PrivateKey": keys["client_key"],
        "Address": "198.51.100.11/32",
        "DNS": "10.0.0.53",
        "PublicKey": mitmproxy_rs.wireguard.pubkey(keys["server_key"]),
        "AllowedIPs": "0.0.0.0/0, ::/0",  # mitmproxy's own: IPv4 only, IPv6 went past it
        "Endpoint": "vpn.district.example:51821",
    }
    assert out.index("[Interface]") < out.index("[Peer]")
    # the example district does not map this address: said, with the line to add
    assert "198.51.100.11 is in no entry of district.yaml's addresses" in err
    assert '{cidr: "198.51.100.11/32", device: DEVICE-ID}' in err


def test_a_mapped_tunnel_address_names_its_device(district: Path, tmp_path: Path) -> None:
    path = district / "district.yaml"
    text = path.read_text().replace(
        "addresses:", "addresses:\n  - {cidr: 198.51.100.15/32, device: cb-00555}", 1
    )
    path.write_text(text)
    code, out, err = run("--config", str(district), "--server-conf", str(keyfile(tmp_path)),
                         "--endpoint", "[2001:db8::1]", "--address", "198.51.100.15/32")  # fmt: skip
    assert code == 0, err
    assert "tunnel address 198.51.100.15 is device cb-00555 (static)" in err
    assert "Endpoint = [2001:db8::1]:51820" in out


def test_an_ipv6_tunnel_address_is_mapped_like_the_ipv4_one(district: Path, tmp_path: Path) -> None:
    path = district / "district.yaml"
    text = path.read_text().replace(
        "addresses:", 'addresses:\n  - {cidr: "2001:db8:100::15/128", device: cb-00555}', 1
    )
    path.write_text(text)
    code, out, err = run("--config", str(district), "--server-conf", str(keyfile(tmp_path)),
                         "--endpoint", "192.0.2.1", "--address", "198.51.100.15",
                         "--address6", "2001:db8:100::15")  # fmt: skip
    assert code == 0, err
    assert "Address = 198.51.100.15/32, 2001:db8:100::15/128" in out
    assert "tunnel address 2001:db8:100::15 is device cb-00555 (static)" in err
    assert "198.51.100.15 is in no entry" in err  # each address checked


def test_create_writes_a_key_file_only_when_asked(district: Path, tmp_path: Path) -> None:
    path = tmp_path / "keys" / "cb-00240.conf"
    args = ["--config", str(district), "--server-conf", str(path), "--endpoint", "192.0.2.1"]
    code, out, err = run(*args)
    assert code == 1 and not path.exists()
    assert f"{path}: no such key file" in err and "--create" in err
    code, out, err = run(*args, "--create")
    assert code == 0, err
    assert path.stat().st_mode & 0o777 == 0o600
    keys = json.loads(path.read_text())
    assert f"PrivateKey = {keys['client_key']}" in out
    # a second run reads the same file: the same keys
    assert run(*args, "--create")[1] == out


def test_the_default_key_file_is_the_proxys(district: Path, tmp_path: Path) -> None:
    """Without --server-conf: wireguard.conf in STATE_DIR/mitmproxy, where `monitor proxy
    --mode wireguard` has mitmproxy write it."""
    code, out, err = run("--config", str(district), "--endpoint", "192.0.2.1", "--create")
    assert code == 0, err
    assert (tmp_path / "state" / "mitmproxy" / "wireguard.conf").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"server_key": "x",\n "client_key": }', "line 2: not JSON"),
        ("[1, 2]", "expected a JSON object with server_key and client_key"),
        ('{"client_key": "%s"}', "field 'server_key' is missing or not a string"),
        ('{"server_key": "%s", "client_key": 5}', "field 'client_key' is missing or not a string"),
        ('{"server_key": "%s", "client_key": "abc"}', "field 'client_key' is not a WireGuard key"),
        ('{"server_key": "%s", "client_key": "YWJj"}', "3 bytes, a WireGuard key has 32"),
    ],
)
def test_a_bad_key_file_is_refused_naming_it(
    district: Path, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.conf"
    path.write_text(content.replace("%s", wg.new_key()))
    code, out, err = run("--config", str(district), "--server-conf", str(path),
                         "--endpoint", "192.0.2.1")  # fmt: skip
    assert code == 1 and out == ""
    assert f"{path}" in err and message in err, err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--endpoint", "2001:db8::1", "write an IPv6 endpoint as [ADDRESS]:PORT"),
        ("--endpoint", "[2001:db8::1", "write an IPv6 endpoint as [ADDRESS]:PORT"),
        ("--endpoint", "192.0.2.1:0", "the port must be a number from 1 to 65535"),
        ("--endpoint", "192.0.2.1:http", "the port must be a number from 1 to 65535"),
        ("--endpoint", ":51820", "has no host"),
        ("--address", "2001:db8::11", "the tunnel address must be IPv4 (IPv6: --address6)"),
        ("--address6", "198.51.100.11", "the address must be IPv6"),
        ("--address6", "fe80::11", "cannot be a device's tunnel address"),
        ("--address6", "::ffff:198.51.100.11", "cannot be a device's tunnel address"),
        ("--address6", "2001:db8::/64", "is not an IPv6 address"),
        ("--address", "198.51.100.0/24", "is not an IPv4 address"),
        ("--address", "10.0.0.53", "cannot be a device's tunnel address"),
        ("--address", "127.0.0.11", "cannot be a device's tunnel address"),
    ],
)
def test_bad_options_are_refused(
    district: Path, tmp_path: Path, option: str, value: str, message: str
) -> None:
    args = {"--endpoint": "192.0.2.1", "--address": "198.51.100.11", option: value}
    flat = [x for kv in args.items() for x in kv]
    code, out, err = run("--config", str(district), "--server-conf", str(keyfile(tmp_path)), *flat)
    assert code == 2 and out == ""
    assert option in err and message in err, err


def test_monitor_proxy_runs_one_wireguard_server_per_device(
    district: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--mode` is repeatable: one `wireguard:FILE@PORT` per device, in one mitmdump."""
    calls: list[list[str]] = []

    def no_exec(path: str, argv: list[str]) -> None:
        calls.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", no_exec)  # the os module monitor.cli.proxy execs with
    modes = ["wireguard:/etc/wg/cb-00240.conf@51821", "wireguard:/etc/wg/cb-00555.conf@51822"]
    args = ["proxy", "--config", str(district), "--listen", "0.0.0.0:51820"]
    r = CliRunner().invoke(main, [*args, "--mode", modes[0], "--mode", modes[1]])
    assert r.exit_code == 0, r.output
    argv = calls[0]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--mode"] == modes
    assert argv[argv.index("--listen-host") + 1] == "0.0.0.0"
    assert f"({modes[0]}, {modes[1]} mode)" in r.stderr
    # one process only: the workers' hash cannot spread WireGuard peers
    r = CliRunner().invoke(main, [*args, "--mode", modes[0], "--mode", modes[1], "--workers", "2"])
    assert r.exit_code == 2 and "choose regular or transparent" in r.stderr


@pytest.mark.parametrize("mode", ["pseudonym", "none", "address"])
def test_the_proxys_log_hides_wireguard_private_keys(mode: str) -> None:
    """mitmproxy logs each WireGuard server's client configuration at start: its private key
    would let anyone reading the journal pose as the device."""
    import logging

    from addons.logprivacy import AddressScrubber

    key, server = wg.new_key(), wg.public_key(wg.new_key())
    text = f"[Interface]\nPrivateKey = {key}\nAddress = 10.0.0.1/32\n[Peer]\nPublicKey = {server}"
    record = logging.LogRecord("mitmproxy", logging.INFO, "", 0, text, None, None)
    AddressScrubber(mode).filter(record)
    message = record.getMessage()
    assert key not in message
    assert "PrivateKey = (hidden: in the WireGuard key file)" in message
    assert f"PublicKey = {server}" in message
    assert ("10.0.0.1" in message) == (mode == "address")
