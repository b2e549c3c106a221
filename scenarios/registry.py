"""The scenario types a route file may name, mapped to their classes (an explicit dict, built
here at the edge). Types missing from it are skipped by RouteScenario with a logged warning, as
the leaderboard does."""

from __future__ import annotations

from scenarios.basic import BasicScenario
from scenarios.crossing import DynamicObjectCrossing, ParkingCrossingPedestrian, PedestrianCrossing
from scenarios.cutins import ParkingCutIn, ParkingExit, StaticCutIn
from scenarios.flows import EnterActorFlow, MergerIntoSlowTrafficV2
from scenarios.hazards import ControlLoss, HardBreakRoute, YieldToEmergencyVehicle
from scenarios.highway import (
    HighwayCutIn,
    HighwayExit,
    InterurbanActorFlow,
    InterurbanAdvancedActorFlow,
    MergerIntoSlowTraffic,
    SequentialLaneChange,
)
from scenarios.junction_turns import (
    NonSignalizedJunctionRightTurn,
    OppositeVehicleTakingPriority,
    SignalizedJunctionLeftTurn,
    VanillaNonSignalizedTurn,
    VanillaNonSignalizedTurnEncounterStopsign,
    VanillaSignalizedTurnEncounterGreenLight,
    VanillaSignalizedTurnEncounterRedLight,
)
from scenarios.junctions import (
    BlockedIntersection,
    NonSignalizedJunctionLeftTurn,
    NonSignalizedJunctionLeftTurnEnterFlow,
    OppositeVehicleRunningRedLight,
    SignalizedJunctionLeftTurnEnterFlow,
    SignalizedJunctionRightTurn,
    T_Junction,
)
from scenarios.obstacles import (
    Accident,
    AccidentTwoWays,
    ConstructionObstacle,
    ConstructionObstacleTwoWays,
    HazardAtSideLane,
    HazardAtSideLaneTwoWays,
    ParkedObstacle,
    ParkedObstacleTwoWays,
)
from scenarios.urban import (
    CrossingBicycleFlow,
    InvadingTurn,
    VehicleOpensDoorTwoWays,
    VehicleTurningRoute,
    VehicleTurningRoutePedestrian,
)

SCENARIO_CLASSES: dict[str, type[BasicScenario]] = {
    cls.__name__: cls
    for cls in (
        Accident, AccidentTwoWays, BlockedIntersection, ConstructionObstacle,
        ConstructionObstacleTwoWays, ControlLoss, DynamicObjectCrossing, EnterActorFlow,
        HardBreakRoute, HazardAtSideLane, HazardAtSideLaneTwoWays, MergerIntoSlowTrafficV2,
        NonSignalizedJunctionLeftTurn, NonSignalizedJunctionLeftTurnEnterFlow,
        OppositeVehicleRunningRedLight, ParkedObstacle, ParkedObstacleTwoWays,
        ParkingCrossingPedestrian, ParkingCutIn, ParkingExit, PedestrianCrossing,
        SignalizedJunctionLeftTurnEnterFlow, SignalizedJunctionRightTurn, StaticCutIn,
        T_Junction, YieldToEmergencyVehicle,
        NonSignalizedJunctionRightTurn, OppositeVehicleTakingPriority, SignalizedJunctionLeftTurn,
        VanillaNonSignalizedTurn, VanillaNonSignalizedTurnEncounterStopsign,
        VanillaSignalizedTurnEncounterGreenLight, VanillaSignalizedTurnEncounterRedLight,
        CrossingBicycleFlow, InvadingTurn, VehicleOpensDoorTwoWays, VehicleTurningRoute,
        VehicleTurningRoutePedestrian,
        HighwayCutIn, HighwayExit, InterurbanActorFlow, InterurbanAdvancedActorFlow,
        MergerIntoSlowTraffic, SequentialLaneChange,
    )
}  # fmt: skip
