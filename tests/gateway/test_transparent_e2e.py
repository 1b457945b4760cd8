"""Transparent mode end to end, on the gateway of tests/gatewaynet.py: devices in a clients
namespace, no proxy configured, resolve names through the district resolver (which puts
catalogue addresses into the ruleset's sets) and connect to sites in an internet namespace;
the gateway's shipped ruleset redirects catalogue traffic to `monitor proxy --mode transparent
--workers 2`, and `monitor sensor --iface lan0` watches the client-side interface.

Proves: blocks and refusals per age band, passthrough proven by the certificate issuer and by
where the origin's connection came from, identity by static map and by DHCP lease and device
inventory, YouTube-Restrict at the origin, QUIC and foreign DNS (53, DoT, DoQ) dropped while
the resolver answers, DNS over HTTPS refused as a bypass; the sensor reports what the proxy
decided and records what skipped it; a worker SIGKILLed under traffic loses no incident.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from gatewaynet import (
    DOT_SERVER,
    GW_LAN,
    HTML,
    INET_DNS,
    LEASED,
    LEASED_DEVICE,
    SITES,
    TEACHER,
    TEEN,
    UNDER13,
    WORKER_BASE,
    GatewayNet,
    device_row,
    dns_query,
    gateway_network,
    tcp_connect,
    udp_exchange,
)
from netns import wait_for
from proxyharness import ORIGIN_CA_NAME

from monitor.sensor import synth

pytestmark = pytest.mark.slow

BLOCKED_13 = "Students 12 and under may only use platforms made for their age group"
POST_URL = "https://www.tiktok.com/api/commit/item/post/"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayNet]:
    with gateway_network(tmp_path_factory.mktemp("gatewaynet")) as the_net:
        yield the_net


def person_of_device(net: GatewayNet, device: str) -> str:
    return net.pseudonym_of(device_row(net.district, device)["assignedUser"])


# -- the proxy's decisions ---------------------------------------------------------------------


def test_under13_gets_the_block_page_for_a_page_host(net: GatewayNet) -> None:
    before = len(net.origin.requests_to("www.tiktok.com"))
    r = net.get(UNDER13, "https://www.tiktok.com/", headers=HTML)
    assert r.status == 403, r.stderr[-500:]
    assert BLOCKED_13 in r.body and ">under13<" in r.body
    assert "mitmproxy" in r.issuer  # decrypted to show the page
    assert len(net.origin.requests_to("www.tiktok.com")) == before  # the origin saw nothing
    assert SITES["www.tiktok.com"] in net.set_elements()  # the resolver filled the set


def test_under13_is_refused_without_decryption_for_an_api_host(net: GatewayNet) -> None:
    before = net.metric("monitor_connections_total", outcome="refused", platform="tiktok")
    r = net.get(UNDER13, "https://api16-normal-c-useast1a.tiktokv.com/aweme/v1/feed/")
    assert r.status == 0 and r.issuer == ""  # no certificate at all: closed at the ClientHello
    assert net.origin.requests_to("api16-normal-c-useast1a.tiktokv.com") == []
    after = net.metric("monitor_connections_total", outcome="refused", platform="tiktok")
    assert after == before + 1


def test_a_teacher_passes_through_on_a_catalogue_host(net: GatewayNet) -> None:
    r = net.get(TEACHER, "https://www.tiktok.com/", headers=HTML)
    assert r.status == 200, r.stderr[-500:]
    assert ORIGIN_CA_NAME in r.issuer and "mitmproxy" not in r.issuer
    # redirected to a worker, which passed the bytes on from the gateway's own address
    assert net.origin.requests_to("www.tiktok.com")[-1].peer == "198.51.100.1"


def test_a_non_catalogue_host_is_routed_untouched(net: GatewayNet) -> None:
    r = net.get(UNDER13, "https://www.school-site.example/lesson?id=7")
    assert r.status == 200, r.stderr[-500:]
    assert ORIGIN_CA_NAME in r.issuer and "mitmproxy" not in r.issuer
    seen = net.origin.requests_to("www.school-site.example")[-1]
    assert seen.path == "/lesson?id=7"
    assert seen.peer == UNDER13  # not even redirected: the device's own connection
    assert SITES["www.school-site.example"] not in net.set_elements()


def test_a_teen_gets_youtube_restrict_at_the_origin(net: GatewayNet) -> None:
    r = net.get(TEEN, "https://www.youtube.com/watch?v=abc", headers=HTML)
    assert r.status == 200, r.stderr[-500:]
    assert "mitmproxy" in r.issuer  # decrypted: the header is added to the request
    seen = net.origin.requests_to("www.youtube.com")[-1]
    assert seen.headers.get("YouTube-Restrict") == "Strict"
    assert '"YouTube-Restrict": "Strict"' in r.body  # the origin's echo


@pytest.mark.parametrize(
    ("client", "device"), [(UNDER13, "cb-00240"), (TEEN, "cb-00555"), (LEASED, LEASED_DEVICE)]
)
def test_doh_is_refused_as_a_bypass_and_the_device_address_names_the_person(
    net: GatewayNet, client: str, device: str
) -> None:
    """The device's own address reaches the decision: by the static map (.11, .15) and by a
    DHCP lease (LEASED: lease → MAC → devices.csv → the student assigned the Chromebook)."""
    person = person_of_device(net, device)
    r = net.get(
        client, "https://dns.google/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"
    )
    assert r.status == 0 and r.issuer == "", r.stderr[-500:]
    assert net.origin.requests_to("dns.google") == []
    found = wait_for(
        lambda: net.incidents(person=person, rule_id="bypass-student", platform="doh-google"),
        15,
        f"a bypass incident for {client}",
    )
    assert found[0].severity == "high" and found[0].role == "student"
    assert found[0].age_band != "unknown"
    # the sensor saw the lookup and the connection, and left both to the proxy: one event
    sensor_saw(net, client, "dns", "dns.google")
    sensor_saw(net, client, "tls", "dns.google")
    time.sleep(1.5)  # the sensor's recorder writes within a second
    (incident,) = net.incidents(person=person, rule_id="bypass-student", platform="doh-google")
    assert (incident.source, incident.count) == ("proxy", 1)


# -- what the ruleset drops -------------------------------------------------------------------


def quic_initial(host: str) -> bytes:
    return synth.quic_initials(synth.client_hello(host, alpn=["h3"]), dcid=bytes(range(8)))[0]


def test_udp_443_is_dropped_by_the_shipped_ruleset(net: GatewayNet) -> None:
    before = net.counter("forward", "udp dport 443")
    youtube = SITES["www.youtube.com"]
    for client in (UNDER13, TEACHER):
        assert udp_exchange(net.cl, client, youtube, 443, quic_initial("www.youtube.com")) == (
            "refused"
        )
        assert "udp/443" not in net.listeners.from_(client)
    assert net.counter("forward", "udp dport 443") >= before + 2
    # the server is there: from the gateway itself (not forwarded) it answers
    assert udp_exchange(net.gw, "198.51.100.1", youtube, 443, b"x") == "answered"


def test_dns_goes_to_the_district_resolver_only(net: GatewayNet) -> None:
    query = dns_query("www.school-site.example")
    assert udp_exchange(net.cl, TEEN, GW_LAN, 53, query) == "answered"
    # the internet's DNS server answers the gateway, but not a device going around it
    assert udp_exchange(net.gw, "198.51.100.1", INET_DNS, 53, query) == "answered"
    assert udp_exchange(net.cl, TEEN, INET_DNS, 53, query) == "refused"
    assert tcp_connect(net.cl, TEEN, INET_DNS, 53) == "refused"
    # DNS over TLS and over QUIC: port 853, TCP and UDP
    assert tcp_connect(net.gw, "198.51.100.1", DOT_SERVER, 853) == "connected"
    assert tcp_connect(net.cl, TEEN, DOT_SERVER, 853) == "refused"
    assert udp_exchange(net.cl, TEEN, DOT_SERVER, 853, quic_initial("dns.adguard-dns.com")) == (
        "refused"
    )
    assert net.listeners.from_(TEEN) == []
    assert net.counter("forward", "th dport 53") >= 2
    assert net.counter("forward", "th dport 853") >= 2


# -- the sensor on the client-side interface --------------------------------------------------


def sensor_saw(net: GatewayNet, client: str, protocol: str, host: str) -> dict[str, object]:
    def find() -> dict[str, object] | None:
        for o in net.sensor_lines():
            if (o["client"], o["protocol"], o["hostname"]) == (client, protocol, host):
                return o
        return None

    return wait_for(find, 15, f"the sensor to report {protocol} {host} from {client}")


def test_the_sensor_reports_the_hosts_the_proxy_decided_with_the_same_decision(
    net: GatewayNet,
) -> None:
    cases = [
        (UNDER13, "https://www.instagram.com/", "block", "under13"),
        (TEACHER, "https://www.instagram.com/", "allow", "staff"),
        (TEEN, "https://www.youtube.com/", "restrict", "approved-youtube-school-hours"),
    ]
    for client, url, decision, rule in cases:
        r = net.get(client, url, headers=HTML)
        host = url.split("/")[2]
        # the proxy's decision, as the client saw it
        if decision == "block":
            assert r.status == 403 and f">{rule}<" in r.body
        elif decision == "restrict":
            assert net.origin.requests_to(host)[-1].headers.get("YouTube-Restrict") == "Strict"
        else:
            assert r.status == 200 and ORIGIN_CA_NAME in r.issuer
        for protocol in ("dns", "tls"):
            o = sensor_saw(net, client, protocol, host)
            assert (o["decision"], o["rule"]) == (decision, rule), o
            assert o["incident"] is None


def test_the_sensor_records_quic_that_skipped_the_proxy(net: GatewayNet) -> None:
    person = person_of_device(net, "cb-00240")
    udp_exchange(net.cl, UNDER13, SITES["www.tiktok.com"], 443, quic_initial("www.tiktok.com"))
    o = sensor_saw(net, UNDER13, "quic", "www.tiktok.com")
    assert (o["decision"], o["rule"], o["incident"]) == ("block", "quic-bypass:under13", "medium")
    found = wait_for(
        lambda: net.incidents(person=person, rule_id="quic-bypass:under13", platform="tiktok"),
        15,
        "the incident",
    )
    assert found[0].source == "sensor" and found[0].host == "www.tiktok.com"


def test_the_sensor_records_a_bypass_outside_the_redirect(net: GatewayNet) -> None:
    """DNS over HTTPS to an address the device knew beforehand: never resolved by the district
    resolver, so not in the sets, so routed past the proxy. Only the sensor sees it."""
    address = SITES["dns.cloudflare.com"]
    assert address not in net.set_elements()
    before = net.metric("monitor_requests_total", platform="doh-cloudflare")
    r = net.get(UNDER13, "https://dns.cloudflare.com/dns-query", address=address)
    assert r.status == 200 and ORIGIN_CA_NAME in r.issuer  # it got through
    assert net.origin.requests_to("dns.cloudflare.com")[-1].peer == UNDER13
    assert net.metric("monitor_requests_total", platform="doh-cloudflare") == before
    o = sensor_saw(net, UNDER13, "tls", "dns.cloudflare.com")
    assert (o["decision"], o["rule"], o["incident"]) == ("block", "bypass-student", "high")
    person = person_of_device(net, "cb-00240")
    found = wait_for(
        lambda: net.incidents(person=person, platform="doh-cloudflare"), 15, "the incident"
    )
    assert found[0].source == "sensor" and found[0].rule_id == "bypass-student"


# -- a worker killed under traffic ------------------------------------------------------------


class Posts:
    """Under-13 devices posting in a loop (each a decrypted request the proxy blocks with an
    incident, rule under13-activity); every answer kept."""

    def __init__(self, net: GatewayNet, clients: list[str]) -> None:
        self.net, self.clients = net, clients
        self.results: list[tuple[float, str, int, str]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(c,), daemon=True) for c in clients
        ]

    def _run(self, client: str) -> None:
        while not self._stop.is_set():
            r = self.net.get(client, POST_URL, data="x=1", timeout=5)
            self.results.append((time.monotonic(), client, r.status, r.body[:200]))

    def decided(self) -> int:
        return sum(1 for _, _, status, body in self.results if status == 403 and "under13" in body)

    def __enter__(self) -> Posts:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)


def activity_events(net: GatewayNet) -> int:
    return sum(i.count for i in net.incidents(rule_id="under13-activity"))


def test_a_killed_worker_is_back_within_seconds_and_no_incident_is_lost(
    net: GatewayNet,
) -> None:
    """With --nft-failover the killed worker's devices are served by the other worker while it
    restarts (the map `workers` points its hash bucket there), then go back to it."""
    clients = ["192.0.2.11", "192.0.2.12", "192.0.2.16", "192.0.2.99"]  # under 13 or unknown
    base = activity_events(net)
    pids = net.pids()
    victim = "w1"
    old = pids[victim]
    with Posts(net, clients) as posts:
        wait_for(lambda: posts.decided() >= 8, 30, "traffic before the kill")
        killed = time.monotonic()
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: net.pids().get(victim, old) != old, 20, "the restart in the log")
        restarted = time.monotonic() - killed
        # every device is served again afterwards, the killed worker's too
        served_after = wait_for(
            lambda: (
                {c for t, c, s, _ in list(posts.results) if t > killed + restarted and s == 403}
                >= set(clients)
                and time.monotonic()
            ),
            30,
            "every device served after the restart",
        )
    decided = posts.decided()
    failed = [r for r in posts.results if r[2] != 403]
    log = net.log_text()
    assert f"worker {victim} (pid {old}) was killed by SIGKILL" in log
    # every decision the clients saw is an incident event in the store, once
    total = wait_for(
        lambda: (n := activity_events(net)) >= base + decided and n, 30, "the incidents"
    )
    print(
        f"worker {victim} SIGKILLed: restarted after {restarted:.2f} s, every device served "
        f"again {served_after - killed:.2f} s after the kill; {decided} posts decided, "
        f"{len(failed)} failed meanwhile; {total - base} incident events stored"
    )
    # none lost; one more than the clients saw only for a post decided as its worker died
    assert base + decided <= total <= base + decided + len(failed)
    assert restarted < 15
    assert net.pids()[victim] != old and net.pids()["w0"] == pids["w0"]
    # failover: while w1 was down, its devices were served through w0 (every device had a
    # decision between the kill and w1 listening again), then the map went back
    assert f"failover: worker {victim}'s devices -> port {WORKER_BASE}" in log
    meanwhile = {c for t, c, s, _ in posts.results if killed < t < killed + restarted and s == 403}
    assert meanwhile == set(clients), (meanwhile, restarted)
    wait_for(lambda: "failover: every worker serves its own" in net.log_text(), 10, "the way back")
    buckets = net.gw.run(["nft", "list", "map", "inet", "student_monitor", "workers"]).stdout
    assert f"0x00000001 : {WORKER_BASE + 1}" in buckets, buckets
