"""Hand-built scoring scenes shared by the tests/test_scoring_*.py files: a straight two-way
road along +x with a signalised junction, as a minimal stand-in for a Town (lanes, area,
junctions), and a Scene builder around it.

Layout (CARLA frame, +y is the driver's right when heading +x; lanes 3.5 m wide):
  lane 0: road 1 eastbound, centre y = +1.75, x -60..50    lane 1: road 1 westbound, y = -1.75
  lane 2: junction connector eastbound, x 50..70           lane 3: connector westbound
  lane 4: road 2 eastbound, x 70..200                      lane 5: road 2 westbound
  junction 0: x 50..70, |y| <= 3.5; light 0 controls connector 2. Route: lanes 0, 2, 4 at y=1.75.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from harness.dynamics.lqr import NUM_POSES, PDM_DT_S
from harness.maps.area import DrivableArea
from harness.maps.junctions import Junction
from harness.maps.lanes import LaneSet
from harness.world.state import ActorKind, LightState
from teachers.scene import PAST_POSES, Scene, states_from_poses

LANE_W = 3.5
# (road, lane_id, junction, x_start, x_end, y)
LANES = [
    (1, -1, -1, -60.0, 50.0, 1.75),
    (1, 1, -1, 50.0, -60.0, -1.75),
    (100, -1, 0, 50.0, 70.0, 1.75),
    (101, -1, 0, 70.0, 50.0, -1.75),
    (2, -1, -1, 70.0, 200.0, 1.75),
    (2, 1, -1, 200.0, 70.0, -1.75),
]
ROUTE_LANES = np.array([0, 2, 4])


@dataclass(frozen=True, eq=False)
class StraightTown:
    """Test double with the Town fields scoring reads."""

    lanes: LaneSet
    area: DrivableArea
    junctions: tuple[Junction, ...]


def straight_town() -> StraightTown:
    xs: list[float] = []
    ys: list[float] = []
    yaws: list[float] = []
    of: list[int] = []
    starts: list[int] = []
    counts: list[int] = []
    lengths: list[float] = []
    for k, (_, _, _, x0, x1, y) in enumerate(LANES):
        n = int(abs(x1 - x0)) + 1
        starts.append(len(xs))
        counts.append(n)
        lengths.append(abs(x1 - x0))
        xs += np.linspace(x0, x1, n).tolist()
        ys += [y] * n
        yaws += [0.0 if x1 > x0 else np.pi] * n
        of += [k] * n
    p = len(xs)
    s = np.concatenate([np.arange(c, dtype=float) for c in counts])
    lanes = LaneSet(
        road_id=np.array([r for r, *_ in LANES]),
        section_id=np.zeros(len(LANES), dtype=np.int64),
        lane_id=np.array([lid for _, lid, *_ in LANES]),
        junction_id=np.array([j for _, _, j, *_ in LANES]),
        length_m=np.array(lengths),
        start=np.array(starts),
        count=np.array(counts),
        xy=np.column_stack([xs, ys]),
        z_m=np.zeros(p),
        yaw_rad=np.array(yaws),
        s_m=s,
        width_m=np.full(p, LANE_W),
        lane_of_point=np.array(of),
        lane_change=np.zeros(p, dtype=np.int8),
        marking_type=np.zeros((p, 2), dtype=np.int8),
        marking_color=np.zeros((p, 2), dtype=np.int8),
    )
    polys = [
        shapely.box(min(x0, x1), y - LANE_W / 2, max(x0, x1), y + LANE_W / 2)
        for _, _, _, x0, x1, y in LANES
    ]
    area = DrivableArea(
        lane_polygons=polys,
        drivable=shapely.union_all(polys),
        sidewalks=shapely.Polygon(),
        markings=[],
    )
    junction = Junction(
        id=0,
        polygon=shapely.box(50.0, -3.5, 70.0, 3.5),
        center_xy=np.array([60.0, 0.0]),
        connector_lanes=(2, 3),
        incoming_lanes=(0, 5),
        incoming_arm=(0, 1),
        arms=2,
        kind="merge",
        signalised=True,
    )
    return StraightTown(lanes=lanes, area=area, junctions=(junction,))


def straight_poses(
    x0: float, y: float, speed_mps: float, accel_mps2: float = 0.0
) -> NDArray[np.float64]:
    """(41, 3) poses heading +x from x0 at constant accel until stopped."""
    t = np.arange(NUM_POSES) * PDM_DT_S
    if accel_mps2 < 0:
        t = np.minimum(t, speed_mps / -accel_mps2)
    x = x0 + speed_mps * t + 0.5 * accel_mps2 * t * t
    return np.column_stack([x, np.full(NUM_POSES, y), np.zeros(NUM_POSES)])


def make_scene(
    ego_xy: tuple[float, float] = (0.0, 1.75),
    speed_mps: float = 10.0,
    agents: list[tuple[float, float, float, float, int]] | None = None,
    light: LightState | None = None,
    past_accel_mps2: float = 0.0,
    previous_plan: NDArray[np.float64] | None = None,
) -> Scene:
    """Scene with the ego heading +x; agents as (x, y, yaw, speed, ActorKind) at constant
    velocity, 4.9 x 2.1 m (pedestrians 0.6 x 0.6 m); ``light`` the state of light 0 throughout."""
    a = agents or []
    pose = np.array([[x, y, yaw] for x, y, yaw, _, _ in a]).reshape(-1, 3)
    kind = np.array([k for *_, k in a], dtype=np.int64)
    ped = kind == ActorKind.PEDESTRIAN
    boxes, valid, speed = Scene.constant_velocity_agents(
        pose, [v for _, _, _, v, _ in a], np.where(ped, 0.6, 4.9), np.where(ped, 0.6, 2.1)
    )
    t_past = (np.arange(PAST_POSES) - (PAST_POSES - 1)) * PDM_DT_S
    past_x = ego_xy[0] + speed_mps * t_past + 0.5 * past_accel_mps2 * t_past**2
    past = states_from_poses(
        np.column_stack([past_x, np.full(PAST_POSES, ego_xy[1]), np.zeros(PAST_POSES)])
    )
    lights = 0 if light is None else 1
    return Scene(
        town_name="StraightTown",
        ego_pose=np.array([ego_xy[0], ego_xy[1], 0.0]),
        ego_speed_mps=speed_mps,
        ego_accel_mps2=0.0,
        ego_yaw_rate_radps=0.0,
        ego_past=past,
        agent_boxes=boxes,
        agent_kind=kind,
        agent_valid=valid,
        agent_speed_mps=speed,
        light_lanes=np.array([[2]] * lights, dtype=np.int64).reshape(lights, 1),
        light_lanes_valid=np.ones((lights, 1), dtype=bool),
        light_state=np.full((lights, NUM_POSES), int(light) if light is not None else 0),
        route_xy=np.column_stack([np.arange(-60.0, 201.0), np.full(261, 1.75)]),
        route_lanes=ROUTE_LANES,
        previous_plan=previous_plan,
    )


def test_straight_town_is_consistent() -> None:
    town = straight_town()
    assert town.area.contains(np.array([[0.0, 1.75], [0.0, -3.0]])).all()
    assert not town.area.contains(np.array([[0.0, 3.6]]))[0]
    assert town.lanes.project(np.array([10.3, 2.0])).distance_m == np.float64(0.25)
