"""A district's configuration directory, loaded into one immutable snapshot, and reloaded by
component when files change.

``district.yaml`` names the parts (paths relative to it)::

    roster: roster                 # OneRoster 1.1/1.2 bulk CSV directory
    policy: policy.yaml
    catalogue: []                  # district catalogue files merged over the shipped one
    devices: devices.csv           # device inventory (optional)
    leases:                        # DHCP lease files (optional): dhcpd | dnsmasq | kea
      - {format: dhcpd, path: leases/dhcpd.leases}
    identity_order: [proxy_auth, static, dhcp]
    addresses:                     # static address/CIDR maps → person, device or network
      - {cidr: 127.0.0.11/32, device: CB-0001}
    state_dir: var                 # overrides, incident store, spool, pseudonym key
    store: ""                      # incident store URL; default sqlite in state_dir

Loading at start-up fails on the first error. A reload re-reads only the components whose
files changed; a component whose new version is invalid is rejected whole and its previous
version stays in force, with the error reported (file, line, field) and counted.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.incidents.retention import RetentionModel
from monitor.people.devices import Inventory, read_inventory
from monitor.people.identity import IdentityResolver, StaticMap, parse_static_map
from monitor.people.leases import LeaseTable, read_leases
from monitor.people.roster import Roster, load_roster
from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.catalogue import Catalogue
from monitor.platforms.classify import Classifier
from monitor.rules.loader import load_policy
from monitor.rules.overrides import OverrideSet, OverrideStore
from monitor.rules.policy import Policy
from monitor.yamlfile import ConfigError, LineDict, load_yaml, read_regular_file, validate

CONFIG_FILE = "district.yaml"
IdentitySource = Literal["proxy_auth", "static", "dhcp"]
# The parts a reload reports on (``settings`` is district.yaml itself, reported on failure).
COMPONENTS = (
    "catalogue", "roster", "policy", "devices", "leases", "addresses", "identity", "overrides",
)  # fmt: skip


class LeaseSourceModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["dhcpd", "dnsmasq", "kea"]
    path: str | list[str]


class DistrictFileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roster: str = "roster"
    policy: str = "policy.yaml"
    catalogue: list[str] = Field(default_factory=list)
    devices: str | None = None
    leases: list[LeaseSourceModel] = Field(default_factory=list)
    identity_order: list[IdentitySource] = Field(
        default_factory=lambda: list[IdentitySource](["proxy_auth", "static", "dhcp"])
    )
    addresses: list[Any] = Field(default_factory=list)
    state_dir: str = "var"
    store: str = ""
    pseudonym_key_file: str = ""
    retention: RetentionModel | None = None


@dataclass(frozen=True)
class District:
    """Everything the proxy and sensor need to decide, as one immutable snapshot."""

    config_dir: Path
    settings: DistrictFileModel
    catalogue: Catalogue
    classifier: Classifier
    roster: Roster
    policy: Policy
    inventory: Inventory | None
    leases: tuple[LeaseTable, ...]
    addresses: StaticMap
    resolver: IdentityResolver
    overrides: OverrideSet
    versions: dict[str, str] = field(default_factory=dict)
    school_labels: dict[str, str] = field(default_factory=dict)  # school sourcedId → identifier

    @property
    def state_dir(self) -> Path:
        return self.path(self.settings.state_dir)

    def path(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else (self.config_dir / p).resolve()

    @property
    def overrides_path(self) -> Path:
        return self.state_dir / "overrides.json"

    @property
    def store_url(self) -> str:
        return self.settings.store or f"sqlite:///{self.state_dir / 'incidents.sqlite'}"

    def school_label(self, school: str | None) -> str:
        """A bounded metric label for a school sourcedId or identifier."""
        if not school:
            return "unknown"
        return self.school_labels.get(school, "unknown")


@dataclass(frozen=True)
class ReloadResult:
    component: str
    ok: bool
    message: str = ""


def _fingerprint(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in sorted(paths):
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), -1, -1))
    return tuple(out)


def _dir_files(d: Path) -> list[Path]:
    try:
        return [p for p in d.iterdir() if p.suffix.lower() == ".csv"] + [d]
    except OSError:
        return [d]


def read_settings(config_dir: Path) -> tuple[DistrictFileModel, LineDict]:
    path = config_dir / CONFIG_FILE
    raw = load_yaml(path)
    if raw is None:
        raw = LineDict()
        raw.key_lines = {}
    if not isinstance(raw, LineDict):
        raise ConfigError(path, getattr(raw, "line", 1), "", "expected a YAML mapping")
    return validate(DistrictFileModel, raw, path), raw


def pseudonym_key(district: District) -> bytes:
    """The key of the keyed pseudonyms: from MONITOR_PSEUDONYM_KEY (hex), the configured key
    file, or ``state_dir/pseudonym.key``, created (0600) with 32 random bytes if missing.
    It never lives in the repository."""
    env = os.environ.get("MONITOR_PSEUDONYM_KEY", "").strip()
    if env:
        try:
            key = bytes.fromhex(env)
        except ValueError as e:
            raise ValueError("MONITOR_PSEUDONYM_KEY must be hex") from e
        if len(key) < 16:
            raise ValueError("MONITOR_PSEUDONYM_KEY must be at least 16 bytes (32 hex digits)")
        return key
    path = (
        district.path(district.settings.pseudonym_key_file)
        if district.settings.pseudonym_key_file
        else district.state_dir / "pseudonym.key"
    )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    try:
        key = bytes.fromhex(read_regular_file(path, 4096).decode("ascii").strip())
    except OSError as e:
        raise ValueError(f"{path}: cannot read the pseudonym key: {e.strerror or e}") from None
    except ValueError:  # not ASCII, not hex
        raise ValueError(f"{path}: the pseudonym key must be hex digits") from None
    if len(key) < 16:
        raise ValueError(f"{path}: the pseudonym key must be at least 16 bytes")
    return key


class DistrictLoader:
    """Loads a configuration directory and reloads what changed, keeping the last good parts."""

    def __init__(
        self,
        config_dir: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        today: Callable[[], Any] | None = None,
    ) -> None:
        self.config_dir = Path(config_dir).resolve()
        self.clock = clock
        self._fp: dict[str, tuple[tuple[str, int, int], ...]] = {}
        self._settings: tuple[DistrictFileModel, LineDict] | None = None
        self.current: District | None = None

    # -- inputs of each component ---------------------------------------------------------

    def _inputs(self, s: DistrictFileModel) -> dict[str, list[Path]]:
        d = self.config_dir

        def p(rel: str) -> Path:
            q = Path(rel)
            return q if q.is_absolute() else d / q

        lease_paths: list[Path] = []
        for src in s.leases:
            for rel in [src.path] if isinstance(src.path, str) else src.path:
                lease_paths.append(p(rel))
        return {
            "settings": [d / CONFIG_FILE],
            "catalogue": [catalogue_mod.shipped_path()] + [p(x) for x in s.catalogue],
            "roster": _dir_files(p(s.roster)),
            "policy": [p(s.policy)],
            "devices": [p(s.devices)] if s.devices else [],
            "leases": lease_paths,
            "overrides": [p(s.state_dir) / "overrides.json"],
        }

    # -- building ---------------------------------------------------------------------------

    def load(self) -> District:
        """Load everything; raise ConfigError/ValueError on the first problem."""
        settings, raw = read_settings(self.config_dir)
        inputs = self._inputs(settings)
        district = self._build_all(settings, raw)
        self._settings = (settings, raw)
        self._fp = {k: _fingerprint(v) for k, v in inputs.items()}
        self.current = district
        return district

    def _path(self, rel: str) -> Path:
        q = Path(rel)
        return q if q.is_absolute() else self.config_dir / q

    def _catalogue(self, s: DistrictFileModel) -> Catalogue:
        return catalogue_mod.load([self._path(x) for x in s.catalogue])

    def _roster(self, s: DistrictFileModel) -> Roster:
        return load_roster(self._path(s.roster)).roster

    def _policy(self, s: DistrictFileModel, cat: Catalogue, roster: Roster) -> Policy:
        return load_policy(self._path(s.policy), cat, known_schools=list(roster.schools.values()))

    def _devices(self, s: DistrictFileModel) -> Inventory | None:
        return read_inventory(self._path(s.devices)) if s.devices else None

    def _leases(self, s: DistrictFileModel) -> tuple[LeaseTable, ...]:
        now = self.clock()
        out = []
        for src in s.leases:
            paths = [src.path] if isinstance(src.path, str) else src.path
            out.append(read_leases(src.format, [self._path(x) for x in paths], now=now))
        return tuple(out)

    def _addresses(
        self, s: DistrictFileModel, raw: LineDict, roster: Roster, inv: Inventory | None
    ) -> StaticMap:
        return parse_static_map(
            raw.get("addresses"),
            self.config_dir / CONFIG_FILE,
            root=raw,
            base_loc=("addresses",),
            people=roster.people,
            by_username=roster.by_username,
            devices=inv.devices if inv else None,
        )

    def _resolver(
        self,
        s: DistrictFileModel,
        roster: Roster,
        inv: Inventory | None,
        leases: tuple[LeaseTable, ...],
        addresses: StaticMap,
    ) -> IdentityResolver:
        return IdentityResolver(
            people=roster.people,
            by_username=roster.by_username,
            devices=inv.devices if inv else (),
            leases=leases,
            static=addresses,
            order=s.identity_order,
            clock=self.clock,
        )

    def _overrides(self, s: DistrictFileModel) -> OverrideSet:
        store = OverrideStore(self._path(s.state_dir) / "overrides.json")
        return store.override_set(datetime.fromtimestamp(self.clock(), UTC))

    def _build_all(self, s: DistrictFileModel, raw: LineDict) -> District:
        cat = self._catalogue(s)
        roster = self._roster(s)
        policy = self._policy(s, cat, roster)
        inv = self._devices(s)
        leases = self._leases(s)
        addresses = self._addresses(s, raw, roster, inv)
        resolver = self._resolver(s, roster, inv, leases, addresses)
        overrides = self._overrides(s)
        return self._assemble(s, cat, roster, policy, inv, leases, addresses, resolver, overrides)

    def _assemble(
        self,
        s: DistrictFileModel,
        cat: Catalogue,
        roster: Roster,
        policy: Policy,
        inv: Inventory | None,
        leases: tuple[LeaseTable, ...],
        addresses: StaticMap,
        resolver: IdentityResolver,
        overrides: OverrideSet,
    ) -> District:
        labels: dict[str, str] = {}
        for sid, school in roster.schools.items():
            label = school.identifier or sid
            labels[sid] = label
            labels[label] = label
        versions = {
            "roster": roster.version,
            "catalogue": str(len(cat)),
            "policy": str(len(policy.rules)),
        }
        return District(
            config_dir=self.config_dir,
            settings=s,
            catalogue=cat,
            classifier=Classifier(cat),
            roster=roster,
            policy=policy,
            inventory=inv,
            leases=leases,
            addresses=addresses,
            resolver=resolver,
            overrides=overrides,
            versions=versions,
            school_labels=labels,
        )

    # -- reloading --------------------------------------------------------------------------

    def reload(self) -> tuple[District, list[ReloadResult]]:
        """Re-read what changed. Never raises: failures are reported and the old part stays."""
        cur = self.current
        if cur is None:
            return self.load(), [ReloadResult(c, True) for c in COMPONENTS]
        results: list[ReloadResult] = []
        settings_fp = _fingerprint([self.config_dir / CONFIG_FILE])
        try:
            if self._settings is not None and self._fp.get("settings") == settings_fp:
                settings, raw = self._settings  # unchanged: no need to parse it again
            else:
                settings, raw = read_settings(self.config_dir)
        except (ConfigError, ValueError, OSError, RecursionError) as e:
            fp = _fingerprint([self.config_dir / CONFIG_FILE])
            if self._fp.get("settings") != fp:
                self._fp["settings"] = fp
                results.append(ReloadResult("settings", False, str(e)))
            return cur, results
        inputs = self._inputs(settings)
        new_fp = {k: _fingerprint(v) for k, v in inputs.items()}
        changed = {k for k, v in new_fp.items() if self._fp.get(k) != v}
        if "settings" in changed:
            changed |= set(COMPONENTS)
        if not changed:
            return cur, results

        s = settings
        cat, roster, policy, inv = cur.catalogue, cur.roster, cur.policy, cur.inventory
        leases, addresses, overrides = cur.leases, cur.addresses, cur.overrides

        def attempt(name: str, fn: Callable[[], Any]) -> Any:
            try:
                value = fn()
            except (ConfigError, ValueError, OSError, RecursionError) as e:
                # RecursionError: a loader's bug on a pathological file must not stop reloads
                results.append(ReloadResult(name, False, str(e)))
                return None
            results.append(ReloadResult(name, True))
            return value

        if "catalogue" in changed:
            cat = attempt("catalogue", lambda: self._catalogue(s)) or cat
        if "roster" in changed:
            roster = attempt("roster", lambda: self._roster(s)) or roster
        if changed & {"catalogue", "roster", "policy"}:
            new_policy = attempt("policy", lambda: self._policy(s, cat, roster))
            if new_policy is None and cat is not cur.catalogue:
                # the old policy was checked against the old catalogue: keep both together
                cat = cur.catalogue
            policy = new_policy or policy
        if "devices" in changed:
            inv_new = attempt("devices", lambda: self._devices(s))
            if inv_new is not None or not s.devices:
                inv = inv_new
        if "leases" in changed:
            leases = attempt("leases", lambda: self._leases(s)) or leases
        if changed & {"settings", "roster", "devices"}:
            addresses = (
                attempt("addresses", lambda: self._addresses(s, raw, roster, inv)) or addresses
            )
        resolver = cur.resolver
        if changed & {"settings", "roster", "devices", "leases"}:
            resolver = (
                attempt("identity", lambda: self._resolver(s, roster, inv, leases, addresses))
                or resolver
            )
        if "overrides" in changed:
            overrides = attempt("overrides", lambda: self._overrides(s)) or overrides
        district = self._assemble(
            s, cat, roster, policy, inv, leases, addresses, resolver, overrides
        )
        if cat is cur.catalogue:
            district = replace(district, classifier=cur.classifier)
        # remember fingerprints of what was attempted, so a broken file is reported once
        self._fp = new_fp
        self._settings = (settings, raw)
        self.current = district
        return district, results
