"""``monitor sensor``: host names seen in a capture file or on a live interface."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from .. import catalogue as catalogue_mod
from ..classify import Classifier
from ..yamlfile import ConfigError

if TYPE_CHECKING:
    from ..sensor.model import Observation


@click.command("sensor")
@click.option(
    "--pcap",
    "pcap_file",
    type=click.Path(dir_okay=False),
    help="Read a pcap or pcapng capture file.",
)
@click.option(
    "--iface", metavar="IFACE", help="Capture live on this interface (needs root or CAP_NET_RAW)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tsv", "json"]),
    default="tsv",
    show_default=True,
    help="tsv: time, client, server, protocol, hostname, platform ('-' for none); "
    "json: one object per line with every field.",
)
@click.option(
    "--catalog",
    "catalogs",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A district catalogue file merged over the shipped one (repeatable).",
)
@click.option(
    "--config",
    "config_dir",
    type=click.Path(file_okay=False),
    help="Configuration directory (identity and policy). Accepted but not used yet: "
    "the sensor only classifies for now.",
)
@click.option(
    "--stats",
    is_flag=True,
    help="At the end, print the packet, observation and malformed counters as JSON "
    "on standard error.",
)
def sensor_cmd(
    pcap_file: str | None,
    iface: str | None,
    fmt: str,
    catalogs: tuple[str, ...],
    config_dir: str | None,
    stats: bool,
) -> None:
    """Print the host names in DNS queries, TLS ClientHellos and QUIC Initials.

    One line per flow and host name, from a capture file (--pcap) or a live interface
    (--iface, with a kernel filter for DNS, TLS and QUIC ports).
    """
    if (pcap_file is None) == (iface is None):
        raise click.UsageError("give exactly one of --pcap FILE or --iface IFACE")
    try:
        classifier = Classifier(catalogue_mod.load(catalogs))
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    if config_dir is not None:
        click.echo(
            f"note: --config {config_dir} is not used yet (identity and policy come "
            "later); printing platforms only",
            err=True,
        )

    # imported here: scapy takes a while to import and other commands do not need it
    from ..sensor import output, pcap
    from ..sensor.pipeline import Sensor

    line = output.tsv_line if fmt == "tsv" else output.json_line
    sensor = Sensor(classifier)
    out = sys.stdout
    if pcap_file is not None:
        try:
            for obs in pcap.observe_pcap(pcap_file, sensor=sensor):
                out.write(line(obs) + "\n")
        except ValueError as e:
            raise click.ClickException(str(e)) from e
    else:
        assert iface is not None

        def emit(obs: Observation) -> None:
            out.write(line(obs) + "\n")
            out.flush()  # live: a reader downstream wants each line as it happens

        try:
            pcap.sniff_live(iface, emit, sensor=sensor)
        except PermissionError as e:
            raise click.ClickException(
                f"cannot capture on {iface}: {e} (run as root or grant CAP_NET_RAW)"
            ) from e
        except (OSError, ValueError) as e:
            raise click.ClickException(f"cannot capture on {iface}: {e}") from e
        except KeyboardInterrupt:
            pass
    out.flush()
    if stats:
        click.echo(json.dumps(sensor.counters.as_dict()), err=True)


def register(group: click.Group) -> None:
    group.add_command(sensor_cmd)
