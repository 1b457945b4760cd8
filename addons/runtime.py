"""The shared state of the monitor's addons: the district snapshot (reloaded on change), the
metrics endpoint, the incident recorder and the pseudonym key.

Options (``--set name=value``):
  monitor_config           the district configuration directory (district.yaml)
  monitor_metrics_listen   host:port of the Prometheus endpoint ('' to disable)
  monitor_reload_interval  seconds between checks for changed configuration files
  monitor_store            incident store URL (default: district.yaml's, else SQLite in state_dir);
                           the teacher overrides are read from it too
  monitor_instance         names this process's incident journal and spool in state_dir (one
                           name per proxy process sharing a state directory; default: none)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mitmproxy import exceptions

from monitor.district import COMPONENTS, District, DistrictLoader, pseudonym_key
from monitor.flow import health
from monitor.flow.aggregates import open_activity_counts
from monitor.flow.metrics import Metrics
from monitor.flow.recording import DecisionLog, check_store_key, open_recorder
from monitor.incidents.recorder import Recorder
from monitor.yamlfile import ConfigError

log = logging.getLogger("monitor")


def _startup_check() -> logging.Handler | None:
    """The log handler of mitmproxy's errorcheck addon (exits on errors during start-up), or
    None when there is none."""
    from mitmproxy import ctx

    master = getattr(ctx, "master", None)
    addon = master.addons.get("errorcheck") if master is not None else None
    handler = getattr(addon, "logger", None)
    return handler if isinstance(handler, logging.Handler) else None


class Runtime:
    """Owns everything the other addons share. Loaded first."""

    def __init__(self) -> None:
        self.loader: DistrictLoader | None = None
        self.district: District | None = None
        self.metrics = Metrics()
        self.metrics.watch_overrides(
            lambda: self.district.overrides if self.district is not None else None,
            lambda: self.now(),
        )
        self.recorder: Recorder | None = None
        self.key: bytes = b""
        self._metrics_server: Any = None
        # /healthz and /readyz beside /metrics, and the announcement `monitor status` reads
        self.started = False
        self.last_reload: float | None = None
        self.health = health.Health(
            "proxy",
            "",
            district=lambda: self.district,
            recorder=lambda: self.recorder,
            started=lambda: self.started,
            last_reload=lambda: self.last_reload,
        )
        self._announced: Any = None
        self._reload_task: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self.log = DecisionLog(self.metrics, None, b"")
        # the time decisions are made for: the real clock unless monitor_clock moves it
        self.now: Callable[[], float] = time.time

    # -- mitmproxy hooks ---------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "monitor_config",
            str,
            "",
            "District configuration directory (with district.yaml): roster, devices, leases, "
            "policy, catalogue additions and state directory.",
        )
        loader.add_option(
            "monitor_metrics_listen",
            str,
            "127.0.0.1:9464",
            "host:port where Prometheus metrics are served; empty to disable.",
        )
        loader.add_option(
            "monitor_reload_interval",
            str,
            "2",
            "Seconds between checks for changed roster, device, lease, policy and catalogue "
            "files, and for teacher overrides changed in the incident store (one small query). "
            "A bad new file is rejected and the one in force stays.",
        )
        loader.add_option(
            "monitor_store",
            str,
            "",
            "Incident store URL (sqlite:///path or postgresql+psycopg://…); default: "
            "district.yaml's 'store', else SQLite in the state directory.",
        )
        loader.add_option(
            "monitor_instance",
            str,
            "",
            "Name of this proxy process's incident journal and spool in the state directory "
            "(incident-journal-NAME.jsonl, incident-spool-NAME.jsonl). Give every process that "
            "shares a state directory its own, stable across restarts: a restarted process "
            "writes what its journal still holds. A name in use by a live process is refused.",
        )

        loader.add_option(
            "monitor_clock",
            str,
            "",
            "For benchmarks and tests only, never in production: decide as if the time at "
            "start were this ISO 8601 date and time with its UTC offset (e.g. "
            "2026-12-07T10:30:00-05:00); the clock then runs on from there. Empty: real time.",
        )

    def configure(self, updated: set[str]) -> None:
        from mitmproxy import ctx

        if "monitor_clock" in updated:
            self.now = _clock(ctx.options.monitor_clock)

        if "monitor_config" in updated and ctx.options.monitor_config:
            try:
                loader = DistrictLoader(
                    ctx.options.monitor_config, store_url=ctx.options.monitor_store
                )
                district = loader.load()
                key = pseudonym_key(district)
            except (ConfigError, ValueError, OSError) as e:
                raise exceptions.OptionsError(f"monitor_config: {e}") from e
            self._check_key(loader, district, key)
            self.loader, self.district, self.key = loader, district, key
            self._count_config(district, loaded=COMPONENTS)
            self._start_recorder(district, ctx.options.monitor_store, ctx.options.monitor_instance)
            log.info(
                "monitor: district loaded from %s (%d people, %d platforms, %d rules)",
                district.config_dir,
                len(district.roster.people),
                len(district.catalogue),
                len(district.policy.rules),
            )
        if "monitor_metrics_listen" in updated:
            self._start_metrics(ctx.options.monitor_metrics_listen)

    @staticmethod
    def _check_key(loader: DistrictLoader, district: District, key: bytes) -> None:
        """Stop at start when the store remembers another pseudonym key (every writer of a
        district needs its one key); a store that cannot be reached is checked by the
        recorder once it answers."""
        from monitor.incidents.store.keycheck import KeyMismatchError

        try:
            unreachable = check_store_key(district, key)
        except KeyMismatchError as e:
            loader.close()
            raise exceptions.OptionsError(f"monitor: {e}") from e
        if unreachable:
            # a warning, not an error: mitmdump exits on errors logged during start-up, and a
            # store that is down must not stop the filtering (incidents wait in the spool)
            log.warning(
                "monitor: incident store unreachable at start (%s); incidents wait in the "
                "spool, and the pseudonym key is checked when it answers",
                unreachable,
            )

    def running(self) -> None:
        from mitmproxy import ctx

        loop = asyncio.get_running_loop()
        self.started = True
        self.health.instance = ctx.options.monitor_instance
        if self._announced is None and self.district is not None and self._metrics_server:
            try:
                self._announced = health.announce(
                    self.district.state_dir,
                    "proxy",
                    ctx.options.monitor_instance,
                    health.address(self._metrics_server),
                )
            except OSError as e:  # `monitor status` will not list this process; it runs on
                log.warning("monitor: cannot announce this process to `monitor status`: %s", e)
        if self._reload_task is None and self.loader is not None:
            self._reload_task = loop.create_task(self._reload_loop())
        if self._stats_task is None:
            self._stats_task = loop.create_task(self._stats_loop())
        if self._writer_task is None and self.recorder is not None:
            self._writer_task = loop.create_task(self._start_writer_after_startup())

    def done(self) -> None:
        for task in (self._reload_task, self._stats_task, self._writer_task):
            if task is not None:
                task.cancel()
        if self.recorder is not None:
            # flush what is queued: a restart loses nothing
            self.recorder.close(timeout=20)
            self.recorder = None
        if self.log.aggregates is not None:
            self.log.aggregates.close()  # what the store does not take waits in state_dir
            self.log.aggregates = None
        if self.loader is not None:
            self.loader.close()
        if self._announced is not None:
            health.withdraw(self._announced)
            self._announced = None
        if self._metrics_server is not None:
            try:
                health.stop(self._metrics_server)
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass

    # -- parts ---------------------------------------------------------------------------------

    def _start_metrics(self, listen: str) -> None:
        if self._metrics_server is not None:
            health.stop(self._metrics_server)
            self._metrics_server = None
        if not listen:
            return
        host, _, port = listen.rpartition(":")
        try:
            # /metrics, and /healthz and /readyz for the units and `monitor status`
            server = health.serve(host, int(port), self.metrics.registry, self.health)
        except (OSError, ValueError) as e:
            raise exceptions.OptionsError(
                f"monitor_metrics_listen: cannot listen on {listen}: {e}"
            ) from e
        self._metrics_server = server

    def _start_recorder(self, district: District, store_url: str, instance: str) -> None:
        if self.recorder is not None:
            return
        try:
            self.recorder = open_recorder(district, store_url, instance, start=False, key=self.key)
        except (ValueError, OSError) as e:
            # the journal or spool is another live process's, or the state directory is not
            # writable: refuse to start rather than run without a crash-safe incident record
            raise exceptions.OptionsError(f"monitor incidents: {e}") from e
        # daily activity counts for reports, flushed to the store every minute by a thread
        counts = open_activity_counts(district, store_url, instance)
        self.log = DecisionLog(self.metrics, self.recorder, self.key, counts)
        if _startup_check() is None:
            self.recorder.start()  # no start-up check to wait for (tests, other masters)

    async def _start_writer_after_startup(self) -> None:
        """Start the incident writer once mitmproxy's start-up check is over.

        mitmdump exits when anything logs an error before it has started (its ``errorcheck``
        addon). A store that is broken at start-up must be an error in the log, loud, and not
        take the proxy down (fail-safe: filtering goes on, incidents go to the spool), so the
        writer, which opens the store at once, starts after that check. Events of requests
        decided meanwhile are journaled and queued as always."""
        check = _startup_check()
        deadline = time.monotonic() + 10
        while check is not None and check in logging.getLogger().handlers:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        if self.recorder is not None and not self.recorder.started:
            self.recorder.start()

    def _count_config(self, district: District, loaded: tuple[str, ...]) -> None:
        now = time.time()
        self.last_reload = now
        for component in loaded:
            self.metrics.reloads.labels(component, "success").inc()
            self.metrics.config_loaded.labels(component).set(now)
        m = self.metrics.config_size
        m.labels("people").set(len(district.roster.people))
        m.labels("schools").set(len(district.roster.schools))
        m.labels("platforms").set(len(district.catalogue))
        m.labels("rules").set(len(district.policy.rules))
        m.labels("devices").set(len(district.inventory.devices) if district.inventory else 0)
        m.labels("leases").set(sum(len(t) for t in district.leases))
        m.labels("static_addresses").set(len(district.addresses))
        self.metrics.config_version.info({k: str(v) for k, v in district.versions.items()})

    async def _reload_loop(self) -> None:
        from mitmproxy import ctx

        while True:
            try:
                interval = float(ctx.options.monitor_reload_interval)
            except ValueError:
                interval = 2.0
            await asyncio.sleep(max(0.1, interval))
            if self.loader is None:
                continue
            try:
                # file reading and parsing happen off the event loop
                district, results = await asyncio.to_thread(self.loader.reload)
            except Exception:  # noqa: BLE001 - reloading must never take the proxy down
                log.exception("monitor: reload failed unexpectedly; configuration unchanged")
                self.metrics.reloads.labels("all", "failure").inc()
                continue
            self.district = district
            ok = tuple(r.component for r in results if r.ok)
            for r in results:
                if not r.ok:
                    self.metrics.reloads.labels(r.component, "failure").inc()
                    log.warning(
                        "monitor: %s rejected, the previous one stays in force: %s",
                        r.component,
                        r.message,
                    )
            if ok:
                self._count_config(district, ok)
                log.info("monitor: reloaded %s", ", ".join(ok))

    # -- helpers for the other addons ------------------------------------------------------

    @property
    def record(self) -> Callable[..., object]:
        """Count one decision and queue an incident when policy asks for one
        (``DecisionLog.record``, shared with the sensor)."""
        return self.log.record

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.health.beat()  # /healthz: the event loop runs
            try:
                self.log.update_recorder_metrics()
            except Exception:  # noqa: BLE001 - metrics must never take the proxy down
                log.exception("monitor: could not update recorder metrics")


def _clock(value: str) -> Callable[[], float]:
    """The decision clock for a ``monitor_clock`` option value (see its help)."""
    if not value.strip():
        return time.time
    try:
        start = datetime.fromisoformat(value.strip())
    except ValueError as e:
        raise exceptions.OptionsError(
            f"monitor_clock: {value!r} is not an ISO date and time"
        ) from e
    if start.tzinfo is None:
        raise exceptions.OptionsError(
            f"monitor_clock: {value!r} has no UTC offset (write e.g. 2026-12-07T10:30:00-05:00)"
        )
    offset = start.timestamp() - time.time()
    log.warning(
        "monitor: decisions use a moved clock (monitor_clock=%s): not for production", value
    )

    def now() -> float:
        return time.time() + offset

    return now
