"""``CarlaDataProvider``: where agent files find the world, the map and the hero actor.

The evaluator (the harness's AgentDriver, or ScenarioRunner's leaderboard) calls ``set_world``
before constructing the agent and ``cleanup`` after the route; agent files read it through the
static getters below. On the embedded backend the world is the harness's facade
(``harness.leaderboard.carla_world.CarlaWorld``), which answers with real ``carla`` value types;
on a CARLA server it can be a real ``carla.World``. Only the getters that agent files and the
leaderboard's base classes use are provided; ScenarioRunner's actor spawning and its per-tick
caches are not (the harness owns the actors)."""

from __future__ import annotations

import math
from typing import Any


class CarlaDataProvider:
    """Process-wide access to the current world (class attributes, as ScenarioRunner's)."""

    _world: Any = None
    _map: Any = None
    _client: Any = None
    _sync_flag = False
    _traffic_manager_port = 8000
    _random_seed = 2000
    _ego_vehicle_route: Any = None

    # ------------------------------------------------------------------ set by the evaluator
    @staticmethod
    def set_world(world: Any) -> None:
        """Use ``world`` (a carla.World or the harness's facade) until ``cleanup``."""
        CarlaDataProvider._world = world
        CarlaDataProvider._map = world.get_map()
        CarlaDataProvider._sync_flag = bool(world.get_settings().synchronous_mode)

    @staticmethod
    def set_client(client: Any) -> None:
        CarlaDataProvider._client = client

    @staticmethod
    def set_traffic_manager_port(port: int) -> None:
        CarlaDataProvider._traffic_manager_port = int(port)

    @staticmethod
    def set_random_seed(seed: int) -> None:
        CarlaDataProvider._random_seed = int(seed)

    @staticmethod
    def set_ego_vehicle_route(route: Any) -> None:
        """The dense route [(carla.Transform or Location, RoadOption)] the ego drives."""
        CarlaDataProvider._ego_vehicle_route = route

    @staticmethod
    def cleanup() -> None:
        """Forget the world, map, client and route (end of a route)."""
        CarlaDataProvider._world = None
        CarlaDataProvider._map = None
        CarlaDataProvider._client = None
        CarlaDataProvider._sync_flag = False
        CarlaDataProvider._ego_vehicle_route = None

    # ------------------------------------------------------------------ read by agents
    @staticmethod
    def get_world() -> Any:
        """The current world, None outside a route."""
        return CarlaDataProvider._world

    @staticmethod
    def get_map(world: Any = None) -> Any:
        """The current ``carla.Map`` (or ``world``'s when given)."""
        if world is not None:
            return world.get_map()
        if CarlaDataProvider._map is None and CarlaDataProvider._world is not None:
            CarlaDataProvider._map = CarlaDataProvider._world.get_map()
        return CarlaDataProvider._map

    @staticmethod
    def get_client() -> Any:
        """The carla.Client when the evaluator set one (None on the embedded backend)."""
        return CarlaDataProvider._client

    @staticmethod
    def is_sync_mode() -> bool:
        return CarlaDataProvider._sync_flag

    @staticmethod
    def get_traffic_manager_port() -> int:
        return CarlaDataProvider._traffic_manager_port

    @staticmethod
    def get_random_seed() -> int:
        return CarlaDataProvider._random_seed

    @staticmethod
    def get_ego_vehicle_route() -> Any:
        return CarlaDataProvider._ego_vehicle_route

    @staticmethod
    def get_all_actors() -> Any:
        """Every actor of the world (an ActorList: iterable, ``filter(pattern)``, ``find(id)``)."""
        world = CarlaDataProvider._world
        return [] if world is None else world.get_actors()

    @staticmethod
    def get_actors() -> list[tuple[int, Any]]:
        """(id, actor) pairs of every actor."""
        return [(a.id, a) for a in CarlaDataProvider.get_all_actors()]

    @staticmethod
    def get_actor_by_id(actor_id: int) -> Any:
        """The actor with ``actor_id``, None when there is none."""
        world = CarlaDataProvider._world
        return None if world is None else world.get_actors().find(actor_id)

    @staticmethod
    def get_hero_actor(rolename: str = "hero") -> Any:
        """The actor whose ``role_name`` attribute is ``rolename``, None when there is none."""
        for actor in CarlaDataProvider.get_all_actors():
            if actor.attributes.get("role_name") == rolename:
                return actor
        return None

    @staticmethod
    def get_location(actor: Any) -> Any:
        """The actor's current ``carla.Location``."""
        return actor.get_location()

    @staticmethod
    def get_transform(actor: Any) -> Any:
        """The actor's current ``carla.Transform``."""
        return actor.get_transform()

    @staticmethod
    def get_velocity(actor: Any) -> float:
        """The actor's horizontal speed [m/s] (ScenarioRunner returns the magnitude)."""
        v = actor.get_velocity()
        return math.hypot(v.x, v.y)
