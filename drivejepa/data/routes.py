"""The routes a collection drives: routes generated on the towns at hand and the routes of a route
file (Bench2Drive's ``bench2drive220.xml``: never its 46 evaluation routes,
``harness.runner.subset.BENCH2DRIVE_EVAL_46``), each with a file-name-safe key, a drive seed and
its train / val split.

The split and the seed depend only on the run seed and the route's key, so a route keeps both
whatever else the collection holds (a resume with more routes, a later aggregation round).
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

from harness.errors import ConfigError
from harness.maps import load_town
from harness.maps.towns import ORIGIN_BUILTIN, available_towns
from harness.routes.generate import generate_routes
from harness.routes.interpolate import plan_route
from harness.routes.model import RouteConfig
from harness.routes.xml_io import read_route_file
from harness.runner.subset import BENCH2DRIVE_EVAL_46, BENCH2DRIVE_ROUTES_FILE, parse_subset

log = logging.getLogger(__name__)

SOURCE_BENCH2DRIVE = "bench2drive"  # a route of bench2drive220.xml
SOURCE_FILE = "file"  # a route of another route file
SOURCE_GENERATED = "generated"  # generated on a CARLA town
SOURCE_BUILTIN = "builtin"  # generated on a built-in town
SPLIT_TRAIN, SPLIT_VAL = "train", "val"
DEFAULT_VAL_FRACTION = 0.1  # share of routes held out for validation [-]
ALL_TOWNS = "all"  # --town value: every town at hand


@dataclass(frozen=True)
class CollectRoute:
    """One route to drive: ``key`` (file-name safe, unique; also the RouteConfig's id, so the
    recording and the scene ids carry it), ``town``, ``source``, the ``route``, its index in the
    route file (``file_index``, None for generated ones), drive ``seed`` and ``split``."""

    key: str
    town: str
    source: str
    route: RouteConfig
    file_index: int | None
    seed: int
    split: str

    def to_json(self) -> dict[str, object]:
        return {"id": self.key, "route_id": self.route.id if self.file_index is not None else None,
                "town": self.town, "source": self.source, "file_index": self.file_index,
                "seed": self.seed, "split": self.split}  # fmt: skip


def safe_key(text: str) -> str:
    """File-name-safe spelling of a route key."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _hash(seed: int, key: str) -> int:
    return zlib.crc32(f"{seed}:{key}".encode())


def route_seed(seed: int, key: str) -> int:
    """The drive seed of route ``key`` (traffic, scenarios, perturbations)."""
    return _hash(seed, key) % (2**31 - 1)


def assign_splits(keys: list[str], seed: int, val_fraction: float) -> dict[str, str]:
    """Split by route: route k is val when its hash from (seed, key) falls below
    ``val_fraction`` (stable per route); with two or more routes and none drawn, the route of
    the smallest hash is val, so a split always has a val route."""
    u = {k: (zlib.crc32(f"split:{seed}:{k}".encode()) / 2**32) for k in keys}
    split = {k: SPLIT_VAL if u[k] < val_fraction else SPLIT_TRAIN for k in keys}
    if val_fraction > 0 and len(keys) >= 2 and SPLIT_VAL not in split.values():
        split[min(keys, key=lambda k: u[k])] = SPLIT_VAL
    return split


def towns_at_hand() -> list[str]:
    """Every town the maps layer can load (``$HARNESS_MAPS`` folders, CARLA, the built-in ones)."""
    return [t.name for t in available_towns()]


def resolve_towns(names: list[str]) -> list[str]:
    """``--town`` values -> town names (``all``: every town at hand); unknown names raise the
    maps layer's one-line error."""
    if ALL_TOWNS in names:
        return towns_at_hand()
    return [load_town(n).name for n in names]


def generated_routes(
    towns: list[str], per_town: int, length_m: float, seed: int
) -> list[tuple[str, str, RouteConfig, None]]:
    """``per_town`` routes of about ``length_m`` generated on each town from ``seed``."""
    builtin = {t.name for t in available_towns() if t.origin == ORIGIN_BUILTIN}
    out: list[tuple[str, str, RouteConfig, None]] = []
    for name in towns:
        town = load_town(name)
        source = SOURCE_BUILTIN if town.name in builtin else SOURCE_GENERATED
        for k, r in enumerate(generate_routes(town, per_town, length_m, seed=seed)):
            key = safe_key(f"{town.name}-gen{seed}-{k:03d}")
            out.append((key, source, replace(r, id=key), None))
    return out


def file_routes(
    path: Path, subset: str | None, towns: set[str] | None
) -> tuple[list[tuple[str, str, RouteConfig, int]], list[int]]:
    """The file's routes selected by ``subset`` (indices in file order), on the towns at hand
    (``towns`` None: any), minus Bench2Drive's 46 evaluation routes when the file is
    ``bench2drive220.xml``; returns them and the excluded evaluation indices."""
    routes = read_route_file(path)
    chosen = parse_subset(subset, len(routes))
    is_b2d = path.name == BENCH2DRIVE_ROUTES_FILE
    excluded = sorted(set(BENCH2DRIVE_EVAL_46)) if is_b2d else []
    here = set(towns_at_hand())
    out: list[tuple[str, str, RouteConfig, int]] = []
    skipped_towns: set[str] = set()
    for i in chosen:
        r = routes[i]
        if i in excluded:
            continue
        if r.town not in here or (towns is not None and r.town not in towns):
            skipped_towns.add(r.town)
            continue
        key = safe_key(f"{r.town}-{'b2d' if is_b2d else 'file'}-{r.id}")
        out.append((key, SOURCE_BENCH2DRIVE if is_b2d else SOURCE_FILE, replace(r, id=key), i))
    if skipped_towns:
        log.info("%s: routes on %s skipped (town not at hand or not chosen)", path.name,
                 ", ".join(sorted(skipped_towns)))  # fmt: skip
    return out, excluded


def collect_routes(
    *,
    routes_file: Path | None,
    subset: str | None,
    towns: list[str],
    per_town: int,
    length_m: float,
    max_routes: int | None,
    seed: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> tuple[list[CollectRoute], list[int]]:
    """The collection's routes (generated on ``towns``, then the file's), interleaved over towns
    so ``max_routes`` keeps a mix, with seeds and splits; and the excluded evaluation indices.
    Raises ConfigError when nothing is left to drive or a file route cannot be planned."""
    picked: list[tuple[str, str, RouteConfig, int | None]] = list(
        generated_routes(towns, per_town, length_m, seed)
    )
    excluded: list[int] = []
    if routes_file is not None:
        more, excluded = file_routes(routes_file, subset, set(towns) if towns else None)
        picked += more
    by_town: dict[str, list[tuple[str, str, RouteConfig, int | None]]] = {}
    for item in picked:
        by_town.setdefault(item[2].town, []).append(item)
    mixed = [
        q[i] for i in range(max((len(q) for q in by_town.values()), default=0))
        for q in by_town.values() if i < len(q)
    ]  # fmt: skip
    mixed = mixed[:max_routes] if max_routes is not None else mixed
    if not mixed:
        what = f"{routes_file}" if routes_file is not None else "the chosen towns"
        raise ConfigError(
            f"no route to collect from {what} (Bench2Drive's 46 evaluation routes are never "
            "collected; routes on towns not at hand are skipped); pass --town or other routes"
        )
    keys = [k for k, *_ in mixed]
    if len(set(keys)) != len(keys):
        raise ConfigError("two routes share an id in the route file; give each route its own id")
    split = assign_splits(keys, seed, val_fraction)
    out = []
    for key, source, route, index in mixed:
        if index is not None:  # an unplannable file route is bad input, found before any work
            plan_route(load_town(route.town), route.keypoints, route.id)
        out.append(CollectRoute(key, route.town, source, route, index, route_seed(seed, key),
                                split[key]))  # fmt: skip
    return out, excluded
