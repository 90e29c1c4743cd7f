"""CVAE-GAN v2 networks (Bao et al., ICCV 2017) at 128x128.

E(x, c) -> z_mu, z_logvar; G(z, c) -> image; D(x) -> (logit, features per block); C(x) -> (logits,
features, feature maps per block). `c` is a one-hot (or soft mixture) row over the K seen classes and
enters G and E through a linear embedding, so mixtures interpolate between class embeddings.

G: FC([z, embed(c)]) -> 4x4 -> deep-fusion residual up-blocks (nearest x2 + 3x3 conv, every layer
modulated by an affine of [z, embed(c)], no BatchNorm) -> 128x128. E: plain residual down-blocks (no
normalisation, so its output for a row never depends on the batch). D: spectral-norm residual
down-blocks (never exported). C: a BatchNorm classifier trunk (never exported), the CVAE-GAN's own
classifier trained on real images only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .gan2 import DownBlock, FusedResBlock, conv


@dataclass
class CVAEGAN2Config:
    num_classes: int
    z_dim: int = 128
    emb_dim: int = 128       # class embedding size inside G and E
    ngf: int = 32            # G width at 128 px (x4 at 16-32 px, x8 at 4-8 px)
    nef: int = 32            # E width at 128 px (capped at 4 nef)
    ndf: int = 32            # D width at 128 px (capped at 8 ndf)
    ncf: int = 32            # C width at 64 px (capped at 8 ncf)
    feat_dim: int = 256      # C penultimate features
    image_size: int = 128
    fusion: bool = True      # deep fusion of [z, embed(c)] in every G layer (ablation: --no-fusion)
    up: str = "nearest"      # nearest (upsample + conv) or deconv (ablation)
    sn: bool = True          # spectral norm in D (ablation: --no-sn)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CVAEGAN2Config":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def validate(self) -> None:
        n = int(round(math.log2(self.image_size / 4)))
        if self.image_size < 16 or 4 * 2 ** n != self.image_size:
            raise ValueError("image_size must be 4 * 2^n >= 16, got %d" % self.image_size)

    def g_channels(self, size: int) -> int:
        s = size * 128 // self.image_size  # widths follow the 128-px schedule at other sizes
        if s <= 8:
            return 8 * self.ngf
        if s <= 32:
            return 4 * self.ngf
        return max(8, 4 * self.ngf * 32 // s)


class Generator(nn.Module):
    """G(z [B,Z], class_onehot [B,K]) -> image [B,3,S,S] in [-1,1]."""

    def __init__(self, cfg: CVAEGAN2Config):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        code = cfg.z_dim + cfg.emb_dim
        self.embed = nn.Linear(cfg.num_classes, cfg.emb_dim, bias=False)
        self.c4 = cfg.g_channels(4)
        self.fc = nn.Linear(code, self.c4 * 16)
        blocks, s = [], 4
        while s < cfg.image_size:
            blocks.append(FusedResBlock(cfg.g_channels(s), cfg.g_channels(2 * s), code, cfg.up, cfg.fusion))
            s *= 2
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.Conv2d(cfg.g_channels(cfg.image_size), 3, 3, 1, 1)

    def code(self, z: torch.Tensor, class_onehot: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.embed(class_onehot)], dim=1)

    def forward(self, z: torch.Tensor, class_onehot: torch.Tensor) -> torch.Tensor:
        s = self.code(z, class_onehot)
        h = self.fc(s).view(-1, self.c4, 4, 4)
        for b in self.blocks:
            h = b(h, s)
        return torch.tanh(self.to_rgb(F.leaky_relu(h, 0.2)))


def _down_widths(width: int, image_size: int, cap: int) -> list[int]:
    """Output widths of the down-blocks from image_size to 4 px: doubling from `width`, capped."""
    out, w, s = [], width, image_size
    while s > 4:
        w = min(w * 2, cap)
        out.append(w)
        s //= 2
    return out


class Encoder(nn.Module):
    """E(image, class_onehot) -> (z_mu, z_logvar)."""

    def __init__(self, cfg: CVAEGAN2Config):
        super().__init__()
        self.stem = nn.Conv2d(3, cfg.nef, 3, 1, 1)
        blocks, cin = [], cfg.nef
        for w in _down_widths(cfg.nef, cfg.image_size, 4 * cfg.nef):
            blocks.append(DownBlock(cin, w, sn=False))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.embed = nn.Linear(cfg.num_classes, cfg.emb_dim, bias=False)
        self.fc = nn.Sequential(nn.Linear(cin * 16 + cfg.emb_dim, 512), nn.LeakyReLU(0.2),
                                nn.Linear(512, 2 * cfg.z_dim))

    def forward(self, image: torch.Tensor, class_onehot: torch.Tensor):
        h = F.leaky_relu(self.blocks(self.stem(image)), 0.2).flatten(1)
        mu, logvar = self.fc(torch.cat([h, self.embed(class_onehot)], dim=1)).chunk(2, dim=1)
        return mu, logvar


class Discriminator(nn.Module):
    """D(x) -> (logit [B], [feature map after each down-block], pooled last features [B,C])."""

    def __init__(self, cfg: CVAEGAN2Config):
        super().__init__()
        self.stem = conv(3, cfg.ndf, 3, sn=cfg.sn)
        blocks, cin = [], cfg.ndf
        for w in _down_widths(cfg.ndf, cfg.image_size, 8 * cfg.ndf):
            blocks.append(DownBlock(cin, w, cfg.sn))
            cin = w
        self.blocks = nn.ModuleList(blocks)
        self.out = conv(cin, 1, 4, pad=0, sn=cfg.sn)

    def forward(self, x: torch.Tensor):
        h, maps = self.stem(x), []
        for b in self.blocks:
            h = b(h)
            maps.append(h)
        h = F.leaky_relu(h, 0.2)
        return self.out(h).flatten(), maps, h.mean(dim=(2, 3))


class AuxClassifier(nn.Module):
    """The CVAE-GAN's own classifier C(x) -> (logits [B,K], features [B,feat_dim], [feature maps]);
    the input is box-filtered to 64 px (C needs the class, not the texture). BatchNorm makes it learn
    in a few hundred steps; its features for the generator's losses are taken in eval mode."""

    def __init__(self, cfg: CVAEGAN2Config):
        super().__init__()
        self.k = max(1, cfg.image_size // 64)
        cin, s, w = 3, cfg.image_size // self.k, cfg.ncf
        blocks = []
        while s > 4:
            blocks.append(nn.Sequential(nn.Conv2d(cin, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w),
                                        nn.LeakyReLU(0.2)))
            cin, s, w = w, s // 2, min(w * 2, 8 * cfg.ncf)
        self.blocks = nn.ModuleList(blocks)
        self.feat = nn.Sequential(nn.Linear(cin * 16, cfg.feat_dim), nn.LeakyReLU(0.2))
        self.out = nn.Linear(cfg.feat_dim, cfg.num_classes)

    def forward(self, x: torch.Tensor):
        h = F.avg_pool2d(x, self.k) if self.k > 1 else x
        maps = []
        for b in self.blocks:
            h = b(h)
            maps.append(h)
        f = self.feat(h.flatten(1))
        return self.out(f), f, maps
