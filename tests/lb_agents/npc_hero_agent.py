# ruff: noqa  (written in the leaderboard's own style on purpose: its imports, order and quoting)
"""The part of the NPC agent that runs without CARLA's PythonAPI: find the hero through
CarlaDataProvider.get_world().get_actors() by its role_name and turn the global plan's transforms
into map waypoints with CarlaDataProvider.get_map().get_waypoint; then stand still."""

from __future__ import print_function

import carla
from srunner.scenariomanager.carla_data_provider import CarlaDataProvider

from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track


def get_entry_point():
    return 'NpcHeroAgent'


class NpcHeroAgent(AutonomousAgent):

    _hero = None

    def setup(self, path_to_conf_file):
        self.track = Track.SENSORS
        self._hero = None
        self.plan_waypoints = []

    def sensors(self):
        return []

    def run_step(self, input_data, timestamp):
        if not self._hero:
            hero_actor = None
            for actor in CarlaDataProvider.get_world().get_actors():
                if 'role_name' in actor.attributes and actor.attributes['role_name'] == 'hero':
                    hero_actor = actor
                    break
            if not hero_actor:
                return carla.VehicleControl()
            self._hero = hero_actor
            for transform, _ in self._global_plan_world_coord:
                self.plan_waypoints.append(CarlaDataProvider.get_map().get_waypoint(transform.location))

        control = carla.VehicleControl()
        control.brake = 1.0
        return control
