"""The proxy auto-config (PAC) file: catalogue hosts go to the proxy, everything else DIRECT.

The cheapest connection is one that never reaches the proxy: a browser that reads this file
sends only the platforms and bypass services of the catalogue (with the district's additions)
to the proxy, and opens every other site itself. The file decides exactly as the classifier
(:class:`monitor.platforms.classify.Classifier`) does, so the PAC and the proxy agree on what
is a catalogue host:

* the name is lowercased and loses one trailing dot; anything that is not a host name (an IP
  literal, a name with characters outside ``a-z 0-9 . _ -``, an empty label) is DIRECT;
* an exact catalogue host goes to the proxy;
* otherwise every label suffix of the name is looked up, longest first (``a.b.tiktok.com``,
  ``b.tiktok.com``, ``tiktok.com``, ``com``: never substrings, so ``instanttelegram.com`` is not
  ``telegram.com``); a catalogue suffix, or a label pattern anchored there that matches the
  labels left of it, sends it to the proxy; a shared CDN suffix (akamaized.net, …) reached first
  makes it DIRECT, since nothing above it counts, unless the CDN embeds its customers' host
  names (``www.pinterest.com.edgekey.net``) and the name inside is a catalogue host.

A catalogue host gets ``PROXY host:port`` with no ``DIRECT`` fallback: if the proxy is down,
those sites fail instead of going around the monitor (fail closed), and the rest of the web
keeps working. The script is plain ECMAScript 3 (no ``let``, no trailing commas, no DNS
look-ups), which every PAC engine runs, Windows' WinHTTP included.
"""

from __future__ import annotations

import json
import re

from monitor.platforms.catalogue import Catalogue, pattern_regex
from monitor.yamlfile import shorten

MEDIA_TYPE = "application/x-ns-proxy-autoconfig"

# the kinds of suffix in the PAC's table
_SUFFIX, _CDN = 1, 0

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")


def parse_proxy_address(value: str) -> str:
    """``HOST:PORT`` as written in a PAC file (a host name, an IPv4 address or ``[IPv6]``),
    lowercased; ValueError naming the value otherwise."""
    import ipaddress

    text = value.strip()
    host, sep, port = text.rpartition(":")
    bad = f"'{shorten(value)}' is not HOST:PORT (e.g. proxy.district.example:8080 or 10.0.0.5:8080)"
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(bad)
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(bad) from None
    elif not _IPV4.match(host):
        if not _HOSTNAME.match(host) or host.rpartition(".")[2].isdigit():
            raise ValueError(bad)
    return f"{host}:{int(port)}"


def pac_names(catalogue: Catalogue) -> tuple[list[str], dict[str, int]]:
    """(exact hosts, suffixes) of every platform and bypass service, sorted; each suffix with
    its kind: a catalogue suffix (the name and every subdomain, 1) or a shared CDN suffix
    (under it only exact hosts count, 0)."""
    hosts = sorted({h for platform in catalogue for h in platform.hosts})
    suffixes = {cdn: _CDN for cdn in catalogue.shared_cdn_suffixes}
    for platform in catalogue:
        for s in platform.suffixes:
            suffixes[s] = _SUFFIX
    return hosts, dict(sorted(suffixes.items()))


def pac_patterns(catalogue: Catalogue) -> list[tuple[str, str]]:
    """The catalogue's label patterns, sorted, each as (anchor: the written-out suffix it hangs
    under, a JavaScript regular expression over the labels left of the anchor)."""
    return sorted(
        (anchor, f"^{regex}$")
        for platform in catalogue
        for anchor, regex, _ in map(pattern_regex, platform.patterns)
    )


def render_pac(catalogue: Catalogue, proxy: str, *, generated: str = "") -> str:
    """The PAC file sending catalogue hosts to ``proxy`` (``host:port``, see
    :func:`parse_proxy_address`)."""
    hosts, suffixes = pac_names(catalogue)
    patterns = pac_patterns(catalogue)
    n_cdn = sum(1 for k in suffixes.values() if k == _CDN)
    when = f" on {generated}" if generated else ""
    return f"""// Proxy auto-config of the student activity monitor, generated from the platform
// catalogue ({len(catalogue)} platforms and bypass services){when}.
// Catalogue hosts go to the monitor's proxy, with no DIRECT fallback (if the proxy is down,
// they fail rather than go around it); every other host is opened DIRECT.
var PROXY = {json.dumps("PROXY " + proxy)};
// {len(hosts)} exact catalogue hosts
var HOSTS = {_table({h: 1 for h in hosts})};
// {len(suffixes) - n_cdn} catalogue suffixes (1: the name and every subdomain) and {n_cdn} shared
// CDN suffixes (0: under them, only the exact hosts above count)
var SUFFIXES = {_table(suffixes)};
// {len(patterns)} label patterns: [anchor, expression the labels left of the anchor must match]
var PATTERN_LIST = {json.dumps(patterns, separators=(",", ":"))};
// shared CDN suffixes whose names embed the customer's host name (www.x.com.edgekey.net)
var EMBEDDING = {_table({e: 1 for e in sorted(catalogue.embedding_cdn_suffixes)})};
var HAS = Object.prototype.hasOwnProperty;
var PATTERNS = {{}};
for (var p = 0; p < PATTERN_LIST.length; p++) {{
  if (!HAS.call(PATTERNS, PATTERN_LIST[p][0])) PATTERNS[PATTERN_LIST[p][0]] = [];
  PATTERNS[PATTERN_LIST[p][0]].push(new RegExp(PATTERN_LIST[p][1]));
}}
var HOSTNAME = /^[a-z0-9_-]+(\\.[a-z0-9_-]+)*$/;
var DIGITS = /^[0-9]+$/;

function FindProxyForURL(url, host) {{
  host = String(host).toLowerCase();
  if (host.charAt(host.length - 1) == ".") host = host.substring(0, host.length - 1);
  // IP literals (v6 has ':', v4 ends in digits) and anything else that is no host name
  if (host.length > 253 || !HOSTNAME.test(host)) return "DIRECT";
  if (DIGITS.test(host.substring(host.lastIndexOf(".") + 1))) return "DIRECT";
  return isCatalogue(host) ? PROXY : "DIRECT";
}}

function isCatalogue(host) {{
  if (HAS.call(HOSTS, host)) return true;
  var name = host;
  while (true) {{
    if (HAS.call(PATTERNS, name) && name.length < host.length) {{
      var left = host.substring(0, host.length - name.length - 1);
      for (var i = 0; i < PATTERNS[name].length; i++) {{
        if (PATTERNS[name][i].test(left)) return true;
      }}
    }}
    if (HAS.call(SUFFIXES, name)) {{
      if (SUFFIXES[name] == 1) return true;
      // a shared CDN suffix: nothing above it counts, but a name it embeds may
      if (HAS.call(EMBEDDING, name) && name.length < host.length) {{
        var inner = host.substring(0, host.length - name.length - 1);
        if (inner.indexOf(".") > 0) return isCatalogue(inner);
      }}
      return false;
    }}
    var dot = name.indexOf(".");
    if (dot < 0) break;
    name = name.substring(dot + 1);
  }}
  return false;
}}
"""


def _table(names: dict[str, int]) -> str:
    """A JavaScript object literal, several names a line, keys quoted by JSON (ES3: no
    trailing comma)."""
    if not names:
        return "{}"
    items = [f"{json.dumps(n)}:{k}" for n, k in names.items()]
    lines: list[str] = []
    line = ""
    for item in items:
        if line and len(line) + len(item) + 1 > 96:
            lines.append(line)
            line = ""
        line += ("," if line else "") + item
    lines.append(line)
    return "{\n  " + ",\n  ".join(lines) + "\n}"
