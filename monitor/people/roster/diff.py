"""What changed between two rosters: people added, removed or changed, counts, age bands.

People are named by sourcedId only: never a name, a username or a birthDate (a changed birthDate
is reported as changed, with the age band it moves the person between).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from monitor.model import AGE_BANDS, STUDENT_ROLES, Person, age_band_for, age_on
from monitor.people.roster.model import Roster


def band_of(person: Person, day: date) -> str:
    """A student's age band on ``day`` ('unknown' without a birthDate); staff have none ('')."""
    if person.role not in STUDENT_ROLES:
        return ""
    birth = person.birth_date
    return "unknown" if birth is None else age_band_for(age_on(birth, day))


@dataclass(frozen=True, slots=True)
class PersonChange:
    sourced_id: str
    changes: tuple[str, ...]  # "role student → teacher", "birthDate changed", …


@dataclass(frozen=True, slots=True)
class RosterDiff:
    day: date
    old_people: int
    new_people: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[PersonChange, ...]
    by_role: dict[str, tuple[int, int]]  # role → (old count, new count)
    by_school: dict[str, tuple[int, int]]  # school label → (old, new)
    by_band: dict[str, tuple[int, int]]  # students per age band
    band_moves: dict[str, int] = field(default_factory=dict)  # "under13 → teen" → people

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _pairs(old: Counter[str], new: Counter[str]) -> dict[str, tuple[int, int]]:
    return {k: (old[k], new[k]) for k in sorted(old.keys() | new.keys())}


def _label(roster: Roster, school: str) -> str:
    s = roster.schools.get(school)
    return (s.identifier or s.sourced_id) if s is not None else school


def compare(old: Roster, new: Roster, day: date) -> RosterDiff:
    """The difference from ``old`` to ``new``, with age bands on ``day``."""
    roles: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    schools: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    bands: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    for side, roster in enumerate((old, new)):
        for p in roster.people.values():
            roles[side][p.role] += 1
            schools[side].update(_label(roster, s) for s in p.schools)
            if band := band_of(p, day):
                bands[side][band] += 1
    changed: list[PersonChange] = []
    moves: Counter[str] = Counter()
    for sid in sorted(old.people.keys() & new.people.keys()):
        a, b = old.people[sid], new.people[sid]
        what: list[str] = []
        if a.role != b.role:
            what.append(f"role {a.role} → {b.role}")
        if a.schools != b.schools:
            before = ", ".join(_label(old, s) for s in a.schools) or "none"
            after = ", ".join(_label(new, s) for s in b.schools) or "none"
            what.append(f"school {before} → {after}")
        if a.grades != b.grades:
            what.append(f"grade {', '.join(a.grades) or 'none'} → {', '.join(b.grades) or 'none'}")
        if a.birth_date != b.birth_date:
            what.append(
                "birthDate added"
                if a.birth_date is None
                else "birthDate removed"
                if b.birth_date is None
                else "birthDate changed"
            )
        band_a, band_b = band_of(a, day), band_of(b, day)
        if band_a != band_b:
            move = f"{band_a or 'staff'} → {band_b or 'staff'}"
            what.append(f"age band {move}")
            moves[move] += 1
        if what:
            changed.append(PersonChange(sid, tuple(what)))
    order = {b: i for i, b in enumerate((*AGE_BANDS, "unknown"))}
    band_pairs = _pairs(*bands)
    by_band = {k: band_pairs[k] for k in sorted(band_pairs, key=lambda k: order.get(k, len(order)))}
    return RosterDiff(
        day=day,
        old_people=len(old.people),
        new_people=len(new.people),
        added=tuple(sorted(new.people.keys() - old.people.keys())),
        removed=tuple(sorted(old.people.keys() - new.people.keys())),
        changed=tuple(changed),
        by_role=_pairs(*roles),
        by_school=_pairs(*schools),
        by_band=by_band,
        band_moves=dict(sorted(moves.items())),
    )
