"""``leaderboard.envs``: the sensor interface."""
