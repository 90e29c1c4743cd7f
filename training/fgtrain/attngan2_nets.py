"""AttnGAN v2 networks: AttnGAN's stages and word attention (Xu et al., CVPR 2018) with DF-GAN's deep
text-image fusion (Tao et al., CVPR 2022), for 128x128 images.

Generator (exported; same graph contract as v1 and the reference shape):
  (z_code [B,Z], ca_eps [B,C], sent_emb [B,D], words_emb [B,D,T], words_mask [B,T] float, 1 = padding)
  -> img32, img64, img128 [B,3,S,S], att1 [B,T,32,32], att2 [B,T,64,64], mu, logvar [B,C]
  - conditioning augmentation c = mu + exp(logvar / 2) * ca_eps (v1's CondAugment);
  - initial stage: FC([z, c]) -> 4x4 -> fused up-blocks (nearest x2 + 3x3 conv, every layer
    modulated by an affine of [z, c]) -> 32x32;
  - two attentional stages: word attention of every pixel over its own caption's words (v1's
    WordAttention, padding masked per sample), [h, context] -> 1x1 conv -> fused residual blocks ->
    fused up-block x2; an image head (LeakyReLU, 3x3 conv, tanh) per stage.
  No BatchNorm: the EMA generator needs no statistics, and each row is independent of the batch.

Discriminator per stage (never exported): a conv stem and spectral-norm residual down-blocks to 4x4,
an unconditional logit and a sentence-conditional logit (features concatenated with the sentence
embedding, DF-GAN's "one-way" conditional head).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attngan_nets import CondAugment, WordAttention
from .gan2 import DownBlock, FusedResBlock, conv


@dataclass
class AttnGAN2Config:
    text_dim: int = 256
    z_dim: int = 100
    cond_dim: int = 100
    ngf: int = 32
    ndf: int = 32
    stage_sizes: list = field(default_factory=lambda: [32, 64, 128])
    n_res: int = 1           # fused residual blocks per attentional stage
    max_words: int = 18      # informational (the manifest's max_words); the graphs take any T
    fusion: bool = True      # DF-GAN affine fusion of [z, c] in every generator layer
    up: str = "nearest"      # "nearest" (upsample + conv) or "deconv" (transposed conv; ablation)
    sn: bool = True          # spectral norm in the discriminators
    damsm_size: int = 64     # input size of the frozen DAMSM image encoder (the last image is pooled to it)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AttnGAN2Config":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def validate(self) -> None:
        s = self.stage_sizes
        if len(s) < 2 or s[0] < 8 or 4 * 2 ** int(round(math.log2(s[0] / 4))) != s[0]:
            raise ValueError("stage sizes: at least two, the first 4 * 2^n >= 8, got %r" % (s,))
        for a, b in zip(s, s[1:]):
            if b != 2 * a:
                raise ValueError("each stage must double the previous one, got %r" % (s,))
        if self.up not in ("nearest", "deconv"):
            raise ValueError("up must be nearest or deconv, got %r" % self.up)

    def channels(self, size: int) -> int:
        """Generator width at a resolution: 8 ngf up to 8 px, 4 ngf at 16-32, then halving."""
        if size <= 8:
            return 8 * self.ngf
        if size <= 32:
            return 4 * self.ngf
        return max(8, 4 * self.ngf * 32 // size)


class ImageHead(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, 3, 3, 1, 1)

    def forward(self, h):
        return torch.tanh(self.conv(F.leaky_relu(h, 0.2)))


class AttnStage(nn.Module):
    """Word attention at the current size, [h, context] -> 1x1 conv -> fused residual blocks -> x2."""

    def __init__(self, cin: int, cout: int, text_dim: int, cond_dim: int, n_res: int, fusion: bool, up: str):
        super().__init__()
        self.att = WordAttention(cin, text_dim)
        self.join = nn.Conv2d(2 * cin, cin, 1, 1, 0)
        self.res = nn.ModuleList(FusedResBlock(cin, cin, cond_dim, None, fusion) for _ in range(n_res))
        self.upb = FusedResBlock(cin, cout, cond_dim, up, fusion)

    def forward(self, h, cond, words, words_mask):
        context, att = self.att(h, words, words_mask)
        h = self.join(torch.cat([h, context], dim=1))
        for r in self.res:
            h = r(h, cond)
        return self.upb(h, cond), att


class Generator2(nn.Module):
    """(z_code, ca_eps, sent_emb, words_emb, words_mask) -> (img per stage..., att per attentional
    stage..., mu, logvar)."""

    def __init__(self, cfg: AttnGAN2Config):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        cond = cfg.z_dim + cfg.cond_dim
        self.ca = CondAugment(cfg.text_dim, cfg.cond_dim)
        self.c4 = cfg.channels(4)
        self.fc = nn.Linear(cond, self.c4 * 16)
        blocks, s = [], 4
        while s < cfg.stage_sizes[0]:
            blocks.append(FusedResBlock(cfg.channels(s), cfg.channels(2 * s), cond, cfg.up, cfg.fusion))
            s *= 2
        self.init = nn.ModuleList(blocks)
        self.stages = nn.ModuleList(
            AttnStage(cfg.channels(s), cfg.channels(2 * s), cfg.text_dim, cond, cfg.n_res, cfg.fusion, cfg.up)
            for s in cfg.stage_sizes[:-1])
        self.heads = nn.ModuleList(ImageHead(cfg.channels(s)) for s in cfg.stage_sizes)

    def output_names(self) -> list[str]:
        n = len(self.cfg.stage_sizes)
        return (["img%d" % s for s in self.cfg.stage_sizes] + ["att%d" % i for i in range(1, n)]
                + ["mu", "logvar"])

    @staticmethod
    def input_names() -> list[str]:
        return ["z_code", "ca_eps", "sent_emb", "words_emb", "words_mask"]

    def forward(self, z_code, ca_eps, sent_emb, words_emb, words_mask):
        c, mu, logvar = self.ca(sent_emb, ca_eps)
        cond = torch.cat([z_code, c], dim=1)
        h = self.fc(cond).view(-1, self.c4, 4, 4)
        for b in self.init:
            h = b(h, cond)
        imgs, atts = [self.heads[0](h)], []
        for stage, head in zip(self.stages, self.heads[1:]):
            h, att = stage(h, cond, words_emb, words_mask)
            imgs.append(head(h))
            atts.append(att)
        return (*imgs, *atts, mu, logvar)


class StageD2(nn.Module):
    """Discriminator of one stage: features [B,C,4,4]; uncond_logits(f) [B], cond_logits(f, sent) [B]."""

    def __init__(self, size: int, ndf: int, text_dim: int, sn: bool = True, max_mult: int = 8):
        super().__init__()
        self.stem = conv(3, ndf, 3, sn=sn)
        blocks, cin, s, w = [], ndf, size, ndf
        while s > 4:
            w = min(cin * 2, ndf * max_mult)
            blocks.append(DownBlock(cin, w, sn))
            cin, s = w, s // 2
        self.blocks = nn.Sequential(*blocks)
        self.out_ch = cin
        self.uncond = conv(cin, 1, 4, pad=0, sn=sn)
        self.joint = conv(cin + text_dim, cin, 3, sn=sn)
        self.cond = conv(cin, 1, 4, pad=0, sn=sn)

    def forward(self, x):
        return F.leaky_relu(self.blocks(self.stem(x)), 0.2)

    def uncond_logits(self, feats):
        return self.uncond(feats).flatten()

    def cond_logits(self, feats, sent_emb):
        s = sent_emb.view(sent_emb.shape[0], -1, 1, 1).expand(-1, -1, feats.shape[2], feats.shape[3])
        return self.cond(F.leaky_relu(self.joint(torch.cat([feats, s], dim=1)), 0.2)).flatten()
