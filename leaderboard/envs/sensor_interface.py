"""``SensorInterface``: the agent's mailbox of sensor data, one entry per sensor per frame.

The evaluator registers every declared sensor (``register_sensor``) and delivers each reading with
its frame (``update_sensor``); the base class's ``__call__`` collects one frame with ``get_data``.
As the leaderboard's, the OpenDRIVE map sensor (read at 1 Hz) is not waited for. Single-threaded
here (the harness delivers the data before it calls the agent), so no queue or timeout."""

from __future__ import annotations

from typing import Any

OPENDRIVE_TYPE = "sensor.opendrive_map"


class SensorConfigurationInvalid(Exception):
    """A sensor registered twice (or otherwise misconfigured)."""


class SensorReceivedNoData(Exception):
    """A registered sensor delivered nothing for the frame asked for."""


class SensorInterface:
    """Registered sensors and the readings delivered for them, by frame."""

    def __init__(self) -> None:
        self._sensors_objects: dict[str, Any] = {}
        self._data: dict[str, tuple[int, Any]] = {}  # tag -> (frame, data) of the latest reading
        self._opendrive_tag: str | None = None

    def register_sensor(self, tag: str, sensor_type: str, sensor: Any) -> None:
        """Declare sensor ``tag`` of ``sensor_type`` (``sensor`` is the simulator's object or
        None on the embedded backend)."""
        if tag in self._sensors_objects:
            raise SensorConfigurationInvalid(f"Duplicated sensor tag [{tag}]")
        self._sensors_objects[tag] = sensor
        if sensor_type == OPENDRIVE_TYPE:
            self._opendrive_tag = tag

    def update_sensor(self, tag: str, data: Any, frame: int) -> None:
        """Deliver ``data`` of sensor ``tag`` for ``frame``."""
        if tag not in self._sensors_objects:
            raise SensorConfigurationInvalid(f"The sensor with tag [{tag}] has not been created!")
        self._data[tag] = (int(frame), data)

    def get_data(self, frame: int) -> dict[str, tuple[int, Any]]:
        """{tag: (frame, data)} of every sensor that delivered for ``frame``; every registered
        sensor but the OpenDRIVE map must have."""
        out = {tag: fd for tag, fd in self._data.items() if fd[0] == frame}
        missing = [t for t in self._sensors_objects if t not in out and t != self._opendrive_tag]
        if missing:
            raise SensorReceivedNoData(
                f"sensors {', '.join(missing)} delivered no data for frame {frame}"
            )
        return out
