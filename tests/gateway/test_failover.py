"""monitor/gateway/failover.py: which worker a dead worker's devices go to, the nft batch that
says so, and the clear errors of `monitor proxy --nft-failover` (the namespace test
tests/gateway/test_transparent_e2e.py proves it under traffic)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from netns import Lab

from monitor.cli import main
from monitor.gateway.failover import NftFailover, map_batch, targets
from monitor.gateway.nftables import RulesetSpec, render_ruleset

PORTS = [13128, 13129, 13130, 13131]


def test_every_worker_ready_keeps_its_own_devices() -> None:
    assert targets(PORTS, [True] * 4) == PORTS


def test_a_dead_workers_devices_go_to_the_next_live_one_wrapping_round() -> None:
    assert targets(PORTS, [True, False, True, True]) == [13128, 13130, 13130, 13131]
    assert targets(PORTS, [True, True, True, False]) == [13128, 13129, 13130, 13128]
    assert targets(PORTS, [False, False, True, False]) == [13130, 13130, 13130, 13130]


def test_none_ready_keeps_each_bucket_on_its_own_port() -> None:
    assert targets(PORTS, [False] * 4) == PORTS


def test_the_batch_rewrites_the_whole_map_in_one_transaction() -> None:
    batch = map_batch(PORTS[:2], [False, True])
    assert batch == (
        "flush map inet student_monitor workers\n"
        "add element inet student_monitor workers { 0 : 13129, 1 : 13129 }\n"
    )


def test_nft_failover_needs_workers() -> None:
    r = CliRunner().invoke(main, ["proxy", "--config", "examples/district", "--nft-failover"])
    assert r.exit_code == 2
    assert "--nft-failover" in r.output and "only with --workers" in r.output


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nft"
)


@needs_root
def test_update_in_a_namespace_follows_readiness_and_check_finds_the_map(tmp_path: Path) -> None:
    messages: list[str] = []
    with Lab.create() as lab:
        gw = lab.namespace("gw")
        nft = ["ip", "netns", "exec", gw.name, "nft"]
        wrapper = tmp_path / "nft"  # nft inside the namespace, for the failover's subprocess
        wrapper.write_text(f'#!/bin/sh\nexec {" ".join(nft)} "$@"\n')
        wrapper.chmod(0o755)
        failover = NftFailover(PORTS[:2], messages.append, nft=str(wrapper))
        assert "no map workers in table inet student_monitor" in (failover.check() or "")
        gw.nft(render_ruleset(RulesetSpec(mode="regular", workers=2, worker_port_base=13128)))
        assert failover.check() is None
        assert failover.update([True, False])
        listed = gw.run(["nft", "list", "map", "inet", "student_monitor", "workers"]).stdout
        assert "0x00000000 : 13128, 0x00000001 : 13128" in listed
        assert messages[-1] == "failover: worker w1's devices -> port 13128"
        assert failover.update([True, True])
        listed = gw.run(["nft", "list", "map", "inet", "student_monitor", "workers"]).stdout
        assert "0x00000000 : 13128, 0x00000001 : 13129" in listed
        assert messages[-1] == "failover: every worker serves its own"
