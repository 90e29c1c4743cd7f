"""AttnGAN v2 at 128x128: `python3 -m fgtrain attngan2 --data DIR --out DIR --damsm CKPT`.

AttnGAN (Xu et al., CVPR 2018) with three stages 32 -> 64 -> 128, conditioning augmentation and word
attention in the two attentional stages (networks: fgtrain/attngan2_nets.py), trained with the modern
stabilisers of QUALITY.md, each with a switch for the ablations:

  D (per stage, on DiffAugment-ed images: --diffaug color,translation,cutout | none):
      unconditional real/fake + conditional real / fake / wrong-caption terms, hinge loss
      (--loss hinge | bce), spectral norm (--no-sn), and DF-GAN's matching-aware zero-centred
      gradient penalty on real images with their own sentence (--w-gp, 0 = off; --gp-every N)
  G:  sum over stages of the adversarial terms (through the same DiffAugment)
      + lambda * DAMSM word + sentence losses (both directions; lambda = 5 for birds) of the last
        stage, pooled to the frozen DAMSM image encoder's 64 px, against its own caption (--w-damsm)
      + KL of conditioning augmentation (--w-kl)
      + mode seeking on pairs of one caption with different noise, 1 / (ratio + 0.1) (--w-ms)
      + attention consistency (--w-att): the last attentional stage's map of each word, pooled to the
        DAMSM's 8x8 regions, is pulled (KL) toward the frozen DAMSM's word-to-region attention on the
        generated image, so the map the studio shows for "crown" lies where the crown is drawn
  Generator: deep fusion of [z, c] in every layer (--no-fusion), upsample + conv (--up deconv for
  the transposed-conv ablation), no BatchNorm; EMA of G (--ema 0.995; 0 = none) is what is exported.
  Adam (beta1 0, beta2 0.9) with D's learning rate 4x G's (two time-scale), as DF-GAN.

Writes <out>/attngan2.pt (full checkpoint, every --ckpt-minutes and at the end), <out>/attngan2_ema.pt
(the EMA generator and what export needs; <= 15 MiB, so the GPU script can bring it back),
<out>/attngan2.log.jsonl, <out>/samples/attngan2_<step>.png (per row: a real image, its caption by each
stage, more seeds) and attngan2_words_<step>.png (a caption and the same caption with one colour word
changed, same seeds, with the attention map of that word), <out>/attngan2_metrics.json (with
--classifier) and a model directory (--model-dir, default <out>/attngan-birds-v2) in the same contract
as v1: generator.onnx (img32, img64, img128, att1, att2, mu, logvar), the DAMSM text_encoder.onnx and
an image_encoder.onnx that takes the 128-px image (pooled to the DAMSM's 64 px inside the graph).
`--stop-at EPOCH` / `--stop-in MINUTES` end the run early with a checkpoint (a later --resume goes on).
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
from .attngan import encode_text, export_graphs, generate, real_pyramid, write_samples
from .attngan2_nets import AttnGAN2Config, Generator2, StageD2
from .gan2 import (MS_TAU, DeadlineBudget, d_fake_term, d_real_term, device_generator, device_setup, diff_augment,
                   floats, g_adv_term, load_slim_state, parse_policy, real_at, slim_state, to_size, write_done,
                   zero_centred_gp)
from .trainkit import check_classes, generator_metrics, n_params, run_steps, save_atomic, save_grid, with_how

NAME = "attngan2"


@dataclass
class LossWeights:
    damsm: float = 5.0   # lambda of the reference (birds)
    kl: float = 1.0
    uncond: float = 1.0  # weight of the unconditional D terms (in D's and G's losses)
    ms: float = 1.0      # mode seeking (MSGAN)
    gp: float = 1.0      # scale of DF-GAN's MA-GP (k = 2, p = 6 inside); 0 = off
    att: float = 1.0     # attention consistency with the DAMSM's word-region attention; 0 = off


@dataclass
class Recipe:
    """Training switches that are not loss weights (kept in the checkpoint; --resume uses them)."""
    loss: str = "hinge"                          # hinge | bce
    diffaug: str = "color,translation,cutout"    # DiffAugment policy, or "none"
    gp_every: int = 1                            # lazy regularisation: the penalty every N steps (x N)
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9


def loss_weights(args) -> LossWeights:
    given = {f: getattr(args, "w_" + f) for f in LossWeights.__dataclass_fields__}
    return LossWeights(**{k: v for k, v in given.items() if v is not None})


class AttnGAN2(nn.Module):
    def __init__(self, cfg: AttnGAN2Config, w: LossWeights | None = None, recipe: Recipe | None = None):
        super().__init__()
        self.cfg, self.w, self.recipe = cfg, w or LossWeights(), recipe or Recipe()
        self.G = Generator2(cfg)
        self.Ds = nn.ModuleList(StageD2(s, cfg.ndf, cfg.text_dim, cfg.sn) for s in cfg.stage_sizes)
        self.G_ema = copy.deepcopy(self.G).eval()
        for p in self.G_ema.parameters():
            p.requires_grad_(False)


def damsm_attention(region: torch.Tensor, words: torch.Tensor, words_mask: torch.Tensor,
                    gamma1: float | None = None) -> torch.Tensor:
    """The DAMSM's attention of each word over the image regions (AttnGAN Eq. 8-9, image i with its
    own caption i): region [B,D,R,R], words [B,D,T], words_mask [B,T] (1 = padding) -> [B,T,R*R]."""
    from .damsm import GAMMA1
    g1 = GAMMA1 if gamma1 is None else gamma1
    s = torch.einsum("bdt,bdn->btn", words, region.flatten(2))
    a = torch.softmax(s.masked_fill(words_mask.unsqueeze(2) > 0.5, -1e9), dim=1)  # over words
    return torch.softmax(a * g1, dim=2)                                            # over regions


def generator_attention(att: torch.Tensor, R: int) -> torch.Tensor:
    """G's attention [B,T,S,S] (softmax over words per pixel) as a distribution over R x R regions per
    word: [B,T,R*R]."""
    p = F.adaptive_avg_pool2d(att, R).flatten(2)
    return p / p.sum(2, keepdim=True).clamp(min=1e-8)


def attention_consistency(att, region, words, words_mask) -> torch.Tensor:
    """Mean over the caption words of KL(DAMSM attention || G attention), the DAMSM side frozen."""
    with torch.no_grad():
        q = damsm_attention(region.detach(), words, words_mask)
    p = generator_attention(att, region.shape[-1])
    kl = (q * (q.clamp(min=1e-8).log() - p.clamp(min=1e-8).log())).sum(2)
    valid = 1.0 - words_mask
    return (kl * valid).sum() / valid.sum().clamp(min=1.0)


def attention_agreement(att, region, words, words_mask) -> torch.Tensor:
    """Per caption word, the overlap (histogram intersection, 1 = the same map) of G's attention and
    the DAMSM's attention on the generated image: [B,T], 0 on padding."""
    q = damsm_attention(region, words, words_mask)
    p = generator_attention(att, region.shape[-1])
    return torch.minimum(p, q).sum(2) * (1.0 - words_mask)


def train_step(m: AttnGAN2, opts: dict, text_enc, img_enc, batch: dict, g: torch.Generator,
               step: int = 0, with_logs: bool = True) -> dict:
    """One v2 step (D of every stage, then G) on a batch dict (image at the last stage's size, caption,
    cap_len, label). `g` draws the noise and DiffAugment (a generator on the batch's device:
    gan2.device_generator). Returns the losses as floats, or {} without with_logs (no device sync)."""
    from .damsm import sent_loss, words_loss

    cfg, w, rc = m.cfg, m.w, m.recipe
    policy = parse_policy(rc.diffaug)
    words, sent, mask = encode_text(text_enc, batch["caption"], batch["cap_len"])
    B = words.shape[0]
    labels = batch["label"]
    dev = words.device
    roll = torch.roll(torch.arange(B, device=dev), 1)
    wrong_w = (labels != labels[roll]).float()
    real_sent, wrong_sent = sent, sent[roll]

    pairs = w.ms > 0 and B >= 4
    pick = torch.arange(B // 2, device=dev).repeat(2) if pairs else torch.arange(B, device=dev)
    words_g, sent_g, mask_g, lens_g, labels_g = (words[pick], sent[pick], mask[pick], batch["cap_len"][pick],
                                                 labels[pick])
    Bg = len(pick)
    z = torch.randn(Bg, cfg.z_dim, generator=g, device=g.device).to(dev)
    eps = torch.randn(Bg, cfg.cond_dim, generator=g, device=g.device).to(dev)
    outs = m.G(z, eps, sent_g, words_g, mask_g)
    n = len(cfg.stage_sizes)
    fakes, atts, mu, logvar = outs[:n], outs[n:2 * n - 1], outs[-2], outs[-1]
    reals = real_pyramid(batch["image"], cfg.stage_sizes)

    def aug(x):
        return diff_augment(x, policy, g)

    # ---- D
    use_gp = w.gp > 0 and step % max(1, rc.gp_every) == 0
    loss_d, logs = 0.0, {}
    for i, (D, real, fake) in enumerate(zip(m.Ds, reals, fakes)):
        ra, fa = aug(real), aug(fake.detach())
        s_r = real_sent
        if use_gp:
            ra = ra.detach().requires_grad_(True)
            s_r = real_sent.detach().requires_grad_(True)
        fr, ff = D(ra), D(fa)
        ur, uf = D.uncond_logits(fr), D.uncond_logits(ff)
        cr, cf, cw = D.cond_logits(fr, s_r), D.cond_logits(ff, sent_g), D.cond_logits(fr, wrong_sent)
        li = (w.uncond * (d_real_term(ur, rc.loss) + d_fake_term(uf, rc.loss))
              + d_real_term(cr, rc.loss)
              + (d_fake_term(cf, rc.loss) + d_fake_term(cw, rc.loss, wrong_w)) / 2)
        if use_gp:
            gp = zero_centred_gp(cr, (ra, s_r))
            li = li + w.gp * max(1, rc.gp_every) * gp
            logs["gp%d" % i] = gp.detach()
        loss_d = loss_d + li
        logs["d%d" % i] = li.detach()
        logs["d%d_real" % i] = cr.detach().mean()
        logs["d%d_fake" % i] = cf.detach().mean()
    opts["D"].zero_grad(set_to_none=True)
    loss_d.backward()
    opts["D"].step()

    # ---- G
    for p in m.Ds.parameters():
        p.requires_grad_(False)
    adv = 0.0
    for D, fake in zip(m.Ds, fakes):
        f = D(aug(fake))
        adv = adv + w.uncond * g_adv_term(D.uncond_logits(f), rc.loss) + g_adv_term(D.cond_logits(f, sent_g), rc.loss)
    region, code = img_enc(to_size(fakes[-1], cfg.damsm_size))
    w0, w1, _ = words_loss(region, words_g, lens_g, labels_g)
    s0, s1, _ = sent_loss(code, sent_g, labels_g)
    damsm = w0 + w1 + s0 + s1
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()
    loss_g = adv + w.damsm * damsm + w.kl * kl
    if w.att > 0 and atts:
        att = attention_consistency(atts[-1], region, words_g, mask_g)
        loss_g = loss_g + w.att * att
        logs["att"] = att.detach()
    if pairs:
        h = Bg // 2
        img, noise = fakes[-1].flatten(1), torch.cat([z, eps], 1)
        ratio = (img[:h] - img[h:]).abs().mean(1) / (noise[:h] - noise[h:]).abs().mean(1)
        loss_g = loss_g + w.ms * (1.0 / (ratio + MS_TAU)).mean()
        logs["ms_ratio"] = ratio.detach().mean()
    opts["G"].zero_grad(set_to_none=True)
    loss_g.backward()
    opts["G"].step()
    for p in m.Ds.parameters():
        p.requires_grad_(True)
    if not with_logs:
        return {}
    logs.update(loss_d=loss_d, loss_g=loss_g, adv=adv, damsm=damsm, w_loss=w0 + w1, s_loss=s0 + s1, kl=kl)
    return floats(logs)


def make_optimizers(m: AttnGAN2) -> dict:
    rc = m.recipe
    betas = (rc.beta1, rc.beta2)
    return {"G": torch.optim.Adam(m.G.parameters(), rc.lr_g, betas=betas),
            "D": torch.optim.Adam(m.Ds.parameters(), rc.lr_d, betas=betas)}


COLOURS = ("red", "blue", "yellow", "black", "white", "brown", "grey", "green", "orange", "purple", "buff",
           "olive", "iridescent", "pink", "rufous")


@torch.no_grad()
def write_word_edit(path: str, G: Generator2, text_enc, ds: data.CUBDataset, n_seeds: int = 6) -> str | None:
    """One training caption with its first colour word changed to another colour, both rendered with
    the same seeds: rows = caption A, caption B, then G's last attention map of the changed word for A
    and for B (upsampled, white = most attention). Returns the edit ("red -> blue") or None."""
    vocab = ds.vocab
    colours = [c for c in COLOURS if c in vocab]
    for k in range(len(ds)):
        for cap in ds.captions[k]:
            words = cap.lower().split()
            hit = [i for i, w in enumerate(words) if w in colours]
            if hit and len(colours) > 1:
                i = hit[0]
                other = colours[(colours.index(words[i]) + 1) % len(colours)]
                b = " ".join(words[:i] + [other] + words[i + 1:])
                return _render_edit(path, G, text_enc, vocab, cap, b, words[i], other, n_seeds)
    return None


def _render_edit(path, G, text_enc, vocab, a, b, wa, wb, n_seeds):
    from .tokenizer import tokenize

    dev = next(G.parameters()).device
    ids, lens, pos = [], [], []
    for cap, w in ((a, wa), (b, wb)):
        e, n = vocab.encode_padded(cap, vocab.max_words)
        toks = [t for t in tokenize(cap) if t in vocab][:n]
        ids.append(e)
        lens.append(n)
        pos.append(toks.index(w) if w in toks else 0)
    caps = torch.tensor(ids).repeat_interleave(n_seeds, 0)
    lens_t = torch.tensor(lens).repeat_interleave(n_seeds, 0)
    words, sent, mask = encode_text(text_enc, caps.to(dev), lens_t.to(dev))
    g = torch.Generator().manual_seed(777)
    z = torch.randn(n_seeds, G.cfg.z_dim, generator=g).repeat(2, 1).to(dev)
    eps = torch.zeros(2 * n_seeds, G.cfg.cond_dim, device=dev)
    G.eval()
    out = G(z, eps, sent, words, mask)
    n = len(G.cfg.stage_sizes)
    img, att = out[n - 1].cpu(), out[2 * n - 2].cpu()
    S = img.shape[-1]
    rows = [list(img[:n_seeds]), list(img[n_seeds:])]
    for r in range(2):
        maps = att[r * n_seeds:(r + 1) * n_seeds, pos[r]]
        maps = maps / maps.flatten(1).max(1)[0].clamp(min=1e-8).view(-1, 1, 1)
        maps = F.interpolate(maps.unsqueeze(1), size=(S, S), mode="nearest").repeat(1, 3, 1, 1) * 2 - 1
        rows.append(list(maps))
    save_grid(path, rows)
    return "%s -> %s in %r" % (wa, wb, a)


# ---------------------------------------------------------------- checkpoints

def checkpoint(m: AttnGAN2, opts: dict, step: int, seconds: float, ds, args_dict: dict, damsm_path: str) -> dict:
    return {"kind": NAME, "config": m.cfg.to_dict(), "weights": asdict(m.w), "recipe": asdict(m.recipe),
            "state": m.state_dict(), "opts": {k: o.state_dict() for k, o in opts.items()}, "step": step,
            "seconds": seconds, "class_ids": ds.class_ids, "class_names": ds.class_names,
            "damsm": os.path.abspath(damsm_path), "args": args_dict}


def slim_checkpoint(ck: dict, m: AttnGAN2) -> dict:
    """The EMA generator and the metadata export needs (fits the device tool's 16 MiB files)."""
    sds, dtype = slim_state({"g_ema": m.G_ema})
    return {**{k: v for k, v in ck.items() if k not in ("state", "opts")}, "kind": NAME + "-ema",
            **sds, "dtype": dtype}


def load_attngan2(path: str) -> tuple[AttnGAN2, dict]:
    ck = load_checkpoint(path)
    m = AttnGAN2(AttnGAN2Config.from_dict(ck["config"]), LossWeights(**ck.get("weights", {})),
                 Recipe(**ck.get("recipe", {})))
    m.load_state_dict(ck["state"])
    m.G_ema.eval()
    return m, ck


def load_generator(run_dir: str) -> tuple[Generator2, dict]:
    """The EMA generator of a run: from <run>/attngan2.pt, else from <run>/attngan2_ema.pt (what the
    GPU script brings back)."""
    full = os.path.join(run_dir, NAME + ".pt")
    if os.path.exists(full):
        m, ck = load_attngan2(full)
        return m.G_ema, ck
    ck = load_checkpoint(os.path.join(run_dir, NAME + "_ema.pt"))
    G = Generator2(AttnGAN2Config.from_dict(ck["config"]))
    load_slim_state(G, ck["g_ema"])
    return G.eval(), ck


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(G: Generator2, classifier_path: str, damsm_path: str, data_dir: str, seed: int = 0,
             index=None, limit: int | None = None) -> dict:
    """As v1's evaluate (one generated image per real test image of the seen classes, from one of its
    captions), with real and generated images box-filtered to the classifier's and the DAMSM's input
    size the same way; adds the attention agreement of the last attentional stage with the DAMSM's
    attention on the generated image (mean over caption words; 1 = the same maps)."""
    import random

    from .scoring import Scorer

    scorer = Scorer.from_checkpoints(classifier_path, damsm_path)
    clf_size = load_checkpoint(classifier_path).get("config", {}).get("size", 64)
    idx = index if index is not None else data.load_index(data_dir)
    S = G.cfg.stage_sizes[-1]
    test = data.CUBDataset(data_dir, "test", "seen", S, vocab=scorer.vocab, index=idx, seed=seed)
    check_classes(classifier_path, test.class_ids)
    N = len(test) if limit is None else min(limit, len(test))
    b = test.batch(torch.arange(N), rng=random.Random(seed))
    G.eval()
    gen_small, gen_damsm, agree, nwords = [], [], 0.0, 0.0
    gen = torch.Generator().manual_seed(seed)
    n = len(G.cfg.stage_sizes)
    for i in range(0, N, 64):
        caps, lens = b["caption"][i:i + 64], b["cap_len"][i:i + 64]
        words, sent, mask = encode_text(scorer.text_encoder, caps, lens)
        Bi = sent.shape[0]
        out = G(torch.randn(Bi, G.cfg.z_dim, generator=gen), torch.randn(Bi, G.cfg.cond_dim, generator=gen),
                sent, words, mask)
        img = out[n - 1]
        gen_small.append(to_size(img, clf_size))
        d_img = to_size(img, G.cfg.damsm_size)
        gen_damsm.append(d_img)
        region, _ = scorer.image_encoder(d_img)
        a = attention_agreement(out[2 * n - 2], region, words, mask)
        agree += float(a.sum())
        nwords += float((1 - mask).sum())
    labels = test.labels[:N]
    out = generator_metrics(scorer, real_at(test.images[:N], clf_size), labels, torch.cat(gen_small), labels, seed)
    out["r_precision_generated"] = scorer.r_precision(torch.cat(gen_damsm), b["caption"], b["cap_len"],
                                                      labels.numpy(), seed=seed)
    out["r_precision_real_test"] = scorer.r_precision(real_at(test.images[:N], G.cfg.damsm_size), b["caption"],
                                                      b["cap_len"], labels.numpy(), seed=seed)
    out["attention_agreement"] = agree / max(nwords, 1.0)
    return out


METRIC_HOW = {
    "attention_agreement": "mean over caption words of the overlap (histogram intersection) of the "
                           "generator's last attention map, pooled to 8x8, and the DAMSM's word-to-region "
                           "attention on the generated image (1 = the same map; uniform maps give about 0.5)",
}


# ---------------------------------------------------------------- export

class PooledImageEncoder(nn.Module):
    """The DAMSM image encoder as the generator was trained against it: the S-px image box-filtered to
    the encoder's size first. Returns (region_features, cnn_code) like ImageEncoder."""

    def __init__(self, enc: nn.Module, image_size: int, enc_size: int):
        super().__init__()
        self.enc, self.k = enc, max(1, image_size // enc_size)

    def forward(self, image):
        return self.enc(F.avg_pool2d(image, self.k) if self.k > 1 else image)


def write_model(model_dir: str, G: Generator2, ck: dict, data_dir: str, damsm_path: str, metrics: dict | None,
                scorer: str = "classifier-birds", log=print) -> dict:
    from . import export as ex
    from .damsm import load_damsm
    from .tokenizer import golden_tokenizer

    text_enc, img_enc, vocab = load_damsm(damsm_path)
    cfg = G.cfg
    S = cfg.stage_sizes[-1]
    entries = export_graphs(model_dir, G, text_enc, PooledImageEncoder(img_enc, S, cfg.damsm_size).eval(),
                            len(vocab), S, log=log)
    verification = {k: e.pop("verification") for k, e in entries.items()}
    ex.write_json(os.path.join(model_dir, "golden", "tokenizer.json"), golden_tokenizer(vocab))
    idx = data.load_index(data_dir)
    sizes = {"z_dim": cfg.z_dim, "cond_dim": cfg.cond_dim, "text_dim": cfg.text_dim,
             "max_words": vocab.max_words, "image_size": S, "stage_sizes": list(cfg.stage_sizes),
             "num_classes": len(ck["class_ids"]), "num_attributes": len(idx["attributes"]),
             "vocab_size": len(vocab)}
    training = ex.portable({"data": ex.dataset_ref(data_dir), "steps": ck["step"],
                            "seconds": round(ck["seconds"], 1), "seed": ck["args"].get("seed", 0),
                            "device": ck["args"].get("device", "cpu"), "config": cfg.to_dict(),
                            "loss_weights": ck["weights"], "recipe": ck.get("recipe"),
                            "batch": ck["args"].get("batch"), "damsm": damsm_path,
                            "weights_dtype": ck.get("dtype", "float32"), "verification": verification})
    desc = ("AttnGAN v2 text-to-image generator for birds, stages %s: AttnGAN's conditioning "
            "augmentation and word attention with DF-GAN's deep fusion, trained with hinge loss, spectral "
            "norm, a matching-aware gradient penalty, DiffAugment and an EMA generator; with the frozen "
            "DAMSM text encoder it was trained with and the DAMSM image encoder (R-precision)."
            % "/".join(str(s) for s in cfg.stage_sizes))
    notes = ("Trained on train images and captions of seen classes only. The exported generator is the "
             "EMA copy (no BatchNorm). Noise (`z_code`, `ca_eps`) is an input; ca_eps = 0 gives the mean "
             "of conditioning augmentation. The padding mask is applied per sample; attention over "
             "padding words is exactly 0. `image_encoder.onnx` takes the %d-px image and pools it to the "
             "DAMSM's %d px inside the graph. Graphs verified against PyTorch (max abs diff <= 1e-4) at "
             "batch sizes 1 and 4 and caption lengths 5 and 18, with padded rows." % (S, cfg.damsm_size))
    how = dict(METRIC_HOW)
    mets = None
    if metrics:
        mets = {k: ({"value": v, "how": how[k]} if k in how else v) for k, v in with_how(metrics).items()}
    return ex.write_model_dir(model_dir, "attngan-birds", "attngan", entries, sizes, desc, vocab=vocab,
                              classes=ex.classes_json(idx, ck["class_ids"]), metrics=mets,
                              training=training, scorer=scorer, notes=notes, version="2.0.0")


# ---------------------------------------------------------------- training loop

def _config_from_args(args, text_dim: int, max_words: int, damsm_size: int) -> AttnGAN2Config:
    sizes = [args.size // 2 ** i for i in reversed(range(args.stages))]
    return AttnGAN2Config(text_dim=text_dim, ngf=args.ngf, ndf=args.ndf, stage_sizes=sizes, n_res=args.n_res,
                          max_words=max_words, fusion=not args.no_fusion, up=args.up, sn=not args.no_sn,
                          damsm_size=damsm_size)


def _recipe_from_args(args) -> Recipe:
    parse_policy(args.diffaug)
    return Recipe(loss=args.loss, diffaug=args.diffaug, gp_every=args.gp_every, lr_g=args.lr_g,
                  lr_d=args.lr_d, beta1=args.beta1, beta2=args.beta2)


def train(args) -> tuple[AttnGAN2, dict]:
    """Train or continue (--resume: the configuration, loss weights and recipe come from the
    checkpoint) within --minutes (or until --stop-at); returns the model and the final checkpoint."""
    import random

    from .damsm import load_damsm

    device_setup(args.device)
    os.makedirs(args.out, exist_ok=True)
    log = Logger(args.out, NAME)
    text_enc, img_enc, vocab = load_damsm(args.damsm)
    damsm_size = load_checkpoint(args.damsm).get("config", {}).get("size", 64)
    for p in list(text_enc.parameters()) + list(img_enc.parameters()):
        p.requires_grad_(False)
    text_enc.to(args.device)
    img_enc.to(args.device)
    idx = data.load_index(args.data)
    path = os.path.join(args.out, NAME + ".pt")
    step, seconds = 0, 0.0
    if args.resume and os.path.exists(path):
        m, ck = load_attngan2(path)
        m.to(args.device)
        opts = make_optimizers(m)
        for k, o in opts.items():
            o.load_state_dict(ck["opts"][k])
        step, seconds = ck["step"], ck["seconds"]
        log(event="resume", step=step, seconds=round(seconds, 1))
    else:
        m = AttnGAN2(_config_from_args(args, text_enc.out_dim, vocab.max_words, damsm_size), loss_weights(args),
                     _recipe_from_args(args)).to(args.device)
        opts = make_optimizers(m)
    S = m.cfg.stage_sizes[-1]
    ds = data.CUBDataset(args.data, "train", "seen", S, vocab=vocab, index=idx, seed=args.seed)
    keep = (ds.caption_lens > 0).any(1).nonzero().flatten()  # images with an encodable caption
    args_dict = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}
    budget = DeadlineBudget(args.minutes, seconds, step + args.quick_steps if args.quick else None, step,
                            stop_at=args.stop_at)
    log(event="start", train=len(keep), vocab=len(vocab), params_G=n_params(m.G), params_D=n_params(m.Ds),
        minutes=args.minutes, batch=args.batch, stages=m.cfg.stage_sizes, recipe=asdict(m.recipe),
        weights=asdict(m.w), fusion=m.cfg.fusion, sn=m.cfg.sn, up=m.cfg.up, ema=args.ema, device=args.device)
    g = torch.Generator().manual_seed(args.seed * 1000003 + step)  # data order
    gd = device_generator(args.device, args.seed * 1000003 + step + 1)  # noise and DiffAugment
    rng = random.Random(args.seed * 7919 + step)
    n, B = len(keep), min(args.batch, len(keep))
    perm, pos = keep[torch.randperm(n, generator=g)], 0

    def save(step: int, final: bool = False):
        ck = checkpoint(m, opts, step, budget.elapsed(), ds, args_dict, args.damsm)
        save_atomic(ck, path)
        save_atomic(slim_checkpoint(ck, m), os.path.join(args.out, NAME + "_ema.pt"))
        write_samples(os.path.join(args.out, "samples", "%s_%06d.png" % (NAME, step)), m, text_enc, ds,
                      **(dict(n_rows=2, n_z=2) if args.quick else {}))
        edit = write_word_edit(os.path.join(args.out, "samples", "%s_words_%06d.png" % (NAME, step)), m.G_ema,
                               text_enc, ds, n_seeds=2 if args.quick else 6)
        log(event="checkpoint", step=step, s=round(budget.elapsed(), 1), final=final, word_edit=edit)
        return ck

    def next_batch():
        nonlocal perm, pos
        if pos + B > n:
            perm, pos = keep[torch.randperm(n, generator=g)], 0
        b = {k: v.to(args.device) if torch.is_tensor(v) else v
             for k, v in ds.batch(perm[pos:pos + B], rng=rng).items()}
        pos += B
        return b

    m.G.train()
    m.Ds.train()
    step = run_steps(m, args, budget, log, save, step, next_batch,
                     lambda b, s: train_step(m, opts, text_enc, img_enc, b, gd, s,
                                             with_logs=args.quick or (s + 1) % args.log_every == 0))
    ck = save(step, final=True)
    write_done(args.out, NAME, budget)
    return m, ck


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m fgtrain attngan2", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="data set root (CUB layout)")
    p.add_argument("--out", required=True, help="run directory: checkpoints, log, samples")
    p.add_argument("--damsm", help="pretrained DAMSM checkpoint (damsm.pt), frozen; not the scorer's")
    p.add_argument("--classifier", help="fidelity classifier checkpoint, for the metrics (never in a loss)")
    p.add_argument("--model-dir", help="model directory to export (default <out>/attngan-birds-v2)")
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
    p.add_argument("--size", type=int, default=128, help="last stage size")
    p.add_argument("--stages", type=int, default=3, help="number of stages (each doubles; 3: 32/64/128)")
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--ndf", type=int, default=32)
    p.add_argument("--n-res", type=int, default=1)
    p.add_argument("--ema", type=float, default=0.995, help="EMA decay of G (0 = no EMA)")
    p.add_argument("--loss", choices=("hinge", "bce"), default="hinge")
    p.add_argument("--diffaug", default="color,translation,cutout", help="DiffAugment ops or 'none'")
    p.add_argument("--gp-every", type=int, default=1)
    p.add_argument("--no-sn", action="store_true", help="no spectral norm in D (ablation)")
    p.add_argument("--no-fusion", action="store_true", help="no deep fusion in G (ablation)")
    p.add_argument("--up", choices=("nearest", "deconv"), default="nearest")
    p.add_argument("--lr-g", type=float, default=1e-4)
    p.add_argument("--lr-d", type=float, default=4e-4)
    p.add_argument("--beta1", type=float, default=0.0)
    p.add_argument("--beta2", type=float, default=0.9)
    p.add_argument("--ckpt-minutes", type=float, default=3.0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--no-export", action="store_true", help="skip the model directory")
    p.add_argument("--eval-only", action="store_true",
                   help="evaluate/export <out>/attngan2.pt (or attngan2_ema.pt), no training")
    p.add_argument("--eval-limit", type=int, help="evaluate on at most N test images")
    for f in LossWeights.__dataclass_fields__:
        p.add_argument("--w-" + f.replace("_", "-"), dest="w_" + f, type=float, default=None,
                       help="loss weight %s (default %s)" % (f, getattr(LossWeights(), f)))
    return p


def main(argv) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    setup(args.threads, args.seed)
    if args.stop_in is not None:
        t = time.time() + 60.0 * args.stop_in
        args.stop_at = t if args.stop_at is None else min(args.stop_at, t)
    if args.eval_only:
        G, ck = load_generator(args.out)
        args.damsm = args.damsm or ck["damsm"]
    else:
        if not args.damsm:
            p.error("--damsm is required for training")
        m, ck = train(args)
        m.to("cpu")  # evaluation and export run on the CPU
        G = m.G_ema
    log = Logger(args.out, NAME)
    metrics = None
    if args.classifier:
        metrics = evaluate(G, args.classifier, args.damsm, args.data, seed=args.seed, limit=args.eval_limit)
        log(event="eval", steps=ck["step"], **metrics)
        with open(os.path.join(args.out, NAME + "_metrics.json"), "w", encoding="utf-8") as f:
            json.dump({**metrics, "steps": ck["step"], "seconds": round(ck["seconds"], 1)}, f, indent=1)
    if not args.no_export:
        write_model(args.model_dir or os.path.join(args.out, "attngan-birds-v2"), G, ck, args.data, args.damsm,
                    metrics, log=lambda s: log(event="export", msg=s))
    return 0
