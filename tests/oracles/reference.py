"""Test oracle: the reference scorer - the same metrics as the raster engine of
:mod:`teachers.scoring`, one trajectory and one step at a time with exact shapely geometry (the
way NAVSIM's PDM scorer works). It is the benchmark baseline and the cross-check of the rasters:
the non-geometric parts (rollout, rolling windows, comfort filters, aggregation) are shared with
the fast path, the map and collision questions are answered independently here.

Exact-geometry conventions: a corner is on the drivable area when ``drivable`` contains it;
lanes at a point are the lane polygons intersecting it; the centre's centerline distance is the
distance to the nearest lane centerline polyline (the route's ``LineString.distance`` under the
navsim profile); route stations are ``LineString.project``. The rule set follows the scoring
profile given (default ``navsim``), each rule written out here per trajectory."""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import LineString, Point, Polygon

from harness.boxes import box_corners
from harness.dynamics.lqr import PDM_DT_S, StateIndex
from harness.world.state import ActorKind, LightState
from teachers.rollout import rollout_previous_plan
from teachers.scene import PREVIOUS_PLAN_OFFSET_STEPS, Scene
from teachers.scoring.aggregate import (
    EPDMS_GATES,
    NUM_METRICS,
    Metric,
    ScoreMatrix,
    with_aggregates,
)
from teachers.scoring.collisions import (
    AHEAD_ANGLE_RAD,
    BEHIND_ANGLE_RAD,
    MOVING_COLLISION_SCORE,
    STATIC_COLLISION_SCORE,
    STOPPED_SPEED_MPS,
    TTC_HORIZONS_STEPS,
)
from teachers.scoring.comfort import (
    comfort,
    extended_comfort,
    history_comfort,
    navsim_comfort,
    navsim_extended_comfort,
    navsim_history_comfort,
)
from teachers.scoring.compliance import (
    drivable_area_compliance,
    driving_direction_compliance,
    lane_keeping,
    traffic_light_compliance,
)
from teachers.scoring.profile import ScoringProfile, get_profile
from teachers.scoring.progress import ego_progress
from teachers.scoring.rasters import EgoAreas, ScoringMap

Float = NDArray[np.float64]


def _polygon(x: float, y: float, yaw: float, length: float, width: float) -> Polygon:
    return Polygon(box_corners(x, y, yaw, length, width))


def _bearing(x: float, y: float, yaw: float, rear_m: float, ax: float, ay: float) -> float:
    rx, ry = x - rear_m * np.cos(yaw), y - rear_m * np.sin(yaw)
    ang = np.arctan2(ay - ry, ax - rx) - yaw
    return float(abs((ang + np.pi) % (2 * np.pi) - np.pi))


class ReferenceScorer:
    """Exact per-trajectory scorer of one scene (geometry prepared once per scene)."""

    def __init__(
        self, scene: Scene, town: ScoringMap, profile: ScoringProfile | str | None = None
    ) -> None:
        self.scene = scene
        self.town = town
        self.profile = get_profile(profile)
        lanes = town.lanes
        polys = town.area.lane_polygons
        self.drivable = town.area.drivable
        shapely.prepare(self.drivable)
        route = set(np.asarray(scene.route_lanes).tolist())
        self.on_route = shapely.union_all([polys[k] for k in sorted(route)])
        self.junction = shapely.union_all([j.polygon for j in town.junctions])
        self.red: list[tuple[shapely.Geometry, NDArray[np.bool_]]] = []
        for i in range(scene.light_lanes.shape[0]):
            ctrl = [
                k for k in scene.light_lanes[i][scene.light_lanes_valid[i]].tolist() if k in route
            ]
            if ctrl:
                self.red.append(
                    (
                        shapely.union_all([polys[k] for k in ctrl]),
                        scene.light_state[i] == LightState.RED,
                    )
                )
        self.centerlines = shapely.STRtree(
            [LineString(lanes.xy[lanes.lane_points(k)]) for k in range(lanes.n_lanes)]
        )
        self.route = LineString(scene.route_xy)
        b = scene.agent_boxes
        self.agents = [
            [_polygon(*b[a, t]) for t in range(b.shape[1])] for a in range(scene.num_agents)
        ]

    def areas(self, traj: Float) -> EgoAreas:
        """:class:`EgoAreas` (1, T) of one trajectory's states (T, N_STATE)."""
        s = self.scene
        n = traj.shape[0]
        flags = {k: np.zeros((1, n), bool) for k in ("off", "multi", "junc", "onc", "red")}
        dist = np.zeros((1, n))
        navsim_onc = self.profile.ddc_offroad_counts
        touch0 = [False] * len(self.red)
        for t in range(n):
            x, y, yaw = traj[t, StateIndex.X], traj[t, StateIndex.Y], traj[t, StateIndex.YAW]
            corners = box_corners(x, y, yaw, s.ego_length_m, s.ego_width_m)
            flags["off"][0, t] = not shapely.contains_xy(
                self.drivable, corners[:, 0], corners[:, 1]
            ).all()
            lanes = self.town.area.lanes_at(corners)
            if self.profile.multi_lane_single_holder:  # >= 2 lanes touched, none holds all four
                touched = set().union(*map(set, lanes))
                holder = any(all(k in v for v in lanes) for k in touched)
                flags["multi"][0, t] = len(touched) > 1 and not holder
            else:
                distinct = {tuple(v) for v in lanes if v}
                flags["multi"][0, t] = any(len(v) > 1 for v in lanes) or len(distinct) > 1
            centre = Point(x, y)
            junc = self.junction.contains(centre)
            flags["junc"][0, t] = junc
            flags["onc"][0, t] = (navsim_onc or self.drivable.contains(centre)) and not (
                self.on_route.contains(centre) or junc
            )
            poly = Polygon(corners)
            for k, (geom, red) in enumerate(self.red):
                hit = poly.intersects(geom)
                if t == 0:
                    touch0[k] = hit and self.profile.tlc_exempt_t0
                if hit and red[t] and not touch0[k]:
                    flags["red"][0, t] = True
            _, d = self.centerlines.query_nearest(centre, return_distance=True)
            dist[0, t] = float(np.min(d))
        return EgoAreas(
            off_drivable=flags["off"],
            multiple_lanes=flags["multi"],
            in_junction=flags["junc"],
            oncoming=flags["onc"],
            red_light=flags["red"],
            centerline_m=dist,
        )

    def no_collision(self, traj: Float, areas: EgoAreas) -> float:
        """NC of one trajectory (states (T, N_STATE))."""
        s = self.scene
        done: set[int] = set()
        score = 1.0
        for t in range(traj.shape[0]):
            x, y, yaw, v = (
                traj[t, k] for k in (StateIndex.X, StateIndex.Y, StateIndex.YAW, StateIndex.SPEED)
            )
            ego = _polygon(x, y, yaw, s.ego_length_m, s.ego_width_m)
            c = box_corners(x, y, yaw, s.ego_length_m, s.ego_width_m)
            bumper = LineString([c[0], c[1]])
            for a in range(s.num_agents):
                if a in done or not s.agent_valid[a, t] or not ego.intersects(self.agents[a][t]):
                    continue
                done.add(a)
                if t == 0:
                    continue  # overlapping at t=0: ignored for the whole horizon
                ax, ay = s.agent_boxes[a, t, 0], s.agent_boxes[a, t, 1]
                behind = _bearing(x, y, yaw, s.ego_rear_axle_to_center_m, ax, ay) > BEHIND_ANGLE_RAD
                lateral = areas.multiple_lanes[0, t] or areas.off_drivable[0, t]
                front = bumper.intersects(self.agents[a][t])
                if self.profile.nc_stopped_at_first_seen:  # nuPlan: speed where first seen
                    first = int(np.flatnonzero(s.agent_valid[a])[0])
                    stopped = (
                        s.agent_speed_mps[a, first] <= STOPPED_SPEED_MPS
                        or s.agent_kind[a] == ActorKind.STATIC
                    )
                else:
                    stopped = s.agent_speed_mps[a, t] <= STOPPED_SPEED_MPS
                fault = v > STOPPED_SPEED_MPS and (stopped or (not behind and (front or lateral)))
                if fault:
                    static = s.agent_kind[a] == ActorKind.STATIC
                    score = min(score, STATIC_COLLISION_SCORE if static else MOVING_COLLISION_SCORE)
        return score

    def ttc(self, traj: Float, areas: EgoAreas) -> float:
        """TTC of one trajectory (states (T, N_STATE))."""
        s = self.scene
        n = traj.shape[0]
        ego0 = _polygon(traj[0, 0], traj[0, 1], traj[0, 2], s.ego_length_m, s.ego_width_m)
        start = {
            a
            for a in range(s.num_agents)
            if s.agent_valid[a, 0] and ego0.intersects(self.agents[a][0])
        }
        for t in range(n):
            x, y, yaw, v = (
                traj[t, k] for k in (StateIndex.X, StateIndex.Y, StateIndex.YAW, StateIndex.SPEED)
            )
            if v <= STOPPED_SPEED_MPS:
                continue
            loose = (
                areas.multiple_lanes[0, t] or areas.off_drivable[0, t] or areas.in_junction[0, t]
            )
            for k in TTC_HORIZONS_STEPS:
                if t + k >= n:
                    continue
                d = v * k * PDM_DT_S
                px, py = x + d * np.cos(yaw), y + d * np.sin(yaw)
                proj = _polygon(px, py, yaw, s.ego_length_m, s.ego_width_m)
                for a in range(s.num_agents):
                    if a in start or not s.agent_valid[a, t + k]:
                        continue
                    if not proj.intersects(self.agents[a][t + k]):
                        continue
                    ax, ay = s.agent_boxes[a, t + k, 0], s.agent_boxes[a, t + k, 1]
                    ang = _bearing(px, py, yaw, s.ego_rear_axle_to_center_m, ax, ay)
                    if ang < AHEAD_ANGLE_RAD or (loose and ang <= BEHIND_ANGLE_RAD):
                        return 0.0
        return 1.0

    def navsim_ttc(self, traj: Float, areas: EgoAreas) -> float:
        """TTC of one trajectory under NAVSIM's rule (steps 0 .. last, exemption of agents hit
        without counting, "ahead" from the current rear axle, junction at the rear axle)."""
        s, prof = self.scene, self.profile
        n = traj.shape[0]
        ego0 = _polygon(traj[0, 0], traj[0, 1], traj[0, 2], s.ego_length_m, s.ego_width_m)
        exempt = {
            a
            for a in range(s.num_agents)
            if s.agent_valid[a, 0] and ego0.intersects(self.agents[a][0])
        }
        last = min(n - 1 - max(TTC_HORIZONS_STEPS), prof.ttc_last_step)
        rear_m = s.ego_rear_axle_to_center_m
        for t in range(last + 1):
            x, y, yaw, v = (
                traj[t, k] for k in (StateIndex.X, StateIndex.Y, StateIndex.YAW, StateIndex.SPEED)
            )
            speed = abs(v)
            if speed < prof.ttc_stopped_mps:
                continue
            rear = Point(x - rear_m * np.cos(yaw), y - rear_m * np.sin(yaw))
            loose = (
                areas.multiple_lanes[0, t]
                or areas.off_drivable[0, t]
                or bool(self.junction.contains(rear))
            )
            for k in TTC_HORIZONS_STEPS:
                d = speed * k * PDM_DT_S
                proj = _polygon(x + d * np.cos(yaw), y + d * np.sin(yaw), yaw, *s.ego_dims)
                for a in range(s.num_agents):
                    if a in exempt or not s.agent_valid[a, t + k]:
                        continue
                    if not proj.intersects(self.agents[a][t + k]):
                        continue
                    ax, ay = s.agent_boxes[a, t + k, 0], s.agent_boxes[a, t + k, 1]
                    ang = _bearing(x, y, yaw, rear_m, ax, ay)
                    if ang < AHEAD_ANGLE_RAD or (loose and ang <= BEHIND_ANGLE_RAD):
                        return 0.0
                    exempt.add(a)
        return 1.0

    def score(
        self, states: Float, reference_progress_m: float | None = None
    ) -> tuple[ScoreMatrix, list[EgoAreas]]:
        """Scores of states (B, 41, N_STATE), one trajectory at a time, and their EgoAreas."""
        bsz = states.shape[0]
        values = np.zeros((NUM_METRICS, bsz))
        progress = np.zeros(bsz)
        prof = self.profile
        previous = rollout_previous_plan(self.scene, prof)
        d_rear = self.scene.ego_rear_axle_to_center_m
        all_areas = []
        for b in range(bsz):
            traj = states[b]
            one = traj[None]
            areas = self.areas(traj)
            all_areas.append(areas)
            values[Metric.NC, b] = self.no_collision(traj, areas)
            values[Metric.DAC, b] = drivable_area_compliance(areas)[0]
            values[Metric.DDC, b] = driving_direction_compliance(one, areas, prof.ddc_window_steps)[
                0
            ]
            values[Metric.TLC, b] = traffic_light_compliance(areas)[0]
            if prof.ttc_navsim:
                values[Metric.TTC, b] = self.navsim_ttc(traj, areas)
            else:
                values[Metric.TTC, b] = self.ttc(traj, areas)
            route_m = None
            if prof.lk_route:
                route_m = np.array([[self.route.distance(Point(p)) for p in traj[:, :2]]])
            values[Metric.LK, b] = lane_keeping(areas, route_m, prof.lk_junction_resets)[0]
            if prof.comfort == "navsim":
                values[Metric.C, b] = navsim_comfort(one, d_rear)[0]
                values[Metric.HC, b] = navsim_history_comfort(one, self.scene.ego_past, d_rear)[0]
                values[Metric.EC, b] = navsim_extended_comfort(
                    one, previous, d_rear, PREVIOUS_PLAN_OFFSET_STEPS
                )[0]
            else:
                values[Metric.C, b] = comfort(one)[0]
                values[Metric.HC, b] = history_comfort(one, self.scene.ego_past)[0]
                values[Metric.EC, b] = extended_comfort(one, previous, PREVIOUS_PLAN_OFFSET_STEPS)[
                    0
                ]
            progress[b] = self.route.project(Point(traj[-1, :2])) - self.route.project(
                Point(traj[0, :2])
            )
        gates = np.prod(values[list(EPDMS_GATES)], axis=0) if prof.ep_gate_product else None
        values[Metric.EP] = ego_progress(progress, reference_progress_m, gates)
        return ScoreMatrix(values=with_aggregates(values), progress_m=progress), all_areas
