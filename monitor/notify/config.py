"""The ``notify:`` section of district.yaml: SMTP server, incident notifications, webhook,
weekly report recipients and the incident event log, as one pydantic model.

Secrets never sit in district.yaml: a password or webhook secret is named by an environment
variable (``password_env``) or a file (``password_file``, relative to the configuration
directory, read when needed). A wrong section is rejected whole when district.yaml is loaded.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from monitor.incidents.store.outboxschema import OutboxFilter
from monitor.model import SEVERITIES, Severity

_DURATION = re.compile(r"(\d+)\s*(s|m|h|d)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ADDRESS = re.compile(r"[^@\s,<>\"']+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|[^@\s,<>\"']+@localhost")
_SCHOOL = re.compile(r"[A-Za-z0-9._-]{1,64}|\*")


def parse_duration(value: object) -> timedelta:
    """``"30s"``, ``"5m"``, ``"1h"``, ``"2d"`` → timedelta."""
    if isinstance(value, timedelta):
        return value
    text = value.strip().lower() if isinstance(value, str) else ""
    m = _DURATION.fullmatch(text)
    if m is None or int(m.group(1)) <= 0:
        raise PydanticCustomError(
            "invalid", f"{value!r} is not a duration: write e.g. 30s, 5m, 1h or 2d"
        )
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def _address(value: object) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value.strip()):
        raise PydanticCustomError("invalid", f"{value!r} is not an e-mail address")
    return value.strip()


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Address = Annotated[str, BeforeValidator(_address)]


class _Secret(BaseModel):
    """A secret named by an environment variable or a file, never written in the YAML."""

    model_config = ConfigDict(extra="forbid")
    password_env: str = ""
    password_file: str = ""

    def secret(self, config_dir: Path, what: str) -> str:
        """The secret's value; ValueError naming the variable or file when it is missing."""
        if self.password_env:
            value = os.environ.get(self.password_env, "")
            if not value:
                raise ValueError(f"{what}: environment variable {self.password_env} is not set")
            return value
        if self.password_file:
            path = Path(self.password_file)
            path = path if path.is_absolute() else config_dir / path
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ValueError(f"{what}: cannot read {path}: {e.strerror or e}") from None
            if not value:
                raise ValueError(f"{what}: {path} is empty")
            return value
        return ""


class SmtpModel(_Secret):
    """The district's mail server. ``security``: starttls (port 587), tls (465) or none (only
    without a username: a password never crosses the network in clear)."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    sender: Address = Field(alias="from")
    timeout: float = Field(default=10.0, gt=0, le=300)
    ca_file: str = ""  # a private CA to trust besides the system's (relative to the config)

    @model_validator(mode="after")
    def _auth_needs_tls(self) -> SmtpModel:
        if self.security == "none" and self.username:
            raise ValueError("username given with security: none (use starttls or tls)")
        if self.username and not (self.password_env or self.password_file):
            raise ValueError("username given without password_env or password_file")
        return self


class WebhookModel(_Secret):
    """The district's webhook: JSON POSTs signed with HMAC-SHA256 of the body under the secret
    (header ``X-Monitor-Signature: sha256=<hex>``)."""

    url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    timeout: Duration = timedelta(seconds=5)

    @model_validator(mode="after")
    def _needs_secret(self) -> WebhookModel:
        if not (self.password_env or self.password_file):
            raise ValueError("the webhook needs password_env or password_file (its HMAC secret)")
        return self


class IncidentNotifyModel(BaseModel):
    """Which new incidents notify their school's counselors, and how."""

    model_config = ConfigDict(extra="forbid")
    severities: list[Severity] = Field(default_factory=lambda: list[Severity](["high"]))
    rules: list[str] | None = None  # only these rule ids (None: every rule)
    email: bool = True
    # review-app username → address; others get username@address_domain when that is set
    addresses: dict[str, Address] = Field(default_factory=dict)
    address_domain: str = ""
    link: str = Field(pattern=r"^https?://\S+$", default="http://127.0.0.1:8000/incidents/{id}")
    rate_limit: int = Field(default=10, ge=1)  # notifications per counselor per rate_window
    rate_window: Duration = timedelta(hours=1)
    retry_initial: Duration = timedelta(seconds=30)
    retry_max: Duration = timedelta(hours=1)
    attempts: int = Field(default=8, ge=1, le=100)
    keep: Duration = timedelta(days=90)  # how long settled deliveries are remembered

    @model_validator(mode="after")
    def _check(self) -> IncidentNotifyModel:
        if not self.severities:
            raise ValueError("severities: give at least one of " + ", ".join(SEVERITIES))
        if "{id}" not in self.link:
            raise ValueError("link must contain {id} (the incident's number)")
        if self.retry_max < self.retry_initial:
            raise ValueError("retry_max must be at least retry_initial")
        return self

    def outbox_filter(self) -> OutboxFilter:
        rules = frozenset(self.rules) if self.rules is not None else None
        return OutboxFilter(frozenset(self.severities), rules)


class WeeklyModel(BaseModel):
    """The weekly report's recipients: school identifier → addresses (``*``: the whole
    district's report)."""

    model_config = ConfigDict(extra="forbid")
    recipients: dict[str, list[Address]] = Field(min_length=1)
    link_base: str = Field(default="", pattern=r"^(https?://\S+)?$")  # the review app's URL

    @model_validator(mode="after")
    def _schools(self) -> WeeklyModel:
        for school, addresses in self.recipients.items():
            if not _SCHOOL.fullmatch(school):
                raise ValueError(f"recipients: {school!r} is not a school identifier or '*'")
            if not addresses:
                raise ValueError(f"recipients: {school!r} has no address")
        return self


class EventLogModel(BaseModel):
    """The append-only JSONL incident event log (one file per writing process)."""

    model_config = ConfigDict(extra="forbid")
    path: str = "incident-events.jsonl"  # relative to state_dir
    max_bytes: int = Field(default=50 << 20, ge=4096)
    backups: int = Field(default=5, ge=1, le=100)


class NotifyModel(BaseModel):
    """district.yaml's ``notify:`` section."""

    model_config = ConfigDict(extra="forbid")
    smtp: SmtpModel | None = None
    incidents: IncidentNotifyModel | None = None
    webhook: WebhookModel | None = None
    weekly: WeeklyModel | None = None
    event_log: EventLogModel | None = None

    @model_validator(mode="after")
    def _channels(self) -> NotifyModel:
        if self.incidents is not None:
            if self.incidents.email and self.smtp is None:
                raise ValueError("incidents: email is on but there is no smtp section")
            if not self.incidents.email and self.webhook is None:
                raise ValueError("incidents: neither email nor a webhook section")
        if self.weekly is not None and self.smtp is None:
            raise ValueError("weekly: there is no smtp section to send it with")
        return self

    def outbox_filter(self) -> OutboxFilter | None:
        return self.incidents.outbox_filter() if self.incidents is not None else None
