"""Closed-loop CARLA simulation harness: maps, routes, simulators, metrics and teachers."""

__version__ = "0.1.0"
