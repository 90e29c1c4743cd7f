"""Pieces shared by the v2 generators (fgtrain/attngan2.py, fgtrain/cvaegan2.py): the stabilisers of
the strong recipes, each switchable for ablations.

- Spectral norm (Miyato et al., 2018): `SNConv2d`, `SNLinear`, `conv(..., sn=True)`. Written here
  (one power iteration per training forward, u kept as a buffer) so that it behaves the same under
  torch 1.13 and 2.x and under double back-propagation (the gradient penalty).
- Hinge loss (`d_hinge`, `g_hinge`) or the standard non-saturating loss (`--loss bce`); `MS_TAU`, the
  bounded mode-seeking term's 1 / (ratio + MS_TAU) of both generators.
- The matching-aware zero-centred gradient penalty of DF-GAN (Tao et al., CVPR 2022):
  k * mean(||(d D(x, e) / dx, d D(x, e) / de)||^p) on real images x with their own text e, k = 2, p = 6.
- DiffAugment (Zhao et al., NeurIPS 2020): the same differentiable colour / translation / cutout policy
  applied to every image D sees, real or fake, in D's and in G's update. Its random numbers (and the
  generators' noise) come from a generator on the training device (`device_generator`), seeded from
  the run's seed: a run repeats on the same kind of device, and no step waits on copies of them.
- Deep fusion (DF-GAN): `Affine` (per-channel scale and shift predicted from a condition vector),
  `FusedUpBlock` / `FusedResBlock` (upsample + 3x3 conv, no transposed convolution and no BatchNorm, so
  the EMA generator needs no recalibration and rows never depend on the batch).
- Box-filter resizes (`to_size`, `real_at`): generated and real images brought to the classifier's and
  the DAMSM's input size the same way.
- Checkpoint helpers: a full training checkpoint for --resume and a slim one (the EMA generator and
  what the export needs) that fits the device tool's 16 MiB per returned file (fp16 when fp32 is too
  large); a wall-clock deadline (`--stop-at`) so a scripted GPU run ends cleanly inside its lease.
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import Budget, data

# ---------------------------------------------------------------- spectral norm


class _SN:
    """Mixin: weight / sigma(weight), sigma from one power iteration per training forward."""

    def _init_sn(self, n_out: int):
        self.register_buffer("sn_u", F.normalize(torch.randn(n_out), dim=0))
        self.sn_enabled = True

    def sn_weight(self) -> torch.Tensor:
        if not self.sn_enabled:
            return self.weight
        w = self.weight.flatten(1)
        with torch.no_grad():
            v = F.normalize(torch.mv(w.t(), self.sn_u), dim=0, eps=1e-12)
            if self.training:
                u = F.normalize(torch.mv(w, v), dim=0, eps=1e-12)
                self.sn_u.copy_(u)
                v = F.normalize(torch.mv(w.t(), u), dim=0, eps=1e-12)
        # clones: u and v are saved for backward and sn_u changes in place at the next forward
        u, v = self.sn_u.clone(), v.clone()
        sigma = torch.dot(u, torch.mv(w, v))
        return self.weight / sigma


class SNConv2d(_SN, nn.Conv2d):
    def __init__(self, *args, sn: bool = True, **kw):
        super().__init__(*args, **kw)
        self._init_sn(self.out_channels)
        self.sn_enabled = sn

    def forward(self, x):
        return self._conv_forward(x, self.sn_weight(), self.bias)


class SNLinear(_SN, nn.Linear):
    def __init__(self, *args, sn: bool = True, **kw):
        super().__init__(*args, **kw)
        self._init_sn(self.out_features)
        self.sn_enabled = sn

    def forward(self, x):
        return F.linear(x, self.sn_weight(), self.bias)


def conv(cin: int, cout: int, k: int = 3, stride: int = 1, pad: int | None = None, sn: bool = True,
         bias: bool = True) -> nn.Module:
    return SNConv2d(cin, cout, k, stride, k // 2 if pad is None else pad, bias=bias, sn=sn)


# ---------------------------------------------------------------- losses

# MSGAN's 1 / (ratio + eps) with eps = 0.1 instead of 1e-5: without BatchNorm the ratio starts near 0.01,
# where the unbounded form gives the first steps a gradient ~1e4 times the other terms'
MS_TAU = 0.1


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_hinge(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def d_real_term(logits: torch.Tensor, kind: str, weight: torch.Tensor | None = None) -> torch.Tensor:
    """D's loss for logits that should say "real" (hinge: relu(1 - x); bce: -log sigmoid(x))."""
    v = F.relu(1.0 - logits) if kind == "hinge" else F.softplus(-logits)
    return _wmean(v, weight)


def d_fake_term(logits: torch.Tensor, kind: str, weight: torch.Tensor | None = None) -> torch.Tensor:
    """D's loss for logits that should say "fake" (hinge: relu(1 + x); bce: -log(1 - sigmoid(x)))."""
    v = F.relu(1.0 + logits) if kind == "hinge" else F.softplus(logits)
    return _wmean(v, weight)


def g_adv_term(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """G's loss on D's logits of fakes (hinge: -x; bce: the non-saturating -log sigmoid(x))."""
    return -logits.mean() if kind == "hinge" else F.softplus(-logits).mean()


def _wmean(v, weight):
    if weight is None:
        return v.mean()
    return (v * weight).sum() / weight.sum().clamp(min=1.0)


def zero_centred_gp(out: torch.Tensor, inputs, k: float = 2.0, p: float = 6.0) -> torch.Tensor:
    """DF-GAN's matching-aware gradient penalty: k * mean over the batch of ||grad||^p, the gradient of
    out.sum() w.r.t. all `inputs` (e.g. the real image and its sentence embedding) concatenated per
    sample. Differentiable (create_graph) so it trains D."""
    grads = torch.autograd.grad(out.sum(), list(inputs), create_graph=True)
    sq = sum(g.flatten(1).pow(2).sum(1) for g in grads)
    return k * (sq + 1e-12).sqrt().pow(p).mean()


# ---------------------------------------------------------------- DiffAugment

DIFFAUG_OPS = ("color", "translation", "cutout")


def parse_policy(text: str | None) -> tuple[str, ...]:
    """"color,translation,cutout" (default all), "none" or "" -> the ops, checked."""
    if text is None:
        return DIFFAUG_OPS
    ops = tuple(o.strip() for o in text.split(",") if o.strip() and o.strip() != "none")
    bad = [o for o in ops if o not in DIFFAUG_OPS]
    if bad:
        raise ValueError("unknown DiffAugment ops %s (known: %s)" % (bad, ", ".join(DIFFAUG_OPS)))
    return ops


def diff_augment(x: torch.Tensor, policy, g: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment of images [B,3,H,W] in [-1,1] (Zhao et al.'s ops: brightness +-0.5, saturation
    x[0,2], contrast x[0.5,1.5], translation up to 1/8 of the side with zero padding, one cutout square
    of half the side). Differentiable w.r.t. x; each image draws its own parameters."""
    if not policy:
        return x
    B, _, H, W = x.shape
    dev = x.device
    gdev = g.device if g is not None else torch.device("cpu")  # a device generator draws in place

    def rand(*shape):
        return torch.rand(*shape, generator=g, device=gdev).to(dev)

    def randint(lo, hi, shape):
        return torch.randint(lo, hi, shape, generator=g, device=gdev).to(dev)

    if "color" in policy:
        x = x + (rand(B, 1, 1, 1) - 0.5)
        m = x.mean(dim=1, keepdim=True)
        x = (x - m) * (rand(B, 1, 1, 1) * 2) + m
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - m) * (rand(B, 1, 1, 1) + 0.5) + m
    if "translation" in policy:
        sh, sw = int(H * 0.125 + 0.5), int(W * 0.125 + 0.5)
        tx = randint(-sh, sh + 1, (B, 1, 1))
        ty = randint(-sw, sw + 1, (B, 1, 1))
        gb, gx, gy = torch.meshgrid(torch.arange(B, device=dev), torch.arange(H, device=dev),
                                    torch.arange(W, device=dev), indexing="ij")
        gx = torch.clamp(gx + tx + 1, 0, H + 1)
        gy = torch.clamp(gy + ty + 1, 0, W + 1)
        xp = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
        x = xp.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)
    if "cutout" in policy:
        ch, cw = int(H * 0.5 + 0.5), int(W * 0.5 + 0.5)
        ox = randint(0, H + (1 - ch % 2), (B, 1, 1))
        oy = randint(0, W + (1 - cw % 2), (B, 1, 1))
        gb, gx, gy = torch.meshgrid(torch.arange(B, device=dev), torch.arange(ch, device=dev),
                                    torch.arange(cw, device=dev), indexing="ij")
        gx = torch.clamp(gx + ox - ch // 2, 0, H - 1)
        gy = torch.clamp(gy + oy - cw // 2, 0, W - 1)
        mask = torch.ones(B, H, W, dtype=x.dtype, device=dev)
        mask[gb, gx, gy] = 0
        x = x * mask.unsqueeze(1)
    return x.contiguous()


# ---------------------------------------------------------------- deep fusion blocks

class Affine(nn.Module):
    """x * gamma(c) + beta(c), per sample and channel; starts as the identity (DF-GAN's affine)."""

    def __init__(self, cond_dim: int, ch: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * ch))
        nn.init.zeros_(self.net[2].weight)
        with torch.no_grad():
            self.net[2].bias.copy_(torch.cat([torch.ones(ch), torch.zeros(ch)]))

    def forward(self, x, c):
        gamma, beta = self.net(c).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x * gamma + beta


class _Fuse(nn.Module):
    """Two affines with LeakyReLU (DF-GAN's fusion), or a LeakyReLU alone with fusion off."""

    def __init__(self, cond_dim: int, ch: int, fusion: bool):
        super().__init__()
        self.a1 = Affine(cond_dim, ch) if fusion else None
        self.a2 = Affine(cond_dim, ch) if fusion else None

    def forward(self, x, c):
        if self.a1 is None:
            return F.leaky_relu(x, 0.2)
        x = F.leaky_relu(self.a1(x, c), 0.2)
        return F.leaky_relu(self.a2(x, c), 0.2)


class FusedResBlock(nn.Module):
    """h + conv(fuse(conv(fuse(h)))): a residual block conditioned on c at every layer. With up, h is
    first upsampled x2 (nearest + 3x3 conv, or a 4x4 stride-2 transposed conv with up="deconv", the
    ablation of the checkerboard-prone alternative)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, up: str | None = None, fusion: bool = True):
        super().__init__()
        self.up = up
        if up == "deconv":
            self.upconv = nn.ConvTranspose2d(cin, cin, 4, 2, 1)
        self.f1 = _Fuse(cond_dim, cin, fusion)
        self.c1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.f2 = _Fuse(cond_dim, cout, fusion)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.short = nn.Conv2d(cin, cout, 1, 1, 0) if cin != cout else None

    def forward(self, h, c):
        if self.up == "nearest":
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        elif self.up == "deconv":
            h = self.upconv(h)
        r = self.c2(self.f2(self.c1(self.f1(h, c)), c))
        return (h if self.short is None else self.short(h)) + r


class DownBlock(nn.Module):
    """Discriminator residual block: (SN) conv - lrelu - conv - avgpool /2, 1x1 shortcut."""

    def __init__(self, cin: int, cout: int, sn: bool = True):
        super().__init__()
        self.c1 = conv(cin, cout, 3, sn=sn)
        self.c2 = conv(cout, cout, 3, sn=sn)
        self.short = conv(cin, cout, 1, pad=0, sn=sn)

    def forward(self, x):
        r = self.c2(F.leaky_relu(self.c1(F.leaky_relu(x, 0.2)), 0.2))
        return F.avg_pool2d(self.short(x) + r, 2)


# ---------------------------------------------------------------- image sizes

def to_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Box-filter (area) resize of [B,3,S,S] to size (an average pool when S is a multiple)."""
    S = images.shape[-1]
    if S == size:
        return images
    if S % size == 0:
        return F.avg_pool2d(images, S // size)
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def real_at(images_u8: torch.Tensor, size: int, chunk: int = 256) -> torch.Tensor:
    """uint8 images -> float in [-1,1] at `size` (box filter), a chunk at a time."""
    return torch.cat([to_size(data.to_float(images_u8[i:i + chunk]), size) for i in range(0, len(images_u8), chunk)])


# ---------------------------------------------------------------- checkpoints and deadlines

MAX_RETURN_BYTES = 15 * 2 ** 20  # the device tool returns files of at most 16 MiB


def slim_state(modules: dict, max_bytes: int = MAX_RETURN_BYTES) -> tuple[dict, str]:
    """{name: state_dict} of the modules for export-only checkpoints: fp32 if all of them fit
    max_bytes together, else fp16 (export casts back to fp32, so the ONNX graph and PyTorch still
    compute with identical weights; fp16 keeps 11 significant bits of each weight)."""
    sds = {n: {k: v.detach().cpu() for k, v in m.state_dict().items()} for n, m in modules.items()}
    size = sum(v.numel() * v.element_size() for sd in sds.values() for v in sd.values())
    if size <= max_bytes:
        return sds, "float32"
    return ({n: {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()} for n, sd in sds.items()},
            "float16")


def load_slim_state(module: nn.Module, sd: dict) -> None:
    ref = module.state_dict()
    module.load_state_dict({k: v.to(ref[k].dtype) if v.is_floating_point() else v for k, v in sd.items()})


class DeadlineBudget(Budget):
    """A Budget that is also done at a wall-clock time (epoch seconds; --stop-at), so a scripted run
    ends with a checkpoint before its lease does. The stop is not the end of the schedule: a later
    --resume continues up to --minutes."""

    def __init__(self, *a, stop_at: float | None = None, **kw):
        super().__init__(*a, **kw)
        self.stop_at = stop_at

    def deadline_hit(self) -> bool:
        return self.stop_at is not None and time.time() >= self.stop_at

    def done(self) -> bool:
        return super().done() or self.deadline_hit()


def write_done(out_dir: str, name: str, budget: DeadlineBudget) -> None:
    """<out>/<name>.done when the budget (not a deadline) ended the run: scripts skip finished steps."""
    if not budget.deadline_hit() or Budget.done(budget):
        with open(os.path.join(out_dir, name + ".done"), "w", encoding="utf-8") as f:
            f.write("%d steps, %.1f s\n" % (budget.step, budget.elapsed()))


def device_generator(device: str, seed: int) -> torch.Generator:
    """The generator of the per-step noise (z, DiffAugment): on the training device, so that no step
    waits on host-to-device copies of random numbers (a copy from pageable memory synchronises the
    stream). On the CPU it is an ordinary CPU generator."""
    gd = torch.Generator(device=torch.device(device))
    gd.manual_seed(int(seed) % (2 ** 63))
    return gd


def floats(logs: dict) -> dict:
    """{name: 0-d tensor or float} -> {name: float} (one device sync per value: only when logging)."""
    return {k: float(v) for k, v in logs.items()}


def device_setup(device: str) -> None:
    """TF32 matmuls and convolutions on CUDA (no effect on the CPU)."""
    if str(device).startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
