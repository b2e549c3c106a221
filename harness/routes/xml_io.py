"""Read and write leaderboard route files (2.0 XML; 1.0 XML plus its scenarios JSON).

Parsing keeps every attribute (weather values, scenario parameter elements, extra route
attributes) so that `write_routes(read_routes(f))` reads back to the same records. Parse errors
become RouteFileError naming the file and line, so the user can go and fix the file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.parsers import expat

import numpy as np

from harness.errors import RouteFileError
from harness.io import atomic_output
from harness.routes.model import OtherActor, Pose, RouteConfig, ScenarioConfig, Weather
from harness.routes.model import triggers_near_route as _triggers_near_route

if TYPE_CHECKING:
    from harness.maps import Town
    from harness.routes.interpolate import PlannedRoute

log = logging.getLogger(__name__)

_ROUTE_KNOWN = ("id", "town")


class _Doc:
    """A parsed XML file with the line number of every element (for error messages)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[ET.Element, int] = {}
        builder = ET.TreeBuilder()
        parser = expat.ParserCreate()

        def start(tag: str, attrs: dict[str, str]) -> None:
            self.lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

        parser.StartElementHandler = start
        parser.EndElementHandler = builder.end
        try:
            with path.open("rb") as f:
                parser.ParseFile(f)
        except OSError as exc:
            raise RouteFileError(f"cannot read route file {path}: {exc.strerror or exc}") from exc
        except expat.ExpatError as exc:
            raise RouteFileError(
                f"{path}:{exc.lineno}:{exc.offset + 1}: malformed XML ({expat.ErrorString(exc.code)}); "
                "fix the file at that line"
            ) from exc
        self.root: ET.Element = builder.close()

    def where(self, elem: ET.Element) -> str:
        """'file:line' of an element."""
        return f"{self.path}:{self.lines.get(elem, 0)}"

    def attr(self, elem: ET.Element, name: str, route_id: str) -> str:
        """A required attribute; RouteFileError naming route, element and line when absent."""
        value = elem.get(name)
        if value is None:
            raise RouteFileError(
                f"{self.where(elem)}: route {route_id}: <{elem.tag}> lacks the required attribute "
                f"'{name}'; add it"
            )
        return value

    def num(
        self, elem: ET.Element, name: str, route_id: str, default: float | None = None
    ) -> float:
        """A numeric attribute (required unless a default is given)."""
        if default is not None and elem.get(name) is None:
            return default
        text = self.attr(elem, name, route_id)
        try:
            value = float(text)
        except ValueError as exc:
            raise RouteFileError(
                f'{self.where(elem)}: route {route_id}: <{elem.tag} {name}="{text}"> is not a number'
            ) from exc
        if not math.isfinite(value):
            raise RouteFileError(
                f'{self.where(elem)}: route {route_id}: <{elem.tag} {name}="{text}"> is not a '
                "finite number; give a coordinate in metres (degrees for yaw)"
            )
        return value


def _pose(doc: _Doc, elem: ET.Element, route_id: str) -> Pose:
    return (
        doc.num(elem, "x", route_id),
        doc.num(elem, "y", route_id),
        doc.num(elem, "z", route_id),
        doc.num(elem, "yaw", route_id),
    )


def _read_weathers(doc: _Doc, elem: ET.Element, route_id: str) -> tuple[Weather, ...]:
    out = []
    for w in elem.iter("weather"):
        values = {k: doc.num(w, k, route_id) for k in w.attrib if k != "route_percentage"}
        out.append(Weather(doc.num(w, "route_percentage", route_id), values))
    return tuple(out)


def _read_scenarios(doc: _Doc, elem: ET.Element, route_id: str) -> tuple[ScenarioConfig, ...]:
    out = []
    for sc in elem.findall("scenario"):
        name, stype = doc.attr(sc, "name", route_id), doc.attr(sc, "type", route_id)
        trigger = sc.find("trigger_point")
        if trigger is None:
            raise RouteFileError(
                f"{doc.where(sc)}: route {route_id}: scenario {name} has no <trigger_point>; add one"
            )
        params: dict[str, dict[str, str]] = {}
        for p in sc:
            if p.tag == "trigger_point":
                continue
            if p.tag in params:
                log.warning(
                    "%s: scenario %s repeats <%s>; the last one wins", doc.where(p), name, p.tag
                )
            params[p.tag] = dict(p.attrib)
        out.append(ScenarioConfig(name, stype, _pose(doc, trigger, route_id), params))
    return tuple(out)


def _read_route(doc: _Doc, elem: ET.Element) -> RouteConfig:
    route_id = elem.get("id")
    if route_id is None:
        raise RouteFileError(
            f"{doc.where(elem)}: <route> lacks the required attribute 'id'; add it"
        )
    town = doc.attr(elem, "town", route_id)
    waypoints = elem.find("waypoints")
    positions = [] if waypoints is None else waypoints.findall("position")
    if not positions:
        raise RouteFileError(
            f"{doc.where(elem)}: route {route_id} has no <waypoints><position .../></waypoints>; add them"
        )
    keypoints = np.array(
        [[doc.num(p, k, route_id) for k in ("x", "y", "z")] for p in positions], dtype=np.float64
    )
    weathers_el, scenarios_el = elem.find("weathers"), elem.find("scenarios")
    for child in elem:
        if child.tag not in ("waypoints", "weathers", "scenarios"):
            log.warning(
                "%s: route %s: unknown element <%s> ignored", doc.where(child), route_id, child.tag
            )
    return RouteConfig(
        id=route_id,
        town=town,
        keypoints=keypoints,
        weathers=() if weathers_el is None else _read_weathers(doc, weathers_el, route_id),
        scenarios=() if scenarios_el is None else _read_scenarios(doc, scenarios_el, route_id),
        extra={k: v for k, v in elem.attrib.items() if k not in _ROUTE_KNOWN},
    )


def _root_routes(doc: _Doc) -> None:
    if doc.root.tag != "routes":
        raise RouteFileError(
            f"{doc.where(doc.root)}: root element is <{doc.root.tag}>, expected <routes>; "
            "is this a leaderboard route file?"
        )


def _routes_v2(doc: _Doc) -> list[RouteConfig]:
    _root_routes(doc)
    routes = [_read_route(doc, r) for r in doc.root.findall("route")]
    _check_unique_ids(doc, routes)
    return routes


def read_routes(path: str | os.PathLike[str]) -> list[RouteConfig]:
    """Parse a Leaderboard 2.0 route file (`<routes><route id town>...`) into RouteConfigs."""
    return _routes_v2(_Doc(Path(path)))


def read_route_file(path: str | os.PathLike[str]) -> list[RouteConfig]:
    """Parse a route file of either leaderboard version (1.0 when routes hold `<waypoint>`s)."""
    doc = _Doc(Path(path))
    is_v1 = doc.root.find("route/waypoint") is not None and doc.root.find("route/waypoints") is None
    return _routes_v1(doc) if is_v1 else _routes_v2(doc)


def _check_unique_ids(doc: _Doc, routes: Sequence[RouteConfig]) -> None:
    seen: set[str] = set()
    for r in routes:
        if r.id in seen:
            raise RouteFileError(
                f"{doc.path}: route id {r.id} appears more than once; ids must be unique"
            )
        seen.add(r.id)


def _fmt(value: float) -> str:
    """Shortest text that parses back to the same float ('10' for 10.0)."""
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _route_element(route: RouteConfig) -> ET.Element:
    el = ET.Element("route", {"id": route.id, "town": route.town, **route.extra})
    if route.weathers:
        ws = ET.SubElement(el, "weathers")
        for w in route.weathers:
            attrs = {"route_percentage": _fmt(w.route_percentage)}
            attrs.update({k: _fmt(v) for k, v in w.values.items()})
            ET.SubElement(ws, "weather", attrs)
    wps = ET.SubElement(el, "waypoints")
    for x, y, z in route.keypoints:
        ET.SubElement(wps, "position", {"x": _fmt(x), "y": _fmt(y), "z": _fmt(z)})
    scs = ET.SubElement(el, "scenarios")  # kept when empty: the leaderboard's RouteParser needs it
    for sc in route.scenarios:
        s_el = ET.SubElement(scs, "scenario", {"name": sc.name, "type": sc.type})
        x, y, z, yaw = sc.trigger
        ET.SubElement(
            s_el, "trigger_point", {"x": _fmt(x), "y": _fmt(y), "z": _fmt(z), "yaw": _fmt(yaw)}
        )
        for tag, attrs in sc.params.items():
            ET.SubElement(s_el, tag, dict(attrs))
    return el


def write_routes(routes: Iterable[RouteConfig], path: str | os.PathLike[str]) -> None:
    """Write routes as Leaderboard 2.0 XML, atomically (temp file in the same folder, then rename).
    Every route gets a ``<scenarios>`` element, empty when it has none (the leaderboard's
    RouteParser reads ``route.find('scenarios')`` without a check)."""
    target = Path(path)
    root = ET.Element("routes")
    for r in routes:
        if r.scenarios and any(sc.other_actors for sc in r.scenarios):
            log.warning(
                "route %s: Leaderboard 1.0 other_actors are not part of 2.0 XML; dropped", r.id
            )
        root.append(_route_element(r))
    ET.indent(root, space="   ")
    with atomic_output(target) as tmp, open(tmp, "wb") as f:
        ET.ElementTree(root).write(f, encoding="utf-8", xml_declaration=True)
        f.write(b"\n")


def read_routes_v1(
    xml_path: str | os.PathLike[str],
    scenarios_json: str | os.PathLike[str] | None = None,
    loader: Callable[[str], Town] | None = None,
) -> list[RouteConfig]:
    """Parse a Leaderboard 1.0 route file (`<route id town><waypoint x y z pitch roll yaw/>`).

    Keypoints keep x, y, z. With `scenarios_json`, each route whose town loads (`loader`, default
    `harness.maps.load_town`) is planned and gets the scenarios on it (`attach_scenarios`).
    """
    routes = _routes_v1(_Doc(Path(xml_path)))
    if scenarios_json is None:
        return routes
    from harness.errors import UnknownTownError
    from harness.maps import load_town
    from harness.routes.interpolate import plan_route

    load = loader or load_town
    candidates = load_scenarios_json(scenarios_json)
    out = []
    for route in routes:
        try:
            town = load(route.town)
        except UnknownTownError:
            log.warning(
                "route %s: town %s not available; no scenarios attached", route.id, route.town
            )
            out.append(route)
            continue
        out.append(attach_scenarios(route, plan_route(town, route.keypoints, route.id), candidates))
    return out


def _routes_v1(doc: _Doc) -> list[RouteConfig]:
    _root_routes(doc)
    routes = []
    for elem in doc.root.findall("route"):
        route_id = elem.get("id")
        if route_id is None:
            raise RouteFileError(
                f"{doc.where(elem)}: <route> lacks the required attribute 'id'; add it"
            )
        town = doc.attr(elem, "town", route_id)
        wps = elem.findall("waypoint")
        if not wps:
            raise RouteFileError(
                f"{doc.where(elem)}: route {route_id} has no <waypoint> elements; add them"
            )
        kp = np.array([[doc.num(w, k, route_id) for k in ("x", "y", "z")] for w in wps])
        extra = {k: v for k, v in elem.attrib.items() if k not in _ROUTE_KNOWN}
        routes.append(RouteConfig(id=route_id, town=town, keypoints=kp, extra=extra))
    _check_unique_ids(doc, routes)
    return routes


def _json_pose(path: Path, d: Any, what: str) -> Pose:
    try:
        pose = (float(d["x"]), float(d["y"]), float(d["z"]), float(d.get("yaw", 0.0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise RouteFileError(
            f"{path}: {what}: transform needs numeric x, y, z, yaw ({exc})"
        ) from exc
    if not all(math.isfinite(v) for v in pose):
        raise RouteFileError(f"{path}: {what}: transform x, y, z, yaw must be finite, got {pose}")
    return pose


def load_scenarios_json(path: str | os.PathLike[str]) -> dict[str, tuple[ScenarioConfig, ...]]:
    """Load Leaderboard 1.0 `all_towns_traffic_scenarios*.json`: town -> candidate scenarios.

    Each available event configuration becomes a ScenarioConfig named `<type>_<k>` (k its index
    within that town and type) with its trigger transform and other actors.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise RouteFileError(f"cannot read scenarios file {p}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise RouteFileError(f"{p}:{exc.lineno}:{exc.colno}: malformed JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or "available_scenarios" not in data:
        raise RouteFileError(
            f"{p}: expected an object with 'available_scenarios'; is this a scenarios file?"
        )
    out: dict[str, list[ScenarioConfig]] = {}
    for block in data["available_scenarios"]:
        for town, entries in block.items():
            for entry in entries:
                stype = str(entry.get("scenario_type", "?"))
                for k, ev in enumerate(entry.get("available_event_configurations", [])):
                    name = f"{stype}_{k}"
                    actors = tuple(
                        OtherActor(role, _json_pose(p, a, f"{town} {name} other actor"))
                        for role, items in ev.get("other_actors", {}).items()
                        for a in items
                    )
                    trig = _json_pose(p, ev.get("transform", {}), f"{town} {name}")
                    out.setdefault(town, []).append(ScenarioConfig(name, stype, trig, {}, actors))
    return {town: tuple(v) for town, v in out.items()}


def attach_scenarios(
    route: RouteConfig, planned: PlannedRoute, candidates: dict[str, tuple[ScenarioConfig, ...]]
) -> RouteConfig:
    """The route with the candidate scenarios of its town whose trigger lies on the planned route
    (within 2 m and 10 deg of a route point, the leaderboard rule), ordered along the route."""
    cands = candidates.get(route.town, ())
    if not cands:
        return RouteConfig(route.id, route.town, route.keypoints, route.weathers, (), route.extra)
    triggers = np.array([c.trigger for c in cands], dtype=np.float64)
    hit, where = _triggers_near_route(triggers, planned.xy, planned.yaw_rad)
    order = np.argsort(where[hit], kind="stable")
    chosen = tuple(cands[i] for i in np.flatnonzero(hit)[order])
    return RouteConfig(route.id, route.town, route.keypoints, route.weathers, chosen, route.extra)
