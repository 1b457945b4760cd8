#!/usr/bin/env python3
"""Writes the Grafana dashboards of this folder (district-overview.json, school.json,
proxy-health.json) from the panel lists below with Grafana's Python SDK, grafana-foundation-sdk,
the way the mixins generate theirs from jsonnet.

    python3 dashboards/build.py               # rewrite the JSON files
    python3 dashboards/build.py --check       # exit 1 when a JSON file differs from what it writes
    python3 dashboards/build.py --out DIR     # write (or, with --check, compare) in DIR instead

Edit this file, not the JSON. Run it with the project's virtualenv: it needs the SDK, a pinned dev
dependency (pip install 'grafana-foundation-sdk==1769699379!11.6.0'); the output depends on its
version. Every query selects job="monitor"; every panel and query reads the data source from the
``datasource`` template variable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

try:
    from grafana_foundation_sdk.builders import (
        bargauge,
        common,
        dashboard,
        prometheus,
        stat,
        table,
        timeseries,
    )
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common as c
    from grafana_foundation_sdk.models.dashboard import (
        DashboardCursorSync,
        DashboardLinkType,
        DataSourceRef,
        DataTransformerConfig,
        VariableHide,
        VariableRefresh,
        VariableSort,
    )
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat, QueryEditorMode
except ModuleNotFoundError as e:  # pragma: no cover - a hint for a bare python3
    sys.exit(f"{e}: pip install 'grafana-foundation-sdk==1769699379!11.6.0' (a dev dependency)")

HERE = Path(__file__).resolve().parent
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")

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


# -- queries and panels ----------------------------------------------------------------------


def q(expr: str, legend: str = "__auto") -> prometheus.Dataquery:
    """One PromQL query over the time range; table and bar gauge panels make theirs instant."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .range()
        .editor_mode(QueryEditorMode.CODE)
        .datasource(DS)
    )


type Panel = timeseries.Panel | stat.Panel | table.Panel | bargauge.Panel


def _panel[P: (timeseries.Panel, stat.Panel, table.Panel, bargauge.Panel)](
    panel: P,
    title: str,
    description: str,
    queries: tuple[prometheus.Dataquery, ...],
    unit: str,
    width: int,
    height: int,
) -> P:
    panel.title(title).description(description).datasource(DS).unit(unit)
    panel.span(width).height(height)
    for i, query in enumerate(queries):
        panel.with_target(query.ref_id(chr(ord("A") + i)))
    return panel


def graph(
    title: str,
    description: str,
    *queries: prometheus.Dataquery,
    unit: str = "short",
    stack: bool = False,
    width: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    """A time series: lines from 0, a table legend on the right with mean and max."""
    return (
        _panel(timeseries.Panel(), title, description, queries, unit, width, height)
        .min(0)
        .draw_style(c.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(20 if stack else 10)
        .show_points(c.VisibilityMode.NEVER)
        .stacking(
            common.StackingConfig()
            .group("A")
            .mode(c.StackingMode.NORMAL if stack else c.StackingMode.NONE)
        )
        .legend(
            common.VizLegendOptions()
            .calcs(["mean", "max"])
            .display_mode(c.LegendDisplayMode.TABLE)
            .placement(c.LegendPlacement.RIGHT)
            .show_legend(True)
        )
        .tooltip(
            common.VizTooltipOptions().mode(c.TooltipDisplayMode.MULTI).sort(c.SortOrder.DESCENDING)
        )
    )


def last_value() -> common.ReduceDataOptions:
    return common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def single(
    title: str,
    description: str,
    query: prometheus.Dataquery,
    unit: str = "short",
    width: int = 4,
    height: int = 4,
) -> stat.Panel:
    """A stat: the last value, with its sparkline."""
    return (
        _panel(stat.Panel(), title, description, (query,), unit, width, height)
        .color_mode(c.BigValueColorMode.VALUE)
        .graph_mode(c.BigValueGraphMode.AREA)
        .justify_mode(c.BigValueJustifyMode.AUTO)
        .orientation(c.VizOrientation.AUTO)
        .reduce_options(last_value())
        .text_mode(c.BigValueTextMode.AUTO)
    )


def bars(
    title: str, description: str, query: prometheus.Dataquery, unit: str = "short"
) -> bargauge.Panel:
    """Horizontal bar gauges, one per series, of an instant query."""
    return (
        _panel(bargauge.Panel(), title, description, (query.instant(),), unit, 12, 8)
        .min(0)
        .display_mode(c.BarGaugeDisplayMode.GRADIENT)
        .orientation(c.VizOrientation.HORIZONTAL)
        .reduce_options(last_value())
        .show_unfilled(True)
    )


def tabulate(
    title: str,
    description: str,
    query: prometheus.Dataquery,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
) -> table.Panel:
    """A table of an instant query: one row per series, labels as columns, the value last."""
    query.instant().format(PromQueryFormat.TABLE)
    return (
        _panel(table.Panel(), title, description, (query,), unit, width, height)
        .cell_height(c.TableCellHeight.SM)
        .show_header(True)
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True, "__name__": True, "job": True}},
            )
        )
    )


# -- dashboards and template variables -------------------------------------------------------


def datasource_var() -> dashboard.DatasourceVariable:
    var = (
        dashboard.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .hide(VariableHide.DONT_HIDE)
        .regex("")
    )
    var.build().refresh = VariableRefresh.ON_DASHBOARD_LOAD  # the builder has no refresh()
    return var


def query_var(
    name: str, label: str, query: str, *, multi: bool = False, include_all: bool = False
) -> dashboard.QueryVariable:
    var = (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(
            {
                "qryType": 1,
                "query": query,
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            }
        )
        .hide(VariableHide.DONT_HIDE)
        .multi(multi)
        .include_all(include_all)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)  # new schools and platforms appear
        .regex("")
        .sort(VariableSort.ALPHABETICAL_ASC)
    )
    return var.all_value(".+") if include_all else var


def monitor_dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Panel | dashboard.Row],
    variables: list[dashboard.QueryVariable] | None = None,
) -> dashboard.Dashboard:
    """A dashboard of the monitor: tagged, linked to the others, its panels numbered and laid
    out by the SDK, left to right: a row starts a new line, and so does a line of 24 columns
    (keep each line's widths summing to 24; the tests fail on a panel past the grid's edge)."""
    out = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["monitor"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("")
        .week_start("")
        .version(1)
        .annotation(
            dashboard.AnnotationQuery()
            .built_in(1)
            .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .name("Annotations & Alerts")
            .type("dashboard")
        )
        .link(
            dashboard.DashboardLink("Monitor dashboards")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["monitor"])
            .as_dropdown(True)
            .icon("external link")
            .keep_time(True)
        )
        .variables([datasource_var(), *(variables or [])])
    )
    for pid, panel in enumerate(panels, start=1):
        if isinstance(panel, dashboard.Row):
            out.with_row(panel.id(pid))
        else:
            out.with_panel(panel.id(pid))
    return out


# -- the dashboards ------------------------------------------------------------------------

BYPASS_RULE = "school_platform:monitor_bypass_requests:rate5m"
BYPASS_NOTE = (
    ' Bypass services are the catalogue\'s entries of category "bypass" (VPNs, web proxies, '
    "DNS-over-HTTPS resolvers, Tor); the recording rule behind this panel lists them and uses a "
    "fixed 5-minute rate."
)


def school_link() -> dashboard.DashboardLink:
    return dashboard.DashboardLink("School ${__field.labels.school}").url(
        "/d/monitor-school/monitor-school?var-school=${__field.labels.school}&${__url_time_range}"
    )


def district_overview() -> dashboard.Dashboard:
    block = with_labels(REQ, 'decision="block"')
    panels: list[Panel | dashboard.Row] = [
        dashboard.Row("At a glance"),
        single(
            "Requests per second",
            "Requests to catalogue platforms decided per second, all proxies and the sensor.",
            q(f"sum({rate(REQ)})"),
            unit="reqps",
        ),
        single(
            "Blocked share",
            "Share of requests to catalogue platforms that were blocked.",
            q(f"(sum({rate(block)}) or vector(0)) / sum({rate(REQ)})"),
            unit="percentunit",
        ),
        single(
            "Students 12 and under blocked",
            "Blocked requests of students 12 and under (the COPPA band) in the dashboard's time "
            "range.",
            q(f"sum(increase({with_labels(block, UNDER13)}[$__range])) or vector(0)"),
        ).decimals(0),
        single(
            "Incidents",
            "Incident events raised by policy in the dashboard's time range, before deduplication.",
            q('sum(increase(monitor_incidents_total{job="monitor"}[$__range])) or vector(0)'),
        ).decimals(0),
        single(
            "Bypass attempts per second",
            "Requests to bypass services per second, whatever the decision." + BYPASS_NOTE,
            q(f"sum({BYPASS_RULE}) or vector(0)"),
            unit="reqps",
        ),
        single(
            "Proxies up",
            "Proxy processes that Prometheus scraped successfully at the last scrape: every "
            "worker of every gateway is one.",
            q('sum(up{job="monitor"})'),
        ).decimals(0),
        dashboard.Row("Traffic"),
        graph(
            "Requests by platform (top 10)",
            "Requests per second to the ten busiest catalogue platforms at each point in time.",
            q(f"topk(10, sum by (platform) ({rate(REQ)}))", "{{platform}}"),
            unit="reqps",
        ),
        graph(
            "Decisions",
            "Requests per second by decision: allow, restrict (allowed with restrictions such as "
            "SafeSearch or YouTube restricted mode) and block.",
            q(f"sum by (decision) ({rate(REQ)})", "{{decision}}"),
            unit="reqps",
            stack=True,
        ),
        graph(
            "Requests by school",
            'Requests per second by school; "unknown" is traffic that could not be tied to a '
            "school. Click a series to open the school's dashboard.",
            q(f"sum by (school) ({rate(REQ)})", "{{school}}"),
            unit="reqps",
            stack=True,
        ).data_links([school_link()]),
        graph(
            "Requests by source",
            "Requests decided on the proxy path and observations of the passive sensor (traffic "
            "that does not cross the proxy, such as QUIC).",
            q(f"sum by (source) ({rate(REQ)})", "{{source}}"),
            unit="reqps",
            stack=True,
        ),
        dashboard.Row("Policy"),
        graph(
            "Blocks by age band",
            "Blocked requests per second by age band: under13 (12 and under), teen, adult, staff, "
            "unknown (not identified; treated by the policy's default).",
            q(f"sum by (age_band) ({rate(block)})", "{{age_band}}"),
            unit="reqps",
            stack=True,
        ),
        graph(
            "Blocked share by age band",
            "Share of each age band's requests that were blocked.",
            q(
                f"sum by (age_band) ({rate(block)}) / sum by (age_band) ({rate(REQ)})",
                "{{age_band}}",
            ),
            unit="percentunit",
        ),
        graph(
            "Incidents by severity",
            "Incident events per second raised by policy, by severity (low, medium, high), before "
            "deduplication.",
            q(f"sum by (severity) ({rate(INC)})", "{{severity}}"),
            stack=True,
        ),
        tabulate(
            "Incidents by school and severity",
            "Incident events in the dashboard's time range, per school and severity.",
            q(f"sum by (school, severity) (increase({INC}[$__range]))"),
        ).decimals(0),
        bars(
            "Top platforms",
            "The ten platforms with the most requests in the dashboard's time range.",
            q(f"topk(10, sum by (platform) (increase({REQ}[$__range])))", "{{platform}}"),
        ).decimals(0),
        bars(
            "Top blocked platforms",
            "The ten platforms with the most blocked requests in the dashboard's time range.",
            q(f"topk(10, sum by (platform) (increase({block}[$__range])))", "{{platform}}"),
        ).decimals(0),
        dashboard.Row("Bypass attempts"),
        graph(
            "Bypass attempts by service",
            "Requests per second to each bypass service, whatever the decision." + BYPASS_NOTE,
            q(f"sum by (platform) ({BYPASS_RULE})", "{{platform}}"),
            unit="reqps",
            stack=True,
        ),
        graph(
            "Bypass attempts by school",
            "Requests per second to bypass services, per school." + BYPASS_NOTE,
            q(f"sum by (school) ({BYPASS_RULE})", "{{school}}"),
            unit="reqps",
            stack=True,
        ).data_links([school_link()]),
        dashboard.Row("Teacher overrides"),
        graph(
            "Teacher overrides in force",
            "Overrides teachers granted that are in force, per platform. Every proxy worker and "
            "sensor reports the same store's grants, so this is their maximum, not a sum.",
            q('max by (platform) (monitor_overrides_active{job="monitor"})', "{{platform}}"),
        ),
        graph(
            "Requests allowed by an override",
            "Requests per second that a rule blocked and a teacher's override allowed, per "
            "platform and the granter's role (a connection allowed for every request passes "
            "through undecrypted and is not counted here).",
            q(
                "sum by (platform, granted_by_role) ("
                + rate('monitor_override_allowed_requests_total{job="monitor"}')
                + ")",
                "{{platform}} ({{granted_by_role}})",
            ),
            unit="reqps",
        ),
    ]
    return monitor_dashboard(
        "monitor-district-overview",
        "Monitor / District overview",
        "Social media traffic across the district: platforms, decisions, age bands, incidents and "
        "bypass attempts.",
        panels,
    )


def school() -> dashboard.Dashboard:
    block = with_labels(REQ_SCHOOL, 'decision="block"')
    where = "at the selected school, for the selected platforms"
    panels: list[Panel | dashboard.Row] = [
        dashboard.Row("At a glance"),
        single(
            "Requests per second",
            f"Requests decided per second {where}.",
            q(f"sum({rate(REQ_SCHOOL)})"),
            unit="reqps",
            width=5,
        ),
        single(
            "Blocked share",
            f"Share of requests {where} that were blocked.",
            q(f"(sum({rate(block)}) or vector(0)) / sum({rate(REQ_SCHOOL)})"),
            unit="percentunit",
            width=5,
        ),
        single(
            "Students 12 and under blocked",
            f"Blocked requests of students 12 and under {where}, in the dashboard's time range.",
            q(f"sum(increase({with_labels(block, UNDER13)}[$__range])) or vector(0)"),
            width=5,
        ).decimals(0),
        single(
            "Incidents",
            f"Incident events {where}, in the dashboard's time range, before deduplication.",
            q(f"sum(increase({INC_SCHOOL}[$__range])) or vector(0)"),
            width=5,
        ).decimals(0),
        single(
            "Bypass attempts per second",
            "Requests per second to bypass services at the selected school (all services: the "
            "platform selection does not apply)." + BYPASS_NOTE,
            q(f'sum({BYPASS_RULE}{{school="$school"}}) or vector(0)'),
            unit="reqps",
        ),
        dashboard.Row("Traffic"),
        graph(
            "Requests by platform and decision",
            f"Requests per second by platform and decision {where}.",
            q(f"sum by (platform, decision) ({rate(REQ_SCHOOL)})", "{{platform}} {{decision}}"),
            unit="reqps",
        ),
        graph(
            "Requests by activity",
            f"Requests per second by activity (view, post, upload, message, login, stream, live, "
            f"embed) {where}.",
            q(f"sum by (activity) ({rate(REQ_SCHOOL)})", "{{activity}}"),
            unit="reqps",
            stack=True,
        ),
        graph(
            "Requests by age band",
            f"Requests per second by age band {where}.",
            q(f"sum by (age_band) ({rate(REQ_SCHOOL)})", "{{age_band}}"),
            unit="reqps",
            stack=True,
        ),
        graph(
            "Requests by source",
            f"Requests on the proxy path and sensor observations {where}.",
            q(f"sum by (source) ({rate(REQ_SCHOOL)})", "{{source}}"),
            unit="reqps",
            stack=True,
        ),
        dashboard.Row("Policy"),
        graph(
            "Blocks by age band",
            f"Blocked requests per second by age band {where}.",
            q(f"sum by (age_band) ({rate(block)})", "{{age_band}}"),
            unit="reqps",
            stack=True,
        ),
        graph(
            "Blocked share of students 12 and under",
            "Share of the requests of students 12 and under at the selected school that were "
            "blocked (all platforms, 5-minute rate): the signal of the MonitorUnder13BlocksSpike "
            "alert.",
            q('school:monitor_under13_blocks:ratio_rate5m{school="$school"}', "{{school}}"),
            unit="percentunit",
        ),
        graph(
            "Incidents by severity",
            f"Incident events per second by severity {where}.",
            q(f"sum by (severity) ({rate(INC_SCHOOL)})", "{{severity}}"),
            stack=True,
        ),
        graph(
            "Bypass attempts by service",
            "Requests per second to each bypass service at the selected school (the platform "
            "selection does not apply)." + BYPASS_NOTE,
            q(f'sum by (platform) ({BYPASS_RULE}{{school="$school"}})', "{{platform}}"),
            unit="reqps",
            stack=True,
        ),
        tabulate(
            "Platforms and decisions",
            f"Requests in the dashboard's time range by platform and decision {where}.",
            q(f"sum by (platform, decision) (increase({REQ_SCHOOL}[$__range]))"),
            width=24,
        ).decimals(0),
    ]
    return monitor_dashboard(
        "monitor-school",
        "Monitor / School",
        "One school's social media traffic: platforms, activities, age bands, blocks, incidents "
        "and bypass attempts.",
        panels,
        [
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


def proxy_health() -> dashboard.Dashboard:
    inst = 'job="monitor", instance=~"$instance"'
    conn = f"monitor_connections_total{{{inst}}}"

    def sel(metric: str) -> str:
        return f"{metric}{{{inst}}}"

    def quantile(q: float, metric: str) -> str:
        return f"histogram_quantile({q}, sum by (le) ({rate(sel(metric + '_bucket'))}))"

    panels: list[Panel | dashboard.Row] = [
        dashboard.Row("Availability"),
        single(
            "Proxies up",
            "Selected proxy instances (each worker of each gateway is one) that answered the "
            "last scrape.",
            q(f"sum({sel('up')})"),
        ).decimals(0),
        single(
            "Proxies down",
            "Selected proxy instances that failed the last scrape (see the MonitorProxyDown "
            "alert). A worker that its supervisor restarts is back within seconds, usually "
            "before a scrape notices.",
            q(f"count({sel('up')} == 0) or vector(0)"),
        ).decimals(0),
        graph(
            "Up by instance",
            "1 when Prometheus scraped the instance, 0 when the scrape failed.",
            q(sel("up"), "{{instance}}"),
            width=8,
            height=4,
        ),
        tabulate(
            "Versions",
            "The monitor versions running, with how many instances run each (a worker "
            "restarted after an upgrade runs the new one while the others run the old).",
            q(f"count without (instance) ({sel('monitor_build_info')})"),
            width=8,
            height=4,
        ),
        dashboard.Row("Throughput"),
        graph(
            "Requests decided per instance",
            "Requests to catalogue platforms decided per second by each instance. One mitmproxy "
            "process uses one core: a few hundred decrypted requests per second is its ceiling.",
            q(f"sum by (instance) ({rate(sel('monitor_requests_total'))})", "{{instance}}"),
            unit="reqps",
        ),
        graph(
            "Connections by outcome",
            "Client connections per second: passthrough (not decrypted), intercepted (decrypted "
            "to decide per request), refused (closed without decrypting).",
            q(f"sum by (outcome) ({rate(conn)})", "{{outcome}}"),
            unit="cps",
            stack=True,
        ),
        graph(
            "Intercepted share per instance",
            "Share of client connections each instance decrypts. A decrypted connection costs "
            "roughly twelve times one passed through, so this share sets the capacity.",
            q(
                f"sum by (instance) ({rate(with_labels(conn, INTERCEPTED))}) "
                f"/ sum by (instance) ({rate(conn)})",
                "{{instance}}",
            ),
            unit="percentunit",
        ),
        graph(
            "Samples per scrape per instance",
            "Samples in each instance's metrics. Labels come from bounded sets only, so this "
            "should level off however many students there are.",
            q(sel("scrape_samples_scraped"), "{{instance}}"),
        ),
        dashboard.Row("Latency and errors"),
        graph(
            "Decision latency",
            "Time to identify, classify and decide one request, 50th and 99th percentiles over "
            "the selected instances (from the histogram's buckets).",
            q(quantile(0.5, "monitor_decision_duration_seconds"), "p50"),
            q(quantile(0.99, "monitor_decision_duration_seconds"), "p99"),
            unit="s",
        ),
        graph(
            "Mean decision latency per instance",
            "Mean time to decide one request, per instance.",
            q(
                f"sum by (instance) ({rate(sel('monitor_decision_duration_seconds_sum'))}) "
                f"/ sum by (instance) ({rate(sel('monitor_decision_duration_seconds_count'))})",
                "{{instance}}",
            ),
            unit="s",
        ),
        graph(
            "Flow errors by failure mode",
            "Flows whose handling raised inside the addon, per second, over the selected "
            "instances: closed (blocked: under-13 and unknown students) or open (let through). "
            "See the MonitorFlowErrors alert.",
            q(f"sum by (mode) ({rate(sel('monitor_flow_errors_total'))})", "{{mode}}"),
        ),
        graph(
            "Flow errors per instance",
            "Flows whose handling raised inside the addon, per second, on each instance: one "
            "instance alone points at that process or host.",
            q(
                f"sum by (instance) ({rate(sel('monitor_flow_errors_total'))})",
                "{{instance}}",
            ),
        ),
        dashboard.Row("Incident pipeline"),
        graph(
            "Incident queue depth",
            "Incident events waiting in memory to be written, over the selected instances, and "
            "in the fullest one's queue (each queue is bounded; when full, events are dropped).",
            q(f"sum({sel('monitor_incident_queue_depth')})", "all"),
            q(f"max({sel('monitor_incident_queue_depth')})", "fullest instance"),
        ),
        graph(
            "Incidents dropped and spooled",
            "Incident events per second dropped because a queue was full (lost), and written to "
            "a local spool because the store failed (replayed later), over the selected "
            "instances (see the alerts for which one).",
            q(f"sum({rate(sel('monitor_incident_queue_dropped_total'))})", "dropped"),
            q(f"sum({rate(sel('monitor_incident_spooled_total'))})", "spooled"),
        ),
        graph(
            "Store write latency",
            "Time to write one batch of incidents to the store, 50th and 99th percentiles.",
            q(quantile(0.5, "monitor_store_write_duration_seconds"), "p50"),
            q(quantile(0.99, "monitor_store_write_duration_seconds"), "p99"),
            unit="s",
        ),
        graph(
            "Store write failures",
            "Failed batch writes to the incident store per second, over the selected instances "
            "(the batch goes to the spool).",
            q(f"sum({rate(sel('monitor_store_write_failures_total'))})", "failures"),
        ),
        dashboard.Row("Configuration"),
        graph(
            "Configuration reloads",
            "Reload attempts by component and result (success, failure); a failure keeps the "
            "previous version in force. See the MonitorConfigReloadFailing alert.",
            q(
                f"sum by (component, result) "
                f"(increase({sel('monitor_config_reloads_total')}[{RI}]))",
                "{{component}} {{result}}",
            ),
        ).decimals(0),
        tabulate(
            "Since last successful reload",
            "Seconds since each component was last loaded successfully, on the selected "
            "instance that loaded it longest ago. Old is normal when the files have not changed.",
            q(
                "time() - min by (component) "
                f"({sel('monitor_config_last_reload_success_timestamp_seconds')})"
            ),
            unit="s",
        ),
        tabulate(
            "Configuration size",
            "Entries in the configuration in force: people, schools, platforms, rules, devices, "
            "leases, static addresses (the largest over the selected instances; they agree when "
            "they run the same files, see the versions).",
            q(f"max by (component) ({sel('monitor_config_entries')})"),
        ).decimals(0),
        tabulate(
            "Configuration versions",
            "Content hashes of the configuration in force, with how many instances run each "
            "combination: more than one row means instances run different files.",
            q(f"count without (instance) ({sel('monitor_config_info')})"),
        ),
    ]
    return monitor_dashboard(
        "monitor-proxy-health",
        "Monitor / Proxy health",
        "The monitor proxies: availability, throughput, decision latency, errors, the incident "
        "pipeline and configuration reloads.",
        panels,
        [
            query_var(
                "instance",
                "Instance",
                'label_values(up{job="monitor"}, instance)',
                multi=True,
                include_all=True,
            ),
        ],
    )


DASHBOARDS: dict[str, Callable[[], dashboard.Dashboard]] = {
    "district-overview.json": district_overview,
    "school.json": school,
    "proxy-health.json": proxy_health,
}


def render(build: Callable[[], dashboard.Dashboard]) -> str:
    model = build().build()
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


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
