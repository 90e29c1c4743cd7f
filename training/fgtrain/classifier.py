"""Fidelity classifier: a compact CNN for 64x64 fine-grained images.

image [B,3,64,64] in [-1,1] -> logits [B,K], features [B,256] (penultimate, pooled), attributes [B,A]
(multi-label logits). Trained on train images of seen classes only, with random crop/flip and small
colour jitter, cross-entropy (label smoothing 0.1) + 0.5 x attribute BCE, AdamW, cosine schedule over a
wall-clock budget.
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import Budget, Logger, cosine_lr, data, load_checkpoint


def conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Trunk(nn.Module):
    """64 -> 32 -> 16 -> 8 -> 4. Returns the 4x4 map, or (8x8 map, 4x4 map) with return_region."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.width = w
        self.stem = nn.Sequential(conv_bn(3, w), conv_bn(w, 2 * w, 2))  # 32x32
        self.s16 = nn.Sequential(conv_bn(2 * w, 4 * w, 2), conv_bn(4 * w, 4 * w))  # 16x16
        self.s8 = conv_bn(4 * w, 8 * w, 2)  # 8x8 (DAMSM regions)
        self.s4 = conv_bn(8 * w, 8 * w, 2)  # 4x4
        self.region_channels = 8 * w
        self.out_channels = 8 * w

    def forward(self, x, return_region: bool = False):
        r = self.s8(self.s16(self.stem(x)))
        y = self.s4(r)
        return (r, y) if return_region else y


class Classifier(nn.Module):
    def __init__(self, num_classes: int, num_attributes: int, width: int = 32, dropout: float = 0.2):
        super().__init__()
        self.num_classes, self.num_attributes = num_classes, num_attributes
        self.trunk = Trunk(width)
        self.feature_dim = self.trunk.out_channels
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.feature_dim, num_classes)
        self.attr = nn.Linear(self.feature_dim, max(1, num_attributes))

    def forward(self, image):
        features = self.trunk(image).mean(dim=(2, 3))
        h = self.drop(features)
        return self.fc(h), features, self.attr(h)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def save_checkpoint(path, model, opt, step, seconds, ds, metrics, config):
    tmp = path + ".tmp"
    torch.save({"kind": "classifier", "state": model.state_dict(),
                "opt": opt.state_dict() if opt is not None else None, "step": step,
                "seconds": seconds, "class_ids": ds.class_ids, "class_names": ds.class_names,
                "attr_names": ds.attr_names, "metrics": metrics, "config": config}, tmp)
    os.replace(tmp, path)


def load_classifier(path: str):
    """-> (model in eval mode, checkpoint dict)."""
    ck = load_checkpoint(path)
    cfg = ck["config"]
    m = Classifier(len(ck["class_ids"]), len(ck["attr_names"]), cfg.get("width", 32))
    m.load_state_dict(ck["state"])
    m.eval()
    return m, ck


@torch.no_grad()
def evaluate(model, ds, batch: int = 256) -> dict:
    """top-1 / top-5 accuracy and attribute accuracy on a dataset (labels = model's outputs)."""
    model.eval()
    dev = next(model.parameters()).device
    correct1 = correct5 = attr_ok = 0
    n = len(ds)
    for i in range(0, n, batch):
        b = ds.batch(range(i, min(n, i + batch)))
        logits, _, attrs = (t.cpu() for t in model(b["image"].to(dev)))
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += (top[:, 0] == b["label"]).sum().item()
        correct5 += (top == b["label"][:, None]).any(1).sum().item()
        if ds.attr_names:
            attr_ok += ((attrs > 0).float() == b["attrs"]).float().mean(1).sum().item()
    return {"top1": correct1 / max(1, n), "top5": correct5 / max(1, n),
            "attr_acc": attr_ok / max(1, n), "n": n}


def train(data_dir: str, out_dir: str, minutes: float = 6.0, quick: bool = False, resume: bool = False,
          seed: int = 0, batch: int = 64, lr: float = 2e-3, width: int = 32, ckpt_every: int = 200,
          eval_every: int = 500, size: int = 64, device: str = "cpu", log=None) -> dict:
    """Train (or continue) the classifier; writes <out>/classifier.pt. Returns the final metrics."""
    os.makedirs(out_dir, exist_ok=True)
    log = log or Logger(out_dir, "classifier")
    idx = data.load_index(data_dir)
    train_ds = data.CUBDataset(data_dir, "train", "seen", size, with_captions=False, index=idx, seed=seed)
    test_ds = data.CUBDataset(data_dir, "test", "seen", size, with_captions=False, index=idx, seed=seed)
    K, A = len(train_ds.class_ids), len(train_ds.attr_names)
    path = os.path.join(out_dir, "classifier.pt")
    ck = load_checkpoint(path) if resume and os.path.exists(path) else None
    width = ck["config"].get("width", width) if ck else width
    model = Classifier(K, A, width)
    if ck:
        if ck["class_ids"] != train_ds.class_ids:
            raise ValueError("resume: the checkpoint's classes differ from the data set's")
        model.load_state_dict(ck["state"])
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    step, seconds = 0, 0.0
    if ck:
        if ck.get("opt"):
            opt.load_state_dict(ck["opt"])
        step, seconds = ck["step"], ck["seconds"]
        log(event="resume", step=step, seconds=round(seconds, 1))
    max_steps = step + 8 if quick else None
    budget = Budget(minutes, seconds, max_steps, step)
    config = {"width": width, "batch": batch, "lr": lr, "size": size, "seed": seed, "data": data_dir,
              "device": str(device)}
    log(event="start", classes=K, attributes=A, train=len(train_ds), test=len(test_ds),
        params=n_params(model), minutes=minutes)

    g = torch.Generator().manual_seed(seed + step)
    n = len(train_ds)
    perm, pos = torch.randperm(n, generator=g), 0
    metrics = {}
    run_loss = None
    while not budget.done():
        model.train()
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=g), 0
        ids = perm[pos:pos + min(batch, n)]
        pos += batch
        b = train_ds.batch(ids)
        x = data.augment(b["image"], g).to(device)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(lr, budget.frac())
        logits, _, attrs = model(x)
        loss_c = F.cross_entropy(logits, b["label"].to(device), label_smoothing=0.1)
        loss_a = F.binary_cross_entropy_with_logits(attrs, b["attrs"].to(device)) if A else logits.new_zeros(())
        loss = loss_c + 0.5 * loss_a
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        budget.step = step
        run_loss = loss.item() if run_loss is None else 0.95 * run_loss + 0.05 * loss.item()
        if step % 50 == 0 or quick:
            log(step=step, loss=loss.item(), loss_cls=loss_c.item(), loss_attr=loss_a.item(),
                avg=run_loss, lr=opt.param_groups[0]["lr"], s=round(budget.elapsed(), 1))
        if step % eval_every == 0:
            metrics = evaluate(model, test_ds)
            log(step=step, eval="test", **metrics)
        if step % ckpt_every == 0:
            save_checkpoint(path, model, opt, step, budget.elapsed(), train_ds, metrics, config)
    metrics = evaluate(model, test_ds)
    metrics["train_top1"] = evaluate(model, train_ds)["top1"]
    metrics.update(steps=step, seconds=round(budget.elapsed(), 1), params=n_params(model))
    save_checkpoint(path, model, opt, step, budget.elapsed(), train_ds, metrics, config)
    log(event="done", **metrics)
    return metrics
