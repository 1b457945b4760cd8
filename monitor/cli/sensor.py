"""``monitor sensor``: host names seen in a capture file or on a live interface; with a district
configuration, who they are, what the policy says, and the incidents it raises."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli._common import CATALOG_HELP, catalog_option
from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.classify import Classifier
from monitor.progress import Progress, progress
from monitor.yamlfile import ConfigError

if TYPE_CHECKING:
    from monitor.district import District, DistrictLoader
    from monitor.flow.metrics import Metrics
    from monitor.flow.recording import DecisionLog
    from monitor.incidents.recorder import Recorder
    from monitor.sensor.judge import Judge, Verdict
    from monitor.sensor.model import Observation
    from monitor.sensor.pipeline import Sensor

RELOAD_INTERVAL = 2.0  # seconds between checks for changed configuration (live capture)
DEFAULT_INSTANCE = "sensor"  # the journal and spool names of a sensor given no --instance
STATS_INTERVAL = 1.0  # seconds between carrying the recorder's counters to the metrics
CLOSE_TIMEOUT = 30.0  # seconds to write what is queued at the end


def _check_key(loader: DistrictLoader, district: District, key: bytes) -> None:
    """Stop at start when the store remembers another pseudonym key; a store that cannot be
    reached is checked by the recorder when it answers (incidents wait in the spool)."""
    from monitor.flow.recording import check_store_key
    from monitor.incidents.store.keycheck import KeyMismatchError

    try:
        unreachable = check_store_key(district, key)
    except KeyMismatchError as e:
        loader.close()
        raise click.ClickException(str(e)) from e
    if unreachable:
        click.echo(
            f"monitor sensor: incident store unreachable at start ({unreachable}); incidents "
            "wait in the spool, and the pseudonym key is checked when it answers",
            err=True,
        )


def _reading(capture: Any, bar: Progress) -> Any:
    """The capture's frames, moving ``bar`` to the bytes read every 4096 frames."""
    for n, frame in enumerate(capture.frames(), 1):
        if not n & 4095:
            bar.update(completed=capture.position)
        yield frame


def _redirected_by_gateway() -> Callable[[Observation], bool]:
    """What the gateway's transparent ruleset hands to the proxy (its catalogue sets, read
    now to fail at start rather than at the first packet)."""
    from monitor.gateway.nftsets import CatalogueSets, read_sets
    from monitor.sensor.judge import redirected_to_proxy

    try:
        read_sets()
    except OSError as e:
        raise click.ClickException(
            f"--transparent-gateway: cannot read the gateway's catalogue sets ({e}); load the "
            "transparent ruleset first (monitor gateway nftables --mode transparent | nft -f -)"
        ) from e
    return redirected_to_proxy(CatalogueSets().contains)


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint="--metrics")
    return host.strip("[]") or "127.0.0.1", int(port)


class _Session:
    """The district side of one run: judge, recorder, metrics, reloads.

    ``instance`` names this process's incident journal and spool in the state directory, so
    that a sensor runs beside the proxy workers (and other sensors) of one configuration."""

    def __init__(
        self,
        config_dir: str,
        store_url: str | None,
        metrics: Metrics,
        instance: str = DEFAULT_INSTANCE,
    ) -> None:
        from monitor.district import DistrictLoader, pseudonym_key
        from monitor.flow.recording import DecisionLog, open_recorder

        try:
            self.loader: DistrictLoader = DistrictLoader(config_dir, store_url=store_url or "")
            district = self.loader.load()
            key = pseudonym_key(district)
        except (ConfigError, ValueError, OSError) as e:
            raise click.ClickException(str(e)) from e
        self.metrics = metrics
        _check_key(self.loader, district, key)
        try:
            self.recorder: Recorder = open_recorder(district, store_url or "", instance, key=key)
        except (ValueError, OSError) as e:
            self.loader.close()
            raise click.ClickException(f"incident store: {e}") from e
        from monitor.flow.aggregates import open_activity_counts
        from monitor.sensor.judge import Judge

        counts = open_activity_counts(district, store_url or "", instance)
        self.log: DecisionLog = DecisionLog(metrics, self.recorder, key, counts)
        self.judge: Judge = Judge(district, key, self.log)
        self._next_stats = time.monotonic() + STATS_INTERVAL
        self._stop = threading.Event()
        self._reloader: threading.Thread | None = None
        for component in ("catalogue", "roster", "policy", "devices", "leases", "addresses"):
            metrics.reloads.labels(component, "success").inc()
        self.last_reload = time.time()  # for /readyz and `monitor status`

    def tick(self, sensor: Sensor, live: bool) -> None:
        """Periodic work between observations: the recorder's counters to the metrics (on
        this thread, the one that records)."""
        now = time.monotonic()
        if now >= self._next_stats:
            self._next_stats = now + STATS_INTERVAL
            self.log.update_recorder_metrics()

    def start_reloads(self, sensor: Sensor) -> None:
        """Live capture: reload changed files and teacher overrides every RELOAD_INTERVAL
        seconds on a thread of their own, so that reading files or a slow store never holds
        up the packets (a new snapshot is swapped in whole)."""

        def run() -> None:
            while not self._stop.wait(RELOAD_INTERVAL):
                try:
                    self.reload(sensor)
                except Exception as e:  # noqa: BLE001 - a reload must never stop the sensor
                    click.echo(f"monitor sensor: reload failed: {e}", err=True)

        self._reloader = threading.Thread(target=run, name="district-reload", daemon=True)
        self._reloader.start()

    def reload(self, sensor: Sensor) -> None:
        old = self.judge.district
        district, results = self.loader.reload()
        for r in results:
            self.metrics.reloads.labels(r.component, "success" if r.ok else "failure").inc()
            if r.ok:
                self.last_reload = time.time()
            else:
                click.echo(
                    f"monitor sensor: {r.component} rejected, the previous one stays in "
                    f"force: {r.message}",
                    err=True,
                )
        if district is not old:
            self.judge.district = district
            if district.classifier is not old.classifier:
                sensor.classify = district.classifier

    def close(self) -> dict[str, Any]:
        self._stop.set()
        if self._reloader is not None:
            self._reloader.join(timeout=CLOSE_TIMEOUT)
        self.loader.close()
        flushed = self.recorder.close(timeout=CLOSE_TIMEOUT)
        if self.log.aggregates is not None:
            self.log.aggregates.close()  # what the store does not take waits in state_dir
        self.log.update_recorder_metrics()
        s = self.recorder.stats
        if not flushed:
            click.echo(
                "monitor sensor: the incident store did not take everything in time; "
                "the rest is in the spool and is written on the next start",
                err=True,
            )
        return {
            "submitted": s.submitted,
            "written": s.written,
            "duplicates": s.duplicates,
            "dropped": s.dropped,
            "spooled": s.spooled,
        }


@click.command("sensor")
@click.option(
    "--pcap",
    "pcap_file",
    type=click.Path(dir_okay=False),
    help="Read a capture file: pcap or pcapng (any number of sections and interfaces), "
    "plain or gzip/xz/bzip2-compressed.",
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
    help="tsv: time, client, server, protocol, hostname, platform ('-' for none), and with "
    "--config also person (pseudonym), age band, school, decision, rule; "
    "json: one object per line with every field (with --config also the incident severity).",
)
@catalog_option(CATALOG_HELP + " Not with --config, whose district.yaml names its catalogue files.")
@click.option(
    "--config",
    "config_dir",
    type=click.Path(file_okay=False),
    help="District configuration directory (district.yaml). Each observation is then "
    "identified (address → device → person), classified with the district's catalogue and "
    "decided by its policy as opening the platform (activity 'view'), counted in "
    'monitor_requests_total{source="sensor"} and, when the policy\'s rule names an incident '
    "severity, recorded as an incident (source 'sensor') in the district's incident store. "
    "QUIC (HTTP/3) to a platform the policy blocks for that person bypassed the proxy: it is "
    "recorded as an incident with rule 'quic-bypass:<rule>' and the rule's severity, or "
    "'medium'. Names outside the catalogue are printed but not judged ('-'). Live capture "
    "reloads changed configuration files and teacher overrides (from the incident store). "
    "The store must know this process's pseudonym key (or none yet): a store that remembers "
    "another key stops the sensor at start.",
)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    help="Incident store URL (sqlite:///path or postgresql+psycopg://…) instead of "
    "district.yaml's. Needs --config.",
)
@click.option(
    "--instance",
    metavar="NAME",
    help="Names this sensor's incident journal and spool in the state directory "
    f"(incident-journal-NAME.jsonl, incident-spool-NAME.jsonl; default: {DEFAULT_INSTANCE}), "
    "so that it runs beside the proxy and other sensors of the same configuration. Keep it "
    "stable across restarts: a restarted sensor writes what its journal still holds. A name "
    "in use by a live process is refused. Needs --config.",
)
@click.option(
    "--metrics",
    "metrics_listen",
    metavar="HOST:PORT",
    help="Serve Prometheus metrics here while the sensor runs: monitor_sensor_* (packets, "
    'observations, malformed) and, with --config, monitor_requests_total{source="sensor"} '
    "and monitor_incidents_total.",
)
@click.option(
    "--dedup-ttl",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="A flow that names the same host again after this long (capture time) is reported "
    "again; shorter keeps less state in a long capture.",
)
@click.option(
    "--stats",
    is_flag=True,
    help="At the end, print the packet, observation and malformed counters (and, with "
    "--config, the incident recorder's) as JSON on standard error.",
)
@click.option(
    "--quiet", is_flag=True, help="No progress display while reading --pcap (stderr, terminal)."
)
@click.option(
    "--transparent-gateway",
    is_flag=True,
    help="The sensor watches the devices' side of a transparent-mode gateway (`monitor gateway "
    "nftables --mode transparent`) beside its proxy: DNS lookups and TCP 80/443 to addresses in "
    "the catalogue sets (which the ruleset redirects to the proxy, and the proxy records) are "
    "reported but not counted or recorded again; what skipped the proxy (QUIC, addresses "
    "outside the sets) is. Needs --config and nft (root).",
)
def sensor_cmd(
    pcap_file: str | None,
    iface: str | None,
    fmt: str,
    catalogs: tuple[str, ...],
    config_dir: str | None,
    store_url: str | None,
    instance: str | None,
    metrics_listen: str | None,
    dedup_ttl: float,
    stats: bool,
    quiet: bool,
    transparent_gateway: bool,
) -> None:
    """Print the host names in DNS queries and answers, TLS ClientHellos, QUIC Initials and
    plain HTTP requests.

    One line per flow and host name, from a capture file (--pcap) or a live interface
    (--iface, with a kernel filter for DNS (53), TLS (443, 853) and QUIC (UDP 443); files are
    read on every port). With --config, also who it is and what the district's policy says,
    recorded like the proxy's decisions.
    """
    if (pcap_file is None) == (iface is None):
        raise click.UsageError("give exactly one of --pcap FILE or --iface IFACE")
    if config_dir is not None and catalogs:
        raise click.UsageError(
            "--catalog cannot be combined with --config: the district's catalogue files are "
            "named in its district.yaml"
        )
    if store_url is not None and config_dir is None:
        raise click.UsageError("--store needs --config (the policy decides what is stored)")
    if instance is not None and config_dir is None:
        raise click.UsageError("--instance needs --config (it names the incident spool)")
    if transparent_gateway and config_dir is None:
        raise click.UsageError("--transparent-gateway needs --config (it decides what to record)")
    if instance is not None:
        from monitor.flow.recording import recorder_files

        try:
            recorder_files(Path("."), instance)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--instance") from e
    listen = _listen(metrics_listen) if metrics_listen else None

    from monitor.flow.metrics import Metrics

    metrics = Metrics()
    session: _Session | None = None
    if config_dir is not None:
        session = _Session(config_dir, store_url, metrics, instance or DEFAULT_INSTANCE)
        classifier = session.judge.district.classifier
        overrides_of = session.judge
        metrics.watch_overrides(lambda: overrides_of.district.overrides)
        if transparent_gateway:
            session.judge.leave_to_proxy = _redirected_by_gateway()
    else:
        try:
            classifier = Classifier(catalogue_mod.load(catalogs))
        except ConfigError as e:
            raise click.ClickException(str(e)) from e

    # imported here: scapy takes a while to import and other commands do not need it
    from monitor.sensor import metrics as sensor_metrics
    from monitor.sensor import output, pcap
    from monitor.sensor.pipeline import Sensor

    sensor = Sensor(classifier, dedup_ttl=dedup_ttl)
    sensor_metrics.register(metrics.registry, sensor)
    server: Any = None
    announced: Path | None = None
    capturing = threading.Event()
    if listen is not None:
        from monitor.flow import health

        probe = health.Health(
            "sensor",
            instance or DEFAULT_INSTANCE,
            district=lambda: session.judge.district if session is not None else None,
            recorder=lambda: session.recorder if session is not None else None,
            started=capturing.is_set,
            last_reload=lambda: session.last_reload if session is not None else None,
            require_district=session is not None,
        )
        try:
            # /metrics, and /healthz and /readyz for the unit and `monitor status`
            server = health.serve(listen[0], listen[1], metrics.registry, probe)
        except OSError as e:
            if session is not None:
                session.close()
            raise click.ClickException(f"--metrics: cannot listen on {metrics_listen}: {e}") from e
        if session is not None:
            try:
                announced = health.announce(
                    session.judge.district.state_dir, "sensor", probe.instance,
                    health.address(server),
                )  # fmt: skip
            except OSError as e:
                click.echo(f"monitor sensor: not listed by `monitor status`: {e}", err=True)

    line: Callable[[Observation, Verdict | None], str] = (
        output.tsv_line if fmt == "tsv" else output.json_line
    )
    out = sys.stdout
    judge: Judge | None = session.judge if session is not None else None
    live = iface is not None

    def emit(obs: Observation) -> None:
        verdict = judge(obs) if judge is not None else None
        out.write(line(obs, verdict) + "\n")
        if live:
            out.flush()  # live: a reader downstream wants each line as it happens
        if session is not None:
            session.tick(sensor, live)

    recorder_stats: dict[str, Any] | None = None
    _stop_on_signals()
    try:
        if pcap_file is not None:
            from monitor.sensor.capfile import CaptureFile

            try:
                capture = CaptureFile(pcap_file)
            except ValueError as e:
                raise click.ClickException(str(e)) from e
            capturing.set()
            size = os.path.getsize(pcap_file)
            name = f"reading {Path(pcap_file).name}"
            with progress(name, size, unit="bytes", quiet=quiet) as bar:
                for obs in sensor.run(_reading(capture, bar)):
                    emit(obs)
                bar.update(completed=size)
            if capture.problem:
                click.echo(f"monitor sensor: {capture.problem}", err=True)
        else:
            assert iface is not None
            if session is not None:
                session.start_reloads(sensor)
            capturing.set()  # /readyz: the capture is being opened (errors end the process)
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
    finally:
        # flush queued incidents even when the capture failed half-way: nothing lost
        if session is not None:
            recorder_stats = session.close()
        if server is not None:
            from monitor.flow import health

            if announced is not None:
                health.withdraw(announced)
            health.stop(server)
    if stats:
        report: dict[str, Any] = sensor.counters.as_dict()
        if recorder_stats is not None:
            report["incidents"] = recorder_stats
        click.echo(json.dumps(report), err=True)


def _stop_on_signals() -> None:
    """SIGTERM (systemd's stop) and SIGINT end the capture the same way, queued incidents
    flushed first; also when the process was started with SIGINT ignored (a background job)."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)


def register(group: click.Group) -> None:
    group.add_command(sensor_cmd)
