"""Image classifiers: a compact CNN for 64x64 fine-grained images, and ResNets.

image [B,3,S,S] in [-1,1] -> logits [B,K], features [B,F] (penultimate, pooled), attributes [B,A]
(multi-label logits). S is 64 for the sample world; photos (real CUB-200-2011) want 128 or 224 with
`--arch resnet`, which from 96 px up is the ResNet-18 layout (torchvision's names, widths w..8w;
w = 64 is ResNet-18 and can start from its ImageNet weights, --pretrained), with photo augmentation
(random resized crops). Training runs on several processes under torchrun (fgtrain.dist). Trained on train images of seen classes only (a tenth of them kept apart as a
validation split), with random crop/flip and small colour jitter, cross-entropy (label smoothing 0.1)
+ 0.5 x attribute BCE, AdamW, cosine schedule over a wall-clock budget. Afterwards two temperatures are
fitted on the validation split (calibrate): one for the class softmax and one for the softmax within
each attribute group, so that probabilities mean what they say (expected calibration error).

Three networks of this module serve different masters and share nothing (own seed, own file):
  classifier.pt  the fidelity scorer that grades users' images (arch cnn, seed 0);
  lossnet.pt     the trunk of the DAMSM encoders that AttnGAN trains against (arch cnn, seed 1);
  judge.pt       the evaluation network of `studio eval` (arch resnet, seed 2), which no generator and
                 no scorer ever touches.
"""

from __future__ import annotations

import math
import os

import numpy as np
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


class _Block(nn.Module):
    """Pre-activation-free basic residual block (conv-bn-relu-conv-bn + shortcut, relu)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = conv_bn(cin, cout, stride)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + self.short(x))


class BasicBlock(nn.Module):
    """ResNet's basic block with torchvision's names (conv1, bn1, conv2, bn2, downsample)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class PhotoResTrunk(nn.Module):
    """The ResNet-18 layout for photos (96 px and up): 7x7/2 conv, 3x3/2 max pool, four stages of
    two basic blocks (widths w, 2w, 4w, 8w; strides 1, 2, 2, 2): 224 -> 7x7, 128 -> 4x4. Inputs in
    [-1,1] are normalised as ImageNet models expect, so that --pretrained weights fit."""

    def __init__(self, width: int = 64):
        super().__init__()
        w = width
        self.width = w
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(w, w, 1), BasicBlock(w, w, 1))
        self.layer2 = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w, 1))
        self.layer3 = nn.Sequential(BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w, 1))
        self.layer4 = nn.Sequential(BasicBlock(4 * w, 8 * w, 2), BasicBlock(8 * w, 8 * w, 1))
        self.out_channels = 8 * w
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        x = ((x + 1) / 2 - self.mean) / self.std
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def load_pretrained(trunk: nn.Module, path: str) -> int:
    """Load a torchvision ResNet-18 state dict (e.g. resnet18-f37072fd.pth, ImageNet) into a
    PhotoResTrunk of width 64; its fc layer is left out. Returns the number of tensors loaded."""
    from . import load_checkpoint
    sd = load_checkpoint(path)
    sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    own = trunk.state_dict()
    bad = [k for k, v in sd.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in sd]
    if bad or missing:
        raise ValueError("%s does not fit the ResNet trunk (width %d; ResNet-18 weights need --width 64 "
                         "--arch resnet --size 96 or more): unexpected %s, missing %s" % (
                             path, trunk.width, bad[:3], missing[:3]))
    trunk.load_state_dict(sd)
    return len(sd)


class ResTrunk(nn.Module):
    """A small ResNet: 64 -> 32 -> 16 -> 8 -> 4 with one residual block per stage (widths w..8w)."""

    def __init__(self, width: int = 24):
        super().__init__()
        w = width
        self.width = w
        self.stem = conv_bn(3, w)
        self.stages = nn.Sequential(_Block(w, w, 2), _Block(w, 2 * w, 2), _Block(2 * w, 4 * w, 2),
                                    _Block(4 * w, 8 * w, 2))
        self.out_channels = 8 * w

    def forward(self, x):
        return self.stages(self.stem(x))


ARCHS = {"cnn": Trunk, "resnet": ResTrunk}


def make_trunk(arch: str, width: int, size: int = 64) -> nn.Module:
    """The trunk of an architecture at an input size: "resnet" is ResTrunk up to 64 px and the
    ResNet-18 layout (PhotoResTrunk) from 96 px up."""
    if arch not in ARCHS:
        raise ValueError("arch must be one of %s" % sorted(ARCHS))
    if size % 16:
        raise ValueError("image size %d: want a multiple of 16 (64, 128, 224)" % size)
    if arch == "resnet" and size >= 96:
        return PhotoResTrunk(width)
    return ARCHS[arch](width)


class Classifier(nn.Module):
    def __init__(self, num_classes: int, num_attributes: int, width: int = 32, dropout: float = 0.2,
                 arch: str = "cnn", size: int = 64):
        super().__init__()
        from .dist import RowDropout
        self.num_classes, self.num_attributes = num_classes, num_attributes
        self.arch = arch
        self.trunk = make_trunk(arch, width, size)
        self.feature_dim = self.trunk.out_channels
        self.drop = RowDropout(dropout)
        self.fc = nn.Linear(self.feature_dim, num_classes)
        self.attr = nn.Linear(self.feature_dim, max(1, num_attributes))

    def forward(self, image):
        features = self.trunk(image).mean(dim=(2, 3))
        h = self.drop(features)
        return self.fc(h), features, self.attr(h)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def save_checkpoint(path, model, opt, step, seconds, ds, metrics, config, calibration=None):
    tmp = path + ".tmp"
    torch.save({"kind": "classifier", "state": model.state_dict(),
                "opt": opt.state_dict() if opt is not None else None, "step": step,
                "seconds": seconds, "class_ids": ds.class_ids, "class_names": ds.class_names,
                "attr_names": ds.attr_names, "metrics": metrics, "config": config,
                "calibration": calibration}, tmp)
    os.replace(tmp, path)


def load_classifier(path: str):
    """-> (model in eval mode, checkpoint dict)."""
    ck = load_checkpoint(path)
    cfg = ck["config"]
    m = Classifier(len(ck["class_ids"]), len(ck["attr_names"]), cfg.get("width", 32),
                   arch=cfg.get("arch", "cnn"), size=cfg.get("size", 64))
    m.load_state_dict(ck["state"])
    m.eval()
    return m, ck


def as_float_images(x) -> torch.Tensor:
    """uint8 images (a tensor or array) -> float in [-1,1]; float images as they are."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dtype == torch.uint8:
        return x.float().div(127.5).sub(1.0)
    return x.float()


@torch.no_grad()
def extract(classifier, images, batch: int = 256, with_probs: bool = False):
    """Penultimate features [N,F] (numpy float64) of a classifier, or of any callable returning
    (logits, features, ...) such as an exported graph, for uint8 images or float images in [-1,1].
    With with_probs, also softmax probabilities [N,K]."""
    if hasattr(classifier, "eval"):
        classifier.eval()
    feats, probs = [], []
    for i in range(0, len(images), batch):
        out = classifier(as_float_images(images[i:i + batch]))
        logits, f = out[0], out[1]
        feats.append(torch.as_tensor(f).double().numpy())
        if with_probs:
            probs.append(torch.softmax(torch.as_tensor(logits).double(), dim=1).numpy())
    f = np.concatenate(feats) if feats else np.zeros((0, 0))
    if with_probs:
        return f, np.concatenate(probs)
    return f


# ---- calibration -------------------------------------------------------------------------------

def attribute_groups(attr_names) -> list[list[int]]:
    """Attribute indices per group (`group::value` names), in first-seen group order."""
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(attr_names):
        groups.setdefault(a.split("::", 1)[0], []).append(i)
    return list(groups.values())


def group_targets(attrs: torch.Tensor, groups) -> list[torch.Tensor]:
    """Per group, the index of the present value within the group (-1 where none or several are)."""
    out = []
    for g in groups:
        sub = attrs[:, g]
        t = sub.argmax(1)
        t[sub.sum(1) != 1] = -1
        out.append(t)
    return out


def _nll_class(logits, labels, T):
    return F.cross_entropy(logits / T, labels).item()


def _nll_attr(attr_logits, targets, groups, T):
    total, n = 0.0, 0
    for g, t in zip(groups, targets):
        ok = t >= 0
        if ok.any():
            total += F.cross_entropy(attr_logits[ok][:, g] / T, t[ok], reduction="sum").item()
            n += int(ok.sum())
    return total / max(1, n)


def fit_temperature(nll) -> float:
    """The temperature in [0.05, 20] that minimises nll(T): a log-spaced grid, then golden section."""
    grid = np.exp(np.linspace(math.log(0.05), math.log(20.0), 41))
    vals = [nll(float(t)) for t in grid]
    k = int(np.argmin(vals))
    lo, hi = float(grid[max(0, k - 1)]), float(grid[min(len(grid) - 1, k + 1)])
    phi = (math.sqrt(5) - 1) / 2
    for _ in range(30):
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return round((lo + hi) / 2, 4)


def ece(probs: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: confidence vs accuracy over equal-width confidence bins."""
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (probs > lo) & (probs <= hi)
        if m.any():
            total += m.mean() * abs(correct[m].mean() - probs[m].mean())
    return float(total)


@torch.no_grad()
def outputs(model, ds, positions=None, batch: int = 256):
    """(logits, attribute logits, labels, attrs) over a data set (or some of its positions)."""
    model.eval()
    dev = next(model.parameters()).device
    pos = torch.arange(len(ds)) if positions is None else torch.as_tensor(positions)
    L, A = [], []
    for i in range(0, len(pos), batch):
        b = ds.batch(pos[i:i + batch])
        lg, _, at = model(b["image"].to(dev))
        L.append(lg.cpu())
        A.append(at.cpu())
    return torch.cat(L), torch.cat(A), ds.labels[pos], ds.attrs[pos]


def calibration_report(logits, attr_logits, labels, attrs, groups, cal) -> dict:
    """ECE of the class softmax and of every attribute group's softmax, at the fitted temperatures."""
    p = F.softmax(logits / cal["class_temperature"], 1)
    conf, pred = p.max(1)
    out = {"class_ece": ece(conf.numpy(), (pred == labels).numpy().astype(float))}
    confs, oks = [], []
    for g, t in zip(groups, group_targets(attrs, groups)):
        ok = t >= 0
        pg = F.softmax(attr_logits[ok][:, g] / cal["attribute_temperature"], 1)
        c, pr = pg.max(1)
        confs.append(c.numpy())
        oks.append((pr == t[ok]).numpy().astype(float))
    if confs:
        out["attribute_ece"] = ece(np.concatenate(confs), np.concatenate(oks))
    return out


def calibrate(model, val_ds, val_pos, groups) -> dict:
    """Class and attribute-group temperatures fitted on the validation split (minimum NLL)."""
    logits, attr_logits, labels, attrs = outputs(model, val_ds, val_pos)
    targets = group_targets(attrs, groups)
    cal = {"class_temperature": fit_temperature(lambda T: _nll_class(logits, labels, T)),
           "attribute_temperature": fit_temperature(lambda T: _nll_attr(attr_logits, targets, groups, T))
           if groups else 1.0,
           "fitted_on": "validation split: train images with image_id %% 10 == %d (%d images)" % (
               VAL_MOD, len(val_pos))}
    return cal


def calibration_metrics(cm: dict) -> dict:
    """Model-card metrics of a classifier checkpoint's calibration."""
    cal = cm.get("calibration")
    if not cal:
        return {}
    how = ("expected calibration error (15 equal-width confidence bins) on the real test images of "
           "seen classes, at temperatures fitted on the %s; uncalibrated: %.4f")
    out = {"class_ece_test_seen": {"value": cal["test"]["class_ece"], "how": how % (
        cal["fitted_on"], cal["test_uncalibrated"]["class_ece"]) + "; class softmax, T = %g" % cal[
        "class_temperature"]}}
    if "attribute_ece" in cal["test"]:
        out["attribute_ece_test_seen"] = {"value": cal["test"]["attribute_ece"], "how": how % (
            cal["fitted_on"], cal["test_uncalibrated"]["attribute_ece"]) + (
            "; softmax within each attribute group, T = %g" % cal["attribute_temperature"])}
    return out


VAL_MOD = 3  # train images whose id % 10 == VAL_MOD form the validation split


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
          eval_every: int = 500, size: int = 64, device: str = "cpu", log=None, name: str = "classifier",
          arch: str = "cnn", augment: str | None = None, pretrained: str | None = None) -> dict | None:
    """Train (or continue) a classifier; writes <out>/<name>.pt (calibrated at the end). Returns the
    final metrics (None on ranks other than 0 of a distributed run, which write nothing).

    augment: "light" (pad-crop, flip, +-10 % colour; default up to 64 px) or "photo" (random resized
    crop, flip, +-25 % colour; default above). pretrained: torchvision ResNet-18 weights for the trunk
    (arch resnet, width 64, size >= 96), which then learns at a tenth of the rate."""
    from . import dist as fdist
    D = fdist.init(device)
    device, main = D.device, D.is_main
    os.makedirs(out_dir, exist_ok=True)
    log = log or (Logger(out_dir, name) if main else fdist.NullLogger())
    idx = data.load_index(data_dir)
    path = os.path.join(out_dir, name + ".pt")
    ck = load_checkpoint(path) if resume and os.path.exists(path) else None
    if ck:
        width = ck["config"].get("width", width)
        arch = ck["config"].get("arch", "cnn")
        size = ck["config"].get("size", 64)
        augment = ck["config"].get("augment") or augment
    augment = augment or ("photo" if size > 64 else "light")
    if augment not in ("light", "photo"):
        raise ValueError("augment must be light or photo")
    train_ds = data.CUBDataset(data_dir, "train", "seen", size, with_captions=False, index=idx, seed=seed)
    test_ds = data.CUBDataset(data_dir, "test", "seen", size, with_captions=False, index=idx, seed=seed)
    K, A = len(train_ds.class_ids), len(train_ds.attr_names)
    model = Classifier(K, A, width, arch=arch, size=size)
    if ck:
        if ck["class_ids"] != train_ds.class_ids:
            raise ValueError("resume: the checkpoint's classes differ from the data set's")
        model.load_state_dict(ck["state"])
    elif pretrained:
        n = load_pretrained(model.trunk, pretrained)
        log(event="pretrained", path=os.path.basename(pretrained), tensors=n)
    pretrained = pretrained or (ck or {}).get("config", {}).get("pretrained")
    model.to(device)
    net = D.wrap(model)  # DistributedDataParallel under torchrun (BatchNorm made synchronous first)
    trunk_ids = {id(p) for p in model.trunk.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in trunk_ids], "scale": 1.0},
              {"params": list(model.trunk.parameters()), "scale": 0.1 if pretrained else 1.0}]
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=5e-4)
    step, seconds = 0, 0.0
    if ck:
        if ck.get("opt"):
            try:
                opt.load_state_dict(ck["opt"])
            except ValueError:  # a checkpoint from before the trunk's own parameter group
                log(event="resume", note="optimizer state not restored (older checkpoint)")
        step, seconds = ck["step"], ck["seconds"]
        log(event="resume", step=step, seconds=round(seconds, 1))
    max_steps = step + 8 if quick else None
    budget = fdist.budget(Budget(minutes, seconds, max_steps, step), D)
    config = {"width": width, "batch": batch, "lr": lr, "size": size, "seed": seed, "data": data_dir,
              "device": str(device), "arch": arch, "name": name, "augment": augment,
              "pretrained": os.path.basename(pretrained) if pretrained else None, "processes": D.world}
    val_mask = train_ds.image_ids % 10 == VAL_MOD
    val_pos = val_mask.nonzero().flatten()
    fit_pos = (~val_mask).nonzero().flatten()
    if len(val_pos) == 0 or len(fit_pos) == 0:  # tiny data sets (tests): calibrate on what there is
        val_pos = fit_pos = torch.arange(len(train_ds))
    log(event="start", classes=K, attributes=A, train=len(fit_pos), val=len(val_pos),
        test=len(test_ds), params=n_params(model), minutes=minutes, arch=arch, size=size,
        augment=augment, processes=D.world)

    g = torch.Generator().manual_seed(seed + step)
    n = len(fit_pos)
    perm, pos = torch.randperm(n, generator=g), 0
    metrics = {}
    run_loss = None
    while not budget.done():
        model.train()
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=g), 0
        ids = fit_pos[perm[pos:pos + min(batch, n)]]  # the global batch, the same on every rank
        pos += batch
        rows = D.shard(len(ids))
        mine = ids[rows]
        x = data.to_float(train_ds.images[mine].to(device))
        if augment == "photo":
            x = data.photo_augment(x, g, total=len(ids), rows=rows)
        else:
            x = data.augment(x, g, total=len(ids), rows=rows)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(lr, budget.frac()) * group["scale"]
        with fdist.batch_rows(len(ids), rows):
            logits, _, attrs = net(x)
        loss_c = F.cross_entropy(logits, train_ds.labels[mine].to(device), label_smoothing=0.1)
        # (without attribute annotations the head still takes part, at weight 0: DistributedDataParallel
        # wants a gradient for every parameter)
        loss_a = (F.binary_cross_entropy_with_logits(attrs, train_ds.attrs[mine].to(device)) if A
                  else attrs.sum() * 0.0)
        loss = loss_c + 0.5 * loss_a
        opt.zero_grad(set_to_none=True)
        (loss * D.weight(len(ids))).backward()
        opt.step()
        step += 1
        budget.step = step
        run_loss = loss.item() if run_loss is None else 0.95 * run_loss + 0.05 * loss.item()
        if step % 50 == 0 or quick:  # the global batch's losses (avg: this rank's running mean)
            lv, lc, la = D.global_mean([loss.item(), loss_c.item(), loss_a.item()], len(ids))
            log(step=step, loss=lv, loss_cls=lc, loss_attr=la, avg=run_loss, lr=opt.param_groups[0]["lr"],
                s=round(budget.elapsed(), 1))
        if step % eval_every == 0 and main:
            metrics = evaluate(model, test_ds)
            log(step=step, eval="test", **metrics)
        if step % ckpt_every == 0 and main:
            save_checkpoint(path, model, opt, step, budget.elapsed(), train_ds, metrics, config)
    if not main:
        D.barrier()  # rank 0 evaluates, calibrates and writes the checkpoint
        return None
    metrics = evaluate(model, test_ds)
    metrics["train_top1"] = evaluate(model, train_ds)["top1"]
    groups = attribute_groups(train_ds.attr_names)
    cal = calibrate(model, train_ds, val_pos, groups)
    raw = {"class_temperature": 1.0, "attribute_temperature": 1.0}
    test_out = outputs(model, test_ds)
    metrics["calibration"] = {**cal, "test": calibration_report(*test_out, groups, cal),
                              "test_uncalibrated": calibration_report(*test_out, groups, raw)}
    metrics.update(steps=step, seconds=round(budget.elapsed(), 1), params=n_params(model))
    save_checkpoint(path, model, opt, step, budget.elapsed(), train_ds, metrics, config, cal)
    log(event="done", **metrics)
    D.barrier()
    return metrics
