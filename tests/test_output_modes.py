"""Every file eval and gen-teachers write (results.json, run.json, steps and recording Parquet,
the dataset tables, parts, episodes, vocabulary, settings) gets the usual umask permissions:
0644 files and 0755 folders under umask 022, as a plain ``open`` would give, not the 0600 of
a temp file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.leaderboard.route_criteria import CriteriaConfig
from harness.runner import Mode, RunConfig, run_evaluation
from harness.world.backend import TrafficConfig
from teachers.generate import GenerateConfig, generate
from teachers.selection import SelectionConfig

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def _assert_usual_modes(root: Path, *expected: str) -> None:
    modes = _modes(root)
    for name in expected:
        assert name in modes, sorted(modes)
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o755 if (root / name).is_dir() else 0o644)
    }
    assert not wrong, wrong


def test_eval_outputs_are_0644(tmp_path: Path, umask_022: None) -> None:
    out = tmp_path / "eval"
    cfg = RunConfig.for_mode(
        Mode.BENCH2DRIVE, agent="do_nothing", routes_file=ROUTES, out_dir=out, subset="0",
        criteria=CriteriaConfig(blocked_time_s=1.0, tick_limit=4000),
        traffic=TrafficConfig(vehicles=2, pedestrians=0), record=True,
    )  # fmt: skip
    run_evaluation(cfg)
    _assert_usual_modes(
        out, "results.json", "harness/run.json", "harness/bench2drive.json", "routes.parquet",
        "infractions.parquet", "steps/RouteScenario_0_rep0.parquet",
        "recordings/RouteScenario_0_rep0.parquet",
    )  # fmt: skip


def test_gen_teachers_outputs_are_0644(tmp_path: Path, umask_022: None) -> None:
    out = tmp_path / "teachers"
    generate(
        GenerateConfig(
            town="Harness01",
            out=out,
            max_scenes=1,
            max_routes=1,
            every_s=1.5,
            vocabulary_size=8, vocabulary_id=None,
            agent="route_follower",
            generated_route_m=60.0,
            selection=SelectionConfig(k=2),
            command_line=("test",),
        )  # fmt: skip
    )
    _assert_usual_modes(
        out, "manifest.json", "settings.json", "vocabulary.npz", "scenes.parquet",
        "teachers.parquet", "agents.parquet", "lights.parquet", "parts", "episodes",
    )  # fmt: skip
    assert any(p.suffix == ".parquet" for p in (out / "episodes").iterdir())
