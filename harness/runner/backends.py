"""The simulator backends the runner can build, by name: ``embedded`` (the default, CPU only)
and ``carla`` (a live CARLA 0.9.16 server, or one this run launches and supervises). A
:class:`BackendSpec` is a small frozen, picklable value, so worker processes build their own
backend from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from harness.errors import ConfigError
from harness.maps import load_town
from harness.maps.town import Town
from harness.sim.carla_convert import EGO_BLUEPRINT
from harness.world.backend import SimulatorBackend

DEFAULT_EGO_BLUEPRINT = EGO_BLUEPRINT  # vehicle.lincoln.mkz_2020, the leaderboard's hero


@dataclass(frozen=True)
class BackendSpec:
    """Which backend to build and how: ``name`` a key of :data:`BACKENDS`; ``host``, ``port``,
    ``tm_port`` and ``timeout_s`` address a CARLA server (ignored by the embedded backend);
    ``launch`` starts (and restarts) CarlaUE4.sh from ``carla_root`` (empty: $CARLA_ROOT) on
    GPU ``gpu`` for the run, on a free port when ``port`` is 0; ``ego_blueprint`` is the ego's
    CARLA blueprint."""

    name: str = "embedded"
    host: str = "localhost"
    port: int = 2000
    tm_port: int = 8000
    timeout_s: float = 60.0
    launch: bool = False
    carla_root: str = ""
    gpu: int | None = None
    ego_blueprint: str = DEFAULT_EGO_BLUEPRINT

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ConfigError(
                f"backend {self.name!r} is not available; choose one of {', '.join(BACKENDS)}"
            )
        if not self.timeout_s > 0:
            raise ConfigError(f"--carla-timeout must be > 0 s, got {self.timeout_s}")
        if self.launch and self.name != "carla":
            raise ConfigError("--carla-launch needs --backend carla")
        if self.port == self.tm_port or self.port + 1 == self.tm_port:
            raise ConfigError(
                f"the Traffic Manager port {self.tm_port} collides with the CARLA ports "
                f"{self.port}-{self.port + 1}: pick another --carla-tm-port"
            )


def _embedded(spec: BackendSpec, privileged: bool) -> SimulatorBackend:
    from harness.sim.embedded.simulator import EmbeddedConfig, EmbeddedSimulator

    return EmbeddedSimulator(EmbeddedConfig(privileged_sensors=privileged))


def _carla(spec: BackendSpec, privileged: bool) -> SimulatorBackend:
    from harness.sim.carla_backend import CarlaBackend

    return CarlaBackend(
        spec.host, spec.port, spec.tm_port, spec.timeout_s, ego_blueprint=spec.ego_blueprint,
        privileged=privileged,
    )  # fmt: skip


BACKENDS: dict[str, Callable[[BackendSpec, bool], SimulatorBackend]] = {
    "embedded": _embedded,
    "carla": _carla,
}
"""Backend name -> builder (spec, privileged agent) -> a fresh backend."""


def make_backend(spec: BackendSpec, privileged: bool = False) -> SimulatorBackend:
    """A fresh backend for one episode or route (privileged agents may declare the BEV)."""
    return BACKENDS[spec.name](spec, privileged)


def prepare_for_workers(spec: BackendSpec) -> None:
    """Work to do once in a parent before forking workers: the embedded backend compiles (or
    loads) its numba kernels so the workers never compile, or write numba's cache, at once."""
    if spec.name == "embedded":
        from harness.runner.warmup import warm_up_kernels

        warm_up_kernels()


def route_town(spec: BackendSpec, name: str) -> Town:
    """The town a route is planned and judged on: the local OpenDRIVE for the embedded backend,
    the server's own map (``get_map().to_opendrive()``) for ``carla``."""
    if spec.name != "carla":
        return load_town(name)
    import carla

    from harness.sim.carla_backend import load_server_town

    client = carla.Client(spec.host, spec.port)
    client.set_timeout(spec.timeout_s)
    return load_server_town(client, name, f"{spec.host}:{spec.port}")


@dataclass(frozen=True)
class ServerGuard:
    """What the evaluation asks of the simulator between routes: ``ensure()`` makes sure a
    supervised CARLA server is healthy (restarting it when it died or hangs; True when it did).
    The embedded backend and an external server need none."""

    restart_if_needed: Callable[[], bool] | None = None

    def ensure(self) -> bool:
        return self.restart_if_needed() if self.restart_if_needed is not None else False


def check_server(spec: BackendSpec) -> None:
    """Raise CarlaConnectionError (one line, exit 2) when no CARLA server answers at host:port."""
    from harness.sim.carla_server import CarlaConnectionError, carla_probe

    if not carla_probe(spec.host, spec.port, min(spec.timeout_s, 10.0)):
        raise CarlaConnectionError(
            f"no CARLA server answers at {spec.host}:{spec.port}: start CarlaUE4.sh "
            f"(-carla-rpc-port={spec.port}), pass --carla-host / --carla-port, use --carla-launch, "
            "or use --backend embedded"
        )


@contextmanager
def backend_session(spec: BackendSpec) -> Iterator[tuple[BackendSpec, ServerGuard]]:
    """The backend spec to run with and its server guard, for the length of a run: the embedded
    backend as it is; ``carla`` with ``launch``: a supervised server started here (its port in
    the spec) and stopped on every exit path; ``carla`` without: the server must answer now."""
    if spec.name != "carla":
        yield spec, ServerGuard()
        return
    if not spec.launch:
        check_server(spec)
        yield spec, ServerGuard()
        return
    from harness.sim.carla_server import CarlaServer, ServerConfig

    config = ServerConfig(
        carla_root=Path(spec.carla_root) if spec.carla_root else None,
        host=spec.host, port=0 if spec.port == 0 else spec.port, gpu=spec.gpu,
        skip_ports=(spec.tm_port,),
    )  # fmt: skip
    with CarlaServer(config) as server:
        yield replace(spec, port=server.port), ServerGuard(server.ensure)
