# ruff: noqa  (written in the leaderboard's own style on purpose: its imports, order and quoting)
"""An agent in the Bench2Drive style: ``from leaderboard.autoagents import autonomous_agent``,
the base class finding the hero in ``__init__`` (CarlaDataProvider.get_world().get_actors()),
``get_metric_info()`` every step, and a slow straight drive with carla.VehicleControl."""

import carla

from leaderboard.autoagents import autonomous_agent


def get_entry_point():
    return 'B2dDummyAgent'


class B2dDummyAgent(autonomous_agent.AutonomousAgent):

    def setup(self, path_to_conf_file):
        self.track = autonomous_agent.Track.SENSORS
        self.metric_info = {}
        self.step = -1

    def sensors(self):
        return [
            {'type': 'sensor.other.gnss', 'x': 0.0, 'y': 0.0, 'z': 0.0, 'roll': 0.0, 'pitch': 0.0,
             'yaw': 0.0, 'sensor_tick': 0.01, 'id': 'GPS'},
            {'type': 'sensor.speedometer', 'reading_frequency': 20, 'id': 'SPEED'},
        ]

    def run_step(self, input_data, timestamp):
        self.step += 1
        self.metric_info[self.step] = self.get_metric_info()
        control = carla.VehicleControl()
        control.steer = 0.0
        control.throttle = 0.3 if input_data['SPEED'][1]['speed'] < 4.0 else 0.0
        control.brake = 0.0
        return control
