"""``harness train head``: the scorer head refitted on the planner's frozen proposals, and an
imitation head added to a planner (its loss by hand, the selection's switch point, its fit, the
val choice of its weight, the runtime's use of it)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import drivejepa.checkpoint as ckpt_mod
from drivejepa.camera import CameraSetup
from drivejepa.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from drivejepa.data.store import PlannerSamples
from drivejepa.planner.losses import IMITATION_TEMPERATURE_M, imitation_score_term
from drivejepa.planner.model import DriveJEPAPlanner, ScoreColumn
from drivejepa.planner.selection import MomentumSelector
from drivejepa.planner.targets import batch_targets
from drivejepa.runtime import PlannerRuntime
from drivejepa.train.head import (
    CACHE_NAME,
    IMITATION_HEAD,
    IMITATION_WEIGHTS,
    HeadConfig,
    HeadSet,
    choose_imitation_weight,
    first_second_speed,
    fit_head,
    refit_head,
    spearman,
    with_imitation_head,
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
        (["--fit", "both"], "--fit must be one of scorer, imitation"),
    ]:
        code = run(["train", "head", str(tmp_path / "data"), "--checkpoint", "x.pt", "--out",
                    str(tmp_path / "o"), *args])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


# --- the imitation head ---------------------------------------------------------------------------
def test_imitation_term_by_hand() -> None:
    """Expert straight at 6 m/s; proposal 0 is it, proposal 1 the same 1 m to the right: mean
    |difference| over 8 poses x 3 components = 8 / 24 = 1/3 m. Targets y = softmax(0, -(1/3) / 0.5);
    the term is the KL divergence, the cross-entropy less y's entropy."""
    expert = torch.from_numpy(_straight(6.0)).float()
    proposals = torch.stack([expert, torch.from_numpy(_straight(6.0, 1.0)).float()])
    y1 = math.exp(-(1.0 / 3.0) / IMITATION_TEMPERATURE_M)
    y = torch.tensor([1.0, y1]) / (1.0 + y1)
    entropy = -float((y * y.log()).sum())
    even = imitation_score_term(torch.zeros(1, 2), proposals[None], expert[None])
    assert float(even) == pytest.approx(math.log(2.0) - entropy, rel=1e-5)  # uniform: CE log 2
    sure = imitation_score_term(torch.tensor([[math.log(2.0), 0.0]]), proposals[None], expert[None])
    want = -(float(y[0]) * math.log(2.0 / 3.0) + float(y[1]) * math.log(1.0 / 3.0)) - entropy
    assert float(sure) == pytest.approx(want, abs=1e-6)  # q = (2/3, 1/3) is close to y: ~8e-5
    matched = imitation_score_term(y.log()[None], proposals[None], expert[None])
    assert abs(float(matched)) < 1e-6  # logits that give the target: 0


def test_imitation_switches_the_choice_exactly_at_the_score_gap() -> None:
    """Scores 0.75 / 0.5, imitation probabilities 0.25 / 0.75: the second proposal wins exactly
    when w x 0.5 exceeds the 0.25 gap (w = 0.5 ties: the first is kept)."""
    proposals = np.stack([_straight(6.0), _straight(6.0, 1.0)])
    score, probs = np.array([0.75, 0.5]), np.array([0.25, 0.75])
    ego = np.zeros(3)
    for w, want in [(0.0, 0), (0.5, 0), (0.5 + 1e-9, 1), (2.0, 1)]:
        assert MomentumSelector(0.0, imitation_weight=w).select(
            proposals, score, ego, 0.0, probs).index == want, w  # fmt: skip
    assert MomentumSelector(0.0, imitation_weight=2.0).select(proposals, score, ego, 0.0).index == 0
    with pytest.raises(ValueError, match="imitation weight"):
        MomentumSelector(0.0, imitation_weight=-1.0)


def _expert_by_channel(n: int, seed: int) -> HeadSet:
    """Scenes whose expert is the proposal with the largest first pooled channel (the head can
    read it) and whose target EPDMS follows the second channel."""
    data = _synthetic(n, seed)
    pick = data.pooled[..., 0].argmax(dim=1)
    expert = data.final[torch.arange(n), pick]
    targets = torch.sigmoid(3.0 * data.pooled[..., 1:2]).expand(-1, -1, 6).clone()
    return HeadSet(pooled=data.pooled, final=data.final, targets=targets, expert=expert)


def test_fit_imitation_learns_the_expert_and_leaves_the_rest(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = with_imitation_head(DriveJEPAPlanner(TinyEncoder(), TINY))
    rest = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(IMITATION_HEAD)}
    train, val = _expert_by_channel(1024, 0), _expert_by_channel(64, 1)
    cfg = HeadConfig(out=tmp_path, epochs=5, lr=1e-2, fit="imitation")
    rows, state = fit_head(model, train, val, cfg)
    kept = max((r for r in rows if r["kept"]), key=lambda r: r["epoch"])
    assert kept["val_imitation_kl"] == min(r["val_imitation_kl"] for r in rows)
    assert kept["val_imitation_kl"] < rows[0]["val_imitation_kl"] - 0.3
    assert rows[0]["val_imitation_top1"] < 0.5 < 0.75 < kept["val_imitation_top1"]
    assert set(state) == {k for k in model.state_dict() if k.startswith(IMITATION_HEAD)}
    for k, v in model.state_dict().items():
        if k in rest:
            assert torch.equal(v, rest[k]), k
    model.load_state_dict(state, strict=False)
    weight, by_weight = choose_imitation_weight(model, val)
    assert [r["weight"] for r in by_weight] == list(IMITATION_WEIGHTS)
    best = max(r["picked_epdms"] for r in by_weight)
    assert weight == min(r["weight"] for r in by_weight if r["picked_epdms"] == best)


def test_refit_imitation_on_a_collection(tmp_path: Path, drivejepa_collection: Path) -> None:
    torch.manual_seed(0)
    parent = save_checkpoint(tmp_path / "parent.pt", DriveJEPAPlanner(TinyEncoder(), TINY),
                             CameraSetup(width=64, height=32), {"note": "random init"})  # fmt: skip
    out = tmp_path / "IM"
    rows = refit_head(drivejepa_collection, parent,
                      HeadConfig(out=out, epochs=2, lr=1e-2, fit="imitation"))  # fmt: skip
    assert "imitation_weight" in rows[-1] and len(rows) == 4  # epochs 0-2 + the weight's row
    ck = load_checkpoint(out / "model.pt")
    assert ck.planner.imitation_head is not None and ck.planner.cfg.imitation
    assert ck.train["imitation_weight"] in IMITATION_WEIGHTS
    assert ck.train["head_refit"]["fit"] == "imitation"
    before = load_checkpoint(parent).planner.state_dict()
    for k, v in ck.planner.state_dict().items():
        assert k.startswith(IMITATION_HEAD) or torch.equal(v, before[k]), k

    # the runtime takes the checkpoint's weight unless told otherwise, and refuses a weight for
    # a checkpoint without the head
    assert PlannerRuntime(out / "model.pt", 0.0).selector.imitation_weight == pytest.approx(
        ck.train["imitation_weight"])  # fmt: skip
    assert PlannerRuntime(out / "model.pt", 0.0, imitation_weight=3.0).selector.imitation_weight == 3
    assert PlannerRuntime(parent, 0.0).selector.imitation_weight == 0.0
    with pytest.raises(CheckpointError, match="parent.pt: imitation_weight 1 asks for the imitation"):
        PlannerRuntime(parent, 0.0, imitation_weight=1.0)
    runtime = PlannerRuntime(out / "model.pt", 0.0, imitation_weight=1.0)
    runtime.set_route(np.array([[0.0, 0.0], [100.0, 0.0]]), np.zeros(2), [4, 4])
    runtime.add_frame(np.zeros((32, 64, 4), dtype=np.uint8), 0.0)
    step = runtime.plan(0.0, (0.0, 0.0, 0.0), 3.0, (0.0, 0.0))
    assert step.imitation is not None and step.imitation.sum() == pytest.approx(1.0)
    assert step.index == int(np.argmax(step.scores + step.imitation))
