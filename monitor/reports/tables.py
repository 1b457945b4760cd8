"""The report's tables: pure pandas functions, store rows (DataFrame) in, the table a reader
sees (DataFrame, index = row label) out. No I/O: the tests check them against hand-computed
expectations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, tzinfo

import numpy as np
import pandas as pd

SEVERITY_ORDER = ("high", "medium", "low")
STATUS_ORDER = ("new", "acknowledged", "resolved")
BYPASS_KINDS = ("vpn", "doh", "proxy", "tor")
RANK_NAMES = {3: "high", 2: "medium", 1: "low", 0: ""}
TOTAL = "total"
TOP_PLATFORMS = 6  # platforms shown by name in the weekly table; the rest are "other"
TREND_SHARE = 0.05  # a weekly slope under 5% of the mean is "flat"


def _int(df: pd.DataFrame) -> pd.DataFrame:
    return df.fillna(0).astype("int64")


def week_of(days: pd.Series) -> pd.Series:
    """The Monday of each day's week (ISO weeks)."""
    d = pd.to_datetime(days)
    return (d - pd.to_timedelta(d.dt.day_of_week, unit="D")).dt.date


def _week_labels(weeks: Sequence[date]) -> list[str]:
    return [w.isoformat() for w in weeks]


def overview(activity: pd.DataFrame, incidents: pd.DataFrame, bypass: pd.DataFrame) -> pd.DataFrame:
    """Per school and in total: requests, blocked, refused connections, bypass attempts,
    incidents and incident events."""
    cols = ["requests", "blocked", "refused connections", "bypass attempts", "incidents", "events"]
    parts = []
    if not activity.empty:
        a = activity.assign(blocked=activity.requests.where(activity.decision == "block", 0))
        g = a.groupby("school")[["requests", "blocked", "refused"]].sum()
        parts.append(g.rename(columns={"refused": "refused connections"}))
    if not bypass.empty:
        parts.append(
            bypass.groupby("school")[["requests"]].sum().set_axis(["bypass attempts"], axis=1)
        )
    if not incidents.empty:
        parts.append(incidents.groupby("school")[["incidents", "events"]].sum())
    if not parts:
        return pd.DataFrame(columns=cols, dtype="int64")
    out = _int(pd.concat(parts, axis=1).reindex(columns=cols))
    out.index = [str(s) or "unknown" for s in out.index]
    out = out.groupby(level=0).sum().sort_index()
    out.loc[TOTAL] = out.sum()
    out.index.name = "school"
    return out


def blocked_by_platform(blocked: pd.DataFrame) -> pd.DataFrame:
    """Blocked attempts per platform over the period, most first, with their share (%)."""
    if blocked.empty:
        return pd.DataFrame(columns=["blocked", "share %"])
    g = blocked.groupby("platform")["requests"].sum().sort_values(ascending=False, kind="stable")
    g = g[g > 0]
    out = pd.DataFrame({"blocked": g.astype("int64")})
    out["share %"] = (100 * out.blocked / out.blocked.sum()).round(1)
    out.loc[TOTAL] = [int(out.blocked.sum()), 100.0]
    out["blocked"] = out.blocked.astype("int64")
    out.index.name = "platform"
    return out


def blocked_by_week(blocked: pd.DataFrame, weeks: Sequence[date]) -> pd.DataFrame:
    """Blocked attempts per week (rows, every week of the period): the total and the
    ``TOP_PLATFORMS`` platforms blocked most, the others together as "other"."""
    labels = _week_labels(weeks)
    if blocked.empty:
        out = pd.DataFrame({TOTAL: 0}, index=pd.Index(labels, name="week"), dtype="int64")
        return out
    b = blocked.assign(week=[w.isoformat() for w in week_of(blocked["day"])])
    top = list(b.groupby("platform")["requests"].sum().sort_values(ascending=False).index)
    shown = top[:TOP_PLATFORMS]
    b["platform"] = b.platform.where(b.platform.isin(shown), "other")
    wide = b.pivot_table(index="week", columns="platform", values="requests", aggfunc="sum")
    order = shown + (["other"] if "other" in wide.columns else [])
    wide = _int(wide.reindex(index=labels, columns=order))
    wide.insert(0, TOTAL, wide.sum(axis=1))
    wide.index.name = "week"
    wide.columns.name = None
    return wide


def band_by_week(rows: pd.DataFrame, weeks: Sequence[date]) -> pd.DataFrame:
    """Attempts of one band per week (every week of the period): all, blocked, allowed
    (allowed or restricted)."""
    labels = _week_labels(weeks)
    out = pd.DataFrame(
        0, index=pd.Index(labels, name="week"), columns=["attempts", "blocked", "allowed"]
    )
    if rows.empty:
        return out.astype("int64")
    r = rows.assign(week=[w.isoformat() for w in week_of(rows["day"])])
    r["blocked"] = r.requests.where(r.decision == "block", 0)
    g = r.groupby("week")[["requests", "blocked"]].sum().reindex(labels)
    out["attempts"] = g.requests
    out["blocked"] = g.blocked
    out = _int(out)
    out["allowed"] = out.attempts - out.blocked
    return out


def trend(weekly: pd.Series) -> pd.DataFrame:
    """The trend of a weekly series: first and last week, change (%), slope per week (least
    squares) and its direction (rising, falling or flat: a slope under 5% of the mean)."""
    values = weekly.astype(float).to_numpy()
    n = len(values)
    first = float(values[0]) if n else 0.0
    last = float(values[-1]) if n else 0.0
    slope = float(np.polyfit(np.arange(n), values, 1)[0]) if n >= 2 else 0.0
    mean = float(values.mean()) if n else 0.0
    if n < 2 or mean == 0 or abs(slope) < TREND_SHARE * mean:
        direction = "flat"
    else:
        direction = "rising" if slope > 0 else "falling"
    change = round(100 * (last - first) / first, 1) if first else None
    out = pd.DataFrame(
        {
            "value": [
                int(first),
                int(last),
                "" if change is None else change,
                round(slope, 2),
                direction,
            ]
        },
        index=pd.Index(
            ["first week", "last week", "change %", "slope per week", "direction"], name="measure"
        ),
    )
    return out


def by_platform(rows: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """Attempts and blocked per platform (most attempts first)."""
    if rows.empty:
        return pd.DataFrame(columns=["attempts", "blocked"], dtype="int64")
    r = rows.assign(blocked=rows.requests.where(rows.decision == "block", 0))
    g = (
        r.groupby("platform")[["requests", "blocked"]]
        .sum()
        .rename(columns={"requests": "attempts"})
    )
    g = _int(g.sort_values("attempts", ascending=False, kind="stable"))
    g.index = [names.get(p, p) for p in g.index]
    g.index.name = "platform"
    return g


def bypass_by_school(rows: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """Bypass attempts (requests to VPN, DoH, proxy and Tor services) per school and kind."""
    cols = [*BYPASS_KINDS, TOTAL]
    if rows.empty:
        return pd.DataFrame(columns=cols, dtype="int64")
    r = rows.assign(kind=rows.platform.map(lambda p: kinds.get(p, "proxy")))
    wide = r.pivot_table(index="school", columns="kind", values="requests", aggfunc="sum")
    wide = _int(wide.reindex(columns=list(BYPASS_KINDS)))
    wide[TOTAL] = wide.sum(axis=1)
    wide.loc[TOTAL] = wide.sum()
    wide.index.name = "school"
    wide.columns.name = None
    return wide


def incidents_by_severity(counts: pd.DataFrame) -> pd.DataFrame:
    """Incidents per severity (rows) and review status (columns), with totals."""
    cols = [*STATUS_ORDER, TOTAL]
    if counts.empty:
        return pd.DataFrame(columns=cols, dtype="int64")
    wide = counts.pivot_table(index="severity", columns="status", values="incidents", aggfunc="sum")
    present = [s for s in SEVERITY_ORDER if s in wide.index]
    wide = _int(wide.reindex(index=present, columns=list(STATUS_ORDER)))
    wide[TOTAL] = wide.sum(axis=1)
    wide.loc[TOTAL] = wide.sum()
    wide.index.name = "severity"
    wide.columns.name = None
    return wide


def response_times(reviews: pd.DataFrame) -> pd.DataFrame:
    """Per school (all counselors, then each): incidents acknowledged and resolved, and the
    median hours from first seen to acknowledgement and to resolution.

    An incident's acknowledgement is its first change to acknowledged or resolved (resolving
    acknowledges), by whoever made it; its resolution is its first change to resolved."""
    cols = ["acknowledged", "median hours to acknowledge", "resolved", "median hours to resolve"]
    if reviews.empty:
        return pd.DataFrame(columns=cols)
    r = reviews.sort_values(["incident", "at"], kind="stable")
    seen = pd.to_datetime(r["first_seen"], utc=True)
    r = r.assign(
        school=r.school.fillna("").replace("", "unknown"),
        hours=(pd.to_datetime(r["at"], utc=True) - seen).dt.total_seconds() / 3600,
    )
    ack = r.groupby("incident").head(1)
    res = r[r.to == "resolved"].groupby("incident").head(1)

    def stats(keys: list[str]) -> pd.DataFrame:
        a = ack.groupby(keys)["hours"].agg(["count", "median"]).set_axis(cols[:2], axis=1)
        b = res.groupby(keys)["hours"].agg(["count", "median"]).set_axis(cols[2:], axis=1)
        return pd.concat([a, b], axis=1)

    every = stats(["school"]).reset_index().assign(account="")
    each = stats(["school", "account"]).reset_index()
    table = pd.concat([every, each]).sort_values(["school", "account"], kind="stable")
    table.index = pd.Index(
        [
            f"{s} · {a or 'all counselors'}"
            for s, a in zip(table.school, table.account, strict=True)
        ],
        name="school · counselor",
    )
    out = table[cols].copy()
    for c in ("acknowledged", "resolved"):
        out[c] = out[c].fillna(0).astype("int64")
    for c in ("median hours to acknowledge", "median hours to resolve"):
        out[c] = out[c].round(1)
    return out.astype(object).where(out.notna(), "")


def override_table(
    grants: pd.DataFrame,
    use: pd.DataFrame,
    school_of: Callable[[str | None, Sequence[str]], tuple[str, ...]],
    schools: Sequence[str] | None,
    tz: tzinfo = UTC,
) -> pd.DataFrame:
    """Teacher overrides in force in the period: platform, schools, granter's role, from, to,
    students covered ("class" for a class grant), revoked, and requests they allowed (use).
    ``school_of(class_id, students)`` gives a grant's schools; with ``schools``, only grants
    touching one of them are kept. Times in ``tz``."""
    cols = [
        "platform",
        "schools",
        "granted by",
        "from",
        "to",
        "students",
        "revoked",
        "requests allowed",
    ]
    if grants.empty:
        return pd.DataFrame(columns=cols)
    used = use.groupby("rule_id")["requests"].sum() if not use.empty else pd.Series(dtype="int64")
    rows = []
    for g in grants.itertuples(index=False):
        students = json.loads(g.students or "[]")
        class_id = None if pd.isna(g.class_id) else str(g.class_id)
        where = school_of(class_id, students)
        if schools is not None and not set(where) & set(schools):
            continue
        rows.append(
            {
                "override": g.id,
                "platform": g.platform,
                "schools": ", ".join(where),
                "granted by": g.role,
                "from": pd.Timestamp(g.starts).tz_convert(tz).strftime("%Y-%m-%d %H:%M"),
                "to": pd.Timestamp(g.ends).tz_convert(tz).strftime("%Y-%m-%d %H:%M"),
                "students": "class" if class_id else len(students),
                "revoked": "" if pd.isna(g.revoked_at) else "yes",
                "requests allowed": int(used.get(f"override:{g.id}", 0)),
            }
        )
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(rows).set_index("override")


def override_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per platform: overrides granted, overrides used (allowed a request) and requests they
    allowed."""
    cols = ["granted", "used", "requests allowed"]
    if table.empty:
        return pd.DataFrame(columns=cols, dtype="int64")
    t = table.assign(used=(table["requests allowed"] > 0).astype("int64"), granted=1)
    g = t.groupby("platform")[["granted", "used", "requests allowed"]].sum().astype("int64")
    g.loc[TOTAL] = g.sum()
    return g


def students_table(top: pd.DataFrame, link: Callable[[str], str]) -> pd.DataFrame:
    """The students with most incidents, under pseudonyms: school, incidents, events, highest
    severity, and the link to the student's page in the review app."""
    cols = ["school", "incidents", "events", "highest severity", "review link"]
    if top.empty:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(
        {
            "school": top.school.fillna("").replace("", "unknown").to_numpy(),
            "incidents": top.incidents.astype("int64").to_numpy(),
            "events": top.events.astype("int64").to_numpy(),
            "highest severity": [RANK_NAMES.get(int(r), "") for r in top["rank"]],
            "review link": [link(p) for p in top.person],
        },
        index=pd.Index(list(top.person), name="student (pseudonym)"),
    )
    return out
