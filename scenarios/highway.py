"""Highway and interurban scenarios (Bench2Drive's ScenarioRunner: highway_cut_in.py,
actor_flow.py, sequentially_lane_change.py).

- HighwayCutIn: a car on an entry ramp, placed at ``other_actor_location`` at the trigger, syncs
  its arrival 10 m past the merge with the ego's arrival at its own junction exit, then cuts into
  the lane on its left at 80 % of the ego's speed (0.3 s / 2 s / 3 s same lane / change / other
  lane) and is removed. The scenario ends with the cut-in (no timeout, as the source).
- HighwayExit, MergerIntoSlowTraffic: a flow filled along its path (``initial_actors``) from
  ``start_actor_flow`` to ``end_actor_flow``; the ego must cut into it to take an exit (ends when
  the ego leaves the flow path's first junction) or merge into it from a ramp (ends when the ego
  is within 2 m of the sink point of any same-direction lane).
- InterurbanActorFlow: a flow growing from its source that the ego crosses while turning; ends
  when the ego leaves the first junction it enters after the trigger.
- InterurbanAdvancedActorFlow: two flows, the second on the lanes left of the first's sink and
  source (the opposite way); ends when the ego is ahead of the second sink, within 10 m.
- SequentialLaneChange: no actors; ends when the ego has driven 200 m after the trigger.

Every type but HighwayCutIn has ScenarioRunner's 240 s ScenarioTimeout. Left / right lanes are
CARLA's ``get_left_lane`` / ``get_right_lane``: the adjacent OpenDRIVE driving lane, whatever
the lane change marking allows."""

from __future__ import annotations

import logging

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy, Status
from py_trees.composites import Parallel, Sequence

from harness.errors import ConfigError
from harness.maps.town import Town
from harness.routes.model import ScenarioConfig
from harness.world.backend import ActorCommand, ActorSpec
from harness.world.state import ActorKind
from scenarios.basic import SCENARIO_TIMEOUT_S, BasicScenario
from scenarios.behaviours import (
    ActorPool,
    CutIn,
    DriveDistance,
    Idle,
    InTriggerDistanceToLocation,
    ScenarioBehaviour,
    actor_row,
)
from scenarios.context import ScenarioContext
from scenarios.flows import _Flow
from scenarios.placement import (
    Path,
    lane_forward,
    lane_route,
    lane_s,
    path_s,
    straight_successor,
)
from scenarios.traffic_behaviours import CAR_LENGTH_M, CAR_WIDTH_M, ActorFlow

log = logging.getLogger(__name__)

FLOW_SINK_DISTANCE_M = 2.0  # [m] _sink_distance: flow cars / the ego this close to a sink
CUT_IN_DISTANCE_M = 10.0  # [m] _cut_in_distance: the cutter's target past its junction exit
CUT_IN_SPEED_PERC = 80.0  # [%] _speed_perc: the cut-in speed, of the ego's speed
CUT_IN_SAME_LANE_S = 0.3  # [s] _same_lane_time (x the cutter's speed: metres before the move)
CUT_IN_CHANGE_S = 2.0  # [s] _change_time (x its speed: length of the lane change)
CUT_IN_OTHER_LANE_S = 3.0  # [s] _other_lane_time (x its speed: metres in the new lane)
CUT_IN_ACCEL_MPS2 = 3.0  # [m/s2] the cutter's speed change towards the cut-in speed
SYNC_END_M = 5.0  # [m] SyncArrivalWithAgent's end_dist in HighwayCutIn
SYNC_ACCEL_MPS2 = 1000.0  # [m/s2] a ConstantVelocityAgent takes its target speed at once
SYNC_RECOMMAND_MPS = 0.1  # [m/s] re-command the syncing car when its speed changes by this
IN_FRONT_DISTANCE_M = 10.0  # [m] WaitUntilInFrontPosition's default distance
SEQUENTIAL_DRIVE_M = 200.0  # [m] SequentialLaneChange ends after the ego drove this far
JUNCTION_WALK_LANES = 64  # [-] give up looking for a junction exit after this many lanes
PATH_TAIL_M = 80.0  # [m] lane path kept beyond a scripted car's target


# ---------------------------------------------------------------------- lane helpers
def side_lane(town: Town, lane: int, side: str) -> int:
    """CARLA's ``get_left_lane`` / ``get_right_lane``: the adjacent driving lane on ``side`` of
    the driver (across the centre line to the opposite direction on the left), -1 when none."""
    lanes = town.lanes
    lid = int(lanes.lane_id[lane])
    towards_centre = 1 if lid < 0 else -1  # the driver's left, in OpenDRIVE lane ids
    step = towards_centre if side == "left" else -towards_centre
    nid = lid + step
    if nid == 0:
        nid = step
    out = int(lanes.lookup(int(lanes.road_id[lane]), int(lanes.section_id[lane]), nid))
    if out < 0 and side == "left":
        # a two-way street written as one road per direction (Osm2Odr towns): the oncoming lane
        # alongside, as the lane graph's left_opposite finds it
        out = int(town.graph.left_opposite[lane])
    return out


def same_direction_lanes(town: Town, lane: int) -> list[int]:
    """ScenarioRunner's get_same_dir_lanes: ``lane`` and its same-direction neighbours."""
    sign = np.sign(town.lanes.lane_id[lane])
    out = [lane]
    for side in ("left", "right"):
        cur = lane
        while True:
            nxt = side_lane(town, cur, side)
            if nxt < 0 or np.sign(town.lanes.lane_id[nxt]) != sign or nxt in out:
                break
            out.append(nxt)
            cur = nxt
    return out


def junction_exit_lane(town: Town, lane: int) -> int:
    """ScenarioRunner's generate_target_waypoint (turn 0): from ``lane`` straight on through the
    next junction; the first lane after it (-1: no junction ahead)."""
    jid = town.lanes.junction_id
    inside = bool(jid[lane] >= 0)
    cur = lane
    for _ in range(JUNCTION_WALK_LANES):
        nxt = straight_successor(town, cur)
        if nxt < 0:
            return -1
        if jid[nxt] >= 0:
            inside = True
        elif inside:
            return nxt
        cur = nxt
    return -1


def nearest_lane(town: Town, xy: np.ndarray) -> tuple[int, float]:
    """(lane, s [m]) of the driving lane nearest xy (CARLA's map.get_waypoint)."""
    proj = town.lanes.project(np.asarray(xy, dtype=np.float64)[None, :2])
    return int(proj.lane[0]), float(proj.s_m[0])


def first_junction_on(town: Town, path: Path) -> int | None:
    """Junction id of the first junction lane a path runs on, None when it crosses none."""
    if len(path) == 0:
        return None
    jid = town.lanes.junction_id[town.lanes.project(path).lane]
    inside = np.flatnonzero(jid >= 0)
    return int(jid[inside[0]]) if inside.size else None


def path_from(path: Path, xy: np.ndarray) -> Path:
    """The rest of ``path`` from the point nearest xy on, starting at xy itself (so a new
    command does not move a car back to the nearest path sample)."""
    k = int(np.argmin(np.hypot(path[:, 0] - xy[0], path[:, 1] - xy[1])))
    return np.concatenate([np.asarray(xy, dtype=np.float64)[None, :2], path[k + 1 :]])


# ---------------------------------------------------------------------- behaviours
class WaitEndIntersection(ScenarioBehaviour):
    """ScenarioRunner's WaitEndIntersection: SUCCESS once the ego, having entered a junction
    (junction ``junction_id``; any junction when None), is on a lane outside it again; its lane
    is the driving lane nearest its centre, as ``map.get_waypoint``."""

    def __init__(self, ctx: ScenarioContext, junction_id: int | None = None) -> None:
        super().__init__(ctx, "WaitEndIntersection")
        self.junction_id = junction_id
        self.inside = False

    def update(self) -> Status:
        a = self.ctx.state.actors
        lane, _ = nearest_lane(self.ctx.town, np.array([a.x[0], a.y[0]]))
        jid = int(self.ctx.town.lanes.junction_id[lane])
        if not self.inside:
            if jid >= 0 and (self.junction_id is None or jid == self.junction_id):
                self.inside = True
            return Status.RUNNING
        return Status.SUCCESS if jid < 0 else Status.RUNNING


class WaitUntilInFront(ScenarioBehaviour):
    """ScenarioRunner's WaitUntilInFrontPosition for the ego: SUCCESS once the ego's centre lies
    ahead of the pose (``xy``, ``yaw_rad``) and within ``distance_m`` of it."""

    def __init__(
        self, ctx: ScenarioContext, xy: np.ndarray, yaw_rad: float, distance_m: float
    ) -> None:
        super().__init__(ctx, "WaitUntilInFrontPosition")
        self.xy, self.yaw, self.distance_m = np.asarray(xy, dtype=np.float64), yaw_rad, distance_m

    def update(self) -> Status:
        a = self.ctx.state.actors
        rel = np.array([a.x[0], a.y[0]]) - self.xy
        ahead = float(np.cos(self.yaw) * rel[0] + np.sin(self.yaw) * rel[1]) > 0.0
        close = float(np.hypot(*rel)) < self.distance_m
        return Status.SUCCESS if ahead and close else Status.RUNNING


class SpawnCar(ScenarioBehaviour):
    """Spawn a car at a pose when ticked (ScenarioRunner's ActorTransformSetter bringing a car
    kept below ground to its place); SUCCESS, the pool owns it (``actor_id``)."""

    def __init__(
        self, ctx: ScenarioContext, pool: ActorPool, xy: np.ndarray, yaw_rad: float
    ) -> None:
        super().__init__(ctx, "ActorTransformSetter")
        self.pool, self.xy, self.yaw = pool, np.asarray(xy, dtype=np.float64), yaw_rad
        self.actor_id: int | None = None

    def update(self) -> Status:
        if self.actor_id is None:
            self.actor_id = self.pool.spawn(
                ActorSpec(ActorKind.VEHICLE, float(self.xy[0]), float(self.xy[1]), self.yaw,
                          CAR_LENGTH_M, CAR_WIDTH_M)
            )  # fmt: skip
        return Status.SUCCESS


class SyncArrivalWithEgo(ScenarioBehaviour):
    """ScenarioRunner's SyncArrivalWithAgent: every tick the car's speed is set (at once, a
    ConstantVelocityAgent) to its straight-line distance to ``target_xy`` over the ego's time to
    reach ``ego_target_xy`` at its current speed (0 while the ego stands), driving ``path``.
    SUCCESS once the car is within ``end_m`` of its target while the ego has not yet passed its
    own (the ego target ahead along ``ego_target_yaw``)."""

    def __init__(
        self,
        ctx: ScenarioContext,
        spawn: SpawnCar,
        path: Path,
        target_xy: np.ndarray,
        ego_target_xy: np.ndarray,
        ego_target_yaw: float,
        end_m: float,
    ) -> None:
        super().__init__(ctx, "SyncArrivalWithAgent")
        self.spawn, self.path = spawn, path
        self.target, self.ego_target = np.asarray(target_xy), np.asarray(ego_target_xy)
        self.ego_fwd = np.array([np.cos(ego_target_yaw), np.sin(ego_target_yaw)])
        self.end_m = end_m
        self._commanded: float | None = None

    def update(self) -> Status:
        aid = self.spawn.actor_id
        r = None if aid is None else actor_row(self.ctx, aid)
        if aid is None or r is None:
            return Status.RUNNING
        a = self.ctx.state.actors
        ego = np.array([a.x[0], a.y[0]])
        d = float(np.hypot(a.x[r] - self.target[0], a.y[r] - self.target[1]))
        if d < self.end_m and float(np.dot(self.ego_target - ego, self.ego_fwd)) > 0.0:
            return Status.SUCCESS
        v_ego = float(a.speed[0])
        d_ego = float(np.hypot(*(self.ego_target - ego)))
        speed = d * v_ego / d_ego if v_ego > 0.0 and d_ego > 0.0 else 0.0
        if self._commanded is None or abs(speed - self._commanded) > SYNC_RECOMMAND_MPS:
            self._commanded = speed
            rest = path_from(self.path, np.array([a.x[r], a.y[r]]))
            self.ctx.backend.command_actor(
                aid, ActorCommand(rest, speed, SYNC_ACCEL_MPS2, SYNC_ACCEL_MPS2, False)
            )
        return Status.RUNNING


class LaneChangeCutIn(CutIn):
    """ScenarioRunner's CutIn (BasicAgent.lane_change): at start the car takes ``speed_perc`` % of
    the ego's speed and changes into the lane on its ``side``, the three parts' lengths being
    their times x its own speed then (at least 0.1 m each); SUCCESS at the end of the last."""

    def __init__(
        self,
        ctx: ScenarioContext,
        spawn: SpawnCar,
        side: str,
        speed_perc: float,
        same_lane_s: float,
        change_s: float,
        other_lane_s: float,
    ) -> None:
        super().__init__(ctx, -1, np.zeros((0, 2)), 0.0, 0.0, 0.0, CUT_IN_ACCEL_MPS2, "CutIn")
        self.spawn, self.side, self.speed_perc = spawn, side, speed_perc
        self.times = (same_lane_s, change_s, other_lane_s)
        self.other_m = 0.0

    def initialise(self) -> None:
        self.actor_id = -1 if self.spawn.actor_id is None else self.spawn.actor_id
        r = actor_row(self.ctx, self.actor_id)
        if r is None:
            return
        a, town = self.ctx.state.actors, self.ctx.town
        xy = np.array([a.x[r], a.y[r]])
        own = float(a.speed[r])
        self.speed = float(a.speed[0]) * self.speed_perc / 100.0
        self.hold_m, self.blend_m, self.other_m = (max(t * own, 0.1) for t in self.times)
        lane, _ = nearest_lane(town, xy)
        target = side_lane(town, lane, self.side)
        if target < 0:
            log.warning("CutIn: no lane on the %s of the cutter; it keeps its lane", self.side)
            target = lane
        length = self.hold_m + self.blend_m + self.other_m + PATH_TAIL_M
        self.target = lane_forward(town, target, lane_s(town, target, xy), length)
        super().initialise()

    def update(self) -> Status:
        r = actor_row(self.ctx, self.actor_id)
        if r is None or len(self.path) < 2:
            return Status.SUCCESS
        a = self.ctx.state.actors
        k = int(np.argmin(np.hypot(self.path[:, 0] - a.x[r], self.path[:, 1] - a.y[r])))
        done = path_s(self.path)[k] >= self.hold_m + self.blend_m + self.other_m
        return Status.SUCCESS if done else Status.RUNNING


class DestroySpawned(ScenarioBehaviour):
    """ActorDestroy of a car spawned by a SpawnCar; SUCCESS."""

    def __init__(self, ctx: ScenarioContext, pool: ActorPool, spawn: SpawnCar) -> None:
        super().__init__(ctx, "ActorDestroy")
        self.pool, self.spawn = pool, spawn

    def update(self) -> Status:
        if self.spawn.actor_id is not None:
            self.pool.destroy(self.spawn.actor_id)
        return Status.SUCCESS


# ---------------------------------------------------------------------- scenarios
class HighwayCutIn(BasicScenario):
    """ScenarioRunner's HighwayCutIn: at the trigger a car appears at ``other_actor_location``
    (its nearest lane, typically an entry ramp); it drives on through the junction ahead,
    synchronising its arrival CUT_IN_DISTANCE_M past the junction exit with the ego's arrival
    at the exit of its own lane through the junction (SyncArrivalWithAgent, within SYNC_END_M),
    then cuts into the lane on its left (CutIn) and is removed; that ends the scenario (the
    source has no timeout and no other end condition)."""

    timeout_s = None

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        loc = self.param_location("other_actor_location")
        if loc is None:
            raise ConfigError(
                f"scenario {config.name} (HighwayCutIn) needs other_actor_location; fix the route file"
            )
        town = ctx.town
        lane, s = nearest_lane(town, loc)
        xy, yaw = town.lanes.position(lane, s)
        self.start_xy, self.start_yaw = np.asarray(xy, dtype=np.float64), float(yaw)
        exit_lane = junction_exit_lane(town, lane)
        if exit_lane < 0:
            raise ConfigError(
                f"scenario {config.name} (HighwayCutIn): no junction ahead of other_actor_location; fix the route file"
            )
        self.target_xy = np.asarray(town.lanes.position(exit_lane, CUT_IN_DISTANCE_M)[0])
        ego_lane = int(ctx.planned.lane[self.trigger_index])
        ego_exit = junction_exit_lane(town, ego_lane)
        if ego_exit < 0:
            raise ConfigError(
                f"scenario {config.name} (HighwayCutIn): no junction ahead of the trigger; fix the route file"
            )
        ego_xy, ego_yaw = town.lanes.position(ego_exit, 0.0)
        self.ego_target_xy, self.ego_target_yaw = np.asarray(ego_xy), float(ego_yaw)
        to_target = lane_route(town, self.start_xy, self.target_xy)
        tail = lane_forward(town, exit_lane, CUT_IN_DISTANCE_M, PATH_TAIL_M)
        self.path: Path = np.concatenate([to_target, tail[1:]])

    def setup_actors(self) -> None:
        self.clear(self.start_xy, 15.0)

    def behaviour(self) -> Behaviour:
        return Idle(self.ctx)

    def end_condition(self) -> Behaviour:
        self.spawn = SpawnCar(self.ctx, self.pool, self.start_xy, self.start_yaw)
        self.sync = SyncArrivalWithEgo(
            self.ctx,
            self.spawn,
            self.path,
            self.target_xy,
            self.ego_target_xy,
            self.ego_target_yaw,
            SYNC_END_M,
        )
        self.cut_in = LaneChangeCutIn(
            self.ctx,
            self.spawn,
            "left",
            CUT_IN_SPEED_PERC,
            CUT_IN_SAME_LANE_S,
            CUT_IN_CHANGE_S,
            CUT_IN_OTHER_LANE_S,
        )
        steps = [
            self.spawn,
            self.sync,
            self.cut_in,
            DestroySpawned(self.ctx, self.pool, self.spawn),
        ]
        return Sequence("HighwayCutIn", True, steps)  # fmt: skip


class HighwayExit(_Flow):
    """ScenarioRunner's HighwayExit: a flow filled along its path from ``start_actor_flow`` to
    ``end_actor_flow`` (``flow_speed``, default 10 m/s; ``source_dist_interval``, default
    20-50 m) that the ego must cut into to take an exit; ends when the ego leaves the first
    junction on the flow's path (any junction when the path crosses none)."""

    default_spacing_m = (20.0, 50.0)

    def end_condition(self) -> Behaviour:
        return WaitEndIntersection(self.ctx, first_junction_on(self.ctx.town, self.path))


class MergerIntoSlowTraffic(_Flow):
    """ScenarioRunner's MergerIntoSlowTraffic: the ego merges from an entry into a flow filled
    along its path (``flow_speed`` default 10 m/s, ``source_dist_interval`` default 20-50 m);
    ends when the ego is within FLOW_SINK_DISTANCE_M of the sink point of any lane running the
    sink lane's way (get_same_dir_lanes)."""

    default_spacing_m = (20.0, 50.0)

    def sink_points(self) -> np.ndarray:
        """(K, 2) [m] the sink's point on each same-direction lane."""
        town = self.ctx.town
        lane, _ = nearest_lane(town, self.path[-1])
        pts = [town.lanes.position(k, lane_s(town, k, self.path[-1]))[0]
               for k in same_direction_lanes(town, lane)]  # fmt: skip
        return np.asarray(pts, dtype=np.float64).reshape(-1, 2)

    def end_condition(self) -> Behaviour:
        near = [InTriggerDistanceToLocation(self.ctx, p, FLOW_SINK_DISTANCE_M)
                for p in self.sink_points()]  # fmt: skip
        return Parallel("ego at the sink", ParallelPolicy.SuccessOnOne(), near)


class InterurbanActorFlow(_Flow):
    """ScenarioRunner's InterurbanActorFlow: a flow from ``start_actor_flow`` to
    ``end_actor_flow`` (defaults 10 m/s, 20-50 m) that starts at its source at the trigger
    (no initial actors) and that the ego crosses while leaving the road; ends when the ego
    leaves the first junction it enters."""

    default_spacing_m = (20.0, 50.0)

    def behaviour(self) -> Behaviour:
        self.flow = ActorFlow(self.ctx, self.pool, self.path, self.speed_mps, self.spacing_m)
        return self.flow

    def end_condition(self) -> Behaviour:
        return WaitEndIntersection(self.ctx)


class InterurbanAdvancedActorFlow(_Flow):
    """ScenarioRunner's InterurbanAdvancedActorFlow: the ego joins an interurban road by turning
    left, crossing a first flow (``start_actor_flow`` -> ``end_actor_flow``) and merging into a
    second one running the other way, from the lane left of the first's sink to the lane left of
    its source; both start at their sources at the trigger, same speed and spacing. Ends when
    the ego is ahead of the second sink and within IN_FRONT_DISTANCE_M of it."""

    default_spacing_m = (20.0, 50.0)

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        town = ctx.town
        src_lane, src_s = nearest_lane(town, self.source_xy)
        sink_lane, sink_s = nearest_lane(town, self.sink_xy)
        src2, sink2 = side_lane(town, sink_lane, "left"), side_lane(town, src_lane, "left")
        if src2 < 0 or sink2 < 0:
            raise ConfigError(
                f"scenario {config.name} (InterurbanAdvancedActorFlow): no driving lane left of "
                "the flow's end or start for the second flow; fix the route file"
            )
        src_xy = np.asarray(town.lanes.position(src_lane, src_s)[0])
        sink_xy = np.asarray(town.lanes.position(sink_lane, sink_s)[0])
        self.source2_xy = np.asarray(town.lanes.position(src2, lane_s(town, src2, sink_xy))[0])
        xy2, yaw2 = town.lanes.position(sink2, lane_s(town, sink2, src_xy))
        self.sink2_xy, self.sink2_yaw = np.asarray(xy2, dtype=np.float64), float(yaw2)
        self.path2: Path = lane_route(town, self.source2_xy, self.sink2_xy)
        self.flow2: ActorFlow | None = None

    def setup_actors(self) -> None:
        super().setup_actors()
        for k in range(0, len(self.path2), 25):
            self.clear(self.path2[k], 15.0)

    def behaviour(self) -> Behaviour:
        self.flow = ActorFlow(self.ctx, self.pool, self.path, self.speed_mps, self.spacing_m)
        self.flow2 = ActorFlow(self.ctx, self.pool, self.path2, self.speed_mps, self.spacing_m,
                               name="ActorFlow2")  # fmt: skip
        return Parallel("two flows", ParallelPolicy.SuccessOnAll(), [self.flow, self.flow2])

    def end_condition(self) -> Behaviour:
        return WaitUntilInFront(self.ctx, self.sink2_xy, self.sink2_yaw, IN_FRONT_DISTANCE_M)


class SequentialLaneChange(BasicScenario):
    """Bench2Drive's SequentialLaneChange: no actors (the lane changes are the route's); ends
    when the ego has driven SEQUENTIAL_DRIVE_M after the trigger, or at the 240 s timeout."""

    timeout_s = SCENARIO_TIMEOUT_S

    def end_condition(self) -> Behaviour:
        return DriveDistance(self.ctx, int(self.ctx.state.actors.actor_id[0]), SEQUENTIAL_DRIVE_M)
