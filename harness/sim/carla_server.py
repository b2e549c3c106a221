"""The CARLA server's lifecycle: launch ``CarlaUE4.sh`` from ``$CARLA_ROOT`` off screen on a free
RPC port (and GPU), wait until it answers, notice when it died or hangs, and restart it. The
evaluation asks :meth:`CarlaServer.ensure` before every route and after a crashed one, so a run
goes on where it stopped; the server process is stopped on every exit path.

Readiness and health are one probe: a request the server must answer within a time limit (by
default ``carla.Client.get_server_version``). Tests pass their own command and probe and drive a
stand-in child process."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0  # [s] a cold CarlaUE4 start takes 10-60 s
PROBE_TIMEOUT_S = 10.0  # [s] a healthy server answers the probe well within this
POLL_S = 0.5  # [s] between readiness probes
STOP_GRACE_S = 10.0  # [s] from SIGTERM to SIGKILL
MAX_RESTARTS = 3  # restarts per run before giving up
PORTS_PER_SERVER = 2  # CARLA serves RPC on port and its streaming on port + 1
LAUNCHER = "CarlaUE4.sh"

Probe = Callable[[str, int, float], bool]
"""(host, port, timeout_s) -> whether a server answered in time."""


class CarlaServerError(HarnessError):
    """The CARLA server could not be started, or kept dying."""


def carla_probe(host: str, port: int, timeout_s: float) -> bool:
    """Whether a CARLA server at host:port answers ``get_server_version`` within ``timeout_s``."""
    try:
        with socket.create_connection((host, port), timeout=min(timeout_s, 2.0)):
            pass
    except OSError:
        return False
    import carla

    client = carla.Client(host, port)
    client.set_timeout(timeout_s)
    try:
        client.get_server_version()
    except RuntimeError:
        return False
    return True


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``port`` and it can be bound on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", span: int = PORTS_PER_SERVER, start: int = 2000,
              stop: int = 60000, step: int = 2, skip: Sequence[int] = ()) -> int:  # fmt: skip
    """The first port p from ``start`` (every ``step``) with p .. p + span - 1 free and none of
    them in ``skip`` (a Traffic Manager port, another server's ports)."""
    for port in range(start, stop, step):
        ports = range(port, port + span)
        if any(p in skip for p in ports):
            continue
        if all(port_is_free(host, p) for p in ports):
            return port
    raise CarlaServerError(f"no {span} free consecutive ports between {start} and {stop} on {host}")


def launch_command(carla_root: Path, port: int, gpu: int | None = None) -> list[str]:
    """CarlaUE4.sh off screen, without sound, serving RPC on ``port`` (on GPU ``gpu``)."""
    script = Path(carla_root) / LAUNCHER
    if not script.is_file():
        raise CarlaServerError(
            f"{script} not found: set $CARLA_ROOT (or --carla-root) to a CARLA 0.9.16 folder"
        )
    cmd = [str(script), "-RenderOffScreen", "-nosound", f"-carla-rpc-port={port}"]
    if gpu is not None:
        cmd.append(f"-graphicsadapter={gpu}")
    return cmd


@dataclass
class ServerConfig:
    """How to run a server: ``command`` builds the argv for a port (default: CarlaUE4.sh from
    ``carla_root``); ``port`` 0 picks a free one; ``skip_ports`` are never chosen."""

    carla_root: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    gpu: int | None = None
    command: Callable[[int], list[str]] | None = None
    probe: Probe = carla_probe
    start_timeout_s: float = START_TIMEOUT_S
    probe_timeout_s: float = PROBE_TIMEOUT_S
    max_restarts: int = MAX_RESTARTS
    skip_ports: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, port: int) -> list[str]:
        if self.command is not None:
            return self.command(port)
        root = self.carla_root or (Path(os.environ["CARLA_ROOT"]) if os.environ.get("CARLA_ROOT") else None)
        if root is None:
            raise CarlaServerError("set $CARLA_ROOT (or --carla-root) to launch a CARLA server")
        return launch_command(root, port, self.gpu)


class CarlaServer:
    """One supervised server process. Use as a context manager (stopped on every exit path);
    :meth:`ensure` restarts it when it died or stopped answering (at most
    ``config.max_restarts`` times per run)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.port = 0
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CarlaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> int:
        """Launch the server and wait until it answers; returns its RPC port."""
        cfg = self.config
        if self.port == 0:
            self.port = cfg.port or free_port(cfg.host, skip=cfg.skip_ports)
        argv = cfg.argv(self.port)
        log.info("starting CARLA server: %s", " ".join(argv))
        self._proc = subprocess.Popen(  # noqa: S603  (argv built above, no shell)
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **cfg.env}, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + cfg.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise CarlaServerError(
                    f"the CARLA server exited with status {code} while starting ({argv[0]}); "
                    "run it by hand to see why"
                )
            if cfg.probe(cfg.host, self.port, cfg.probe_timeout_s):
                log.info("CARLA server ready on %s:%d (pid %d)", cfg.host, self.port, self._proc.pid)
                return self.port
            time.sleep(POLL_S)
        self.stop()
        raise CarlaServerError(
            f"the CARLA server did not answer on {cfg.host}:{self.port} within "
            f"{cfg.start_timeout_s:.0f} s; check the GPU and $CARLA_ROOT"
        )

    def healthy(self) -> bool:
        """The process runs and answers the probe in time (False when it died or hangs)."""
        if self._proc is None or self._proc.poll() is not None:
            return False
        return self.config.probe(self.config.host, self.port, self.config.probe_timeout_s)

    def ensure(self) -> bool:
        """Make sure a healthy server runs; returns True when it had to be restarted."""
        if self.healthy():
            return False
        if self.restarts >= self.config.max_restarts:
            self.stop()
            raise CarlaServerError(
                f"the CARLA server failed {self.restarts + 1} times; fix it and run the same "
                "command again: the evaluation resumes where it stopped"
            )
        self.restarts += 1
        state = "exited" if self._proc is None or self._proc.poll() is not None else "hangs"
        log.warning("CARLA server on port %d %s; restart %d of %d", self.port, state,
                    self.restarts, self.config.max_restarts)  # fmt: skip
        self.stop()
        self.start()
        return True

    def stop(self) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL after a grace time)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


class CarlaConnectionError(HarnessError):
    """No CARLA server answered at the given address, or it stopped answering."""
