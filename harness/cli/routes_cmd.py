"""`harness routes info|check FILE`: summarise and validate leaderboard route files. Both list the
scenarios whose type has no implementation in ``scenarios.registry`` (count per type and the
routes naming it): such routes run without them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.main import app, command_group
from harness.errors import RouteFileError, UnknownTownError
from harness.routes.check import (
    CheckReport,
    UnimplementedScenario,
    check_route_file,
    unimplemented_by_type,
    unimplemented_scenarios,
)
from harness.routes.xml_io import read_route_file

routes_app = command_group(
    "Leaderboard route files: summary (info) and validation against the towns at hand (check)."
)
app.add_typer(routes_app, name="routes")
console = Console()

FILE_ARG = typer.Argument(
    ..., help="Route XML file (Leaderboard 2.0, or 1.0 with <waypoint> elements)."
)


def _town_available(name: str) -> bool:
    """Whether a town name resolves ($HARNESS_MAPS, $CARLA_ROOT, built-ins), without loading it."""
    from harness.maps import resolve_town

    try:
        resolve_town(name)
    except UnknownTownError:
        return False
    return True


def implemented_types() -> frozenset[str]:
    """The scenario types with a class in the scenario registry (read at call time)."""
    from scenarios.registry import SCENARIO_CLASSES

    return frozenset(SCENARIO_CLASSES)


def print_unimplemented(found: tuple[UnimplementedScenario, ...]) -> None:
    """A table of the unimplemented scenario types (count, routes) and a one-line warning."""
    if not found:
        return
    by_type = unimplemented_by_type(found)
    table = Table(title="Scenario types not implemented (routes run without them)")
    table.add_column("type")
    table.add_column("count", justify="right")
    table.add_column("routes")
    for name, (n, ids) in by_type.items():
        table.add_row(name, str(n), ", ".join(ids))
    console.print(table)
    n_routes = len({u.route_id for u in found})
    console.print(
        f"[yellow]warning[/]: {len(found)} scenarios of {len(by_type)} types are not implemented; "
        f"{n_routes} routes would run without them"
    )


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise RouteFileError(f"route file {path} does not exist; pass the path of a route XML file")


def _require_runnable(file: Path, report: CheckReport) -> None:
    """A file with no route that can run here is bad input (exit 2), not a pass: an empty file,
    or routes only on towns that are not available."""
    if not report.routes:
        raise RouteFileError(f"{file} holds no routes; give a file with <route> elements")
    if not report.runnable:
        missing = sorted({r.town for r in report.routes})
        unloadable = [p.message for p in report.problems if p.kind == "town_unloadable"]
        why = f" ({unloadable[0]})" if unloadable else ""
        raise UnknownTownError(
            f"no route of {file} can run here: town(s) {', '.join(missing)} not available{why}; "
            "put their .xodr files in a $HARNESS_MAPS folder or set $CARLA_ROOT "
            "(`harness towns` lists what is found)"
        )


@routes_app.command("info")
def info(file: Path = FILE_ARG) -> None:
    """Route count, towns, scenario types and which routes can run with the maps at hand."""
    _require_file(file)
    routes = read_route_file(file)
    towns = Counter(r.town for r in routes)
    available = {t: _town_available(t) for t in sorted(towns)}
    types = Counter(sc.type for r in routes for sc in r.scenarios)
    implemented = implemented_types()
    console.print(f"[bold]{file}[/]: {len(routes)} routes, {sum(types.values())} scenarios")
    t_table = Table(title="Towns")
    t_table.add_column("town")
    t_table.add_column("routes", justify="right")
    t_table.add_column("map available")
    for t in sorted(towns):
        t_table.add_row(t, str(towns[t]), "yes" if available[t] else "[dim]no[/]")
    console.print(t_table)
    if types:
        s_table = Table(title="Scenario types")
        s_table.add_column("type")
        s_table.add_column("count", justify="right")
        s_table.add_column("implemented")
        for name, n in sorted(types.items()):
            s_table.add_row(name, str(n), "yes" if name in implemented else "[red]no[/]")
        console.print(s_table)
    runnable = sum(n for t, n in towns.items() if available[t])
    console.print(f"runnable routes: {runnable} of {len(routes)}")
    print_unimplemented(unimplemented_scenarios(routes, implemented))


@routes_app.command("check")
def check(file: Path = FILE_ARG) -> None:
    """Plan every runnable route and report each problem; exit status 1 if there is any, 2 when
    no route can run here (empty file, or no route's town available). Scenarios of unimplemented
    types are listed as a warning (not a problem: the routes run without them)."""
    _require_file(file)
    report = check_route_file(file, implemented=implemented_types())
    _require_runnable(file, report)
    if report.problems:
        table = Table(title="Problems")
        table.add_column("route")
        table.add_column("where")
        table.add_column("problem")
        for p in report.problems:
            table.add_row(p.route_id, p.where, p.message)
        console.print(table)
    print_unimplemented(report.unimplemented)
    n_run = len(report.runnable)
    bad_routes = len({p.route_id for p in report.problems})
    status = "[green]OK[/]" if report.ok else "[red]FAILED[/]"
    console.print(
        f"{status}: {len(report.routes)} routes, {n_run} runnable, {len(report.routes) - n_run} not runnable "
        f"(town not available), {len(report.problems)} problems in {bad_routes} routes"
    )
    if not report.ok:
        # SystemExit, not typer.Exit: main() runs the app with standalone_mode=False, where click
        # turns typer.Exit into a return value that main() does not pass on.
        raise SystemExit(1)
