"""SafeSearch at the district's resolver: which names each search service asks schools to
answer with its SafeSearch address, and that address.

Each service documents a CNAME: answer ``www.google.com`` (and every Google search domain)
with ``forcesafesearch.google.com``, ``www.bing.com`` with ``strict.bing.com``, DuckDuckGo
with ``safe.duckduckgo.com``, YouTube's page and API names with ``restrict.youtube.com`` (or
``restrictmoderate.youtube.com``). dnsmasq follows a CNAME only to a name it knows itself, so
the resolver configuration also gives the target its addresses, as the services publish them
for hosts files. Those addresses can change: ``--safesearch-address NAME=ADDR,…`` replaces
one without waiting for a release. DuckDuckGo publishes no address (its servers move), so it
must be given that way.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from monitor.yamlfile import shorten

# Google's search domains (google.com and its country domains, as www.google.com/supported_domains
# lists them), generated from the three shapes they come in.
_GOOGLE_TLDS = (
    "ad ae al am as at az ba be bf bg bi bj bs bt by ca cat cd cf cg ch ci cl cm cn cv cz de "
    "dj dk dm dz ee es fi fm fr ga ge gg gl gm gr gy hn hr ht hu ie im iq is it je jo kg ki kz "
    "la li lk lt lu lv md me mg mk ml mn mu mv mw ne nl no nr nu pl pn ps pt ro rs ru rw sc se "
    "sh si sk sm sn so sr st td tg tl tm tn to tt vu ws"
).split()
_GOOGLE_COM_CC = (
    "af ag ar au bd bh bn bo br bz co cu cy do ec eg et fj gh gi gt hk jm kh kw lb ly mm mt mx "
    "my na ng ni np om pa pe pg ph pk pr py qa sa sb sg sl sv tj tr tw ua uy vc vn"
).split()
_GOOGLE_CO_CC = "ao bw ck cr id il in jp ke kr ls ma mz nz th tz ug uk uz ve vi za zm zw".split()


def google_search_domains() -> tuple[str, ...]:
    """google.com and every Google country search domain (google.de, google.co.uk, …)."""
    return (
        "google.com",
        *(f"google.{t}" for t in _GOOGLE_TLDS),
        *(f"google.com.{c}" for c in _GOOGLE_COM_CC),
        *(f"google.co.{c}" for c in _GOOGLE_CO_CC),
    )


@dataclass(frozen=True)
class Service:
    """One SafeSearch service: the names to rewrite, the target and its published addresses."""

    key: str
    title: str
    target: str
    names: tuple[str, ...]
    addresses: tuple[str, ...]  # () when the service publishes none
    source: str  # where the service documents the CNAME (and the addresses)


def _google() -> Service:
    names = tuple(n for d in google_search_domains() for n in (f"www.{d}", d))
    return Service(
        "google",
        "Google SafeSearch",
        "forcesafesearch.google.com",
        names,
        ("216.239.38.120", "2001:4860:4802:32::78"),
        "Google Search Help, 'Keep SafeSearch turned on for your school' (support.google.com/"
        "websearch/answer/186669)",
    )


_YOUTUBE_NAMES = (
    "www.youtube.com",
    "m.youtube.com",
    "youtubei.googleapis.com",
    "youtube.googleapis.com",
    "www.youtube-nocookie.com",
)
_YOUTUBE_SOURCE = (
    "Google Workspace Admin Help, 'Restrict YouTube content on your network' (support.google.com"
    "/a/answer/6214622)"
)

SERVICES: dict[str, Service] = {
    "google": _google(),
    "bing": Service(
        "bing",
        "Bing SafeSearch (strict)",
        "strict.bing.com",
        ("www.bing.com", "bing.com"),
        # IPv4 only: AAAA questions for the rewritten names get an empty answer, so clients
        # connect over IPv4 to the strict address rather than over IPv6 to the normal one
        ("204.79.197.220",),
        "Microsoft, 'Block adult content with SafeSearch' for schools and networks",
    ),
    "duckduckgo": Service(
        "duckduckgo",
        "DuckDuckGo safe search (strict)",
        "safe.duckduckgo.com",
        ("duckduckgo.com", "www.duckduckgo.com"),
        (),
        "DuckDuckGo Help, 'Can I force safe search on my network?' (a CNAME; no fixed address)",
    ),
    "youtube=strict": Service(
        "youtube=strict",
        "YouTube Restricted Mode (strict)",
        "restrict.youtube.com",
        _YOUTUBE_NAMES,
        ("216.239.38.120", "2001:4860:4802:32::78"),
        _YOUTUBE_SOURCE,
    ),
    "youtube=moderate": Service(
        "youtube=moderate",
        "YouTube Restricted Mode (moderate)",
        "restrictmoderate.youtube.com",
        _YOUTUBE_NAMES,
        ("216.239.38.119", "2001:4860:4802:32::77"),
        _YOUTUBE_SOURCE,
    ),
}
CHOICES = "google, bing, duckduckgo, youtube=strict, youtube=moderate"


@dataclass(frozen=True)
class SafeSearch:
    """The services to enforce, with their target addresses resolved."""

    services: tuple[Service, ...] = ()
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # target → addresses

    def __bool__(self) -> bool:
        return bool(self.services)


def parse_safesearch(spec: str, overrides: tuple[str, ...] = ()) -> SafeSearch:
    """``google,bing,duckduckgo,youtube=strict`` (``youtube`` alone is strict) and
    ``TARGET=ADDR[,ADDR]`` overrides → :class:`SafeSearch`; ValueError naming what is wrong."""
    chosen: dict[str, Service] = {}
    for raw in spec.split(","):
        item = raw.strip().lower().replace(" ", "")
        if not item:
            continue
        key = "youtube=strict" if item == "youtube" else item
        if key not in SERVICES:
            raise ValueError(f"unknown SafeSearch service '{shorten(raw.strip())}' (use {CHOICES})")
        service = SERVICES[key]
        if any(s.target != service.target and s.names == service.names for s in chosen.values()):
            raise ValueError("choose one YouTube mode: youtube=strict or youtube=moderate")
        chosen[key] = service
    given = _parse_overrides(overrides)
    unknown = set(given) - {s.target for s in SERVICES.values()}
    if unknown:
        targets = ", ".join(sorted({s.target for s in SERVICES.values()}))
        raise ValueError(f"no SafeSearch service answers with '{sorted(unknown)[0]}' ({targets})")
    addresses: dict[str, tuple[str, ...]] = {}
    for service in chosen.values():
        found = given.get(service.target, service.addresses)
        if not found:
            raise ValueError(
                f"{service.title} publishes no fixed address for {service.target}: look it up "
                f"(dig +short {service.target} A; dig +short {service.target} AAAA) and give "
                f"--safesearch-address {service.target}=ADDRESS[,ADDRESS], and check it again "
                "from time to time"
            )
        addresses[service.target] = found
    return SafeSearch(tuple(chosen.values()), addresses)


def _parse_overrides(overrides: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for raw in overrides:
        name, sep, rest = raw.partition("=")
        name = name.strip().lower().rstrip(".")
        if not sep or not name or not rest.strip():
            raise ValueError(f"'{shorten(raw)}' is not NAME=ADDRESS[,ADDRESS]")
        addresses = []
        for a in rest.split(","):
            try:
                addresses.append(str(ipaddress.ip_address(a.strip())))
            except ValueError:
                raise ValueError(
                    f"'{shorten(a.strip())}' in '{shorten(raw)}' is not an IP address"
                ) from None
        out[name] = tuple(addresses)
    return out
