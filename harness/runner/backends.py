"""The simulator backends the runner can build, by name: ``embedded`` (the default, CPU only)
and ``carla`` (a live CARLA 0.9.16 server). A :class:`BackendSpec` is a small frozen, picklable
value, so worker processes build their own backend from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import ConfigError
from harness.world.backend import SimulatorBackend


@dataclass(frozen=True)
class BackendSpec:
    """Which backend to build and how: ``name`` a key of :data:`BACKENDS`; ``host``, ``port``,
    ``tm_port`` and ``timeout_s`` address a CARLA server (ignored by the embedded backend)."""

    name: str = "embedded"
    host: str = "localhost"
    port: int = 2000
    tm_port: int = 8000
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ConfigError(
                f"backend {self.name!r} is not available; choose one of {', '.join(BACKENDS)}"
            )


def _embedded(spec: BackendSpec, privileged: bool) -> SimulatorBackend:
    from harness.sim.embedded.simulator import EmbeddedConfig, EmbeddedSimulator

    return EmbeddedSimulator(EmbeddedConfig(privileged_sensors=privileged))


def _carla(spec: BackendSpec, privileged: bool) -> SimulatorBackend:
    from harness.sim.carla_backend import CarlaBackend

    return CarlaBackend(spec.host, spec.port, spec.tm_port, spec.timeout_s)


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
