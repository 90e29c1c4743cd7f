"""CVAE-GAN networks (Bao et al., ICCV 2017), sized for 64x64 images on a CPU budget.

E(x, c) -> z_mu, z_logvar; G(z, c) -> image; D(x) -> real/fake logit + features; C(x) -> class
logits + features. `c` is a one-hot (or soft mixture) row over the K seen classes: G and E see it
through a linear embedding, so mixtures interpolate between class embeddings.

G injects the code s = [z, embed(c)] into every block (a per-sample scale and shift after a
parameter-free BatchNorm), so neither z nor c can be ignored by a late layer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class CVAEGANConfig:
    num_classes: int
    z_dim: int = 64
    emb_dim: int = 64       # class embedding size inside G and E
    ngf: int = 32           # G width at 32x32 (doubles per halving of the resolution)
    nef: int = 32           # E trunk width at 32x32
    ndf: int = 32           # D trunk width
    ncf: int = 32           # C trunk width
    feat_dim: int = 256     # C penultimate features
    image_size: int = 64
    extra_convs: int = 0    # extra convs per G block at resolutions <= 32 (each +~30% of G's cost)

    def to_dict(self) -> dict:
        return asdict(self)


def _n_up(image_size: int) -> int:
    n = int(round(math.log2(image_size / 4)))
    if 4 * 2 ** n != image_size:
        raise ValueError("image_size must be 4 * 2^n, got %d" % image_size)
    return n


class FiLMConv(nn.Module):
    """[nearest x2] -> conv3x3 -> BatchNorm without affine -> per-sample (1 + gamma(s), beta(s)) -> ReLU."""

    def __init__(self, cin: int, cout: int, code_dim: int, up: bool):
        super().__init__()
        self.up = up
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, affine=False)
        self.film = nn.Linear(code_dim, 2 * cout)
        nn.init.normal_(self.film.weight, 0.0, 0.02)
        nn.init.zeros_(self.film.bias)

    def forward(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if self.up:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.bn(self.conv(h))
        gamma, beta = self.film(s).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return F.relu(h * (1.0 + gamma) + beta)


class Generator(nn.Module):
    """G(z [B,Z], class_onehot [B,K]) -> image [B,3,S,S] in [-1,1]."""

    def __init__(self, cfg: CVAEGANConfig):
        super().__init__()
        self.cfg = cfg
        n_up = _n_up(cfg.image_size)
        code = cfg.z_dim + cfg.emb_dim
        self.embed = nn.Linear(cfg.num_classes, cfg.emb_dim, bias=False)
        self.c0 = cfg.ngf * 2 ** (n_up - 1)
        self.fc = nn.Linear(code, self.c0 * 16, bias=False)
        self.bn0 = nn.BatchNorm1d(self.c0 * 16)
        blocks = []
        cin, size = self.c0, 4
        for i in range(n_up):
            cout = max(cfg.ngf * 2 ** (n_up - 2 - i), 8) if i < n_up - 1 else max(cfg.ngf // 2, 8)
            size *= 2
            blocks.append(FiLMConv(cin, cout, code, up=True))
            if size <= 32:
                blocks.extend(FiLMConv(cout, cout, code, up=False) for _ in range(cfg.extra_convs))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.Conv2d(cin, 3, 3, 1, 1)

    def code(self, z: torch.Tensor, class_onehot: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.embed(class_onehot)], dim=1)

    def forward(self, z: torch.Tensor, class_onehot: torch.Tensor) -> torch.Tensor:
        s = self.code(z, class_onehot)
        h = F.relu(self.bn0(self.fc(s))).view(-1, self.c0, 4, 4)
        for b in self.blocks:
            h = b(h, s)
        return torch.tanh(self.to_rgb(h))


def _trunk(width: int, image_size: int, bn: bool = False) -> tuple[nn.Sequential, int]:
    """Strided 4x4 convs with LeakyReLU (and BatchNorm after the first, with bn) down to 4x4;
    returns (module, flattened feature size)."""
    layers, cin, size, w = [], 3, image_size, width
    while size > 4:
        layers.append(nn.Conv2d(cin, w, 4, 2, 1, bias=not (bn and cin != 3)))
        if bn and cin != 3:
            layers.append(nn.BatchNorm2d(w))
        layers.append(nn.LeakyReLU(0.2))
        cin, size, w = w, size // 2, w * 2
    return nn.Sequential(*layers), cin * 16


class Encoder(nn.Module):
    """E(image, class_onehot) -> (z_mu, z_logvar)."""

    def __init__(self, cfg: CVAEGANConfig):
        super().__init__()
        self.trunk, n = _trunk(cfg.nef, cfg.image_size)
        self.embed = nn.Linear(cfg.num_classes, cfg.emb_dim, bias=False)
        self.fc = nn.Sequential(nn.Linear(n + cfg.emb_dim, 256), nn.LeakyReLU(0.2),
                                nn.Linear(256, 2 * cfg.z_dim))

    def forward(self, image: torch.Tensor, class_onehot: torch.Tensor):
        h = self.trunk(image).flatten(1)
        mu, logvar = self.fc(torch.cat([h, self.embed(class_onehot)], dim=1)).chunk(2, dim=1)
        return mu, logvar


class Discriminator(nn.Module):
    """D(x) -> (logit [B], features [B,F]) with F the flattened last 4x4 feature map."""

    def __init__(self, cfg: CVAEGANConfig):
        super().__init__()
        self.trunk, n = _trunk(cfg.ndf, cfg.image_size)
        self.out = nn.Linear(n, 1)

    def forward(self, x: torch.Tensor):
        f = self.trunk(x).flatten(1)
        return self.out(f).squeeze(1), f


class AuxClassifier(nn.Module):
    """The CVAE-GAN's own classifier C(x) -> (logits [B,K], features [B,feat_dim]); trained on real
    images only, with the GAN (not the fidelity classifier used for evaluation). BatchNorm makes it
    learn in a few hundred steps; its features for the generator's losses are taken in eval mode."""

    def __init__(self, cfg: CVAEGANConfig):
        super().__init__()
        self.trunk, n = _trunk(cfg.ncf, cfg.image_size, bn=True)
        self.feat = nn.Sequential(nn.Linear(n, cfg.feat_dim), nn.LeakyReLU(0.2))
        self.out = nn.Linear(cfg.feat_dim, cfg.num_classes)

    def forward(self, x: torch.Tensor):
        f = self.feat(self.trunk(x).flatten(1))
        return self.out(f), f

