"""The route runner's extension point: per-route observers built by factories the caller puts in
``RunConfig.route_observers`` (e.g. the closed-loop PDMS / EPDMS scoring of ``teachers``, which
the runner may not import). A factory is built once at the edge and must pickle, since routes
may run in worker processes; it is called once per route, in the process that runs it, with the
route's :class:`RouteContext`. The observer sees the episode like any other observer and, after
the episode (also a failed one), ``finish`` writes its outputs and returns the route's means,
which the runner stores in ``RouteResult.observer_metrics[observer.name]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute
from harness.routes.model import RouteConfig
from harness.runner.episode import Tick
from harness.world.state import WorldState


@dataclass(frozen=True, eq=False)
class RouteContext:
    """What a per-route observer may know about its route: the ``town``, the ``planned`` dense
    route, the ``route`` config, its ``save_name`` (stem of every per-route output file) and the
    run's ``out_dir``."""

    town: Town
    planned: PlannedRoute
    route: RouteConfig
    save_name: str
    out_dir: Path


class RouteObserver(Protocol):
    """An episode observer with a name and an end-of-route step."""

    @property
    def name(self) -> str:
        """Key of this observer's means in ``RouteResult.observer_metrics``."""
        ...

    def on_start(self, state: WorldState) -> None: ...

    def on_tick(self, tick: Tick) -> None: ...

    def finish(self) -> dict[str, float] | None:
        """After the episode: write the outputs, return the route's means (None: nothing to
        report, e.g. an episode too short to score)."""
        ...


class RouteObserverFactory(Protocol):
    """Builds one :class:`RouteObserver` per route (picklable: it travels to worker processes)."""

    def __call__(self, context: RouteContext) -> RouteObserver: ...
