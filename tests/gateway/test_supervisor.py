"""The worker supervisor (monitor/gateway/workers.py) with stand-in workers: small Python
processes that listen on their port and behave as a control file says (serve, crash soon
after listening, fail at once), so restarts, back-off, giving up and stopping are fast and
exact. tests/gateway/test_workers_netns.py does the same with real mitmdump workers."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from netns import wait_for

from monitor.gateway import workers as w

FAKE = textwrap.dedent(
    """
    import signal, socket, sys, time
    port, control = int(sys.argv[1]), sys.argv[2]
    behaviour = open(control).read().strip()
    print(f"starting as {behaviour}", flush=True)
    if behaviour == "fail":
        print("Error: bad option", flush=True)
        sys.exit(2)
    def stop(*_):
        print("flushed the queue", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    if behaviour == "crash":
        time.sleep(0.1)
        print("boom: start-up check failed", flush=True)
        sys.exit(3)
    if behaviour == "flaky":
        time.sleep(0.6)
        sys.exit(4)
    while True:
        time.sleep(1)
    """
)
FAST = w.RestartPolicy(
    first_delay=0.1, max_delay=1.0, stable_after=30, give_up_after=3, stop_timeout=5, settle=0.3
)


def free_ports(n: int) -> int:
    """A base port with n free ports after it."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + n < 65536 and all(w._try_bind("127.0.0.1", base + i) is None for i in range(n)):
            return base
    raise RuntimeError("no free ports")


@dataclass
class Fakes:
    control: Path
    script: Path
    plan: list[w.Worker]

    def behave(self, behaviour: str) -> None:
        self.control.write_text(behaviour)

    def argv(self, worker: w.Worker) -> list[str]:
        return [sys.executable, str(self.script), str(worker.port), str(self.control)]


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE)
    control = tmp_path / "behaviour"
    control.write_text("serve")
    plan = w.plan(3, "127.0.0.1", free_ports(3), "", 1)
    return Fakes(control, script, plan)


class Run:
    """A supervisor running in this (the main) thread while ``action`` runs in another."""

    def __init__(self, fakes: Fakes, policy: w.RestartPolicy = FAST) -> None:
        self.out = StringIO()
        self.sup = w.Supervisor(fakes.plan, fakes.argv, out=self.out, policy=policy)

    def text(self) -> str:
        return self.out.getvalue()

    def pid(self, name: str) -> int:
        found = re.findall(rf"worker {name} (?:again )?listening on \S+ \(pid (\d+)", self.text())
        return int(found[-1])

    def wait_text(self, needle: str, timeout: float = 15) -> None:
        wait_for(lambda: needle in self.text(), timeout, repr(needle))

    def __call__(self, action: Callable[[Run], None]) -> int:
        errors: list[BaseException] = []

        def act() -> None:
            try:
                action(self)
            except BaseException as e:  # noqa: BLE001 - reported by the test
                errors.append(e)
            finally:
                self.sup.request_stop()

        t = threading.Thread(target=act, daemon=True)
        t.start()
        code = self.sup.run()
        t.join(timeout=10)
        if errors:
            raise errors[0]
        return code


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_a_killed_worker_is_restarted_and_the_others_are_left_alone(fakes: Fakes) -> None:
    run = Run(fakes)
    seen: dict[str, int] = {}

    def action(r: Run) -> None:
        r.wait_text("all 3 workers ready")
        seen.update({n: r.pid(n) for n in ("w0", "w1", "w2")})
        os.kill(seen["w1"], signal.SIGKILL)
        r.wait_text("worker w1 again listening")

    assert run(action) == 0
    out = run.text()
    assert f"worker w1 (pid {seen['w1']}) was killed by SIGKILL" in out
    assert "starting it again in 0.1 s" in out
    assert run.pid("w1") != seen["w1"]
    assert run.pid("w0") == seen["w0"] and run.pid("w2") == seen["w2"]
    # a clean stop: every worker got SIGTERM and had its say
    assert out.count("flushed the queue") == 3
    assert out.rstrip().endswith("monitor: stopped")
    assert not any(alive(p) for p in (run.pid("w0"), run.pid("w1"), run.pid("w2")))


def test_workers_start_one_first_then_the_rest(fakes: Fakes) -> None:
    run = Run(fakes)
    assert run(lambda r: r.wait_text("all 3 workers ready")) == 0
    lines = run.text().splitlines()
    first = next(i for i, line in enumerate(lines) if "worker w0 listening" in line)
    starts = [i for i, line in enumerate(lines) if line.endswith("starting as serve")]
    assert len(starts) == 3
    assert starts[0] < first < starts[1]  # w0 was ready before w1 and w2 started


def test_gives_up_after_repeated_failures_before_ready_and_shows_the_last_lines(
    fakes: Fakes,
) -> None:
    run = Run(fakes)
    others: list[int] = []

    def action(r: Run) -> None:
        r.wait_text("all 3 workers ready")
        others.extend([r.pid("w0"), r.pid("w2")])
        fakes.behave("crash")  # the next starts fail, as a bad file would make them
        os.kill(r.pid("w1"), signal.SIGKILL)
        r.wait_text("giving up")

    began = time.monotonic()
    assert run(action) == 1
    took = time.monotonic() - began
    out = run.text()
    # the killed run was short too (under 30 s): 0.1 s after it, then 0.2 s, 0.4 s
    assert "was killed by SIGKILL after" in out and "starting it again in 0.1 s" in out
    assert "(before it was ready, 1 in a row); starting it again in 0.2 s" in out
    assert "(before it was ready, 2 in a row); starting it again in 0.4 s" in out
    assert "exited with status 3" in out
    assert "3 starts in a row ended before it was ready; giving up; its last lines:" in out
    report = out.split("giving up; its last lines:", 1)[1]
    assert "  boom: start-up check failed" in report
    assert "stopping the other workers" in out
    assert not any(alive(p) for p in others)
    assert took < 20


def test_a_worker_failing_at_its_first_start_stops_everything_at_once(fakes: Fakes) -> None:
    fakes.behave("fail")
    run = Run(fakes)
    began = time.monotonic()
    assert run(lambda r: r.wait_text("before it was ready")) == 1
    out = run.text()
    assert time.monotonic() - began < 10
    assert "worker w0 (pid" in out and "exited with status 2" in out
    assert "before it was ready; its last lines:\n  starting as fail\n  Error: bad option" in out
    assert "starting it again" not in out
    assert "w1" not in out  # the others never started


def test_the_delay_doubles_for_runs_in_a_row_that_end_soon(fakes: Fakes) -> None:
    run = Run(fakes)

    def action(r: Run) -> None:
        r.wait_text("all 3 workers ready")
        fakes.behave("flaky")  # ready (listening 0.3 s), then exits at 0.6 s
        os.kill(r.pid("w2"), signal.SIGKILL)
        wait_for(lambda: r.text().count("worker w2 (pid") >= 4, 20, "four exits of w2")

    assert run(action) == 0
    delays = re.findall(r"worker w2 \(pid \d+\) .*?starting it again in ([\d.]+) s", run.text())
    assert [float(d) for d in delays[:4]] == [0.1, 0.2, 0.4, 0.8]
    assert "giving up" not in run.text()  # it was ready each time: it keeps being restarted


SUPERVISOR = textwrap.dedent(
    """
    import sys
    from monitor.gateway import workers as w
    base, script, control = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    plan = w.plan(2, "127.0.0.1", base, "", 1)
    policy = w.RestartPolicy(settle=0.3, stop_timeout=5)
    argv = lambda wk: [sys.executable, script, str(wk.port), control]
    sys.exit(w.Supervisor(plan, argv, out=sys.stdout, policy=policy).run())
    """
)


@pytest.fixture
def supervisor_process(
    fakes: Fakes, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    log = tmp_path / "supervisor.log"
    code = [sys.executable, "-c", SUPERVISOR, str(fakes.plan[0].port)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*code, str(fakes.script), str(fakes.control)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: "all 2 workers ready" in log.read_text(), 20, "the workers")
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _pids(log: Path) -> list[int]:
    return [int(p) for p in re.findall(r"listening on \S+ \(pid (\d+)", log.read_text())]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_stops_every_worker_cleanly(
    supervisor_process: tuple[subprocess.Popen[str], Path], sig: signal.Signals
) -> None:
    proc, log = supervisor_process
    pids = _pids(log)
    proc.send_signal(sig)
    assert proc.wait(timeout=15) == 0
    text = log.read_text()
    assert text.count("flushed the queue") == 2
    assert text.rstrip().endswith("monitor: stopped")
    assert not any(alive(p) for p in pids)


def test_workers_get_sigterm_when_the_supervisor_is_killed(
    supervisor_process: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, log = supervisor_process
    pids = _pids(log)
    proc.kill()  # SIGKILL: no chance to stop them itself
    proc.wait()
    wait_for(lambda: not any(alive(p) for p in pids), 5, "orphaned workers to stop")


# -- plan and ports -------------------------------------------------------------------------


def test_plan_gives_each_worker_its_port_metrics_port_and_name() -> None:
    plan = w.plan(3, "0.0.0.0", 13128, "127.0.0.1:9464", 3128)
    assert [(x.name, x.listen, x.metrics) for x in plan] == [
        ("w0", "0.0.0.0:13128", "127.0.0.1:9464"),
        ("w1", "0.0.0.0:13129", "127.0.0.1:9465"),
        ("w2", "0.0.0.0:13130", "127.0.0.1:9466"),
    ]
    assert [x.metrics for x in w.plan(2, "*", 13128, "", 3128)] == ["", ""]
    assert w.plan(1, "::", 13128, "[::1]:9464", 3128)[0].listen == "[::]:13128"
    assert w.plan(1, "::", 13128, "[::1]:9464", 3128)[0].metrics == "[::1]:9464"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((2, "*", 65535, "", 3128), "gives ports 65535-65536, outside 1-65535"),
        ((2, "*", 0, "", 3128), "outside 1-65535"),
        ((4, "*", 3127, "", 3128), "the --listen port 3128 is one of the worker ports 3127-3130"),
        ((2, "*", 13128, "127.0.0.1:65535", 3128), "--metrics 127.0.0.1:65535 with 2 workers"),
        ((4, "*", 13128, "127.0.0.1:13130", 3128), "overlap the worker ports 13128-13131"),
        ((2, "*", 13128, "127.0.0.1:3127", 3128), "the --listen port 3128 is one of the metrics"),
        ((2, "*", 13128, "9464", 3128), "--metrics '9464' is not HOST:PORT"),
        ((2, "*", 13128, "127.0.0.1:70000", 3128), "port 70000 is outside 1-65535"),
    ],
)
def test_plan_refuses_ports_out_of_range_or_overlapping(
    args: tuple[int, str, int, str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        w.plan(*args)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "0 workers: at least 1"),
        ("-2", "-2 workers: at least 1"),
        ("two", "'two' is not a number of workers"),
        ("1.5", "'1.5' is not a number of workers"),
        ("", "'' is not a number of workers"),
        ("100000", "at most 512"),
    ],
)
def test_parse_count_refuses_what_is_no_number_of_workers(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        w.parse_count(text)


def test_parse_count_auto_is_one_per_core() -> None:
    assert w.parse_count("auto") == w.default_count() == len(os.sched_getaffinity(0))
    assert w.parse_count(" 3 ") == 3


def test_check_free_names_a_port_in_use_and_what_to_do() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        plan = w.plan(2, "127.0.0.1", port - 1, "", 1)
        with pytest.raises(ValueError) as e:
            w.check_free(plan)
    msg = str(e.value)
    assert f"port {port} (worker w1's proxy port) is in use on 127.0.0.1:{port}" in msg
    assert f"ss -ltnp 'sport = :{port}'" in msg and "choose another --worker-port-base" in msg


def test_check_free_names_a_metrics_port_in_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        plan = w.plan(1, "127.0.0.1", free_ports(1), f"127.0.0.1:{port}", 1)
        with pytest.raises(
            ValueError, match=rf"port {port} \(worker w0's metrics port\) is in use"
        ):
            w.check_free(plan)


def test_check_free_on_every_address_sees_a_port_taken_on_loopback() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ValueError, match="is in use on 0.0.0.0"):
            w.check_free(w.plan(1, "*", port, "", 1))


def test_check_free_names_an_address_this_host_does_not_have() -> None:
    plan = w.plan(1, "192.0.2.77", free_ports(1), "", 1)
    with pytest.raises(ValueError, match="192.0.2.77 is not an address of this host"):
        w.check_free(plan)


def test_check_free_passes_free_ports() -> None:
    w.check_free(w.plan(2, "127.0.0.1", free_ports(2), f"127.0.0.1:{free_ports(2)}", 1))


def test_listening_sees_a_processes_own_listening_socket_only() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not w.listening(os.getpid(), port)  # bound, not listening
        s.listen()
        assert w.listening(os.getpid(), port)
        assert not w.listening(os.getppid(), port)  # another process: not its socket


def test_describe_exit() -> None:
    assert w.describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert w.describe_exit(1) == "exited with status 1"
    assert errno.EADDRINUSE  # (the checks above rely on the errno module's names)
