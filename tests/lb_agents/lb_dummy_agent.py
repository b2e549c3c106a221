# ruff: noqa  (written in the leaderboard's own style on purpose: its imports, order and quoting)
"""A do-nothing agent written as the leaderboard 2.0's dummy agent is: imports the base class and
Track from leaderboard.autoagents.autonomous_agent, declares its sensors as dicts, prints what
each tick brings and returns a released carla.VehicleControl. Its lidar and radar are declared as the
leaderboard's dummy agent declares them."""

from __future__ import print_function

import carla

from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track


def get_entry_point():
    return 'LbDummyAgent'


class LbDummyAgent(AutonomousAgent):

    def setup(self, path_to_conf_file):
        self.track = Track.MAP

    def sensors(self):
        return [
            {'type': 'sensor.camera.rgb', 'x': 0.7, 'y': 0.0, 'z': 1.60, 'roll': 0.0, 'pitch': 0.0,
             'yaw': 0.0, 'width': 64, 'height': 48, 'fov': 100, 'id': 'Center'},
            {'type': 'sensor.lidar.ray_cast', 'x': 0.7, 'y': -0.4, 'z': 1.60, 'roll': 0.0, 'pitch': 0.0,
             'yaw': -45.0, 'id': 'LIDAR'},
            {'type': 'sensor.other.radar', 'x': 0.7, 'y': -0.4, 'z': 1.60, 'roll': 0.0, 'pitch': 0.0,
             'yaw': -45.0, 'fov': 30, 'id': 'RADAR', 'horizontal_fov': 30.0, 'vertical_fov': 30.0},
            {'type': 'sensor.other.gnss', 'x': 0.7, 'y': -0.4, 'z': 1.60, 'id': 'GPS'},
            {'type': 'sensor.other.imu', 'x': 0.7, 'y': -0.4, 'z': 1.60, 'roll': 0.0, 'pitch': 0.0,
             'yaw': -45.0, 'id': 'IMU'},
            {'type': 'sensor.opendrive_map', 'reading_frequency': 1, 'id': 'OpenDRIVE'},
        ]

    def run_step(self, input_data, timestamp):
        for key, val in input_data.items():
            if hasattr(val[1], 'shape'):
                print("[{} -- {:06d}] with shape {}".format(key, val[0], val[1].shape))
            else:
                print("[{} -- {:06d}] ".format(key, val[0]))

        control = carla.VehicleControl()
        control.steer = 0.0
        control.throttle = 0.0
        control.brake = 0.0
        control.hand_brake = False
        return control
