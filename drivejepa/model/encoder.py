"""The video encoder: a ViT over tubelets (2 frames x 16 x 16 pixels), with fixed 3-D sin-cos
positions so one set of weights encodes a 2-frame planner input and an 8-frame pretraining clip.

Tokens are ordered (time, row, column), row-major: token ``i`` of a clip of ``T`` frames sits at
``(i // (h*w), (i // w) % h, i % w)`` of ``grid(T) = (T / tubelet, H / patch, W / patch)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, images in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
SINCOS_BASE = 10000.0  # wavelength base of the sin-cos positions


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of the video encoder. ``image_h`` / ``image_w`` [px] must be multiples of ``patch``
    [px]; clips must have a multiple of ``tubelet`` [frames] frames."""

    image_h: int = 128
    image_w: int = 256
    tubelet: int = 2
    patch: int = 16
    dim: int = 192
    depth: int = 6
    heads: int = 3
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        if self.image_h % self.patch or self.image_w % self.patch:
            raise ConfigError(
                f"image {self.image_w}x{self.image_h} is not a multiple of the patch {self.patch}; "
                "pick an image size divisible by the patch"
            )
        if self.dim % self.heads:
            raise ConfigError(f"encoder dim {self.dim} is not divisible by heads {self.heads}")
        if min(self.tubelet, self.patch, self.dim, self.depth, self.heads) < 1:
            raise ConfigError(f"encoder sizes must be positive: {self}")

    def grid(self, frames: int) -> tuple[int, int, int]:
        """Token grid (t, h, w) of a clip of ``frames`` frames."""
        if frames < 1 or frames % self.tubelet:
            raise ConfigError(
                f"a clip of {frames} frames does not split into tubelets of {self.tubelet} frames"
            )
        return frames // self.tubelet, self.image_h // self.patch, self.image_w // self.patch

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EncoderConfig:
        """The config of a ``to_json`` dict; unknown or missing keys are a ConfigError."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - names)
        if unknown:
            raise ConfigError(f"unknown encoder config keys {unknown}")
        return cls(**obj)


ENCODER_PRESETS: dict[str, EncoderConfig] = {
    "small": EncoderConfig(),
    "tiny": EncoderConfig(dim=48, depth=2, heads=2),
}
"""Named encoder sizes: ``small`` is the default (pretrains on 2 CPU cores), ``tiny`` is for tests
and the benchmark's reference."""


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """(len(pos), dim) sin-cos features of positions ``pos``; ``dim`` even."""
    freq = 1.0 / SINCOS_BASE ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    ang = pos.to(torch.float64)[:, None] * freq[None, :]
    return torch.cat([ang.sin(), ang.cos()], dim=1)


def sincos_3d(dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """(t*h*w, dim) float32 positions: equal even shares of ``dim`` encode time, row and column,
    the rest (dim mod 6) is zero."""
    t, h, w = grid
    part = (dim // 6) * 2
    tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.cat(
        [sincos_1d(part, tt.reshape(-1)), sincos_1d(part, hh.reshape(-1)),
         sincos_1d(part, ww.reshape(-1)), torch.zeros(t * h * w, dim - 3 * part, dtype=torch.float64)],
        dim=1,
    )  # fmt: skip
    return pos.float()


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` (B, n) of tokens ``x`` (B, N, D) -> (B, n, D)."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module) -> None:
    """ViT initialisation: truncated-normal linear weights (std 0.02), zero biases, unit norms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class VideoEncoder(nn.Module):
    """Clips (B, T, 3, H, W) RGB in [0, 1] -> tokens (B, N, dim), N = T/tubelet * H/patch * W/patch;
    with ``keep`` (B, n) token indices only those tokens are encoded (the context encoder)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = nn.Conv3d(
            3, cfg.dim, kernel_size=(cfg.tubelet, cfg.patch, cfg.patch),
            stride=(cfg.tubelet, cfg.patch, cfg.patch),
        )  # fmt: skip
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)
        init_weights(self)

    def grid(self, frames: int) -> tuple[int, int, int]:
        """Token grid (t, h, w) of a clip of ``frames`` frames."""
        return self.cfg.grid(frames)

    def positions(self, frames: int, device: torch.device) -> torch.Tensor:
        """(N, dim) fixed positions of a clip of ``frames`` frames."""
        return sincos_3d(self.cfg.dim, self.grid(frames)).to(device)

    def tokenize(self, clip: torch.Tensor) -> torch.Tensor:
        """Normalised tubelet embeddings plus positions, (B, N, dim), before the blocks."""
        b, t, c, h, w = clip.shape
        if c != 3 or (h, w) != (self.cfg.image_h, self.cfg.image_w):
            raise ConfigError(
                f"clip of {c} channels at {w}x{h}; the encoder takes RGB at "
                f"{self.cfg.image_w}x{self.cfg.image_h}"
            )
        self.grid(t)  # checks the tubelet split
        x = (clip.transpose(1, 2) - self.mean) / self.std  # (B, 3, T, H, W)
        x = self.tokenizer(x).flatten(2).transpose(1, 2)  # (B, N, dim), (t, h, w) row-major
        return x + self.positions(t, x.device)

    def forward(self, clip: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = self.tokenize(clip)
        if keep is not None:
            x = gather_tokens(x, keep)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)
