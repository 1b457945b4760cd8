"""The daily activity counts of one recording process (a proxy worker or a sensor): where they
are flushed (the district's store) and where unflushed counts wait (the state directory)."""

from __future__ import annotations

from pathlib import Path

from monitor.district import District
from monitor.flow.recording import recorder_files
from monitor.incidents.aggregates import FLUSH_EVERY, ActivityCounts


def pending_file(state_dir: Path, instance: str = "") -> Path:
    """The file beside the instance's incident spool where unflushed counts wait."""
    _journal, spool = recorder_files(state_dir, instance)  # checks the instance name
    name = spool.name.replace("incident-spool", "activity-pending", 1)
    return spool.with_name(name.removesuffix(".jsonl") + ".json")


def open_activity_counts(
    district: District,
    store_url: str = "",
    instance: str = "",
    *,
    flush_every: float = FLUSH_EVERY,
    start: bool = True,
) -> ActivityCounts:
    """The activity counts of a process recording for ``district`` into its store (or
    ``store_url``), days in the policy's time zone, flushed every ``flush_every`` seconds."""
    state = Path(district.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    counts = ActivityCounts(
        store_url or district.store_url,
        district.policy.tz,
        pending=pending_file(state, instance),
        flush_every=flush_every,
    )
    if start:
        counts.start()
    return counts
