"""The embedded closed-loop simulator: the default backend, CPU only, deterministic.

One tick (0.05 s): lights are a pure function of time; the ego's control moves a kinematic
bicycle; background vehicles (IDM on the lane graph), pedestrians and scenario actors advance;
the tick's state is assembled into padded arrays (ego row 0); contacts of the ego with the other
bodies and the layout stand-in are resolved (contacts.py: nothing interpenetrates the ego); events
are detected against the previous tick. Everything random comes from one seeded generator per episode, so the same spec
and controls give the same episode.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.bicycle import BicycleState
from harness.dynamics.bicycle import step as bicycle_step
from harness.dynamics.control import control_to_command
from harness.dynamics.vehicle import LINCOLN_MKZ_2017, WALKER, VehicleParams
from harness.errors import ConfigError
from harness.maps import load_town
from harness.maps.town import Town
from harness.sim.embedded.contacts import (
    CODE_OVERLAP,
    CONTACT_MARGIN_M,
    EGO_MASS_KG,
    LAYOUT_ID,
    NEAR_SLACK_M,
    VEHICLE_HIT_HOLD_S,
    WALKER_MASS_KG,
    LayoutBodies,
    box_corners,
    clear_fraction,
    contact_rows,
    interpolate_pose,
    overlaps_any,
    walker_landing,
)
from harness.sim.embedded.lights import LightOverrides, LightSchedule, LightTimings
from harness.sim.embedded.pedestrians import PedestrianModel
from harness.sim.embedded.scripted import ScriptedActors
from harness.sim.embedded.traffic import TrafficModel, TrafficParams
from harness.sim.events import EventConfig, EventDetector, near_rows
from harness.sim.sensors.suite import SensorSuite
from harness.world.backend import ActorCommand, ActorSpec, EpisodeSpec, TrafficVehicleSpec
from harness.world.control import VehicleControl
from harness.world.state import (
    EGO_INDEX,
    ActorArrays,
    ActorKind,
    ActorRole,
    LightState,
    WorldState,
)
from harness.world.timing import SIM_DT_S

log = logging.getLogger(__name__)

TRAFFIC_FIRST_ID = 1_000  # background vehicle ids start here (respawns take fresh ids)
PEDESTRIAN_FIRST_ID = 1_000_000  # background pedestrian ids
SCENARIO_FIRST_ID = 2_000_000  # scenario actor ids
WALKER_KNOCK_MPS = 0.5  # [m/s] an ego at least this fast knocks a walker down (else it stands)
FLOAT_FIELDS = (
    "x", "y", "z", "yaw", "speed", "accel", "yaw_rate", "length", "width", "height"
)  # fmt: skip  # float rows of the assembled ActorArrays, in recording order
F_X, F_Y, F_Z, F_YAW, F_SPEED, F_ACCEL, F_YAW_RATE, F_LENGTH, F_WIDTH, F_HEIGHT = range(10)


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
    collision_response: bool = True  # the ego cannot enter other bodies (False: events only)
    layout_bodies: bool = True  # the road surface's edge is a static body (contacts.LayoutBodies)


@dataclass(frozen=True, eq=False)
class _Layout:
    """Cached constant rows of the assembled state for one actor set (see _assemble): float rows
    (len(FLOAT_FIELDS), N) with the dims of the ego and walkers and zero z, and the id, kind, role
    and valid columns. ``key`` = (traffic n, walker n, scenario n, traffic and walker generations)."""

    key: tuple[int, ...]
    floats: NDArray[np.float64]
    actor_id: NDArray[np.int64]
    kind: NDArray[np.int8]
    role: NDArray[np.int8]
    valid: NDArray[np.bool_]


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
    overrides: LightOverrides
    detector: EventDetector
    sensors: SensorSuite
    frame: int = 0
    state: WorldState | None = None
    layout: _Layout | None = None
    lights_frame: int = -1
    lights_now: tuple[NDArray[np.int8], NDArray[np.float64]] | None = None
    layout_bodies: LayoutBodies | None = None
    contacts: frozenset[int] = frozenset()  # ids touching the ego after the last tick (LAYOUT_ID)


class EmbeddedSimulator:
    """Implements :class:`harness.world.backend.SimulatorBackend` without a CARLA server."""

    def __init__(self, config: EmbeddedConfig | None = None) -> None:
        self.config = config or EmbeddedConfig()
        self._town: Town | None = None
        self._ep: _Episode | None = None
        self._templates: dict[str, tuple[TrafficModel, PedestrianModel]] = {}
        self._layouts: dict[str, tuple[Town, LayoutBodies]] = {}

    # ------------------------------------------------------------------ protocol
    @property
    def town(self) -> Town:
        if self._town is None:
            raise ConfigError("no town loaded: call reset(EpisodeSpec(town=...)) first")
        return self._town

    def reset(self, spec: EpisodeSpec) -> WorldState:
        """Load the town (cached per process), place the ego (at rest unless the spec gives an
        initial speed), spawn traffic; the episode starts at ``spec.start_frame``."""
        town = load_town(spec.town)
        self._town = town
        rng = np.random.default_rng(spec.seed)
        x, y, _, yaw = spec.ego_start
        ego = BicycleState.at_rest(x, y, yaw)
        if spec.ego_speed_mps or spec.ego_accel_mps2:
            ego = replace(
                ego,
                speed=np.asarray(spec.ego_speed_mps, dtype=np.float64),
                accel=np.asarray(spec.ego_accel_mps2, dtype=np.float64),
            )
        p = self.config.ego
        ego_box = np.array([[x, y, yaw, p.length_m, p.width_m]])
        near = np.array([[x, y]])
        if spec.route_xy is not None:  # along the route, as far as the recycling radius reaches
            r = np.asarray(spec.route_xy, dtype=np.float64).reshape(-1, 2)
            near = np.concatenate(
                [near, r[np.hypot(r[:, 0] - x, r[:, 1] - y) < self.config.despawn_radius_m]]
            )
        traffic, pedestrians = self._fresh_models(town, rng)
        traffic.spawn(spec.traffic.vehicles, near, spec.traffic.spawn_radius_m, ego_box)
        pedestrians.spawn(spec.traffic.pedestrians, near, spec.traffic.spawn_radius_m)
        sensors = SensorSuite.from_sensor_dicts(
            town,
            list(spec.sensors),
            privileged=self.config.privileged_sensors,
            route_xy=spec.route_xy,
            seed=spec.seed,
        )
        self._ep = _Episode(
            spec=spec,
            rng=rng,
            ego=ego,
            traffic=traffic,
            pedestrians=pedestrians,
            scripted=ScriptedActors(first_id=SCENARIO_FIRST_ID),
            lights=LightSchedule(town.signals, self.config.lights),
            overrides=LightOverrides(len(town.signals.light_xy)),
            detector=EventDetector(town, spec.route_xy, self.config.events),
            sensors=sensors,
            layout_bodies=self._layout_bodies(town) if self.config.layout_bodies else None,
        )
        self._ep.frame = spec.start_frame
        state = self._assemble(spec.start_frame)
        return self._commit(None, state)

    def tick(self, control: VehicleControl) -> WorldState:
        """Advance one 0.05 s tick with the ego's control and return the new state."""
        ep = self._episode()
        p = self.config.ego
        pose0 = (float(ep.ego.x), float(ep.ego.y), float(ep.ego.yaw))
        accel, steer = control_to_command(
            control.throttle, control.steer, control.brake, control.hand_brake, control.reverse,
            ep.ego.speed, p,
        )  # fmt: skip
        ep.ego = bicycle_step(ep.ego, accel, steer, p, SIM_DT_S, reverse=control.reverse)
        ep.frame += 1
        light_state, _ = self._lights(ep, ep.frame)
        ego_box = np.array(
            [[ep.ego.x, ep.ego.y, ep.ego.yaw, p.length_m, p.width_m]], dtype=np.float64
        )
        scripted_boxes = ep.scripted.boxes()
        if ep.pedestrians.n or scripted_boxes.shape[0]:
            others = np.concatenate([ego_box, scripted_boxes, ep.pedestrians.boxes], axis=0)
            other_speed = np.concatenate(
                [np.atleast_1d(ep.ego.speed), ep.scripted.speed(), ep.pedestrians.speed]
            )
        else:  # the common case: the ego is the only obstacle
            others, other_speed = ego_box, np.array([float(ep.ego.speed)])
        ep.traffic.step(SIM_DT_S, others, other_speed, light_state)
        if ep.pedestrians.n:  # walkers read the vehicles only to decide on crossings
            vehicles = np.concatenate([ego_box, ep.traffic.boxes, scripted_boxes], axis=0)
            ep.pedestrians.step(SIM_DT_S, vehicles)
        if scripted_boxes.shape[0]:  # scenario actors that keep gaps see the ego and traffic
            ep.scripted.step(
                SIM_DT_S,
                np.concatenate([ego_box, ep.traffic.boxes], axis=0),
                np.concatenate([np.atleast_1d(ep.ego.speed), ep.traffic.speed]),
            )
        if ep.frame % self.config.recycle_every_ticks == 0:
            centre = np.array([float(ep.ego.x), float(ep.ego.y)])
            ep.traffic.recycle(centre, self.config.despawn_radius_m)
            ep.pedestrians.recycle(centre, self.config.despawn_radius_m)
        state = self._assemble(ep.frame)
        if not self.config.collision_response:
            return self._commit(ep.state, state)
        state, contacts = self._resolve_contacts(ep, pose0, state)
        return self._commit(ep.state, state, contacts)

    def sensor_data(self) -> dict[str, tuple[int, Any]]:
        """The agent's declared sensors for the current tick (leaderboard input_data)."""
        ep = self._episode()
        assert ep.state is not None
        return ep.sensors.read(ep.state)

    def spawn_actor(self, spec: ActorSpec) -> int:
        return self._episode().scripted.spawn(spec)

    def spawn_traffic_vehicle(self, spec: TrafficVehicleSpec) -> int:
        """Add an IDM background vehicle (visible from the next tick on); its lane sequence
        starts with ``spec.lane_plan`` (as far as the model's plan buffer reaches)."""
        traffic = self._episode().traffic
        vid = traffic.add_vehicle(spec.lane, spec.s_m, spec.speed_mps, spec.desired_speed_mps)
        row = traffic.n - 1
        plan = np.asarray(spec.lane_plan, dtype=np.int64)
        if plan.size > 1:  # follow the given lanes, then the model's own choice
            n = min(plan.size, traffic.seq.shape[1])
            traffic.seq[row] = -1
            traffic.seq[row, :n] = plan[:n]
            traffic.seq_off[row] = 0.0
            traffic.seq_off[row, 1:n] = np.cumsum(traffic.tables.length_m[plan[: n - 1]])
        traffic.length[row], traffic.width[row] = spec.length_m, spec.width_m
        return vid

    def command_actor(self, actor_id: int, command: ActorCommand) -> None:
        self._episode().scripted.command(actor_id, command)

    def destroy_actor(self, actor_id: int) -> None:
        self._episode().scripted.destroy(actor_id)

    def force_lights(
        self, lights: Sequence[int], state: LightState, duration_s: float | None = None
    ) -> None:
        """Hold lights (indices of town.signals) at ``state`` from the next tick on, for
        ``duration_s`` of simulation time or until released; then they resume their cycle."""
        ep = self._episode()
        idx = _light_indices(lights, ep.overrides.state.shape[0])
        ep.overrides.force(idx, state, ep.frame * SIM_DT_S, duration_s)
        ep.lights_frame = -1  # the next tick recomputes the lights

    def release_lights(self, lights: Sequence[int]) -> None:
        """End the holds of ``lights`` (from the next tick on)."""
        ep = self._episode()
        ep.overrides.release(_light_indices(lights, ep.overrides.state.shape[0]))
        ep.lights_frame = -1

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

    # ------------------------------------------------------------------ internals
    def _episode(self) -> _Episode:
        if self._ep is None:
            raise ConfigError("no episode: call reset(EpisodeSpec(...)) before tick()")
        return self._ep

    def _commit(
        self, prev: WorldState | None, state: WorldState, contacts: frozenset[int] | None = None
    ) -> WorldState:
        ep = self._episode()
        events = ep.detector.detect(prev, state, contacts)
        if events:
            state = replace(state, events=events)
        ep.state = state
        return state

    def _layout_bodies(self, town: Town) -> LayoutBodies:
        """The town's layout stand-in, built once per town (a few ms to tens of ms)."""
        hit = self._layouts.get(town.name)
        if hit is None or hit[0] is not town:
            hit = (town, LayoutBodies(town.area))
            self._layouts[town.name] = hit
        return hit[1]

    def _resolve_contacts(
        self, ep: _Episode, pose0: tuple[float, float, float], state: WorldState
    ) -> tuple[WorldState, frozenset[int]]:
        """Contacts of the ego after everything moved (``pose0`` = the ego's pose before its step):
        the ids touching the ego (LAYOUT_ID for the layout), and the state, re-assembled when a
        contact had to be resolved. Common case: one kernel call and one layout test."""
        a, p = state.actors, self.config.ego
        rows, code = contact_rows(
            a.x, a.y, a.yaw, a.length, a.width, a.valid, EGO_INDEX, CONTACT_MARGIN_M
        )
        pose1 = (float(ep.ego.x), float(ep.ego.y), float(ep.ego.yaw))
        moved = pose1 != pose0
        lay = ep.layout_bodies
        into_layout = (
            lay is not None and moved and lay.outside(box_corners(*pose1, p.length_m, p.width_m))
            and not lay.outside(box_corners(*pose0, p.length_m, p.width_m))
        )  # fmt: skip
        if not into_layout and not (code == CODE_OVERLAP).any():
            ids = set(a.actor_id[rows].tolist())
            if LAYOUT_ID in ep.contacts and not moved:  # resting against the layout
                ids.add(LAYOUT_ID)
            ep.contacts = frozenset(ids)
            return state, ep.contacts
        v_pre = float(ep.ego.speed)
        blocking, struck = self._push_out_others(
            ep, pose0, state, rows[code == CODE_OVERLAP], v_pre
        )
        t = clear_fraction(pose0, pose1, p.length_m, p.width_m, blocking, lay)
        ego = ep.ego
        if t < 1.0:
            x, y, yaw = interpolate_pose(pose0, pose1, t)
            ego = replace(
                ego, x=np.asarray(x), y=np.asarray(y), yaw=np.asarray(yaw),
                speed=np.asarray(0.0), accel=np.asarray(0.0),
            )  # fmt: skip
        elif (a.kind[rows] == ActorKind.PEDESTRIAN).any():  # only walkers hit: the ego goes on
            ratio = EGO_MASS_KG / (EGO_MASS_KG + WALKER_MASS_KG)
            ego = replace(ego, speed=np.asarray(float(ego.speed) * ratio))
        ep.ego = ego
        state = self._assemble(ep.frame)
        a = state.actors
        rows, _ = contact_rows(
            a.x, a.y, a.yaw, a.length, a.width, a.valid, EGO_INDEX, CONTACT_MARGIN_M
        )
        ids = set(a.actor_id[rows].tolist()) | struck
        if lay is not None and lay.outside(
            box_corners(
                float(ego.x), float(ego.y), float(ego.yaw),
                p.length_m + 2.0 * CONTACT_MARGIN_M, p.width_m + 2.0 * CONTACT_MARGIN_M,
            )
        ):  # fmt: skip
            ids.add(LAYOUT_ID)
        contacts = frozenset(ids)
        if contacts - ep.contacts:  # an impact: the tick reports the speed the ego hit with
            a.speed[EGO_INDEX] = v_pre
        ep.contacts = contacts
        return state, contacts

    def _push_out_others(
        self, ep: _Episode, pose0: tuple[float, float, float], state: WorldState,
        overlapping: NDArray[np.int64], ego_speed: float,
    ) -> tuple[NDArray[np.float64], frozenset[int]]:  # fmt: skip
        """Resolve the other side of the contacts with the rows ``overlapping`` the ego's new box:
        a vehicle that moved into the ego's old box is moved back to where it touched it (and
        counts as a contact: it hit the ego), a walker back to where it was; a hit walker falls
        beside the ego; newly hit vehicles stop and are held; a body overlapping the ego's old box even
        so (spawned onto it) neither blocks nor is held, so the ego can leave it. Returns the boxes
        (K, 5) the ego's step must stay clear of (the other non-walker bodies near the ego) and the ids
        of the vehicles that drove into the ego."""
        a, p, prev = state.actors, self.config.ego, ep.state
        t, w = ep.traffic, ep.pedestrians
        nt, nw = t.n, w.n
        box0 = np.array([*pose0, p.length_m, p.width_m])
        ego1 = (float(ep.ego.x), float(ep.ego.y), float(ep.ego.yaw), p.length_m, p.width_m)
        near = near_rows(a.x, a.y, a.length, a.width, a.valid, EGO_INDEX, NEAR_SLACK_M)
        boxes = a.boxes
        ghosts: list[int] = []
        struck: set[int] = set()  # vehicles that drove into the ego (stopped touching it)
        for r in overlapping.tolist():
            aid, kind = int(a.actor_id[r]), int(a.kind[r])
            walker = kind == ActorKind.PEDESTRIAN
            intruder = overlaps_any(box0, boxes[r : r + 1])
            if intruder:  # it moved into the ego: undo its step, unless it overlapped before
                before = _previous_pose(prev, aid)
                if before is None:  # spawned onto the ego: no step to undo; the ego may drive
                    ghosts.append(r)  # out of it (no hold)
                    continue
                qx, qy, qyaw = before
                if overlaps_any(box0, np.array([[qx, qy, qyaw, a.length[r], a.width[r]]])):
                    ghosts.append(r)  # overlapped the ego already (spawned onto it): as above
                    continue
                step_m = float(np.hypot(boxes[r, 0] - qx, boxes[r, 1] - qy))
                if 1 <= r <= nt:
                    # a vehicle stops where it touched the ego (not a step short of it): the
                    # contact is a collision, as a car driving into the ego is in CARLA
                    keep = clear_fraction(
                        (qx, qy, qyaw), (float(a.x[r]), float(a.y[r]), float(a.yaw[r])),
                        float(a.length[r]), float(a.width[r]), box0[None, :], None,
                    )  # fmt: skip
                    t.move_back(r - 1, (1.0 - keep) * step_m)
                    boxes[r, :3] = (t.x[r - 1], t.y[r - 1], t.yaw[r - 1])
                    struck.add(aid)
                elif r <= nt + nw:
                    w.put_back(r - 1 - nt, qx, qy, qyaw, SIM_DT_S)
                    boxes[r, :3] = (qx, qy, qyaw)
                else:
                    keep = clear_fraction(
                        (qx, qy, qyaw), (float(a.x[r]), float(a.y[r]), float(a.yaw[r])),
                        float(a.length[r]), float(a.width[r]), box0[None, :], None,
                    )  # fmt: skip
                    x, y, yaw = interpolate_pose((qx, qy, qyaw), tuple(boxes[r, :3]), keep)
                    ep.scripted.place(aid, x, y, yaw, (1.0 - keep) * step_m)
                    boxes[r, :3] = (x, y, yaw)
                    if kind != ActorKind.PEDESTRIAN:
                        struck.add(aid)
            if (
                walker
                and (not intruder or abs(ego_speed) > WALKER_KNOCK_MPS)
                and overlaps_any(np.array(ego1), boxes[r : r + 1])
            ):  # the ego ran into it: it falls beside the ego
                x, y, yaw = walker_landing(
                    ego1, float(boxes[r, 0]), float(boxes[r, 1]), float(a.width[r])
                )
                boxes[r, :3] = (x, y, yaw)
                if r <= nt + nw:
                    w.knock_down(r - 1 - nt, x, y, yaw)
                else:
                    ep.scripted.place(aid, x, y, yaw)
                    ep.scripted.hit(aid, VEHICLE_HIT_HOLD_S)
            elif not walker and aid not in ep.contacts:  # a new hit (pressing on does not re-arm)
                if 1 <= r <= nt:
                    t.hold(r - 1, VEHICLE_HIT_HOLD_S)
                elif r > nt + nw:
                    ep.scripted.hit(aid, VEHICLE_HIT_HOLD_S)
        solid = near[(a.kind[near] != ActorKind.PEDESTRIAN) & ~np.isin(near, ghosts)]
        return boxes[solid], frozenset(struck)

    def _fresh_models(
        self, town: Town, rng: np.random.Generator
    ) -> tuple[TrafficModel, PedestrianModel]:
        """Empty traffic and pedestrian models for a new episode. Their static tables (lane
        tables, sidewalk paths, KD-trees) take ~0.35 s each to build on a CARLA town, so a pristine
        pair is built once per town and deep-copied (sharing only the town, ~5 ms) at every reset;
        the copies get the episode's child generators in the order fresh models got them."""
        tpl = self._templates.get(town.name)
        if tpl is None or tpl[0].town is not town:
            unused = np.random.default_rng(0)  # replaced in every copy
            tpl = (
                TrafficModel(town, self.config.traffic, unused, first_id=TRAFFIC_FIRST_ID),
                PedestrianModel(town, unused, first_id=PEDESTRIAN_FIRST_ID),
            )
            self._templates[town.name] = tpl
        traffic = copy.deepcopy(tpl[0], {id(town): town})
        traffic.rng = _child(rng)
        pedestrians = copy.deepcopy(tpl[1], {id(town): town})
        pedestrians.rng = _child(rng)
        return traffic, pedestrians

    def _lights(self, ep: _Episode, frame: int) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
        """Light states and elapsed times of a frame, computed once per frame (a pure function of
        time; the tick and the assembled state both read them)."""
        if ep.lights_frame != frame or ep.lights_now is None:
            ep.lights_now = ep.lights.states_at(frame * SIM_DT_S)
            if ep.overrides.any:
                ep.lights_now = ep.overrides.apply(frame * SIM_DT_S, *ep.lights_now)
            ep.lights_frame = frame
        return ep.lights_now

    def _layout(self, ep: _Episode, ns: int) -> _Layout:
        """The per-episode constant part of the assembled arrays; rebuilt only when the actor set
        changes (spawns, respawns, recycling, scenario actors)."""
        t, w = ep.traffic, ep.pedestrians
        key = (t.n, w.n, ns, t.generation, w.generation)
        lay = ep.layout
        if lay is not None and lay.key == key:
            return lay
        p = self.config.ego
        nt, nw = t.n, w.n
        n = 1 + nt + nw + ns
        floats = np.zeros((len(FLOAT_FIELDS), n))
        floats[[F_LENGTH, F_WIDTH, F_HEIGHT], 0] = (p.length_m, p.width_m, p.height_m)
        wk = slice(1 + nt, 1 + nt + nw)
        floats[F_LENGTH, wk], floats[F_WIDTH, wk] = WALKER.length_m, WALKER.width_m
        floats[F_HEIGHT, wk] = w.height  # WALKER's, lower for a walker knocked down
        ids = np.concatenate([[0], t.ids, w.ids, np.zeros(ns)]).astype(np.int64)
        kind = np.full(n, int(ActorKind.VEHICLE), dtype=np.int8)
        kind[wk] = int(ActorKind.PEDESTRIAN)
        role = np.full(n, int(ActorRole.BACKGROUND), dtype=np.int8)
        role[0], role[wk] = int(ActorRole.EGO), int(ActorRole.PEDESTRIAN)
        ep.layout = _Layout(key, floats, ids, kind, role, np.ones(n, dtype=np.bool_))
        return ep.layout

    def _assemble(self, frame: int) -> WorldState:
        """Pack ego, traffic, pedestrians and scenario actors into one ActorArrays (ego row 0).

        Every tick gets fresh arrays (consumers keep earlier states), filled by slices into a copy
        of the cached per-episode layout: a few dozen small copies instead of per-field concatenates.
        """
        ep = self._episode()
        p = self.config.ego
        e, t, w = ep.ego, ep.traffic, ep.pedestrians
        nt, nw = t.n, w.n
        sa = ep.scripted.arrays()
        ns = int(sa["x"].shape[0])
        lay = self._layout(ep, ns)
        f = lay.floats.copy()
        actor_id, kind, role = lay.actor_id.copy(), lay.kind.copy(), lay.role.copy()
        f[[F_X, F_Y, F_YAW, F_SPEED, F_ACCEL, F_YAW_RATE], 0] = (
            float(e.x), float(e.y), float(e.yaw), float(e.speed), float(e.accel),
            float(e.yaw_rate(p)),
        )  # fmt: skip
        tr = slice(1, 1 + nt)
        f[F_X, tr], f[F_Y, tr], f[F_YAW, tr] = t.x, t.y, t.yaw
        f[F_SPEED, tr], f[F_ACCEL, tr], f[F_YAW_RATE, tr] = t.speed, t.accel, t.yaw_rate
        f[F_LENGTH, tr], f[F_WIDTH, tr], f[F_HEIGHT, tr] = t.length, t.width, t.height
        if nw:
            wk = slice(1 + nt, 1 + nt + nw)
            f[F_X, wk], f[F_Y, wk], f[F_YAW, wk], f[F_SPEED, wk] = w.x, w.y, w.yaw, w.speed
        if ns:
            sc = slice(1 + nt + nw, None)
            for k, name in enumerate(FLOAT_FIELDS):
                f[k, sc] = sa[name]
            actor_id[sc], kind[sc], role[sc] = sa["actor_id"], sa["kind"], sa["role"]
        actors = ActorArrays(
            actor_id=actor_id, kind=kind, role=role, valid=lay.valid.copy(),
            x=f[F_X], y=f[F_Y], z=f[F_Z], yaw=f[F_YAW], speed=f[F_SPEED], accel=f[F_ACCEL],
            yaw_rate=f[F_YAW_RATE], length=f[F_LENGTH], width=f[F_WIDTH], height=f[F_HEIGHT],
        )  # fmt: skip
        light_state, elapsed = self._lights(ep, frame)
        return WorldState(
            frame=frame, time_s=frame * SIM_DT_S, actors=actors,
            light_state=light_state, light_elapsed_s=elapsed,
        )  # fmt: skip


def _light_indices(lights: Sequence[int], n_lights: int) -> NDArray[np.int64]:
    """Light indices as an array, checked against the town's light count."""
    idx = np.asarray(list(lights), dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= n_lights):
        raise ConfigError(f"light indices {idx.tolist()} outside the town's {n_lights} lights")
    return idx


def _previous_pose(prev: WorldState | None, actor_id: int) -> tuple[float, float, float] | None:
    """(x, y, yaw) of an actor in the previous tick's state; None when it was not there."""
    if prev is None:
        return None
    a = prev.actors
    q = np.flatnonzero(a.valid & (a.actor_id == actor_id))
    if not q.size:
        return None
    return float(a.x[q[0]]), float(a.y[q[0]]), float(a.yaw[q[0]])


def _child(rng: np.random.Generator) -> np.random.Generator:
    """An independent generator derived from the episode's (keeps parts' streams separate)."""
    return np.random.default_rng(rng.integers(0, 2**63 - 1))
