"""``harness train head``: the scorer head refitted on the planner's frozen proposals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import drivejepa.checkpoint as ckpt_mod
from drivejepa.camera import CameraSetup
from drivejepa.checkpoint import load_checkpoint, save_checkpoint
from drivejepa.data.store import PlannerSamples
from drivejepa.planner.model import DriveJEPAPlanner, ScoreColumn
from drivejepa.planner.targets import batch_targets
from drivejepa.train.head import (
    CACHE_NAME,
    HeadConfig,
    HeadSet,
    first_second_speed,
    fit_head,
    refit_head,
    spearman,
)
from drivejepa.train.planner import SCORE_HEAD, scene_lookup
from tests.test_drivejepa_planner import TINY, TinyConfig, TinyEncoder, _straight


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setitem(ckpt_mod.ENCODER_BUILDERS, "TinyEncoder",
                        lambda cfg: TinyEncoder(TinyConfig(**cfg)))  # fmt: skip
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_spearman_and_speed_by_hand() -> None:
    pred = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.1, 0.4, 0.2, 0.3]])
    target = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    # rank differences of row 3: (0, 2, -1, -1) -> 1 - 6 * 6 / (4 * 15) = 0.4
    assert spearman(pred, target).tolist() == pytest.approx([1.0, -1.0, 0.4])
    assert spearman(pred[:1], torch.ones(1, 4)).tolist() == [0.0]  # a constant target row
    plan = torch.from_numpy(_straight(6.0))  # 6 m/s: +1.0 s is 6 m ahead
    assert float(first_second_speed(plan)) == pytest.approx(6.0)


def _synthetic(n: int, seed: int) -> HeadSet:
    """Scenes whose target EPDMS is a known function of the pooled tokens' first channel."""
    g = torch.Generator().manual_seed(seed)
    pooled = torch.randn(n, TINY.proposals, TINY.dim, generator=g)
    speeds = 2.0 + 10.0 * torch.rand(n, TINY.proposals, generator=g)
    final = torch.stack([torch.stack([torch.from_numpy(_straight(float(v))).float() for v in row])
                         for row in speeds])  # fmt: skip
    targets = torch.sigmoid(3.0 * pooled[..., :1]).expand(-1, -1, 6).clone()
    expert = final[:, 0]
    return HeadSet(pooled=pooled, final=final, targets=targets, expert=expert)


def test_fit_learns_the_ranking_and_leaves_the_trunk(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DriveJEPAPlanner(TinyEncoder(), TINY)
    trunk = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(SCORE_HEAD)}
    train, val = _synthetic(256, 0), _synthetic(64, 1)
    rows, state = fit_head(model, train, val, HeadConfig(out=tmp_path, epochs=20, lr=1e-2))
    assert [r["epoch"] for r in rows] == list(range(21)) and rows[0]["kept"]
    best = max(r["val_picked_epdms"] for r in rows)
    kept = max((r for r in rows if r["kept"]), key=lambda r: r["epoch"])
    assert kept["val_picked_epdms"] == best  # the kept epoch is the best on val
    assert best > rows[0]["val_picked_epdms"] + 0.05
    assert best > rows[0]["val_best_epdms"] - 0.03  # near the ceiling: the ranking was learned
    assert kept["val_spearman"] > 0.9
    assert set(state) == {k for k in model.state_dict() if k.startswith(SCORE_HEAD)}
    for k, v in model.state_dict().items():
        if k in trunk:
            assert torch.equal(v, trunk[k]), k


def test_refit_on_a_collection(tmp_path: Path, drivejepa_collection: Path) -> None:
    data = drivejepa_collection
    torch.manual_seed(0)
    parent = save_checkpoint(tmp_path / "parent.pt", DriveJEPAPlanner(TinyEncoder(), TINY),
                             CameraSetup(width=64, height=32), {"note": "random init"})  # fmt: skip
    out = tmp_path / "HEAD"
    said: list[str] = []
    rows = refit_head(data, parent, HeadConfig(out=out, epochs=3, lr=1e-2), say=said.append)
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3] and "caching" in said[0]
    log = [json.loads(s) for s in (out / "log.jsonl").read_text().splitlines()]
    assert log == json.loads(json.dumps(rows))
    ck = load_checkpoint(out / "model.pt")
    refit = ck.train["head_refit"]
    assert refit["parent_checkpoint"] == str(parent) and ck.train["note"] == "random init"
    assert refit["cache_s"] > 0 and refit["train_scenes"] == len(PlannerSamples(data, "train"))
    kept = max((r for r in rows if r["kept"]), key=lambda r: r["epoch"])
    assert refit["kept"]["epoch"] == kept["epoch"]
    before = load_checkpoint(parent).planner.state_dict()
    for k, v in ck.planner.state_dict().items():
        if not k.startswith(SCORE_HEAD):
            assert torch.equal(v, before[k]), k

    # the cached targets are the scorer's scores of the cached proposals, in the scene
    cache = torch.load(out / CACHE_NAME, weights_only=True)
    val = HeadSet(**cache["val"])
    samples = PlannerSamples(data, "val")
    lookup = scene_lookup(data)
    scenes = [lookup(*samples[i]["key"]) for i in range(3)]
    expect = batch_targets(scenes, val.final[:3].double().numpy(), val.expert[:3].double().numpy())
    np.testing.assert_allclose(val.targets[:3].numpy(), expect, atol=1e-6)
    assert len(val) == len(samples)
    assert val.targets[..., ScoreColumn.FINAL].max() <= 1.0

    said.clear()
    again = refit_head(data, parent, HeadConfig(out=out, epochs=1, lr=1e-2), say=said.append)
    assert "reusing" in said[0] and len(again) == 2
    assert load_checkpoint(out / "model.pt").train["head_refit"]["cache_s"] is None

    # scored as executed: a cache of its own (the key names the execution), the held targets
    said.clear()
    held = HeadConfig(out=out, epochs=1, lr=1e-2, execution="held")
    refit_head(data, parent, held, say=said.append)
    assert not any("reusing" in line for line in said)
    cache = torch.load(out / CACHE_NAME, weights_only=True)
    val = HeadSet(**cache["val"])
    expect = batch_targets(scenes, val.final[:3].double().numpy(), val.expert[:3].double().numpy(),
                           execution="held")  # fmt: skip
    np.testing.assert_allclose(val.targets[:3].numpy(), expect, atol=1e-6)
    assert load_checkpoint(out / "model.pt").train["head_refit"]["execution"] == "held"


def test_cli_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.main import run

    (tmp_path / "data").mkdir()
    for args, needle in [
        ([], "is not a drivejepa dataset (no manifest.json)"),
        (["--epochs", "0"], "--epochs"),
        (["--lr", "0"], "--lr"),
        (["--execution", "drawn"], "--execution must be one of plan, held"),
    ]:
        code = run(["train", "head", str(tmp_path / "data"), "--checkpoint", "x.pt", "--out",
                    str(tmp_path / "o"), *args])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
