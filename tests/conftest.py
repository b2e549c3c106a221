"""Shared fixtures: the real CARLA data beside the project (../shared/data), skipped when absent."""

from __future__ import annotations

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


@pytest.fixture(autouse=True)
def _maps_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point $HARNESS_MAPS at the shared maps (when present) and ignore any $CARLA_ROOT."""
    monkeypatch.delenv("CARLA_ROOT", raising=False)
    if SHARED_MAPS.exists():
        monkeypatch.setenv("HARNESS_MAPS", str(SHARED_MAPS))
    else:
        monkeypatch.delenv("HARNESS_MAPS", raising=False)
