"""PDMS / EPDMS scoring of candidate trajectories (NAVSIM-style, raster-accelerated).

``score_candidates(scene, town, poses)`` -> (:class:`ScoreMatrix`, simulated states); the
sub-metrics live in ``collisions`` (NC, TTC), ``compliance`` (DAC, DDC, TLC, LK), ``progress`` (EP)
and ``comfort`` (C, HC, EC); ``rasters`` answers the map questions. The exact, per-trajectory
shapely scorer it is cross-checked and benchmarked against is a test oracle
(``tests/oracles/reference.py``). Which rules apply is one :class:`ScoringProfile` value
(``profile.py``; ``navsim`` by default, ``harness`` the pre-profile rules).
"""

from teachers.scoring.aggregate import Metric, ScoreMatrix, score_candidates, score_states
from teachers.scoring.profile import (
    DEFAULT_PROFILE,
    HARNESS,
    NAVSIM,
    PROFILES,
    ScoringProfile,
    get_profile,
)

__all__ = [
    "DEFAULT_PROFILE",
    "HARNESS",
    "NAVSIM",
    "PROFILES",
    "Metric",
    "ScoreMatrix",
    "ScoringProfile",
    "get_profile",
    "score_candidates",
    "score_states",
]
