"""Building the immutable :class:`Roster` from resolved rows: roles, usernames, classes."""

from __future__ import annotations

from monitor.model import ClassSection, Person
from monitor.people.roster.model import Roster
from monitor.people.roster.references import Rows, UserRow
from monitor.people.roster.tables import Export, Problems
from monitor.yamlfile import shorten


def resolve_role(export: Export, problems: Problems, user: UserRow) -> str | None:
    """A 1.2 user's role from roles.csv: the primary one; disagreeing primaries fail safe."""
    users_csv = str(export.dir / "users.csv")
    if not user.roles:
        problems.skip(users_csv, user.line, "role", "user has no role in roles.csv: user skipped")
        return None
    primaries = [r for kind, r, _ in user.roles if kind == "primary"] or [user.roles[0][1]]
    distinct = list(dict.fromkeys(primaries))
    if len(distinct) > 1:
        # A wrong 'staff' would lift the age rules from a child; a wrong 'student' only
        # restricts an adult, so a conflict resolves to student.
        chosen = "student" if "student" in distinct else distinct[0]
        problems.warn(
            str(export.dir / "roles.csv"),
            user.roles[0][2],
            "role",
            f"user '{shorten(user.sid)}' has primary roles {', '.join(distinct)}: using {chosen}",
        )
        return chosen
    return distinct[0]


def build_roster(export: Export, rows: Rows) -> Roster:
    """The Roster of an export whose rows were read and resolved."""
    problems = rows.problems
    people: dict[str, Person] = {}
    by_username: dict[str, Person] = {}
    username_line: dict[str, int] = {}
    ambiguous: set[str] = set()
    users_csv = str(export.dir / "users.csv")
    for user in rows.users.values():
        role = user.role if export.version == "1.1" else resolve_role(export, problems, user)
        if role is None:
            continue
        schools = user.orgs
        if user.primary_org:
            schools = [user.primary_org, *(s for s in schools if s != user.primary_org)]
        person = Person(
            sourced_id=user.sid,
            username=user.username,
            role=role,
            schools=tuple(schools),
            grades=user.grades,
            birth_date=user.birth,
            given_name=user.given,
            family_name=user.family,
            classes=tuple(user.classes),
            email=user.email,
        )
        people[user.sid] = person
        key = user.username.lower()
        if not key:
            continue
        if key in username_line:
            # Two people behind one login name: attributing traffic to either could apply
            # the wrong age rule, so neither is found by it (unknown → the strict default).
            problems.skip(
                users_csv,
                user.line,
                "username",
                f"'{shorten(user.username)}' is also the username on line {username_line[key]}: "
                "neither is looked up by it",
            )
            ambiguous.add(key)
            by_username.pop(key, None)
            continue
        username_line[key] = user.line
        by_username[key] = person
    for alias, (sid, file, line) in rows.aliases.items():
        person_for_alias = people.get(sid)
        if person_for_alias is None or alias in ambiguous:
            continue
        owner = by_username.get(alias)
        if owner is None:
            by_username[alias] = person_for_alias
        elif owner.sourced_id != sid:
            problems.warn(
                file,
                line,
                "username",
                f"'{shorten(alias)}' is the username of '{shorten(owner.sourced_id)}': "
                "alias ignored",
            )

    classes: dict[str, ClassSection] = {}
    for sid, (title, school) in rows.class_rows.items():
        _, teachers, students = rows.class_members[sid]
        classes[sid] = ClassSection(
            sourced_id=sid,
            title=title,
            school=school,
            teachers=tuple(p for p in dict.fromkeys(teachers) if p in people),
            students=tuple(p for p in dict.fromkeys(students) if p in people),
        )
    return Roster(
        people=people,
        by_username=by_username,
        schools=dict(rows.schools),
        classes=classes,
        version=export.digest.hexdigest()[:12],
        source=str(export.dir),
        oneroster_version=export.version,
        disabled=rows.disabled,
    )
