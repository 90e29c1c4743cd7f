"""AttnGAN networks (Xu et al., CVPR 2018): conditioning augmentation, an initial stage, attentional
next stages with word-level attention, one image head and one discriminator per stage.

The architecture is set by `AttnGANConfig`: the project's model uses stages 32 -> 64 (ngf 32); the
"reference" config (stages 64/128/256, gf_dim 32, 256-d text, vocabularies of thousands of words,
captions of up to 25 words) has the shape of taoxugit/AttnGAN's bird model, so graphs exported from it
exercise the serving side at full size.

Deviations from the reference code, on purpose: ReLU instead of GLU (half the convolution cost on a
CPU), nearest upsampling + 3x3 conv everywhere, the padding mask is applied per sample (the reference
repeats it across the batch in the wrong order when B > 1), and all noise (`z_code`, `ca_eps`) is an
input, so the same inputs give the same images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

MASK_FILL = -1e9  # added to attention scores of padding words; exp() of it is exactly 0 in float32


@dataclass
class AttnGANConfig:
    text_dim: int = 256
    z_dim: int = 100
    cond_dim: int = 100
    ngf: int = 32
    ndf: int = 32
    stage_sizes: list = field(default_factory=lambda: [32, 64])
    n_res: int = 1          # residual blocks per attentional stage
    max_words: int = 18     # informational (the manifest's max_words); the graphs take any T

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AttnGANConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @classmethod
    def reference(cls) -> "AttnGANConfig":
        """taoxugit/AttnGAN's bird generator shape: 3 stages 64/128/256, gf_dim 32, 2 residual blocks."""
        return cls(text_dim=256, z_dim=100, cond_dim=100, ngf=32, ndf=64,
                   stage_sizes=[64, 128, 256], n_res=2, max_words=25)

    def validate(self) -> None:
        s = self.stage_sizes
        if not s or s[0] < 8 or 4 * 2 ** int(round(math.log2(s[0] / 4))) != s[0]:
            raise ValueError("first stage size must be 4 * 2^n >= 8, got %r" % (s,))
        for a, b in zip(s, s[1:]):
            if b != 2 * a:
                raise ValueError("each stage must double the previous one, got %r" % (s,))


def up_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                         nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(),
                                  nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x):
        return F.relu(x + self.body(x))


class CondAugment(nn.Module):
    """sent_emb -> (c, mu, logvar) with c = mu + exp(0.5 logvar) * ca_eps."""

    def __init__(self, text_dim: int, cond_dim: int):
        super().__init__()
        self.fc = nn.Linear(text_dim, 2 * cond_dim)

    def forward(self, sent_emb, ca_eps):
        mu, logvar = self.fc(sent_emb).chunk(2, dim=1)
        return mu + torch.exp(0.5 * logvar) * ca_eps, mu, logvar


class InitStage(nn.Module):
    """[z_code, c] -> FC -> 4x4 -> nearest-upsampling blocks -> ngf channels at the first stage size."""

    def __init__(self, in_dim: int, ngf: int, size: int):
        super().__init__()
        n_up = int(round(math.log2(size / 4)))
        self.c0 = ngf * 2 ** n_up
        self.fc = nn.Sequential(nn.Linear(in_dim, self.c0 * 16, bias=False), nn.BatchNorm1d(self.c0 * 16),
                                nn.ReLU())
        self.ups = nn.Sequential(*[up_block(self.c0 // 2 ** i, self.c0 // 2 ** (i + 1)) for i in range(n_up)])

    def forward(self, x):
        return self.ups(self.fc(x).view(-1, self.c0, 4, 4))


class WordAttention(nn.Module):
    """Word-level attention: every pixel of h attends over the words of its own caption.

    h [B,C,H,W], words [B,D,T], words_mask [B,T] float (1 = padding) ->
    context [B,C,H,W] (sum over words of attention x projected word), attention [B,T,H,W]
    (sums to 1 over the non-padding words of each caption, exactly 0 on padding).
    """

    def __init__(self, ch: int, text_dim: int):
        super().__init__()
        self.proj = nn.Conv1d(text_dim, ch, 1, bias=False)

    def forward(self, h, words, words_mask):
        src = self.proj(words)                                 # [B,C,T]
        query = h.flatten(2).transpose(1, 2)                   # [B,HW,C]
        scores = torch.bmm(query, src)                         # [B,HW,T]
        pad = (words_mask > 0.5).unsqueeze(1)                  # [B,1,T], per sample
        attn = torch.softmax(scores.masked_fill(pad, MASK_FILL), dim=2)
        context = torch.bmm(src, attn.transpose(1, 2))         # [B,C,HW]
        B, C, H, W = h.shape[0], h.shape[1], h.shape[2], h.shape[3]
        return context.reshape(B, C, H, W), attn.transpose(1, 2).reshape(B, -1, H, W)


class NextStage(nn.Module):
    """Attention over words, [h, context] -> residual blocks -> upsample x2 -> ngf channels."""

    def __init__(self, ngf: int, text_dim: int, n_res: int):
        super().__init__()
        self.att = WordAttention(ngf, text_dim)
        self.res = nn.Sequential(*[ResBlock(2 * ngf) for _ in range(n_res)])
        self.up = up_block(2 * ngf, ngf)

    def forward(self, h, words, words_mask):
        context, att = self.att(h, words, words_mask)
        return self.up(self.res(torch.cat([h, context], dim=1))), att


class Generator(nn.Module):
    """(z_code, ca_eps, sent_emb, words_emb, words_mask) -> (img per stage..., att per attentional
    stage..., mu, logvar)."""

    def __init__(self, cfg: AttnGANConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.ca = CondAugment(cfg.text_dim, cfg.cond_dim)
        self.init = InitStage(cfg.z_dim + cfg.cond_dim, cfg.ngf, cfg.stage_sizes[0])
        self.nexts = nn.ModuleList(NextStage(cfg.ngf, cfg.text_dim, cfg.n_res)
                                   for _ in cfg.stage_sizes[1:])
        self.heads = nn.ModuleList(nn.Sequential(nn.Conv2d(cfg.ngf, 3, 3, 1, 1), nn.Tanh())
                                   for _ in cfg.stage_sizes)

    def output_names(self) -> list[str]:
        n = len(self.cfg.stage_sizes)
        return (["img%d" % s for s in self.cfg.stage_sizes] + ["att%d" % i for i in range(1, n)]
                + ["mu", "logvar"])

    @staticmethod
    def input_names() -> list[str]:
        return ["z_code", "ca_eps", "sent_emb", "words_emb", "words_mask"]

    def forward(self, z_code, ca_eps, sent_emb, words_emb, words_mask):
        c, mu, logvar = self.ca(sent_emb, ca_eps)
        h = self.init(torch.cat([z_code, c], dim=1))
        imgs, atts = [self.heads[0](h)], []
        for nxt, head in zip(self.nexts, self.heads[1:]):
            h, att = nxt(h, words_emb, words_mask)
            imgs.append(head(h))
            atts.append(att)
        return (*imgs, *atts, mu, logvar)


class StageD(nn.Module):
    """Discriminator of one stage: strided convs down to 4x4, an unconditional logit and a
    conditional (sentence) logit, as AttnGAN's D_NET64/128/256. Narrower than the reference (widths
    capped at 4 x ndf, the sentence projected to `ef_dim`): on a CPU the generator should get the time.
    Discriminators are never exported, so their shape is free."""

    def __init__(self, size: int, ndf: int, text_dim: int, ef_dim: int = 64, max_mult: int = 4):
        super().__init__()
        layers, cin, w, s = [], 3, ndf, size
        while s > 4:
            layers.append(nn.Conv2d(cin, w, 4, 2, 1, bias=False))
            if cin != 3:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.LeakyReLU(0.2))
            cin, w, s = w, min(w * 2, ndf * max_mult), s // 2
        self.trunk = nn.Sequential(*layers)
        self.uncond = nn.Conv2d(cin, 1, 4, 1, 0)
        self.sent = nn.Sequential(nn.Linear(text_dim, ef_dim), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Conv2d(cin + ef_dim, cin, 3, 1, 1, bias=False), nn.BatchNorm2d(cin),
                                   nn.LeakyReLU(0.2))
        self.cond = nn.Conv2d(cin, 1, 4, 1, 0)

    def forward(self, x):
        return self.trunk(x)

    def uncond_logits(self, feats):
        return self.uncond(feats).flatten()

    def cond_logits(self, feats, sent_emb):
        s = self.sent(sent_emb)
        s = s.view(s.shape[0], -1, 1, 1).expand(-1, -1, feats.shape[2], feats.shape[3])
        return self.cond(self.joint(torch.cat([feats, s], dim=1))).flatten()


def words_mask_from_lens(cap_lens: torch.Tensor, T: int) -> torch.Tensor:
    """float [B,T], 1 where position >= cap_len (padding)."""
    return (torch.arange(T, device=cap_lens.device).view(1, -1) >= cap_lens.view(-1, 1)).float()
