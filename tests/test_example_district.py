"""The example district (examples/district) and its generator (examples/generate_district.py).

The generator runs as a subprocess into tmp_path with a fixed --today; the committed copy is
checked too, against the date in its GENERATED_ON file. Everything is read back through the
monitor's own loaders (roster, device inventory, leases, static address map, policy) and the
demo people are resolved and decided on exactly as the proxy would.
"""

from __future__ import annotations

import difflib
import filecmp
import importlib.util
import ipaddress
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest

from monitor.model import Identity, Person
from monitor.people.devices import Inventory, read_inventory
from monitor.people.identity import IdentityResolver, StaticMap, parse_static_map
from monitor.people.leases import LeaseTable, read_leases
from monitor.people.roster import Problem, Roster, load_roster
from monitor.platforms.catalogue import Catalogue
from monitor.rules.decide import decide
from monitor.rules.loader import load_policy
from monitor.rules.policy import Policy
from monitor.yamlfile import load_yaml

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "examples" / "generate_district.py"
COMMITTED = REPO / "examples" / "district"
TODAY = date(2026, 10, 13)  # a Tuesday and a school day in the 2026-2027 school year
SAME_YEAR = date(2027, 3, 3)  # another day of that school year
TZ = ZoneInfo("America/New_York")
GRADES = ("KG", *(f"{g:02d}" for g in range(1, 13)))
SCHOOL_OF_GRADE = {g: "es" if i <= 5 else "ms" if i <= 8 else "hs" for i, g in enumerate(GRADES)}

# Real-looking common names that must never appear (the generator draws from fixed fake lists).
COMMON_GIVEN = {
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Emma", "Olivia",
    "Liam", "Noah", "Sophia", "Isabella", "Mason", "Ava", "Ethan", "Mia", "Jacob", "Emily",
}  # fmt: skip
COMMON_SURNAMES = {
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Kim", "Patel", "Chen", "Wang",
}  # fmt: skip


def run_generator(out: Path, today: date, *extra: str) -> float:
    """Run the generator as a user would; returns its wall time in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out), "--today", today.isoformat(), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    return elapsed


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("gen") / "district"
    return out, run_generator(out, TODAY)


@dataclass
class Loaded:
    """One district read back through the monitor's loaders."""

    path: Path
    today: date
    roster: Roster
    problems: list[Problem]
    inventory: Inventory
    leases: list[LeaseTable]
    static: StaticMap
    resolver: IdentityResolver
    policy: Policy
    config: dict[str, object]


def load_district(path: Path, today: date, catalogue: Catalogue) -> Loaded:
    config = load_yaml(path / "district.yaml")
    load = load_roster(path / config["roster"], today=today)  # raises on errors
    roster = load.roster
    inventory = read_inventory(path / config["devices"])
    now = datetime(today.year, today.month, today.day, 12, tzinfo=TZ)
    leases = [read_leases(e["format"], path / e["path"], now=now) for e in config["leases"]]
    static = parse_static_map(
        config["addresses"],
        path / "district.yaml",
        root=config,
        base_loc=("addresses",),
        people=roster.people,
        by_username=roster.by_username,
        devices=inventory.devices,
    )
    resolver = IdentityResolver(
        people=roster.people,
        by_username=roster.by_username,
        devices=inventory.devices,
        leases=leases,
        static=static,
        order=config["identity_order"],
        clock=now.timestamp,
    )
    policy = load_policy(path / config["policy"], catalogue, roster.schools.values())
    return Loaded(
        path, today, roster, load.problems, inventory, leases, static, resolver, policy, config
    )


@pytest.fixture(scope="module", params=["generated", "committed"])
def district(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    from monitor.platforms import catalogue as catalogue_mod

    if request.param == "generated":
        path, _ = request.getfixturevalue("generated")
        today = TODAY
    else:
        path = COMMITTED
        today = date.fromisoformat((COMMITTED / "GENERATED_ON").read_text().strip())
    return load_district(path, today, catalogue_mod.load())


@pytest.fixture(scope="module")
def gen(generated: tuple[Path, float], catalogue: Catalogue) -> Loaded:
    return load_district(generated[0], TODAY, catalogue)


def generator_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_district", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def students(d: Loaded) -> list[Person]:
    return [p for p in d.roster.people.values() if p.is_student]


def school_ident(d: Loaded, person: Person) -> str:
    return d.roster.schools[person.schools[0]].identifier


# ---------------------------------------------------------------- generator


def test_generator_is_fast(generated: tuple[Path, float]) -> None:
    _, elapsed = generated
    assert elapsed < 5.0, f"the generator took {elapsed:.1f} s (interpreter start included)"


def test_generator_writes_every_file(generated: tuple[Path, float]) -> None:
    out, _ = generated
    expected = {
        "DEMO.md", "GENERATED_ON", "district.yaml", "policy.yaml", "devices.csv",
        "leases/dhcpd.leases", "leases/dnsmasq.leases", "leases/kea-leases4.csv",
        "roster/manifest.csv", "roster/orgs.csv", "roster/academicSessions.csv",
        "roster/courses.csv", "roster/classes.csv", "roster/users.csv", "roster/roles.csv",
        "roster/userProfiles.csv", "roster/demographics.csv", "roster/enrollments.csv",
    }  # fmt: skip
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == expected
    assert (out / "GENERATED_ON").read_text() == f"{TODAY.isoformat()}\n"


def _diff(a: Path, b: Path) -> list[str]:
    """Relative paths of files that differ between two output trees (or exist in one only)."""
    names = {str(p.relative_to(a)) for p in a.rglob("*") if p.is_file()}
    names |= {str(p.relative_to(b)) for p in b.rglob("*") if p.is_file()}
    return sorted(
        n
        for n in names
        if not ((a / n).is_file() and (b / n).is_file() and filecmp.cmp(a / n, b / n, False))
    )


def test_generator_is_deterministic(generated: tuple[Path, float], tmp_path: Path) -> None:
    first, _ = generated
    again = tmp_path / "district"  # same depth below a tmp dir: same default state_dir
    run_generator(again, TODAY)
    assert _diff(first, again) == []


def test_another_day_changes_only_the_edge_students(
    generated: tuple[Path, float], tmp_path: Path
) -> None:
    first, _ = generated
    later = tmp_path / "district"
    run_generator(later, SAME_YEAR)
    assert _diff(first, later) == ["DEMO.md", "GENERATED_ON", "roster/demographics.csv"]
    a = (first / "roster/demographics.csv").read_text().splitlines()
    b = (later / "roster/demographics.csv").read_text().splitlines()
    changed = [line for line in difflib.unified_diff(a, b, n=0) if line[:1] == "+"]
    assert len(changed) == 1 + 2, changed  # the '+++' header and the two edge students


def test_committed_copy_is_what_the_generator_writes(tmp_path: Path) -> None:
    today = date.fromisoformat((COMMITTED / "GENERATED_ON").read_text().strip())
    out = tmp_path / "district"
    run_generator(out, today, "--state-dir", "../../var/example-district")
    assert _diff(COMMITTED, out) == [], "regenerate: python examples/generate_district.py"


@pytest.mark.parametrize(
    "today",
    [date(2026, 8, 1), date(2027, 7, 31), date(2027, 1, 1), date(2028, 2, 27)],
    ids=["first-day-of-year", "last-day-of-year", "new-year", "leap-year"],
)
def test_other_generation_dates(tmp_path: Path, catalogue: Catalogue, today: date) -> None:
    """School-year boundaries: grades, ages and the 12/13 pair still hold."""
    run_generator(tmp_path, today)
    d = load_district(tmp_path, today, catalogue)
    assert d.problems == []
    assert_ages_fit_grades(d)
    assert_birthday_pair(d)
    for address in ("127.0.0.11", "127.0.0.15", "127.0.0.17"):
        assert_demo_person(d, address)


# ---------------------------------------------------------------- roster


def test_roster_loads(district: Loaded) -> None:
    for p in district.problems:  # warnings are allowed; show them
        print(p)
    assert not [p for p in district.problems if p.kind == "error"]
    assert district.roster.oneroster_version == "1.2"
    assert district.roster.disabled == 2


def test_roster_counts(district: Loaded) -> None:
    counts = district.roster.counts(district.today)
    assert 950 <= counts.by_role["student"] <= 1050
    assert 55 <= counts.by_role["teacher"] <= 65
    for role in ("principal", "counselor", "aide", "districtAdministrator"):
        assert 1 <= counts.by_role[role] <= 5, role
    assert sorted(s.identifier for s in district.roster.schools.values()) == ["es", "hs", "ms"]
    per_grade = {g: 0 for g in GRADES}
    for p in students(district):
        assert len(p.grades) == 1
        per_grade[p.grades[0]] += 1
    assert all(n >= 60 for n in per_grade.values()), per_grade
    assert counts.by_age_band["unknown"] == 2  # two students with no birthDate


def test_students_attend_the_school_of_their_grade(district: Loaded) -> None:
    wrong = [
        p.sourced_id
        for p in students(district)
        if school_ident(district, p) != SCHOOL_OF_GRADE[p.grades[0]]
    ]
    assert wrong == []


def test_birthdates_are_consistent_with_grades(district: Loaded) -> None:
    assert_ages_fit_grades(district)


def assert_ages_fit_grades(district: Loaded) -> None:
    """A student in grade g (K = 0) is g+5 or g+6 years old on any day of the school year."""
    bad = []
    for p in students(district):
        g = GRADES.index(p.grades[0])
        age = p.age_on(district.today)
        if age is not None and age not in (g + 5, g + 6):
            bad.append((p.sourced_id, p.grades[0], age))
    assert bad == []


def test_classes_have_teachers_and_students(district: Loaded) -> None:
    roster = district.roster
    assert roster.classes
    for c in roster.classes.values():
        assert len(c.teachers) == 1 and all(roster.people[t].role == "teacher" for t in c.teachers)
        assert 15 <= len(c.students) <= 30, (c.sourced_id, len(c.students))
    for p in students(district):
        ident = school_ident(district, p)
        expected = 1 if ident == "es" else 5  # a homeroom; five subjects
        assert len(p.classes) == expected, p.sourced_id
        titles = [roster.classes[c].title for c in p.classes]
        assert all(("Homeroom" in t) == (ident == "es") for t in titles)


# ---------------------------------------------------------------- devices and leases


def test_devices(district: Loaded) -> None:
    devices = district.inventory.devices
    assert district.inventory.warnings == ()
    chromebooks: dict[str, int] = {}
    for dev in devices:
        assert dev.mac is not None
        first = int(dev.mac.split(":")[0], 16)
        assert first & 0b10 and not first & 0b1, f"{dev.mac}: not locally administered unicast"
        if dev.kind == "chromebook" and dev.user:
            chromebooks[dev.user] = chromebooks.get(dev.user, 0) + 1
    for p in students(district):
        grade = GRADES.index(p.grades[0])
        assert chromebooks.get(p.sourced_id, 0) == (1 if grade >= 3 else 0), p.sourced_id
    laptops = {d.user for d in devices if d.kind == "laptop"}
    teachers = {p.sourced_id for p in district.roster.people.values() if p.role == "teacher"}
    assert teachers <= laptops
    assert sum(1 for d in devices if d.user is None) >= 10  # spares and carts


def test_leases(district: Loaded) -> None:
    by_mac = district.inventory.by_mac()
    leased = [lease for table in district.leases for lease in table.values()]
    district_macs = {lease.mac for lease in leased if lease.mac in by_mac}
    assert len(district_macs) >= 0.8 * sum(1 for d in by_mac.values() if d.user)
    for table in district.leases:
        assert table, "every lease file has active leases"
        for addr, lease in table.items():
            assert ipaddress.ip_address(addr) in ipaddress.ip_network("10.0.0.0/8")
            assert lease.expires is None  # never ends: the committed copy stays valid
    # released or expired records in the files are not active
    text = (district.path / "leases" / "dhcpd.leases").read_text()
    assert "binding state free" in text


def test_leased_addresses_resolve_to_the_device_owner(district: Loaded) -> None:
    by_mac = district.inventory.by_mac()
    checked = 0
    for table in district.leases:
        for addr, lease in list(table.items())[:20]:
            ident = district.resolver.resolve(addr)
            dev = by_mac.get(lease.mac)
            assert dev is not None and ident.source == "dhcp"
            assert ident.device is not None and ident.device.device_id == dev.device_id
            owner = ident.person.sourced_id if ident.person else None
            assert owner == dev.user
            checked += 1
    assert checked >= 40
    assert district.resolver.warnings == ()
    guests = [a for t in district.leases for a in t if a.startswith("10.99.")]
    assert guests, "visitors' phones lease addresses on the guest network"
    for addr in guests:
        ident = district.resolver.resolve(addr)
        assert (ident.source, ident.network, ident.person, ident.device) == (
            "static",
            "guest",
            None,
            None,
        )
    stats = district.resolver.stats
    assert stats["leases_unknown_mac"] == len(guests)


# ---------------------------------------------------------------- demo people

# address → (role, school identifier, grade, age on the generation date, mapped by device)
DEMO = {
    "127.0.0.11": ("student", "ms", "06", 11, True),
    "127.0.0.12": ("student", "ms", "07", 12, False),
    "127.0.0.13": ("student", "ms", "07", 13, False),
    "127.0.0.15": ("student", "hs", "10", 15, True),
    "127.0.0.16": ("student", "hs", None, None, False),
    "127.0.0.17": ("student", "hs", "12", 17, True),
    "127.0.0.50": ("teacher", "hs", None, None, True),
    "127.0.0.51": ("staff", "hs", None, None, False),
}


@pytest.mark.parametrize("address", sorted(DEMO))
def test_demo_person(district: Loaded, address: str) -> None:
    assert_demo_person(district, address)


def assert_demo_person(district: Loaded, address: str) -> None:
    role, school, grade, age, by_device = DEMO[address]
    ident = district.resolver.resolve(address)
    assert ident.source == "static"
    p = ident.person
    assert p is not None
    if role == "staff":
        assert p.is_staff and p.role in ("counselor", "principal", "districtAdministrator")
    else:
        assert p.role == role
    assert school_ident(district, p) == school
    if grade is not None:
        assert p.grades == (grade,)
    if role == "student":
        assert p.age_on(district.today) == age
    assert (ident.device is not None) == by_device
    if role == "teacher":
        assert ident.device is not None and ident.device.kind == "laptop"
    if by_device and role == "student":
        assert ident.device is not None and ident.device.kind == "chromebook"


def test_demo_people_around_their_13th_birthday(district: Loaded) -> None:
    assert_birthday_pair(district)


def assert_birthday_pair(district: Loaded) -> None:
    day = district.today
    p12 = district.resolver.resolve("127.0.0.12").person
    p13 = district.resolver.resolve("127.0.0.13").person
    assert p12 is not None and p13 is not None
    assert (p12.age_on(day), p12.age_on(day + timedelta(days=1))) == (12, 13)
    assert (p13.age_on(day - timedelta(days=2)), p13.age_on(day)) == (12, 13)
    assert p13.age_on(day - timedelta(days=1)) == 13  # the birthday was yesterday


def test_demo_student_without_birthdate(district: Loaded) -> None:
    p = district.resolver.resolve("127.0.0.16").person
    assert p is not None and p.is_student and p.birth_date is None


@pytest.mark.parametrize("address", ["127.0.0.99", "127.0.0.1", "127.0.0.200"])
def test_demo_unknown_people(district: Loaded, address: str) -> None:
    ident = district.resolver.resolve(address)
    assert ident.person is None
    if address == "127.0.0.99":
        assert ident.device is not None and ident.device.user is None
        assert ident.device.kind == "chromebook"
    else:
        assert ident.source == "unknown"


def test_config_file(district: Loaded) -> None:
    c = district.config
    assert c["catalogue"] == [] and c["identity_order"] == ["proxy_auth", "static", "dhcp"]
    assert [e["format"] for e in c["leases"]] == ["dhcpd", "dnsmasq", "kea"]
    nets = {str(r.network): r for r in district.static.routes}
    assert nets["10.99.0.0/16"].name == "guest"
    assert all(r.network.is_loopback for k, r in nets.items() if k != "10.99.0.0/16"), (
        "demo addresses are on loopback"
    )
    if district.path == COMMITTED:
        assert c["state_dir"] == "../../var/example-district"


# ---------------------------------------------------------------- policy


def test_policy_check_cli(district: Loaded) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "policy", "check", str(district.path / "policy.yaml"),
         "--school", "es", "--school", "ms", "--school", "hs"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout.splitlines()[0]


def test_policy_settings(district: Loaded) -> None:
    policy = district.policy
    assert policy.district == "Example Unified School District"
    assert "help@district.example" in policy.contact
    assert policy.timezone == "America/New_York"
    assert (policy.unknown_role, policy.unknown_band) == ("student", "under13")
    assert "youtube" in policy.approved
    assert set(district.roster.schools) <= set(policy.schools)  # sourcedIds map to es/ms/hs


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


# (address, platform, activity, in school hours, day offset, action, rule)
CASES = [
    ("127.0.0.11", "tiktok", "view", True, 0, "block", "under13"),
    ("127.0.0.11", "tiktok", "post", True, 0, "block", "under13-activity"),
    ("127.0.0.11", "youtube-kids", "view", False, 0, "allow", "kids-platforms"),
    ("127.0.0.12", "youtube", "view", True, 0, "block", "under13"),
    ("127.0.0.12", "youtube", "view", True, 1, "restrict", "approved-youtube-school-hours"),
    ("127.0.0.13", "youtube", "view", True, 0, "restrict", "approved-youtube-school-hours"),
    ("127.0.0.13", "youtube", "view", False, 0, "block", "student-social"),
    ("127.0.0.13", "youtube", "view", True, -2, "block", "under13"),
    ("127.0.0.13", "tiktok", "upload", True, 0, "block", "student-social-activity"),
    ("127.0.0.13", "linkedin", "view", True, 0, "block", "student-social"),
    ("127.0.0.15", "linkedin", "view", True, 0, "allow", "hs-career-pages"),
    ("127.0.0.15", "linkedin", "login", True, 0, "block", "student-social"),
    ("127.0.0.15", "pinterest", "view", True, 0, "allow", "approved-school-hours"),
    ("127.0.0.16", "youtube", "view", True, 0, "block", "under13"),
    ("127.0.0.17", "tiktok", "view", True, 0, "block", "student-social"),
    ("127.0.0.50", "tiktok", "post", True, 0, "allow", "staff"),
    ("127.0.0.51", "youtube", "view", False, 0, "allow", "staff"),
    ("127.0.0.99", "youtube", "view", True, 0, "block", "under13"),
    ("127.0.0.1", "youtube-kids", "view", True, 0, "allow", "kids-platforms"),
    ("127.0.0.1", "tiktok", "view", True, 0, "block", "under13"),
]


@pytest.mark.parametrize(
    ("address", "pid", "activity", "inside", "offset", "action", "rule"), CASES
)
def test_policy_decisions(
    gen: Loaded,
    catalogue: Catalogue,
    address: str,
    pid: str,
    activity: str,
    inside: bool,
    offset: int,
    action: str,
    rule: str,
) -> None:
    day = TODAY + timedelta(days=offset)  # TODAY and the day after are school days
    when = at(day, 10, 30) if inside else at(day, 19)
    ident = gen.resolver.resolve(address)
    d = decide(gen.policy, ident, None, catalogue[pid], activity, when)
    assert (d.action, d.rule_id) == (action, rule)
    if action == "restrict":
        assert d.headers == (("YouTube-Restrict", "Strict"),) and d.safe_search


def test_bypass_is_blocked_with_a_high_incident(gen: Loaded, catalogue: Catalogue) -> None:
    vpn = next(p for p in catalogue if p.is_bypass)
    for address in ("127.0.0.15", "127.0.0.1"):
        d = decide(gen.policy, gen.resolver.resolve(address), None, vpn, None, at(TODAY, 10, 30))
        assert (d.action, d.incident) == ("block", "high")


def demo_table(path: Path) -> dict[str, list[str]]:
    """DEMO.md's table: address → its cells."""
    rows: dict[str, list[str]] = {}
    for line in (path / "DEMO.md").read_text().splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_demo_md_lists_every_demo_address(district: Loaded) -> None:
    rows = demo_table(district.path)
    expected = {e["cidr"].removesuffix("/32") for e in district.config["addresses"]}
    expected = {a for a in expected if a.startswith("127.")} | {"127.0.0.1"}
    assert set(rows) == expected
    assert f"Generated on {district.today.isoformat()}" in (district.path / "DEMO.md").read_text()


def test_demo_md_matches_the_policy(gen: Loaded, catalogue: Catalogue) -> None:
    """Each DEMO.md cell is what decide() answers at 10:30 and 19:00 on the generation day."""
    rows = demo_table(gen.path)
    for address, cells in rows.items():
        ident: Identity = gen.resolver.resolve(address)
        for i, pid in enumerate(("tiktok", "youtube", "youtube-kids")):
            for j, when in enumerate((at(TODAY, 10, 30), at(TODAY, 19))):
                d = decide(gen.policy, ident, None, catalogue[pid], "view", when)
                assert cells[3 + 2 * i + j] == f"{d.action} (`{d.rule_id}`)", (address, pid, j)


# ---------------------------------------------------------------- fake names


def test_names_are_fake(district: Loaded) -> None:
    module = generator_module()
    given, family = set(module.GIVEN_NAMES), set(module.FAMILY_NAMES)
    assert not given & COMMON_GIVEN and not family & COMMON_SURNAMES
    people = district.roster.people.values()
    assert {p.given_name for p in people} <= given
    assert {p.family_name for p in people} <= family
    users = (district.path / "roster" / "users.csv").read_text()
    assert "@" in users
    for token in users.replace(",", " ").replace("\n", " ").split():
        if "@" in token:
            assert token.endswith(("@district.example", "@example.test"))
