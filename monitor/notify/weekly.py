"""The weekly report by e-mail: one message per school to the addresses district.yaml names,
the report attached as one HTML file, sent once per school and week.

The report itself comes from a callable (the CLI passes ``monitor.reports.build``), so this
module knows only mail. ``STATE_DIR/weekly-sent.json`` remembers which school got which week,
so a timer that fires twice (or a run after a failure) sends only what is missing. A refused
or unreachable server is retried with doubling waits, then reported by school.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.notify import mail
from monitor.notify.config import NotifyModel
from monitor.notify.mail import DeliveryError
from monitor.progress import progress

log = logging.getLogger("monitor.notify")
SENT_FILE = "weekly-sent.json"


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    """What the report callable returns for one school (None: the whole district)."""

    title: str
    html: str
    empty: bool
    students: tuple[str, ...] = ()  # pseudonyms named in it (for the record of access)


@dataclass(frozen=True, slots=True)
class Outcome:
    school: str
    addresses: tuple[str, ...]
    status: str  # sent | already sent | failed
    detail: str = ""
    students: tuple[str, ...] = ()


def _load_sent(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable ({e}); remove it to send every school again") from e
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: expected an object of school → week")
    return data


def _save_sent(path: Path, sent: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(sent, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def message_text(report: WeeklyReport, school: str) -> str:
    scope = "the whole district" if school == "*" else f"school {school}"
    lines = [report.title, "", f"The weekly report of {scope} is attached (one HTML file)."]
    if report.empty:
        lines.append("Nothing was recorded in this period.")
    lines += [
        "",
        "Students appear under pseudonyms; names are shown only in the review app, to staff",
        "of their school.",
    ]
    return "\n".join(lines) + "\n"


def deliver_weekly(
    cfg: NotifyModel,
    config_dir: Path,
    state_dir: Path,
    week: str,
    make: Callable[[str], WeeklyReport],
    *,
    schools: Sequence[str] | None = None,
    force: bool = False,
    retries: int = 3,
    retry_wait: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    quiet: bool = False,
) -> list[Outcome]:
    """Send ``week``'s report (e.g. ``2026-W49``) to each configured school (or ``schools``);
    ``make(school)`` builds it (``*``: the district). Returns one outcome per school."""
    if cfg.weekly is None or cfg.smtp is None:
        raise ValueError("district.yaml has no notify.weekly section (and notify.smtp)")
    recipients = cfg.weekly.recipients
    chosen = list(schools) if schools else list(recipients)
    unknown = [s for s in chosen if s not in recipients]
    if unknown:
        raise ValueError(f"no weekly recipients for {', '.join(unknown)} in notify.weekly")
    sent_path = state_dir / SENT_FILE
    sent = _load_sent(sent_path)
    out: list[Outcome] = []
    with progress("weekly reports", total=len(chosen), quiet=quiet) as bar:
        for school in chosen:
            bar.update(description=f"weekly report: {school}")
            out.append(_one(cfg, config_dir, week, school, make, sent, sent_path, force,
                            retries, retry_wait, sleep))  # fmt: skip
            bar.advance()
    return out


def _one(
    cfg: NotifyModel,
    config_dir: Path,
    week: str,
    school: str,
    make: Callable[[str], WeeklyReport],
    sent: dict[str, str],
    sent_path: Path,
    force: bool,
    retries: int,
    retry_wait: float,
    sleep: Callable[[float], None],
) -> Outcome:
    assert cfg.weekly is not None and cfg.smtp is not None
    to = tuple(cfg.weekly.recipients[school])
    if sent.get(school) == week and not force:
        return Outcome(school, to, "already sent")
    report = make(school)
    msg = mail.new_message(cfg.smtp, to, report.title, message_text(report, school))
    label = "district" if school == "*" else school
    msg.add_attachment(report.html.encode("utf-8"), maintype="text", subtype="html",
                       filename=f"report-{label}-{week}.html")  # fmt: skip
    error = ""
    for attempt in range(retries + 1):
        try:
            mail.send(cfg.smtp, config_dir, msg)
            error = ""
            break
        except DeliveryError as e:
            error = str(e)
            if attempt < retries:
                wait = retry_wait * 2**attempt
                log.warning("weekly report for %s: %s; retrying in %g s", school, e, wait)
                sleep(wait)
    if error:
        return Outcome(school, to, "failed", error)
    sent[school] = week
    _save_sent(sent_path, sent)
    return Outcome(school, to, "sent", students=report.students)
