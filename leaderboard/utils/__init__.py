"""``leaderboard.utils``: route manipulation."""
