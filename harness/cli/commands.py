"""Imports every command module so that each registers its commands on the root app."""

from harness.cli import (
    demo_cmd,  # noqa: F401
    doctor_cmd,  # noqa: F401
    eval_cmd,  # noqa: F401
    replay_cmd,  # noqa: F401
    report_cmd,  # noqa: F401
    routes_cmd,  # noqa: F401
    serve_cmd,  # noqa: F401,E402
    sim_cmd,  # noqa: F401
    teachers_cmd,  # noqa: F401,E402
    towns_cmd,  # noqa: F401
    train_cmd,  # noqa: F401
)
