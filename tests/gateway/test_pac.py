"""The PAC file (monitor.gateway.pac), ``monitor gateway pac`` and the addon that serves it
(addons/pac.py) in process. The file's JavaScript is run by a real engine in
test_pac_chromium.py."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from mitmproxy import connection
from mitmproxy.exceptions import OptionsError
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow

from addons.enforce import Enforce
from addons.pac import Pac
from addons.runtime import Runtime
from addons.selective import Selective
from monitor.cli import main
from monitor.gateway.pac import MEDIA_TYPE, pac_names, parse_proxy_address, render_pac
from monitor.platforms import catalogue as catalogue_mod

ROOT = Path(__file__).resolve().parents[2]
LOCAL = "localchat.example"  # a platform only the district's catalogue file adds


def district_copy(base: Path) -> Path:
    d = base / "district"
    shutil.copytree(ROOT / "examples" / "district", d)
    text = (d / "district.yaml").read_text()
    text = text.replace("state_dir: ../../var/example-district", "state_dir: state")
    (d / "district.yaml").write_text(text.replace("catalogue: []", "catalogue: [local.yaml]"))
    (d / "local.yaml").write_text(
        "platforms:\n  - id: localchat\n    name: Local Chat\n    owner: Somebody\n"
        f"    category: messaging\n    min_age: 13\n    suffixes: [{LOCAL}]\n"
        f"    page_hosts: [{LOCAL}]\n"
    )
    return d


# -- the generator ------------------------------------------------------------------------------


def test_the_file_lists_every_catalogue_name_once(catalogue: catalogue_mod.Catalogue) -> None:
    text = render_pac(catalogue, "10.0.0.5:8080", generated="2026-12-01 08:00 UTC")
    assert 'var PROXY = "PROXY 10.0.0.5:8080";' in text
    assert "DIRECT" in text and "2026-12-01 08:00 UTC" in text
    hosts, suffixes = pac_names(catalogue)
    assert "youtubei.googleapis.com" in hosts and "p16-tiktokcdn-com.akamaized.net" in hosts
    assert suffixes["tiktok.com"] == 1 and suffixes["akamaized.net"] == 0
    assert suffixes["cloudflare-dns.com"] == 1  # bypass services too
    for p in catalogue:
        for name in (*p.hosts, *p.suffixes):
            assert text.count(f'"{name}":') == 1, name
    # ECMAScript 3: no trailing commas before a closing brace, no let/const/arrow functions
    assert not re.search(r",\s*}", text)
    assert not re.search(r"\b(let|const)\s|=>", text)
    assert "dnsResolve" not in text and "isInNet" not in text  # no DNS look-ups per URL


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("10.0.0.5:8080", "10.0.0.5:8080"),
        ("Proxy.District.Example:3128", "proxy.district.example:3128"),
        ("[2001:db8::5]:8080", "[2001:db8::5]:8080"),
        ("proxy:08080", "proxy:8080"),
    ],
)
def test_proxy_addresses(value: str, expect: str) -> None:
    assert parse_proxy_address(value) == expect


@pytest.mark.parametrize(
    "value",
    ["10.0.0.5", "10.0.0.5:0", "10.0.0.5:65536", ":8080", "a b:80", "proxy;DIRECT:80",
     '"x":80', "[nope]:80", "2001:db8::5:8080", "1.2.3:80", "-x.example:80"],
)  # fmt: skip
def test_bad_proxy_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_proxy_address(value)


def test_cli_writes_the_file_with_the_district_additions(tmp_path: Path) -> None:
    d = district_copy(tmp_path)
    out = tmp_path / "proxy.pac"
    r = CliRunner().invoke(
        main,
        ["gateway", "pac", "--config", str(d), "--proxy", "Gw.Example:8080", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert f'"{LOCAL}":1' in text and 'PROXY gw.example:8080"' in text
    # without --config: the shipped catalogue only, plus --catalog files
    r = CliRunner().invoke(main, ["gateway", "pac", "--proxy", "gw.example:8080"])
    assert r.exit_code == 0 and LOCAL not in r.output and '"tiktok.com":1' in r.output
    r = CliRunner().invoke(
        main, ["gateway", "pac", "--proxy", "gw.example:8080", "--catalog", str(d / "local.yaml")]
    )
    assert r.exit_code == 0 and f'"{LOCAL}":1' in r.output


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["gateway", "pac", "--proxy", "gw.example"])
    assert r.exit_code == 2 and "'gw.example' is not HOST:PORT" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("platforms:\n  - id: x\n    name: X\n")
    r = CliRunner().invoke(main, ["gateway", "pac", "--proxy", "gw:1", "--catalog", str(bad)])
    assert r.exit_code == 1 and "bad.yaml:2" in r.output and "Traceback" not in r.output


# -- the addon ----------------------------------------------------------------------------------


@pytest.fixture
def pac(tmp_path: Path) -> Iterator[tuple[Pac, taddons.context]]:
    d = district_copy(tmp_path)
    rt = Runtime()
    sel = Selective(rt)
    addon = Pac(rt)
    with taddons.context(rt, sel, addon, Enforce(rt, sel)) as tctx:
        tctx.configure(
            rt,
            monitor_config=str(d),
            monitor_metrics_listen="",
            monitor_store=f"sqlite:///{d / 'state' / 'pac.sqlite'}",
        )
        yield addon, tctx
    rt.done()


def pac_request(
    path: str = "/proxy.pac",
    host: str = "10.0.0.5",
    port: int = 8080,
    *,
    listener: tuple[str, int] = ("10.0.0.5", 8080),
    mode: str = "regular",
    method: str = "GET",
    tunnel_to: tuple[str, int] | None = None,
    client_tls: bool = False,
) -> tflow.HTTPFlow:
    f = tflow.tflow()
    f.client_conn = connection.Client(
        peername=("10.1.2.3", 50000), sockname=listener, proxy_mode=ProxyMode.parse(mode)
    )
    f.client_conn.tls = client_tls
    f.server_conn = connection.Server(address=tunnel_to)
    f.request.method = method
    f.request.scheme = "http"
    f.request.host, f.request.port, f.request.path = host, port, path
    f.request.headers["Host"] = f"{host}:{port}"
    return f


def test_serves_the_pac_to_requests_for_the_proxy_itself(pac: tuple[Pac, taddons.context]) -> None:
    addon, _ = pac
    for path in ("/proxy.pac", "/wpad.dat", "/proxy.pac?v=2"):
        f = pac_request(path)
        addon.request(f)
        assert f.response is not None and f.response.status_code == 200, path
        assert f.response.headers["Content-Type"] == MEDIA_TYPE
        assert f.response.headers["Cache-Control"] == "max-age=300"
        text = f.response.get_text()
        assert 'var PROXY = "PROXY 10.0.0.5:8080";' in text  # the address the client used
        assert f'"{LOCAL}":1' in text  # the district's own additions
    head = pac_request(method="HEAD")
    addon.request(head)
    assert head.response is not None and head.response.content == b""
    assert int(head.response.headers["Content-Length"]) > 10_000
    # a dual-stack listener reports IPv4 clients as IPv4-mapped IPv6: the same address
    f = pac_request(listener=("::ffff:10.0.0.5", 8080, 0, 0))  # type: ignore[arg-type]
    addon.request(f)
    assert f.response is not None and "PROXY 10.0.0.5:8080" in f.response.get_text()


@pytest.mark.parametrize(
    "kw",
    [
        # another site's file of the same name, through the proxy (absolute form)
        {"host": "www.school-site.example", "port": 80},
        {"host": "www.school-site.example", "port": 8080},
        {"host": "10.0.0.5", "port": 80},
        # the right name inside a CONNECT tunnel to some site, or over TLS
        {"tunnel_to": ("www.school-site.example", 8080)},
        {"tunnel_to": ("10.0.0.5", 8080)},
        {"client_tls": True},
        # transparent mode: a request to some server's /proxy.pac is that server's business
        {"mode": "transparent", "tunnel_to": ("10.0.0.5", 8080)},
        {"mode": "transparent"},
        {"mode": "wireguard"},
        # other paths and methods
        {"path": "/"},
        {"path": "/proxy.pac.bak"},
        {"path": "/dir/proxy.pac"},
        {"method": "POST"},
    ],
)
def test_never_serves_it_for_anything_else(
    pac: tuple[Pac, taddons.context], kw: dict[str, object]
) -> None:
    addon, _ = pac
    f = pac_request(**kw)  # type: ignore[arg-type]
    addon.request(f)
    assert f.response is None


def test_a_public_name_is_written_and_accepted(pac: tuple[Pac, taddons.context]) -> None:
    addon, tctx = pac
    tctx.configure(addon, monitor_pac_proxy="Proxy.District.Example:3128")
    f = pac_request(host="proxy.district.example", port=3128, listener=("192.0.2.5", 3128))
    addon.request(f)
    assert f.response is not None
    assert 'var PROXY = "PROXY proxy.district.example:3128";' in f.response.get_text()
    # still answered at the listener's own address, naming the public one
    f = pac_request(host="192.0.2.5", port=3128, listener=("192.0.2.5", 3128))
    addon.request(f)
    assert f.response is not None and "PROXY proxy.district.example:3128" in f.response.get_text()
    # not for the public name on another port
    f = pac_request(host="proxy.district.example", port=80, listener=("192.0.2.5", 3128))
    addon.request(f)
    assert f.response is None
    with pytest.raises(OptionsError, match="monitor_pac_proxy: 'nope' is not HOST:PORT"):
        tctx.configure(addon, monitor_pac_proxy="nope")


def test_a_catalogue_reload_changes_the_next_answer(pac: tuple[Pac, taddons.context]) -> None:
    addon, _ = pac
    first = addon.pac(addon.rt.district.catalogue, "10.0.0.5:8080")  # type: ignore[union-attr]
    assert addon.pac(addon.rt.district.catalogue, "10.0.0.5:8080") is first  # type: ignore[union-attr]
    other = catalogue_mod.load()
    assert addon.pac(other, "10.0.0.5:8080") != first  # no district additions in it
