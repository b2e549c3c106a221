"""Resume guards of gen-teachers: a dataset folder is continued only with the settings that
started it (settings.json): another k, scene budget or spacing is refused naming what differs,
an earlier run without settings.json is refused, ``workers`` may change, and the throughput of
a resumed run counts only the candidates scored in that call."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import teachers.generate as gen
from harness.errors import ConfigError
from teachers.generate import GenerateConfig, generate
from teachers.selection import SelectionConfig


def _config(out: Path, **kw: object) -> GenerateConfig:
    cfg = GenerateConfig(
        town="Harness01", out=out, max_scenes=3, max_routes=1, every_s=1.5, vocabulary_size=16, vocabulary_id=None,
        agent="route_follower", generated_route_m=80.0, selection=SelectionConfig(k=4),
        command_line=("test",),
    )  # fmt: skip
    return replace(cfg, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-scene dataset in 3 parts (one scene per part)."""
    out = tmp_path_factory.mktemp("resume")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gen, "SCENES_PER_PART", 1)
        summary = generate(_config(out))
    assert summary["scenes"] == 3
    return out


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"selection": SelectionConfig(k=2)}, "selection.k: 4 -> 2"),
        ({"max_scenes": 6}, "max_scenes: 3 -> 6"),
        ({"every_s": 1.0}, "every_s"),
        ({"seed": 1}, "seed"),
        ({"reactive": True}, "reactive"),
    ],
)
def test_other_settings_are_refused(dataset: Path, change: dict[str, object], named: str) -> None:
    before = sorted(p.name for p in (dataset / "parts").iterdir())
    with pytest.raises(ConfigError, match=named):
        generate(_config(dataset, **change))
    assert sorted(p.name for p in (dataset / "parts").iterdir()) == before


def test_earlier_run_without_settings_is_refused(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "old"
    out.mkdir()
    (out / "parts").symlink_to(dataset / "parts")
    with pytest.raises(ConfigError, match="settings.json"):
        generate(_config(out))


def test_resumed_throughput_counts_only_this_call(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gen, "SCENES_PER_PART", 1)
    markers = sorted((dataset / "parts").glob("*.done.json"))
    assert len(markers) == 3
    redo = json.loads(markers[0].read_text())
    markers[0].unlink()
    summary = generate(_config(dataset, workers=2))  # workers do not change the data
    again = json.loads(markers[0].read_text())
    assert again["candidates"] == redo["candidates"]
    # one part of three scored in this call: the rate is its candidates over this call's
    # scoring time (score_s is rounded to 10 ms), not all three parts' candidates
    rate, score_s, half_step = summary["candidates_per_s"], summary["score_s"], 0.005
    assert score_s > half_step
    assert rate * (score_s - half_step) <= again["candidates"] <= rate * (score_s + half_step)
    assert summary["scenes"] == 3


def test_cli_refusal_is_one_line(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.main import run

    capsys.readouterr()
    status = run(["gen-teachers", "--town", "Harness01", "--out", str(dataset), "--k", "2",
                  "--max-scenes", "3", "--every", "1.5", "--vocab-size", "16"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert "selection.k: 4 -> 2" in err and "other settings" in err
