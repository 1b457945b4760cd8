"""The gateway network of tests/gatewaynet.py when its test run dies: a process that built it
is SIGKILLed (no clean-up of its own can run), and what it left behind (namespaces with the
proxy workers and dnsmasq still running in them, /etc/netns directories) is removed by the
next fixture's first step."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gatewaynet import ETC_NETNS, remove_leftover_etc
from netns import lab, namespaces, remove_leftovers, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, "tests")
    from gatewaynet import gateway_network
    with gateway_network(Path(sys.argv[1]), sensor=False) as net:
        print("up", net.lab.tag, flush=True)
        time.sleep(600)
    """
)


def test_a_killed_run_leaves_what_the_next_one_removes(tmp_path: Path) -> None:
    with lab():  # skips without root, like the other namespace tests
        pass
    out, err = tmp_path / "child.out", tmp_path / "child.err"
    with out.open("w") as o, err.open("w") as e:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT, stdout=o, stderr=e
        )
    try:
        wait_for(
            lambda: out.read_text().startswith("up ") or child.poll() is not None,
            120,
            "the network to come up",
        )
        assert out.read_text().startswith("up "), err.read_text()
        tag = out.read_text().split()[1]
    finally:
        child.kill()
        child.wait()
    ours = [n for n in namespaces() if n.startswith(tag + "-")]
    assert sorted(ours) == sorted(f"{tag}-{r}" for r in ("cl", "gw", "inet"))
    assert (ETC_NETNS / f"{tag}-cl" / "resolv.conf").exists()
    pids = subprocess.run(
        ["ip", "netns", "pids", f"{tag}-gw"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert pids  # the workers and the resolver outlived the test process
    removed = remove_leftovers()
    assert set(ours) <= set(removed)
    assert {f"{tag}-{r}" for r in ("cl", "gw", "inet")} <= set(remove_leftover_etc())
    assert not [n for n in namespaces() if n.startswith(tag + "-")]
    assert not list(ETC_NETNS.glob(f"{tag}-*"))
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), 10, "the processes to end")
