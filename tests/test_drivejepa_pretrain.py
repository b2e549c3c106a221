"""JEPA pretraining of the Drive-JEPA video encoder: tokenizer, masks, EMA, losses, the training
loop (loss falls, resume reproduces an uninterrupted run), the encoder file and the CLI edge.
Tiny models and images throughout."""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from drivejepa.model import (
    BlockSpec,
    EncoderConfig,
    EncoderFileError,
    JEPAConfig,
    PredictorConfig,
    TriTemporalConfig,
    VideoEncoder,
    load_encoder,
    save_encoder,
)
from drivejepa.model.encoder import IMAGENET_MEAN, IMAGENET_STD
from drivejepa.model.jepa import ema_momentum, ema_update, feature_std, info_nce, masked_l1
from drivejepa.model.masks import draw_blocks, multiblock_mask, sample_masks, slice_masks
from drivejepa.train.pretrain import PretrainConfig, batch_masks, lr_at, pretrain
from harness.cli.main import run
from harness.errors import HarnessError

TINY = EncoderConfig(image_h=32, image_w=64, dim=24, depth=1, heads=2)  # grid (T/2, 2, 4)
TINY_PRED = PredictorConfig(dim=12, depth=1, heads=2)
SMALL_MASKS = (BlockSpec(blocks=2, scale=0.25), BlockSpec(blocks=1, scale=0.5))


def moving_bar_clips(n: int, frames: int = 8, seed: int = 0) -> list[torch.Tensor]:
    """``n`` clips (frames, 3, 32, 64) of a bright vertical bar moving right on a dark sky/road
    split, each clip with its own start and speed."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n):
        x0, v = rng.integers(0, 48), rng.integers(1, 4)
        clip = torch.zeros(frames, 3, 32, 64)
        clip[:, 2, :12] = 0.6  # sky
        clip[:, :, 20:] = 0.3  # road
        for t in range(frames):
            x = int(x0 + v * t) % 60
            clip[t, 0, :, x : x + 4] = 1.0
        clips.append(clip)
    return clips


# ---------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("frames", [2, 8])
def test_tokenizer_shape_and_grid(frames: int) -> None:
    torch.manual_seed(0)
    enc = VideoEncoder(TINY)
    assert enc.grid(frames) == (frames // 2, 2, 4)
    clip = torch.rand(3, frames, 3, 32, 64)
    n = frames // 2 * 2 * 4
    assert enc.tokenize(clip).shape == (3, n, 24)
    assert enc(clip).shape == (3, n, 24)
    keep = torch.tensor([[0, 5, n - 1]] * 3)
    assert enc(clip, keep).shape == (3, 3, 24)


def test_tokens_are_time_row_column_ordered() -> None:
    """Token (t, i, j) is the tubelet of frames 2t..2t+1, rows 16i.., columns 16j.. (checked
    against the conv kernel applied by hand), plus the same position for T=2 and T=8."""
    torch.manual_seed(1)
    enc = VideoEncoder(TINY)
    clip = torch.rand(1, 8, 3, 32, 64)
    tok = enc.tokenize(clip)
    t, i, j = 2, 1, 3
    index = t * 8 + i * 4 + j
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    patch = (clip[0, 2 * t : 2 * t + 2, :, 16 * i : 16 * i + 16, 16 * j : 16 * j + 16] - mean) / std
    w = enc.tokenizer.weight  # (dim, 3, 2, 16, 16)
    by_hand = torch.einsum("dctyx,tcyx->d", w, patch) + enc.tokenizer.bias
    pos = enc.positions(8, torch.device("cpu"))
    torch.testing.assert_close(tok[0, index], by_hand + pos[index], rtol=1e-4, atol=1e-4)
    # positions depend on (t, i, j) only: the T=2 grid is the first slot of the T=8 grid
    torch.testing.assert_close(enc.positions(2, torch.device("cpu")), pos[:8])
    assert len({tuple(p.tolist()) for p in pos}) == len(pos)  # all distinct


def test_bad_image_size_is_refused() -> None:
    with pytest.raises(HarnessError, match="patch"):
        EncoderConfig(image_h=30, image_w=64)
    with pytest.raises(HarnessError, match="tubelet"):
        TINY.grid(3)


# ---------------------------------------------------------------- masks


def test_blocks_have_the_drawn_size_and_fit_the_grid() -> None:
    rng = np.random.default_rng(0)
    spec = BlockSpec(blocks=50, scale=0.15, aspect=(0.75, 1.5))
    area = 0.15 * 8 * 16
    for top, left, bh, bw in draw_blocks((8, 16), spec, rng):
        assert top >= 0 and top + bh <= 8 and left >= 0 and left + bw <= 16
        # h/w between the aspect bounds (up to rounding), area ~ scale x grid
        assert math.floor(math.sqrt(area * 0.75)) <= bh <= math.ceil(math.sqrt(area * 1.5))
        assert math.floor(math.sqrt(area / 1.5)) <= bw <= math.ceil(math.sqrt(area / 0.75))


def test_one_block_is_one_contiguous_rectangle_through_time() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        m = multiblock_mask((4, 8, 16), BlockSpec(blocks=1, scale=0.3), rng).reshape(4, 8, 16)
        assert (m == m[0]).all()  # the same spatial block in every time slot
        rows, cols = np.flatnonzero(m[0].any(1)), np.flatnonzero(m[0].any(0))
        box = m[0, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        assert box.all() and box.sum() == m[0].sum()  # a filled rectangle, nothing outside


def test_batch_masks_are_equal_sized_disjoint_and_seeded() -> None:
    grid = (4, 8, 16)
    for spec in (BlockSpec(8, 0.15), BlockSpec(2, 0.7)):
        m = sample_masks(grid, 6, spec, np.random.default_rng(7))
        assert m.keep.shape[0] == m.pred.shape[0] == 6
        assert m.keep.shape[1] >= 1 and m.pred.shape[1] >= 1
        for k, p in zip(m.keep, m.pred, strict=True):
            ks, ps = set(k.tolist()), set(p.tolist())
            assert len(ks) == len(k) and len(ps) == len(p) and not ks & ps
            assert max(ks | ps) < 4 * 8 * 16 and (k.diff() > 0).all()
        again = sample_masks(grid, 6, spec, np.random.default_rng(7))
        assert torch.equal(m.keep, again.keep) and torch.equal(m.pred, again.pred)
        other = sample_masks(grid, 6, spec, np.random.default_rng(8))
        assert not torch.equal(m.pred, other.pred) or not torch.equal(m.keep, other.keep)


def test_soon_mask_hides_exactly_the_soon_slice() -> None:
    tri = TriTemporalConfig(now_frames=2, soon_frames=2, eventually_frames=4)
    now, soon, eventually = tri.slots(2)
    assert (list(now), list(soon), list(eventually)) == ([0], [1], [2, 3])
    cfg = JEPAConfig(encoder=TINY, predictor=TINY_PRED, masks=SMALL_MASKS, tritemporal=tri)
    _, m = batch_masks(cfg, 8, 3, seed=0, epoch=0, index=0)
    assert m is not None
    per = 2 * 4  # tokens per time slot
    assert all(k.tolist() == list(range(0, per)) for k in m.keep)  # every NOW token, nothing else
    assert all(p.tolist() == list(range(per, 2 * per)) for p in m.pred)  # every SOON token
    with pytest.raises(HarnessError):
        TriTemporalConfig(now_frames=3, soon_frames=1).slots(2)
    with pytest.raises(HarnessError):
        slice_masks((2, 2, 4), 1, range(0, 1), range(1, 3))


# ---------------------------------------------------------------- EMA and losses


def test_ema_update_is_the_hand_blend() -> None:
    target, online = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        target.weight[:] = torch.tensor([[1.0, -2.0]])
        target.bias[:] = 0.5
        online.weight[:] = torch.tensor([[3.0, 4.0]])
        online.bias[:] = -1.5
    ema_update(target, online, 0.9)
    # 0.9 x 1 + 0.1 x 3 = 1.2; 0.9 x -2 + 0.1 x 4 = -1.4; 0.9 x 0.5 + 0.1 x -1.5 = 0.3
    torch.testing.assert_close(target.weight, torch.tensor([[1.2, -1.4]]))
    torch.testing.assert_close(target.bias, torch.tensor([0.3]))
    torch.testing.assert_close(online.weight, torch.tensor([[3.0, 4.0]]))
    assert ema_momentum(0, 10, 0.996, 1.0) == 0.996 and ema_momentum(10, 10, 0.996, 1.0) == 1.0
    assert ema_momentum(5, 10, 0.996, 1.0) == pytest.approx(0.998)


def test_collapse_metric_is_the_hand_std() -> None:
    feats = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[3.0, 4.0], [3.0, 0.0]]])
    # over the 4 tokens: dim 0 (0, 2, 3, 3) mean 2, var (4+0+1+1)/4 = 1.5; dim 1 (1, 3, 4, 0)
    # mean 2, var (1+1+4+4)/4 = 2.5
    mean, low = feature_std(feats)
    assert mean == pytest.approx((math.sqrt(1.5) + math.sqrt(2.5)) / 2)
    assert low == pytest.approx(math.sqrt(1.5))
    # clip 0 pools to (1, 2), clip 1 to (3, 2): std over the batch = (1, 0)
    mean, low = feature_std(feats, pooled=True)
    assert mean == pytest.approx(0.5) and low == pytest.approx(0.0)


def test_masked_l1_reads_only_the_hidden_tokens() -> None:
    target = torch.tensor([[[1.0, 1.0], [5.0, 5.0], [2.0, 0.0]]])
    pred = torch.tensor([[[2.0, 2.0], [1.0, 1.0]]])
    # tokens 0 and 2: |2-1|,|2-1|,|1-2|,|1-0| -> mean 1
    assert float(masked_l1(pred, target, torch.tensor([[0, 2]]))) == pytest.approx(1.0)


def test_info_nce_two_by_two_by_hand() -> None:
    q = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # cosines: q0.k0 = 1, q0.k1 = 1/sqrt2, q1.k0 = 0, q1.k1 = 1/sqrt2; logits / 0.1
    c = 1 / math.sqrt(2)
    row0 = -10.0 + math.log(math.exp(10.0) + math.exp(10 * c))
    row1 = -10 * c + math.log(math.exp(0.0) + math.exp(10 * c))
    assert float(info_nce(q, k, 0.1)) == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_lr_warms_up_then_decays_to_min() -> None:
    cfg = PretrainConfig(lr=1e-3, min_lr=1e-5, warmup=0.1)
    assert lr_at(0, 100, cfg) == pytest.approx(1e-4)  # step 1 of 10 warm-up steps
    assert lr_at(9, 100, cfg) == pytest.approx(1e-3)
    assert lr_at(10, 100, cfg) == pytest.approx(1e-3)
    assert lr_at(55, 100, cfg) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # cosine midpoint
    assert lr_at(100, 100, cfg) == pytest.approx(1e-5)


# ---------------------------------------------------------------- training


def tiny_run(tri: TriTemporalConfig | None = None, **kw: object) -> PretrainConfig:
    model = JEPAConfig(encoder=TINY, predictor=TINY_PRED, masks=SMALL_MASKS, tritemporal=tri)
    opts: dict = {"epochs": 6, "batch": 4, "lr": 3e-3, "warmup": 0.1, "threads": 1} | kw
    return PretrainConfig(model=model, **opts)


@pytest.mark.parametrize("tri", [None, TriTemporalConfig(proj_dim=8)], ids=["jepa", "tritemporal"])
def test_pretraining_loss_falls_on_fixed_clips(tmp_path: Path, tri: TriTemporalConfig | None) -> None:
    clips = moving_bar_clips(8)
    records: list[dict] = []
    res = pretrain(clips, tmp_path, tiny_run(tri, epochs=15), on_epoch=records.append)
    assert res.finished and res.epochs_done == 15 and res.steps == 30
    assert [r["epoch"] for r in res.log] == list(range(1, 16)) and records == res.log
    first, last = res.log[0], res.log[-1]
    assert last["loss"] < 0.8 * first["loss"], [r["loss"] for r in res.log]
    assert last["loss_jepa"] < 0.9 * first["loss_jepa"], [r["loss_jepa"] for r in res.log]
    assert last["target_std"] > 0.0 and last["target_std_min"] >= 0.0
    if tri is not None:
        assert {"loss_soon", "loss_event"} <= set(last)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 15
    enc = load_encoder(tmp_path / "encoder.pt", expect=TINY)
    assert enc(clips[0][None, :2]).shape == (1, 8, 24)  # the planner's 2-frame input


def test_resume_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    clips = moving_bar_clips(8, seed=1)
    whole = pretrain(clips, tmp_path / "a", tiny_run(epochs=2))
    # a wall-time limit far below one step stops after the first step, mid-epoch
    part = pretrain(clips, tmp_path / "b", tiny_run(epochs=2, max_minutes=1e-6))
    assert not part.finished and part.steps == 1 and part.epochs_done == 0
    # the time-boxed run leaves a loadable encoder that says where it stopped
    assert part.encoder == tmp_path / "b" / "encoder.pt"
    stopped = torch.load(part.encoder, weights_only=True)["pretrain"]
    assert stopped["steps"] == 1 and stopped["stopped_in_epoch"] == 1
    with pytest.raises(HarnessError, match="--resume"):
        pretrain(clips, tmp_path / "b", tiny_run(epochs=2))
    with pytest.raises(HarnessError, match="batch"):
        pretrain(clips, tmp_path / "b", tiny_run(epochs=2, batch=2), resume=True)
    rest = pretrain(clips, tmp_path / "b", tiny_run(epochs=2), resume=True)
    assert rest.finished and rest.steps == whole.steps == 4
    a = torch.load(tmp_path / "a" / "encoder.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "encoder.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in whole.log] == [r["loss"] for r in rest.log]


# ---------------------------------------------------------------- encoder file


def test_encoder_file_round_trip_and_refusals(tmp_path: Path) -> None:
    torch.manual_seed(0)
    enc = VideoEncoder(TINY)
    path = save_encoder(tmp_path / "encoder.pt", enc, {"objective": "jepa"})
    back = load_encoder(path)
    assert back.cfg == TINY
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in enc.state_dict().items())
    with pytest.raises(EncoderFileError, match="does not exist"):
        load_encoder(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(EncoderFileError, match="bad.pt"):
        load_encoder(bad)
    with pytest.raises(EncoderFileError, match=r"image_w 64 \(expected 128\)"):
        load_encoder(path, expect=EncoderConfig(image_h=32, image_w=128, dim=24, depth=1, heads=2))
    obj = torch.load(path, weights_only=True)
    torch.save(obj | {"version": 9}, tmp_path / "v9.pt")
    with pytest.raises(EncoderFileError, match="version 9"):
        load_encoder(tmp_path / "v9.pt")
    torch.save(obj | {"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(EncoderFileError, match="not a drivejepa encoder"):
        load_encoder(tmp_path / "other.pt")
    obj["encoder_cfg"]["depth"] = 2  # weights of a 1-block encoder under a 2-block config
    torch.save(obj, tmp_path / "shape.pt")
    with pytest.raises(EncoderFileError, match="do not match"):
        load_encoder(tmp_path / "shape.pt")


# ---------------------------------------------------------------- CLI


def test_cli_missing_data_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["train", "pretrain", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "manifest.json" in err[0] and "harness collect" in err[0]
    assert not (tmp_path / "o").exists()


def test_cli_bad_objective_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    args = ["train", "pretrain", str(tmp_path), "--out", str(tmp_path / "o"), "--objective", "mae"]
    assert run(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--objective" in err[0] and "tritemporal" in err[0]


class _Clips:
    """Stand-in for ``drivejepa.data.store.VideoClips`` (the data engineer's reader): the
    contract's interface over moving-bar clips at 64x128."""

    def __init__(self, data: Path, split: str, frames: int = 8) -> None:
        assert split == "train" and frames == 8 and (data / "manifest.json").is_file()
        small = moving_bar_clips(4, frames)
        self.clips = [torch.nn.functional.interpolate(c, size=(64, 128)) for c in small]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.clips[i]


def test_cli_pretrain_writes_encoder_and_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = types.ModuleType("drivejepa.data.store")
    store.VideoClips = _Clips  # type: ignore[attr-defined]
    if importlib.util.find_spec("drivejepa.data") is None:
        monkeypatch.setitem(sys.modules, "drivejepa.data", types.ModuleType("drivejepa.data"))
    monkeypatch.setitem(sys.modules, "drivejepa.data.store", store)
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    (data / "manifest.json").write_text('{"format": "drivejepa-data", "version": 1}')
    args = ["train", "pretrain", str(data), "--out", str(out), "--size", "tiny", "--epochs", "2",
            "--batch", "2", "--threads", "1", "--objective", "tritemporal"]  # fmt: skip
    assert run(args) == 0
    stdout = capsys.readouterr().out
    assert "epoch 2/2" in stdout and "soon" in stdout and "target std" in stdout
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    enc = load_encoder(out / "encoder.pt")
    assert (enc.cfg.image_h, enc.cfg.image_w, enc.cfg.dim) == (64, 128, 48)
    info = torch.load(out / "encoder.pt", weights_only=True)["pretrain"]
    assert info["objective"] == "tritemporal" and info["epochs"] == 2 and info["clips"] == 4
    assert run(args) == 2  # the run exists: --resume or another --out
    assert "--resume" in capsys.readouterr().err
    assert run([*args, "--resume", "--epochs", "3"]) == 2  # other settings than the checkpoint's
    assert "epochs" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert run([*args[:4], str(tmp_path / "o2"), "--device", "cuda"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "CUDA is not available" in err[-1]
