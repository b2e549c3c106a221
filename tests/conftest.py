"""Shared fixtures: the real CARLA data beside the project (../shared/data), skipped when absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SHARED_MAPS = SHARED_DATA / "maps"
SHARED_ROUTES = SHARED_DATA / "routes"
REAL_TOWNS = ("Town01", "Town02", "Town03", "Town04", "Town05", "Town06")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not present (real CARLA data lives in ../shared/data beside the project)")
    return path


@pytest.fixture(scope="session")
def shared_maps() -> Path:
    """Folder with Town01-06 .xodr; skips the test when the shared data is absent."""
    return _need(SHARED_MAPS)


@pytest.fixture(scope="session")
def bench2drive_xml() -> Path:
    return _need(SHARED_ROUTES / "bench2drive" / "bench2drive220.xml")


@pytest.fixture(scope="session")
def leaderboard_dir() -> Path:
    return _need(SHARED_ROUTES / "leaderboard")


@pytest.fixture(autouse=True, scope="session")
def _maps_env() -> Iterator[None]:
    """Point $HARNESS_MAPS at the shared maps (when present) and ignore any $CARLA_ROOT, for the
    whole session (so module-scoped fixtures that load a town see it too)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CARLA_ROOT", raising=False)
        if SHARED_MAPS.exists():
            mp.setenv("HARNESS_MAPS", str(SHARED_MAPS))
        else:
            mp.delenv("HARNESS_MAPS", raising=False)
        yield


@pytest.fixture(scope="session")
def drivejepa_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short perturbed expert drives on the built-in town (one train, one val route), the
    collection of tests/test_drivejepa_data.py; tests that change a collection copy it first."""
    from drivejepa.data.collect import collect
    from tests.test_drivejepa_data import _config

    out = tmp_path_factory.mktemp("collect") / "DATA"
    collect(_config(out))
    return out
