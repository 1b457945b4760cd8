"""The mitmproxy addons in process, with mitmproxy's own test helpers (no mocks of mitmproxy):
selective interception decisions, enforcement, and the failure modes when something raises."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from mitmproxy import connection, options
from mitmproxy.exceptions import OptionsError
from mitmproxy.proxy import context
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import ClientHello, ClientHelloData

from addons.enforce import Enforce
from addons.runtime import Runtime
from addons.selective import Selective
from monitor.sensor.synth import client_hello

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("addons") / "district"
    shutil.copytree(ROOT / "examples" / "district", d)
    text = (d / "district.yaml").read_text()
    (d / "district.yaml").write_text(
        text.replace("state_dir: ../../var/example-district", "state_dir: state")
    )
    return d


@pytest.fixture
def addons(district: Path) -> Iterator[tuple[Runtime, Selective, Enforce]]:
    rt = Runtime()
    sel = Selective(rt)
    enf = Enforce(rt, sel)
    with taddons.context(rt, sel, enf) as tctx:
        tctx.configure(
            rt,
            monitor_config=str(district),
            monitor_metrics_listen="",
            monitor_store=f"sqlite:///{district / 'state' / 'addons.sqlite'}",
        )
        yield rt, sel, enf
    rt.done()


def hello(client_addr: str, sni: str) -> ClientHelloData:
    client = connection.Client(peername=(client_addr, 50000), sockname=("127.0.0.1", 8080))
    ctx = context.Context(client, options.Options())
    ctx.server = connection.Server(address=(sni, 443))
    return ClientHelloData(ctx, ClientHello(client_hello(sni)[4:]))


def sample(rt: Runtime, name: str, **labels: str) -> float:
    return rt.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("client", "sni", "ignored", "refused", "outcome"),
    [
        ("127.0.0.11", "www.wikipedia.org", True, False, ("passthrough", "none")),
        ("127.0.0.11", "www.tiktok.com", False, False, ("intercepted", "tiktok")),
        ("127.0.0.11", "api16-normal-c-useast1a.tiktokv.com", True, True, ("refused", "tiktok")),
        ("127.0.0.50", "www.tiktok.com", True, False, ("passthrough", "tiktok")),
        ("127.0.0.11", "www.youtubekids.com", True, False, ("passthrough", "youtube-kids")),
    ],
)
def test_tls_clienthello(
    addons: tuple[Runtime, Selective, Enforce],
    client: str,
    sni: str,
    ignored: bool,
    refused: bool,
    outcome: tuple[str, str],
) -> None:
    rt, sel, _ = addons
    before = sample(rt, "monitor_connections_total", outcome=outcome[0], platform=outcome[1])
    data = hello(client, sni)
    sel.tls_clienthello(data)
    assert data.ignore_connection is ignored
    # a refusal passes the bytes to no server at all: nothing is decrypted or forwarded
    assert (data.context.server.address is None) is refused
    assert (
        sample(rt, "monitor_connections_total", outcome=outcome[0], platform=outcome[1])
        == before + 1
    )


def test_request_block_restrict_and_alt_svc(addons: tuple[Runtime, Selective, Enforce]) -> None:
    rt, sel, enf = addons
    f = tflow.tflow()
    f.client_conn.peername = ("127.0.0.11", 50000)
    f.request.url = "https://www.tiktok.com/@someone"
    f.request.headers["Accept"] = "text/html"
    enf.request(f)
    assert f.response is not None and f.response.status_code == 403
    assert "under13" in f.response.get_text()
    assert f.metadata["monitor"]["rule"] == "under13"

    # a host outside the catalogue is not touched
    g = tflow.tflow()
    g.client_conn.peername = ("127.0.0.11", 50001)
    g.request.url = "http://www.school-site.example/"
    enf.request(g)
    assert g.response is None and "monitor" not in g.metadata

    # Alt-Svc goes from catalogue responses only
    h = tflow.tflow()
    h.client_conn.peername = ("127.0.0.50", 50002)
    h.request.url = "https://www.tiktok.com/"
    enf.request(h)
    assert h.response is None  # staff: allowed
    h.response = tflow.tresp()
    h.response.headers["Alt-Svc"] = 'h3=":443"'
    enf.response(h)
    assert "alt-svc" not in h.response.headers  # type: ignore[union-attr]


class Boom:
    """A resolver that raises: stands for any bug inside the addon."""

    def resolve(self, *args: object) -> object:
        raise RuntimeError("boom")


@pytest.mark.parametrize("client", ["127.0.0.11", "127.0.0.50"])
def test_an_exception_never_escapes_and_fails_closed_for_unknown_people(
    addons: tuple[Runtime, Selective, Enforce], client: str
) -> None:
    rt, sel, enf = addons
    assert rt.district is not None
    good = rt.district
    object.__setattr__(good, "resolver", Boom())
    try:
        before = sample(rt, "monitor_flow_errors_total", mode="closed")
        f = tflow.tflow()
        f.client_conn.peername = (client, 50010)
        f.request.url = "https://www.tiktok.com/"
        enf.request(f)  # must not raise
        # identity itself failed: nobody is known, so the flow fails closed
        assert f.response is not None and f.response.status_code == 403
        assert "filter-error" in f.response.get_text()
        assert sample(rt, "monitor_flow_errors_total", mode="closed") == before + 1
        data = hello(client, "www.tiktok.com")
        sel.tls_clienthello(data)  # must not raise
        assert data.ignore_connection is False  # fail closed: intercept, decide per request
    finally:
        object.__setattr__(good, "resolver", DistrictResolver.saved)


class DistrictResolver:
    saved: object = None


@pytest.fixture(autouse=True)
def _save_resolver(addons: tuple[Runtime, Selective, Enforce]) -> None:
    rt = addons[0]
    assert rt.district is not None
    DistrictResolver.saved = rt.district.resolver


def test_fail_open_for_staff_when_deciding_raises(
    addons: tuple[Runtime, Selective, Enforce], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, sel, enf = addons
    import addons.enforce as enforce_mod

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("decision bug")

    monkeypatch.setattr(enforce_mod, "decide_request", broken)
    staff = tflow.tflow()
    staff.client_conn.peername = ("127.0.0.50", 50020)
    staff.request.url = "https://www.tiktok.com/"
    child = tflow.tflow()
    child.client_conn.peername = ("127.0.0.11", 50021)
    child.request.url = "https://www.tiktok.com/"
    before_open = sample(rt, "monitor_flow_errors_total", mode="open")
    enf.request(staff)
    enf.request(child)
    assert staff.response is None  # fail open for staff
    assert child.response is not None and child.response.status_code == 403  # closed for under-13
    assert sample(rt, "monitor_flow_errors_total", mode="open") == before_open + 1


@pytest.mark.parametrize(
    ("clock", "action", "rule"),
    [
        ("2026-12-07T10:30:00-05:00", "restrict", "approved-youtube-school-hours"),  # Monday
        ("2026-12-06T19:00:00-05:00", "block", "student-social"),  # Sunday evening
    ],
)
def test_monitor_clock_moves_the_time_decisions_are_made_for(
    addons: tuple[Runtime, Selective, Enforce], clock: str, action: str, rule: str
) -> None:
    rt, _, enf = addons
    with taddons.context(rt) as tctx:
        tctx.configure(rt, monitor_clock=clock)
        assert abs(rt.now() - datetime.fromisoformat(clock).timestamp()) < 60
        f = tflow.tflow()
        f.client_conn.peername = ("127.0.0.15", 50030)  # a 15-year-old
        f.request.url = "https://www.youtube.com/"
        enf.request(f)
        assert (f.metadata["monitor"]["action"], f.metadata["monitor"]["rule"]) == (action, rule)
        tctx.configure(rt, monitor_clock="")
        assert abs(rt.now() - time.time()) < 1


@pytest.mark.parametrize("bad", ["soon", "2026-12-07T10:30:00", "2026-13-40T10:30:00+00:00"])
def test_a_bad_monitor_clock_is_refused(
    addons: tuple[Runtime, Selective, Enforce], bad: str
) -> None:
    rt, _, _ = addons
    with taddons.context(rt) as tctx, pytest.raises(OptionsError, match="monitor_clock"):
        tctx.configure(rt, monitor_clock=bad)
