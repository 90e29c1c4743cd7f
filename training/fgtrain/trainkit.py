"""Helpers every GAN trainer shares (cvaegan, attngan and their v2): the EMA generator and its
BatchNorm statistics, the step loop with logging and checkpoints, atomic saves and sample grids,
parameter counts, a relative MSE, and the generator metrics against the fidelity classifier with
their model-card descriptions. The v2 stabilisers are in fgtrain.gan2.
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from . import Budget, Logger, data, load_checkpoint, metrics


# ---------------------------------------------------------------- training loop pieces

def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameters only (see recalibrate_bn for buffers)."""
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm, 1.0 - decay)


def ema_decay(step: int, decay: float) -> float:
    """Warm-up: the average covers at most the steps taken so far."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def recalibrate_bn(model: nn.Module, inputs_fn, batches: int = 8) -> None:
    """Recompute BatchNorm running statistics of `model` (an EMA copy, whose weights never ran in
    train mode) as exact averages over `batches` forward passes of inputs_fn(i) -> args tuple."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for i in range(batches):
        model(*inputs_fn(i))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def run_steps(m: nn.Module, args, budget: Budget, log: Logger, save, step: int, next_batch, one_step) -> int:
    """The loop both GANs train with: one_step(next_batch(), step) -> losses (floats), then the EMA of
    m.G into m.G_ema, a log line with the mean seconds per step every --log-every steps, and
    save(step) every --ckpt-minutes until the budget is spent. Returns the step count."""
    last_ckpt, t_steps, n_steps = time.monotonic(), 0.0, 0
    while not budget.done():
        batch = next_batch()
        t0 = time.monotonic()
        losses = one_step(batch, step)
        ema_update(m.G_ema, m.G, ema_decay(step, args.ema))
        t_steps += time.monotonic() - t0
        n_steps += 1
        step += 1
        budget.step = step
        if step % args.log_every == 0 or args.quick:
            log(step=step, s=round(budget.elapsed(), 1), sec_per_step=round(t_steps / n_steps, 3),
                **{k: round(v, 5) for k, v in losses.items()})
            t_steps, n_steps = 0.0, 0
        # (the budget's own clock: in a distributed run done() is a collective, and only rank 0 saves)
        if time.monotonic() - last_ckpt >= args.ckpt_minutes * 60 and not getattr(budget, "inner", budget).done():
            save(step)
            last_ckpt = time.monotonic()
    return step


def save_grid(path: str, rows: list[list[torch.Tensor]]) -> None:
    """rows of images [3,S,S] in [-1,1] (each resized to the largest S) -> one PNG."""
    S = max(img.shape[-1] for row in rows for img in row)
    cols = max(len(r) for r in rows)
    pad = 2
    canvas = torch.ones(3, len(rows) * (S + pad) + pad, cols * (S + pad) + pad)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            if img.shape[-1] != S:
                img = F.interpolate(img[None], size=(S, S), mode="nearest")[0]
            y, x = pad + i * (S + pad), pad + j * (S + pad)
            canvas[:, y:y + S, x:x + S] = img
    arr = data.to_uint8(canvas).permute(1, 2, 0).numpy()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(arr).save(path)


def save_atomic(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def rel_mse(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean square error relative to the target's mean square: feature losses that keep their weight
    while D's and C's feature scales drift during training."""
    return F.mse_loss(a, target) / target.pow(2).mean().clamp(min=1e-8)


# ---------------------------------------------------------------- evaluation

def check_classes(classifier_path: str, class_ids) -> None:
    ck = load_checkpoint(classifier_path)
    if list(ck["class_ids"]) != list(class_ids):
        raise ValueError("the classifier %s was trained on %d classes, not on the %d seen classes of the "
                         "data set: pass --classifier of a classifier trained on this data set" % (
                             classifier_path, len(ck["class_ids"]), len(class_ids)))


def generator_metrics(scorer, real, real_labels, gen, gen_labels, seed: int = 0) -> dict:
    """top-1 of generated images as their requested class, intra-class diversity (generated vs
    real), Fréchet distance real vs generated and real half vs half (the sampling floor). `scorer`
    is a scoring.Scorer (anything with features(images, with_probs))."""
    fr, pr = scorer.features(real, with_probs=True)
    fg, pg = scorer.features(gen, with_probs=True)
    perm = torch.randperm(len(fr), generator=torch.Generator().manual_seed(seed)).numpy()
    a, b = perm[: len(fr) // 2], perm[len(fr) // 2:]
    div_gen = metrics.intra_class_diversity(fg, gen_labels.numpy())
    div_real = metrics.intra_class_diversity(fr, real_labels.numpy())
    return {
        "n_generated": len(fg), "n_real_test": len(fr),
        "top1_generated": metrics.top1(pg, gen_labels.numpy()),
        "top1_real_test": metrics.top1(pr, real_labels.numpy()),
        "diversity_generated": div_gen, "diversity_real_test": div_real,
        "diversity_ratio": div_gen / max(div_real, 1e-12),
        "fd_real_vs_generated": metrics.frechet_distance(*metrics.stats(fr), *metrics.stats(fg)),
        "fd_real_half_vs_half": metrics.frechet_distance(*metrics.stats(fr[a]), *metrics.stats(fr[b])),
    }


METRIC_HOW = {
    "top1_generated": "fidelity classifier top-1 of generated images as the requested class "
                      "(one per real test image of the seen classes, same class mix)",
    "top1_real_test": "fidelity classifier top-1 on the real test images (reference)",
    "diversity_generated": "mean pairwise L2 distance of classifier features between generated "
                           "images of one class, averaged over classes",
    "diversity_real_test": "the same on real test images",
    "diversity_ratio": "diversity_generated / diversity_real_test",
    "fd_real_vs_generated": "Fréchet distance in classifier feature space, real test vs generated",
    "fd_real_half_vs_half": "the same between two random halves of the real test set (floor)",
    "r_precision_generated": "DAMSM R-precision of generated images: true caption ranked first "
                             "among 100 (99 from other classes)",
    "r_precision_real_test": "the same for the real test images (reference)",
}


def with_how(values: dict) -> dict:
    """Metrics for model.json: each known one as {value, how}."""
    return {k: ({"value": v, "how": METRIC_HOW[k]} if k in METRIC_HOW else v) for k, v in values.items()}
