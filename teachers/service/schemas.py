"""Request and response models of the trajectory-generation service (pydantic 2).

Every number is finite and bounded, every array has a fixed or capped length, so a request that
validates is small enough to score within the time limit; geometry that needs the town (route on
a lane, lights by stop area, everything near the ego) is checked in :mod:`teachers.service.convert`.
Frames and units as everywhere: CARLA world frame, x, y [m], yaw [rad], speeds [m/s], box centres.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.dynamics.vehicle import LINCOLN_MKZ_2017
from harness.world.timing import HORIZON_STEPS
from teachers.scoring.profile import DEFAULT_PROFILE, PROFILES
from teachers.selection import MIN_SEPARATION_M

SCENE_STEPS = 41  # agent / light samples, t = 0 .. 4.0 s
PAST_STEPS = 16  # ego history, t = -1.5 .. 0 s (last = present)
MAX_AGENTS = 256  # agents per scene
MAX_LIGHTS = 64  # lights per scene
MAX_TRAJECTORIES = 256  # trajectories per /v1/score request
MAX_K = 64  # teachers per scene
MAX_ROUTE_POINTS = 4000  # route polyline vertices
MAX_PLAN_POINTS = 200  # global-plan keypoints
MAX_POLYGON_POINTS = 256  # stop-area polygon vertices
MAX_WKT_CHARS = 16_000  # stop-area WKT text
MAX_WKT_POINTS = 1024  # stop-area vertices over all rings and parts
MAX_COORD_M = 1.0e5  # |x|, |y| [m]; CARLA towns span a few km
MAX_SPEED_MPS = 80.0  # |speed| [m/s]
MAX_ACCEL_MPS2 = 50.0  # |accel| [m/s2]
MAX_YAW_RATE_RADPS = 20.0  # |yaw rate| [rad/s]
MAX_ANGLE_RAD = 100.0  # |yaw| [rad] (wrapped downstream)
MAX_DIM_M = 30.0  # agent / ego box length and width [m]
NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"  # town names and ids: no paths, no spaces

# JSON types are strict field by field (a number must be a JSON number, a flag true / false, a
# count an integer: "k": true or "simulate": "yes" are errors); arrays stay arrays of these
# (a model-wide strict mode would refuse JSON arrays for the tuple-typed rows).
Coord = Annotated[float, Field(ge=-MAX_COORD_M, le=MAX_COORD_M, allow_inf_nan=False, strict=True)]
Angle = Annotated[
    float, Field(ge=-MAX_ANGLE_RAD, le=MAX_ANGLE_RAD, allow_inf_nan=False, strict=True)
]
Speed = Annotated[
    float, Field(ge=-MAX_SPEED_MPS, le=MAX_SPEED_MPS, allow_inf_nan=False, strict=True)
]
Accel = Annotated[
    float, Field(ge=-MAX_ACCEL_MPS2, le=MAX_ACCEL_MPS2, allow_inf_nan=False, strict=True)
]
YawRate = Annotated[
    float, Field(ge=-MAX_YAW_RATE_RADPS, le=MAX_YAW_RATE_RADPS, allow_inf_nan=False, strict=True)
]
Dim = Annotated[float, Field(gt=0.0, le=MAX_DIM_M, allow_inf_nan=False, strict=True)]
Flag = Annotated[bool, Field(strict=True)]
Point = tuple[Coord, Coord]
Pose = tuple[Coord, Coord, Angle]
Trajectory = Annotated[list[Pose], Field(min_length=HORIZON_STEPS, max_length=HORIZON_STEPS)]
LightStateName = Literal["red", "yellow", "green", "off"]
AgentKindName = Literal["vehicle", "pedestrian", "bicycle", "static", "emergency"]


def exactly_one(first: str, second: str) -> dict[str, Any]:
    """JSON-schema rule "exactly one of two optional fields is given" (null counts as not
    given, as in the model), so generated clients and fuzzers see the rule the validator
    enforces."""
    return {
        "oneOf": [
            {"required": [first], "properties": {first: {"not": {"type": "null"}},
                                                  second: {"type": "null"}}},
            {"required": [second], "properties": {second: {"not": {"type": "null"}},
                                                   first: {"type": "null"}}},
        ]
    }  # fmt: skip


def stop_area_geometry(area: str | list[tuple[float, float]]) -> shapely.Geometry:
    """A light's stop area as a valid, non-empty, finite (multi)polygon inside the coordinate
    bounds; ValueError saying what is wrong otherwise (GEOS must never see inf or NaN)."""
    try:
        if isinstance(area, str):
            with np.errstate(invalid="ignore"):  # "nan" in the text: refused below
                geom = shapely.from_wkt(area)
        else:
            geom = shapely.Polygon(np.asarray(area, dtype=np.float64))
    except (shapely.errors.GEOSException, ValueError) as exc:
        raise ValueError(f"not a valid polygon: {exc}") from None
    if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValueError("must be a non-empty polygon or multipolygon")
    xy = shapely.get_coordinates(geom)
    if len(xy) > MAX_WKT_POINTS:
        raise ValueError(f"has {len(xy)} vertices; at most {MAX_WKT_POINTS}")
    if not np.isfinite(xy).all() or np.abs(xy).max() > MAX_COORD_M:
        raise ValueError(f"coordinates must be finite and within +-{MAX_COORD_M:g} m")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if geom.area <= 0.0:
        raise ValueError("has no area (collinear or repeated vertices)")
    return geom


class Strict(BaseModel):
    """Base: unknown fields are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class Ego(Strict):
    """The ego at t = 0: box-centre pose, motion and box (defaults: Lincoln MKZ 2017)."""

    x: Coord
    y: Coord
    yaw: Angle
    speed: Speed
    accel: Accel = 0.0
    yaw_rate: YawRate = 0.0
    length: Dim = LINCOLN_MKZ_2017.length_m
    width: Dim = LINCOLN_MKZ_2017.width_m
    wheelbase: Dim = LINCOLN_MKZ_2017.wheelbase_m


PastRow = tuple[Coord, Coord, Angle, Speed, Accel, YawRate]


class AgentState(Strict):
    """An agent's current state; it is forecast at constant speed and heading."""

    x: Coord
    y: Coord
    yaw: Angle
    speed: Speed = 0.0


class Agent(Strict):
    """Another road user: its box and either its future (41 rows [x, y, yaw, speed] at t = 0 ..
    4 s, optional ``valid`` mask) or only its current ``state``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=exactly_one("state", "future"))

    id: int | None = Field(default=None, ge=-(2**62), le=2**62, strict=True)
    kind: AgentKindName = "vehicle"
    length: Dim
    width: Dim
    state: AgentState | None = None
    future: (
        Annotated[
            list[tuple[Coord, Coord, Angle, Speed]],
            Field(min_length=SCENE_STEPS, max_length=SCENE_STEPS),
        ]
        | None
    ) = None
    valid: Annotated[list[Flag], Field(min_length=SCENE_STEPS, max_length=SCENE_STEPS)] | None = (
        None
    )

    @model_validator(mode="after")
    def _one_motion(self) -> Agent:
        if (self.state is None) == (self.future is None):
            raise ValueError("give exactly one of 'state' (forecast) or 'future' (41 rows)")
        if self.valid is not None and self.future is None:
            raise ValueError("'valid' goes with 'future'")
        if self.valid is not None and not any(self.valid):
            raise ValueError("'valid' must mark at least one step")
        return self


class Light(Strict):
    """A traffic light: the town's ``light_id`` or its ``stop_area`` (WKT or a polygon ring
    [[x, y], ...]), and its ``state`` held over 4 s or its ``states`` at t = 0 .. 4 s."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            **exactly_one("state", "states"),
            "anyOf": [{"required": ["light_id"]}, {"required": ["stop_area"]}],
        },
    )

    light_id: str | None = Field(default=None, min_length=1, max_length=128)
    stop_area: (
        Annotated[str, Field(min_length=1, max_length=MAX_WKT_CHARS)]
        | Annotated[list[Point], Field(min_length=3, max_length=MAX_POLYGON_POINTS)]
        | None
    ) = None
    state: LightStateName | None = None
    states: (
        Annotated[list[LightStateName], Field(min_length=SCENE_STEPS, max_length=SCENE_STEPS)]
        | None
    ) = None

    @field_validator("stop_area")
    @classmethod
    def _area(
        cls, area: str | list[tuple[float, float]] | None
    ) -> str | list[tuple[float, float]] | None:
        if area is not None:
            stop_area_geometry(area)
        return area

    @model_validator(mode="after")
    def _identified(self) -> Light:
        if self.light_id is None and self.stop_area is None:
            raise ValueError("give 'light_id' or 'stop_area' to identify the light")
        if (self.state is None) == (self.states is None):
            raise ValueError("give exactly one of 'state' or 'states' (41 values)")
        return self


class Route(Strict):
    """The route: a ``polyline`` of points [x, y] in driving order (on the town's lanes), or a
    ``global_plan`` of keypoints [x, y] connected along the lane graph like a route file."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=exactly_one("polyline", "global_plan")
    )

    polyline: Annotated[list[Point], Field(min_length=2, max_length=MAX_ROUTE_POINTS)] | None = None
    global_plan: Annotated[list[Point], Field(min_length=2, max_length=MAX_PLAN_POINTS)] | None = (
        None
    )

    @model_validator(mode="after")
    def _one_form(self) -> Route:
        if (self.polyline is None) == (self.global_plan is None):
            raise ValueError("give exactly one of 'polyline' or 'global_plan'")
        return self


class Reference(Strict):
    """A reference (logged / expert) drive: its real ``future`` and optionally its ``plan`` at
    this instant. Scored as candidates and used for NAVSIM's human filter."""

    future: Trajectory
    plan: Trajectory | None = None


class Scene(Strict):
    """One scene: town, ego (+ 1.5 s of past), agents, lights, route and optional extras."""

    town: str = Field(pattern=NAME_PATTERN, examples=["Town05"])
    scene_id: str = Field(default="request", pattern=NAME_PATTERN)
    ego: Ego
    past: Annotated[list[PastRow], Field(min_length=PAST_STEPS, max_length=PAST_STEPS)] | None = (
        Field(
            default=None,
            description="16 rows [x, y, yaw, speed, accel, yaw_rate] at t = -1.5 .. 0 s; "
            "when omitted the ego is assumed to have driven at constant velocity",
        )
    )
    agents: Annotated[list[Agent], Field(max_length=MAX_AGENTS)] = []
    lights: Annotated[list[Light], Field(max_length=MAX_LIGHTS)] = []
    route: Route
    previous_plan: (
        Annotated[list[Pose], Field(min_length=SCENE_STEPS, max_length=SCENE_STEPS)] | None
    ) = Field(default=None, description="the plan made 0.5 s ago, 41 poses from t = -0.5 s (EC)")
    reference: Reference | None = None


class Options(Strict):
    """Selection options (defaults as gen-teachers). ``vocabulary`` names a registered
    vocabulary by id (never a path; default: the service's); ``vocabulary_sha256``, when given,
    must be that vocabulary's hash; ``seed`` and ``pool_cap`` draw the pool as gen-teachers;
    ``profile`` names a registered scoring profile (teachers.scoring.profile.PROFILES)."""

    threshold: float = Field(default=0.95, ge=0.0, le=1.0, allow_inf_nan=False, strict=True)
    min_separation_m: float = Field(
        default=MIN_SEPARATION_M, ge=0.0, le=50.0, allow_inf_nan=False, strict=True
    )
    use_vocabulary: Flag = True
    vocabulary: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=64)
    vocabulary_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, strict=True)
    pool_cap: int = Field(default=256, ge=0, le=8192, strict=True)
    profile: str = Field(default=DEFAULT_PROFILE.name, max_length=64)

    @field_validator("profile")
    @classmethod
    def _registered_profile(cls, v: str) -> str:
        if v not in PROFILES:
            raise ValueError(f"unknown scoring profile; use one of {', '.join(sorted(PROFILES))}")
        return v


class TeachersRequest(Strict):
    """POST /v1/teachers."""

    scene: Scene
    k: int = Field(default=8, ge=1, le=MAX_K, strict=True)
    options: Options = Options()


class ScoreRequest(Strict):
    """POST /v1/score: trajectories of 40 poses [x, y, yaw] at t = 0.1 .. 4.0 s."""

    scene: Scene
    trajectories: Annotated[list[Trajectory], Field(min_length=1, max_length=MAX_TRAJECTORIES)]
    simulate: bool = Field(
        True,
        strict=True,
        description="Track the trajectories with the LQR + bicycle rollout before scoring (NAVSIM); "
        "false scores the poses as given, e.g. a dataset's already simulated teacher poses.",
    )


class SubScores(BaseModel):
    """PDMS / EPDMS sub-scores and aggregates of one trajectory (docs/TEACHERS.md)."""

    nc: float
    dac: float
    ddc: float
    tlc: float
    ep: float
    ttc: float
    lk: float
    c: float
    hc: float
    ec: float
    pdms: float
    epdms: float


class Teacher(BaseModel):
    """One teacher: rank (0 = best), source, simulated poses (40 x [x, y, yaw]) and scores."""

    rank: int
    source: str
    poses: list[tuple[float, float, float]]
    scores: SubScores
    progress_m: float


class Counts(BaseModel):
    """Candidates scored (total and by source), passing and kept."""

    candidates: int
    vocabulary: int
    lattice: int
    expert: int
    passed: int
    teachers: int
    pool: int = 0
    modes_available: int = 0
    modes_kept: int = 0


class VocabularyInfo(BaseModel):
    """The vocabulary a scene was scored with: registered id (None: a file given at start-up),
    content hash and size."""

    id: str | None
    sha256: str
    size: int


class TeachersResponse(BaseModel):
    """K teachers with every sub-score, and how many candidates were scored and passed."""

    scene_id: str
    town: str
    k: int
    counts: Counts
    coverage: float
    max_gap_m: float
    teachers: list[Teacher]
    pool: list[int] = Field(description="passing vocabulary entries (Drive-JEPA's index file)")
    vocabulary: VocabularyInfo | None
    seconds: float


class ScoredTrajectory(BaseModel):
    """Scores of one caller trajectory and its simulated poses (LQR + bicycle rollout)."""

    index: int
    scores: SubScores
    progress_m: float
    poses: list[tuple[float, float, float]]


class ScoreResponse(BaseModel):
    """POST /v1/score answer, one entry per trajectory in request order."""

    scene_id: str
    town: str
    results: list[ScoredTrajectory]
    seconds: float


class TownInfo(BaseModel):
    """A town the service can load."""

    name: str
    origin: str
    loaded: bool


class TownsResponse(BaseModel):
    """GET /v1/towns."""

    towns: list[TownInfo]


class Health(BaseModel):
    """GET /healthz."""

    status: str
    active: int
    queued: int
    capacity: int
