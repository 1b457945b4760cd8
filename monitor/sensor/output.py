"""Observation (and its verdict) → one line of text: TSV for people and shell tools, JSON lines
for programs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monitor.sensor.model import Observation

if TYPE_CHECKING:  # judge imports the district machinery; plain output does not need it
    from monitor.sensor.judge import Verdict

TSV_COLUMNS = ("time", "client", "server", "protocol", "hostname", "platform")
#: the columns a verdict adds (``monitor sensor --config``)
VERDICT_COLUMNS = ("person", "age_band", "school", "decision", "rule")


def iso_time(t: float) -> str:
    """UTC ISO 8601 with microseconds, e.g. ``2024-05-01T08:00:00.250000Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tsv_line(obs: Observation, verdict: Verdict | None = None) -> str:
    """time, client, server, protocol, hostname, platform ('-' for none), tab-separated; with
    a verdict also person pseudonym, age band, school, decision, rule ('-' when unknown).

    A platform found through another name (``Observation.via``: a CNAME, a STUN realm's app)
    shows as the platform of the hostname; JSON lines carry ``via`` too."""
    cols = [
        iso_time(obs.time),
        obs.client,
        obs.server,
        obs.protocol,
        obs.hostname,
        obs.platform or "-",
    ]
    if verdict is not None:
        d = verdict.decision
        cols += [verdict.person, verdict.age_band, verdict.school, d.action, d.rule_id]
    return "\t".join(cols)


def json_line(obs: Observation, verdict: Verdict | None = None) -> str:
    """Every field of the observation as one JSON object; with a verdict also ``person``,
    ``age_band``, ``school``, ``decision``, ``rule`` and ``incident`` (severity or null)."""
    out: dict[str, object] = {
        "time": iso_time(obs.time),
        "client": obs.client,
        "client_port": obs.client_port,
        "server": obs.server,
        "server_port": obs.server_port,
        "transport": obs.transport,
        "protocol": obs.protocol,
        "hostname": obs.hostname,
        "ech": obs.ech,
        "alpn": list(obs.alpn),
        "qtype": obs.qtype,
        "version": obs.version,
        "platform": obs.platform,
        "via": obs.via,
    }
    if verdict is not None:
        d = verdict.decision
        out.update(
            person=verdict.person,
            age_band=verdict.age_band,
            school=verdict.school,
            decision=d.action,
            rule=d.rule_id,
            incident=d.incident,
        )
    return json.dumps(out)
