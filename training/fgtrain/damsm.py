"""DAMSM (Deep Attentional Multimodal Similarity Model, Xu et al. 2018, AttnGAN) for 64x64 images.

TextEncoder:  captions [B,T] int64 (0 = padding), cap_lens [B] -> words_emb [B,256,T], sent_emb [B,256]
ImageEncoder: image [B,3,64,64] in [-1,1] -> region_features [B,256,8,8], cnn_code [B,256]

The bi-LSTM is two unidirectional LSTMs over the padded sequence, the backward one over each caption
reversed within its own length (a gather), so no packing is needed and the ONNX graph is correct for any
B, T and lengths. Outputs at padding positions are zero, as with pad_packed_sequence.

The image encoder's trunk has the classifier's architecture (classifier.Trunk), so it can start from
the trained classifier, as AttnGAN's starts from an ImageNet Inception-v3.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import load_checkpoint
from .classifier import Trunk
from .tokenizer import Vocab

GAMMA1, GAMMA2, GAMMA3 = 4.0, 5.0, 10.0


def run_lstm(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """Outputs [B,T,H] of a one-layer, one-direction, batch-first LSTM from zero state.

    During ONNX export this is the nn.LSTM itself (an ONNX LSTM node with a dynamic T). Otherwise
    the same equations run step by step with the products as 1x1 convolutions, which use oneDNN:
    Debian's torch sends nn.LSTM's matrix products to the reference BLAS, 3x slower here. The two
    paths agree to float rounding (the export tests compare them)."""
    if torch.onnx.is_in_onnx_export():
        return lstm(x)[0]
    B, T, _ = x.shape
    H = lstm.hidden_size
    gates_x = F.conv1d(x.transpose(1, 2), lstm.weight_ih_l0.unsqueeze(2),
                       lstm.bias_ih_l0 + lstm.bias_hh_l0)  # [B,4H,T]
    w_hh = lstm.weight_hh_l0.unsqueeze(2)
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    outs = []
    for t in range(T):
        z = gates_x[:, :, t] + F.conv1d(h.unsqueeze(2), w_hh).squeeze(2)
        i, f, g, o = z.chunk(4, 1)  # PyTorch's gate order
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1) if outs else x.new_zeros(B, 0, H)


class TextEncoder(nn.Module):
    def __init__(self, n_words: int, emb_dim: int = 300, hidden: int = 128, dropout: float = 0.5):
        super().__init__()
        self.n_words, self.emb_dim, self.hidden = n_words, emb_dim, hidden
        self.out_dim = 2 * hidden
        from .dist import RowDropout
        self.embed = nn.Embedding(n_words, emb_dim, padding_idx=0)
        self.drop = RowDropout(dropout)
        self.fwd = nn.LSTM(emb_dim, hidden, batch_first=True)
        self.bwd = nn.LSTM(emb_dim, hidden, batch_first=True)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)

    def forward(self, captions: torch.Tensor, cap_lens: torch.Tensor):
        B, T = captions.shape[0], captions.shape[1]
        lens = cap_lens.to(torch.long).view(-1, 1)  # [B,1]
        t = torch.arange(T, device=captions.device).view(1, -1)  # [1,T]
        valid = t < lens  # [B,T]
        # reverse each caption within its length; padding stays where it is (an involution)
        rev = torch.where(valid, lens - 1 - t, t)  # [B,T]

        emb = self.drop(self.embed(captions))  # [B,T,E]
        out_f = run_lstm(self.fwd, emb)  # [B,T,H]
        emb_r = torch.gather(emb, 1, rev.unsqueeze(2).expand(-1, -1, emb.shape[2]))
        out_r = run_lstm(self.bwd, emb_r)
        out_b = torch.gather(out_r, 1, rev.unsqueeze(2).expand(-1, -1, out_r.shape[2]))

        words = torch.cat([out_f, out_b], dim=2) * valid.unsqueeze(2).to(out_f.dtype)  # [B,T,2H]
        last = (lens - 1).clamp(min=0).unsqueeze(2).expand(-1, 1, out_f.shape[2])  # [B,1,H]
        h_f = torch.gather(out_f, 1, last)[:, 0, :]  # (not squeeze: that exports an If)
        h_b = out_b[:, 0, :]  # the backward LSTM ends at the first word
        sent = torch.cat([h_f, h_b], dim=1)
        return words.transpose(1, 2), sent


class ImageEncoder(nn.Module):
    """Regional features from the trunk's 8x8 stage, cnn_code from its pooled last stage."""

    def __init__(self, out_dim: int = 256, width: int = 32):
        super().__init__()
        self.trunk = Trunk(width)
        self.out_dim = out_dim
        self.emb_features = nn.Conv2d(self.trunk.region_channels, out_dim, 1, bias=False)
        self.emb_cnn_code = nn.Linear(self.trunk.out_channels, out_dim)
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)
        nn.init.uniform_(self.emb_cnn_code.weight, -0.1, 0.1)

    def forward(self, image: torch.Tensor):
        region, last = self.trunk(image, return_region=True)
        return self.head(region, last)

    def head(self, region: torch.Tensor, last: torch.Tensor):
        """(region_features [B,D,R,R], cnn_code [B,D]) from the trunk's two outputs."""
        return self.emb_features(region), self.emb_cnn_code(last.mean(dim=(2, 3)))


class CNNCode(nn.Module):
    """Export wrapper: image -> (cnn_code, region_features)."""

    def __init__(self, enc: ImageEncoder):
        super().__init__()
        self.enc = enc

    def forward(self, image):
        features, code = self.enc(image)
        return code, features


def _same_class(class_ids):
    if class_ids is None:
        return None
    c = class_ids.view(-1)
    m = c.view(-1, 1) == c.view(1, -1)
    m.fill_diagonal_(False)
    return m


def attention_similarity(img_features: torch.Tensor, words: torch.Tensor, words_mask: torch.Tensor,
                         gamma1: float = GAMMA1, gamma2: float = GAMMA2) -> torch.Tensor:
    """Word-level image-caption matching score R(Q, D), for every image x caption pair.

    img_features [Bi,D,R,R], words [Bc,D,T], words_mask [Bc,T] (True = padding).
    Returns [Bi, Bc]: log sum_t exp(gamma2 * cos(word_t, attended region context_t)).
    """
    Bi, D = img_features.shape[:2]
    Bc, T = words.shape[0], words.shape[2]
    ctx = img_features.reshape(Bi, D, -1)  # [Bi,D,N]
    N = ctx.shape[2]
    # The products below are written as 1x1 convolutions: they run on oneDNN, while matmul in
    # Debian's torch goes to the reference BLAS (10x slower on this machine's CPUs).
    ctx_t = ctx.transpose(1, 2).reshape(Bi * N, D, 1, 1)
    # s[c, i, n, t] = word t of caption c . region n of image i
    s = F.conv2d(words.unsqueeze(3), ctx_t).view(Bc, Bi, N, T)
    pad = words_mask.view(Bc, 1, 1, T)
    a = torch.softmax(s.masked_fill(pad, torch.finfo(s.dtype).min), dim=3)  # over words (Eq. 8)
    a = torch.softmax(a * gamma1, dim=2)  # over regions (Eq. 9)
    # The attended context c = sum_n a_n region_n is never built: c.w = sum_n a_n s_n and
    # |c|^2 = a^T G a with G the regions' Gram matrix, so memory stays [Bc,Bi,N,T], not [Bc,Bi,D,T].
    num = (a * s).sum(2)  # [Bc,Bi,T]
    gram = F.conv2d(ctx.reshape(1, Bi * D, N, 1), ctx_t, groups=Bi).view(Bi * N, N, 1, 1)  # G[i,n,m]
    ga = F.conv2d(a.reshape(Bc, Bi * N, T, 1), gram, groups=Bi).view(Bc, Bi, N, T)
    cnorm = (a * ga).sum(2).clamp(min=1e-12).sqrt()  # [Bc,Bi,T]
    wnorm = words.norm(dim=1).unsqueeze(1)  # [Bc,1,T]
    cos = num / (cnorm * wnorm).clamp(min=1e-8)
    r = (cos * gamma2).masked_fill(words_mask.unsqueeze(1), float("-inf"))
    return torch.logsumexp(r, dim=2).t()


def words_loss(img_features, words_emb, cap_lens, class_ids=None, gamma3: float = GAMMA3,
               gamma1: float = GAMMA1, gamma2: float = GAMMA2):
    """DAMSM word loss. Pair i (image i, caption i) is the positive; captions/images of the same
    class (other than i) are removed from the negatives when class_ids is given.
    Returns (loss_image_to_caption, loss_caption_to_image, sim [B,B])."""
    T = words_emb.shape[2]
    mask = torch.arange(T, device=words_emb.device).view(1, -1) >= cap_lens.view(-1, 1)
    sim = attention_similarity(img_features, words_emb, mask, gamma1, gamma2) * gamma3
    return _pair_losses(sim, class_ids)


def sent_loss(cnn_code, sent_emb, class_ids=None, gamma3: float = GAMMA3, eps: float = 1e-8):
    """DAMSM sentence loss (cosine similarity scaled by gamma3)."""
    sim = cosine_matrix(cnn_code, sent_emb) * gamma3
    return _pair_losses(sim, class_ids)


def cosine_matrix(a, b, eps: float = 1e-8):
    return (a @ b.t()) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True).t()).clamp(min=eps)


def _pair_losses(sim, class_ids):
    m = _same_class(class_ids)
    if m is not None:
        sim = sim.masked_fill(m, float("-inf"))
    labels = torch.arange(sim.shape[0], device=sim.device)
    return F.cross_entropy(sim, labels), F.cross_entropy(sim.t(), labels), sim


class DAMSM(nn.Module):
    def __init__(self, n_words: int, text_dim: int = 256, width: int = 32):
        super().__init__()
        self.text = TextEncoder(n_words, hidden=text_dim // 2)
        self.image = ImageEncoder(text_dim, width)

    def losses(self, images, captions, cap_lens, class_ids=None, trunk_out=None):
        """DAMSM losses; trunk_out = (region, last) of a frozen trunk replaces `images`."""
        words, sent = self.text(captions, cap_lens)
        feats, code = self.image.head(*trunk_out) if trunk_out is not None else self.image(images)
        w0, w1, _ = words_loss(feats, words, cap_lens, class_ids)
        s0, s1, _ = sent_loss(code, sent, class_ids)
        return dict(w0=w0, w1=w1, s0=s0, s1=s1, total=w0 + w1 + s0 + s1)


def save_damsm(path: str, model: DAMSM, vocab: Vocab, extra: dict | None = None) -> None:
    torch.save({"kind": "damsm", "n_words": model.text.n_words, "text_dim": model.text.out_dim,
                "width": model.image.trunk.width, "state": model.state_dict(),
                "vocab": vocab.to_json(), **(extra or {})}, path)


def load_damsm_model(path: str):
    ck = load_checkpoint(path)
    model = DAMSM(ck["n_words"], ck["text_dim"], ck["width"])
    model.load_state_dict(ck["state"])
    model.eval()
    return model, Vocab.from_json(ck["vocab"]), ck


def load_damsm(path: str):
    """-> (text_encoder, image_encoder, vocab), both encoders in eval mode; for AttnGAN."""
    model, vocab, _ = load_damsm_model(path)
    return model.text, model.image, vocab


# ---------------------------------------------------------------- training


def _class_balanced_batch(labels: torch.Tensor, batch: int, g: torch.Generator) -> torch.Tensor:
    """Indices of a batch with as many distinct classes as possible (one image per class first)."""
    classes = labels.unique()
    order = classes[torch.randperm(len(classes), generator=g)]
    picks = []
    while len(picks) < batch:
        for c in order.tolist():
            pool = (labels == c).nonzero().flatten()
            picks.append(int(pool[torch.randint(len(pool), (1,), generator=g)]))
            if len(picks) == batch:
                break
        order = classes[torch.randperm(len(classes), generator=g)]
    return torch.tensor(picks, dtype=torch.long)


@torch.no_grad()
def _trunk_cache(trunk, ds, batch: int = 128):
    """Trunk outputs (region [2,N,C,8,8], last [2,N,C,4,4]) of every image and its mirror image."""
    from .data import to_float
    trunk.eval()
    dev = next(trunk.parameters()).device
    regions, lasts = [], []
    for flip in (False, True):
        rs, ls = [], []
        for i in range(0, len(ds), batch):
            x = to_float(ds.images[i:i + batch]).to(dev)
            r, l = trunk(x.flip(3) if flip else x, return_region=True)
            rs.append(r)
            ls.append(l)
        regions.append(torch.cat(rs))
        lasts.append(torch.cat(ls))
    return torch.stack(regions), torch.stack(lasts)


@torch.no_grad()
def evaluate(model: DAMSM, ds, folds: int = 3, seed: int = 0, batch: int = 128) -> dict:
    """R-precision (1 true caption among 100, 99 from other classes) of real images of `ds`
    with their own captions (a random one per image and fold), and the mean sentence loss. Images
    without an encodable caption are left out."""
    from .metrics import r_precision
    model.eval()
    dev = next(model.parameters()).device
    pos = (ds.caption_lens > 0).any(1).nonzero().flatten().tolist()
    n = len(pos)
    codes = []
    for i in range(0, n, batch):
        _, c = model.image(ds.batch(pos[i:i + batch])["image"].to(dev))
        codes.append(c.cpu())
    codes = torch.cat(codes).double().numpy()
    rng = __import__("random").Random(seed)
    scores = []
    for f in range(folds):
        sents = []
        for i in range(0, n, batch):
            b = ds.batch(pos[i:i + batch], rng=rng)
            T = int(b["cap_len"].max())
            _, s = model.text(b["caption"][:, :T].to(dev), b["cap_len"].to(dev))
            sents.append(s.cpu())
        sents = torch.cat(sents).double().numpy()
        scores.append(r_precision(codes, sents, ds.labels[pos].numpy(), seed=seed + f))
    return {"r_precision": float(sum(scores) / len(scores)),
            "r_precision_std": float(torch.tensor(scores).std()) if len(scores) > 1 else 0.0,
            "n": n, "folds": folds}


class _LocalStep(nn.Module):
    """One rank's part of a DAMSM step as one forward (what DistributedDataParallel wraps): the text
    encoder on its captions and the image encoder (or its head, on cached trunk outputs)."""

    def __init__(self, model: DAMSM):
        super().__init__()
        self.model = model

    def forward(self, captions, cap_lens, images=None, region=None, last=None):
        words, sent = self.model.text(captions, cap_lens)
        if images is not None:
            feats, code = self.model.image(images)
        else:
            feats, code = self.model.image.head(region, last)
        return words, sent, feats, code


def train(data_dir: str, out_dir: str, minutes: float = 8.0, quick: bool = False,
          resume: bool = False, seed: int = 0, batch: int = 48, lr: float = 2e-3, width: int = 32,
          init_classifier: str | None = None, freeze_trunk: bool | None = None,
          ckpt_every: int = 200, eval_every: int = 500, size: int = 64, max_words: int = 18,
          device: str = "cpu", log=None, name: str = "damsm", captions: str = "text") -> dict | None:
    """Train (or continue) DAMSM; writes <out>/<name>.pt (with the vocabulary). Returns metrics (None
    on ranks other than 0 of a distributed run).

    Two DAMSMs are trained for the sample models and share nothing: damsm.pt (trunk from lossnet.pt),
    the one AttnGAN trains against, and damsm_scorer.pt (trunk from classifier.pt), the scorer's
    separately named text-similarity measure.

    captions: "text" (the caption files; a NoCaptionsError says where to get them when there are
    none) or "attributes" (sentences made from CUB's certain attribute annotations; recorded in the
    checkpoint's config, and so in the model card). Only images with an encodable caption are used.

    With init_classifier, the image encoder's trunk starts from the classifier's and, by default
    (freeze_trunk=None), stays frozen as AttnGAN keeps its Inception-v3: its outputs for every
    train image and its mirror image are computed once, and a step trains the text encoder and
    the image encoder's two projections only. Under torchrun every rank encodes its share of the
    batch and the losses (whose negatives are the rest of the batch) are computed on the gathered
    global batch, as one process would."""
    import os

    from . import Budget, Logger, cosine_lr, data
    from . import dist as fdist

    D = fdist.init(device)
    device, main = D.device, D.is_main
    os.makedirs(out_dir, exist_ok=True)
    log = log or (Logger(out_dir, name) if main else fdist.NullLogger())
    path = os.path.join(out_dir, name + ".pt")
    idx = data.load_index(data_dir)
    ck = load_checkpoint(path) if resume and os.path.exists(path) else None
    captions = (ck or {}).get("config", {}).get("captions", captions)
    data.use_captions(idx, captions, "fgtrain damsm")  # NoCaptionsError: what is missing, where to get it
    vocab = Vocab.from_json(ck["vocab"]) if ck else data.build_vocab(data_dir, max_words, idx)
    if len(vocab) <= 1:
        raise ValueError("fgtrain damsm: the captions of the train images of seen classes give no word")
    train_ds = data.CUBDataset(data_dir, "train", "seen", size, vocab=vocab, index=idx, seed=seed)
    test_ds = data.CUBDataset(data_dir, "test", "seen", size, vocab=vocab, index=idx, seed=seed)
    usable = (train_ds.caption_lens > 0).any(1)  # images with an encodable caption
    if not usable.any():
        raise ValueError("fgtrain damsm: no train image of a seen class has an encodable caption")
    width = ck["width"] if ck else width
    model = DAMSM(len(vocab), 256, width)
    trunk_ids = {id(p) for p in model.image.trunk.parameters()}
    trunk_lr = 1.0
    if init_classifier and not ck:
        from .classifier import load_classifier
        clf, cck = load_classifier(init_classifier)
        if cck["config"].get("arch", "cnn") != "cnn":
            raise ValueError("--init-classifier %s is a %s classifier; the DAMSM image trunk is the cnn "
                             "one: train a classifier with --arch cnn, or pass --init-classifier none"
                             % (init_classifier, cck["config"].get("arch")))
        if cck["config"].get("width", 32) != width:
            raise ValueError("init classifier has width %s, DAMSM %s" % (cck["config"].get("width"), width))
        model.image.trunk.load_state_dict(clf.trunk.state_dict())
        trunk_lr = 0.2
        log(event="init", trunk_from=init_classifier)
    elif ck and ck.get("config", {}).get("init_classifier"):
        trunk_lr = 0.2
    if freeze_trunk is None:
        freeze_trunk = bool((ck or {}).get("config", {}).get("freeze_trunk", bool(init_classifier)))
    if freeze_trunk:
        for p in model.image.trunk.parameters():
            p.requires_grad_(False)
    if ck:
        model.load_state_dict(ck["state"])
    model.to(device)
    step_net = D.wrap(_LocalStep(model))  # (BatchNorm made synchronous: new parameters)
    trunk_ids = {id(p) for p in model.image.trunk.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in trunk_ids], "scale": 1.0}]
    if not freeze_trunk:
        groups.append({"params": list(model.image.trunk.parameters()), "scale": trunk_lr})
    opt = torch.optim.Adam(groups, lr=lr, betas=(0.5, 0.999))
    step, seconds = 0, 0.0
    if ck:
        if ck.get("opt"):
            opt.load_state_dict(ck["opt"])
        step, seconds = ck["step"], ck["seconds"]
        log(event="resume", step=step, seconds=round(seconds, 1))
    config = {"width": width, "batch": batch, "lr": lr, "size": size, "seed": seed,
              "data": data_dir, "max_words": max_words,
              "init_classifier": init_classifier or (ck or {}).get("config", {}).get("init_classifier"),
              "freeze_trunk": freeze_trunk, "device": str(device), "captions": captions,
              "processes": D.world}
    budget = fdist.budget(Budget(minutes, seconds, step + 8 if quick else None, step), D)
    log(event="start", vocab=len(vocab), train=int(usable.sum()), test=len(test_ds),
        without_caption=int((~usable).sum()), classes=len(train_ds.class_ids), minutes=minutes,
        captions=captions, processes=D.world)
    g = torch.Generator().manual_seed(seed + step)
    rng = __import__("random").Random(seed + step)
    metrics: dict = {}

    def save():
        tmp = path + ".tmp"
        save_damsm(tmp, model, vocab, {"opt": opt.state_dict(), "step": step,
                                        "seconds": budget.elapsed(), "config": config,
                                        "metrics": metrics, "class_ids": train_ds.class_ids})
        os.replace(tmp, path)

    cache = _trunk_cache(model.image.trunk, train_ds) if freeze_trunk else None
    if cache is not None:
        log(event="trunk_cache", images=len(train_ds), s=round(budget.elapsed(), 1))
    pool = usable.nonzero().flatten()
    run = None
    while not budget.done():
        model.train()
        if freeze_trunk:
            model.image.trunk.eval()  # frozen BatchNorm statistics
        ids = pool[_class_balanced_batch(train_ds.labels[pool], min(batch, len(pool)), g)]
        b = train_ds.batch(ids, rng=rng)  # the global batch: every rank draws the same
        T = int(b["cap_len"].max())
        rows = D.shard(len(ids))
        for grp in opt.param_groups:
            grp["lr"] = cosine_lr(lr, budget.frac()) * grp["scale"]
        caps, lens = b["caption"][rows, :T].to(device), b["cap_len"][rows].to(device)
        with fdist.batch_rows(len(ids), rows):
            if cache is not None:
                flip = torch.randint(0, 2, (len(ids),), generator=g)[rows].to(device)
                di = ids[rows].to(device)
                words, sent, feats, code = step_net(caps, lens, region=cache[0][flip, di], last=cache[1][flip, di])
            else:
                x = data.augment(b["image"][rows], g, jitter=0.0, total=len(ids), rows=rows).to(device)
                words, sent, feats, code = step_net(caps, lens, images=x)
        if D.enabled:  # the losses' negatives are the whole global batch
            words, sent, feats, code = (D.gather(t) for t in (words, sent, feats, code))
        all_lens, cls = b["cap_len"].to(device), b["class_id"].to(device)
        w0, w1, _ = words_loss(feats, words, all_lens, cls)
        s0, s1, _ = sent_loss(code, sent, cls)
        L = dict(w0=w0, w1=w1, s0=s0, s1=s1, total=w0 + w1 + s0 + s1)
        opt.zero_grad(set_to_none=True)
        L["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.text.parameters(), 0.25)
        opt.step()
        step += 1
        budget.step = step
        v = {k: t.item() for k, t in L.items()}
        run = v["total"] if run is None else 0.95 * run + 0.05 * v["total"]
        if step % 50 == 0 or quick:
            log(step=step, avg=run, s=round(budget.elapsed(), 1), lr=opt.param_groups[0]["lr"], **v)
        if step % eval_every == 0 and main:
            metrics = evaluate(model, test_ds, folds=1)
            log(step=step, eval="test", **metrics)
        if step % ckpt_every == 0 and main:
            save()
    if not main:
        D.barrier()
        return None
    metrics = evaluate(model, test_ds, folds=1 if quick else 5)
    metrics.update(steps=step, seconds=round(budget.elapsed(), 1))
    save()
    log(event="done", **metrics)
    D.barrier()
    return metrics
