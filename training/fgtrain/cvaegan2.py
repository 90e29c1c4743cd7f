"""CVAE-GAN v2 at 128x128: `python3 -m fgtrain cvaegan2 --data DIR --out DIR`.

CVAE-GAN (Bao et al., ICCV 2017): encoder E, generator G, discriminator D and the model's own
classifier C (networks: fgtrain/cvaegan2_nets.py). One step on real images x of classes c:

  E:  z ~ q(z | x, c); x_r = G(z, c) (reconstruction); x_p = G(z_p, c_p), z_p ~ N(0, I), classes in
      groups of --group; x_t = G(z_mu, c_t) with c_t another class (the morph the studio serves)
  D:  hinge loss (--loss hinge | bce) on DiffAugment-ed real vs [x_r, x_p, x_t] (--diffaug),
      spectral norm (--no-sn), zero-centred gradient penalty on real images (--w-gp, --gp-every)
  C:  cross-entropy on augmented real images only (C is the CVAE-GAN's own classifier; the fidelity
      classifier and the judge are never in a loss)
  E+G:  KL + pixel reconstruction (--w-kl, --w-rec)
      + pairwise feature matching of x_r to x on every block of D and C and on C's features (--w-rec-feat)
      + mean feature matching: D's pooled features of x_p and x_r to the real batch's (--w-fm-d), C's
        features of each group of x_p to a running centre of its class (--w-fm-c)
      + C's cross-entropy on x_p and on the morphs x_t (--w-cls)
      + latent cycle: E(x_t, c_t) should give back z_mu, so a morph keeps what z holds (pose, layout,
        scene) and changes only the class (--w-cycle)
      + mode seeking on pairs inside each group of x_p (--w-ms)
      + a small hinge term through D on the DiffAugment-ed fakes (--w-adv; 0 = the paper's purely
        feature-matching generator)
    The D- and C-feature terms ramp up from 0 over --warmup steps (until D and C know something their
    gradients are noise). EMA of G (--ema; 0 = none) is sampled and exported.

Writes <out>/cvaegan2.pt (full checkpoint), <out>/cvaegan2_ema.pt (EMA generator + encoder, <= 15 MiB),
<out>/cvaegan2.log.jsonl, <out>/samples/cvaegan2_<step>.png (real + samples per class) and
cvaegan2_morph_<step>.png (input, reconstruction, morphs), <out>/cvaegan2_metrics.json (with
--classifier) and a model directory (--model-dir, default <out>/cvaegan-birds-v2: generator.onnx,
encoder.onnx, model.json, ... in v1's contract).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import Logger, data, load_checkpoint, setup
from .cvaegan import export_graphs
from .cvaegan import write_samples as write_class_samples
from .cvaegan2_nets import AuxClassifier, CVAEGAN2Config, Discriminator, Encoder, Generator
from .gan2 import (MS_TAU, DeadlineBudget, d_fake_term, d_real_term, device_generator, device_setup, diff_augment,
                   floats, g_adv_term, load_slim_state, parse_policy, real_at, slim_state, to_size, write_done,
                   zero_centred_gp)
from .trainkit import (check_classes, generator_metrics, n_params, rel_mse, run_steps, save_atomic, save_grid,
                       with_how)

NAME = "cvaegan2"


@dataclass
class LossWeights:
    kl: float = 3e-3       # KL summed over z dims, mean over the batch
    rec: float = 1.0       # pixel MSE of reconstructions
    rec_feat: float = 1.0  # pairwise feature matching of reconstructions (D and C, relative MSE)
    fm_d: float = 1.0      # mean feature matching against D
    fm_c: float = 1.0      # per-class mean feature matching against C
    cls: float = 0.3       # C's cross-entropy on random samples and morphs
    cycle: float = 1.0     # latent cycle of morphs; 0 = off (and no morphs in the step)
    ms: float = 0.05       # mode seeking: 1 / (mean|G(z1)-G(z2)| / mean|z1-z2| + 0.1)
    adv: float = 0.1       # hinge term through D; 0 = the paper's asymmetric (feature-matching) G
    gp: float = 1.0        # zero-centred gradient penalty on real images (DF-GAN's k = 2, p = 6); 0 = off


@dataclass
class Recipe:
    loss: str = "hinge"                          # hinge | bce
    diffaug: str = "color,translation,cutout"    # DiffAugment policy, or "none"
    gp_every: int = 1
    lr: float = 2e-4       # E and G (Adam 0.5, 0.999)
    lr_d: float = 2e-4     # D (Adam beta1_d, 0.9)
    lr_c: float = 1e-3     # C (Adam 0.9, 0.999)
    beta1_d: float = 0.0


def loss_weights(args) -> LossWeights:
    given = {f: getattr(args, "w_" + f) for f in LossWeights.__dataclass_fields__}
    return LossWeights(**{k: v for k, v in given.items() if v is not None})


class CVAEGAN2(nn.Module):
    """E, G, D, C and the EMA generator."""

    def __init__(self, cfg: CVAEGAN2Config, w: LossWeights | None = None, recipe: Recipe | None = None):
        super().__init__()
        self.cfg, self.w, self.recipe = cfg, w or LossWeights(), recipe or Recipe()
        self.E, self.G, self.D, self.C = Encoder(cfg), Generator(cfg), Discriminator(cfg), AuxClassifier(cfg)
        self.G_ema = copy.deepcopy(self.G).eval()
        for p in self.G_ema.parameters():
            p.requires_grad_(False)
        self.register_buffer("centres", torch.zeros(cfg.num_classes, cfg.feat_dim))
        self.register_buffer("centre_seen", torch.zeros(cfg.num_classes))

    def onehot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, self.cfg.num_classes).float()

    def update_centres(self, feats: torch.Tensor, labels: torch.Tensor, momentum: float = 0.7) -> None:
        """Running per-class centres of C's features on real images (dense: no per-class loop and no
        device sync)."""
        with torch.no_grad():
            K = self.cfg.num_classes
            sums = torch.zeros(K, feats.shape[1], device=feats.device).index_add_(0, labels, feats)
            cnt = torch.zeros(K, device=feats.device).index_add_(0, labels, torch.ones_like(labels, dtype=feats.dtype))
            mean = sums / cnt.clamp(min=1).unsqueeze(1)
            have = (cnt > 0).unsqueeze(1)
            old = have & (self.centre_seen > 0).unsqueeze(1)
            new = torch.where(old, momentum * self.centres + (1 - momentum) * mean, mean)
            self.centres.copy_(torch.where(have, new, self.centres))
            self.centre_seen.copy_(torch.where(cnt > 0, torch.ones_like(cnt), self.centre_seen))


def _set_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def train_step(m: CVAEGAN2, opts: dict, x: torch.Tensor, y: torch.Tensor, g: torch.Generator,
               group: int = 4, ramp: float = 1.0, step: int = 0, gd: torch.Generator | None = None,
               with_logs: bool = True) -> dict:
    """One CVAE-GAN v2 step (D, C, then E+G). `gd` draws the noise and DiffAugment (a generator on the
    batch's device, gan2.device_generator; default g), `g` (CPU) C's data augmentation. Returns the
    losses as floats, or {} without with_logs (no device sync)."""
    w, cfg, rc = m.w, m.cfg, m.recipe
    policy = parse_policy(rc.diffaug)
    B, K = x.shape[0], cfg.num_classes
    group = max(2, min(group, B))
    n_groups = max(1, B // group)
    dev = x.device
    gd = g if gd is None else gd

    def aug(t):
        return diff_augment(t, policy, gd)

    def randn(*shape):
        return torch.randn(*shape, generator=gd, device=gd.device).to(dev)

    pick = torch.randint(0, B, (n_groups,), generator=gd, device=gd.device).to(dev)
    y_p = y[pick].repeat_interleave(group)
    Np = len(y_p)
    z_p = randn(Np, cfg.z_dim)
    y_t = (y + torch.randint(1, max(2, K), (B,), generator=gd, device=gd.device).to(dev)) % K  # another class
    oh, oh_p, oh_t = m.onehot(y), m.onehot(y_p), m.onehot(y_t)
    cycle = w.cycle > 0 and K > 1

    mu, logvar = m.E(x, oh)
    z = mu + randn(*mu.shape) * torch.exp(0.5 * logvar)
    zs, cs = [z, z_p], [oh, oh_p]
    if cycle:
        zs.append(mu)
        cs.append(oh_t)
    fake = m.G(torch.cat(zs), torch.cat(cs))
    x_r, x_p = fake[:B], fake[B:B + Np]

    # ---- D: hinge on augmented images, zero-centred penalty on the real ones
    logs = {}
    use_gp = w.gp > 0 and step % max(1, rc.gp_every) == 0
    ra = aug(x)
    if use_gp:
        ra = ra.detach().requires_grad_(True)
    d_real = m.D(ra)[0]
    d_fake = m.D(aug(fake.detach()))[0]
    loss_d = d_real_term(d_real, rc.loss) + d_fake_term(d_fake, rc.loss)
    if use_gp:
        gp = zero_centred_gp(d_real, (ra,))
        loss_d = loss_d + w.gp * max(1, rc.gp_every) * gp
        logs["gp"] = gp.detach()
    opts["D"].zero_grad(set_to_none=True)
    loss_d.backward()
    opts["D"].step()

    # ---- C: real images only (augmented), BatchNorm in train mode; features below in eval mode
    m.C.train()
    logits = m.C(data.augment(x, g))[0]
    loss_c = F.cross_entropy(logits, y)
    opts["C"].zero_grad(set_to_none=True)
    loss_c.backward()
    opts["C"].step()
    m.C.eval()

    # ---- E + G
    _set_grad(m.D, False)
    _set_grad(m.C, False)
    with torch.no_grad():
        _, fd_maps_real, fd_real = m.D(x)
        _, fc_real, fc_maps_real = m.C(x)
        m.update_centres(fc_real, y)
    _, fd_maps, fd_feat = m.D(fake)
    c_logits, fc_feat, fc_maps = m.C(fake)

    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1).mean()
    rec_pix = F.mse_loss(x_r, x)
    pairs = [(a[:B], b) for a, b in zip(fd_maps, fd_maps_real)] + [(a[:B], b) for a, b in zip(fc_maps, fc_maps_real)]
    rec_feat = sum(rel_mse(a, b) for a, b in pairs) / len(pairs) + rel_mse(fc_feat[:B], fc_real)
    fd_mean = fd_real.mean(0)
    fm_d = rel_mse(fd_feat[B:B + Np].mean(0), fd_mean) + rel_mse(fd_feat[:B].mean(0), fd_mean)
    group_means = fc_feat[B:B + Np].view(n_groups, group, -1).mean(1)
    fm_c = rel_mse(group_means, m.centres[y_p.view(n_groups, group)[:, 0]])
    xp = x_p.reshape(n_groups, group, -1)[:, : group // 2 * 2].reshape(n_groups * (group // 2), 2, -1)
    zp = z_p.view(n_groups, group, -1)[:, : group // 2 * 2].reshape(n_groups * (group // 2), 2, -1)
    ratio = (xp[:, 0] - xp[:, 1]).abs().mean(1) / (zp[:, 0] - zp[:, 1]).abs().mean(1)
    ms = (1.0 / (ratio + MS_TAU)).mean()
    cls = F.cross_entropy(c_logits[B:B + Np], y_p)
    loss_g = w.kl * kl + w.rec * rec_pix + w.ms * ms
    cyc = torch.zeros((), device=dev)
    if cycle:
        x_t = fake[B + Np:]
        cls = cls + F.cross_entropy(c_logits[B + Np:], y_t)
        mu_t, _ = m.E(x_t, oh_t)
        cyc = F.mse_loss(mu_t, mu.detach())
        loss_g = loss_g + w.cycle * cyc
    adv = torch.zeros((), device=dev)
    if w.adv > 0:
        adv = g_adv_term(m.D(aug(fake))[0], rc.loss)
    loss_g = loss_g + ramp * (w.rec_feat * rec_feat + w.fm_d * fm_d + w.fm_c * fm_c + w.cls * cls + w.adv * adv)
    opts["EG"].zero_grad(set_to_none=True)
    loss_g.backward()
    opts["EG"].step()
    _set_grad(m.D, True)
    _set_grad(m.C, True)

    if not with_logs:
        return {}
    logs.update(loss_d=loss_d, loss_c=loss_c, loss_g=loss_g, kl=kl, rec_pix=rec_pix, rec_feat=rec_feat, fm_d=fm_d,
                fm_c=fm_c, cls=cls, cycle=cyc, ms_ratio=ratio.mean(), adv=adv, d_real=d_real.mean(),
                d_fake=d_fake.mean())
    return floats({k: v.detach() for k, v in logs.items()})


def make_optimizers(m: CVAEGAN2) -> dict:
    rc = m.recipe
    return {"EG": torch.optim.Adam(list(m.E.parameters()) + list(m.G.parameters()), rc.lr, betas=(0.5, 0.999)),
            "D": torch.optim.Adam(m.D.parameters(), rc.lr_d, betas=(rc.beta1_d, 0.9)),
            "C": torch.optim.Adam(m.C.parameters(), rc.lr_c)}


# ---------------------------------------------------------------- sampling

@torch.no_grad()
def sample(G: Generator, labels: torch.Tensor, seed: int, batch: int = 64) -> torch.Tensor:
    """Images of the given classes, z ~ N(0, I) from a seeded generator (deterministic)."""
    g = torch.Generator().manual_seed(seed)
    dev = next(G.parameters()).device
    out = []
    for i in range(0, len(labels), batch):
        lab = labels[i:i + batch]
        z = torch.randn(len(lab), G.cfg.z_dim, generator=g)
        out.append(G(z.to(dev), F.one_hot(lab, G.cfg.num_classes).float().to(dev)).cpu())
    return torch.cat(out) if out else torch.zeros(0, 3, G.cfg.image_size, G.cfg.image_size)


@torch.no_grad()
def morph(G: Generator, E: Encoder, images: torch.Tensor, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """As the studio's morph: z = E(image, source class).mu, then G(z, target class)."""
    K = G.cfg.num_classes
    dev = next(G.parameters()).device
    mu, _ = E(images.to(dev), F.one_hot(src, K).float().to(dev))
    return G(mu, F.one_hot(tgt, K).float().to(dev)).cpu()


def write_morphs(path: str, m: CVAEGAN2, ds: data.CUBDataset, n_rows: int = 6, n_targets: int = 6) -> None:
    """Each row: a real train image, its reconstruction from z_mu, then the same z_mu as other classes."""
    K = m.cfg.num_classes
    rows_idx = np.linspace(0, len(ds) - 1, min(n_rows, len(ds))).round().astype(int).tolist()
    x = data.to_float(ds.images[rows_idx])
    y = ds.labels[rows_idx]
    targets = torch.tensor(np.linspace(0, K - 1, min(n_targets, K)).round().astype(int).tolist())
    m.E.eval()
    rows = []
    for i in range(len(rows_idx)):
        xi, yi = x[i:i + 1].repeat(len(targets) + 1, 1, 1, 1), y[i:i + 1].repeat(len(targets) + 1)
        out = morph(m.G_ema, m.E, xi, yi, torch.cat([y[i:i + 1], targets]))
        rows.append([x[i]] + list(out))
    m.E.train()
    save_grid(path, rows)


# ---------------------------------------------------------------- checkpoints

def checkpoint(m: CVAEGAN2, opts: dict, step: int, seconds: float, ds, args_dict: dict) -> dict:
    return {"kind": NAME, "config": m.cfg.to_dict(), "weights": asdict(m.w), "recipe": asdict(m.recipe),
            "state": m.state_dict(), "opts": {k: o.state_dict() for k, o in opts.items()}, "step": step,
            "seconds": seconds, "class_ids": ds.class_ids, "class_names": ds.class_names, "args": args_dict}


def slim_checkpoint(ck: dict, m: CVAEGAN2) -> dict:
    sds, dtype = slim_state({"g_ema": m.G_ema, "encoder": m.E})
    return {**{k: v for k, v in ck.items() if k not in ("state", "opts")}, "kind": NAME + "-ema", **sds,
            "dtype": dtype}


def load_cvaegan2(path: str) -> tuple[CVAEGAN2, dict]:
    ck = load_checkpoint(path)
    m = CVAEGAN2(CVAEGAN2Config.from_dict(ck["config"]), LossWeights(**ck.get("weights", {})),
                 Recipe(**ck.get("recipe", {})))
    m.load_state_dict(ck["state"])
    m.G_ema.eval()
    return m, ck


def load_for_export(run_dir: str) -> tuple[CVAEGAN2, dict]:
    """A model whose G_ema and E are the run's: from <run>/cvaegan2.pt, else <run>/cvaegan2_ema.pt
    (what the GPU script brings back; D and C then stay untrained, export needs neither)."""
    full = os.path.join(run_dir, NAME + ".pt")
    if os.path.exists(full):
        return load_cvaegan2(full)
    ck = load_checkpoint(os.path.join(run_dir, NAME + "_ema.pt"))
    m = CVAEGAN2(CVAEGAN2Config.from_dict(ck["config"]), LossWeights(**ck.get("weights", {})),
                 Recipe(**ck.get("recipe", {})))
    load_slim_state(m.G_ema, ck["g_ema"])
    load_slim_state(m.E, ck["encoder"])
    m.G_ema.eval()
    return m, ck


# ---------------------------------------------------------------- evaluation

def _structure(images: torch.Tensor, size: int = 64) -> torch.Tensor:
    """A pose/layout signature: blurred gradient magnitude of the grey image at `size`, flattened and
    standardised per image."""
    x = to_size(images, size).mean(1, keepdim=True)
    gx = x[..., :, 1:] - x[..., :, :-1]
    gy = x[..., 1:, :] - x[..., :-1, :]
    mag = (gx[..., :-1, :].pow(2) + gy[..., :, :-1].pow(2)).sqrt()
    mag = F.avg_pool2d(mag, 4).flatten(1)
    return (mag - mag.mean(1, keepdim=True)) / mag.std(1, keepdim=True).clamp(min=1e-6)


@torch.no_grad()
def evaluate(m: CVAEGAN2, classifier_path: str, data_dir: str, seed: int = 0, index=None,
             limit: int | None = None) -> dict:
    """v1's generator metrics (one sample per real test image of the seen classes, same class mix),
    with real and generated images box-filtered to the classifier's input size the same way; and the
    morphs of the real test images into another class: the classifier's top-1 for the target class,
    and pose keeping = correlation of a layout signature (blurred edge magnitude) between each
    image's reconstruction and its morph, beside the same between unrelated images (the chance level)."""
    from .metrics import top1
    from .scoring import Scorer

    scorer = Scorer.from_checkpoints(classifier_path)
    clf_size = load_checkpoint(classifier_path).get("config", {}).get("size", 64)
    idx = index if index is not None else data.load_index(data_dir)
    S = m.cfg.image_size
    test = data.CUBDataset(data_dir, "test", "seen", S, with_captions=False, index=idx)
    check_classes(classifier_path, test.class_ids)
    N = len(test) if limit is None else min(limit, len(test))
    labels = test.labels[:N]
    G, E = m.G_ema.eval(), m.E.eval()
    gen = torch.cat([to_size(sample(G, labels[i:i + 64], seed + i), clf_size) for i in range(0, N, 64)])
    out = generator_metrics(scorer, real_at(test.images[:N], clf_size), labels, gen, labels, seed)
    K = m.cfg.num_classes
    g = torch.Generator().manual_seed(seed)
    tgt = (labels + torch.randint(1, max(2, K), (N,), generator=g)) % K
    morphs, sig_rec, sig_morph = [], [], []
    for i in range(0, N, 64):
        x = data.to_float(test.images[i:min(i + 64, N)])
        lab = labels[i:i + 64]
        sig_rec.append(_structure(morph(G, E, x, lab, lab)))
        mo = morph(G, E, x, lab, tgt[i:i + 64])
        sig_morph.append(_structure(mo))
        morphs.append(to_size(mo, clf_size))
    _, p = scorer.features(torch.cat(morphs), with_probs=True)
    a, b = torch.cat(sig_rec), torch.cat(sig_morph)
    d = a.shape[1]
    out["morph_top1_target"] = top1(p, tgt.numpy())
    out["morph_layout_corr"] = float((a * b).sum(1).mean() / d)
    out["morph_layout_corr_unrelated"] = float((a * b.roll(1, 0)).sum(1).mean() / d)
    return out


METRIC_HOW = {
    "morph_top1_target": "fidelity classifier top-1 of morphs (each real test image of a seen class "
                         "encoded with its class, decoded as another, seeded) as the target class",
    "morph_layout_corr": "correlation of a layout signature (blurred edge magnitude at 64 px, 16x16) "
                         "between each test image's reconstruction and its morph: 1 = same pose/layout",
    "morph_layout_corr_unrelated": "the same between the reconstruction of one image and the morph of "
                                   "another (the level of unrelated layouts)",
}


def write_model(model_dir: str, m: CVAEGAN2, ck: dict, data_dir: str, metrics: dict | None,
                scorer: str = "classifier-birds", log=print) -> dict:
    from . import export as ex

    os.makedirs(os.path.join(model_dir, "golden"), exist_ok=True)
    m.E.eval()
    entries = export_graphs(m, model_dir, log=log)
    verification = {k: e.pop("verification") for k, e in entries.items()}
    idx = data.load_index(data_dir)
    cfg = m.cfg
    sizes = {"z_dim": cfg.z_dim, "num_classes": cfg.num_classes, "image_size": cfg.image_size,
             "num_attributes": len(idx["attributes"])}
    training = ex.portable({"data": ex.dataset_ref(data_dir), "steps": ck["step"],
                            "seconds": round(ck["seconds"], 1), "seed": ck["args"].get("seed", 0),
                            "device": ck["args"].get("device", "cpu"), "config": cfg.to_dict(),
                            "loss_weights": ck["weights"], "recipe": ck.get("recipe"),
                            "batch": ck["args"].get("batch"), "weights_dtype": ck.get("dtype", "float32"),
                            "verification": verification})
    desc = ("CVAE-GAN v2 (Bao et al., ICCV 2017) for %d seen bird classes at %dx%d: generator "
            "(z, class one-hot or soft mixture) -> image and encoder (image, class) -> z; morphs keep the "
            "input's z (pose, layout) and change its class." % (cfg.num_classes, cfg.image_size, cfg.image_size))
    notes = ("Trained on train images of seen classes only. The exported generator is the EMA copy (no "
             "BatchNorm). z ~ N(0, I) of size %d; class_onehot rows may be mixtures (they enter through a "
             "linear embedding). Graphs verified against PyTorch (max abs diff <= 1e-4) at batch sizes 1 "
             "and 4." % cfg.z_dim)
    mets = None
    if metrics:
        mets = {k: ({"value": v, "how": METRIC_HOW[k]} if k in METRIC_HOW else v) for k, v in with_how(metrics).items()}
    return ex.write_model_dir(model_dir, "cvaegan-birds", "cvaegan", entries, sizes, desc,
                              classes=ex.classes_json(idx, ck["class_ids"]), metrics=mets, training=training,
                              scorer=scorer, notes=notes, version="2.0.0")


# ---------------------------------------------------------------- training loop

def train(args) -> tuple[CVAEGAN2, dict]:
    """Train or continue (--resume: configuration, loss weights and recipe from the checkpoint) within
    --minutes (or until --stop-at); returns the model and the final checkpoint dict."""
    device_setup(args.device)
    os.makedirs(args.out, exist_ok=True)
    log = Logger(args.out, NAME)
    idx = data.load_index(args.data)
    path = os.path.join(args.out, NAME + ".pt")
    step, seconds = 0, 0.0
    if args.resume and os.path.exists(path):
        m, ck = load_cvaegan2(path)
        m.to(args.device)
        opts = make_optimizers(m)
        for k, o in opts.items():
            o.load_state_dict(ck["opts"][k])
        step, seconds = ck["step"], ck["seconds"]
        log(event="resume", step=step, seconds=round(seconds, 1))
    else:
        parse_policy(args.diffaug)
        ids = idx["seen"]
        cfg = CVAEGAN2Config(num_classes=len(ids), z_dim=args.z_dim, ngf=args.ngf, nef=args.nef or args.ndf,
                             ndf=args.ndf, ncf=args.ndf, image_size=args.size, fusion=not args.no_fusion,
                             up=args.up, sn=not args.no_sn)
        rc = Recipe(loss=args.loss, diffaug=args.diffaug, gp_every=args.gp_every, lr=args.lr, lr_d=args.lr_d,
                    lr_c=args.lr_c, beta1_d=args.beta1_d)
        m = CVAEGAN2(cfg, loss_weights(args), rc).to(args.device)
        opts = make_optimizers(m)
        ck = None
    ds = data.CUBDataset(args.data, "train", "seen", m.cfg.image_size, with_captions=False, index=idx,
                         seed=args.seed)
    if ck is not None and list(ck["class_ids"]) != list(ds.class_ids):
        raise ValueError("resume: the checkpoint's classes differ from the data set's")
    if len(ds.class_ids) != m.cfg.num_classes:
        raise ValueError("the data set has %d seen classes, the model %d" % (len(ds.class_ids), m.cfg.num_classes))
    args_dict = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}
    budget = DeadlineBudget(args.minutes, seconds, step + args.quick_steps if args.quick else None, step,
                            stop_at=args.stop_at)
    log(event="start", classes=m.cfg.num_classes, train=len(ds), params_G=n_params(m.G), params_E=n_params(m.E),
        params_D=n_params(m.D), params_C=n_params(m.C), minutes=args.minutes, batch=args.batch,
        recipe=asdict(m.recipe), weights=asdict(m.w), fusion=m.cfg.fusion, sn=m.cfg.sn, up=m.cfg.up, ema=args.ema,
        device=args.device)
    g = torch.Generator().manual_seed(args.seed * 1000003 + step)  # data order, C's augmentation
    gd = device_generator(args.device, args.seed * 1000003 + step + 1)  # noise and DiffAugment
    n, B = len(ds), min(args.batch, len(ds))
    perm, pos = torch.randperm(n, generator=g), 0

    def save(step: int, final: bool = False):
        ck = checkpoint(m, opts, step, budget.elapsed(), ds, args_dict)
        save_atomic(ck, path)
        save_atomic(slim_checkpoint(ck, m), os.path.join(args.out, NAME + "_ema.pt"))
        small = dict(n_rows=2, n_cols=2) if args.quick else {}
        write_class_samples(os.path.join(args.out, "samples", "%s_%06d.png" % (NAME, step)), m, ds, **small)
        write_morphs(os.path.join(args.out, "samples", "%s_morph_%06d.png" % (NAME, step)), m, ds,
                     **(dict(n_rows=2, n_targets=2) if args.quick else {}))
        log(event="checkpoint", step=step, s=round(budget.elapsed(), 1), final=final)
        return ck

    def next_batch():
        nonlocal perm, pos
        if pos + B > n:
            perm, pos = torch.randperm(n, generator=g), 0
        ids = perm[pos:pos + B]
        pos += B
        return ds.batch(ids)

    def one_step(b, step):
        return train_step(m, opts, b["image"].to(args.device), b["label"].to(args.device), g, args.group,
                          ramp=min(1.0, step / args.warmup) if args.warmup > 0 else 1.0, step=step, gd=gd,
                          with_logs=args.quick or (step + 1) % args.log_every == 0)

    for mod in (m.E, m.G, m.D):
        mod.train()
    step = run_steps(m, args, budget, log, save, step, next_batch, one_step)
    ck = save(step, final=True)
    write_done(args.out, NAME, budget)
    return m, ck


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m fgtrain cvaegan2", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="data set root (CUB layout)")
    p.add_argument("--out", required=True, help="run directory: checkpoints, log, samples")
    p.add_argument("--model-dir", help="model directory to export (default <out>/cvaegan-birds-v2)")
    p.add_argument("--classifier", help="fidelity classifier checkpoint, for the metrics (never in a loss)")
    p.add_argument("--quick", action="store_true", help="a few steps (tests)")
    p.add_argument("--quick-steps", type=int, default=2)
    p.add_argument("--minutes", type=float, default=45.0, help="training budget, resumes included")
    p.add_argument("--stop-at", type=float, help="also stop (with a checkpoint) at this time (epoch s)")
    p.add_argument("--stop-in", type=float, help="also stop after this many minutes of this process")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--ngf", type=int, default=32, help="G width at 128 px")
    p.add_argument("--ndf", type=int, default=32, help="D and C widths (and E's unless --nef)")
    p.add_argument("--nef", type=int, help="E width (default --ndf)")
    p.add_argument("--group", type=int, default=4, help="random samples per class in a batch")
    p.add_argument("--warmup", type=int, default=300, help="steps over which the D/C feature terms ramp up")
    p.add_argument("--ema", type=float, default=0.995, help="EMA decay of G (0 = no EMA)")
    p.add_argument("--loss", choices=("hinge", "bce"), default="hinge")
    p.add_argument("--diffaug", default="color,translation,cutout", help="DiffAugment ops or 'none'")
    p.add_argument("--gp-every", type=int, default=1)
    p.add_argument("--no-sn", action="store_true", help="no spectral norm in D (ablation)")
    p.add_argument("--no-fusion", action="store_true", help="no deep fusion in G (ablation)")
    p.add_argument("--up", choices=("nearest", "deconv"), default="nearest")
    p.add_argument("--lr", type=float, default=2e-4, help="E and G")
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--lr-c", type=float, default=1e-3, help="the model's own classifier C")
    p.add_argument("--beta1-d", type=float, default=0.0)
    p.add_argument("--ckpt-minutes", type=float, default=3.0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--no-export", action="store_true", help="skip the model directory")
    p.add_argument("--eval-only", action="store_true",
                   help="evaluate/export <out>/cvaegan2.pt (or cvaegan2_ema.pt), no training")
    p.add_argument("--eval-limit", type=int, help="evaluate on at most N test images")
    for f in LossWeights.__dataclass_fields__:
        p.add_argument("--w-" + f.replace("_", "-"), dest="w_" + f, type=float, default=None,
                       help="loss weight %s (default %s)" % (f, getattr(LossWeights(), f)))
    return p


def main(argv) -> int:
    args = build_parser().parse_args(argv)
    setup(args.threads, args.seed)
    if args.stop_in is not None:
        t = time.time() + 60.0 * args.stop_in
        args.stop_at = t if args.stop_at is None else min(args.stop_at, t)
    if args.eval_only:
        m, ck = load_for_export(args.out)
    else:
        m, ck = train(args)
        m.to("cpu")  # evaluation and export run on the CPU
    log = Logger(args.out, NAME)
    metrics = None
    if args.classifier:
        metrics = evaluate(m, args.classifier, args.data, seed=args.seed, limit=args.eval_limit)
        log(event="eval", steps=ck["step"], **metrics)
        with open(os.path.join(args.out, NAME + "_metrics.json"), "w", encoding="utf-8") as f:
            json.dump({**metrics, "steps": ck["step"], "seconds": round(ck["seconds"], 1)}, f, indent=1)
    if not args.no_export:
        write_model(args.model_dir or os.path.join(args.out, "cvaegan-birds-v2"), m, ck, args.data, metrics,
                    log=lambda s: log(event="export", msg=s))
    return 0
