"""Observation → one line of text: TSV for people and shell tools, JSON lines for programs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .model import Observation

TSV_COLUMNS = ("time", "client", "server", "protocol", "hostname", "platform")


def iso_time(t: float) -> str:
    """UTC ISO 8601 with microseconds, e.g. ``2024-05-01T08:00:00.250000Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tsv_line(obs: Observation) -> str:
    """time, client, server, protocol, hostname, platform ('-' for none), tab-separated."""
    return "\t".join(
        (
            iso_time(obs.time),
            obs.client,
            obs.server,
            obs.protocol,
            obs.hostname,
            obs.platform or "-",
        )
    )


def json_line(obs: Observation) -> str:
    """Every field of the observation as one JSON object."""
    return json.dumps(
        {
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
        },
        sort_keys=False,
    )
