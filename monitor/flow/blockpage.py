"""The block page: what a person sees when policy blocks a page. Self-contained HTML (no
third-party resources, no scripts), every value escaped; a short JSON body for fetch/XHR."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

from monitor.platforms.catalogue import Platform

_ACTIVITY_WORDS = {
    "view": "visit",
    "post": "post on",
    "upload": "upload to",
    "message": "send messages on",
    "login": "sign in to",
    "stream": "watch videos on",
    "live": "go live on",
    "embed": "load content from",
}


@dataclass(frozen=True, slots=True)
class BlockInfo:
    district: str
    contact: str
    platform_name: str
    host: str
    activity: str
    rule_id: str
    reason: str
    when: str  # local time, already formatted
    # policy's words when a teacher's override could allow this ("" when none could)
    ask_teacher: str = ""


def teacher_could_open(band: str, platform: Platform) -> bool:
    """Whether a teacher's override could allow this person on ``platform``: students of the
    teen and adult bands, under-13s only on platforms designed for children, never bypass
    services (the rules of ``monitor.rules.decide``)."""
    if platform.is_bypass or band not in ("under13", "teen", "adult"):
        return False
    return band != "under13" or platform.designed_for_children


def wants_html(headers: dict[str, str] | object) -> bool:
    """A top-level navigation or a frame gets the page; fetch/XHR gets JSON."""
    get = getattr(headers, "get", None)
    if get is None:
        return True
    dest = (get("Sec-Fetch-Dest") or get("sec-fetch-dest") or "").lower()
    if dest:
        return dest in ("document", "iframe", "frame", "embed", "object")
    if (get("X-Requested-With") or "").lower() == "xmlhttprequest":
        return False
    accept = (get("Accept") or get("accept") or "").lower()
    return "text/html" in accept or not accept


def render_html(b: BlockInfo) -> str:
    verb = _ACTIVITY_WORDS.get(b.activity, "use")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Blocked by {escape(b.district)}</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}}
main{{max-width:40rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;
box-shadow:0 1px 4px rgba(0,0,0,.12)}}
h1{{font-size:1.4rem;margin-top:0}} .reason{{background:#fff6e0;border-left:4px solid #e0a100;
padding:.75rem 1rem}} dl{{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}}
dt{{color:#556}} footer{{margin-top:1.5rem;font-size:.9rem;color:#556}}
</style></head>
<body><main>
<h1>This is blocked on the {escape(b.district)} network</h1>
<p>You tried to {escape(verb)} <strong>{escape(b.platform_name)}</strong>.</p>
<p class="reason" id="reason">{escape(b.reason)}</p>
<dl>
<dt>Site</dt><dd>{escape(b.host)}</dd>
<dt>Rule</dt><dd><code id="rule">{escape(b.rule_id)}</code></dd>
<dt>Time</dt><dd>{escape(b.when)}</dd>
</dl>
{f'<p class="ask" id="ask-teacher">{escape(b.ask_teacher)}</p>' if b.ask_teacher else ""}
<footer>District devices and the district network are monitored.
Questions: {escape(b.contact)}</footer>
</main></body></html>
"""


def render_json(b: BlockInfo) -> str:
    return json.dumps(
        {
            "blocked": True,
            "platform": b.platform_name,
            "rule": b.rule_id,
            "reason": b.reason,
            "district": b.district,
            "ask_teacher": b.ask_teacher or None,
        }
    )
