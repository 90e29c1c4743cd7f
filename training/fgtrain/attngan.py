"""AttnGAN training (Xu et al., CVPR 2018): `python3 -m fgtrain attngan --data DIR --out DIR --damsm CKPT`.

Text features come from the pretrained, frozen DAMSM text encoder (`damsm.load_damsm`). One step:
  D (per stage): unconditional real/fake + conditional real/fake/wrong-caption BCE, as the reference
                 ((real + cond_real) / 2 + (fake + cond_fake + cond_wrong) / 3)
  G: sum over stages of the non-saturating unconditional + conditional terms
     + lambda * DAMSM (word + sentence losses, both directions) of the last stage's images against
       their own captions, with the frozen DAMSM image encoder
     + KL of conditioning augmentation
     + mode seeking on pairs of one caption rendered with different noise (Mao et al., CVPR 2019)
  An EMA copy of G (BatchNorm statistics recomputed for it) is what is sampled and exported.

Writes <out>/attngan.pt (every --ckpt-minutes and at the end), <out>/attngan.log.jsonl,
<out>/samples/attngan_<step>.png, <out>/attngan_metrics.json (with --classifier) and a model directory
(--model-dir, default <out>/attngan-birds: generator.onnx + the DAMSM text_encoder.onnx /
image_encoder.onnx, golden/, model.json, vocab.json, classes.json, MODEL_CARD.md).
`--export-reference DIR` writes a random-weight model directory with the reference architecture.
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
from .attngan_nets import AttnGANConfig, Generator, StageD, words_mask_from_lens
from .trainkit import (check_classes, generator_metrics, n_params, recalibrate_bn, run_steps, save_atomic,
                       save_grid, with_how)


@dataclass
class LossWeights:
    damsm: float = 5.0   # lambda of the reference (TRAIN.SMOOTH.LAMBDA = 5 for birds)
    kl: float = 1.0
    uncond: float = 1.0  # weight of the unconditional D terms in G's loss
    ms: float = 1.0      # mode seeking on pairs of the same caption (MSGAN's weight for StackGAN++)


def loss_weights(args) -> LossWeights:
    """LossWeights with the --w-* flags that were given."""
    given = {f: getattr(args, "w_" + f) for f in LossWeights.__dataclass_fields__}
    return LossWeights(**{k: v for k, v in given.items() if v is not None})


class AttnGAN(nn.Module):
    def __init__(self, cfg: AttnGANConfig, w: LossWeights | None = None):
        super().__init__()
        self.cfg, self.w = cfg, w or LossWeights()
        self.G = Generator(cfg)
        self.Ds = nn.ModuleList(StageD(s, cfg.ndf, cfg.text_dim) for s in cfg.stage_sizes)
        self.G_ema = copy.deepcopy(self.G).eval()
        for p in self.G_ema.parameters():
            p.requires_grad_(False)


def encode_text(text_enc, captions: torch.Tensor, cap_lens: torch.Tensor):
    """Frozen DAMSM text features, trimmed to the longest caption: (words [B,D,T], sent [B,D], mask [B,T])."""
    T = int(cap_lens.max())
    with torch.no_grad():
        words, sent = text_enc(captions[:, :T], cap_lens)
    return words, sent, words_mask_from_lens(cap_lens, T)


def real_pyramid(images: torch.Tensor, sizes) -> list[torch.Tensor]:
    return [images if s == images.shape[-1] else F.adaptive_avg_pool2d(images, s) for s in sizes]


class StageLogits(nn.Module):
    """A stage discriminator as one forward (what DistributedDataParallel wraps): the unconditional
    logits of images and their conditional logits with each sentence batch given."""

    def __init__(self, D: StageD):
        super().__init__()
        self.D = D

    def forward(self, x, *sents):
        f = self.D(x)
        return (self.D.uncond_logits(f),) + tuple(self.D.cond_logits(f, s) for s in sents)


def train_step(m: AttnGAN, opts: dict, text_enc, img_enc, batch: dict, g: torch.Generator,
               nets=None, dist=None) -> dict:
    """One AttnGAN step on a batch dict (image, caption, cap_len, label). Returns losses as floats.

    With a mode-seeking weight, the fake half of the step renders the first B/2 captions twice (rows
    2i and 2i+1) with different noise and G is also pushed to keep those pairs apart (Mao et al.,
    CVPR 2019).

    Distributed (fgtrain.dist): caption, cap_len and label are the global batch's, image this rank's
    rows of it (batch["rows"]); nets has G and the stage discriminators (StageLogits) wrapped in
    DistributedDataParallel. Noise is drawn for the global batch; means are global-batch means and
    the DAMSM losses (negatives: the rest of the batch) are computed on the gathered generated
    images, so the step is the one-process step on the global batch."""
    from . import dist as fdist
    from .damsm import sent_loss, words_loss

    Dd = dist or fdist.Dist()
    cfg, w = m.cfg, m.w
    Gnet = nets["G"] if nets else m.G
    Dnets = nets["Ds"] if nets else [StageLogits(D) for D in m.Ds]
    bce = F.binary_cross_entropy_with_logits
    words, sent, mask = encode_text(text_enc, batch["caption"], batch["cap_len"])
    B = words.shape[0]
    rrows = batch.get("rows", slice(None)) if Dd.enabled else slice(None)
    labels = batch["label"]

    def gmean(t, n):
        """This rank's part of the mean over n samples of the global batch (t: per-sample rows)."""
        per = t[0].numel() if t.dim() > 0 and len(t) else 1
        return t.sum() * (Dd.world / (n * per))

    # wrong captions for D: the next sample's sentence, counted only where the classes differ
    dev = words.device  # noise from the CPU generator, moved: the same run on any device
    roll = torch.roll(torch.arange(B, device=dev), 1)
    wrong_w = (labels != labels[roll]).float()
    real_sent, wrong_sent = sent, sent[roll]

    pairs = w.ms > 0 and B >= 4
    pick = torch.arange(B // 2, device=dev).repeat_interleave(2) if pairs else torch.arange(B, device=dev)
    words, sent, mask, cap_lens, labels = (words[pick], sent[pick], mask[pick], batch["cap_len"][pick],
                                           labels[pick])
    Bg = len(pick)
    z = torch.randn(Bg, cfg.z_dim, generator=g).to(dev)
    eps = torch.randn(Bg, cfg.cond_dim, generator=g).to(dev)
    if pairs:  # this rank's generated rows: whole pairs
        pr = Dd.shard(Bg // 2)
        frows = slice(2 * pr.start, 2 * pr.stop)
    else:
        frows = Dd.shard(Bg)
    outs = Gnet(z[frows], eps[frows], sent[frows], words[frows], mask[frows])
    n = len(cfg.stage_sizes)
    fakes, mu, logvar = outs[:n], outs[-2], outs[-1]
    reals = real_pyramid(batch["image"], cfg.stage_sizes)

    loss_d, logs = 0.0, {}
    wrong_n = wrong_w.sum().clamp(min=1)
    for i, (Dn, real, fake) in enumerate(zip(Dnets, reals, fakes)):
        lr_, cr, cw = Dn(real, real_sent[rrows], wrong_sent[rrows])
        lf_, cf = Dn(fake.detach(), sent[frows])
        wrong = (bce(cw, torch.zeros_like(cw), reduction="none") * wrong_w[rrows]).sum() * (Dd.world / wrong_n)
        li = ((gmean(bce(lr_, torch.ones_like(lr_), reduction="none"), B)
               + gmean(bce(cr, torch.ones_like(cr), reduction="none"), B)) / 2
              + (gmean(bce(lf_, torch.zeros_like(lf_), reduction="none"), Bg)
                 + gmean(bce(cf, torch.zeros_like(cf), reduction="none"), Bg) + wrong) / 3)
        loss_d = loss_d + li
        logs["d%d" % i] = li
        logs["d%d_real" % i] = gmean(torch.sigmoid(cr), B)
        logs["d%d_fake" % i] = gmean(torch.sigmoid(cf), Bg)
    opts["D"].zero_grad(set_to_none=True)
    loss_d.backward()
    opts["D"].step()

    adv = 0.0
    for Dn, fake in zip(Dnets, fakes):
        u, c = Dn(fake, sent[frows])
        adv = adv + w.uncond * gmean(bce(u, torch.ones_like(u), reduction="none"), Bg) \
            + gmean(bce(c, torch.ones_like(c), reduction="none"), Bg)
    region, code = img_enc(fakes[-1])
    region, code = Dd.gather(region), Dd.gather(code)  # the contrastive losses see the whole batch
    w0, w1, _ = words_loss(region, words, cap_lens, labels)
    s0, s1, _ = sent_loss(code, sent, labels)
    damsm = w0 + w1 + s0 + s1
    kl = gmean(-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()), Bg)
    loss_g = adv + w.damsm * damsm + w.kl * kl
    if pairs:
        img, noise = fakes[-1].flatten(1), torch.cat([z[frows], eps[frows]], 1)
        ratio = (img[0::2] - img[1::2]).abs().mean(1) / (noise[0::2] - noise[1::2]).abs().mean(1)
        loss_g = loss_g + w.ms * gmean(1.0 / (ratio + 1e-5), Bg // 2)
        logs["ms_ratio"] = gmean(ratio, Bg // 2)
    opts["G"].zero_grad(set_to_none=True)
    loss_g.backward()
    opts["G"].step()
    logs.update(loss_d=loss_d, loss_g=loss_g, adv=adv, damsm=damsm, w_loss=w0 + w1, s_loss=s0 + s1, kl=kl)
    out = {k: float(v.item()) if torch.is_tensor(v) else float(v) for k, v in logs.items()}
    if Dd.enabled:  # every value is this rank's share x world (global terms: the value itself)
        t = torch.tensor([v / Dd.world for v in out.values()], dtype=torch.float64)
        t = Dd.sum_(t.to(Dd.device) if str(Dd.device).startswith("cuda") else t).cpu()
        out = dict(zip(out, t.tolist()))
    return out


def make_optimizers(m: AttnGAN, lr_g: float, lr_d: float) -> dict:
    betas = (0.5, 0.999)
    return {"G": torch.optim.Adam(m.G.parameters(), lr_g, betas=betas),
            "D": torch.optim.Adam(m.Ds.parameters(), lr_d, betas=betas)}


def calibrate_ema(m: AttnGAN, text_enc, ds: data.CUBDataset, seed: int = 0, batches: int = 8,
                  batch: int = 64) -> None:
    """BatchNorm statistics of G_ema over training captions with fresh noise."""
    import random
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)

    dev = next(m.G_ema.parameters()).device

    def inputs(_):
        b = ds.batch(torch.randint(0, len(ds), (batch,), generator=g), rng=rng)
        words, sent, mask = encode_text(text_enc, b["caption"].to(dev), b["cap_len"].to(dev))
        return (torch.randn(batch, m.cfg.z_dim, generator=g).to(dev),
                torch.randn(batch, m.cfg.cond_dim, generator=g).to(dev), sent, words, mask)

    recalibrate_bn(m.G_ema, inputs, batches)


@torch.no_grad()
def generate(G: Generator, text_enc, captions: torch.Tensor, cap_lens: torch.Tensor, seed: int,
             batch: int = 128) -> list[torch.Tensor]:
    """All stages' images for captions (noise from a seeded generator). Returns one tensor per stage."""
    g = torch.Generator().manual_seed(seed)
    dev = next(G.parameters()).device
    n = len(G.cfg.stage_sizes)
    outs = [[] for _ in range(n)]
    for i in range(0, len(captions), batch):
        words, sent, mask = encode_text(text_enc, captions[i:i + batch].to(dev), cap_lens[i:i + batch].to(dev))
        B = sent.shape[0]
        z = torch.randn(B, G.cfg.z_dim, generator=g).to(dev)
        eps = torch.randn(B, G.cfg.cond_dim, generator=g).to(dev)
        res = G(z, eps, sent, words, mask)
        for k in range(n):
            outs[k].append(res[k].cpu())
    return [torch.cat(o) for o in outs]


def write_samples(path: str, m: AttnGAN, text_enc, ds: data.CUBDataset, n_rows: int = 8, n_z: int = 4) -> None:
    """Each row: a real train image, then its caption 0 rendered by each stage (first z), then n_z - 1
    more last-stage images with other z."""
    rows_idx = np.linspace(0, len(ds) - 1, min(n_rows, len(ds))).round().astype(int).tolist()
    b = ds.batch(rows_idx, caption_index=0)
    caps = b["caption"].repeat_interleave(n_z, 0)
    lens = b["cap_len"].repeat_interleave(n_z, 0)
    stages = generate(m.G_ema, text_enc, caps, lens, seed=4321)
    rows = []
    for r in range(len(rows_idx)):
        first = [s[r * n_z] for s in stages]
        rows.append([b["image"][r]] + first + [stages[-1][r * n_z + j] for j in range(1, n_z)])
    save_grid(path, rows)


# ---------------------------------------------------------------- checkpoints

def checkpoint(m: AttnGAN, opts: dict, step: int, seconds: float, ds, args_dict: dict, damsm_path: str) -> dict:
    return {"kind": "attngan", "config": m.cfg.to_dict(), "weights": asdict(m.w), "state": m.state_dict(),
            "opts": {k: o.state_dict() for k, o in opts.items()}, "step": step, "seconds": seconds,
            "class_ids": ds.class_ids, "class_names": ds.class_names, "damsm": os.path.abspath(damsm_path),
            "args": args_dict}


def load_attngan(path: str) -> tuple[AttnGAN, dict]:
    ck = load_checkpoint(path)
    m = AttnGAN(AttnGANConfig.from_dict(ck["config"]), LossWeights(**ck.get("weights", {})))
    m.load_state_dict(ck["state"])
    m.G_ema.eval()
    return m, ck


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(G: Generator, classifier_path: str, damsm_path: str, data_dir: str, seed: int = 0,
             index=None) -> dict:
    """For every real test image of the seen classes, one of its captions (seeded choice) -> one
    generated image (seeded noise). Classifier metrics as CVAE-GAN's (the requested class = the
    caption's class), plus DAMSM R-precision of the generated and of the real test images."""
    import random

    from .scoring import Scorer

    scorer = Scorer.from_checkpoints(classifier_path, damsm_path)
    idx = index if index is not None else data.load_index(data_dir)
    data.use_captions(idx, scorer.captions, "AttnGAN evaluation (fgtrain attngan --classifier)")
    size = G.cfg.stage_sizes[-1]
    test = data.CUBDataset(data_dir, "test", "seen", size, vocab=scorer.vocab, index=idx, seed=seed)
    check_classes(classifier_path, test.class_ids)
    b = test.batch(torch.arange(len(test)), rng=random.Random(seed))
    G.eval()
    gen = generate(G, scorer.text_encoder, b["caption"], b["cap_len"], seed)[-1]
    out = generator_metrics(scorer, test.images, test.labels, gen, test.labels, seed)
    out["r_precision_generated"] = scorer.r_precision(gen, b["caption"], b["cap_len"], test.labels.numpy(),
                                                      seed=seed)
    out["r_precision_real_test"] = scorer.r_precision(test.images, b["caption"], b["cap_len"],
                                                      test.labels.numpy(), seed=seed)
    return out


# ---------------------------------------------------------------- export

def generator_specs(cfg: AttnGANConfig) -> tuple[list, list]:
    from . import export as ex
    Z, C, D = cfg.z_dim, cfg.cond_dim, cfg.text_dim
    ins = [ex.spec("z_code", ["B", Z]), ex.spec("ca_eps", ["B", C]), ex.spec("sent_emb", ["B", D]),
           ex.spec("words_emb", ["B", D, "T"]), ex.spec("words_mask", ["B", "T"])]
    outs = [ex.spec("img%d" % s, ["B", 3, s, s]) for s in cfg.stage_sizes]
    outs += [ex.spec("att%d" % i, ["B", "T", s, s]) for i, s in enumerate(cfg.stage_sizes[:-1], start=1)]
    outs += [ex.spec("mu", ["B", C]), ex.spec("logvar", ["B", C])]
    return ins, outs


def text_specs(D: int) -> tuple[list, list]:
    from . import export as ex
    return ([ex.spec("captions", ["B", "T"], "int64"), ex.spec("cap_lens", ["B"], "int64")],
            [ex.spec("words_emb", ["B", D, "T"]), ex.spec("sent_emb", ["B", D])])


def image_specs(D: int, S: int, R: int) -> tuple[list, list]:
    from . import export as ex
    return ([ex.spec("image", ["B", 3, S, S])],
            [ex.spec("cnn_code", ["B", D]), ex.spec("region_features", ["B", D, R, R])])


def generator_inputs(cfg: AttnGANConfig, text_enc, B: int, T: int, n_words: int, seed: int):
    """Generator inputs from real text-encoder outputs of B captions of length <= T (rows after the
    first are shorter, so padding is exercised) with seeded noise."""
    from .export import text_inputs
    caps, lens = text_inputs(B, T, n_words, seed)
    with torch.no_grad():
        words, sent = text_enc(caps, lens)
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, cfg.z_dim, generator=g), torch.randn(B, cfg.cond_dim, generator=g), sent, words,
            words_mask_from_lens(lens, T))


def export_graphs(out_dir: str, G: Generator, text_enc, img_enc, n_words: int, image_size: int,
                  verify_batches=(1, 4), verify_T=(5, 18), log=print) -> dict:
    """generator.onnx, text_encoder.onnx, image_encoder.onnx (+ golden files), each verified against
    PyTorch at every batch size in verify_batches (and caption length in verify_T for the graphs that
    take words). Returns {role: model.json entry}."""
    from . import export as ex
    from .damsm import CNNCode

    cfg = G.cfg
    D = cfg.text_dim
    os.makedirs(os.path.join(out_dir, "golden"), exist_ok=True)
    text_enc, img_enc, G = text_enc.eval(), CNNCode(img_enc).eval(), G.eval()
    with torch.no_grad():
        R = img_enc(torch.zeros(1, 3, image_size, image_size))[1].shape[-1]
    gen_checks = [generator_inputs(cfg, text_enc, b, t, n_words, 100 * b + t)
                  for b in verify_batches for t in verify_T]
    graphs = {
        "text_encoder": (text_enc, *text_specs(D), ex.text_inputs(2, 6, n_words),
                         [ex.text_inputs(b, t, n_words, 100 * b + t) for b in verify_batches for t in verify_T],
                         ex.text_inputs(3, 12, n_words, seed=3)),
        "generator": (G, *generator_specs(cfg), generator_inputs(cfg, text_enc, 2, 6, n_words, 1),
                      gen_checks, generator_inputs(cfg, text_enc, 3, 12, n_words, 3)),
        "image_encoder": (img_enc, *image_specs(D, image_size, R), ex.image_inputs(2, image_size),
                          [ex.image_inputs(b, image_size, seed=b) for b in verify_batches],
                          ex.image_inputs(3, image_size, 7)),
    }
    entries = {}
    for role, (module, ins, outs, example, checks, golden) in graphs.items():
        path = os.path.join(out_dir, role + ".onnx")
        entries[role] = ex.export_graph(module, example, ins, outs, path)
        ex.write_golden(os.path.join(out_dir, "golden", role + ".json"), module, golden, ins, outs)
        if checks:
            rep = ex.verify(path, module, checks)
            entries[role]["verification"] = rep["max_abs_diff"]
            log("exported %s: max |onnx - torch| = %.2e over %d runs (%s)" % (
                role, rep["max_abs_diff"], len(checks), rep["evaluator"]))
        else:
            entries[role]["verification"] = None
            log("exported %s (not verified)" % role)
    return entries


def write_model(model_dir: str, m: AttnGAN, ck: dict, data_dir: str, damsm_path: str, metrics: dict | None,
                scorer: str = "classifier-birds", log=print, name: str | None = None,
                scorer_classes=None) -> dict:
    """The model directory; name defaults to the directory's name. A scorer whose classes do not
    include the generator's (scorer_classes, or the scorer's model dir beside model_dir) is refused."""
    from . import export as ex

    name = name or os.path.basename(os.path.normpath(model_dir))
    known = ex.scorer_classes(os.path.dirname(os.path.abspath(model_dir)), scorer)
    ex.check_scorer(name, ck["class_names"], scorer, known if known is not None else scorer_classes)
    from .damsm import load_damsm
    from .tokenizer import golden_tokenizer

    text_enc, img_enc, vocab = load_damsm(damsm_path)
    cfg = m.cfg
    S = cfg.stage_sizes[-1]
    entries = export_graphs(model_dir, m.G_ema, text_enc, img_enc, len(vocab), S, log=log)
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
                            "loss_weights": ck["weights"], "batch": ck["args"].get("batch"),
                            "damsm": damsm_path, "verification": verification})
    desc = ("AttnGAN (Xu et al., CVPR 2018) text-to-image generator for birds, stages %s, with the "
            "frozen DAMSM text encoder it was trained with and the DAMSM image encoder (R-precision)."
            % "/".join(str(s) for s in cfg.stage_sizes))
    notes = ("Trained on train images and captions of seen classes only. The exported generator is the "
             "EMA copy (BatchNorm statistics recomputed over training captions). Noise (`z_code`, "
             "`ca_eps`) is an input; ca_eps = 0 gives the mean of conditioning augmentation. The "
             "padding mask is applied per sample; attention over padding words is exactly 0. Graphs "
             "verified against PyTorch (max abs diff <= 1e-4) at batch sizes 1 and 4 and caption "
             "lengths 5 and 18, with padded rows.")
    captions = ck["args"].get("captions", "text")
    if captions == "attributes":
        notes += (" Its captions were made from CUB's attribute annotations (attributes present with "
                  "certainty 'probably' or 'definitely', as sentences), not written by people: it knows "
                  "attribute phrases, not free descriptions.")
    return ex.write_model_dir(model_dir, name, "attngan", entries, sizes, desc, vocab=vocab,
                              classes=ex.classes_json(idx, ck["class_ids"]),
                              metrics=with_how(metrics) if metrics else None, training=training,
                              scorer=scorer, notes=notes, extra={"captions": captions})


REFERENCE_WORDS = 5450  # the reference CUB vocabulary size


def export_reference(out_dir: str, seed: int = 0, verify: bool = True, log=print) -> dict:
    """A random-weight model directory with the reference AttnGAN shape (stages 64/128/256, gf_dim 32,
    256-d text, 5,450 words, captions of up to 25 words), for testing the serving side at full size."""
    from . import export as ex
    from .damsm import ImageEncoder, TextEncoder
    from .tokenizer import Vocab

    torch.manual_seed(seed)
    cfg = AttnGANConfig.reference()
    G = Generator(cfg).eval()
    text_enc = TextEncoder(REFERENCE_WORDS, hidden=cfg.text_dim // 2).eval()
    img_enc = ImageEncoder(cfg.text_dim).eval()
    words = {"<pad>": 0}
    for w in ("this bird has a an and the with of is small large red blue yellow black white brown "
              "grey green orange purple wings wing crown breast belly head tail bill beak eye ring "
              "short long pointed hooked spotted striped feathers body throat back").split():
        words.setdefault(w, len(words))
    while len(words) < REFERENCE_WORDS:
        words["word%04d" % len(words)] = len(words)
    vocab = Vocab(words, max_words=cfg.max_words)
    S = cfg.stage_sizes[-1]
    entries = export_graphs(out_dir, G, text_enc, img_enc, len(vocab), S,
                            verify_batches=(1, 2) if verify else (), verify_T=(5, 25), log=log)
    for e in entries.values():
        e.pop("verification")
    sizes = {"z_dim": cfg.z_dim, "cond_dim": cfg.cond_dim, "text_dim": cfg.text_dim, "max_words": cfg.max_words,
             "image_size": S, "stage_sizes": list(cfg.stage_sizes), "vocab_size": len(vocab)}
    return ex.write_model_dir(out_dir, "attngan-reference", "attngan", entries, sizes,
                              "Random weights in the shape of the reference AttnGAN bird model "
                              "(taoxugit/AttnGAN): for load and shape tests of the serving side, not "
                              "for use.", vocab=vocab, training={"seed": seed, "random_weights": True,
                                                                  "config": cfg.to_dict()},
                              notes="Untrained: images are noise-like. Generated by "
                                    "`python3 -m fgtrain attngan --export-reference DIR`.")


# ---------------------------------------------------------------- training loop

def train(args) -> tuple[AttnGAN, dict | None]:
    """Train or continue (--resume; the configuration and loss weights then come from the
    checkpoint) within --minutes; returns the model and the final checkpoint dict (None on ranks
    other than 0 of a distributed run, which write nothing)."""
    import random

    from . import dist as fdist
    from .damsm import load_damsm_model

    Dd = fdist.init(args.device)
    device, main = Dd.device, Dd.is_main
    os.makedirs(args.out, exist_ok=True)
    log = Logger(args.out, "attngan") if main else fdist.NullLogger()
    dm, vocab, dck = load_damsm_model(args.damsm)
    text_enc, img_enc = dm.text, dm.image
    for p in list(text_enc.parameters()) + list(img_enc.parameters()):
        p.requires_grad_(False)
    text_enc.to(device)
    img_enc.to(device)
    idx = data.load_index(args.data)
    captions = (dck.get("config") or {}).get("captions", "text")  # the DAMSM's caption source
    data.use_captions(idx, captions, "fgtrain attngan")
    ds = data.CUBDataset(args.data, "train", "seen", args.size, vocab=vocab, index=idx, seed=args.seed)
    keep = (ds.caption_lens > 0).any(1).nonzero().flatten()  # images with an encodable caption
    if len(keep) == 0:
        raise ValueError("fgtrain attngan: no train image of a seen class has a caption the DAMSM's "
                         "vocabulary can encode")
    path = os.path.join(args.out, "attngan.pt")
    step, seconds = 0, 0.0
    ck = None
    if args.resume and os.path.exists(path):
        m, ck = load_attngan(path)
        m.to(device)
    else:
        cfg = AttnGANConfig(text_dim=text_enc.out_dim, ngf=args.ngf, ndf=args.ndf,
                            stage_sizes=[args.size // 2, args.size], n_res=args.n_res,
                            max_words=vocab.max_words)
        m = AttnGAN(cfg, loss_weights(args)).to(device)
    nets = {"G": Dd.wrap(m.G), "Ds": [Dd.wrap(StageLogits(D)) for D in m.Ds]}  # before the optimizers
    opts = make_optimizers(m, args.lr_g, args.lr_d)
    if ck:
        for k, o in opts.items():
            o.load_state_dict(ck["opts"][k])
        step, seconds = ck["step"], ck["seconds"]
        log(event="resume", step=step, seconds=round(seconds, 1))
    args_dict = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}
    args_dict.update(processes=Dd.world, captions=captions)
    budget = fdist.budget(Budget(args.minutes, seconds, step + args.quick_steps if args.quick else None, step), Dd)
    log(event="start", train=len(keep), vocab=len(vocab), params_G=n_params(m.G), params_D=n_params(m.Ds),
        minutes=args.minutes, batch=args.batch, stages=m.cfg.stage_sizes, captions=captions,
        processes=Dd.world)
    g = torch.Generator().manual_seed(args.seed * 1000003 + step)
    rng = random.Random(args.seed * 7919 + step)
    n, B = len(keep), min(args.batch, len(keep))
    perm, pos = keep[torch.randperm(n, generator=g)], 0

    calib = dict(batches=1, batch=16) if args.quick else {}  # BatchNorm statistics of G_ema

    def save(step: int, final: bool = False):
        if not main:
            return None
        calibrate_ema(m, text_enc, ds, seed=args.seed, **calib)
        ck = checkpoint(m, opts, step, budget.elapsed(), ds, args_dict, args.damsm)
        save_atomic(ck, path)
        write_samples(os.path.join(args.out, "samples", "attngan_%06d.png" % step), m, text_enc, ds)
        log(event="checkpoint", step=step, s=round(budget.elapsed(), 1), final=final)
        return ck

    def next_batch():
        nonlocal perm, pos
        if pos + B > n:
            perm, pos = keep[torch.randperm(n, generator=g)], 0
        ids = perm[pos:pos + B]  # the global batch (captions for all of it; images: this rank's rows)
        rows = Dd.shard(len(ids))
        b = ds.batch(ids, rng=rng)
        b["image"] = b["image"][rows]
        b = {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}
        b["rows"] = rows
        pos += B
        return b

    m.G.train()
    m.Ds.train()
    step = run_steps(m, args, budget, log, save, step, next_batch,
                     lambda b, _step: train_step(m, opts, text_enc, img_enc, b, g, nets=nets, dist=Dd))
    ck = save(step, final=True)
    Dd.barrier()
    return m, ck


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m fgtrain attngan", description=__doc__.split("\n")[0])
    p.add_argument("--data", help="data set root (CUB layout)")
    p.add_argument("--out", help="run directory: checkpoint, log, samples")
    p.add_argument("--damsm", help="pretrained DAMSM checkpoint (damsm.pt), frozen")
    p.add_argument("--classifier", help="fidelity classifier checkpoint, for the metrics")
    p.add_argument("--model-dir", help="model directory to export (default <out>/attngan-birds)")
    p.add_argument("--export-reference", metavar="DIR",
                   help="only write a random-weight reference-architecture model directory")
    p.add_argument("--no-verify", action="store_true",
                   help="with --export-reference: skip verifying the graphs (about a minute at 256x256)")
    p.add_argument("--quick", action="store_true", help="a few steps (tests)")
    p.add_argument("--quick-steps", type=int, default=2)
    p.add_argument("--minutes", type=float, default=45.0, help="training budget, resumes included")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--size", type=int, default=64, help="last stage size (the first is half)")
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--ndf", type=int, default=32)
    p.add_argument("--n-res", type=int, default=1)
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
    p.add_argument("--eval-only", action="store_true", help="evaluate/export <out>/attngan.pt, no training")
    for f in LossWeights.__dataclass_fields__:
        p.add_argument("--w-" + f.replace("_", "-"), dest="w_" + f, type=float, default=None,
                       help="loss weight %s (default %s)" % (f, getattr(LossWeights(), f)))
    return p


def main(argv) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.skip_missing:
        data.SKIP_MISSING = True
    setup(args.threads, args.seed)
    if args.export_reference:
        export_reference(args.export_reference, args.seed, verify=not args.no_verify)
        return 0
    if not (args.data and args.out):
        p.error("--data and --out are required")
    path = os.path.join(args.out, "attngan.pt")
    model_dir = args.model_dir or os.path.join(args.out, "attngan-birds")
    if args.eval_only:
        m, ck = load_attngan(path)
        args.damsm = args.damsm or ck["damsm"]
    elif not args.damsm:
        p.error("--damsm is required for training")
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
    log = Logger(args.out, "attngan")
    metrics = None
    if args.classifier:
        metrics = evaluate(m.G_ema, args.classifier, args.damsm, args.data, seed=args.seed)
        log(event="eval", steps=ck["step"], **metrics)
        with open(os.path.join(args.out, "attngan_metrics.json"), "w", encoding="utf-8") as f:
            json.dump({**metrics, "steps": ck["step"], "seconds": round(ck["seconds"], 1)}, f, indent=1)
    if not args.no_export:
        write_model(model_dir, m, ck, args.data, args.damsm, metrics, log=lambda s: log(event="export", msg=s),
                    name=args.name, scorer=args.scorer)
    return 0
