"""``leaderboard.autoagents``: the agent base class (``autonomous_agent``)."""
