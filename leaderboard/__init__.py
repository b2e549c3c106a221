"""CARLA leaderboard compatibility layer shipped with the harness: ``leaderboard.autoagents``
(the agent base class), ``leaderboard.envs.sensor_interface`` and ``leaderboard.utils``
(route downsampling, GPS conversion), so leaderboard and Bench2Drive agent files run unchanged.
Written from the leaderboard's documented behaviour; it is not the leaderboard (no evaluator).
Within a harness process these packages shadow a real leaderboard checkout (README.md)."""
