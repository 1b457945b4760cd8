"""Pseudonym → person, built from the roster for the reveal (the store holds pseudonyms only)."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.incidents.events import pseudonym
from monitor.model import Person
from monitor.people.roster import Roster


@dataclass(frozen=True, slots=True)
class Revealed:
    """What a reveal shows: never more than name, roster id, grade and schools."""

    pseudonym: str
    sourced_id: str
    given_name: str
    family_name: str
    role: str
    grades: tuple[str, ...]
    schools: tuple[str, ...]  # school identifiers (es, ms, …)
    school_names: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


class Directory:
    """Every roster person under their pseudonym; rebuilt when the roster changes."""

    def __init__(self, roster: Roster, key: bytes) -> None:
        self.version = roster.version
        self._key = key
        self._by_pseudonym: dict[str, Person] = {}
        for person in roster.people.values():
            self._by_pseudonym[pseudonym(key, person.sourced_id)] = person
        self._schools = {
            sid: (school.identifier or sid, school.name) for sid, school in roster.schools.items()
        }

    def __len__(self) -> int:
        return len(self._by_pseudonym)

    def pseudonym_of(self, sourced_id: str) -> str:
        return pseudonym(self._key, sourced_id)

    def find(self, pseudonym_: str) -> Revealed | None:
        """The person behind a pseudonym, or None when not in the current roster."""
        person = self._by_pseudonym.get(pseudonym_)
        if person is None:
            return None
        labels = [self._schools.get(s, (s, s)) for s in person.schools]
        return Revealed(
            pseudonym=pseudonym_,
            sourced_id=person.sourced_id,
            given_name=person.given_name,
            family_name=person.family_name,
            role=person.role,
            grades=person.grades,
            schools=tuple(label for label, _ in labels),
            school_names=tuple(name for _, name in labels),
        )

    def schools_of(self, pseudonym_: str) -> tuple[str, ...]:
        """The school identifiers of the person behind a pseudonym (empty: unknown)."""
        person = self._by_pseudonym.get(pseudonym_)
        if person is None:
            return ()
        return tuple(self._schools.get(s, (s, s))[0] for s in person.schools)

    def school_names(self) -> dict[str, str]:
        """School identifier → name."""
        return dict(self._schools.values())
