"""Drive-JEPA inside the harness: data collection from simulator drives, a video JEPA encoder,
the proposal-centric planner with multimodal trajectory distillation, and the runtime the
leaderboard agent file (``agents/drivejepa_agent.py``) hosts.

Layering: this package may import ``harness``, ``teachers`` and ``scenarios``; nothing in those
imports it, except ``harness.cli`` inside its ``collect`` / ``train`` commands (the CLI edge).
The contract between its parts is ``docs/DRIVEJEPA.md``.
"""
