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
    state_dir: var                 # incident store (SQLite), journals, spools, pseudonym key
    store: ""                      # incident store URL; default sqlite in state_dir
    pseudonym_key_file: ""         # the district's key (default: state_dir/pseudonym.key)
    notify: {smtp: …, incidents: …, webhook: …, weekly: …, event_log: …}   # optional, see
                                   # monitor.notify.config (read at process start)

Loading at start-up fails on the first error. A reload re-reads only the components whose
files changed; a component whose new version is invalid is rejected whole and its previous
version stays in force, with the error reported (file, line, field) and counted.

Teacher overrides are not a file: they live in the incident store, shared by every proxy and
sensor writing to it. Each reload asks the store for their change counter (one small query,
off the event loop) and reads them again when it moved. A store that cannot be reached is no
error at start (the overrides are empty, or an old ``overrides.json``'s until it is imported)
and is asked again after a backoff. ``STATE_DIR/overrides.json``, the store of earlier
versions, is imported into the store once, when found, and renamed ``overrides.json.imported``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.incidents.retention import RetentionModel
from monitor.notify.config import NotifyModel
from monitor.people.devices import Inventory, read_inventory
from monitor.people.identity import IdentityResolver, StaticMap, parse_static_map
from monitor.people.leases import LeaseTable, read_leases
from monitor.people.roster import Roster, load_roster, roster_inputs
from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.catalogue import Catalogue
from monitor.platforms.classify import Classifier
from monitor.rules.loader import load_policy
from monitor.rules.overrides import OverrideBook, OverrideSet, OverrideStore, SharedOverrides
from monitor.rules.policy import Policy
from monitor.yamlfile import (
    MAX_CONFIG_BYTES,
    ConfigError,
    LineDict,
    load_yaml,
    read_regular_file,
    validate,
)

log = logging.getLogger("monitor")

CONFIG_FILE = "district.yaml"
# The teacher overrides' file before they moved into the store: imported once, then renamed.
LEGACY_OVERRIDES = "overrides.json"
# Reading the overrides: seconds to connect (PostgreSQL) or wait for a lock (SQLite); and the
# backoff between attempts while the store cannot be reached.
STORE_TIMEOUT = 5.0
STORE_RETRY_INITIAL, STORE_RETRY_MAX = 1.0, 30.0
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
    notify: NotifyModel | None = None  # e-mail, webhook, weekly report, event log


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
    store_override: str = ""  # the store URL this process was given instead of district.yaml's

    @property
    def state_dir(self) -> Path:
        return self.path(self.settings.state_dir)

    def path(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else (self.config_dir / p).resolve()

    @property
    def overrides_path(self) -> Path:
        """The teacher overrides' file of earlier versions (imported into the store once)."""
        return self.state_dir / LEGACY_OVERRIDES

    @property
    def store_url(self) -> str:
        """The incident store (and teacher overrides): this process's ``--store``, else
        district.yaml's ``store``, else SQLite in the state directory."""
        return self.store_override or store_url_of(self.settings, self.state_dir)

    def school_label(self, school: str | None) -> str:
        """A bounded metric label for a school sourcedId or identifier."""
        if not school:
            return "unknown"
        return self.school_labels.get(school, "unknown")


def store_url_of(settings: DistrictFileModel, state_dir: Path) -> str:
    return settings.store or f"sqlite:///{state_dir / 'incidents.sqlite'}"


def shared_overrides(url: str, timeout: float = 10.0) -> SharedOverrides:
    """The district's teacher overrides, in the incident store at ``url`` (see
    :class:`monitor.rules.overrides.SharedOverrides`); close with ``.source.close()``."""
    from monitor.incidents.store.overrides import SqlOverrideRecords

    return SharedOverrides(SqlOverrideRecords(url, timeout=timeout))


def import_legacy_overrides(book: OverrideBook, path: Path) -> int | None:
    """Import ``STATE_DIR/overrides.json`` (the store of earlier versions) into ``book`` once:
    grants whose id the store lacks are added, then the file is renamed to
    ``overrides.json.imported`` and never read again. Returns how many were added (None: no
    file). ConfigError names the file and line of a damaged one (it stays, and is tried again
    when it changes); other processes importing at the same time add nothing twice."""
    if not path.exists() and not path.is_symlink():
        return None
    records = OverrideStore(path).load()
    added = book.add_all(records)
    target = path.with_name(path.name + ".imported")
    if target.exists():
        target = path.with_name(f"{path.name}.imported-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.replace(path, target)
    except FileNotFoundError:  # another process (same state directory) renamed it
        pass
    else:
        log.warning(
            "monitor: teacher overrides: imported %s into the incident store %s (%d of %d "
            "grants were new); the file is renamed to %s and no longer read: grant, list and "
            "revoke with `monitor override … --config DIR`",
            path, book.name, len(added), len(records), target.name,
        )  # fmt: skip
    return len(added)


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


def pseudonym_key_source(district: District) -> str:
    """Where :func:`pseudonym_key` takes the key from: ``MONITOR_PSEUDONYM_KEY`` or a file."""
    if os.environ.get("MONITOR_PSEUDONYM_KEY", "").strip():
        return "MONITOR_PSEUDONYM_KEY"
    return str(_key_path(district))


def _key_path(district: District) -> Path:
    if district.settings.pseudonym_key_file:
        return district.path(district.settings.pseudonym_key_file)
    return district.state_dir / "pseudonym.key"


def pseudonym_key(district: District) -> bytes:
    """The key of the keyed pseudonyms: from MONITOR_PSEUDONYM_KEY (hex), the configured key
    file (``pseudonym_key_file``, relative to the configuration directory: the district's one
    key, distributed with it to every gateway), or ``state_dir/pseudonym.key``, created (0600)
    with 32 random bytes if missing. It never lives in the repository.

    Processes starting together on one state directory agree on the created key: it is written
    to a temporary file and linked into place only if no key is there yet."""
    env = os.environ.get("MONITOR_PSEUDONYM_KEY", "").strip()
    if env:
        try:
            key = bytes.fromhex(env)
        except ValueError as e:
            raise ValueError("MONITOR_PSEUDONYM_KEY must be hex") from e
        if len(key) < 16:
            raise ValueError("MONITOR_PSEUDONYM_KEY must be at least 16 bytes (32 hex digits)")
        return key
    path = _key_path(district)
    if not path.exists() and not path.is_symlink():
        _create_key(path)
    try:
        key = bytes.fromhex(read_regular_file(path, 4096).decode("ascii").strip())
    except OSError as e:
        raise ValueError(f"{path}: cannot read the pseudonym key: {e.strerror or e}") from None
    except ValueError:  # not ASCII, not hex
        raise ValueError(f"{path}: the pseudonym key must be hex digits") from None
    if len(key) < 16:
        raise ValueError(f"{path}: the pseudonym key must be at least 16 bytes")
    return key


def _create_key(path: Path) -> None:
    """Write a new random key at ``path`` unless another process got there first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp: 0600
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and never over an existing key
        except FileExistsError:
            pass  # another process made it: use theirs
    finally:
        os.unlink(tmp)


class DistrictLoader:
    """Loads a configuration directory and reloads what changed, keeping the last good parts."""

    def __init__(
        self,
        config_dir: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        today: Callable[[], Any] | None = None,
        store_url: str = "",
    ) -> None:
        self.config_dir = Path(config_dir).resolve()
        self.clock = clock
        self.store_url = store_url  # instead of district.yaml's (a proxy's monitor_store)
        self._fp: dict[str, tuple[tuple[Any, ...], ...]] = {}
        self._book: SharedOverrides | None = None
        self._book_url = ""
        self._store_seen: tuple[Any, ...] = ()  # the last _store_version() answer
        self._store_retry_at = 0.0  # monotonic; the store is not asked again before this
        self._store_backoff = STORE_RETRY_INITIAL
        self._settings: tuple[DistrictFileModel, LineDict] | None = None
        self._policy_digest = ""  # of the policy file in force (a version `monitor status` shows)
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
            "roster": roster_inputs(p(s.roster)),  # with delta exports in subdirectories
            "policy": [p(s.policy)],
            "devices": [p(s.devices)] if s.devices else [],
            "leases": lease_paths,
            # the legacy file, to import it when it appears; the store's change counter is
            # added to this component's fingerprint by _store_version
            "overrides": [p(s.state_dir) / LEGACY_OVERRIDES],
        }

    # -- building ---------------------------------------------------------------------------

    def load(self) -> District:
        """Load everything; raise ConfigError/ValueError on the first problem. A store that
        cannot be reached is no such problem: the overrides are then empty (or, before their
        import, the old file's) until it answers, and it is asked again at each reload."""
        settings, raw = read_settings(self.config_dir)
        inputs = self._inputs(settings)
        seen = self._store_version(settings)  # before reading: a change after it shows later
        district = self._build_all(settings, raw)
        self._settings = (settings, raw)
        self._fp = {k: _fingerprint(v) for k, v in inputs.items()}
        # the version read before the overrides, or "down" if reading them failed after it
        self._fp["overrides"] += (self._store_seen if self._store_seen[1] < 0 else seen,)
        self.current = district
        return district

    def close(self) -> None:
        """Close the store connections the overrides were read through."""
        if self._book is not None:
            self._book.source.close()  # type: ignore[attr-defined]
            self._book = None

    # -- the store: teacher overrides --------------------------------------------------------

    def _store_of(self, s: DistrictFileModel) -> str:
        return self.store_url or store_url_of(s, self._path(s.state_dir))

    def overrides_book(self, s: DistrictFileModel | None = None) -> SharedOverrides:
        """The district's overrides in its store (kept open; :meth:`close` closes it)."""
        if s is None:
            if self._settings is None:
                raise RuntimeError("load() first")
            s = self._settings[0]
        url = self._store_of(s)
        if self._book is None or self._book_url != url:
            self.close()
            self._book, self._book_url = shared_overrides(url, STORE_TIMEOUT), url
        return self._book

    def _store_version(self, s: DistrictFileModel) -> tuple[Any, ...]:
        """The overrides' change counter as a fingerprint entry; version -1 while the store
        cannot be read, asked again after a backoff (1 s doubling to 30 s), not every reload."""
        url = self._store_of(s)
        down = self._store_seen and self._store_seen[0] == url and self._store_seen[1] < 0
        if down and time.monotonic() < self._store_retry_at:
            return self._store_seen
        from monitor.incidents.store.overrides import StoreUnavailableError

        try:
            seen: tuple[Any, ...] = (url, self.overrides_book(s).version(), 0)
            self._store_backoff = STORE_RETRY_INITIAL
        except (StoreUnavailableError, ValueError) as e:
            if not down:
                log.warning("monitor: teacher overrides: %s; asked again at each reload", e)
            self._store_retry_at = time.monotonic() + self._store_backoff
            self._store_backoff = min(self._store_backoff * 2, STORE_RETRY_MAX)
            seen = (url, -1, -1)
        self._store_seen = seen
        return seen

    def _path(self, rel: str) -> Path:
        q = Path(rel)
        return q if q.is_absolute() else self.config_dir / q

    def _catalogue(self, s: DistrictFileModel) -> Catalogue:
        return catalogue_mod.load([self._path(x) for x in s.catalogue])

    def _roster(self, s: DistrictFileModel) -> Roster:
        # delta exports are applied over the merged roster kept in STATE_DIR/roster
        return load_roster(self._path(s.roster), state=self._path(s.state_dir) / "roster").roster

    def _policy(self, s: DistrictFileModel, cat: Catalogue, roster: Roster) -> Policy:
        path = self._path(s.policy)
        policy = load_policy(path, cat, known_schools=list(roster.schools.values()))
        # only once accepted (a file changed since is reloaded, and hashed, again)
        data = read_regular_file(path, MAX_CONFIG_BYTES)
        self._policy_digest = hashlib.sha256(data).hexdigest()[:12]
        return policy

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
        """The grants that can still apply, from the store (after importing a legacy
        ``overrides.json`` there); StoreUnavailableError (an OSError) when it cannot be read."""
        book = self.overrides_book(s)
        import_legacy_overrides(book, self._path(s.state_dir) / LEGACY_OVERRIDES)
        return book.override_set(datetime.fromtimestamp(self.clock(), UTC))

    def _overrides_at_start(self, s: DistrictFileModel) -> OverrideSet:
        from monitor.incidents.store.overrides import StoreUnavailableError

        legacy = OverrideStore(self._path(s.state_dir) / LEGACY_OVERRIDES)
        if self._store_seen[1] >= 0:
            try:
                return self._overrides(s)
            except StoreUnavailableError as e:
                log.warning("monitor: teacher overrides: %s; asked again at each reload", e)
                self._store_seen = (self._store_seen[0], -1, -1)
        # until the store answers: the grants of a file not imported yet, if there is one
        return legacy.override_set(datetime.fromtimestamp(self.clock(), UTC))

    def _build_all(self, s: DistrictFileModel, raw: LineDict) -> District:
        cat = self._catalogue(s)
        roster = self._roster(s)
        policy = self._policy(s, cat, roster)
        inv = self._devices(s)
        leases = self._leases(s)
        addresses = self._addresses(s, raw, roster, inv)
        resolver = self._resolver(s, roster, inv, leases, addresses)
        overrides = self._overrides_at_start(s)
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
            "policy_sha256": self._policy_digest,
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
            store_override=self.store_url,
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
        new_fp["overrides"] += (self._store_version(settings),)
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
            # "is None", not "or": an empty set (the last grant revoked) is a valid answer
            new_overrides = attempt("overrides", lambda: self._overrides(s))
            overrides = overrides if new_overrides is None else new_overrides
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
