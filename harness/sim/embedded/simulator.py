"""The embedded closed-loop simulator: the default backend, CPU only, deterministic.

One tick (0.05 s): lights are a pure function of time; the ego's control moves a kinematic
bicycle; background vehicles (IDM on the lane graph), pedestrians and scenario actors advance;
the tick's state is assembled into padded arrays (ego row 0), events are detected against the
previous tick, and the state is recorded when asked. Everything random comes from one seeded
generator per episode, so the same spec and controls give the same episode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness import __version__
from harness.dynamics.bicycle import BicycleState
from harness.dynamics.bicycle import step as bicycle_step
from harness.dynamics.control import VehicleControl, control_to_command
from harness.dynamics.vehicle import LINCOLN_MKZ_2017, WALKER, VehicleParams
from harness.errors import ConfigError
from harness.maps import load_town
from harness.maps.town import Town
from harness.sim.backend import ActorCommand, ActorSpec, EpisodeSpec
from harness.sim.embedded.lights import LightSchedule, LightTimings
from harness.sim.embedded.pedestrians import PedestrianModel
from harness.sim.embedded.scripted import ScriptedActors
from harness.sim.embedded.traffic import TrafficModel, TrafficParams
from harness.sim.events import EventConfig, EventDetector
from harness.sim.recording import EpisodeRecorder
from harness.sim.sensors.suite import SensorSuite
from harness.sim.state import SIM_DT_S, ActorArrays, ActorKind, ActorRole, WorldState

log = logging.getLogger(__name__)

TRAFFIC_FIRST_ID = 1_000  # background vehicle ids start here (respawns take fresh ids)
PEDESTRIAN_FIRST_ID = 1_000_000  # background pedestrian ids
SCENARIO_FIRST_ID = 2_000_000  # scenario actor ids


@dataclass(frozen=True)
class EmbeddedConfig:
    """Settings of the embedded simulator that do not change between episodes."""

    ego: VehicleParams = LINCOLN_MKZ_2017
    traffic: TrafficParams = field(default_factory=TrafficParams)
    lights: LightTimings = field(default_factory=LightTimings)
    events: EventConfig = field(default_factory=EventConfig)
    despawn_radius_m: float = 250.0  # background actors farther than this from the ego respawn [m]
    recycle_every_ticks: int = 20  # how often far actors are recycled [ticks]
    privileged_sensors: bool = False  # allow the BEV raster sensor (teachers, debugging)


@dataclass
class _Episode:
    """Everything that lives for one episode (rebuilt by every reset)."""

    spec: EpisodeSpec
    rng: np.random.Generator
    ego: BicycleState
    traffic: TrafficModel
    pedestrians: PedestrianModel
    scripted: ScriptedActors
    lights: LightSchedule
    detector: EventDetector
    sensors: SensorSuite
    recorder: EpisodeRecorder | None
    frame: int = 0
    state: WorldState | None = None


class EmbeddedSimulator:
    """Implements :class:`harness.sim.backend.SimulatorBackend` without a CARLA server."""

    def __init__(self, config: EmbeddedConfig | None = None) -> None:
        self.config = config or EmbeddedConfig()
        self._town: Town | None = None
        self._ep: _Episode | None = None

    # ------------------------------------------------------------------ protocol
    @property
    def town(self) -> Town:
        if self._town is None:
            raise ConfigError("no town loaded: call reset(EpisodeSpec(town=...)) first")
        return self._town

    def reset(self, spec: EpisodeSpec) -> WorldState:
        """Load the town (cached per process), place the ego at rest, spawn traffic."""
        town = load_town(spec.town)
        self._town = town
        rng = np.random.default_rng(spec.seed)
        x, y, _, yaw = spec.ego_start
        ego = BicycleState.at_rest(x, y, yaw)
        p = self.config.ego
        ego_box = np.array([[x, y, yaw, p.length_m, p.width_m]])
        near = np.array([[x, y]])
        if spec.route_xy is not None:  # along the route, as far as the recycling radius reaches
            r = np.asarray(spec.route_xy, dtype=np.float64).reshape(-1, 2)
            near = np.concatenate(
                [near, r[np.hypot(r[:, 0] - x, r[:, 1] - y) < self.config.despawn_radius_m]]
            )
        traffic = TrafficModel(town, self.config.traffic, _child(rng), first_id=TRAFFIC_FIRST_ID)
        traffic.spawn(spec.traffic.vehicles, near, spec.traffic.spawn_radius_m, ego_box)
        pedestrians = PedestrianModel(town, _child(rng), first_id=PEDESTRIAN_FIRST_ID)
        pedestrians.spawn(spec.traffic.pedestrians, near, spec.traffic.spawn_radius_m)
        sensors = SensorSuite.from_sensor_dicts(
            town,
            list(spec.sensors),
            privileged=self.config.privileged_sensors,
            route_xy=spec.route_xy,
            seed=spec.seed,
        )
        recorder = (
            EpisodeRecorder(
                {"town": spec.town, "seed": spec.seed, "ego_start": list(spec.ego_start),
                 "harness_version": __version__, "dt_s": SIM_DT_S}
            )
            if spec.record
            else None
        )  # fmt: skip
        self._ep = _Episode(
            spec=spec,
            rng=rng,
            ego=ego,
            traffic=traffic,
            pedestrians=pedestrians,
            scripted=ScriptedActors(first_id=SCENARIO_FIRST_ID),
            lights=LightSchedule(town.signals, self.config.lights),
            detector=EventDetector(town, spec.route_xy, self.config.events),
            sensors=sensors,
            recorder=recorder,
        )
        state = self._assemble(0)
        return self._commit(None, state)

    def tick(self, control: VehicleControl) -> WorldState:
        """Advance one 0.05 s tick with the ego's control and return the new state."""
        ep = self._episode()
        p = self.config.ego
        accel, steer = control_to_command(
            control.throttle, control.steer, control.brake, control.hand_brake, control.reverse,
            ep.ego.speed, p,
        )  # fmt: skip
        ep.ego = bicycle_step(ep.ego, accel, steer, p, SIM_DT_S, reverse=control.reverse)
        ep.frame += 1
        time_s = ep.frame * SIM_DT_S
        light_state, _ = ep.lights.states_at(time_s)
        ego_box = np.array(
            [[ep.ego.x, ep.ego.y, ep.ego.yaw, p.length_m, p.width_m]], dtype=np.float64
        )
        others = np.concatenate([ego_box, ep.scripted.boxes(), ep.pedestrians.boxes], axis=0)
        other_speed = np.concatenate(
            [np.atleast_1d(ep.ego.speed), ep.scripted.speed(), ep.pedestrians.speed]
        )
        ep.traffic.step(SIM_DT_S, others, other_speed, light_state)
        vehicles = np.concatenate([ego_box, ep.traffic.boxes, ep.scripted.boxes()], axis=0)
        ep.pedestrians.step(SIM_DT_S, vehicles)
        ep.scripted.step(SIM_DT_S)
        if ep.frame % self.config.recycle_every_ticks == 0:
            centre = np.array([float(ep.ego.x), float(ep.ego.y)])
            ep.traffic.recycle(centre, self.config.despawn_radius_m)
            ep.pedestrians.recycle(centre, self.config.despawn_radius_m)
        state = self._assemble(ep.frame)
        return self._commit(ep.state, state)

    def sensor_data(self) -> dict[str, tuple[int, Any]]:
        """The agent's declared sensors for the current tick (leaderboard input_data)."""
        ep = self._episode()
        assert ep.state is not None
        return ep.sensors.read(ep.state)

    def spawn_actor(self, spec: ActorSpec) -> int:
        return self._episode().scripted.spawn(spec)

    def command_actor(self, actor_id: int, command: ActorCommand) -> None:
        self._episode().scripted.command(actor_id, command)

    def destroy_actor(self, actor_id: int) -> None:
        self._episode().scripted.destroy(actor_id)

    def clear_area(self, center_xy: tuple[float, float], radius_m: float) -> int:
        """Re-place background vehicles and walkers found within radius_m of center_xy elsewhere
        around the ego (outside the circle); the state is re-assembled so the change is visible."""
        ep = self._episode()
        c = np.asarray(center_xy, dtype=np.float64)
        ego = np.array([float(ep.ego.x), float(ep.ego.y)])
        reach = max(self.config.despawn_radius_m, float(np.hypot(*(c - ego))) + radius_m + 50.0)
        moved = ep.traffic.evict(c, radius_m, ego, reach)
        moved += ep.pedestrians.evict(c, radius_m, ego, reach)
        if moved:
            ep.state = replace(self._assemble(ep.frame), events=ep.state.events if ep.state else ())
        return moved

    def close(self) -> None:
        self._ep = None

    # ------------------------------------------------------------------ extras
    @property
    def state(self) -> WorldState:
        """The current tick's state."""
        ep = self._episode()
        assert ep.state is not None
        return ep.state

    def write_recording(self, path: str | Path, extra_meta: dict[str, Any] | None = None) -> Path:
        """Write the episode recorded so far to one Parquet file (atomically)."""
        ep = self._episode()
        if ep.recorder is None:
            raise ConfigError("this episode was not recorded: reset with EpisodeSpec(record=True)")
        if extra_meta:
            ep.recorder.meta.update(extra_meta)
        return ep.recorder.write(path)

    # ------------------------------------------------------------------ internals
    def _episode(self) -> _Episode:
        if self._ep is None:
            raise ConfigError("no episode: call reset(EpisodeSpec(...)) before tick()")
        return self._ep

    def _commit(self, prev: WorldState | None, state: WorldState) -> WorldState:
        ep = self._episode()
        events = ep.detector.detect(prev, state)
        if events:
            state = replace(state, events=events)
        ep.state = state
        if ep.recorder is not None:
            ep.recorder.append(state)
        return state

    def _assemble(self, frame: int) -> WorldState:
        """Pack ego, traffic, pedestrians and scenario actors into one ActorArrays (ego row 0)."""
        ep = self._episode()
        p = self.config.ego
        e, t, w, s = ep.ego, ep.traffic, ep.pedestrians, ep.scripted
        nt, nw = t.n, w.n
        sa = s.arrays()
        ns = sa["x"].shape[0]

        def cat(
            ego_v: Any, traffic_v: Any, walker_v: Any, key: str, dtype: Any = np.float64
        ) -> NDArray[Any]:
            return np.concatenate([
                np.atleast_1d(np.asarray(ego_v, dtype=dtype)),
                np.broadcast_to(np.asarray(traffic_v, dtype=dtype), (nt,)),
                np.broadcast_to(np.asarray(walker_v, dtype=dtype), (nw,)),
                sa[key].astype(dtype, copy=False),
            ])  # fmt: skip

        actors = ActorArrays(
            actor_id=cat(0, t.ids, w.ids, "actor_id", np.int64),
            kind=cat(ActorKind.VEHICLE, ActorKind.VEHICLE, ActorKind.PEDESTRIAN, "kind", np.int8),
            role=cat(ActorRole.EGO, ActorRole.BACKGROUND, ActorRole.PEDESTRIAN, "role", np.int8),
            valid=np.ones(1 + nt + nw + ns, dtype=np.bool_),
            x=cat(e.x, t.x, w.x, "x"),
            y=cat(e.y, t.y, w.y, "y"),
            z=cat(0.0, 0.0, 0.0, "z"),
            yaw=cat(e.yaw, t.yaw, w.yaw, "yaw"),
            speed=cat(e.speed, t.speed, w.speed, "speed"),
            accel=cat(e.accel, t.accel, 0.0, "accel"),
            yaw_rate=cat(e.yaw_rate(p), t.yaw_rate, 0.0, "yaw_rate"),
            length=cat(p.length_m, t.length, WALKER.length_m, "length"),
            width=cat(p.width_m, t.width, WALKER.width_m, "width"),
            height=cat(p.height_m, t.height, WALKER.height_m, "height"),
        )
        light_state, elapsed = ep.lights.states_at(frame * SIM_DT_S)
        return WorldState(
            frame=frame, time_s=frame * SIM_DT_S, actors=actors,
            light_state=light_state, light_elapsed_s=elapsed,
        )  # fmt: skip


def _child(rng: np.random.Generator) -> np.random.Generator:
    """An independent generator derived from the episode's (keeps parts' streams separate)."""
    return np.random.default_rng(rng.integers(0, 2**63 - 1))
