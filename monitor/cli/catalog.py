"""``monitor catalog import-v2fly DIR`` (regenerate the pinned v2fly snapshot) and ``monitor
catalog coverage FILE`` (what the catalogue attributes in a DNS log or a list of host names)."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path

import click

from monitor.cli._common import catalog_option
from monitor.cli.classify import catalog_group
from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms import v2fly
from monitor.platforms.classify import Classifier
from monitor.platforms.coverage import coverage, read_names
from monitor.yamlfile import ConfigError

# Names that no catalogue may attribute (Google's school services, the company's own domain).
NEVER_ATTRIBUTED = (
    "classroom.google.com",
    "docs.google.com",
    "drive.google.com",
    "meet.google.com",
    "accounts.google.com",
    "google.com",
    "www.google.com",
)


@click.command("import-v2fly")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--commit", default="", help="The checkout's commit hash (read with git if absent).")
@click.option("--date", default="", help="The commit date, YYYY-MM-DD (read with git if absent).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the snapshot (default: the packaged monitor/platforms/data/v2fly.yaml).",
)
def import_v2fly(directory: str, commit: str, date: str, output: str | None) -> None:
    """Regenerate the v2fly snapshot from DIRECTORY, a checkout of
    github.com/v2fly/domain-list-community (or its data/ directory)."""
    try:
        text, imported = v2fly.import_dir(Path(directory), commit, date)
    except v2fly.V2flyImportError as e:
        raise click.ClickException(str(e)) from e
    target = Path(output) if output else v2fly.shipped_snapshot()
    tmp = target.with_name(target.name + ".new")
    tmp.write_text(text, encoding="utf-8")
    try:
        cat = catalogue_mod.load(imported=tmp)
    except ConfigError as e:
        tmp.unlink()
        raise click.ClickException(f"the new snapshot does not merge: {e}") from e
    cls = Classifier(cat)
    wrong = [h for h in (*NEVER_ATTRIBUTED, *sorted(cat.shared_cdn_suffixes)) if cls(h)]
    if wrong:
        tmp.unlink()
        raise click.ClickException(f"the new snapshot attributes {', '.join(wrong)}: exclude them")
    tmp.replace(target)
    names = sum(len(e["suffixes"]) + len(e["hosts"]) for e in imported.platforms.values())
    click.echo(
        f"{target}: {names} names for {len(imported.platforms)} platforms, "
        f"{len(imported.excluded)} left out; {len(cat.imported)} added to the curated catalogue"
    )


@click.command("coverage")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@catalog_option()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
@click.option(
    "--limit", type=int, default=50, show_default=True, help="Suspect names shown in the table."
)
def coverage_cmd(file: str, catalogs: tuple[str, ...], as_json: bool, limit: int) -> None:
    """Per platform, how many host names of FILE the catalogue attributes, and the unknown names
    that look like a platform's infrastructure.

    FILE ('-' for standard input; .gz is read compressed) holds one host name per line, a
    dnsmasq or BIND query log, or CNAME records (name CNAME target)."""
    try:
        cat = catalogue_mod.load(catalogs)
        curated = catalogue_mod.load(catalogs, imported=False)
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    if file == "-":
        observed = read_names(io.TextIOWrapper(sys.stdin.buffer, "utf-8", "replace"))
    else:
        path = Path(file)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "no such file"
            raise click.ClickException(f"{file}: {what}")
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as f:
                observed = read_names(f)
        except (OSError, EOFError) as e:
            raise click.ClickException(f"{file}: {getattr(e, 'strerror', None) or e}") from e
    result = coverage(observed, cat, curated)
    if as_json:
        doc = {
            "totals": result.totals,
            "platforms": result.platforms.to_dict(orient="records"),
            "suspects": result.suspects.to_dict(orient="records"),
        }
        click.echo(json.dumps(doc, indent=2, default=int))
        return
    t = result.totals
    share = t["attributed"] / t["hostnames"] if t["hostnames"] else 0.0
    click.echo(
        f"{file}: {t['hostnames']} host names ({t['queries']} queries), {t['attributed']} "
        f"attributed ({share:.1%}), {t['unknown']} unknown, {t['suspects']} of them look like a "
        f"platform's; {t['unread_lines']} lines without a host name"
    )
    if len(result.platforms):
        click.echo("")
        click.echo(result.platforms.to_string(index=False))
    if len(result.suspects):
        click.echo("")
        click.echo("unknown names that look like a platform's infrastructure:")
        click.echo(result.suspects.head(limit).to_string(index=False))
        if len(result.suspects) > limit:
            click.echo(f"… {len(result.suspects) - limit} more (--limit, or --json for all)")


def register(group: click.Group) -> None:
    catalog_group.add_command(import_v2fly)
    catalog_group.add_command(coverage_cmd)
