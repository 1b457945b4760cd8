"""Reading a policy file: YAML → validated models → a compiled :class:`Policy`.

Checks what the schema alone cannot know (platforms in the catalogue, schools in the roster,
rule ids, overlapping hours, restrictions only on restrict rules) and raises ``ConfigError``
naming the file, line and field of the first problem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from monitor.model import Decision, School
from monitor.platforms.catalogue import CATEGORIES, Catalogue
from monitor.rules.policy import Match, Policy, Rule, SchoolHours
from monitor.rules.schema import (
    DAYS,
    ClosedRangeModel,
    DefaultModel,
    PolicyFileModel,
    RuleModel,
    SchoolModel,
)
from monitor.yamlfile import (
    ConfigError,
    LineDict,
    LineList,
    line_of,
    load_yaml,
    shorten,
    validate,
)

RESERVED_RULE_IDS = frozenset({"default", "not-in-catalogue"})

_RULE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def _decision(rule_id: str, m: RuleModel | DefaultModel) -> Decision:
    headers: tuple[tuple[str, str], ...] = ()
    safe = False
    if m.restrict is not None:
        if m.restrict.youtube_restrict:
            headers = (("YouTube-Restrict", m.restrict.youtube_restrict.capitalize()),)
        safe = m.restrict.safe_search
    return Decision(m.action, rule_id, m.reason.strip(), m.incident, headers, safe)


class _Loader:
    """Turns the validated file into a Policy, checking what pydantic cannot know."""

    def __init__(
        self,
        path: str,
        raw: LineDict,
        catalogue: Catalogue,
        known_schools: Iterable[str | School] | None,
    ) -> None:
        self.path = path
        self.raw = raw
        self.catalogue = catalogue
        # every name of a known school → all names of that school
        self.school_names: dict[str, frozenset[str]] | None = None
        if known_schools is not None:
            self.school_names = {}
            for s in known_schools:
                if isinstance(s, School):
                    names = frozenset(n for n in (s.sourced_id, s.identifier) if n)
                else:
                    names = frozenset({s})
                for n in names:
                    self.school_names[n] = self.school_names.get(n, frozenset()) | names

    def fail(self, loc: tuple[str | int, ...], where: str, message: str) -> ConfigError:
        return ConfigError(self.path, line_of(self.raw, loc), where, message)

    def _field(self, base: str, field: str) -> str:
        return ": ".join(p for p in (base, f"field '{field}'") if p)

    def check_platforms(
        self, ids: list[str], loc: tuple[str | int, ...], where: str, field: str
    ) -> None:
        for i, pid in enumerate(ids):
            if self.catalogue.get(pid) is None:
                hint = difflib.get_close_matches(pid, sorted(self.catalogue.ids), n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise self.fail(
                    (*loc, i),
                    self._field(where, f"{field}[{i}]"),
                    f"unknown platform '{shorten(pid)}': not in the catalogue{extra}",
                )

    def check_categories(self, cats: list[str], loc: tuple[str | int, ...], where: str) -> None:
        for i, c in enumerate(cats):
            if c not in CATEGORIES:
                raise self.fail(
                    (*loc, i),
                    self._field(where, f"match.categories[{i}]"),
                    f"unknown category '{shorten(c)}': use one of {', '.join(CATEGORIES)}",
                )

    def resolve_school(
        self, name: str, loc: tuple[str | int, ...], where: str, field: str
    ) -> frozenset[str]:
        if self.school_names is None:
            return frozenset({name})
        names = self.school_names.get(name)
        if names is None:
            hint = difflib.get_close_matches(name, sorted(self.school_names), n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise self.fail(
                loc, self._field(where, field), f"unknown school '{shorten(name)}'{extra}"
            )
        return names

    def closed_dates(
        self,
        entries: list[date | ClosedRangeModel],
        loc: tuple[str | int, ...],
        where: str,
        field: str,
    ) -> set[date]:
        out: set[date] = set()
        for i, e in enumerate(entries):
            if isinstance(e, ClosedRangeModel):
                if e.to < e.from_:
                    raise self.fail(
                        (*loc, i, "to"),
                        self._field(where, f"{field}[{i}].to"),
                        f"closed range ends ({e.to}) before it starts ({e.from_})",
                    )
                n = (e.to - e.from_).days
                if n > 366:
                    raise self.fail(
                        (*loc, i),
                        self._field(where, f"{field}[{i}]"),
                        "closed range longer than a year",
                    )
                out.update(e.from_ + timedelta(days=k) for k in range(n + 1))
            else:
                out.add(e)
        return out

    def school(
        self, entry: Any, i: int, district_closed: set[date]
    ) -> tuple[frozenset[str], SchoolHours]:
        loc: tuple[str | int, ...] = ("schools", i)
        where = (
            f"school '{shorten(entry['id'])}'"
            if isinstance(entry, dict) and isinstance(entry.get("id"), str)
            else f"schools[{i}]"
        )
        m = validate(SchoolModel, entry, self.path, where=where, base_loc=loc, root=self.raw)
        names = self.resolve_school(m.id, (*loc, "id"), where, "id")
        week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for j, h in enumerate(m.hours):
            if h.end <= h.start:
                raise self.fail(
                    (*loc, "hours", j, "end"),
                    self._field(where, f"hours[{j}].end"),
                    f"school hours end ({_hhmm(h.end)}) before they start ({_hhmm(h.start)})",
                )
            for d in h.days:
                for s, e in week[d]:
                    if h.start < e and s < h.end:
                        raise self.fail(
                            (*loc, "hours", j),
                            self._field(where, f"hours[{j}]"),
                            f"hours on {DAYS[d]} overlap {_hhmm(s)}–{_hhmm(e)}",
                        )
                week[d].append((h.start, h.end))
        closed = self.closed_dates(m.closed, (*loc, "closed"), where, "closed") | district_closed
        hours = SchoolHours(
            name=m.id,
            week=tuple(tuple(sorted(w)) for w in week),
            closed=frozenset(closed),
        )
        return names, hours

    def rule(self, entry: Any, i: int, seen: dict[str, int]) -> Rule:
        loc: tuple[str | int, ...] = ("rules", i)
        where = (
            f"rule '{shorten(entry['id'])}'"
            if isinstance(entry, dict) and isinstance(entry.get("id"), str)
            else f"rules[{i}]"
        )
        m = validate(RuleModel, entry, self.path, where=where, base_loc=loc, root=self.raw)
        if not _RULE_ID_RE.match(m.id):
            raise self.fail(
                (*loc, "id"),
                self._field(where, "id"),
                "rule ids are 1-64 characters of a-z, 0-9, '.', '-' and '_'",
            )
        if m.id in RESERVED_RULE_IDS:
            raise self.fail((*loc, "id"), self._field(where, "id"), f"'{m.id}' is reserved")
        if m.id in seen:
            raise self.fail(
                (*loc, "id"),
                self._field(where, "id"),
                f"duplicate rule id (first at line {seen[m.id]})",
            )
        seen[m.id] = line_of(self.raw, (*loc,)) or 0
        self.check_restrict(m, loc, where)
        mm = m.match
        mloc = (*loc, "match")
        if mm.platforms:
            self.check_platforms(mm.platforms, (*mloc, "platforms"), where, "match.platforms")
        if mm.categories:
            self.check_categories(mm.categories, (*mloc, "categories"), where)
        schools: frozenset[str] | None = None
        if mm.schools:
            schools = frozenset()
            for j, name in enumerate(mm.schools):
                schools |= self.resolve_school(
                    name, (*mloc, "schools", j), where, f"match.schools[{j}]"
                )
        match = Match(
            who=frozenset(mm.who) if mm.who else None,
            bands=frozenset(mm.bands) if mm.bands else None,
            schools=schools,
            school_names=tuple(mm.schools or ()),
            platforms=frozenset(mm.platforms) if mm.platforms else None,
            categories=frozenset(mm.categories) if mm.categories else None,
            approved=mm.approved,
            designed_for_children=mm.designed_for_children,
            bypass=mm.bypass,
            activities=frozenset(mm.activities) if mm.activities else None,
            in_school_hours=mm.in_school_hours,
        )
        return Rule(m.id, match, _decision(m.id, m), line_of(self.raw, loc) or 0)

    def check_restrict(
        self, m: RuleModel | DefaultModel, loc: tuple[str | int, ...], where: str
    ) -> None:
        if m.action == "restrict":
            if m.restrict is None or (
                m.restrict.youtube_restrict is None and not m.restrict.safe_search
            ):
                raise self.fail(
                    (*loc, "restrict") if m.restrict is not None else (*loc, "action"),
                    self._field(where, "restrict"),
                    "a restrict rule needs youtube_restrict and/or safe_search: true",
                )
        elif m.restrict is not None:
            raise self.fail(
                (*loc, "restrict"),
                self._field(where, "restrict"),
                f"only restrict rules inject headers, this one is {m.action}",
            )

    def build(self) -> Policy:
        top = validate(PolicyFileModel, self.raw, self.path)
        if top.closed:
            district_closed = self.closed_dates(top.closed, ("closed",), "", "closed")
        else:
            district_closed = set()
        schools: dict[str, SchoolHours] = {}
        school_seen: dict[str, str] = {}
        for i, entry in enumerate(top.schools):
            names, hours = self.school(entry, i, district_closed)
            for n in names:
                if n in school_seen:
                    raise self.fail(
                        ("schools", i, "id"),
                        self._field(f"school '{shorten(hours.name)}'", "id"),
                        f"school listed twice (also as '{shorten(school_seen[n])}')",
                    )
            for n in names:
                school_seen[n] = hours.name
                schools[n] = hours
        self.check_platforms(top.approved, ("approved",), "", "approved")
        approved = frozenset(top.approved)
        seen: dict[str, int] = {}
        rules = tuple(self.rule(e, i, seen) for i, e in enumerate(top.rules))
        self.check_restrict(top.default, ("default",), "default")
        default = Rule(
            "default",
            Match(),
            _decision("default", top.default),
            line_of(self.raw, ("default",)) or 0,
        )
        return Policy(
            district=top.district.strip(),
            contact=top.contact.strip(),
            timezone=top.timezone,
            rules=rules,
            default=default,
            approved=approved,
            schools=schools,
            dedupe_window=top.dedupe_window,
            override_max_length=top.override_max_length,
            ask_teacher=top.block_page.ask_teacher.strip(),
            unknown_role=top.unknown.role,
            unknown_band=top.unknown.band,
            missing_birthdate_band=top.missing_birthdate_band,
            catalogue=self.catalogue,
            source=self.path,
        )


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def load_policy(
    path: str | Path,
    catalogue: Catalogue,
    known_schools: Iterable[str | School] | None = None,
    *,
    text: str | None = None,
) -> Policy:
    """Read, validate and compile a policy file; raise ConfigError on the first problem.

    ``known_schools``: when given (sourcedIds and identifiers, or School objects), every school
    the policy names must be one of them; School objects also let a policy written with
    identifiers (``hs``) match people whose schools are sourcedIds.
    """
    spath = str(path)
    raw = load_yaml(spath, text)
    if not isinstance(raw, LineDict):
        line = raw.line if isinstance(raw, LineList) else 1
        raise ConfigError(spath, line, "", "the policy must be a YAML mapping")
    return _Loader(spath, raw, catalogue, known_schools).build()
