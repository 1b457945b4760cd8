"""What students and administrators are told about teachers' overrides: the block page's
"ask your teacher" (policy wording, only where an override could apply), explain naming the
override and the granter's role, and the metrics (overrides active, requests they allowed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.district import DistrictLoader
from monitor.flow.blockpage import BlockInfo, render_html, render_json, teacher_could_open
from monitor.flow.metrics import Metrics
from monitor.flow.recording import DecisionLog
from monitor.model import Identity
from monitor.rules.decide import ruling
from monitor.rules.explain import explain
from monitor.rules.overrides import Override, OverrideSet
from monitor.yamlfile import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "district"
# a Saturday evening in New York: no school hours, a student's YouTube is blocked
WHEN = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def district():  # type: ignore[no-untyped-def]
    return DistrictLoader(EXAMPLE).load()


def grant(platform: str = "youtube", **kw: object) -> Override:
    base: dict[str, object] = dict(id="ov-1234abcd", platform=platform, granted_by="tch-0039",
                                   class_id="cls-ms-art-07-2", starts=WHEN - timedelta(minutes=5),
                                   ends=WHEN + timedelta(minutes=40))  # fmt: skip
    base.update(kw)
    return Override(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("band", "platform", "could"),
    [("teen", "youtube", True), ("adult", "tiktok", True), ("under13", "youtube", False),
     ("under13", "youtube-kids", True), ("staff", "youtube", False), ("unknown", "youtube", False)],
)  # fmt: skip
def test_ask_your_teacher_only_where_an_override_could_apply(
    district,
    band: str,
    platform: str,
    could: bool,  # type: ignore[no-untyped-def]
) -> None:
    p = district.catalogue.get(platform)
    assert teacher_could_open(band, p) is could
    bypass = next(
        x for x in (district.catalogue.get(i) for i in district.catalogue.ids) if x.is_bypass
    )
    assert not teacher_could_open("teen", bypass)


def test_block_page_wording_comes_from_policy(district, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "ask your teacher" in district.policy.ask_teacher
    info = BlockInfo("D", "help@d.example", "YouTube", "www.youtube.com", "view", "r", "why", "now",
                     ask_teacher="Ask <your> teacher")  # fmt: skip
    html = render_html(info)
    assert '<p class="ask" id="ask-teacher">Ask &lt;your&gt; teacher</p>' in html
    assert '"ask_teacher": "Ask <your> teacher"' in render_json(info)
    assert "ask-teacher" not in render_html(BlockInfo("D", "c", "P", "h", "view", "r", "w", "n"))
    from monitor.rules.loader import load_policy

    text = (EXAMPLE / "policy.yaml").read_text()
    custom = tmp_path / "policy.yaml"
    custom.write_text(text + '\nblock_page:\n  ask_teacher: "Talk to Ms. Example."\n')
    assert load_policy(custom, district.catalogue).ask_teacher == "Talk to Ms. Example."
    custom.write_text(text + "\nblock_page:\n  ask_teachr: x\n")
    with pytest.raises(ConfigError, match="ask_teachr"):
        load_policy(custom, district.catalogue)


def test_explain_and_metrics_name_the_override_and_role(district) -> None:  # type: ignore[no-untyped-def]
    teen = district.roster.people["stu-00554"]
    yt = district.catalogue.get("youtube")
    ov = grant()
    e = explain(district.policy, teen, None, yt, "view", WHEN, OverrideSet([ov]))
    assert e.decision.action == "allow" and e.decision.rule_id == "override:ov-1234abcd"
    assert "ov-1234abcd" in e.override_note and "a teacher" in e.override_note
    assert "tch-0039" in e.override_note and "cls-ms-art-07-2" in e.override_note
    d = e.to_dict()
    assert d["override"] == "ov-1234abcd" and d["override_granted_by_role"] == "teacher"
    assert "a teacher's override" in e.decision.reason

    m = Metrics(CollectorRegistry())
    m.watch_overrides(lambda: [ov, grant(id="ov-2", platform="tiktok", ends=WHEN - timedelta(seconds=1))],
                      lambda: WHEN.timestamp())  # fmt: skip
    assert m.registry.get_sample_value("monitor_overrides_active", {"platform": "youtube"}) == 1
    assert m.registry.get_sample_value("monitor_overrides_active", {"platform": "tiktok"}) is None
    log = DecisionLog(m, None, b"k" * 32)
    r = ruling(district.policy, teen, None, yt, "view", WHEN, OverrideSet([ov]))
    assert r.override is ov
    log.record(Identity(teen, None, "static"), r, "ms", "youtube", "view", "www.youtube.com",
               WHEN.timestamp())  # fmt: skip
    labels = {"platform": "youtube", "granted_by_role": "teacher"}
    assert m.registry.get_sample_value("monitor_override_allowed_requests_total", labels) == 1
