"""A school day's new TLS connections, as a deterministic mix: who opens them, to which host.

    from trafficmix import generate, shares
    conns = generate(3000, seed=1, in_hours=True)   # the same list for the same arguments
    .venv/bin/python bench/trafficmix.py [--n 3000] [--seed 1] [--out-of-hours]

Each connection is one CONNECT, TLS handshake, request and close from a persona of the example
district (examples/district/DEMO.md: its demo loopback addresses) to one host, with the
platform the mix means that host to be (None: not a catalogue host) and its role on that
platform (page, api or media). bench/bench_capacity.py runs the mix through real mitmdumps
with the monitor's addons and reads what they did from their metrics; this module only
generates it and says what a PAC file or DNS-driven redirect would send to the proxy (the
catalogue's own classifier decides, as monitor/gateway/pac.py does).

Where the shares come from. Nobody publishes new-TLS-connection counts per host for school
networks; the published studies count time on site or pages, so the connection shares below
are ASSUMPTIONS, informed by:
  * GoGuardian's 2018 Chromebook report (about 5 million students; summarised at
    learningaloud.com/blurts/2018/02/11/chromebook-data): Google's tools took 69% of time,
    Docs most of it, YouTube the next largest; Quizlet the most used site in middle and high
    school; 53-57% of middle and high school students take the device home.
  * GoGuardian, March-May 2020 (THE Journal, 2020-06-15): the top ten sites were YouTube,
    Clever, Zoom, Khan Academy, Instructure, Flipgrid, ClassLink, IXL, Quizlet, Edpuzzle, and
    YouTube took more time than the other nine together (remote learning, an upper bound).
  * HTTP Archive Web Almanac 2024, Third Parties: 92% of pages load third parties (a median of
    27 on the top million sites), and Google owns five of the ten most used third-party
    domains: most connections of a page go to CDN, font, tag and analytics hosts that are in
    no catalogue.
  * The design's estimate to check against (shared/DESIGN.md, issue "district-sized
    gateway"): about 15% of connections decrypted in school hours today, 22-25% for teens. The
    YouTube shares below are set so that today's catalogue lands there.
YouTube is many connections per view: the page, the youtubei API, thumbnails (i.ytimg.com),
avatars (yt3.ggpht.com) and several googlevideo.com media connections per video.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Sizing: new TLS connections per student per minute while a device is in use in school hours.
# ASSUMPTION: about one navigation a minute in web apps (Docs, Classroom, quizzes), each page
# naming 15-30 hosts (Web Almanac), most of them already connected (HTTP/2 keeps connections
# for minutes and coalesces hosts of one certificate): about 6 new connections a minute on
# average; PEAK_FACTOR for the busiest minutes (everyone signing in as a class starts).
CONNECTIONS_PER_STUDENT_MINUTE = 6.0
PEAK_FACTOR = 3.0


@dataclass(frozen=True)
class Persona:
    name: str  # under13 | teen | staff | unknown: what the district must resolve them to
    addresses: tuple[str, ...]  # the example district's demo addresses (DEMO.md)
    note: str


PERSONAS: tuple[Persona, ...] = (
    Persona("under13", ("127.0.0.11",), "student, 11, grade 6 (ms), on a Chromebook"),
    Persona("teen", ("127.0.0.13", "127.0.0.15", "127.0.0.17"), "students 13, 15 and 17 (ms, hs)"),
    Persona("staff", ("127.0.0.50", "127.0.0.51"), "a teacher's laptop, a counselor"),
    # a spare Chromebook with no user, and addresses the district does not know
    Persona("unknown", ("127.0.0.99", "127.0.0.201", "127.0.0.202"), "treated as under 13"),
)
PERSONA = {p.name: p for p in PERSONAS}

# Share of connections by persona. ASSUMPTION: about 60% of K-12 students are 12 or under
# (K-7; NCES enrolment by grade), but younger children use devices less and for shorter
# sessions, so under-13s open fewer connections than teens; staff about 8% of people but busier
# devices; out of school hours the devices that are still in use are mostly teens' (GoGuardian:
# 53-57% of middle and high school students take devices home, 27% in elementary).
PERSONA_WEIGHTS: dict[bool, dict[str, float]] = {
    True: {"under13": 35, "teen": 45, "staff": 12, "unknown": 8},
    False: {"under13": 25, "teen": 60, "staff": 10, "unknown": 5},
}

# Share of a persona's connections by category, in percent (each row adds up to 100).
# ASSUMPTIONS as said at the top; school hours are Google Workspace and learning sites,
# evenings more YouTube and social media.
CATEGORY_WEIGHTS: dict[tuple[str, bool], dict[str, float]] = {
    ("teen", True): {
        "workspace": 24, "search": 7, "education": 12, "cdn": 15, "updates": 6,
        "productivity": 2, "web": 5, "youtube": 22, "social": 6.5, "kids": 0, "bypass": 0.5,
    },
    ("under13", True): {
        "workspace": 26, "search": 6, "education": 20, "cdn": 15, "updates": 7,
        "productivity": 1, "web": 6, "youtube": 12, "social": 4, "kids": 2.7, "bypass": 0.3,
    },
    ("staff", True): {
        "workspace": 30, "search": 8, "education": 10, "cdn": 16, "updates": 6,
        "productivity": 10, "web": 8, "youtube": 9, "social": 3, "kids": 0, "bypass": 0,
    },
    ("teen", False): {
        "workspace": 14, "search": 7, "education": 6, "cdn": 17, "updates": 7,
        "productivity": 1, "web": 10, "youtube": 26, "social": 11.5, "kids": 0, "bypass": 0.5,
    },
    ("under13", False): {
        "workspace": 14, "search": 6, "education": 12, "cdn": 17, "updates": 8,
        "productivity": 0, "web": 11, "youtube": 20, "social": 6, "kids": 5.7, "bypass": 0.3,
    },
    ("staff", False): {
        "workspace": 24, "search": 8, "education": 5, "cdn": 17, "updates": 7,
        "productivity": 10, "web": 14, "youtube": 10, "social": 5, "kids": 0, "bypass": 0,
    },
}  # fmt: skip
# unknown people (spare devices, guests) browse like the youngest students
CATEGORY_WEIGHTS[("unknown", True)] = CATEGORY_WEIGHTS[("under13", True)]
CATEGORY_WEIGHTS[("unknown", False)] = CATEGORY_WEIGHTS[("under13", False)]


@dataclass(frozen=True)
class HostEntry:
    host: str
    weight: float  # within its category (or platform, for social)
    role: str  # web (not a catalogue host) | page | api | media
    platform: str | None  # the catalogue platform the mix means it to be
    path: str = "/"


def _web(*hosts: tuple[str, float]) -> tuple[HostEntry, ...]:
    return tuple(HostEntry(h, w, "web", None) for h, w in hosts)


def _googlevideo() -> tuple[HostEntry, ...]:
    # media servers are named per cache node: several different names per video
    nodes = ("ab5l6nrz", "8xgp1vo-p5qe", "p5qlsn7d", "5hne6nsy", "a5mekned", "vgqsrnes")
    return tuple(
        HostEntry(
            f"rr{i % 5 + 1}---sn-{node}.googlevideo.com",
            38 / len(nodes),
            "media",
            "youtube",
            "/videoplayback?id=mix",
        )
        for i, node in enumerate(nodes)
    )


# Non-catalogue hosts. Google's school services are never YouTube (catalogue.yaml's rule).
CATEGORY_HOSTS: dict[str, tuple[HostEntry, ...]] = {
    "workspace": _web(
        ("docs.google.com", 20), ("classroom.google.com", 10), ("drive.google.com", 8),
        ("accounts.google.com", 8), ("mail.google.com", 5), ("meet.google.com", 3),
        ("www.gstatic.com", 10), ("ssl.gstatic.com", 6), ("fonts.gstatic.com", 6),
        ("lh3.googleusercontent.com", 6), ("docs.googleusercontent.com", 3),
        ("apis.google.com", 4), ("clients6.google.com", 4), ("play.google.com", 3),
        ("sites.google.com", 2), ("content-classroom.googleapis.com", 2),
    ),
    "search": _web(
        ("www.google.com", 60), ("encrypted-tbn0.gstatic.com", 15), ("www.bing.com", 8),
        ("duckduckgo.com", 4), ("translate.google.com", 8), ("www.googleapis.com", 5),
    ),
    "education": _web(
        ("www.khanacademy.org", 8), ("cdn.kastatic.org", 6), ("en.wikipedia.org", 10),
        ("upload.wikimedia.org", 6), ("quizlet.com", 8), ("assets.quizlet.com", 4),
        ("www.ixl.com", 7), ("clever.com", 6), ("launchpad.classlink.com", 4),
        ("kahoot.it", 4), ("edpuzzle.com", 4), ("www.desmos.com", 4), ("newsela.com", 3),
        ("www.canva.com", 4), ("canvas.instructure.com", 5), ("www.brainpop.com", 3),
        ("www.commonlit.org", 3), ("www.coolmathgames.com", 4), ("scratch.mit.edu", 3),
    ),
    "cdn": _web(
        ("www.googletagmanager.com", 14), ("www.google-analytics.com", 12),
        ("fonts.googleapis.com", 12), ("ajax.googleapis.com", 5), ("cdnjs.cloudflare.com", 7),
        ("cdn.jsdelivr.net", 6), ("unpkg.com", 2), ("d2v9ipibika81v.cloudfront.net", 5),
        ("static.cloudflareinsights.com", 4), ("securepubads.g.doubleclick.net", 6),
        ("stats.g.doubleclick.net", 5), ("fundingchoicesmessages.google.com", 4),
        ("jnn-pa.googleapis.com", 4), ("js-agent.newrelic.com", 3), ("use.typekit.net", 3),
        ("code.jquery.com", 3), ("cdn.segment.com", 2), ("browser.sentry-cdn.com", 3),
    ),
    "updates": _web(
        ("update.googleapis.com", 12), ("dl.google.com", 8), ("clients2.google.com", 12),
        ("edgedl.me.gvt1.com", 6), ("safebrowsing.googleapis.com", 14),
        ("optimizationguide-pa.googleapis.com", 8), ("content-autofill.googleapis.com", 8),
        ("m.google.com", 6), ("chromesyncpasswords-pa.googleapis.com", 4),
        ("settings-win.data.microsoft.com", 6), ("v10.events.data.microsoft.com", 6),
        ("mesu.apple.com", 3), ("gdmf.apple.com", 3), ("ocsp.pki.goog", 4),
    ),
    "productivity": _web(
        ("login.microsoftonline.com", 20), ("outlook.office365.com", 15), ("www.office.com", 10),
        ("teams.microsoft.com", 15), ("zoom.us", 10), ("us02web.zoom.us", 8),
        ("district.powerschool.com", 12), ("www.remind.com", 10),
    ),
    "web": _web(
        ("www.nytimes.com", 8), ("www.weather.gov", 6), ("www.amazon.com", 10),
        ("www.espn.com", 8), ("www.nasa.gov", 5), ("www.pbs.org", 6), ("www.chess.com", 8),
        ("poki.com", 8), ("www.nationalgeographic.com", 5), ("www.britannica.com", 6),
        ("open.spotify.com", 8), ("www.school-site.example", 12), ("www.merriam-webster.com", 5),
        ("www.timeanddate.com", 5),
    ),
    "youtube": (
        HostEntry("www.youtube.com", 18, "page", "youtube", "/watch?v=mix"),
        HostEntry("m.youtube.com", 2, "page", "youtube", "/watch?v=mix"),
        HostEntry("www.youtube-nocookie.com", 5, "page", "youtube", "/embed/mix"),
        HostEntry("youtubei.googleapis.com", 5, "api", "youtube", "/youtubei/v1/player"),
        HostEntry("i.ytimg.com", 22, "media", "youtube", "/vi/mix/hqdefault.jpg"),
        HostEntry("i9.ytimg.com", 4, "media", "youtube", "/vi/mix/mqdefault.jpg"),
        HostEntry("yt3.ggpht.com", 6, "media", "youtube", "/avatar.jpg"),
        *_googlevideo(),
    ),
    "kids": (
        HostEntry("www.youtubekids.com", 60, "page", "youtube-kids"),
        HostEntry("kids.youtube.com", 40, "page", "youtube-kids"),
    ),
    "bypass": (
        HostEntry("dns.google", 40, "api", "doh-google", "/dns-query?dns=AAABAAABAAAAAAAA"),
        HostEntry("nordvpn.com", 25, "page", "nordvpn"),
        HostEntry("www.croxyproxy.com", 35, "page", "croxyproxy"),
    ),
}  # fmt: skip

# Social and other catalogue platforms: share of the "social" category by platform
# (ASSUMPTION, after Pew Research's 2024 teen survey order: YouTube, TikTok, Instagram,
# Snapchat; Roblox and Discord for gaming), then hosts by role: pages about a third of a
# platform's connections, APIs a fifth, media and CDN hosts the rest.
SOCIAL: dict[str, tuple[float, tuple[HostEntry, ...]]] = {
    "tiktok": (25, (
        HostEntry("www.tiktok.com", 35, "page", "tiktok"),
        HostEntry("mcs.tiktokw.us", 10, "api", "tiktok", "/v1/list"),
        HostEntry("mon.tiktokv.com", 10, "api", "tiktok", "/monitor_browser/collect"),
        HostEntry("p16-sign-va.tiktokcdn.com", 25, "media", "tiktok", "/img/mix.jpeg"),
        HostEntry("v16-webapp-prime.tiktok.com", 20, "media", "tiktok", "/video/tos/mix"),
    )),
    "instagram": (15, (
        HostEntry("www.instagram.com", 35, "page", "instagram"),
        HostEntry("i.instagram.com", 20, "api", "instagram", "/api/v1/feed/timeline/"),
        HostEntry("scontent-iad3-1.cdninstagram.com", 30, "media", "instagram", "/v/mix.jpg"),
        HostEntry("static.cdninstagram.com", 15, "media", "instagram", "/rsrc.php/mix.js"),
    )),
    "snapchat": (10, (
        HostEntry("www.snapchat.com", 35, "page", "snapchat"),
        HostEntry("web.snapchat.com", 20, "page", "snapchat"),
        HostEntry("cf-st.sc-cdn.net", 45, "media", "snapchat", "/d/mix"),
    )),
    "discord": (10, (
        HostEntry("discord.com", 35, "page", "discord"),
        HostEntry("gateway.discord.gg", 20, "api", "discord", "/?v=10"),
        HostEntry("cdn.discordapp.com", 45, "media", "discord", "/attachments/mix.png"),
    )),
    "roblox": (12, (
        HostEntry("www.roblox.com", 35, "page", "roblox"),
        HostEntry("apis.roblox.com", 20, "api", "roblox", "/universes/v1/mix"),
        HostEntry("tr.rbxcdn.com", 45, "media", "roblox", "/mix/420/420/Image/Png"),
    )),
    "pinterest": (8, (
        HostEntry("www.pinterest.com", 40, "page", "pinterest"),
        HostEntry("i.pinimg.com", 60, "media", "pinterest", "/236x/mix.jpg"),
    )),
    "reddit": (8, (
        HostEntry("www.reddit.com", 40, "page", "reddit"),
        HostEntry("i.redd.it", 30, "media", "reddit", "/mix.jpg"),
        HostEntry("www.redditstatic.com", 30, "media", "reddit", "/shreddit/mix.js"),
    )),
    "twitch": (5, (
        HostEntry("www.twitch.tv", 35, "page", "twitch"),
        HostEntry("gql.twitch.tv", 20, "api", "twitch", "/gql"),
        HostEntry("static-cdn.jtvnw.net", 45, "media", "twitch", "/jtv_user_pictures/mix.png"),
    )),
    "facebook": (4, (
        HostEntry("www.facebook.com", 40, "page", "facebook"),
        HostEntry("static.xx.fbcdn.net", 30, "media", "facebook", "/rsrc.php/mix.js"),
        HostEntry("scontent.xx.fbcdn.net", 30, "media", "facebook", "/v/mix.jpg"),
    )),
    "twitter": (3, (
        HostEntry("x.com", 40, "page", "twitter"),
        HostEntry("pbs.twimg.com", 35, "media", "twitter", "/media/mix.jpg"),
        HostEntry("abs.twimg.com", 25, "media", "twitter", "/responsive-web/mix.js"),
    )),
}  # fmt: skip


@dataclass(frozen=True)
class Connection:
    """One new TLS connection of the mix."""

    index: int
    persona: str
    client: str  # source address: the demo address that is this persona
    host: str
    path: str
    category: str
    role: str  # web | page | api | media
    platform: str | None  # what the mix means the host to be (None: no catalogue platform)

    @property
    def catalogue(self) -> bool:
        return self.platform is not None


def all_entries() -> list[HostEntry]:
    out = [e for entries in CATEGORY_HOSTS.values() for e in entries]
    out += [e for _, entries in SOCIAL.values() for e in entries]
    return out


def all_hosts() -> list[str]:
    """Every host the mix can name, sorted (for the origin's certificate)."""
    return sorted({e.host for e in all_entries()})


def _pick(rng: random.Random, items: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


def generate(n: int, seed: int = 1, *, in_hours: bool = True) -> list[Connection]:
    """``n`` connections, the same for the same (n, seed, in_hours)."""
    rng = random.Random(f"trafficmix/{seed}/{int(in_hours)}")
    pw = PERSONA_WEIGHTS[in_hours]
    names = list(pw)
    out: list[Connection] = []
    for i in range(n):
        persona = PERSONA[_pick(rng, names, [pw[x] for x in names])]
        client = rng.choice(persona.addresses)
        cw = CATEGORY_WEIGHTS[(persona.name, in_hours)]
        cats = [c for c in cw if cw[c] > 0]
        category = _pick(rng, cats, [cw[c] for c in cats])
        if category == "social":
            pids = list(SOCIAL)
            pid = _pick(rng, pids, [SOCIAL[p][0] for p in pids])
            entries = SOCIAL[pid][1]
        else:
            entries = CATEGORY_HOSTS[category]
        e: HostEntry = _pick(rng, entries, [x.weight for x in entries])
        out.append(
            Connection(i, persona.name, client, e.host, e.path, category, e.role, e.platform)
        )
    return out


# --- what reaches the proxy -----------------------------------------------------------------

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def valid_hostname(host: str) -> bool:
    """A DNS host name as a client would send it in SNI: LDH labels of 1-63, at most 253."""
    if not host or len(host) > 253 or host != host.lower():
        return False
    labels = host.split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(x) for x in labels)


def load_classifier() -> Any:
    """The shipped catalogue's classifier (monitor.platforms.classify.Classifier)."""
    from monitor.platforms import catalogue
    from monitor.platforms.classify import Classifier

    return Classifier(catalogue.load())


def through_pac(conns: Iterable[Connection], classifier: Any) -> list[Connection]:
    """The connections a PAC file or DNS-driven redirect sends to the proxy: catalogue hosts,
    as the catalogue's classifier decides."""
    return [c for c in conns if classifier(c.host) is not None]


def media_host_matcher(catalogue: Any) -> tuple[int, Any]:
    """(platforms with media hosts, host -> bool) from the catalogue's ``media_hosts`` (media
    hosts pass through undecrypted when nothing a GET there can be is blocked); (0, None)
    when the catalogue has none."""
    with_media = [
        p
        for p in catalogue
        if getattr(p, "media_hosts", None) or getattr(p, "media_suffixes", None)
    ]
    if not with_media:
        return 0, None

    def is_media(host: str) -> bool:
        for p in with_media:
            check = getattr(p, "is_media_host", None)
            if callable(check):
                if check(host):
                    return True
            elif host in p.media_hosts or host.endswith(tuple(p.media_suffixes)):
                return True
        return False

    return len(with_media), is_media


def shares(conns: Sequence[Connection], classifier: Any = None) -> dict[str, dict[str, float]]:
    """Fractions of the mix by persona, category and role; with a classifier, also the share a
    PAC file would send to the proxy. Every group adds up to 1."""
    n = len(conns) or 1
    out: dict[str, dict[str, float]] = {
        "persona": {k: v / n for k, v in Counter(c.persona for c in conns).items()},
        "category": {k: v / n for k, v in Counter(c.category for c in conns).items()},
        "role": {k: v / n for k, v in Counter(c.role for c in conns).items()},
    }
    if classifier is not None:
        pac = len(through_pac(conns, classifier))
        out["pac"] = {"proxy": pac / n, "direct": (len(conns) - pac) / n}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Print a traffic mix's composition.")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out-of-hours", action="store_true")
    args = ap.parse_args(argv)
    conns = generate(args.n, args.seed, in_hours=not args.out_of_hours)
    s = shares(conns, load_classifier())
    for group, values in s.items():
        line = ", ".join(f"{k} {v:.1%}" for k, v in sorted(values.items(), key=lambda x: -x[1]))
        print(f"{group}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
