"""Scoring profiles: which rule set the PDMS / EPDMS scorer follows, as one value passed down.

``navsim`` (the default) follows NAVSIM v1/v2 (navsim commit 0a380a9) rule for rule where our
setting allows (REFERENCE.md sections 2, 2a, 3; the forced differences are in
docs/DIFFERENCES.md, "Teacher scoring (NAVSIM profile)"). ``harness`` is the scorer as it stood
before the profile existed; it is kept so teacher datasets written by earlier versions can be
re-scored byte for byte and because its shapely reference (tests/oracles/reference.py) pins the
raster kernels that both profiles share.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import ConfigError


@dataclass(frozen=True)
class ScoringProfile:
    """One scorer rule set (every field names the rule it selects).

    ``multi_lane_single_holder``: "in several lanes" (NC's lateral fault, TTC's loose rule) means
    the corners lie in >= 2 lane polygons and no single one holds all four (NAVSIM), instead of
    "corners in different lanes or in overlapping lanes".
    ``rollout``: "navsim" (NAVSIM's batch LQR + Euler bicycle on the rear axle,
    :func:`teachers.rollout.navsim_rollout`) or "harness" (:func:`harness.dynamics.lqr.lqr_rollout`).
    ``nc_stopped_at_first_seen``: an agent is "stopped" (ego at fault) by its speed where it first
    appears, static objects always (nuPlan), else by its speed at the contact step.
    ``ttc_navsim``: NAVSIM's TTC loop (:func:`teachers.scoring.collisions.navsim_time_to_collision`:
    an agent once hit without counting stays exempt for the rest of the horizon, "ahead" is
    judged from the current rear axle, not the projected box's, an ego slower than
    ``ttc_stopped_mps`` is skipped) over steps 0 .. ``ttc_last_step`` (NAVSIM 31 = 40 - 9), or
    the harness rule (every step whose projection stays in the horizon, "ahead" from the
    projected box, no exemption, stopped <= 0.05 m/s). ``ttc_junction_at_rear_axle``: the
    junction test of TTC's loose rule uses the rear axle (NAVSIM) rather than the centre.
    ``ddc_window_steps``: displacements summed in DDC's rolling window (NAVSIM 11).
    ``ddc_offroad_counts``: a centre off every on-route lane counts as oncoming even off the
    drivable area (NAVSIM), else only on a drivable cell. ``tlc_exempt_t0``: a red connector
    touched at t = 0 is exempt (harness); NAVSIM counts t = 0. ``lk_route``: LK measures the
    distance to the route centreline (NAVSIM) instead of the nearest lane's;
    ``lk_junction_resets``: a junction step resets the off-centre run (harness) instead of being
    skipped. ``ep_gate_product``: EP's normaliser is the max of raw progress x the product of the
    gate metrics, raw progress clipped at 0 (NAVSIM). ``comfort``: "navsim" signals (centre
    longitudinal acceleration from rear-axle acceleration, yaw rate and yaw acceleration;
    lateral acceleration 0 for simulated states; jerk of |acceleration|; yaw acceleration as one
    Savitzky-Golay second derivative; values rounded to 8 decimals; EC filters the 36-step
    overlap slices, not slices of the filtered full signals) or "harness".
    ``hc_navsim_history``: HC prefixes the 14 states NAVSIM interpolates from the 2 Hz past
    (t-1.5 .. t-0.2 s) instead of our 15 states at 0.1 s.
    ``human_filtered``: the :class:`teachers.scoring.Metric` names a human filter may set to 1
    for every candidate when the human / reference row fails them (NAVSIM: every per-frame
    column, gates and EP included, never EC); ``human_filter_zero_only``: "fails" means a
    value of exactly 0 (NAVSIM), else any value below 1.
    """

    name: str
    rollout: str
    multi_lane_single_holder: bool
    nc_stopped_at_first_seen: bool
    ttc_navsim: bool
    ttc_last_step: int
    ttc_stopped_mps: float
    ttc_junction_at_rear_axle: bool
    ddc_window_steps: int
    ddc_offroad_counts: bool
    tlc_exempt_t0: bool
    lk_route: bool
    lk_junction_resets: bool
    ep_gate_product: bool
    comfort: str
    hc_navsim_history: bool
    human_filtered: tuple[str, ...]
    human_filter_zero_only: bool


NAVSIM = ScoringProfile(
    name="navsim",
    rollout="navsim",
    multi_lane_single_holder=True,
    nc_stopped_at_first_seen=True,
    ttc_navsim=True,
    ttc_last_step=31,
    ttc_stopped_mps=5e-3,
    ttc_junction_at_rear_axle=True,
    ddc_window_steps=11,
    ddc_offroad_counts=True,
    tlc_exempt_t0=False,
    lk_route=True,
    lk_junction_resets=False,
    ep_gate_product=True,
    comfort="navsim",
    hc_navsim_history=True,
    human_filtered=("NC", "DAC", "DDC", "TLC", "EP", "TTC", "LK", "HC"),
    human_filter_zero_only=True,
)

HARNESS = ScoringProfile(
    name="harness",
    rollout="harness",
    multi_lane_single_holder=False,
    nc_stopped_at_first_seen=False,
    ttc_navsim=False,
    ttc_last_step=40,
    ttc_stopped_mps=0.05,
    ttc_junction_at_rear_axle=False,
    ddc_window_steps=10,
    ddc_offroad_counts=False,
    tlc_exempt_t0=True,
    lk_route=False,
    lk_junction_resets=True,
    ep_gate_product=False,
    comfort="harness",
    hc_navsim_history=False,
    human_filtered=("TTC", "LK", "HC", "EC"),
    human_filter_zero_only=False,
)

PROFILES: dict[str, ScoringProfile] = {p.name: p for p in (NAVSIM, HARNESS)}
DEFAULT_PROFILE = NAVSIM


def get_profile(name: str | ScoringProfile | None) -> ScoringProfile:
    """The registered profile called ``name`` (None: the default); a profile passes through."""
    if name is None:
        return DEFAULT_PROFILE
    if isinstance(name, ScoringProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown scoring profile {name!r}; use one of {', '.join(sorted(PROFILES))}"
        ) from None
