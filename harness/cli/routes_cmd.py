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


def _scenario_types(types: str, registered: bool) -> list[str]:
    """The types a suite covers: the comma list, the registered ones, or every Bench2Drive type."""
    from harness.routes.make import RULES, rule_for

    if types:
        names = [t.strip() for t in types.split(",") if t.strip()]
        for name in names:
            rule_for(name)
        return names
    if registered:
        from scenarios.registry import SCENARIO_CLASSES

        return [t for t in RULES if t in SCENARIO_CLASSES]
    return list(RULES)


@routes_app.command("make")
def make(
    town: str = typer.Option(..., "--town", help="Town to place the routes on (`harness towns`)."),
    scenario: str = typer.Option(
        ..., "--scenario", help="Bench2Drive scenario type, e.g. Accident."
    ),
    count: int = typer.Option(5, "--count", min=1, help="Number of routes (distinct places)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the place order and parameter draws."),
    out: Path | None = typer.Option(
        None, "--out", help="Route XML to write (default routes_<town>_<type>.xml)."
    ),
    weather: str = typer.Option(
        "", "--weather", help="Weather values, e.g. 'cloudiness=40,wetness=50'."
    ),
) -> None:
    """Leaderboard 2.0 routes of Bench2Drive length, one scenario each, at places of the town where
    the type fits; every route passes `routes check`. Exit 2 when the town has no such place."""
    from harness.maps import load_town
    from harness.routes.make import make_routes, parse_weather
    from harness.routes.xml_io import write_routes

    values = parse_weather(weather)
    routes = make_routes(load_town(town), scenario, count, seed, values)
    target = out or Path(f"routes_{town}_{scenario}.xml")
    write_routes(routes, target)
    if len(routes) < count:
        console.print(f"[yellow]only {len(routes)} distinct places for {scenario} on {town}[/]")
    console.print(f"wrote {len(routes)} {scenario} routes on {town} to {target}")


@routes_app.command("make-suite")
def make_suite_cmd(
    towns: str = typer.Option(..., "--towns", help="Comma-separated towns, e.g. Town01,Town03."),
    out: Path = typer.Option(..., "--out", help="Route XML to write."),
    per_type: int = typer.Option(5, "--per-type", min=1, help="Routes per scenario type."),
    seed: int = typer.Option(0, "--seed", help="Seed of the place order and parameter draws."),
    types: str = typer.Option("", "--types", help="Comma-separated types (default: all 44)."),
    registered: bool = typer.Option(
        False, "--registered", help="Only the types this checkout implements (scenarios.registry)."
    ),
    weather: str = typer.Option(
        "", "--weather", help="Weather values, e.g. 'cloudiness=40,wetness=50'."
    ),
) -> None:
    """A suite: --per-type routes of every type spread over the towns (ids 0..N-1, one file);
    lists the types some town has no place for and those that got fewer routes."""
    from harness.maps import load_town
    from harness.routes.make import make_suite, parse_weather
    from harness.routes.xml_io import write_routes

    names = [t.strip() for t in towns.split(",") if t.strip()]
    if not names:
        raise RouteFileError("--towns is empty; give comma-separated town names")
    loaded = [load_town(n) for n in names]
    result = make_suite(loaded, _scenario_types(types, registered), per_type, seed,
                        parse_weather(weather))  # fmt: skip
    if not result.routes:
        raise RouteFileError(f"no scenario type has a place on {', '.join(names)}; nothing written")
    write_routes(result.routes, out)
    if result.missing:
        table = Table(title="Towns without a place")
        table.add_column("type")
        table.add_column("towns")
        table.add_column("routes", justify="right")
        for name, where in result.missing.items():
            got = result.short.get(name, per_type)
            table.add_row(name, ", ".join(where), f"{got}" if got < per_type else "ok")
        console.print(table)
    counts = Counter(r.scenarios[0].type for r in result.routes)
    console.print(
        f"wrote {len(result.routes)} routes ({len(counts)} types, {len(result.short)} short of "
        f"{per_type}) on {', '.join(names)} to {out}"
    )
