"""The platform catalogue: what a host *is*. Data, not policy.

The shipped catalogue lives in ``monitor/platforms/data/catalogue.yaml``. A district may extend
it with a file of its own, merged over the shipped one: an entry whose id is already shipped adds
to its lists (suffixes, hosts, page_hosts, media_hosts, activities, read_only) and replaces
the scalar fields it names (unknown_write among them); a new id adds a platform. Both files are
validated together and rejected whole on the first error. The names of the pinned v2fly
snapshot (``monitor/platforms/v2fly.py``) are merged last, where the curation leaves them free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.platforms import v2fly
from monitor.yamlfile import ConfigError, LineDict, LineList, load_yaml, shorten, validate

CATEGORIES = ("social", "video", "messaging", "social_gaming", "kids", "forum", "ai_chat", "bypass")
Category = Literal[
    "social", "video", "messaging", "social_gaming", "kids", "forum", "ai_chat", "bypass"
]
ACTIVITIES = ("view", "post", "upload", "message", "login", "stream", "live", "embed")
Activity = Literal["view", "post", "upload", "message", "login", "stream", "live", "embed"]
# what a write (POST, PUT, PATCH, DELETE) that no rule names is taken to be: never a view
WriteActivity = Literal["post", "upload", "message", "login", "live"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BypassKind = Literal["doh", "vpn", "proxy", "tor"]
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "*"}

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def shipped_path() -> Path:
    return Path(str(resources.files("monitor.platforms") / "data" / "catalogue.yaml"))


_PATTERN_LABEL_RE = re.compile(r"^(?:\*|[a-z0-9_*-]{1,63})$")


def check_pattern(value: str) -> str:
    """Validate a host pattern: labels separated by dots, ``*`` standing for one whole label or
    for part of one (``scontent-*``), and the last two labels written out (the anchor)."""
    pat = value.strip().lower().rstrip(".")
    labels = pat.split(".")
    if len(labels) < 3 or "*" not in pat:
        raise ValueError(
            f"'{shorten(value)}' is not a pattern: use '*' in a label left of two written-out "
            "labels (a name without '*' goes in 'suffixes' or 'hosts')"
        )
    if any("*" in label for label in labels[-2:]):
        raise ValueError(f"'{shorten(value)}': the last two labels must be written out")
    for label in labels:
        if not _PATTERN_LABEL_RE.match(label) or "**" in label:
            raise ValueError(f"'{shorten(value)}' has an invalid label '{shorten(label)}'")
    anchor = labels[max(i for i, label in enumerate(labels) if "*" in label) + 1 :]
    check_hostname(".".join(anchor))
    return pat


def pattern_regex(pattern: str) -> tuple[str, str, int]:
    """(anchor, regex, labels): the written-out suffix a pattern hangs under, a regex for the
    labels left of it (matched against the host's labels left of the anchor, its subdomains
    included) and the pattern's number of labels."""
    labels = pattern.split(".")
    last_wild = max(i for i, label in enumerate(labels) if "*" in label)
    anchor = ".".join(labels[last_wild + 1 :])
    parts = []
    for label in labels[: last_wild + 1]:
        if label == "*":
            parts.append("[a-z0-9_-]+")
        else:
            parts.append("[a-z0-9_-]*".join(re.escape(x) for x in label.split("*")))
    return anchor, r"(?:.+\.)?" + r"\.".join(parts), len(labels)


def check_hostname(value: str, *, wildcard: bool = False) -> str:
    """Validate a catalogue host name (ASCII, lowercase, at least two labels)."""
    host = value.strip().lower().rstrip(".")
    if wildcard and host.startswith("*."):
        check_hostname(host[2:])
        return host
    if not host or len(host) > 253:
        raise ValueError(f"'{shorten(value)}' is not a host name")
    if not host.isascii():
        raise ValueError(f"'{shorten(value)}' is not ASCII: write it in IDNA form (xn--…)")
    labels = host.split(".")
    if len(labels) < 2 and host != "localhost":
        raise ValueError(f"'{shorten(value)}' needs at least two labels")
    for label in labels:
        if not _LABEL_RE.match(label):
            raise ValueError(f"'{shorten(value)}' has an invalid label '{shorten(label)}'")
    if labels[-1].isdigit():
        raise ValueError(f"'{shorten(value)}' is an IP address, not a host name")
    return host


class _RequestMatchModel(BaseModel):
    """What a catalogue rule matches in a request: method, path, host, content type and the
    GraphQL operation a request names in its headers (all optional, all must match)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str | list[str] = "*"
    path: str = ""
    hosts: list[str] = Field(default_factory=list)
    content_type: str = ""
    operation: str = ""  # regex on the operation name (X-FB-Friendly-Name and the like)
    note: str = ""

    @field_validator("method")
    @classmethod
    def _methods(cls, v: str | list[str]) -> str | list[str]:
        for m in [v] if isinstance(v, str) else v:
            if m.upper() not in METHODS:
                raise ValueError(f"unknown HTTP method '{shorten(m)}'")
        return v

    @field_validator("path", "operation")
    @classmethod
    def _path(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"bad regular expression '{shorten(v)}': {e}") from None
        return v

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        return [check_hostname(h, wildcard=True) for h in v]


class ActivityRuleModel(_RequestMatchModel):
    activity: Activity


class ReadOnlyModel(_RequestMatchModel):
    """A write-method request that only reads (a GraphQL query sent by POST, an InnerTube
    browse): a ``view``. It needs a path or an operation, so that no entry covers a whole host."""

    method: str | list[str] = "POST"

    @model_validator(mode="after")
    def _narrow(self) -> ReadOnlyModel:
        if not self.path and not self.operation:
            raise ValueError("a read-only entry needs a 'path' or an 'operation'")
        return self


class PlatformModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    owner: str
    category: Category
    min_age: int | None = Field(default=None, ge=0, le=21)
    designed_for_children: bool = False
    bypass_kind: BypassKind | None = None
    suffixes: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    page_hosts: list[str] = Field(default_factory=list)
    media_hosts: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    activities: list[ActivityRuleModel] = Field(default_factory=list)
    unknown_write: WriteActivity = "post"
    read_only: list[ReadOnlyModel] = Field(default_factory=list)
    notes: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError("ids are 1-40 characters of a-z, 0-9, '-' and '_'")
        return v

    @field_validator("suffixes", "hosts")
    @classmethod
    def _hostnames(cls, v: list[str]) -> list[str]:
        return [check_hostname(h) for h in v]

    @field_validator("page_hosts", "media_hosts")
    @classmethod
    def _page_hosts(cls, v: list[str]) -> list[str]:
        return [check_hostname(h, wildcard=True) for h in v]

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        return [check_pattern(h) for h in v]


class PlatformPatch(BaseModel):
    """An entry in a district's own catalogue file: every field but id is optional."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str | None = None
    owner: str | None = None
    category: Category | None = None
    min_age: int | None = Field(default=None, ge=0, le=21)
    designed_for_children: bool | None = None
    bypass_kind: BypassKind | None = None
    suffixes: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    page_hosts: list[str] = Field(default_factory=list)
    media_hosts: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    activities: list[ActivityRuleModel] = Field(default_factory=list)
    unknown_write: WriteActivity | None = None
    read_only: list[ReadOnlyModel] = Field(default_factory=list)
    notes: str | None = None

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        return [check_pattern(h) for h in v]


class CatalogueFileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    shared_cdn_suffixes: list[str] = Field(default_factory=list)
    embedding_cdn_suffixes: list[str] = Field(default_factory=list)
    platforms: list[Any] = Field(default_factory=list)
    bypass: list[Any] = Field(default_factory=list)

    @field_validator("shared_cdn_suffixes", "embedding_cdn_suffixes")
    @classmethod
    def _cdn(cls, v: list[str]) -> list[str]:
        return [check_hostname(h) for h in v]


@dataclass(frozen=True, slots=True)
class ActivityRule:
    activity: str
    methods: frozenset[str]  # empty: any method
    path: re.Pattern[str] | None
    hosts: frozenset[str]  # exact names; '*.x' entries are kept in host_suffixes
    host_suffixes: tuple[str, ...]
    content_type: str
    operation: re.Pattern[str] | None = None

    def matches(
        self, method: str, host: str, path: str, content_type: str, operation: str = ""
    ) -> bool:
        return self.applies_to(method, host) and self.matches_request(path, content_type, operation)

    def applies_to(self, method: str, host: str) -> bool:
        """Whether the rule can match a request of ``method`` to ``host``."""
        if self.methods and method not in self.methods:
            return False
        if self.hosts or self.host_suffixes:
            return host in self.hosts or host.endswith(self.host_suffixes)
        return True

    def matches_request(self, path: str, content_type: str, operation: str = "") -> bool:
        """The rest of the match, once ``applies_to`` holds: content type, operation, path."""
        if self.content_type and not content_type.lower().startswith(self.content_type):
            return False
        if self.operation is not None and self.operation.search(operation) is None:
            return False
        return self.path is None or self.path.search(path) is not None


_BACKREF = re.compile(r"\\[1-9]|\(\?P=")


def _anchored(pattern: str) -> bool:
    """Whether every top-level branch of ``pattern`` starts with '^' (then it can only match
    at the start, and need not be searched for)."""
    branches, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    branches.append(pattern[start:])
    return all(b.startswith("^") for b in branches)


def _combined(rules: tuple[ActivityRule, ...]) -> re.Pattern[str] | None:
    """One regex whose first matching alternative is the first rule whose path matches (each
    alternative searches from the start, as ``re.search`` does). None when a path cannot be
    joined (named groups, backreferences, flags other than a leading ``(?i)``)."""
    parts = []
    for i, r in enumerate(rules):
        body = ""
        if r.path is not None:
            pat, flags = r.path.pattern, r.path.flags & ~re.UNICODE
            if r.path.groupindex or _BACKREF.search(pat):
                return None
            if flags == re.IGNORECASE and pat.startswith("(?i)"):
                pat = f"(?i:{pat[4:]})"
            elif flags:
                return None
            body = f"(?=(?:{pat}))" if _anchored(pat) else f"(?=(?s:.*?)(?:{pat}))"
        parts.append(f"{body}(?P<r{i}>)")
    try:
        return re.compile("|".join(parts))
    except re.error:
        return None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules tried in catalogue order; their paths are joined into one compiled regex, so that
    one match finds the first rule whose path fits and only its other conditions are checked."""

    rules: tuple[ActivityRule, ...]
    combined: re.Pattern[str] | None

    @classmethod
    def of(cls, rules: tuple[ActivityRule, ...]) -> RuleSet:
        return cls(rules, _combined(rules) if len(rules) > 1 else None)

    def first(self, path: str, content_type: str, operation: str = "") -> ActivityRule | None:
        """The first rule that matches the request (its method and host already apply)."""
        start = 0
        if self.combined is not None:
            m = self.combined.match(path)
            if m is None or m.lastgroup is None:
                return None
            start = int(m.lastgroup[1:])
        for r in self.rules[start:]:
            if r.matches_request(path, content_type, operation):
                return r
        return None


_MEDIA_ACTIVITIES = frozenset({"view", "embed", "stream"})
_PASSIVE = frozenset({"view", "stream", "embed"})  # what a write never is
_RULE_CACHE = 4096  # (method, host) pairs per platform


@dataclass(frozen=True, slots=True)
class Platform:
    id: str
    name: str
    owner: str
    category: str
    min_age: int | None
    designed_for_children: bool
    bypass_kind: str | None
    suffixes: tuple[str, ...]
    hosts: tuple[str, ...]
    page_hosts: frozenset[str]
    page_suffixes: tuple[str, ...]  # from '*.example.com' page host entries, as '.example.com'
    activities: tuple[ActivityRule, ...] = field(default=())
    notes: str = ""
    media_hosts: frozenset[str] = frozenset()
    media_suffixes: tuple[str, ...] = ()  # from '*.example.com' media host entries
    patterns: tuple[str, ...] = ()  # label patterns ('instagram.*.fna.fbcdn.net')
    unknown_write: str = "post"  # a write that no rule names: never a view
    read_only: tuple[ActivityRule, ...] = ()  # writes by method that only read: views
    # whether any rule reads the request's Content-Type or GraphQL operation header (the
    # headers are looked up only then, and for writes)
    reads_headers: bool = field(default=False, init=False, compare=False, repr=False)
    # (method, host) → the rules and read-only entries that can match there (bounded)
    rule_cache: dict[tuple[str, str], tuple[RuleSet, RuleSet]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        rules = self.activities + self.read_only
        if any(r.content_type or r.operation is not None for r in rules):
            object.__setattr__(self, "reads_headers", True)

    def rules_for(self, method: str, host: str) -> tuple[RuleSet, RuleSet]:
        """The activity rules, then the read-only entries, that can match a request of
        ``method`` (upper case) to ``host``, in catalogue order. A write is never a view or a
        stream, so rules for those are left out for writes, and read-only entries for reads.
        Cached per method and host; the cache is emptied when it reaches _RULE_CACHE names."""
        key = (method, host)
        hit = self.rule_cache.get(key)
        if hit is None:
            write = method in WRITE_METHODS
            hit = (
                RuleSet.of(
                    tuple(
                        r
                        for r in self.activities
                        if r.applies_to(method, host) and not (write and r.activity in _PASSIVE)
                    )
                ),
                RuleSet.of(
                    tuple(r for r in self.read_only if write and r.applies_to(method, host))
                ),
            )
            if len(self.rule_cache) >= _RULE_CACHE:
                self.rule_cache.clear()
            self.rule_cache[key] = hit
        return hit

    @property
    def is_bypass(self) -> bool:
        return self.category == "bypass"

    def host_role(self, host: str) -> str:
        """'page' (a person navigates to it), 'media' (it serves the platform's images, video
        and static files by GET) or 'api' (everything else). An exact entry wins over a
        wildcard, and the longer of a page and a media wildcard wins."""
        if host in self.page_hosts:
            return "page"
        if host in self.media_hosts:
            return "media"
        page = max((len(s) for s in self.page_suffixes if host.endswith(s)), default=0)
        media = max((len(s) for s in self.media_suffixes if host.endswith(s)), default=0)
        if page or media:
            return "page" if page > media else "media"
        return "api"

    def is_page_host(self, host: str) -> bool:
        """True for hosts a person navigates to; the rest are API and media hosts."""
        if not self.media_suffixes and not self.media_hosts:  # the common case, no max()
            return host in self.page_hosts or any(host.endswith(s) for s in self.page_suffixes)
        return self.host_role(host) == "page"

    def is_media_host(self, host: str) -> bool:
        """True for the platform's media and static content hosts (catalogue ``media_hosts``)."""
        return self.host_role(host) == "media"

    def media_activities(self, host: str) -> frozenset[str]:
        """What a request to media host ``host`` can be: a GET of content (``view``, or
        ``embed`` when another site's page loads it, or ``stream``), plus every activity of
        a catalogue rule that names this host (an attachment host that also takes uploads)."""
        named = {
            r.activity
            for r in self.activities
            if host in r.hosts or any(host.endswith(s) for s in r.host_suffixes)
        }
        return _MEDIA_ACTIVITIES | named


def _rule(m: _RequestMatchModel, activity: str) -> ActivityRule:
    methods = [m.method] if isinstance(m.method, str) else m.method
    mset = frozenset(x.upper() for x in methods if x != "*")
    exact = frozenset(h for h in m.hosts if not h.startswith("*."))
    wild = tuple(h[1:] for h in m.hosts if h.startswith("*."))
    return ActivityRule(
        activity=activity,
        methods=mset,
        path=re.compile(m.path) if m.path else None,
        hosts=exact,
        host_suffixes=wild,
        content_type=m.content_type.lower(),
        operation=re.compile(m.operation) if m.operation else None,
    )


def _platform(m: PlatformModel) -> Platform:
    return Platform(
        id=m.id,
        name=m.name,
        owner=m.owner,
        category=m.category,
        min_age=m.min_age,
        designed_for_children=m.designed_for_children,
        bypass_kind=m.bypass_kind,
        suffixes=tuple(dict.fromkeys(m.suffixes)),
        hosts=tuple(dict.fromkeys(m.hosts)),
        page_hosts=frozenset(h for h in m.page_hosts if not h.startswith("*.")),
        page_suffixes=tuple(h[1:] for h in m.page_hosts if h.startswith("*.")),
        activities=tuple(_rule(r, r.activity) for r in m.activities),
        notes=m.notes,
        media_hosts=frozenset(h for h in m.media_hosts if not h.startswith("*.")),
        media_suffixes=tuple(h[1:] for h in m.media_hosts if h.startswith("*.")),
        patterns=tuple(dict.fromkeys(m.patterns)),
        unknown_write=m.unknown_write,
        read_only=tuple(_rule(r, "view") for r in m.read_only),
    )


@dataclass(frozen=True)
class Catalogue:
    """A validated set of platforms and bypass services, plus the shared CDN suffixes."""

    platforms: dict[str, Platform]
    shared_cdn_suffixes: frozenset[str]
    sources: tuple[str, ...] = ()
    # the names merged from the v2fly snapshot (name → platform id) and its source commit
    imported: dict[str, str] = field(default_factory=dict)
    imported_commit: str = ""
    # shared CDN suffixes whose edge names embed the customer's host name (x.com.edgekey.net)
    embedding_cdn_suffixes: frozenset[str] = frozenset()

    def __iter__(self) -> Iterator[Platform]:
        return iter(self.platforms.values())

    def __len__(self) -> int:
        return len(self.platforms)

    def get(self, platform_id: str) -> Platform | None:
        return self.platforms.get(platform_id)

    def __getitem__(self, platform_id: str) -> Platform:
        return self.platforms[platform_id]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self.platforms)


def _entry_where(entry: Any, i: int, section: str) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        return f"entry '{shorten(entry['id'])}'"
    return f"{section}[{i}]"


def _section(raw: LineDict, path: str, section: str) -> list[tuple[Any, int, str]]:
    seq = raw.get(section) or []
    if not isinstance(seq, list):
        raise ConfigError(path, raw.key_lines.get(section), f"field '{section}'", "must be a list")
    lines = seq.item_lines if isinstance(seq, LineList) else [0] * len(seq)
    return [(e, lines[i], _entry_where(e, i, section)) for i, e in enumerate(seq)]


def _read_file(path: str, text: str | None = None) -> LineDict:
    raw = load_yaml(path, text)
    if raw is None:
        raw = LineDict()
        raw.key_lines = {}
    if not isinstance(raw, LineDict):
        raise ConfigError(path, getattr(raw, "line", 1), "", "the catalogue must be a YAML mapping")
    validate(CatalogueFileModel, raw, path)
    return raw


def _merge(base: dict[str, Any], patch: PlatformPatch) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.model_dump(exclude={"id"}).items():
        if isinstance(value, list):
            if key == "activities":
                # district rules come first so that they win over the shipped ones
                out[key] = list(value) + list(base.get(key, []))
            else:
                out[key] = list(base.get(key, [])) + [
                    v for v in value if v not in base.get(key, [])
                ]
        elif value is not None and key in patch.model_fields_set:
            out[key] = value
    return out


def load(
    extra: Iterable[str | Path] = (),
    *,
    shipped: str | Path | None = None,
    imported: str | Path | bool | None = None,
) -> Catalogue:
    """Load the shipped catalogue and merge each extra file over it, validating everything;
    then add the names of the v2fly snapshot that the curation leaves free (``imported``: a
    snapshot file, True for the packaged one, False for none; by default the packaged one
    with the packaged catalogue only).

    Raises ConfigError naming file, line, entry and field on the first problem.
    """
    shipped_file = str(shipped or shipped_path())
    files = [shipped_file] + [str(p) for p in extra]
    entries: dict[str, dict[str, Any]] = {}
    origin: dict[str, tuple[str, int, str]] = {}
    patched: dict[str, tuple[str, int, str]] = {}  # the last district entry that extended an id
    cdn: set[str] = set()
    embedding: set[str] = set()
    for n, path in enumerate(files):
        raw = _read_file(path)
        file_model = CatalogueFileModel.model_validate(raw)
        cdn.update(file_model.shared_cdn_suffixes)
        for e in file_model.embedding_cdn_suffixes:
            if e not in cdn:
                raise ConfigError(
                    path,
                    raw.key_lines.get("embedding_cdn_suffixes"),
                    "field 'embedding_cdn_suffixes'",
                    f"'{e}' is not one of the shared CDN suffixes",
                )
            embedding.add(e)
        for section in ("platforms", "bypass"):
            for entry, line, where in _section(raw, path, section):
                if not isinstance(entry, dict):
                    raise ConfigError(path, line, where, "each entry must be a mapping")
                if section == "bypass" and "category" not in entry:
                    copy = LineDict(entry, category="bypass")
                    copy.line, copy.key_lines = line, dict(getattr(entry, "key_lines", {}))
                    entry = copy
                pid = entry.get("id")
                if n > 0 and isinstance(pid, str) and pid in entries:
                    patch = validate(PlatformPatch, entry, path, where=where)
                    merged = _merge(entries[pid], patch)
                    # validate the merged entry, but report against the district's file
                    validate(PlatformModel, merged, path, where=where)
                    entries[pid] = merged
                    patched[pid] = (path, line, where)
                    continue
                model = validate(PlatformModel, entry, path, where=where)
                if model.id in entries:
                    first = origin[model.id]
                    raise ConfigError(
                        path,
                        line,
                        where,
                        f"id '{model.id}' is already defined at {first[0]}:{first[1]}",
                    )
                if section == "bypass" and model.category != "bypass":
                    raise ConfigError(
                        path, line, where, "field 'category': bypass entries have category 'bypass'"
                    )
                if model.category == "bypass" and model.bypass_kind is None:
                    raise ConfigError(
                        path, line, where, "field 'bypass_kind': required for bypass services"
                    )
                entries[model.id] = model.model_dump()
                origin[model.id] = (path, line, where)

    if imported is None:
        imported = shipped is None
    names: dict[str, str] = {}
    commit = ""
    if imported is not False:
        snapshot = v2fly.load_snapshot(None if imported is True else imported)
        commit = snapshot.source.commit
        names = _merge_imported(entries, frozenset(cdn), snapshot)
        if names:
            files.append(str(v2fly.shipped_snapshot() if imported is True else imported))

    platforms = {pid: _platform(PlatformModel.model_validate(e)) for pid, e in entries.items()}
    _check_conflicts(platforms, frozenset(cdn), origin, files[-1])
    exact = {h: p.id for p in platforms.values() for h in p.hosts}
    suffix = {s: p.id for p in platforms.values() for s in p.suffixes}
    for p in platforms.values():
        _check_media_hosts(p, (exact, suffix, frozenset(cdn)), patched.get(p.id) or origin[p.id])
    return Catalogue(
        platforms=platforms,
        shared_cdn_suffixes=frozenset(cdn),
        sources=tuple(files),
        imported=names,
        imported_commit=commit,
        embedding_cdn_suffixes=frozenset(embedding),
    )


def _merge_imported(
    entries: dict[str, dict[str, Any]], cdn: frozenset[str], snapshot: v2fly.SnapshotModel
) -> dict[str, str]:
    """Add the snapshot's names to the curated entries where the curation leaves them free:
    never a shared CDN suffix, never a name the curation already attributes (to this platform
    or another: exact host first, then the deepest suffix, as the classifier does; a curated
    exact host stays exact). Returns the names added (name → platform id)."""
    hosts = {h: pid for pid, e in entries.items() for h in e.get("hosts", [])}
    suffixes = {s: pid for pid, e in entries.items() for s in e.get("suffixes", [])}
    added: dict[str, str] = {}
    for pid, entry in snapshot.platforms.items():
        target = entries.get(pid)
        if target is None:
            continue  # a platform the curation does not have (or a district removed)
        for kind, names in (("suffixes", entry.suffixes), ("hosts", entry.hosts)):
            for name in names:
                # a name the curation lists as an exact host stays exact (no subdomains)
                if name in cdn or _owner_of(name, (hosts, suffixes, cdn), exact=True):
                    continue
                target[kind] = [*target.get(kind, []), name]
                (suffixes if kind == "suffixes" else hosts)[name] = pid
                added[name] = pid
    return added


def _check_conflicts(
    platforms: dict[str, Platform],
    cdn: frozenset[str],
    origin: dict[str, tuple[str, int, str]],
    last_file: str,
) -> None:
    def where(pid: str) -> tuple[str, int, str]:
        return origin.get(pid, (last_file, 0, f"entry '{pid}'"))

    exact_owner: dict[str, str] = {}
    suffix_owner: dict[str, str] = {}
    for p in platforms.values():
        for h in p.hosts:
            if h in exact_owner and exact_owner[h] != p.id:
                f, line, w = where(p.id)
                raise ConfigError(
                    f,
                    line,
                    f"{w}: field 'hosts'",
                    f"host '{h}' is already claimed by '{exact_owner[h]}'",
                )
            exact_owner[h] = p.id
        for s in p.suffixes:
            if s in cdn:
                f, line, w = where(p.id)
                raise ConfigError(
                    f,
                    line,
                    f"{w}: field 'suffixes'",
                    f"'{s}' is a shared CDN suffix; list the platform's exact hosts under it",
                )
            if s in suffix_owner and suffix_owner[s] != p.id:
                f, line, w = where(p.id)
                raise ConfigError(
                    f,
                    line,
                    f"{w}: field 'suffixes'",
                    f"suffix '{s}' is already claimed by '{suffix_owner[s]}'",
                )
            suffix_owner[s] = p.id
        for pat in p.patterns:
            anchor, _, _ = pattern_regex(pat)
            if anchor in cdn and pat[: -len(anchor) - 1].rsplit(".", 1)[-1] == "*":
                f, line, w = where(p.id)
                raise ConfigError(
                    f,
                    line,
                    f"{w}: field 'patterns'",
                    f"'{pat}' would claim every name under the shared CDN suffix '{anchor}': "
                    f"write part of the label ('{p.id}-*.{anchor}')",
                )
    for h, pid in exact_owner.items():
        if suffix_owner.get(h, pid) != pid:
            f, line, w = where(pid)
            raise ConfigError(
                f,
                line,
                f"{w}: field 'hosts'",
                f"host '{h}' is already claimed as a suffix by '{suffix_owner[h]}'",
            )


# exact host → platform id, suffix → platform id, the shared CDN suffixes
_Owners = tuple[dict[str, str], dict[str, str], frozenset[str]]


def _owner_of(host: str, owners: _Owners, *, exact: bool) -> str | None:
    """The platform ``host`` belongs to, as the classifier finds it (an exact host first when
    ``exact``, then the deepest suffix on a label boundary; under a shared CDN suffix only a
    suffix below it counts: a platform's own name under shared infrastructure)."""
    hosts, suffixes, cdn = owners
    if exact and host in hosts:
        return hosts[host]
    labels = host.split(".")
    owner: str | None = None
    for i in range(len(labels) - 1, -1, -1):
        name = ".".join(labels[i:])
        if name in cdn:
            owner = None
            continue
        owner = suffixes.get(name, owner)
    return owner


def _check_media_hosts(p: Platform, owners: _Owners, where: tuple[str, int, str]) -> None:
    """A media host must be one of the platform's own hosts (an exact host, or a name under
    one of its suffixes outside any shared CDN), and not a page host as well."""
    entries = [*sorted(p.media_hosts), *("*" + s for s in sorted(p.media_suffixes))]
    for entry in entries:
        wild = entry.startswith("*.")
        owner = _owner_of(entry[2:] if wild else entry, owners, exact=not wild)
        problem = ""
        if owner is None:
            problem = (
                f"media host '{entry}' is none of this platform's hosts: list it in 'hosts', "
                "or use a name under one of its 'suffixes' (outside the shared CDN suffixes)"
            )
        elif owner != p.id:
            problem = f"media host '{entry}' belongs to '{owner}', not to this platform"
        elif entry in p.page_hosts or (entry.startswith("*.") and entry[1:] in p.page_suffixes):
            problem = f"'{entry}' is listed both as a page host and as a media host"
        if problem:
            f, line, w = where
            raise ConfigError(f, line, f"{w}: field 'media_hosts'", problem)


def check_file(path: str | Path) -> Catalogue:
    """Validate a district's catalogue file merged over the shipped one."""
    return load([path])
