"""The roster kept in the state directory: the last bulk export with every delta applied.

A district drops exports into its roster directory: a bulk export there, delta exports either
in its place (a SIS that overwrites the same folder every night) or in subdirectories of it (a
folder per night). The monitor keeps the merged result in ``STATE_DIR/roster``::

    state.json          base (hash of the bulk export it started from), the delta exports
                        seen (hashes), the merged directory in force, the deltas applied
    merged-<hash>/      an ordinary OneRoster bulk export: the merged roster
    lock                taken while a merge is written (the proxy and the review app share it)

so a restart reads the merged roster instead of every delta again, and a delta that overwrote
the bulk export still has its base. A delta export is applied once (known by its content
hash); a new bulk export starts again from itself, and deltas seen before it are not applied to
it again. A delta with no base (no bulk export and nothing kept) is an error. Nothing is written
until the merged roster has loaded without an error, so a bad delta leaves the roster in force.

The merged roster holds the same personal data as the roster directory; it lives in the state
directory, next to the incident store, with the same protection.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from monitor.people.roster.merge import Delta, merge, read_delta
from monitor.people.roster.model import RosterLoad
from monitor.people.roster.read import read_export
from monitor.people.roster.tables import Export, Problems, export_hash, specs

STATE_FILE = "state.json"
_FORMAT = 1


@dataclass
class Kept:
    """What ``state.json`` says."""

    dir: Path
    base: str
    merged: str  # directory name under ``dir``
    seen: list[str] = field(default_factory=list)  # hashes of delta exports already handled
    applied: list[dict[str, str]] = field(default_factory=list)  # deltas on top of base

    @property
    def merged_dir(self) -> Path:
        return self.dir / self.merged

    def save(self) -> None:
        data = {
            "format": _FORMAT,
            "base": self.base,
            "merged": self.merged,
            "seen": self.seen,
            "applied": self.applied,
        }
        tmp = self.dir / f".{STATE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.dir / STATE_FILE)

    def prune(self, keep: set[str]) -> None:
        """Remove merged directories other than ``keep`` (the one in force and the one
        before it, which a process that has not reloaded yet may still be reading)."""
        for p in self.dir.glob("merged-*"):
            if p.name not in keep and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)


def read_kept(state: Path, problems: Problems) -> Kept | None:
    path = state / STATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        kept = Kept(
            state,
            str(data["base"]),
            str(data["merged"]),
            [str(h) for h in data.get("seen", [])],
            [{str(k): str(v) for k, v in a.items()} for a in data.get("applied", [])],
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        problems.warn(str(path), None, "", f"cannot be read ({e}): the kept roster is not used")
        return None
    if "/" in kept.merged or not kept.merged_dir.is_dir():
        problems.warn(
            str(path), None, "merged", f"'{kept.merged}' is missing: the kept roster is not used"
        )
        return None
    return kept


@contextlib.contextmanager
def locked(state: Path) -> Iterator[OSError | None]:
    """Hold the state directory's lock (made if need be); yields why it could not be had."""
    try:
        state.mkdir(parents=True, exist_ok=True)
        f = (state / "lock").open("a")
    except OSError as e:
        yield e
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield None
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_with_deltas(
    top: Export,
    subdirs: list[Export],
    problems: Problems,
    today: date,
    state: Path | None,
    commit: bool,
) -> RosterLoad:
    """Load the roster directory ``top`` with the delta exports in it (``top`` itself and
    ``subdirs``) over its base: ``top`` when it is bulk, else the roster kept in ``state``.
    With ``commit`` the result is kept in ``state``; without, ``state`` is only read."""
    if not commit or state is None:
        return _load(top, subdirs, problems, today, state, False)
    with locked(state) as failed:
        if failed is not None:
            problems.warn(
                str(state), None, "",
                f"cannot be written ({failed.strerror or failed}): the roster is read but not "
                "kept, so a delta export that replaces the bulk export will have no base",
                "delta",
            )  # fmt: skip
        return _load(top, subdirs, problems, today, state, failed is None)


def _load(
    top: Export,
    subdirs: list[Export],
    problems: Problems,
    today: date,
    state: Path | None,
    commit: bool,
) -> RosterLoad:
    kept = read_kept(state, problems) if state is not None else None
    pending = ([top] if top.is_delta else []) + subdirs
    if top.is_delta:
        if kept is None:
            no_base(top, problems, state)
            raise problems.rejected(str(top.dir))
        base, base_dir, seen = kept.base, kept.merged_dir, set(kept.seen)
        applied = list(kept.applied)
    else:
        base = export_hash(top.dir)
        same = kept is not None and kept.base == base
        seen = set(kept.seen) if kept is not None else set()
        applied = list(kept.applied) if kept is not None and same else []
        base_dir = kept.merged_dir if kept is not None and same and applied else top.dir
    hashes = {id(d): export_hash(d.dir) for d in pending}
    new = [d for d in pending if hashes[id(d)] not in seen]
    for d in pending:
        if hashes[id(d)] in seen and base_dir == top.dir and not top.is_delta:
            problems.warn(
                str(d.dir), None, "",
                "applied before the bulk export now in the roster directory arrived: "
                "not applied again (a bulk export replaces everything before it)", "delta",
            )  # fmt: skip
    if not new:
        if base_dir != top.dir:
            return replace(_read_kept(base_dir, problems, today), kept=str(base_dir))
        load = read_export(top, problems, today)
        if not commit or (kept is not None and kept.base == base):
            return load
        try:
            return replace(load, kept=str(snapshot(top, base, seen, state)))
        except OSError as e:
            # the roster is good: keep it in force, and say a delta will have no base
            problems.warn(
                str(state), None, "",
                f"cannot keep a copy of the roster ({e.strerror or e}): a delta export that "
                "replaces the bulk export will have no base", "delta",
            )  # fmt: skip
            return replace(load, problems=problems.final())
    version = Export(base_dir, Problems())
    version.read_manifest()
    deltas = [read_delta(d, hashes[id(d)], version.version) for d in new]
    if problems.has_errors():
        raise problems.rejected(str(top.dir))
    deltas.sort(key=lambda d: d.order)
    return _apply(top, base, base_dir, deltas, seen, applied, problems, today, state, commit)


def _apply(
    top: Export,
    base: str,
    base_dir: Path,
    deltas: list[Delta],
    seen: set[str],
    applied: list[dict[str, str]],
    problems: Problems,
    today: date,
    state: Path | None,
    commit: bool,
) -> RosterLoad:
    parent = state if commit and state is not None else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=".merging-", dir=parent))
    try:
        stats = merge(base_dir, deltas, out, problems)
        if problems.has_errors():
            raise problems.rejected(str(top.dir))
        if parent is None:
            return replace(_read_kept(out, problems, today), deltas=tuple(stats))
        final = parent / f"merged-{export_hash(out)[:12]}"
        created = not final.exists()
        if created:
            out.rename(final)
        try:
            load = _read_kept(final, problems, today)
        except Exception:
            if created:
                shutil.rmtree(final, ignore_errors=True)
            raise
        previous = read_kept(parent, Problems())
        kept = Kept(
            parent,
            base,
            final.name,
            sorted(seen | {d.hash for d in deltas}),
            applied
            + [
                {"source": s.source, "hash": d.hash, "newest": s.newest}
                for s, d in zip(stats, deltas, strict=True)
            ],
        )
        kept.save()
        kept.prune({final.name} | ({previous.merged} if previous is not None else set()))
        return replace(load, deltas=tuple(stats), kept=str(final))
    finally:
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)


def _read_kept(directory: Path, problems: Problems, today: date) -> RosterLoad:
    export = Export(directory, problems)
    export.read_manifest()
    if problems.has_errors():
        raise problems.rejected(str(directory))
    return read_export(export, problems, today)


def snapshot(top: Export, base: str, seen: set[str], state: Path | None) -> Path:
    """Keep a copy of the bulk export ``top`` as the base for deltas to come."""
    assert state is not None
    state.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=state))
    try:
        for name in ("manifest.csv", *specs(top.version)):
            if (top.dir / name).is_file():
                shutil.copyfile(top.dir / name, out / name)
        final = state / f"merged-{export_hash(out)[:12]}"
        if not final.exists():
            out.rename(final)
        previous = read_kept(state, Problems())
        kept = Kept(state, base, final.name, sorted(seen), [])
        kept.save()
        kept.prune({final.name} | ({previous.merged} if previous is not None else set()))
        return final
    finally:
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)


def no_base(top: Export, problems: Problems, state: Path | None) -> None:
    name, line = next(
        ((n, top.manifest_lines.get(n)) for n, m in top.manifest.items() if m == "delta"),
        ("", None),
    )
    how = (
        f"none is kept in {state} yet: load the last bulk export first"
        if state is not None
        else "check it with --config DISTRICT (the roster kept there), or load the last bulk "
        "export first"
    )
    problems.error(
        str(top.dir / "manifest.csv"),
        line,
        f"file.{name.removesuffix('.csv')}",
        f"is delta, but there is no base roster to apply it to: {how}",
    )
