"""Worker failover in the kernel: while a worker is down, its devices go to the next live one.

The ruleset of ``monitor gateway nftables`` sends each device to a worker through the map
``workers`` (hash bucket → worker port). A device keeps its worker while that worker runs, which
keeps per-address state meaningful; when the supervisor sees a worker die it points that
worker's bucket at the next live worker's port, and back again once the worker listens again.
Only new connections follow the map; a connection already redirected keeps its worker (conntrack
remembers it), and the dead worker's connections are gone with it anyway. One ``nft -f``
transaction rewrites the whole map, so a device never meets a half-written one.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence

from monitor.gateway.nftables import TABLE, WORKER_MAP

MAP = WORKER_MAP


def targets(ports: Sequence[int], ready: Sequence[bool]) -> list[int]:
    """Per hash bucket, the port its devices go to: their own worker's while it is ready, else
    the next ready worker's (wrapping round); their own when none is (refused either way)."""
    n = len(ports)
    out = []
    for i in range(n):
        live = next((ports[(i + k) % n] for k in range(n) if ready[(i + k) % n]), ports[i])
        out.append(live)
    return out


def map_batch(ports: Sequence[int], ready: Sequence[bool], table: str = TABLE) -> str:
    """The ``nft -f`` text that sets the whole map at once."""
    pairs = ", ".join(f"{i} : {port}" for i, port in enumerate(targets(ports, ready)))
    return f"flush map inet {table} {MAP}\nadd element inet {table} {MAP} {{ {pairs} }}\n"


class NftFailover:
    """Keeps the map ``workers`` of ``table inet TABLE`` in step with the workers' readiness.
    ``say`` reports each change and each failure; a failure never stops the supervisor (the
    rules in place keep refusing a dead worker's catalogue connections, which is safe)."""

    def __init__(
        self,
        ports: Sequence[int],
        say: Callable[[str], None],
        *,
        table: str = TABLE,
        nft: str | None = None,
    ) -> None:
        self.ports = list(ports)
        self.say = say
        self.table = table
        self.nft = nft or shutil.which("nft") or "nft"
        self.current: list[int] | None = None

    def check(self) -> str | None:
        """None when the map is there with one element per worker, else what is wrong (for a
        clear error before the workers start)."""
        try:
            r = subprocess.run(
                [self.nft, "list", "map", "inet", self.table, MAP],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except OSError as e:
            return f"cannot run nft ({e}): failover needs nftables and CAP_NET_ADMIN"
        except subprocess.TimeoutExpired:
            return "nft did not answer within 10 s"
        if r.returncode != 0:
            return (
                f"no map {MAP} in table inet {self.table} ({r.stderr.strip() or 'nft failed'}): "
                "load the ruleset of `monitor gateway nftables` with the same --workers first"
            )
        return None

    def update(self, ready: Sequence[bool]) -> bool:
        """Point every bucket at a live worker; True when the map now says so."""
        want = targets(self.ports, ready)
        if want == self.current:
            return True
        batch = map_batch(self.ports, ready, self.table)
        try:
            r = subprocess.run(
                [self.nft, "-f", "-"], input=batch, capture_output=True, text=True, timeout=10
            )
            failed = r.stderr.strip() if r.returncode else None
        except (OSError, subprocess.TimeoutExpired) as e:
            failed = str(e)
        if failed:
            self.say(f"failover: could not update the nftables map {MAP}: {failed}")
            self.current = None  # try again on the next change or retry
            return False
        moved = [
            f"worker w{i}'s devices -> port {port}"
            for i, port in enumerate(want)
            if port != self.ports[i]
        ]
        if self.current is not None or moved:
            self.say("failover: " + ("; ".join(moved) if moved else "every worker serves its own"))
        self.current = want
        return True
