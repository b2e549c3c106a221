"""Places on a town's lane graph where a scenario can go: lane walks (forward / backward along the
straightest follow edges), a junction's manoeuvres (incoming lane -> connector -> exit lane, with
its turn and the relative direction of every other approach) and the flow lanes that meet the
ego's path there. Pure functions over ``Town``; ``harness.routes.make`` turns them into routes.

CARLA world frame (left-handed): a right turn increases yaw, and the vehicle coming from the
ego's right drives with a heading 90 deg less than the ego's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.geometry import wrap_angle
from harness.maps.junctions import Junction, lane_end_yaw, lane_start_yaw
from harness.maps.signals import STOP_SIGN
from harness.maps.town import Town

STRAIGHT_MAX_RAD = np.radians(30.0)  # a connector turning less than this goes straight [rad]
TURN_MIN_RAD = np.radians(45.0)  # a connector turning more than this is a left / right turn [rad]
OPPOSITE_MIN_RAD = np.radians(135.0)  # approaches this far apart in heading face each other [rad]
SIDE_MIN_RAD = np.radians(45.0)  # ... and between SIDE_MIN and OPPOSITE_MIN they cross [rad]
SAMPLE_STEP_M = 1.0  # [m] spacing of the points of a walk

Piece = tuple[int, float, float]
"""(lane, s0_m, s1_m): a stretch of one lane in driving order, s0 <= s1."""


def turn_of(town: Town, lane: int) -> float:
    """Heading change [rad] from the start to the end of a lane (positive: to the right)."""
    idx = np.array([lane], dtype=np.int64)
    lanes = town.lanes
    return float(wrap_angle(lane_end_yaw(lanes, idx) - lane_start_yaw(lanes, idx))[0])


def turn_name(turn_rad: float) -> str:
    """'left' | 'right' | 'straight' | 'slight' (between straight and a turn) for a heading change."""
    if abs(turn_rad) < STRAIGHT_MAX_RAD:
        return "straight"
    if abs(turn_rad) < TURN_MIN_RAD:
        return "slight"
    return "right" if turn_rad > 0 else "left"


def approach_name(ego_yaw_rad: float, other_yaw_rad: float) -> str:
    """Where another approach comes from, seen by the ego (its heading at the junction entry vs
    the ego's): 'opposite', 'left', 'right' or 'same' (a parallel lane of the ego's own road)."""
    d = float(wrap_angle(other_yaw_rad - ego_yaw_rad))
    if abs(d) >= OPPOSITE_MIN_RAD:
        return "opposite"
    if abs(d) < SIDE_MIN_RAD:
        return "same"
    return "right" if d < 0 else "left"


def _straightest(town: Town, cands: list[int], ref_yaw: float, at_end: bool) -> int:
    lanes = town.lanes
    idx = np.asarray(cands, dtype=np.int64)
    yaw = lane_end_yaw(lanes, idx) if at_end else lane_start_yaw(lanes, idx)
    return int(idx[int(np.argmin(np.abs(wrap_angle(yaw - ref_yaw))))])


def walk_forward(town: Town, lane: int, s_m: float, length_m: float) -> list[Piece]:
    """Pieces from (lane, s) forward ``length_m`` along the straightest follow edges (a connector
    is judged by its end heading); shorter when it reaches a dead end."""
    lanes = town.lanes
    pieces: list[Piece] = []
    left, cur, s = length_m, lane, s_m
    while left > 1e-6 and cur >= 0:
        end = min(float(lanes.length_m[cur]), s + left)
        if end > s:
            pieces.append((cur, s, end))
        left -= end - s
        succ = town.graph.successors(cur)
        if left <= 1e-6 or not succ:
            break
        ref = float(lane_end_yaw(lanes, np.array([cur]))[0])
        cur, s = _straightest(town, succ, ref, at_end=True), 0.0
        if any(p[0] == cur for p in pieces):
            break  # a loop
    return pieces


def walk_backward(town: Town, lane: int, s_m: float, length_m: float) -> list[Piece]:
    """Pieces in driving order ending at (lane, s) and starting ``length_m`` before it, along the
    straightest predecessors; shorter when it reaches a lane without one."""
    lanes = town.lanes
    pieces: list[Piece] = []
    left, cur, s = length_m, lane, s_m
    while left > 1e-6 and cur >= 0:
        start = max(0.0, s - left)
        if s > start:
            pieces.insert(0, (cur, start, s))
        left -= s - start
        pred = town.graph.predecessors(cur)
        if left <= 1e-6 or not pred:
            break
        ref = float(lane_start_yaw(lanes, np.array([cur]))[0])
        cur = _straightest(town, pred, ref, at_end=False)
        if any(p[0] == cur for p in pieces):
            break
        s = float(lanes.length_m[cur])
    return pieces


def pieces_length(pieces: list[Piece]) -> float:
    """Total length [m] of a walk."""
    return float(sum(s1 - s0 for _, s0, s1 in pieces))


def pieces_points(
    town: Town, pieces: list[Piece], step_m: float = SAMPLE_STEP_M
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Points of a walk every ``step_m``: xy (N, 2) [m], z (N,) [m], yaw (N,) [rad], lane (N,)."""
    lanes = town.lanes
    lane_l: list[NDArray[np.int64]] = []
    s_l: list[NDArray[np.float64]] = []
    for k, (lane, s0, s1) in enumerate(pieces):
        s = np.arange(s0, s1, step_m)
        if k == len(pieces) - 1:
            s = np.append(s, s1)
        lane_l.append(np.full(s.shape, lane, dtype=np.int64))
        s_l.append(s)
    lane_a, s_a = np.concatenate(lane_l), np.concatenate(s_l)
    xy, yaw = lanes.position(lane_a, s_a)
    z = np.array([_lane_z(town, int(ln), float(s)) for ln, s in zip(lane_a, s_a, strict=True)])
    return np.asarray(xy), z, np.asarray(yaw), lane_a


def _lane_z(town: Town, lane: int, s_m: float) -> float:
    sl = town.lanes.lane_points(lane)
    return float(np.interp(s_m, town.lanes.s_m[sl], town.lanes.z_m[sl]))


def lane_pose(town: Town, lane: int, s_m: float) -> tuple[float, float, float, float]:
    """(x, y, z [m], yaw [deg]) on a lane centerline at arc length s."""
    xy, yaw = town.lanes.position(lane, s_m)
    x, y = np.asarray(xy, dtype=np.float64).reshape(2)
    return float(x), float(y), _lane_z(town, lane, s_m), float(np.degrees(float(yaw)))


@dataclass(frozen=True)
class Manoeuvre:
    """One way through a junction: ``incoming`` lane (outside it) -> ``connectors`` (inside it,
    in driving order) -> ``exit`` lane (outside it); ``turn`` its name (:func:`turn_name`) and
    ``turn_rad`` the heading change from the incoming lane's end to the exit lane's start."""

    junction: int
    incoming: int
    connectors: tuple[int, ...]
    exit: int
    turn: str
    turn_rad: float


def manoeuvres(town: Town, junction: Junction) -> list[Manoeuvre]:
    """Every incoming lane -> connector chain -> exit lane of a junction (sorted, deterministic)."""
    lanes = town.lanes
    out: list[Manoeuvre] = []
    for a in sorted(junction.incoming_lanes):
        for c in sorted(town.graph.successors(a)):
            if int(lanes.junction_id[c]) != junction.id:
                continue
            chain = [c]
            while True:
                succ = sorted(town.graph.successors(chain[-1]))
                inside = [v for v in succ if int(lanes.junction_id[v]) == junction.id]
                if not inside or len(chain) > 4:
                    break
                chain.append(inside[0])
            exits = [
                v for v in sorted(town.graph.successors(chain[-1])) if lanes.junction_id[v] < 0
            ]
            if not exits:
                continue
            e = exits[0]
            turn = float(
                wrap_angle(
                    lane_start_yaw(lanes, np.array([e]))[0] - lane_end_yaw(lanes, np.array([a]))[0]
                )
            )
            out.append(Manoeuvre(junction.id, a, tuple(chain), e, turn_name(turn), turn))
    return out


def stop_sign_lanes(town: Town) -> set[int]:
    """Incoming lanes whose stop line belongs to a stop sign."""
    sig = town.signals
    return {int(v) for v in np.asarray(sig.stop_lane)[np.asarray(sig.stop_kind) == STOP_SIGN]}


def same_direction(town: Town, a: int, b: int) -> bool:
    """Whether two lanes belong to the same road and carry traffic the same way."""
    lanes = town.lanes
    return bool(
        lanes.road_id[a] == lanes.road_id[b]
        and np.sign(lanes.lane_id[a]) == np.sign(lanes.lane_id[b])
    )


def flow_partners(
    town: Town, ego: Manoeuvre, relation: str, all_m: list[Manoeuvre]
) -> list[Manoeuvre]:
    """Manoeuvres of the same junction a flow can drive for the ego's manoeuvre:

    - 'merge': from another road into the ego's exit road (same road and direction);
    - 'oncoming': straight from the approach opposite the ego's;
    - 'cross': straight from an approach to the ego's left or right;
    - 'parallel': straight on, from another lane of the ego's own incoming road, while the ego
      takes another connector (a highway exit: the ego crosses that lane's traffic)."""
    lanes = town.lanes
    ego_yaw = float(lane_end_yaw(lanes, np.array([ego.incoming]))[0])
    out = []
    for m in all_m:
        if m.incoming == ego.incoming or m.connectors == ego.connectors:
            continue
        side = approach_name(ego_yaw, float(lane_end_yaw(lanes, np.array([m.incoming]))[0]))
        if relation == "merge":
            ok = lanes.road_id[m.incoming] != lanes.road_id[ego.incoming] and same_direction(
                town, m.exit, ego.exit
            )
        elif relation == "oncoming":
            ok = side == "opposite" and m.turn == "straight"
        elif relation == "cross":
            ok = side in ("left", "right") and m.turn == "straight"
        elif relation == "parallel":
            ok = (
                same_direction(town, m.incoming, ego.incoming)
                and m.turn in ("straight", "slight")
                and not same_direction(town, m.exit, ego.exit)
            )
        else:
            raise ValueError(f"unknown flow relation {relation!r}")
        if ok:
            out.append(m)
    return out


def approaches(town: Town, ego: Manoeuvre, all_m: list[Manoeuvre]) -> set[str]:
    """The sides ('left', 'right', 'opposite') other approaches of the junction come from."""
    lanes = town.lanes
    ego_yaw = float(lane_end_yaw(lanes, np.array([ego.incoming]))[0])
    return {
        approach_name(ego_yaw, float(lane_end_yaw(lanes, np.array([m.incoming]))[0]))
        for m in all_m
        if m.incoming != ego.incoming
    } - {"same"}
