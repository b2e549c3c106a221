"""Routes for a town without a route file (``harness eval --town T``, ``harness gen-teachers``
without ``--routes``): routes generated on the town's lane graph from the run seed
(:func:`harness.routes.generate.generate_routes`), written into the run's output folder as a
leaderboard route file, so the run is reproducible (rerun with ``--routes OUT/routes_T.xml``) and
resumes from a file like any other."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.errors import ConfigError
from harness.maps import load_town
from harness.routes.generate import generate_routes
from harness.routes.xml_io import write_routes

GENERATED_ROUTES = 4  # routes generated on a town when no route file is given
GENERATED_ROUTE_M = 300.0  # [m] their length


def town_routes_path(out_dir: Path, town: str) -> Path:
    """``OUT/routes_<town>.xml``."""
    return out_dir / f"routes_{town}.xml"


def write_town_routes(town_name: str, path: Path, seed: int, resume: bool) -> None:
    """Generate the town's routes for ``seed`` and write them to ``path``. A file already there
    with other routes (another seed) is kept when resuming (a ConfigError says what to do) and
    replaced otherwise."""
    town = load_town(town_name)  # UnknownTownError lists where it looked
    routes = generate_routes(town, GENERATED_ROUTES, GENERATED_ROUTE_M, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / path.name
        write_routes(routes, fresh)
        text = fresh.read_bytes()
    if path.is_file():
        if path.read_bytes() == text:
            return
        if resume:
            raise ConfigError(
                f"{path} holds other routes than --town {town.name} --seed {seed} generates; "
                "resume with the run's --seed, pass --no-resume to start over, or pick another --out"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_routes(routes, path)
