"""The district resolver's configuration for transparent mode: only catalogue traffic is
redirected to the proxy.

The gateway redirects TCP 80 and 443 to the proxy only for the addresses in the nftables sets
``catalogue4`` and ``catalogue6`` (table ``inet student_monitor``); everything else is routed at
line rate. dnsmasq (2.87 or newer) fills those sets as it answers: every address it receives
from upstream for a catalogue name (a platform's or bypass service's suffix and its subdomains,
or an exact host) goes into them, following CNAME chains. dnsmasq matches ``/name/`` on label
boundaries (``instanttelegram.com`` is not ``telegram.com``), like the classifier.

Limits, by the nature of DNS:

* An address, not a name, is redirected: a CDN address shared by a catalogue name and an
  allowed site brings that site's connections to the proxy too (they pass through, at the cost
  of a passthrough). An exact catalogue host under a shared CDN suffix also matches its own
  subdomains here, which the classifier does not count (again: a passthrough, nothing more).
* A client that gets an address elsewhere (DNS over HTTPS, a hard-coded address, another
  resolver) never fills the sets: the policy's bypass rules, the firewall's DNS rules and the
  sensor catch those.
* dnsmasq adds addresses when an answer comes from upstream, not when it answers from its
  cache, and never for names it answers itself (SafeSearch below): sets must not expire
  elements before dnsmasq's cache and the clients' caches do, and an address dnsmasq answers
  locally must be put into the sets by the firewall's own rules.

Optionally the same file enforces SafeSearch (:mod:`monitor.gateway.safesearch`) for everyone
who uses this resolver.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from monitor.gateway.safesearch import SafeSearch, Service
from monitor.platforms.catalogue import Catalogue
from monitor.platforms.classify import Classifier

TABLE = ("inet", "student_monitor")
SETS = ("catalogue4", "catalogue6")
MIN_DNSMASQ = "2.87"
# dnsmasq reads a configuration line into a buffer of about a thousand bytes and splits longer
# ones (a "bad option" on the line after): keep every line well below that
MAX_LINE = 900


def nftset_spec(table: tuple[str, str] = TABLE, sets: tuple[str, str] = SETS) -> str:
    family, name = table
    return f"4#{family}#{name}#{sets[0]},6#{family}#{name}#{sets[1]}"


def resolver_names(catalogue: Catalogue) -> list[tuple[str, list[str]]]:
    """(platform id, names) for every platform and bypass service, in catalogue order: its
    suffixes and the exact hosts no catalogue suffix covers already (dnsmasq matches a name
    and its subdomains, so a suffix covers every host under it)."""
    suffixes = {s for p in catalogue for s in p.suffixes}

    def covered(host: str) -> bool:
        labels = host.split(".")
        return any(".".join(labels[i:]) in suffixes for i in range(1, len(labels)))

    out: list[tuple[str, list[str]]] = []
    for p in catalogue:
        names = list(dict.fromkeys([*p.suffixes, *(h for h in p.hosts if h not in suffixes)]))
        names = [n for n in names if not covered(n)]
        if names:
            out.append((p.id, names))
    return out


def _chunks(prefix: str, items: Iterable[str], sep: str, suffix: str) -> Iterator[str]:
    """``prefix + items joined by sep + suffix``, split into lines shorter than MAX_LINE."""
    line: list[str] = []
    size = len(prefix) + len(suffix)
    for item in items:
        if line and size + len(item) + len(sep) > MAX_LINE:
            yield prefix + sep.join(line) + suffix
            line, size = [], len(prefix) + len(suffix)
        line.append(item)
        size += len(item) + len(sep)
    if line:
        yield prefix + sep.join(line) + suffix


def render_dnsmasq(
    catalogue: Catalogue,
    safesearch: SafeSearch | None = None,
    *,
    generated: str = "",
    table: tuple[str, str] = TABLE,
    sets: tuple[str, str] = SETS,
) -> str:
    """A dnsmasq configuration fragment (for ``conf-dir`` or ``conf-file``)."""
    when = f" on {generated}" if generated else ""
    family, name = table
    lines = [
        f"# dnsmasq configuration of the student activity monitor, generated{when} from the",
        f"# platform catalogue ({len(catalogue)} platforms and bypass services). Regenerate it",
        "# with `monitor gateway resolver --kind dnsmasq` rather than editing it.",
        "#",
        f"# Needs dnsmasq {MIN_DNSMASQ} or newer (nftset=) and, before dnsmasq starts, the",
        f"# nftables sets {family} {name} {sets[0]} (ipv4_addr) and {sets[1]} (ipv6_addr):",
        "# the gateway redirects TCP 80/443 to the proxy only for the addresses in them.",
        "# The sets get an address when an answer comes from upstream, not from dnsmasq's cache:",
        "# after the sets are flushed (a reboot, a ruleset reload) restart dnsmasq too, and never",
        "# let an element expire before dnsmasq's cache and the clients' caches do.",
        "#",
        "# Limits: a CDN address shared with an allowed site brings that site to the proxy too",
        "# (it passes through); clients that resolve elsewhere (DNS over HTTPS, hard-coded",
        "# addresses) skip the sets: the bypass rules, the firewall and the sensor catch those.",
    ]
    spec = nftset_spec(table, sets)
    for pid, names in resolver_names(catalogue):
        platform = catalogue[pid]
        lines.append(f"# {pid}: {platform.name}")
        lines.extend(_chunks("nftset=/", names, "/", f"/{spec}"))
    if safesearch:
        lines.extend(_safesearch_lines(safesearch, catalogue, table, sets))
    return "\n".join(lines) + "\n"


def _safesearch_lines(
    safesearch: SafeSearch, catalogue: Catalogue, table: tuple[str, str], sets: tuple[str, str]
) -> list[str]:
    lines = [
        "",
        "# SafeSearch for everyone who uses this resolver (staff included): each search service",
        "# asks schools to answer its names with its SafeSearch name. dnsmasq follows a CNAME",
        "# only to a name it knows itself, so the target gets the addresses the service",
        "# publishes; they can change (monitor gateway resolver --safesearch-address).",
        "# Names without an address of a kind (no IPv6 for strict.bing.com) get an empty answer",
        "# for that kind, so clients use the other one rather than the unrestricted service.",
    ]
    classify = Classifier(catalogue)
    for service in safesearch.services:
        addresses = safesearch.addresses[service.target]
        lines.append(f"# {service.title}: {service.source}")
        lines.append(f"host-record={service.target},{','.join(addresses)}")
        lines.extend(_chunks("cname=", service.names, ",", f",{service.target}"))
        if _answers_catalogue_names(service, classify):
            family, name = table
            v4 = ", ".join(a for a in addresses if ":" not in a)
            v6 = ", ".join(a for a in addresses if ":" in a)
            lines += [
                "# These are catalogue names, answered here rather than from upstream, so dnsmasq",
                "# does not put this address into the sets: the firewall must hold it there",
                "# permanently, or these connections skip the proxy:",
                f"#   nft add element {family} {name} {sets[0]} {{ {v4} }}",
            ]
            if v6:
                lines.append(f"#   nft add element {family} {name} {sets[1]} {{ {v6} }}")
    return lines


def static_set_elements(safesearch: SafeSearch, catalogue: Catalogue) -> tuple[str, ...]:
    """The SafeSearch addresses the firewall must keep in the catalogue sets itself: those of
    targets answering catalogue names (YouTube's), which dnsmasq never adds."""
    classify = Classifier(catalogue)
    out: list[str] = []
    for service in safesearch.services:
        if _answers_catalogue_names(service, classify):
            out.extend(safesearch.addresses[service.target])
    return tuple(dict.fromkeys(out))


def _answers_catalogue_names(service: Service, classify: Classifier) -> bool:
    return any(classify.platform_of(n) is not None for n in service.names)
