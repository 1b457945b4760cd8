#!/usr/bin/env python3
"""Writes the Grafana dashboards of this folder (district-overview.json, school.json,
proxy-health.json) from the panel lists below, the way the mixins generate theirs from jsonnet.

    python3 dashboards/build.py           # rewrite the JSON files
    python3 dashboards/build.py --check   # exit 1 when a JSON file differs from what it writes

Edit this file, not the JSON. Standard library only. Every query selects job="monitor"; every
panel and query reads the data source from the ``datasource`` template variable.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24  # Grafana's grid

# Shorthands used in the queries below.
REQ = 'monitor_requests_total{job="monitor"}'
REQ_SCHOOL = 'monitor_requests_total{job="monitor", school="$school", platform=~"$platform"}'
INC = 'monitor_incidents_total{job="monitor"}'
INC_SCHOOL = 'monitor_incidents_total{job="monitor", school="$school", platform=~"$platform"}'
RI = "$__rate_interval"
UNDER13 = 'age_band="under13"'
INTERCEPTED = 'outcome="intercepted"'


def rate(selector: str, window: str = RI) -> str:
    return f"rate({selector}[{window}])"


def with_labels(selector: str, extra: str) -> str:
    """``monitor_requests_total{job="monitor"}`` + ``decision="block"`` → one selector."""
    return selector[:-1] + ", " + extra + "}"


@dataclass
class Q:
    """One query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


@dataclass
class P:
    """One panel: kind is a Grafana panel type (timeseries, stat, table, bargauge) or "row"."""

    kind: str
    title: str
    description: str = ""
    queries: list[Q] = field(default_factory=list)
    width: int = 12
    height: int = 8
    unit: str = "short"
    stack: bool = False
    links: list[dict[str, Any]] = field(default_factory=list)
    decimals: int | None = None


def row(title: str) -> P:
    return P("row", title, width=WIDTH, height=1)


# -- template variables --------------------------------------------------------------------


def datasource_var() -> dict[str, Any]:
    return {
        "current": {},
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "type": "datasource",
    }


def query_var(
    name: str, label: str, query: str, *, multi: bool = False, include_all: bool = False
) -> dict[str, Any]:
    var: dict[str, Any] = {
        "current": {},
        "datasource": dict(DS),
        "definition": query,
        "hide": 0,
        "includeAll": include_all,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": {
            "qryType": 1,
            "query": query,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,  # on time range change: new schools and platforms appear
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }
    if include_all:
        var["allValue"] = ".+"
    return var


# -- panels --------------------------------------------------------------------------------


def _target(q: Q, ref: str) -> dict[str, Any]:
    t: dict[str, Any] = {
        "datasource": dict(DS),
        "editorMode": "code",
        "expr": q.expr,
        "instant": q.instant,
        "legendFormat": q.legend or "__auto",
        "range": not q.instant,
        "refId": ref,
    }
    if q.table:
        t["format"] = "table"
    return t


def _panel_json(p: P, pid: int, x: int, y: int) -> dict[str, Any]:
    grid = {"h": p.height, "w": p.width, "x": x, "y": y}
    if p.kind == "row":
        return {
            "collapsed": False,
            "gridPos": grid,
            "id": pid,
            "panels": [],
            "title": p.title,
            "type": "row",
        }
    defaults: dict[str, Any] = {"unit": p.unit}
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    if p.links:
        defaults["links"] = p.links
    options: dict[str, Any]
    if p.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 20 if p.stack else 10,
            "lineWidth": 1,
            "showPoints": "never",
            "stacking": {"group": "A", "mode": "normal" if p.stack else "none"},
        }
        defaults["min"] = 0
        options = {
            "legend": {
                "calcs": ["mean", "max"],
                "displayMode": "table",
                "placement": "right",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif p.kind == "stat":
        options = {
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        }
    elif p.kind == "bargauge":
        defaults["min"] = 0
        options = {
            "displayMode": "gradient",
            "orientation": "horizontal",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showUnfilled": True,
        }
    elif p.kind == "table":
        options = {"cellHeight": "sm", "showHeader": True}
    else:
        raise ValueError(f"panel {p.title!r}: unknown kind {p.kind!r}")
    out: dict[str, Any] = {
        "datasource": dict(DS),
        "description": p.description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": grid,
        "id": pid,
        "options": options,
        "targets": [_target(q, chr(ord("A") + i)) for i, q in enumerate(p.queries)],
        "title": p.title,
        "type": p.kind,
    }
    if p.kind == "table":
        # one row per series, labels as columns, the value last
        out["transformations"] = [
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "__name__": True, "job": True}},
            }
        ]
    return out


def layout(panels: list[P]) -> list[dict[str, Any]]:
    """Place panels left to right, wrapping at the grid's width; a row starts a new line."""
    out: list[dict[str, Any]] = []
    x = y = 0
    line_height = 0
    for pid, p in enumerate(panels, start=1):
        if p.kind == "row" or x + p.width > WIDTH:
            y += line_height
            x, line_height = 0, 0
        out.append(_panel_json(p, pid, x, y))
        x += p.width
        line_height = max(line_height, p.height)
        if p.kind == "row":
            y += p.height
            x, line_height = 0, 0
    return out


def dashboard(
    uid: str, title: str, description: str, panels: list[P], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": True,
                "icon": "external link",
                "includeVars": False,
                "keepTime": True,
                "tags": ["monitor"],
                "targetBlank": False,
                "title": "Monitor dashboards",
                "type": "dashboards",
            }
        ],
        "panels": layout(panels),
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["monitor"],
        "templating": {"list": variables},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# -- the dashboards ------------------------------------------------------------------------

BYPASS_RULE = "school_platform:monitor_bypass_requests:rate5m"
BYPASS_NOTE = (
    ' Bypass services are the catalogue\'s entries of category "bypass" (VPNs, web proxies, '
    "DNS-over-HTTPS resolvers, Tor); the recording rule behind this panel lists them and uses a "
    "fixed 5-minute rate."
)
SCHOOL_LINK = {
    "targetBlank": False,
    "title": "School ${__field.labels.school}",
    "url": "/d/monitor-school/monitor-school"
    "?var-school=${__field.labels.school}&${__url_time_range}",
}


def district_overview() -> dict[str, Any]:
    block = with_labels(REQ, 'decision="block"')
    panels = [
        row("At a glance"),
        P(
            "stat",
            "Requests per second",
            "Requests to catalogue platforms decided per second, all proxies and the sensor.",
            [Q(f"sum({rate(REQ)})")],
            width=4,
            height=4,
            unit="reqps",
        ),
        P(
            "stat",
            "Blocked share",
            "Share of requests to catalogue platforms that were blocked.",
            [Q(f"(sum({rate(block)}) or vector(0)) / sum({rate(REQ)})")],
            width=4,
            height=4,
            unit="percentunit",
        ),
        P(
            "stat",
            "Students 12 and under blocked",
            "Blocked requests of students 12 and under (the COPPA band) in the dashboard's time "
            "range.",
            [Q(f"sum(increase({with_labels(block, UNDER13)}[$__range])) or vector(0)")],
            width=4,
            height=4,
            decimals=0,
        ),
        P(
            "stat",
            "Incidents",
            "Incident events raised by policy in the dashboard's time range, before deduplication.",
            [Q('sum(increase(monitor_incidents_total{job="monitor"}[$__range])) or vector(0)')],
            width=4,
            height=4,
            decimals=0,
        ),
        P(
            "stat",
            "Bypass attempts per second",
            "Requests to bypass services per second, whatever the decision." + BYPASS_NOTE,
            [Q(f"sum({BYPASS_RULE}) or vector(0)")],
            width=4,
            height=4,
            unit="reqps",
        ),
        P(
            "stat",
            "Proxies up",
            "Proxy instances that Prometheus scraped successfully at the last scrape.",
            [Q('sum(up{job="monitor"})')],
            width=4,
            height=4,
            decimals=0,
        ),
        row("Traffic"),
        P(
            "timeseries",
            "Requests by platform (top 10)",
            "Requests per second to the ten busiest catalogue platforms at each point in time.",
            [Q(f"topk(10, sum by (platform) ({rate(REQ)}))", "{{platform}}")],
            unit="reqps",
        ),
        P(
            "timeseries",
            "Decisions",
            "Requests per second by decision: allow, restrict (allowed with restrictions such as "
            "SafeSearch or YouTube restricted mode) and block.",
            [Q(f"sum by (decision) ({rate(REQ)})", "{{decision}}")],
            unit="reqps",
            stack=True,
        ),
        P(
            "timeseries",
            "Requests by school",
            'Requests per second by school; "unknown" is traffic that could not be tied to a '
            "school. Click a series to open the school's dashboard.",
            [Q(f"sum by (school) ({rate(REQ)})", "{{school}}")],
            unit="reqps",
            stack=True,
            links=[SCHOOL_LINK],
        ),
        P(
            "timeseries",
            "Requests by source",
            "Requests decided on the proxy path and observations of the passive sensor (traffic "
            "that does not cross the proxy, such as QUIC).",
            [Q(f"sum by (source) ({rate(REQ)})", "{{source}}")],
            unit="reqps",
            stack=True,
        ),
        row("Policy"),
        P(
            "timeseries",
            "Blocks by age band",
            "Blocked requests per second by age band: under13 (12 and under), teen, adult, staff, "
            "unknown (not identified; treated by the policy's default).",
            [Q(f"sum by (age_band) ({rate(block)})", "{{age_band}}")],
            unit="reqps",
            stack=True,
        ),
        P(
            "timeseries",
            "Blocked share by age band",
            "Share of each age band's requests that were blocked.",
            [
                Q(
                    f"sum by (age_band) ({rate(block)}) / sum by (age_band) ({rate(REQ)})",
                    "{{age_band}}",
                )
            ],
            unit="percentunit",
        ),
        P(
            "timeseries",
            "Incidents by severity",
            "Incident events per second raised by policy, by severity (low, medium, high), before "
            "deduplication.",
            [
                Q(
                    f"sum by (severity) ({rate(INC)})",
                    "{{severity}}",
                )
            ],
            unit="short",
            stack=True,
        ),
        P(
            "table",
            "Incidents by school and severity",
            "Incident events in the dashboard's time range, per school and severity.",
            [
                Q(
                    f"sum by (school, severity) (increase({INC}[$__range]))",
                    instant=True,
                    table=True,
                )
            ],
            decimals=0,
        ),
        P(
            "bargauge",
            "Top platforms",
            "The ten platforms with the most requests in the dashboard's time range.",
            [
                Q(
                    f"topk(10, sum by (platform) (increase({REQ}[$__range])))",
                    "{{platform}}",
                    instant=True,
                )
            ],
            decimals=0,
        ),
        P(
            "bargauge",
            "Top blocked platforms",
            "The ten platforms with the most blocked requests in the dashboard's time range.",
            [
                Q(
                    f"topk(10, sum by (platform) (increase({block}[$__range])))",
                    "{{platform}}",
                    instant=True,
                )
            ],
            decimals=0,
        ),
        row("Bypass attempts"),
        P(
            "timeseries",
            "Bypass attempts by service",
            "Requests per second to each bypass service, whatever the decision." + BYPASS_NOTE,
            [Q(f"sum by (platform) ({BYPASS_RULE})", "{{platform}}")],
            unit="reqps",
            stack=True,
        ),
        P(
            "timeseries",
            "Bypass attempts by school",
            "Requests per second to bypass services, per school." + BYPASS_NOTE,
            [Q(f"sum by (school) ({BYPASS_RULE})", "{{school}}")],
            unit="reqps",
            stack=True,
            links=[SCHOOL_LINK],
        ),
    ]
    return dashboard(
        "monitor-district-overview",
        "Monitor / District overview",
        "Social media traffic across the district: platforms, decisions, age bands, incidents and "
        "bypass attempts.",
        panels,
        [datasource_var()],
    )


def school() -> dict[str, Any]:
    block = with_labels(REQ_SCHOOL, 'decision="block"')
    where = "at the selected school, for the selected platforms"
    panels = [
        row("At a glance"),
        P(
            "stat",
            "Requests per second",
            f"Requests decided per second {where}.",
            [Q(f"sum({rate(REQ_SCHOOL)})")],
            width=5,
            height=4,
            unit="reqps",
        ),
        P(
            "stat",
            "Blocked share",
            f"Share of requests {where} that were blocked.",
            [Q(f"(sum({rate(block)}) or vector(0)) / sum({rate(REQ_SCHOOL)})")],
            width=5,
            height=4,
            unit="percentunit",
        ),
        P(
            "stat",
            "Students 12 and under blocked",
            f"Blocked requests of students 12 and under {where}, in the dashboard's time range.",
            [Q(f"sum(increase({with_labels(block, UNDER13)}[$__range])) or vector(0)")],
            width=5,
            height=4,
            decimals=0,
        ),
        P(
            "stat",
            "Incidents",
            f"Incident events {where}, in the dashboard's time range, before deduplication.",
            [
                Q(
                    'sum(increase(monitor_incidents_total{job="monitor", school="$school", '
                    'platform=~"$platform"}[$__range])) or vector(0)'
                )
            ],
            width=5,
            height=4,
            decimals=0,
        ),
        P(
            "stat",
            "Bypass attempts per second",
            "Requests per second to bypass services at the selected school (all services: the "
            "platform selection does not apply)." + BYPASS_NOTE,
            [Q(f'sum({BYPASS_RULE}{{school="$school"}}) or vector(0)')],
            width=4,
            height=4,
            unit="reqps",
        ),
        row("Traffic"),
        P(
            "timeseries",
            "Requests by platform and decision",
            f"Requests per second by platform and decision {where}.",
            [Q(f"sum by (platform, decision) ({rate(REQ_SCHOOL)})", "{{platform}} {{decision}}")],
            unit="reqps",
        ),
        P(
            "timeseries",
            "Requests by activity",
            f"Requests per second by activity (view, post, upload, message, login, stream, live, "
            f"embed) {where}.",
            [Q(f"sum by (activity) ({rate(REQ_SCHOOL)})", "{{activity}}")],
            unit="reqps",
            stack=True,
        ),
        P(
            "timeseries",
            "Requests by age band",
            f"Requests per second by age band {where}.",
            [Q(f"sum by (age_band) ({rate(REQ_SCHOOL)})", "{{age_band}}")],
            unit="reqps",
            stack=True,
        ),
        P(
            "timeseries",
            "Requests by source",
            f"Requests on the proxy path and sensor observations {where}.",
            [Q(f"sum by (source) ({rate(REQ_SCHOOL)})", "{{source}}")],
            unit="reqps",
            stack=True,
        ),
        row("Policy"),
        P(
            "timeseries",
            "Blocks by age band",
            f"Blocked requests per second by age band {where}.",
            [Q(f"sum by (age_band) ({rate(block)})", "{{age_band}}")],
            unit="reqps",
            stack=True,
        ),
        P(
            "timeseries",
            "Blocked share of students 12 and under",
            "Share of the requests of students 12 and under at the selected school that were "
            "blocked (all platforms, 5-minute rate): the signal of the MonitorUnder13BlocksSpike "
            "alert.",
            [Q('school:monitor_under13_blocks:ratio_rate5m{school="$school"}', "{{school}}")],
            unit="percentunit",
        ),
        P(
            "timeseries",
            "Incidents by severity",
            f"Incident events per second by severity {where}.",
            [
                Q(
                    f"sum by (severity) ({rate(INC_SCHOOL)})",
                    "{{severity}}",
                )
            ],
            stack=True,
        ),
        P(
            "timeseries",
            "Bypass attempts by service",
            "Requests per second to each bypass service at the selected school (the platform "
            "selection does not apply)." + BYPASS_NOTE,
            [Q(f'sum by (platform) ({BYPASS_RULE}{{school="$school"}})', "{{platform}}")],
            unit="reqps",
            stack=True,
        ),
        P(
            "table",
            "Platforms and decisions",
            f"Requests in the dashboard's time range by platform and decision {where}.",
            [
                Q(
                    f"sum by (platform, decision) (increase({REQ_SCHOOL}[$__range]))",
                    instant=True,
                    table=True,
                )
            ],
            width=24,
            decimals=0,
        ),
    ]
    return dashboard(
        "monitor-school",
        "Monitor / School",
        "One school's social media traffic: platforms, activities, age bands, blocks, incidents "
        "and bypass attempts.",
        panels,
        [
            datasource_var(),
            query_var(
                "school", "School", 'label_values(monitor_requests_total{job="monitor"}, school)'
            ),
            query_var(
                "platform",
                "Platform",
                'label_values(monitor_requests_total{job="monitor", school="$school"}, platform)',
                multi=True,
                include_all=True,
            ),
        ],
    )


def proxy_health() -> dict[str, Any]:
    inst = 'job="monitor", instance=~"$instance"'
    req = f"monitor_requests_total{{{inst}}}"
    conn = f"monitor_connections_total{{{inst}}}"

    def sel(metric: str) -> str:
        return f"{metric}{{{inst}}}"

    def quantile(q: float, metric: str, by: str = "") -> str:
        return (
            f"histogram_quantile({q}, sum by ({by}le) "
            f"(rate({metric}_bucket{{{inst}}}[$__rate_interval])))"
        )

    panels = [
        row("Availability"),
        P(
            "stat",
            "Proxies up",
            "Selected proxy instances that answered the last scrape.",
            [Q(f"sum(up{{{inst}}})")],
            width=4,
            height=4,
            decimals=0,
        ),
        P(
            "stat",
            "Proxies down",
            "Selected proxy instances that failed the last scrape (see the MonitorProxyDown "
            "alert).",
            [Q(f"count(up{{{inst}}} == 0) or vector(0)")],
            width=4,
            height=4,
            decimals=0,
        ),
        P(
            "timeseries",
            "Up by instance",
            "1 when Prometheus scraped the instance, 0 when the scrape failed.",
            [Q(f"up{{{inst}}}", "{{instance}}")],
            width=8,
            height=4,
        ),
        P(
            "table",
            "Versions",
            "The monitor version each instance runs.",
            [Q(f"monitor_build_info{{{inst}}}", instant=True, table=True)],
            width=8,
            height=4,
        ),
        row("Throughput"),
        P(
            "timeseries",
            "Requests decided per instance",
            "Requests to catalogue platforms decided per second by each instance. One mitmproxy "
            "process uses one core: a few hundred decrypted requests per second is its ceiling.",
            [Q(f"sum by (instance) ({rate(req)})", "{{instance}}")],
            unit="reqps",
        ),
        P(
            "timeseries",
            "Connections by outcome",
            "Client connections per second: passthrough (not decrypted), intercepted (decrypted "
            "to decide per request), refused (closed without decrypting).",
            [Q(f"sum by (outcome) ({rate(conn)})", "{{outcome}}")],
            unit="cps",
            stack=True,
        ),
        P(
            "timeseries",
            "Intercepted share per instance",
            "Share of client connections each instance decrypts. A decrypted connection costs "
            "roughly twelve times one passed through, so this share sets the capacity.",
            [
                Q(
                    f"sum by (instance) ({rate(with_labels(conn, INTERCEPTED))}) "
                    f"/ sum by (instance) ({rate(conn)})",
                    "{{instance}}",
                )
            ],
            unit="percentunit",
        ),
        P(
            "timeseries",
            "Samples per scrape",
            "Samples in each instance's metrics. Labels come from bounded sets only, so this "
            "should level off however many students there are.",
            [Q(f"scrape_samples_scraped{{{inst}}}", "{{instance}}")],
        ),
        row("Latency and errors"),
        P(
            "timeseries",
            "Decision latency",
            "Time to identify, classify and decide one request, 50th and 99th percentiles over "
            "the selected instances (from the histogram's buckets).",
            [
                Q(quantile(0.5, "monitor_decision_duration_seconds"), "p50"),
                Q(quantile(0.99, "monitor_decision_duration_seconds"), "p99"),
            ],
            unit="s",
        ),
        P(
            "timeseries",
            "Mean decision latency per instance",
            "Mean time to decide one request, per instance.",
            [
                Q(
                    f"sum by (instance) ({rate(sel('monitor_decision_duration_seconds_sum'))}) "
                    f"/ sum by (instance) ({rate(sel('monitor_decision_duration_seconds_count'))})",
                    "{{instance}}",
                )
            ],
            unit="s",
        ),
        P(
            "timeseries",
            "Flow errors by failure mode",
            "Flows whose handling raised inside the addon, per second: closed (blocked: under-13 "
            "and unknown students) or open (let through). See the MonitorFlowErrors alert.",
            [
                Q(
                    f"sum by (instance, mode) ({rate(sel('monitor_flow_errors_total'))})",
                    "{{instance}} {{mode}}",
                )
            ],
            width=24,
        ),
        row("Incident pipeline"),
        P(
            "timeseries",
            "Incident queue depth",
            "Incident events waiting in memory to be written (the queue is bounded; when full, "
            "events are dropped).",
            [Q(f"monitor_incident_queue_depth{{{inst}}}", "{{instance}}")],
        ),
        P(
            "timeseries",
            "Incidents dropped and spooled",
            "Incident events per second dropped because the queue was full (lost), and written to "
            "the local spool because the store failed (replayed later).",
            [
                Q(
                    f"sum by (instance) ({rate(sel('monitor_incident_queue_dropped_total'))})",
                    "dropped {{instance}}",
                ),
                Q(
                    f"sum by (instance) ({rate(f'monitor_incident_spooled_total{{{inst}}}')})",
                    "spooled {{instance}}",
                ),
            ],
        ),
        P(
            "timeseries",
            "Store write latency",
            "Time to write one batch of incidents to the store, 50th and 99th percentiles.",
            [
                Q(quantile(0.5, "monitor_store_write_duration_seconds"), "p50"),
                Q(quantile(0.99, "monitor_store_write_duration_seconds"), "p99"),
            ],
            unit="s",
        ),
        P(
            "timeseries",
            "Store write failures",
            "Failed batch writes to the incident store per second (the batch goes to the spool).",
            [
                Q(
                    f"sum by (instance) ({rate(f'monitor_store_write_failures_total{{{inst}}}')})",
                    "{{instance}}",
                )
            ],
        ),
        row("Configuration"),
        P(
            "timeseries",
            "Configuration reloads",
            "Reload attempts by component and result (success, failure); a failure keeps the "
            "previous version in force. See the MonitorConfigReloadFailing alert.",
            [
                Q(
                    f"sum by (component, result) (increase(monitor_config_reloads_total{{{inst}}}"
                    f"[$__rate_interval]))",
                    "{{component}} {{result}}",
                )
            ],
            decimals=0,
        ),
        P(
            "table",
            "Since last successful reload",
            "Seconds since each component was last loaded successfully, per instance. Old is "
            "normal when the files have not changed.",
            [
                Q(
                    f"time() - monitor_config_last_reload_success_timestamp_seconds{{{inst}}}",
                    instant=True,
                    table=True,
                )
            ],
            unit="s",
        ),
        P(
            "table",
            "Configuration size",
            "Entries in the configuration in force: people, schools, platforms, rules, devices, "
            "leases, static addresses.",
            [Q(f"monitor_config_entries{{{inst}}}", instant=True, table=True)],
            decimals=0,
        ),
        P(
            "table",
            "Configuration versions",
            "Content hashes of the configuration in force; instances that disagree run different "
            "files.",
            [Q(f"monitor_config_info{{{inst}}}", instant=True, table=True)],
        ),
    ]
    return dashboard(
        "monitor-proxy-health",
        "Monitor / Proxy health",
        "The monitor proxies: availability, throughput, decision latency, errors, the incident "
        "pipeline and configuration reloads.",
        panels,
        [
            datasource_var(),
            query_var(
                "instance",
                "Instance",
                'label_values(up{job="monitor"}, instance)',
                multi=True,
                include_all=True,
            ),
        ],
    )


DASHBOARDS = {
    "district-overview.json": district_overview,
    "school.json": school,
    "proxy-health.json": proxy_health,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path = args.out / name
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}: run python3 dashboards/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
