"""The planner's one front camera: where it sits, how large its image is, and the leaderboard
sensor dict that declares it. Data collection renders recordings with the same setup the agent
declares, so training and driving see the same pixels."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

FRONT_CAMERA_ID = "rgb_front"
FRAME_PERIOD_S = 0.5  # [s] the planner's two frames are t - 0.5 s and t (Drive-JEPA)


@dataclass(frozen=True)
class CameraSetup:
    """A forward-looking pinhole camera on the ego (leaderboard mount convention: metres from the
    vehicle's centre, x forward, y right, z up; degrees)."""

    width: int = 256  # [px]
    height: int = 128  # [px]
    fov_deg: float = 100.0  # horizontal field of view [deg]
    x: float = 1.5  # [m]
    y: float = 0.0  # [m]
    z: float = 2.0  # [m]
    pitch_deg: float = 0.0  # [deg]

    def sensor(self, reading_frequency: float = 20.0) -> dict[str, Any]:
        """The leaderboard sensor dict for this camera (``sensors()`` entry)."""
        return {
            "type": "sensor.camera.rgb",
            "id": FRONT_CAMERA_ID,
            "x": self.x, "y": self.y, "z": self.z,
            "roll": 0.0, "pitch": self.pitch_deg, "yaw": 0.0,
            "width": self.width, "height": self.height, "fov": self.fov_deg,
            "reading_frequency": reading_frequency,
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CameraSetup:
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})
