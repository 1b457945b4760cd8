"""``monitor explain``: the decision the proxy would make for one request, and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from monitor.cli._common import load_district
from monitor.district import District, pseudonym_key
from monitor.incidents.events import pseudonym
from monitor.platforms.activity import request_activity
from monitor.platforms.classify import normalise_host
from monitor.rules.decide import band_label
from monitor.rules.explain import explain as explain_decision


def parse_at(value: str | None, district: District) -> datetime:
    """An ISO time; without a zone it is the district's local time. Default: now."""
    if not value:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError as e:
        raise click.BadParameter(
            f"'{value}' is not a time: use e.g. 2026-11-30T10:15 (district local time) or "
            "2026-11-30T15:15:00+00:00",
            param_hint="--at",
        ) from e
    if t.tzinfo is None:
        t = t.replace(tzinfo=district.policy.tz)
    return t


@click.command("explain")
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The district configuration directory (with district.yaml).",
)
@click.option("--client", required=True, help="The client address the request comes from.")
@click.option("--host", required=True, help="The host requested (SNI or Host header).")
@click.option("--method", default="GET", show_default=True)
@click.option("--path", default="/", show_default=True, help="The request path.")
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME:VALUE",
    help="A request header (repeatable), e.g. 'Sec-Fetch-Dest: iframe'.",
)
@click.option("--user", "proxy_user", default=None, help="A proxy-authentication username.")
@click.option(
    "--at",
    "at",
    default=None,
    help="When (ISO time; district local time without a zone). Default: now.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def explain_cmd(
    config: str,
    client: str,
    host: str,
    method: str,
    path: str,
    headers: tuple[str, ...],
    proxy_user: str | None,
    at: str | None,
    fmt: str,
) -> None:
    """Explain the decision for one request: who, platform, activity, decision, rule, reason."""
    district = load_district(config)
    when = parse_at(at, district)
    hdrs: dict[str, str] = {}
    for h in headers:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"'{h}' is not NAME:VALUE", param_hint="--header")
        hdrs[name.strip()] = value.strip()
    who = district.resolver.resolve(client, proxy_user)
    norm = normalise_host(host)
    platform = district.classifier.platform_of_normalised(norm) if norm else None
    activity = (
        request_activity(platform, method, norm or "", path, hdrs, district.classifier.platform_of)
        if platform is not None and norm
        else None
    )
    ex = explain_decision(district.policy, who, None, platform, activity, when, district.overrides)
    person = who.person
    pid = pseudonym(pseudonym_key(district), person.sourced_id) if person else None
    school = district.school_label(ex.schools[0] if ex.schools else None)
    grade = ",".join(person.grades) if person and person.grades else "-"
    d = ex.decision
    if fmt == "json":
        out = ex.to_dict()
        out.pop("person", None)  # a sourcedId: the pseudonym stands in for it
        out.update(
            {
                "client": client,
                "identity_source": who.source,
                "network": who.network,
                "device": who.device.device_id if who.device else None,
                "pseudonym": pid,
                "school": school,
                "grade": grade,
                "age_band_label": band_label(ex.group, ex.band),
                "host": norm,
                "page_host": platform.is_page_host(norm) if platform and norm else None,
            }
        )
        click.echo(json.dumps(out, indent=2))
        return
    w = click.echo
    w(
        f"who:       {pid or 'unknown person'} (via {who.source}"
        f"{', device ' + who.device.device_id if who.device else ''}"
        f"{', network ' + who.network if who.network else ''})"
    )
    w(
        f"           role {person.role if person else '-'}, school {school}, grade {grade}, "
        f"age band {ex.band or '-'} — {ex.band_basis}"
    )
    w(
        f"when:      {ex.local_time.strftime('%a %Y-%m-%d %H:%M %Z')} "
        f"({'in' if ex.in_school_hours else 'outside'} school hours)"
    )
    if platform is None:
        w(f"platform:  - ({norm or host!r} is not in the catalogue: passed through, not decrypted)")
    else:
        role = "page host" if norm and platform.is_page_host(norm) else "API/media host"
        w(
            f"platform:  {platform.id} ({platform.name}, {platform.category}, {role}; "
            f"minimum age {platform.min_age if platform.min_age is not None else '-'}"
            f"{', designed for children' if platform.designed_for_children else ''})"
        )
        w(f"activity:  {activity} ({method.upper()} {path.split('?', 1)[0]})")
    w(
        f"decision:  {d.action.upper()}  rule {d.rule_id}"
        f"{'  incident ' + d.incident if d.incident else ''}"
    )
    w(f"reason:    {d.reason}")
    for name, value in d.headers:
        w(f"header:    {name}: {value}")
    if d.safe_search:
        w("header:    Google SafeSearch enforced")
    if ex.override_note:
        w(f"override:  {ex.override_note}")
    if ex.checks:
        w("rules checked:")
        for c in ex.checks:
            mark = "MATCH" if c.matched else "no   "
            why = "" if c.matched else f"  ({'; '.join(c.failed)})"
            w(f"  {mark} {c.rule_id} (line {c.line}){why}")


def register(group: click.Group) -> None:
    group.add_command(explain_cmd)
