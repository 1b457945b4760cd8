"""A WireGuard client inside a test namespace, as a district device off the district network
runs one: Debian's userspace ``wireguard-go`` (this kernel has no WireGuard module) on a TUN
device, set up by ``wg`` from the wg-quick file `monitor gateway wireguard-client` writes.

    with wg_device(ns, conf_text, ifname("a"), log) as dev:   # tunnel up, default route in it
        ...                                                   # then wireguard-go stopped

Interface names carry the test process's pid (``smwg<pid><tag>``), so that concurrent runs do
not share a UAPI socket in /var/run/wireguard and :func:`remove_leftovers` can remove what a
dead run left behind. Deleting the namespace removes the TUN device; :meth:`WgDevice.stop`
also removes the socket file a killed wireguard-go leaves.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from netns import Namespace, wait_for

UAPI_DIR = Path("/var/run/wireguard")
ETC_NETNS = Path("/etc/netns")
PREFIX = "smwg"
_IFNAME = re.compile(rf"{PREFIX}(\d+)[a-z]+\.sock")
_NSNAME = re.compile(r"smon-(\d+)-[a-z0-9]+")
# the wg-quick keys that are not wg's (wg-quick applies them itself)
QUICK_ONLY = {
    "address",
    "dns",
    "mtu",
    "table",
    "preup",
    "postup",
    "predown",
    "postdown",
    "saveconfig",
}


def missing_requirements() -> None:
    """Fail (not skip) when the WireGuard tools are missing: scripts/test installs them."""
    missing = [t for t in ("wireguard-go", "wg") if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"not found: {', '.join(missing)}: apt-get install -y wireguard-go wireguard-tools "
            "(scripts/test does so)",
            pytrace=False,
        )
    if not Path("/dev/net/tun").exists():
        pytest.fail("/dev/net/tun is missing: wireguard-go needs the TUN driver", pytrace=False)


def ifname(tag: str) -> str:
    name = f"{PREFIX}{os.getpid()}{tag}"
    assert len(name) <= 15 and tag.isalpha() and tag.islower(), name
    return name


def remove_leftovers() -> list[str]:
    """UAPI sockets and /etc/netns directories of test runs that are gone."""
    removed = []
    for directory, pattern in ((UAPI_DIR, _IFNAME), (ETC_NETNS, _NSNAME)):
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            m = pattern.fullmatch(path.name)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(str(path))
    return removed


@dataclass(frozen=True)
class QuickConf:
    """A wg-quick file split as wg-quick does: wg's own part, and what wg-quick applies."""

    wg_text: str  # for `wg setconf`
    addresses: tuple[str, ...]
    dns: tuple[str, ...]


def strip_quick(text: str) -> QuickConf:
    """``wg-quick strip``: drop the keys wg does not know, keeping Address and DNS aside."""
    kept: list[str] = []
    addresses: list[str] = []
    dns: list[str] = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        name = key.strip().lower()
        if sep and name in QUICK_ONLY:
            items = [v.strip() for v in value.split(",") if v.strip()]
            if name == "address":
                addresses += items
            elif name == "dns":
                dns += items
            continue
        if not line.lstrip().startswith("#"):
            kept.append(line)
    return QuickConf("\n".join(kept).strip() + "\n", tuple(addresses), tuple(dns))


def set_resolution(ns: Namespace, nameservers: tuple[str, ...], hosts: dict[str, str]) -> Path:
    """``/etc/netns/NAME/{resolv.conf,hosts}``, which ``ip netns exec NAME`` mounts over /etc
    (the caller removes the directory)."""
    d = ETC_NETNS / ns.name
    d.mkdir(parents=True, exist_ok=True)
    servers = "".join(f"nameserver {s}\n" for s in nameservers)
    (d / "resolv.conf").write_text(servers + "options timeout:2 attempts:2\n")
    lines = ["127.0.0.1 localhost", *(f"{a} {n}" for n, a in hosts.items())]
    (d / "hosts").write_text("\n".join(lines) + "\n")
    return d


@dataclass
class WgDevice:
    ns: Namespace
    ifname: str
    conf: QuickConf
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, ns: Namespace, quick_text: str, name: str, log: Path) -> WgDevice:
        """wireguard-go in ``ns`` with this wg-quick configuration: the tunnel's addresses on
        the TUN device and the default route into it (the endpoint stays reachable on the
        namespace's own link, a more specific route). ``DNS`` is the caller's to apply."""
        conf = strip_quick(quick_text)
        env = dict(os.environ, WG_PROCESS_FOREGROUND="1", LOG_LEVEL="error")
        with log.open("wb") as out:
            proc = ns.popen(
                ["wireguard-go", "--foreground", name],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        dev = cls(ns, name, conf, proc)
        try:
            wait_for(
                lambda: (UAPI_DIR / f"{name}.sock").exists() or proc.poll() is not None,
                15,
                f"wireguard-go's {name}",
            )
            if proc.poll() is not None:
                raise RuntimeError(f"wireguard-go exited: {log.read_text(errors='replace')}")
            wg_file = log.with_suffix(".wg.conf")
            wg_file.write_text(conf.wg_text)
            wg_file.chmod(0o600)
            ns.run(["wg", "setconf", name, str(wg_file)])
            for address in conf.addresses:
                ns.ip("address", "add", address, "dev", name)
            ns.ip("link", "set", name, "up")
            ns.ip("route", "add", "default", "dev", name)
            if "::/0" in conf.wg_text:  # IPv6 into the tunnel too, as wg-quick routes it
                ns.ip("-6", "route", "add", "default", "dev", name)
        except BaseException:
            dev.stop()
            raise
        return dev

    def show(self) -> str:
        return self.ns.run(["wg", "show", self.ifname]).stdout

    def latest_handshake(self) -> int:
        """Seconds since the epoch of the last handshake with the server (0: none yet)."""
        out = self.ns.run(["wg", "show", self.ifname, "latest-handshakes"]).stdout.split()
        return int(out[1]) if len(out) == 2 else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        (UAPI_DIR / f"{self.ifname}.sock").unlink(missing_ok=True)


@contextmanager
def wg_device(ns: Namespace, quick_text: str, name: str, log: Path) -> Iterator[WgDevice]:
    """:meth:`WgDevice.start`, stopped however the block ends."""
    dev = WgDevice.start(ns, quick_text, name, log)
    try:
        yield dev
    finally:
        dev.stop()
