# ruff: noqa  (written in the leaderboard's own style on purpose: its imports, order and quoting)
"""An NPC agent in the leaderboard / Bench2Drive style: CARLA's BasicAgent drives the hero (found
through CarlaDataProvider.get_world().get_actors() by its role_name) along the global plan, traced
between the waypoints CarlaDataProvider.get_map() gives for the plan's transforms. Needs CARLA's
PythonAPI ``agents`` package on sys.path."""

from __future__ import print_function

import carla
from agents.navigation.basic_agent import BasicAgent
from srunner.scenariomanager.carla_data_provider import CarlaDataProvider

from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track


def get_entry_point():
    return 'LbNpcAgent'


class LbNpcAgent(AutonomousAgent):

    _agent = None

    def setup(self, path_to_conf_file):
        self.track = Track.SENSORS
        self._agent = None

    def sensors(self):
        return [
            {'type': 'sensor.camera.rgb', 'x': 0.7, 'y': -0.4, 'z': 1.60, 'roll': 0.0, 'pitch': 0.0,
             'yaw': 0.0, 'width': 64, 'height': 48, 'fov': 100, 'id': 'Left'},
        ]

    def run_step(self, input_data, timestamp):
        if not self._agent:
            hero_actor = None
            for actor in CarlaDataProvider.get_world().get_actors():
                if 'role_name' in actor.attributes and actor.attributes['role_name'] == 'hero':
                    hero_actor = actor
                    break
            if not hero_actor:
                return carla.VehicleControl()

            self._agent = BasicAgent(hero_actor, 30)
            plan = []
            prev_wp = None
            for transform, _ in self._global_plan_world_coord:
                wp = CarlaDataProvider.get_map().get_waypoint(transform.location)
                if prev_wp:
                    plan.extend(self._agent.trace_route(prev_wp, wp))
                prev_wp = wp
            self._agent.set_global_plan(plan)
            return carla.VehicleControl()

        return self._agent.run_step()
