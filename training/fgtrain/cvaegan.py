"""CVAE-GAN training (Bao et al., ICCV 2017): `python3 -m fgtrain cvaegan --data DIR --out DIR ...`.

One step, on a batch x of real images with classes c:
  E:  z ~ q(z | x, c); x_r = G(z, c)                         (reconstruction path)
      x_p = G(z_p, c_p), z_p ~ N(0, I), c_p = classes of the batch in groups of `group` samples
  D:  standard GAN loss, real x vs fake [x_r, x_p]
  C:  cross-entropy on real images only (the CVAE-GAN's own classifier, not the fidelity classifier)
  E+G (the asymmetric part: G is trained by feature matching, not by fooling D):
      KL(q || N(0, I))
      + pairwise reconstruction ||x - x_r||^2 + ||f_D(x) - f_D(x_r)||^2 + ||f_C(x) - f_C(x_r)||^2
      + mean feature matching of D (batch means of f_D, real vs x_r and vs x_p)
      + mean feature matching of C per class (mean f_C of each group of x_p vs a running class centre)
      + a mode-seeking term on pairs of x_p of the same class (Mao et al., CVPR 2019), so z matters
      + optionally a small cross-entropy of C on x_p and a small non-saturating GAN term
  An EMA copy of G (BatchNorm statistics recomputed for it) is what is sampled and exported.

Writes <out>/cvaegan.pt (checkpoint, every --ckpt-minutes and at the end), <out>/cvaegan.log.jsonl,
<out>/samples/cvaegan_<step>.png, <out>/cvaegan_metrics.json (with --classifier) and a model directory
(--model-dir, default <out>/cvaegan-birds: generator.onnx, encoder.onnx, model.json, classes.json,
golden/, MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import Budget, Logger, data, load_checkpoint, setup
from .cvaegan_nets import AuxClassifier, CVAEGANConfig, Discriminator, Encoder, Generator
from .trainkit import (check_classes, generator_metrics, n_params, recalibrate_bn, rel_mse, run_steps,
                       save_atomic, save_grid, with_how)


@dataclass
class LossWeights:
    kl: float = 3e-3       # KL summed over z dims, mean over the batch
    rec: float = 1.0       # pixel MSE of reconstructions
    rec_feat: float = 1.0  # D- and C-feature reconstruction (MSE relative to the real features')
    fm_d: float = 1.0      # mean feature matching against D
    fm_c: float = 1.0      # per-class mean feature matching against C
    ms: float = 0.05       # mode seeking: 1 / (mean|G(z1)-G(z2)| / mean|z1-z2|)
    cls: float = 0.3       # cross-entropy of C on random samples
    adv: float = 0.0       # non-saturating GAN term on random samples (the paper uses none)


def loss_weights(args) -> LossWeights:
    """LossWeights with the --w-* flags that were given."""
    given = {f: getattr(args, "w_" + f) for f in LossWeights.__dataclass_fields__}
    return LossWeights(**{k: v for k, v in given.items() if v is not None})


# ---------------------------------------------------------------- model

class CVAEGAN(nn.Module):
    """E, G, D, C and the EMA generator, with the losses of one training step."""

    def __init__(self, cfg: CVAEGANConfig, w: LossWeights | None = None):
        super().__init__()
        self.cfg, self.w = cfg, w or LossWeights()
        self.E, self.G, self.D, self.C = Encoder(cfg), Generator(cfg), Discriminator(cfg), AuxClassifier(cfg)
        self.G_ema = copy.deepcopy(self.G).eval()
        for p in self.G_ema.parameters():
            p.requires_grad_(False)
        # running per-class centres of C's features on real images (for the per-class feature matching)
        self.register_buffer("centres", torch.zeros(cfg.num_classes, cfg.feat_dim))
        self.register_buffer("centre_seen", torch.zeros(cfg.num_classes))

    def onehot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, self.cfg.num_classes).float()

    def _update_centres(self, feats: torch.Tensor, labels: torch.Tensor, momentum: float = 0.7) -> None:
        with torch.no_grad():
            for c in labels.unique().tolist():
                m = feats[labels == c].mean(0)
                if self.centre_seen[c] > 0:
                    self.centres[c].mul_(momentum).add_(m, alpha=1 - momentum)
                else:
                    self.centres[c].copy_(m)
                    self.centre_seen[c] = 1


def train_step(m: CVAEGAN, opts: dict, x: torch.Tensor, y: torch.Tensor, g: torch.Generator,
               group: int = 4, augment: bool = True, ramp: float = 1.0, nets=None, dist=None,
               y_all: torch.Tensor | None = None) -> dict:
    """One CVAE-GAN step (D, C, then E+G). Returns the losses as floats.

    `ramp` in [0, 1] scales the terms that use D's and C's features (warm-up: while D and C are still
    untrained their input gradients are noise, and G first learns from pixels, as a CVAE).

    Distributed (fgtrain.dist): x, y are this rank's rows of a global batch whose labels are y_all;
    nets holds E, G, D, C wrapped in DistributedDataParallel. Random numbers are drawn for the global
    batch, random samples come in whole groups per rank, means are global-batch means and batch
    statistics (feature means, class centres, relative-error scales) are summed over ranks, so the
    step is the one-process step on the global batch."""
    from . import dist as fdist
    Dd = dist or fdist.Dist()
    nets = nets or m
    w, cfg = m.w, m.cfg
    B = x.shape[0]
    y_all = y if y_all is None else y_all
    B_all = y_all.shape[0]
    rows = Dd.shard(B_all)
    group = max(2, min(group, B_all))
    n_groups_all = max(1, B_all // group)
    grows = Dd.shard(n_groups_all)
    n_groups = grows.stop - grows.start
    P_all = n_groups_all * group  # random samples in the global batch
    bce = F.binary_cross_entropy_with_logits

    def gmean(t, n):
        """This rank's part of the mean over n samples of the global batch (t: per-sample rows)."""
        per = t[0].numel() if t.dim() > 0 and len(t) else 1
        return t.sum() * (Dd.world / (n * per))

    def gsum(t):  # a statistic summed over ranks (no gradients)
        return Dd.sum_(t.detach().clone())

    def rel_scale(target, n):  # mean square of a target over the global batch
        per = target[0].numel() if target.dim() > 0 else 1
        return (gsum(target.pow(2).sum()) / (n * per)).clamp(min=1e-8)

    # random samples in groups of the same class (classes drawn from the global batch)
    dev = x.device  # noise from the CPU generator, moved: the same run on any device
    pick = torch.randint(0, B_all, (n_groups_all,), generator=g)
    y_p = y_all[pick].repeat_interleave(group).view(n_groups_all, group)[grows].reshape(-1).to(dev)
    z_p = torch.randn(P_all, cfg.z_dim, generator=g).view(n_groups_all, group, -1)[grows].reshape(-1, cfg.z_dim).to(dev)
    oh, oh_p = m.onehot(y), m.onehot(y_p)

    with fdist.batch_rows(B_all, rows):
        mu, logvar = nets.E(x, oh)
    z = mu + torch.randn((B_all,) + tuple(mu.shape[1:]), generator=g)[rows].to(dev) * torch.exp(0.5 * logvar)
    fake = nets.G(torch.cat([z, z_p]), torch.cat([oh, oh_p]))
    x_r, x_p = fake[:B], fake[B:]

    # D: standard GAN loss; its real features (before this update) are the targets below
    d_real, fd_real = nets.D(x)
    d_fake, _ = nets.D(fake.detach())
    loss_d = (gmean(bce(d_real, torch.ones_like(d_real), reduction="none"), B_all)
              + gmean(bce(d_fake, torch.zeros_like(d_fake), reduction="none"), B_all + P_all))
    opts["D"].zero_grad(set_to_none=True)
    loss_d.backward()
    opts["D"].step()
    fd_real = fd_real.detach()

    # C: real images only (augmented), BatchNorm in train mode; features below in eval mode
    nets.C.train()
    logits, _ = nets.C(data.augment(x, g, total=B_all, rows=rows) if augment else x)
    loss_c = gmean(F.cross_entropy(logits, y, reduction="none"), B_all)
    opts["C"].zero_grad(set_to_none=True)
    loss_c.backward()
    opts["C"].step()
    nets.C.eval()

    # E + G
    with torch.no_grad():
        _, fc_real = m.C(x)
        m._update_centres(Dd.gather(fc_real), Dd.gather(y))  # centres from the global batch
    d_out, fd_fake = nets.D(fake)
    c_logits, fc_fake = nets.C(fake)
    fd_r, fd_p = fd_fake[:B], fd_fake[B:]
    fc_r, fc_p = fc_fake[:B], fc_fake[B:]

    kl = gmean(0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1), B_all)
    rec_pix = gmean((x_r - x).pow(2), B_all)
    rec_feat = (gmean((fd_r - fd_real).pow(2), B_all) / rel_scale(fd_real, B_all)
                + gmean((fc_r - fc_real).pow(2), B_all) / rel_scale(fc_real, B_all))
    fd_mean = gsum(fd_real.sum(0)) / B_all
    # batch means of generated features are global-batch means (summed over ranks with gradients)
    fd_p_mean = Dd.all_sum(fd_p.sum(0)) / P_all
    fd_r_mean = Dd.all_sum(fd_r.sum(0)) / B_all
    fm_d = rel_mse(fd_p_mean, fd_mean) + rel_mse(fd_r_mean, fd_mean)
    group_means = fc_p.view(n_groups, group, -1).mean(1)
    centres = m.centres[y_p.view(n_groups, group)[:, 0]]
    fm_c = gmean((group_means - centres).pow(2), n_groups_all) / rel_scale(centres, n_groups_all)
    # mode seeking on the pairs (0,1), (2,3), ... inside each group
    xp = x_p.view(n_groups, group, -1)[:, : group // 2 * 2].reshape(n_groups * (group // 2), 2, -1)
    zp = z_p.view(n_groups, group, -1)[:, : group // 2 * 2].reshape(n_groups * (group // 2), 2, -1)
    ratio = (xp[:, 0] - xp[:, 1]).abs().mean(1) / (zp[:, 0] - zp[:, 1]).abs().mean(1)
    ms = gmean(1.0 / (ratio + 1e-5), n_groups_all * (group // 2))
    cls = gmean(F.cross_entropy(c_logits[B:], y_p, reduction="none"), P_all)
    adv = gmean(bce(d_out[B:], torch.ones_like(d_out[B:]), reduction="none"), P_all)
    loss_g = (w.kl * kl + w.rec * rec_pix + w.ms * ms
              + ramp * (w.rec_feat * rec_feat + w.fm_d * fm_d + w.fm_c * fm_c + w.cls * cls + w.adv * adv))
    opts["EG"].zero_grad(set_to_none=True)
    loss_g.backward()
    opts["EG"].step()

    # logged values: the global batch's (means over ranks of this rank's shares)
    vals = dict(loss_d=loss_d, loss_c=loss_c, loss_g=loss_g, kl=kl, rec_pix=rec_pix, rec_feat=rec_feat,
                fm_d=fm_d, fm_c=fm_c, ms_ratio=gmean(ratio, n_groups_all * (group // 2)), cls=cls, adv=adv,
                d_real=gmean(torch.sigmoid(d_real), B_all), d_fake=gmean(torch.sigmoid(d_fake), B_all + P_all))
    out = {k: float(v.item()) for k, v in vals.items()}
    if Dd.enabled:  # every value is this rank's share x world (global terms: the value itself)
        t = torch.tensor([v / Dd.world for v in out.values()], dtype=torch.float64)
        t = Dd.sum_(t.to(Dd.device) if str(Dd.device).startswith("cuda") else t).cpu()
        out = dict(zip(out, t.tolist()))
    return out


def make_optimizers(m: CVAEGAN, lr: float, lr_c: float = 1e-3) -> dict:
    """Adam(0.5, 0.999) for the GAN players; C is a plain classifier: Adam(0.9, 0.999) at lr_c."""
    betas = (0.5, 0.999)
    return {"EG": torch.optim.Adam(list(m.E.parameters()) + list(m.G.parameters()), lr, betas=betas),
            "D": torch.optim.Adam(m.D.parameters(), lr, betas=betas),
            "C": torch.optim.Adam(m.C.parameters(), lr_c)}


def calibrate_ema(m: CVAEGAN, seed: int = 0, batches: int = 8, batch: int = 64) -> None:
    """BatchNorm statistics of G_ema from prior samples over all classes."""
    g = torch.Generator().manual_seed(seed)
    K = m.cfg.num_classes
    dev = next(m.G_ema.parameters()).device

    def inputs(_):
        labels = torch.randint(0, K, (batch,), generator=g)
        return torch.randn(batch, m.cfg.z_dim, generator=g).to(dev), m.onehot(labels).to(dev)

    recalibrate_bn(m.G_ema, inputs, batches)


@torch.no_grad()
def sample(G: Generator, labels: torch.Tensor, seed: int, batch: int = 128) -> torch.Tensor:
    """Images of the given classes, z ~ N(0, I) from a seeded generator (deterministic)."""
    g = torch.Generator().manual_seed(seed)
    K = G.cfg.num_classes
    dev = next(G.parameters()).device
    out = []
    for i in range(0, len(labels), batch):
        lab = labels[i:i + batch]
        z = torch.randn(len(lab), G.cfg.z_dim, generator=g)
        out.append(G(z.to(dev), F.one_hot(lab, K).float().to(dev)).cpu())
    return torch.cat(out) if out else torch.zeros(0, 3, G.cfg.image_size, G.cfg.image_size)


def write_samples(path: str, m: CVAEGAN, ds: data.CUBDataset, n_rows: int = 8, n_cols: int = 7) -> None:
    """Each row: one real train image of a class, then n_cols EMA samples of that class (fixed z)."""
    K = m.cfg.num_classes
    classes = sorted(set(np.linspace(0, K - 1, min(n_rows, K)).round().astype(int).tolist()))
    labels = torch.tensor(classes).repeat_interleave(n_cols)
    imgs = sample(m.G_ema, labels, seed=1234).view(len(classes), n_cols, 3, m.cfg.image_size, -1)
    rows = []
    for r, c in enumerate(classes):
        first = (ds.labels == c).nonzero().flatten()
        real = [data.to_float(ds.images[first[0]])] if len(first) else []
        rows.append(real + list(imgs[r]))
    save_grid(path, rows)


# ---------------------------------------------------------------- checkpoints

def checkpoint(m: CVAEGAN, opts: dict, step: int, seconds: float, ds, args_dict: dict) -> dict:
    return {"kind": "cvaegan", "config": m.cfg.to_dict(), "weights": asdict(m.w), "state": m.state_dict(),
            "opts": {k: o.state_dict() for k, o in opts.items()}, "step": step, "seconds": seconds,
            "class_ids": ds.class_ids, "class_names": ds.class_names, "args": args_dict}


def load_cvaegan(path: str) -> tuple[CVAEGAN, dict]:
    """-> (model with G_ema in eval mode, checkpoint dict)."""
    ck = load_checkpoint(path)
    m = CVAEGAN(CVAEGANConfig(**ck["config"]), LossWeights(**ck.get("weights", {})))
    m.load_state_dict(ck["state"])
    m.G_ema.eval()
    return m, ck


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(G: Generator, classifier_path: str, data_dir: str, seed: int = 0, index=None) -> dict:
    """Generated images vs real *test* images of the seen classes, in the fidelity classifier's
    feature space: one generated image per real test image (same class mix, z from `seed`)."""
    from .scoring import Scorer

    scorer = Scorer.from_checkpoints(classifier_path)
    idx = index if index is not None else data.load_index(data_dir)
    test = data.CUBDataset(data_dir, "test", "seen", G.cfg.image_size, with_captions=False, index=idx)
    check_classes(classifier_path, test.class_ids)
    G.eval()
    gen = sample(G, test.labels, seed)
    return generator_metrics(scorer, test.images, test.labels, gen, test.labels, seed)


# ---------------------------------------------------------------- export

class _EncoderGraph(nn.Module):
    def __init__(self, E: Encoder):
        super().__init__()
        self.E = E

    def forward(self, image, class_onehot):
        return self.E(image, class_onehot)


def _graph_inputs(cfg: CVAEGANConfig, B: int, seed: int):
    """(z, class_onehot, image): one-hot rows, plus a soft mixture of two classes in the last row."""
    g = torch.Generator().manual_seed(seed)
    K = cfg.num_classes
    onehot = F.one_hot(torch.randint(0, K, (B,), generator=g), K).float()
    if B > 1:
        a, b = torch.randint(0, K, (2,), generator=g).tolist()
        onehot[-1] = 0
        onehot[-1, a] += 0.3
        onehot[-1, b] += 0.7
    z = torch.randn(B, cfg.z_dim, generator=g)
    image = torch.rand(B, 3, cfg.image_size, cfg.image_size, generator=g) * 2 - 1
    return z, onehot, image


def export_graphs(m: CVAEGAN, out_dir: str, verify_batches=(1, 4), log=print) -> dict:
    """generator.onnx (G_ema) and encoder.onnx, verified against PyTorch at each batch size, with
    golden files (batch 3). Returns {role: model.json entry}."""
    from . import export as ex

    cfg = m.cfg
    Z, K, S = cfg.z_dim, cfg.num_classes, cfg.image_size
    gen, enc = m.G_ema.eval(), _EncoderGraph(m.E).eval()
    roles = {
        "generator": (gen, [ex.spec("z", ["B", Z]), ex.spec("class_onehot", ["B", K])],
                      [ex.spec("image", ["B", 3, S, S])], lambda t: (t[0], t[1])),
        "encoder": (enc, [ex.spec("image", ["B", 3, S, S]), ex.spec("class_onehot", ["B", K])],
                    [ex.spec("z_mu", ["B", Z]), ex.spec("z_logvar", ["B", Z])], lambda t: (t[2], t[1])),
    }
    entries = {}
    for role, (module, ins, outs, pick) in roles.items():
        path = os.path.join(out_dir, role + ".onnx")
        entries[role] = ex.export_graph(module, pick(_graph_inputs(cfg, 2, 0)), ins, outs, path)
        rep = ex.verify(path, module, [pick(_graph_inputs(cfg, b, 10 + b)) for b in verify_batches])
        entries[role]["verification"] = rep["max_abs_diff"]
        ex.write_golden(os.path.join(out_dir, "golden", role + ".json"), module,
                        pick(_graph_inputs(cfg, 3, 7)), ins, outs)
        log("exported %s: max |onnx - torch| = %.2e at batch sizes %s (%s)" % (
            role, rep["max_abs_diff"], list(verify_batches), rep["evaluator"]))
    return entries


def write_model(model_dir: str, m: CVAEGAN, ck: dict, data_dir: str, metrics: dict | None,
                scorer: str = "classifier-birds", log=print, name: str | None = None,
                scorer_classes=None) -> dict:
    """The model directory; name defaults to the directory's name. A scorer whose classes do not
    include the generator's (scorer_classes, or the scorer's model dir beside model_dir) is refused."""
    from . import export as ex

    name = name or os.path.basename(os.path.normpath(model_dir))
    known = ex.scorer_classes(os.path.dirname(os.path.abspath(model_dir)), scorer)
    ex.check_scorer(name, ck["class_names"], scorer, known if known is not None else scorer_classes)

    os.makedirs(os.path.join(model_dir, "golden"), exist_ok=True)
    entries = export_graphs(m, model_dir, log=log)
    verification = {k: e.pop("verification") for k, e in entries.items()}
    idx = data.load_index(data_dir)
    cfg = m.cfg
    sizes = {"z_dim": cfg.z_dim, "num_classes": cfg.num_classes, "image_size": cfg.image_size,
             "num_attributes": len(idx["attributes"])}
    training = ex.portable({"data": ex.dataset_ref(data_dir), "steps": ck["step"],
                            "seconds": round(ck["seconds"], 1), "seed": ck["args"].get("seed", 0),
                            "device": ck["args"].get("device", "cpu"), "config": cfg.to_dict(),
                            "loss_weights": ck["weights"], "batch": ck["args"].get("batch"),
                            "verification": verification})
    desc = ("CVAE-GAN (Bao et al., ICCV 2017) for %d seen bird classes at %dx%d: generator "
            "(z, class one-hot or soft mixture) -> image and encoder (image, class) -> z."
            % (cfg.num_classes, cfg.image_size, cfg.image_size))
    notes = ("Trained on train images of seen classes only. The exported generator is the EMA copy "
             "(BatchNorm statistics recomputed on prior samples). z ~ N(0, I) of size %d; class_onehot "
             "rows may be mixtures (they enter through a linear embedding). Graphs verified against "
             "PyTorch (max abs diff <= 1e-4) at batch sizes 1 and 4." % cfg.z_dim)
    return ex.write_model_dir(model_dir, name, "cvaegan", entries, sizes, desc,
                              classes=ex.classes_json(idx, ck["class_ids"]),
                              metrics=with_how(metrics) if metrics else None, training=training,
                              scorer=scorer, notes=notes)


# ---------------------------------------------------------------- training loop

class _Nets:
    """The players as a step calls them: DistributedDataParallel-wrapped in a distributed run."""

    def __init__(self, m: CVAEGAN, dist):
        self.E, self.G, self.D, self.C = (dist.wrap(mod) for mod in (m.E, m.G, m.D, m.C))


def train(args) -> tuple[CVAEGAN, dict | None]:
    """Train or continue (--resume; the loss weights then come from the checkpoint) within --minutes;
    returns the model and the final checkpoint dict (None on ranks other than 0 of a distributed run,
    which write nothing)."""
    from . import dist as fdist
    Dd = fdist.init(args.device)
    device, main = Dd.device, Dd.is_main
    os.makedirs(args.out, exist_ok=True)
    log = Logger(args.out, "cvaegan") if main else fdist.NullLogger()
    idx = data.load_index(args.data)
    ds = data.CUBDataset(args.data, "train", "seen", args.size, with_captions=False, index=idx,
                         seed=args.seed)
    path = os.path.join(args.out, "cvaegan.pt")
    step, seconds = 0, 0.0
    ck = None
    if args.resume and os.path.exists(path):
        m, ck = load_cvaegan(path)
        if list(ck["class_ids"]) != list(ds.class_ids):
            raise ValueError("resume: the checkpoint's classes differ from the data set's")
        m.to(device)
    else:
        cfg = CVAEGANConfig(num_classes=len(ds.class_ids), z_dim=args.z_dim, ngf=args.ngf,
                            nef=args.ndf, ndf=args.ndf, ncf=args.ndf, image_size=args.size)
        m = CVAEGAN(cfg, loss_weights(args)).to(device)
    nets = _Nets(m, Dd)  # (BatchNorm made synchronous first: optimizers come after)
    opts = make_optimizers(m, args.lr, args.lr_c)
    if ck:
        for k, o in opts.items():
            o.load_state_dict(ck["opts"][k])
        step, seconds = ck["step"], ck["seconds"]
        log(event="resume", step=step, seconds=round(seconds, 1))
    args_dict = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}
    args_dict["processes"] = Dd.world
    budget = fdist.budget(Budget(args.minutes, seconds, step + args.quick_steps if args.quick else None, step), Dd)
    log(event="start", classes=m.cfg.num_classes, train=len(ds), params_G=n_params(m.G),
        params_E=n_params(m.E), params_D=n_params(m.D), params_C=n_params(m.C), minutes=args.minutes,
        batch=args.batch, processes=Dd.world)
    g = torch.Generator().manual_seed(args.seed * 1000003 + step)
    n, B = len(ds), min(args.batch, len(ds))
    perm, pos = torch.randperm(n, generator=g), 0

    calib = dict(batches=1, batch=16) if args.quick else {}  # BatchNorm statistics of G_ema

    def save(step: int, final: bool = False):
        if not main:
            return None
        calibrate_ema(m, seed=args.seed, **calib)
        ck = checkpoint(m, opts, step, budget.elapsed(), ds, args_dict)
        save_atomic(ck, path)
        write_samples(os.path.join(args.out, "samples", "cvaegan_%06d.png" % step), m, ds)
        log(event="checkpoint", step=step, s=round(budget.elapsed(), 1), final=final)
        return ck

    def next_batch():
        nonlocal perm, pos
        if pos + B > n:
            perm, pos = torch.randperm(n, generator=g), 0
        ids = perm[pos:pos + B]  # the global batch; this rank trains on its rows
        pos += B
        mine = ids[Dd.shard(len(ids))]
        return {"image": data.to_float(ds.images[mine]), "label": ds.labels[mine], "label_all": ds.labels[ids]}

    def one_step(b, step):
        return train_step(m, opts, b["image"].to(device), b["label"].to(device), g, args.group,
                          ramp=min(1.0, step / args.warmup) if args.warmup > 0 else 1.0, nets=nets, dist=Dd,
                          y_all=b["label_all"].to(device))

    for mod in (m.E, m.G, m.D):
        mod.train()
    step = run_steps(m, args, budget, log, save, step, next_batch, one_step)
    ck = save(step, final=True)
    Dd.barrier()
    return m, ck


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m fgtrain cvaegan", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="data set root (CUB layout)")
    p.add_argument("--out", required=True, help="run directory: checkpoint, log, samples")
    p.add_argument("--model-dir", help="model directory to export (default <out>/cvaegan-birds)")
    p.add_argument("--classifier", help="fidelity classifier checkpoint, for the metrics")
    p.add_argument("--quick", action="store_true", help="a few steps (tests)")
    p.add_argument("--quick-steps", type=int, default=2)
    p.add_argument("--minutes", type=float, default=45.0, help="training budget, resumes included")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4, help="E, G and D")
    p.add_argument("--lr-c", type=float, default=1e-3, help="the model's own classifier C")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--ngf", type=int, default=32, help="G width at 32x32")
    p.add_argument("--ndf", type=int, default=32, help="E, D and C trunk widths")
    p.add_argument("--group", type=int, default=4, help="random samples per class in a batch")
    p.add_argument("--warmup", type=int, default=300,
                   help="steps over which the D- and C-feature terms ramp up from 0 (G starts as a CVAE)")
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--ckpt-minutes", type=float, default=3.0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--no-export", action="store_true", help="skip the model directory")
    p.add_argument("--name", help="model name in model.json (default: the model directory's name)")
    p.add_argument("--scorer", default="classifier-birds",
                   help="name of the classifier model that scores this generator's images (checked: its "
                        "classes must include the generator's)")
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out images listed in images.txt whose files are missing")
    p.add_argument("--eval-only", action="store_true", help="evaluate/export <out>/cvaegan.pt, no training")
    for f in LossWeights.__dataclass_fields__:
        p.add_argument("--w-" + f.replace("_", "-"), dest="w_" + f, type=float, default=None,
                       help="loss weight %s (default %s)" % (f, getattr(LossWeights(), f)))
    return p


def main(argv) -> int:
    args = build_parser().parse_args(argv)
    if args.skip_missing:
        data.SKIP_MISSING = True
    setup(args.threads, args.seed)
    model_dir = args.model_dir or os.path.join(args.out, "cvaegan-birds")
    if args.eval_only:
        m, ck = load_cvaegan(os.path.join(args.out, "cvaegan.pt"))
    if not args.no_export:  # a scorer that does not know the classes stops us now, not after training
        from .export import preflight_scorer
        if args.eval_only:
            names = ck["class_names"]
        else:
            idx = data.load_index(args.data)
            names = [idx["classes"][c] for c in idx["seen"]]
        preflight_scorer(model_dir, args.name, args.scorer, names, args.classifier)
    if not args.eval_only:
        m, ck = train(args)
        if ck is None:  # not the main process of a distributed run
            return 0
        m.to("cpu")  # evaluation and export run on the CPU
    log = Logger(args.out, "cvaegan")
    metrics = None
    if args.classifier:
        metrics = evaluate(m.G_ema, args.classifier, args.data, seed=args.seed)
        log(event="eval", steps=ck["step"], **metrics)
        with open(os.path.join(args.out, "cvaegan_metrics.json"), "w", encoding="utf-8") as f:
            json.dump({**metrics, "steps": ck["step"], "seconds": round(ck["seconds"], 1)}, f, indent=1)
    if not args.no_export:
        write_model(model_dir, m, ck, args.data, metrics, log=lambda s: log(event="export", msg=s),
                    name=args.name, scorer=args.scorer)
    return 0
