"""The Grafana dashboards, Prometheus rules and their tests in dashboards/, and the deploy/
configuration that loads them: promtool checks and unit tests, a Python lint of the dashboards,
metric names checked against ``monitor.flow.metrics.Metrics``, and a real Prometheus scraping a
populated registry, against which every dashboard query must return data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from promharness import (
    GRAFANA_BUILTINS,
    MetricsServer,
    Prometheus,
    PromQLError,
    empty_dashboard_queries,
    free_port,
    panel_queries,
    prometheus_factory,  # noqa: F401 - a fixture
    run_promtool,
    running_prometheus,
    variables_used,
)

from monitor.flow.metrics import Metrics
from monitor.model import Person, age_band_for, age_on
from monitor.platforms.catalogue import Catalogue
from monitor.rules.decide import decide
from monitor.rules.loader import load_policy
from monitor.rules.overrides import Override

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
RULES = sorted((DASHBOARDS / "rules").glob("*.yaml"))
RULE_TESTS = sorted((DASHBOARDS / "tests").glob("*-test.yaml"))
DASHBOARD_FILES = sorted(DASHBOARDS.glob("*.json"))
RUNBOOK = DASHBOARDS / "runbook.md"
DEPLOY = ROOT / "deploy"
POLICY_EXAMPLE = Path(__file__).parent / "data" / "policy_example.yaml"

DS = {"type": "prometheus", "uid": "${datasource}"}
JOB = "monitor"
SEVERITIES = {"critical", "warning", "info"}
# Series Prometheus makes for every target, which the dashboards may read.
PROMETHEUS_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
BYPASS_RULE = "school_platform:monitor_bypass_requests:rate5m"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [r for path in RULES for g in load_yaml(path)["groups"] for r in g["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def recorded_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in DASHBOARD_FILES}


def test_the_files_exist() -> None:
    assert [p.name for p in DASHBOARD_FILES] == [
        "district-overview.json",
        "proxy-health.json",
        "school.json",
    ]
    assert [p.name for p in RULES] == ["alerts.yaml", "recording.yaml"]
    assert len(RULE_TESTS) >= 4


# -- promtool --------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    out = run_promtool("check", "rules", *map(str, RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", out.stdout))
    assert found == len(rules())


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(test_file: Path) -> None:
    out = run_promtool("test", "rules", test_file.name, cwd=test_file.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_test_rules_catches_a_broken_alert(tmp_path: Path) -> None:
    # the unit tests can fail: raise a threshold and the firing case no longer fires
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    text = (DASHBOARDS / "rules" / "alerts.yaml").read_text(encoding="utf-8")
    broken = text.replace(
        "instance:monitor_flow_errors:ratio_rate5m > 0.01",
        "instance:monitor_flow_errors:ratio_rate5m > 0.5",
    )
    assert broken != text
    (tmp_path / "rules" / "alerts.yaml").write_text(broken, encoding="utf-8")
    (tmp_path / "rules" / "recording.yaml").write_bytes(
        (DASHBOARDS / "rules" / "recording.yaml").read_bytes()
    )
    test = DASHBOARDS / "tests" / "proxy-test.yaml"
    (tmp_path / "tests" / test.name).write_bytes(test.read_bytes())
    out = run_promtool("test", "rules", test.name, cwd=tmp_path / "tests")
    assert out.returncode != 0
    assert "MonitorFlowErrors" in out.stdout + out.stderr


def test_promtool_check_config_of_deploy() -> None:
    out = run_promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 rule files found" in out.stdout


def _build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DASHBOARDS / "build.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dashboards_are_built_by_build_py(tmp_path: Path) -> None:
    out = _build("--check")
    assert out.returncode == 0, f"dashboards/*.json edited by hand: edit build.py\n{out.stderr}"
    assert _build("--out", str(tmp_path)).returncode == 0
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [p.name for p in DASHBOARD_FILES]
    (tmp_path / "school.json").write_text("{}", encoding="utf-8")
    out = _build("--check", "--out", str(tmp_path))
    assert out.returncode == 1
    assert "school.json" in out.stderr


def test_grafana_provisioning_matches_prometheus_config() -> None:
    prom = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs[JOB]["static_configs"][0]["targets"][0] == "127.0.0.1:9464"
    (ds,) = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")[
        "datasources"
    ]
    assert ds["type"] == "prometheus"
    # $__rate_interval is only right when Grafana knows the scrape interval
    assert ds["jsonData"]["timeInterval"] == prom["global"]["scrape_interval"]
    (provider,) = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "monitor.yaml")[
        "providers"
    ]
    assert provider["type"] == "file"
    assert Path(provider["options"]["path"]).name == "dashboards"


# -- alerts, tests and the runbook -----------------------------------------------------------


def _alert_tests() -> list[dict[str, Any]]:
    return [
        t
        for path in RULE_TESTS
        for group in load_yaml(path)["tests"]
        for t in group.get("alert_rule_test", [])
    ]


def _expr_tests() -> list[dict[str, Any]]:
    return [
        t
        for path in RULE_TESTS
        for group in load_yaml(path)["tests"]
        for t in group.get("promql_expr_test", [])
    ]


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alert_has_severity_annotations_and_runbook(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    assert alert["labels"]["severity"] in SEVERITIES
    ann = alert["annotations"]
    assert ann["summary"].strip() and ann["description"].strip()
    assert ann["runbook_url"] == f"dashboards/runbook.md#{name.lower()}"


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_every_alert_is_tested_firing_and_not_firing(alert: dict[str, Any]) -> None:
    cases = [t for t in _alert_tests() if t["alertname"] == alert["alert"]]
    assert any(t.get("exp_alerts") for t in cases), "no test where it fires"
    assert any(not t.get("exp_alerts") for t in cases), "no test where it stays quiet"


@pytest.mark.parametrize("name", sorted(recorded_names()))
def test_every_recording_rule_has_an_expression_test(name: str) -> None:
    assert any(name in t["expr"] for t in _expr_tests())


def _runbook_sections() -> dict[str, str]:
    parts = re.split(r"^## (\S+)\s*$", RUNBOOK.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_runbook_has_one_section_per_alert() -> None:
    assert sorted(_runbook_sections()) == sorted(a["alert"] for a in alerts())


@pytest.mark.parametrize("name", sorted(a["alert"] for a in alerts()))
def test_runbook_section_says_meaning_impact_diagnosis_mitigation(name: str) -> None:
    text = _runbook_sections()[name]
    for part in ("Meaning", "Impact", "Diagnosis", "Mitigation"):
        assert f"**{part}.**" in text, f"{name}: no {part}"


def test_bypass_rule_lists_exactly_the_catalogues_bypass_services(catalogue: Catalogue) -> None:
    (rule,) = [r for r in rules() if r.get("record") == BYPASS_RULE]
    m = re.search(r'platform=~"([^"]+)"', rule["expr"])
    assert m is not None
    listed = m.group(1).split("|")
    bypass = sorted(p.id for p in catalogue.platforms.values() if p.category == "bypass")
    assert listed == bypass, "update the regex to: " + "|".join(bypass)


# -- dashboard lint ---------------------------------------------------------------------------


def _all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _all_panels(p.get("panels", []))


def _variable_query(var: Mapping[str, Any]) -> str:
    q = var.get("query", "")
    return str(q.get("query", "") if isinstance(q, dict) else q)


def lint_dashboard(d: Mapping[str, Any]) -> list[str]:
    """Problems of one dashboard, in the spirit of dashboard-linter's rules."""
    problems: list[str] = []
    if not d.get("uid") or not d.get("title"):
        problems.append("dashboard: no uid or title")
    if d.get("schemaVersion", 0) < 39:
        problems.append(f"dashboard: schemaVersion {d.get('schemaVersion')} < 39")
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if ds is None or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("templating: no 'datasource' variable of type datasource (prometheus)")
    known = set(variables) | set(GRAFANA_BUILTINS)
    used: set[str] = set()
    for name, var in variables.items():
        if var.get("type") == "query":
            if var.get("datasource") != DS:
                problems.append(f"variable {name}: datasource is not ${{datasource}}")
            query = _variable_query(var)
            if not query.startswith("label_values("):
                problems.append(f"variable {name}: not a label_values() query: {query!r}")
            used |= variables_used(query)
    ids: set[Any] = set()
    titles: set[str] = set()
    boxes: list[tuple[str, int, int, int, int]] = []
    for p in _all_panels(d.get("panels", [])):
        title = p.get("title", "")
        where = f"panel {p.get('id')} {title!r}"
        if p.get("id") in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        if not title:
            problems.append(f"{where}: no title")
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > 24:
            problems.append(f"{where}: wider than the grid")
        boxes.append((where, g.get("x", 0), g.get("y", 0), g.get("w", 0), g.get("h", 0)))
        if p.get("type") == "row":  # rows hold no queries; their title is the whole content
            continue
        if title in titles:
            problems.append(f"{where}: duplicate title")
        titles.add(title)
        if not p.get("description", "").strip():
            problems.append(f"{where}: no description")
        if p.get("datasource") != DS:
            problems.append(f"{where}: datasource is not ${{datasource}}: {p.get('datasource')}")
        targets = p.get("targets", [])
        if not targets:
            problems.append(f"{where}: no queries")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problems.append(f"{where}: duplicate refId")
        for t in targets:
            if t.get("datasource") != DS:
                problems.append(f"{where} {t.get('refId')}: datasource is not ${{datasource}}")
            if not t.get("expr", "").strip():
                problems.append(f"{where} {t.get('refId')}: empty query")
            used |= variables_used(t.get("expr", ""))
    for name in sorted(used - known):
        problems.append(f"variable ${name} is used but not defined")
    for name in sorted(set(variables) - used - {"datasource"}):
        problems.append(f"variable {name} is defined but not used")
    for i, (w1, x1, y1, wd1, h1) in enumerate(boxes):
        for w2, x2, y2, wd2, h2 in boxes[i + 1 :]:
            if x1 < x2 + wd2 and x2 < x1 + wd1 and y1 < y2 + h2 and y2 < y1 + h1:
                problems.append(f"{w1} overlaps {w2}")
    return problems


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_lint(path: Path) -> None:
    d = json.loads(path.read_text(encoding="utf-8"))  # valid JSON, or this raises
    assert lint_dashboard(d) == []
    assert "monitor" in d["tags"]
    assert sum(1 for p in d["panels"] if p["type"] != "row") >= 10


def test_dashboard_uids_are_unique() -> None:
    uids = [d["uid"] for d in dashboards().values()]
    assert len(set(uids)) == len(uids)


def test_school_dashboard_has_school_and_platform_variables() -> None:
    variables = {v["name"]: v for v in dashboards()["school.json"]["templating"]["list"]}
    assert _variable_query(variables["school"]).startswith("label_values(")
    assert "school" in _variable_query(variables["school"])
    assert "$school" in _variable_query(variables["platform"])
    assert variables["platform"]["includeAll"] and variables["platform"]["multi"]


def _broken(change: str) -> dict[str, Any]:
    d: dict[str, Any] = json.loads((DASHBOARDS / "school.json").read_text(encoding="utf-8"))
    panel = next(p for p in d["panels"] if p["type"] != "row")
    if change == "duplicate id":
        panel["id"] = d["panels"][0]["id"]
    elif change == "no description":
        panel["description"] = ""
    elif change == "datasource is not":
        panel["datasource"] = {"type": "prometheus", "uid": "PBFA97CFB590B2093"}
    elif change == "is used but not defined":
        panel["targets"][0]["expr"] += " * on () group_left () vector($grade)"
    elif change == "is defined but not used":
        d["templating"]["list"].append(dict(d["templating"]["list"][1], name="grade"))
    elif change == "overlaps":
        panel["gridPos"]["y"] += 1
    elif change == "no title":
        panel["title"] = ""
    return d


@pytest.mark.parametrize(
    "change",
    [
        "duplicate id",
        "no description",
        "datasource is not",
        "is used but not defined",
        "is defined but not used",
        "overlaps",
        "no title",
    ],
)
def test_lint_catches(change: str) -> None:
    problems = lint_dashboard(_broken(change))
    assert any(change in p for p in problems), problems


# -- metric names -----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    |(?P<var>\$\{[^}]*\}|\$\w+)
    |(?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?(?:ms|[smhdwy])*)
    |(?P<ident>[a-zA-Z_:][\w:]*)
    |(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}\[\]:@])
    |(?P<ws>\s+)""",
    re.X | re.I,
)
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
# aggregation operators may be followed by "by (...)" rather than "("
_AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count"}
_AGGREGATIONS |= {"count_values", "bottomk", "topk", "quantile"}


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """The metric names an expression reads, each with the label names its matchers use."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot read {expr[pos : pos + 20]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            tokens.append((m.lastgroup or "", m.group()))
    out: list[tuple[str, set[str]]] = []
    i = 0

    def skip(opening: str, closing: str, at: int) -> int:
        depth = 0
        while at < len(tokens):
            if tokens[at][1] == opening:
                depth += 1
            elif tokens[at][1] == closing:
                depth -= 1
                if depth == 0:
                    return at + 1
            at += 1
        raise ValueError(f"unbalanced {opening} in {expr!r}")

    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if text == "[":
            i = skip("[", "]", i)
        elif kind == "ident" and text in _GROUPING:
            i = skip("(", ")", i + 1) if nxt == "(" else i + 1
        elif kind == "ident" and (nxt == "(" or text.lower() in _KEYWORDS | _AGGREGATIONS):
            i += 1
        elif kind == "ident" or text == "{":
            name = text if kind == "ident" else ""
            labels: set[str] = set()
            j = i + 1 if kind == "ident" else i
            if j < len(tokens) and tokens[j][1] == "{":
                end = skip("{", "}", j)
                inner = tokens[j + 1 : end - 1]
                for k, (ikind, itext) in enumerate(inner):
                    if ikind == "ident" and k + 1 < len(inner) and inner[k + 1][0] == "op":
                        labels.add(itext)
                        if itext == "__name__" and k + 2 < len(inner):
                            name = inner[k + 2][1].strip("\"'`")
                j = end
            out.append((name, labels))
            i = j
        else:
            i += 1
    return out


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'sum by (platform) (rate(monitor_requests_total{job="monitor"}[5m]))',
            [("monitor_requests_total", {"job"})],
        ),
        (
            "a:b:rate5m > 3 * avg_over_time(a:b:rate5m[1h] offset 30m) and on (school) c",
            [("a:b:rate5m", set()), ("a:b:rate5m", set()), ("c", set())],
        ),
        ('max_over_time(timestamp(changes(x{job="m"}[2m]) > 0)[1d:1m])', [("x", {"job"})]),
        (
            'histogram_quantile(0.99, sum by (le) (rate(h_bucket{a=~"$v", b!="x"}[$__rate_interval])))',
            [("h_bucket", {"a", "b"})],
        ),
        ("count(up == 0) or vector(0)", [("up", set())]),
        ("x / ignoring (le) group_left (mode) y", [("x", set()), ("y", set())]),
    ],
)
def test_selectors(expr: str, expected: list[tuple[str, set[str]]]) -> None:
    assert selectors(expr) == expected


def exported_series(metrics: Metrics) -> dict[str, set[str]]:
    """Series names a Metrics registry exposes, each with its label names."""
    out: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        names = {
            "counter": [family.name + "_total"],
            "histogram": [family.name + s for s in ("_bucket", "_sum", "_count")],
            "info": [family.name + "_info"],
        }.get(family.type, [family.name])
        for name in names:
            out.setdefault(name, set())
        for sample in family.samples:
            if sample.name in out:
                out[sample.name] |= set(sample.labels)
    return out


def _rule_test_series() -> list[str]:
    return [
        s["series"]
        for path in RULE_TESTS
        for group in load_yaml(path)["tests"]
        for s in group.get("input_series", [])
    ]


def _all_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard query, variable query and rule."""
    out = []
    for name, d in dashboards().items():
        for q in panel_queries(d, name):
            out.append((f"{name} {q.panel!r} {q.ref}", q.expr))
        for var in d["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", _variable_query(var))
            if m:
                out.append((f"{name} variable {var['name']}", m.group(1)))
    for r in rules():
        out.append((f"rule {r.get('record') or r.get('alert')}", r["expr"]))
    for series in _rule_test_series():
        out.append(("promtool test input", series))
    return out


def test_every_metric_named_exists(populated: Metrics) -> None:
    exported = exported_series(populated)
    allowed = set(exported) | recorded_names() | PROMETHEUS_SERIES
    problems = []
    for where, expr in _all_queries():
        for name, labels in selectors(expr):
            if name not in allowed:
                problems.append(f"{where}: unknown metric {name}")
            elif name in exported:
                unknown = labels - exported[name] - {"job", "instance"}
                if unknown:
                    problems.append(f"{where}: {name} has no label {sorted(unknown)}")
    assert problems == []


def test_the_metric_check_catches_unknown_names_and_labels(populated: Metrics) -> None:
    exported = exported_series(populated)
    assert "monitor_requests_total" in exported
    assert "monitor_decision_duration_seconds_bucket" in exported
    assert "monitor_build_info" in exported
    assert "monitor_requests" not in exported  # a family name is not a series
    assert "age_band" in exported["monitor_requests_total"]
    assert "grade" not in exported["monitor_requests_total"]


def test_promtool_check_metrics(populated: Metrics) -> None:
    exposition = generate_latest(populated.registry).decode()
    assert "monitor_requests_total{" in exposition
    out = run_promtool("check", "metrics", stdin=exposition)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "" and out.stderr.strip() == ""


# -- synthetic traffic ------------------------------------------------------------------------

SCHOOLS = ("es", "ms", "hs")
# platform, activity, decision, age band, source, incident severity (None: no incident)
TRAFFIC = (
    ("youtube", "view", "allow", "teen", "proxy", None),
    ("youtube", "post", "restrict", "adult", "proxy", None),
    ("tiktok", "view", "block", "under13", "proxy", "medium"),
    ("tiktok", "post", "allow", "teen", "sensor", None),
    ("youtube-kids", "view", "allow", "under13", "proxy", None),
    ("nordvpn", "view", "block", "teen", "sensor", "high"),
    ("doh-google", "view", "block", "unknown", "proxy", "high"),
    ("instagram", "message", "allow", "staff", "proxy", None),
)
COMPONENTS = ("catalogue", "roster", "policy", "devices", "leases", "addresses", "overrides")


_WATCHING: weakref.WeakSet[Metrics] = weakref.WeakSet()
_GRANT = Override(id="ov-1", platform="youtube", granted_by="t-1", class_id="c-1",
                  starts=datetime(2000, 1, 1, tzinfo=UTC), ends=datetime(2100, 1, 1, tzinfo=UTC))  # fmt: skip


def populate(m: Metrics, step: int = 1) -> None:
    """One tick of traffic: every counter goes up, every histogram gets observations."""
    if m not in _WATCHING:  # a teacher's grant in force, as a proxy sees it in the store
        _WATCHING.add(m)
        m.watch_overrides(lambda: [_GRANT])
    m.override_allowed.labels("youtube", "teacher").inc(step)
    for school in SCHOOLS:
        for platform, activity, decision, band, source, severity in TRAFFIC:
            m.requests.labels(platform, activity, decision, band, school, source).inc(step)
            if severity:
                m.incidents.labels(platform, severity, school, source).inc(step)
    for outcome, platform in (
        ("passthrough", "none"),
        ("intercepted", "tiktok"),
        ("refused", "nordvpn"),
    ):
        m.connections.labels(outcome, platform).inc(step * 3)
    m.flow_errors.labels("open").inc(step)
    m.flow_errors.labels("closed").inc(step)
    for seconds in (3e-6, 2e-5, 4e-4):
        m.decision_seconds.observe(seconds)
    for seconds in (0.004, 0.03):
        m.store_seconds.observe(seconds)
    m.queue_depth.set(5 * step)
    m.queue_dropped.inc(step)
    m.spooled.inc(step)
    m.store_failures.inc(step)
    for component in COMPONENTS:
        m.reloads.labels(component, "success").inc(step)
        m.config_loaded.labels(component).set(datetime.now(UTC).timestamp())
        m.config_size.labels(component).set(10)
    m.reloads.labels("roster", "failure").inc(step)
    m.config_version.info({"catalogue": "c0ffee", "roster": "5eed", "policy": "ab12"})


@pytest.fixture
def populated() -> Metrics:
    m = Metrics(CollectorRegistry())
    populate(m)
    return m


class Ticker:
    """Drives traffic into Metrics registries from a thread, so counters rise between scrapes."""

    def __init__(self, metrics: list[Metrics], period: float = 0.2) -> None:
        self.metrics = metrics
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for m in self.metrics:
                populate(m)
            self._stop.wait(self.period)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -- end to end: a real Prometheus --------------------------------------------------------------


@dataclass
class Scraped:
    prom: Prometheus
    instances: list[str]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """Two registries served like two proxy instances, traffic flowing, scraped every second by
    a real Prometheus that evaluates the recording and alerting rules."""
    metrics = [Metrics(CollectorRegistry()), Metrics(CollectorRegistry())]
    servers = [MetricsServer(m.registry).start() for m in metrics]
    targets = [s.address for s in servers]
    try:
        with (
            Ticker(metrics),
            running_prometheus(
                tmp_path_factory.mktemp("prometheus"), targets, rule_files=RULES
            ) as prom,
        ):
            prom.wait_scrapes(3)
            prom.wait_for(f"count({BYPASS_RULE}) > 0")
            prom.wait_for("count(school:monitor_under13_blocks:ratio_rate5m) > 0")
            yield Scraped(prom, targets)
    finally:
        for s in servers:
            s.stop()


@pytest.mark.slow
def test_every_dashboard_query_returns_data_from_real_prometheus(scraped: Scraped) -> None:
    prom = scraped.prom
    # the variable queries list real values, which then fill the panels' queries
    assert prom.label_values("school", 'monitor_requests_total{job="monitor"}') == sorted(SCHOOLS)
    platforms = prom.label_values("platform", 'monitor_requests_total{job="monitor", school="es"}')
    assert "tiktok" in platforms and "nordvpn" in platforms
    assert prom.label_values("instance", 'up{job="monitor"}') == sorted(scraped.instances)
    values = {
        "datasource": "unused",
        "school": "es",
        "platform": "tiktok",
        "instance": scraped.instances[0],
    }
    assert empty_dashboard_queries(prom, dashboards(), values) == []
    # the "All" choice of a multi-value variable is Grafana's regex .+
    assert (
        empty_dashboard_queries(prom, dashboards(), dict(values, platform=".+", instance=".+"))
        == []
    )


def _evaluated(groups: list[dict[str, Any]]) -> bool:
    return all(r.get("health") != "unknown" for g in groups for r in g["rules"])


@pytest.mark.slow
def test_rules_evaluate_without_errors_on_real_prometheus(scraped: Scraped) -> None:
    prom = scraped.prom
    deadline = time.monotonic() + 10
    while not _evaluated(groups := prom.rule_groups()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert {g["name"] for g in groups} == {
        g["name"] for path in RULES for g in load_yaml(path)["groups"]
    }
    health = {r["name"]: (r.get("health"), r.get("lastError")) for g in groups for r in g["rules"]}
    assert len(health) == len(rules())
    assert {k: v for k, v in health.items() if v[0] != "ok"} == {}
    # the bypass rule keeps bypass services only
    bypass = {s["metric"]["platform"] for s in prom.query(BYPASS_RULE)}
    assert bypass == {"nordvpn", "doh-google"}
    assert prom.value('sum(up{job="monitor"})') == 2
    # nothing fires on healthy traffic: every alert with a "for" is at most pending, and the
    # ones without one (queue drops, rejected reloads) do fire, since the traffic has both
    firing = {
        a["labels"]["alertname"] for a in prom.api("alerts")["alerts"] if a["state"] == "firing"
    }
    assert firing <= {"MonitorIncidentQueueDropping", "MonitorConfigReloadFailing"}


@pytest.mark.slow
def test_harness_sees_a_target_that_is_down(prometheus_factory: Any) -> None:  # noqa: F811
    m = Metrics(CollectorRegistry())
    populate(m)
    with MetricsServer(m.registry) as live:
        dead = f"127.0.0.1:{free_port()}"  # nothing listens there
        prom = prometheus_factory([live.address, dead])
        result = prom.wait_for('up{job="monitor"}', lambda r: len(r) == 2)
        assert {s["metric"]["instance"]: s["value"][1] for s in result} == {
            live.address: "1",
            dead: "0",
        }
        assert prom.value('monitor_build_info{job="monitor"}') == 1
        with pytest.raises(PromQLError):
            prom.query("sum(")


# -- cardinality --------------------------------------------------------------------------------

# Ages per school, so that every school has a fixed set of age bands (12 and 13 on either side
# of the COPPA edge).
AGES = {"es": (6, 9, 12), "ms": (11, 12, 13, 14), "hs": (14, 16, 17, 18)}
REQUESTS = (
    ("youtube", "view"),
    ("youtube", "post"),
    ("tiktok", "view"),
    ("instagram", "message"),
    ("roblox", "view"),
    ("youtube-kids", "view"),
    ("nordvpn", "view"),
    ("doh-google", "view"),
)
TZ = ZoneInfo("America/New_York")
TIMES = (datetime(2026, 3, 10, 10, 0, tzinfo=TZ), datetime(2026, 3, 10, 19, 0, tzinfo=TZ))


def synthetic_students(n: int, today: date) -> list[Person]:
    """n obviously fake students spread evenly over the schools and their ages."""
    people = []
    for i in range(n):
        school = SCHOOLS[i % len(SCHOOLS)]
        ages = AGES[school]
        age = ages[(i // len(SCHOOLS)) % len(ages)]
        born = date(today.year - age - 1, today.month, today.day) + timedelta(days=100)
        people.append(
            Person(
                f"stu-{i:05d}",
                f"student{i:05d}",
                "student",
                schools=(school,),
                birth_date=born,
                given_name=f"Student{i:05d}",
                family_name="Testperson",
            )
        )
    return people


def district_traffic(catalogue: Catalogue, students: int) -> Metrics:
    """Every synthetic student makes the same requests at two times of day; the policy decides."""
    policy = load_policy(POLICY_EXAMPLE, catalogue)
    m = Metrics(CollectorRegistry())
    for person in synthetic_students(students, TIMES[0].date()):
        school = person.schools[0]
        for when in TIMES:
            band = age_band_for(age_on(person.birth_date, when.date()))  # type: ignore[arg-type]
            for pid, activity in REQUESTS:
                d = decide(policy, person, None, catalogue.get(pid), activity, when)
                m.requests.labels(pid, activity, d.action, band, school, "proxy").inc()
                if d.incident:
                    m.incidents.labels(pid, d.incident, school, "proxy").inc()
                outcome = "refused" if d.action == "block" else "intercepted"
                m.connections.labels(outcome, pid).inc()
    return m


def series(m: Metrics) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (s.name, tuple(sorted(s.labels.items())))
        for family in m.registry.collect()
        for s in family.samples
    }


@pytest.mark.slow
def test_series_do_not_grow_with_the_number_of_students(catalogue: Catalogue) -> None:
    small = district_traffic(catalogue, 100)
    large = district_traffic(catalogue, 10_000)
    assert len(series(small)) == len(series(large))
    assert series(small) == series(large)
    # the same label sets carry a hundred times the traffic
    requests = "monitor_requests_total"
    assert (
        small.registry.get_sample_value(
            requests,
            {
                "platform": "nordvpn",
                "activity": "view",
                "decision": "block",
                "age_band": "teen",
                "school": "ms",
                "source": "proxy",
            },
        )
        is not None
    )
    total = sum(s.value for f in large.registry.collect() for s in f.samples if s.name == requests)
    assert total == 10_000 * len(TIMES) * len(REQUESTS)
    # and both sides of the COPPA edge, and blocks, are there
    bands = {dict(labels)["age_band"] for name, labels in series(large) if name == requests}
    assert bands == {"under13", "teen", "adult"}


# -- workers: one scrape target per proxy worker, the panels and rules sum over them ----------


def _instance_labelled(prom: Prometheus, expr: str) -> bool:
    return any("instance" in s["metric"] for s in prom.query(expr))


@pytest.mark.slow
def test_panels_show_one_series_per_instance_only_when_their_title_says_so(
    scraped: Scraped,
) -> None:
    """With N workers per gateway each is an instance: the district and school dashboards sum
    over them, and a proxy-health panel keeps them apart only when its title says so."""
    from promharness import fill_template

    values = {
        "datasource": "unused",
        "school": "es",
        "platform": ".+",
        "instance": ".+",
    }
    problems = []
    for name, d in dashboards().items():
        for q in panel_queries(d, name):
            per_instance = _instance_labelled(scraped.prom, fill_template(q.expr, values))
            if per_instance != ("instance" in q.panel.lower()):
                what = "per instance" if per_instance else "summed"
                problems.append(f"{name} {q.panel!r} {q.ref}: {what}: {q.expr}")
    assert problems == []


@pytest.mark.slow
def test_recording_rules_sum_over_instances_unless_named_per_instance(scraped: Scraped) -> None:
    prom = scraped.prom
    prom.wait_for("count(job:monitor_flow_errors:rate5m) > 0")
    slow = {r["record"] for r in rules() if "record" in r and ":1m]" in r["expr"]}
    problems = []
    for name in sorted(recorded_names()):
        result = prom.query(name)
        if not result:
            # a subquery on a one-minute grid has no step yet in a Prometheus just started
            assert name in slow, f"{name}: no data"
            continue
        per_instance = any("instance" in s["metric"] for s in result)
        if per_instance != ("instance" in name.split(":")[0]):
            problems.append(name)
    assert problems == []


def test_rule_tests_have_a_gateway_with_two_workers() -> None:
    (path,) = [p for p in RULE_TESTS if p.name == "workers-test.yaml"]
    series = " ".join(s["series"] for g in load_yaml(path)["tests"] for s in g["input_series"])
    assert 'instance="gw1:9464"' in series and 'instance="gw1:9465"' in series


def test_prometheus_config_shows_one_target_per_worker() -> None:
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    assert "--workers" in text
    commented = "\n".join(
        line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()
    )
    for port in (9464, 9465, 9466, 9467):
        assert f"127.0.0.1:{port}" in commented
