"""PDMS / EPDMS aggregation and the scoring entry point :func:`score_candidates`.

The pipeline is NAVSIM's: candidate plans -> LQR + bicycle rollout (``teachers.rollout``) ->
sub-metrics as a (num_metrics, B) matrix -> final scores = product of gate metrics x weighted
mean of the others:

    PDMS  = NC * DAC * (5 TTC + 5 EP + 2 C) / 12
    EPDMS = NC * DAC * DDC * TLC * (5 EP + 5 TTC + 2 LK + 2 HC + 2 EC) / 16

The rules follow a :class:`teachers.scoring.profile.ScoringProfile` (default ``navsim``:
NAVSIM's rules; docs/DIFFERENCES.md lists what our setting forces to differ). Not implemented:
NAVSIM v2's "human filter" (a sub-metric set to 1 where the logged human also fails it) - the
scene carries no human trajectory; callers can apply it on the returned matrix (never to EC).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.lqr import StateIndex
from harness.world.comfort import COMFORT_WEIGHT, EP_WEIGHT, TTC_WEIGHT
from teachers.rollout import rollout_candidates, rollout_previous_plan
from teachers.scene import PREVIOUS_PLAN_OFFSET_STEPS, Scene
from teachers.scoring.collisions import (
    AgentTable,
    Contacts,
    contacts,
    navsim_time_to_collision,
    no_at_fault_collision,
    time_to_collision,
)
from teachers.scoring.comfort import (
    comfort_signals,
    extended_comfort,
    history_comfort,
    navsim_comfort,
    navsim_extended_comfort,
    navsim_history_comfort,
    within_bounds,
)
from teachers.scoring.compliance import (
    drivable_area_compliance,
    driving_direction_compliance,
    lane_keeping,
    traffic_light_compliance,
)
from teachers.scoring.egopose import EgoPose
from teachers.scoring.profile import ScoringProfile, get_profile
from teachers.scoring.progress import ego_progress
from teachers.scoring.rasters import (
    FLAG_JUNCTION,
    FLAG_ON_ROUTE,
    RASTER_RESOLUTION_M,
    EgoAreas,
    SceneRasters,
    ScoringMap,
    ego_areas,
    navsim_multiple_lanes,
)

Float = NDArray[np.float64]


class Metric(IntEnum):
    """Rows of :attr:`ScoreMatrix.values`."""

    NC = 0  # no at-fault collision {0, 0.5, 1}
    DAC = 1  # drivable area compliance {0, 1}
    DDC = 2  # driving direction compliance {0, 0.5, 1}
    TLC = 3  # traffic light compliance {0, 1}
    EP = 4  # ego progress [0, 1]
    TTC = 5  # time to collision {0, 1}
    LK = 6  # lane keeping {0, 1}
    C = 7  # comfort (NAVSIM v1) {0, 1}
    HC = 8  # history comfort {0, 1}
    EC = 9  # extended (two-frame) comfort {0, 1}
    PDMS = 10  # [0, 1]
    EPDMS = 11  # [0, 1]


NUM_METRICS = len(Metric)
PDMS_GATES = (Metric.NC, Metric.DAC)
PDMS_WEIGHTS = {Metric.TTC: TTC_WEIGHT, Metric.EP: EP_WEIGHT, Metric.C: COMFORT_WEIGHT}
EPDMS_GATES = (Metric.NC, Metric.DAC, Metric.DDC, Metric.TLC)
EPDMS_WEIGHTS = {Metric.EP: 5.0, Metric.TTC: 5.0, Metric.LK: 2.0, Metric.HC: 2.0, Metric.EC: 2.0}
SAFETY_GATES = EPDMS_GATES  # NAVSIM's EP multipliers: candidates passing them are "safe", and
# only a safe candidate's progress may set EP's maximum (teachers.per_scene, teachers.selection)
SUB_METRICS = tuple(m for m in Metric if m not in (Metric.PDMS, Metric.EPDMS))


@dataclass(frozen=True)
class ScoreMatrix:
    """Scores of B candidates: ``values`` (NUM_METRICS, B) indexed by :class:`Metric`, and
    ``progress_m`` (B,) the raw route progress [m] behind EP."""

    values: Float
    progress_m: Float

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[0] != NUM_METRICS:
            raise ValueError(
                f"ScoreMatrix.values must be ({NUM_METRICS}, B), got {self.values.shape}"
            )

    def __getitem__(self, metric: Metric) -> Float:
        return self.values[metric]

    @property
    def num_candidates(self) -> int:
        """B."""
        return int(self.values.shape[1])


def gated_weighted(values: Float, gates: tuple[Metric, ...], weights: dict[Metric, float]) -> Float:
    """Product of the gate rows x weighted mean of the weighted rows of ``values`` (M, B)."""
    gate = np.prod(values[list(gates)], axis=0)
    w = np.array(list(weights.values()))
    mean = (w[:, None] * values[list(weights)]).sum(axis=0) / w.sum()
    return np.asarray(gate * mean)


def with_aggregates(values: Float) -> Float:
    """Fill the PDMS and EPDMS rows of a (NUM_METRICS, B) matrix from its sub-metric rows."""
    out = np.array(values, dtype=np.float64)
    out[Metric.PDMS] = gated_weighted(out, PDMS_GATES, PDMS_WEIGHTS)
    out[Metric.EPDMS] = gated_weighted(out, EPDMS_GATES, EPDMS_WEIGHTS)
    return out


def human_filter(
    values: Float, human_row: int, profile: ScoringProfile | str | None = None
) -> Float:
    """NAVSIM v2's human filter on a (NUM_METRICS, B) matrix: each of the profile's
    ``human_filtered`` metrics that the row ``human_row`` (the human / reference trajectory)
    fails is set to 1 for every column; the aggregates are recomputed. NAVSIM filters every
    per-frame sub-score, gates and EP included, where the human's is exactly 0, and never EC
    (two-frame, computed after the filter)."""
    prof = get_profile(profile)
    out = np.array(values, dtype=np.float64)
    for name in prof.human_filtered:
        m = Metric[name]
        human = out[m, human_row]
        if human == 0.0 if prof.human_filter_zero_only else human < 1.0:
            out[m] = 1.0
    return with_aggregates(out)


def state_bounds(states: Float) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) [m] of the ego centres in states (B, T, N_STATE)."""
    x, y = states[..., StateIndex.X], states[..., StateIndex.Y]
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def score_states(
    scene: Scene,
    town: ScoringMap,
    states: Float,
    *,
    reference_progress_m: float | None = None,
    rasters: SceneRasters | None = None,
    resolution_m: float = RASTER_RESOLUTION_M,
    profile: ScoringProfile | str | None = None,
) -> ScoreMatrix:
    """Score simulated ego states (B, 41, N_STATE) in ``scene`` (see :class:`Metric`) under the
    scoring ``profile`` (a :class:`ScoringProfile` or a registered name; default ``navsim``).
    Pass ``rasters`` built for a window covering the states to reuse them across calls."""
    prof = get_profile(profile)
    if rasters is None:
        rasters = SceneRasters.build(scene, town, state_bounds(states), resolution_m)
    pose = EgoPose.of(states)
    areas = ego_areas(
        rasters, states, scene.ego_length_m, scene.ego_width_m, pose, prof.tlc_exempt_t0
    )
    if prof.multi_lane_single_holder:
        multi = navsim_multiple_lanes(
            rasters, pose, scene.ego_length_m, scene.ego_width_m, areas.multiple_lanes
        )
        areas = replace(areas, multiple_lanes=multi)
    station = rasters.route_station(states[:, [0, -1], :2])
    progress = station[:, 1] - station[:, 0]
    hits = contacts(scene, pose, AgentTable.of(scene)) if scene.num_agents else None
    values = np.zeros((NUM_METRICS, states.shape[0]))
    values[Metric.NC] = no_at_fault_collision(
        scene, states, areas, hits, stopped_at_first_seen=prof.nc_stopped_at_first_seen
    )
    values[Metric.DAC] = drivable_area_compliance(areas)
    oncoming = None
    if prof.ddc_offroad_counts:  # NAVSIM: centre in no on-route lane, junctions excluded
        centre = rasters.flags_at(pose.x, pose.y)
        oncoming = (centre & (FLAG_ON_ROUTE | FLAG_JUNCTION)) == 0
    values[Metric.DDC] = driving_direction_compliance(
        states, areas, prof.ddc_window_steps, oncoming
    )
    values[Metric.TLC] = traffic_light_compliance(areas)
    values[Metric.TTC] = _ttc(scene, states, areas, hits, pose, rasters, prof)
    values[Metric.LK] = lane_keeping(
        areas,
        rasters.route_distance_xy(pose.x, pose.y) if prof.lk_route else None,
        junction_resets=prof.lk_junction_resets,
    )
    previous = rollout_previous_plan(scene, prof)
    d = scene.ego_rear_axle_to_center_m
    if prof.comfort == "navsim":
        values[Metric.C] = navsim_comfort(states, d)
        values[Metric.HC] = (
            navsim_history_comfort(states, scene.ego_past, d)
            if prof.hc_navsim_history
            else history_comfort(states, scene.ego_past)
        )
        values[Metric.EC] = navsim_extended_comfort(states, previous, d, PREVIOUS_PLAN_OFFSET_STEPS)
    else:
        signals = comfort_signals(states)
        values[Metric.C] = within_bounds(signals).astype(np.float64)
        values[Metric.HC] = history_comfort(states, scene.ego_past)
        values[Metric.EC] = extended_comfort(states, previous, PREVIOUS_PLAN_OFFSET_STEPS, signals)
    gates = np.prod(values[list(EPDMS_GATES)], axis=0) if prof.ep_gate_product else None
    values[Metric.EP] = ego_progress(progress, reference_progress_m, gates)
    return ScoreMatrix(values=with_aggregates(values), progress_m=progress)


def _ttc(
    scene: Scene,
    states: Float,
    areas: EgoAreas,
    hits: Contacts | None,
    pose: EgoPose,
    rasters: SceneRasters,
    prof: ScoringProfile,
) -> Float:
    """TTC (B,) under the profile's rules (see :class:`ScoringProfile`)."""
    if not prof.ttc_navsim:
        return time_to_collision(scene, states, areas, hits, pose)
    if scene.num_agents == 0 or hits is None:
        return np.ones(states.shape[0])
    junction = areas.in_junction
    if prof.ttc_junction_at_rear_axle:
        d = scene.ego_rear_axle_to_center_m
        rear = rasters.flags_at(pose.x - d * pose.cos, pose.y - d * pose.sin)
        junction = (rear & FLAG_JUNCTION) > 0
    loose = areas.multiple_lanes | areas.off_drivable | junction
    return navsim_time_to_collision(
        scene,
        pose,
        loose,
        hits.start,
        last_step=prof.ttc_last_step,
        stopped_mps=prof.ttc_stopped_mps,
    )


def score_candidates(
    scene: Scene,
    town: ScoringMap,
    candidate_poses: ArrayLike,
    *,
    rollout: bool = True,
    reference_progress_m: float | None = None,
    profile: ScoringProfile | str | None = None,
) -> tuple[ScoreMatrix, Float]:
    """Roll candidate plans (B, 40, 3) or (B, 41, 3) [x, y, yaw] at 0.1 s through the profile's
    tracker + bicycle (or take them as states with ``rollout=False``) and score them under the
    ``profile`` (default ``navsim``). Returns the :class:`ScoreMatrix` and the simulated states
    (B, 41, N_STATE). Runs on the CPU; the rollout and the metrics' hot loops are numba
    kernels."""
    prof = get_profile(profile)
    states = rollout_candidates(scene, candidate_poses, rollout=rollout, profile=prof)
    scores = score_states(
        scene, town, states, reference_progress_m=reference_progress_m, profile=prof
    )
    return scores, states
