"""The CARLA server supervisor against a stand-in child process (a small Python TCP server that
answers 'ping' and can be told to exit or to stop answering after some requests): launch on a
free port, readiness, restart after a crash or a hang, giving up after too many, and the
evaluation's route list going on where it stopped on the restarted server. Also the one-line
exit 2 when no server answers."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from harness.leaderboard.outcome import FAILURE_BLOCKED, FAILURE_SIMULATION
from harness.routes import read_routes
from harness.runner import evaluation
from harness.runner.backends import BackendSpec, ServerGuard, check_server
from harness.runner.config import RunConfig
from harness.runner.evaluation import EvalProgress, ResultsFile, _schedule, route_jobs
from harness.runner.pool import InlinePool, WorkerSpec
from harness.runner.route_runner import RouteJob, RouteResult, RouteRunner
from harness.sim.carla_server import (
    CarlaConnectionError,
    CarlaServer,
    CarlaServerError,
    ServerConfig,
    free_port,
    launch_command,
    port_is_free,
)

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"

STAND_IN = textwrap.dedent(
    """
    import os, socket, sys, time
    port, mode, after, log = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\\n")
    if mode == "exit-once":  # only the first instance dies
        mode = "exit" if len(open(log).read().split()) == 1 else "serve"
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen(8)
    served = 0
    while True:
        conn, _ = srv.accept()
        with conn:
            if conn.recv(16) != b"ping":
                continue
            if served >= after and mode == "exit":
                sys.exit(3)
            if served >= after and mode == "hang":
                time.sleep(3600)
            conn.sendall(b"pong")
            served += 1
    """
)


def ping(host: str, port: int, timeout_s: float) -> bool:
    """The stand-in's health probe: 'ping' answered by 'pong' within the time limit."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            s.sendall(b"ping")
            return s.recv(16) == b"pong"
    except OSError:
        return False


def stand_in(tmp_path: Path, mode: str = "serve", after: int = 10**6, **kw: object) -> ServerConfig:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    log = tmp_path / "pids.txt"
    return ServerConfig(
        command=lambda port: [sys.executable, str(script), str(port), mode, str(after), str(log)],
        probe=ping, probe_timeout_s=0.5, start_timeout_s=20.0, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def pids(tmp_path: Path) -> list[int]:
    return [int(p) for p in (tmp_path / "pids.txt").read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/status").read_text().count("zombie")


def test_free_port_skips_busy_and_reserved_ports() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        assert not port_is_free("127.0.0.1", taken)
        start = taken - (taken % 2)  # the pair (start, start + 1) holds the busy port
        port = free_port("127.0.0.1", start=start, stop=start + 40)
        assert port >= start + 2 and port_is_free("127.0.0.1", port) and port_is_free("127.0.0.1", port + 1)
        assert free_port("127.0.0.1", start=port, stop=port + 40, skip=(port + 1,)) >= port + 2


def test_launch_command_uses_the_leaderboard_flags(tmp_path: Path) -> None:
    (tmp_path / "CarlaUE4.sh").write_text("#!/bin/sh\n")
    cmd = launch_command(tmp_path, 2010, gpu=1)
    assert cmd == [str(tmp_path / "CarlaUE4.sh"), "-RenderOffScreen", "-nosound",
                   "-carla-rpc-port=2010", "-graphicsadapter=1"]  # fmt: skip
    with pytest.raises(CarlaServerError, match="CARLA_ROOT"):
        launch_command(tmp_path / "missing", 2000)


def test_start_waits_until_ready_and_stop_ends_the_process(tmp_path: Path) -> None:
    with CarlaServer(stand_in(tmp_path)) as server:
        assert server.port > 0 and ping("127.0.0.1", server.port, 1.0)
        assert server.healthy() and not server.ensure() and server.restarts == 0
        pid = server.pid
        assert pid is not None
    assert not alive(pid)


def test_a_crashed_server_is_restarted(tmp_path: Path) -> None:
    # the stand-in answers the readiness probe, then exits at the next request
    with CarlaServer(stand_in(tmp_path, "exit", after=1)) as server:
        port = server.port
        assert server.ensure() is True and server.restarts == 1
        assert len(pids(tmp_path)) == 2 and server.port == port
        assert not alive(pids(tmp_path)[0])


def test_a_hung_server_is_killed_and_restarted(tmp_path: Path) -> None:
    with CarlaServer(stand_in(tmp_path, "hang", after=1)) as server:
        assert server.ensure() is True
        first, second = pids(tmp_path)
        assert not alive(first) and server.pid == second
    assert not alive(second)


def test_too_many_failures_stop_with_a_resume_hint(tmp_path: Path) -> None:
    server = CarlaServer(stand_in(tmp_path, "exit", after=1, max_restarts=2))
    with server, pytest.raises(CarlaServerError, match="resumes where it stopped"):
        for _ in range(5):
            server.ensure()
    assert server.restarts == 2 and len(pids(tmp_path)) == 3
    assert not any(alive(p) for p in pids(tmp_path))


def test_a_server_that_exits_while_starting_is_reported(tmp_path: Path) -> None:
    failing = ServerConfig(command=lambda port: [sys.executable, "-c", "raise SystemExit(7)"],
                           probe=ping, start_timeout_s=20.0)  # fmt: skip
    with pytest.raises(CarlaServerError, match="status 7"):
        CarlaServer(failing).start()


class _ProbingWorker:
    """A route worker standing in for a route on the CARLA backend: the route crashes when the
    server does not answer, else it ends normally (blocked)."""

    def __init__(self, runner: RouteRunner, port: int, ran: list[tuple[int, str]]) -> None:
        self.runner, self.port, self.ran = runner, port, ran

    def run(self, job: RouteJob) -> RouteResult:
        up = ping("127.0.0.1", self.port, 0.5)
        reason = FAILURE_BLOCKED if up else FAILURE_SIMULATION
        self.ran.append((job.index, reason))
        return self.runner.failed(job, reason)


def test_route_list_goes_on_where_it_stopped_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first server answers 4 requests (readiness, then the guard's and the route's probes
    # of route 0, the guard's of route 1) and dies: route 1 crashes, the guard restarts the
    # server before its retry, and the remaining routes run on the new one
    routes = read_routes(ROUTES)[:4]
    config = RunConfig(agent="do_nothing", routes_file=ROUTES, out_dir=tmp_path / "out")
    runner = RouteRunner(config, object)
    jobs = route_jobs(config, routes, tuple(range(len(routes))))
    ran: list[tuple[int, str]] = []
    committed: list[RouteResult] = []
    with CarlaServer(stand_in(tmp_path, "exit-once", after=4)) as server:
        spec = WorkerSpec(_ProbingWorker, (runner, server.port, ran))
        monkeypatch.setattr(evaluation, "make_pool", lambda _c, _n: InlinePool(spec))
        (tmp_path / "out").mkdir()
        results = ResultsFile(tmp_path / "out" / "results.json", len(jobs))
        _schedule(config, list(jobs), runner, committed.append,
                  EvalProgress(False, len(jobs), 0, threaded=False), results,
                  ServerGuard(server.ensure))  # fmt: skip
        assert server.restarts == 1
    assert [r.record.index for r in committed] == [0, 1, 2, 3]
    assert all(r.record.status == f"Failed - {FAILURE_BLOCKED}" for r in committed)
    crashed = [i for i, (_, why) in enumerate(ran) if why == FAILURE_SIMULATION]
    assert len(crashed) == 1 and ran[crashed[0] + 1][0] == ran[crashed[0]][0]  # the same route again


def test_no_server_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port("127.0.0.1", start=23000, stop=24000)
    with pytest.raises(CarlaConnectionError, match=f"no CARLA server answers at 127.0.0.1:{port}"):
        check_server(BackendSpec("carla", host="127.0.0.1", port=port, tm_port=port + 10))
    from harness.cli.main import run

    rc = run(["eval", "--agent", "do_nothing", "--routes", str(ROUTES), "--backend", "carla",
              "--carla-host", "127.0.0.1", "--carla-port", str(port), "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no CARLA server answers" in lines[0] and "--carla-launch" in lines[0]
    assert not (tmp_path / "out" / "results.json").exists()
