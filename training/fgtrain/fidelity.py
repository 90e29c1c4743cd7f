"""The fidelity measure for prompts, as the studio's scorer computes it, and the check that it tells
true captions from captions with one attribute word changed.

attribute_agreement(image, caption) = geometric mean, over the attribute groups the caption names,
of the calibrated probability that the classifier's attribute head gives the named value within its
group (softmax of the group's attribute logits divided by the fitted temperature). An image whose
crown is black scores low for "a red crown" however close the rest is.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .lexicon import Lexicon


def group_index(attr_names) -> dict[str, dict[str, int]]:
    """group → value → attribute index, from `group::value` names."""
    out: dict[str, dict[str, int]] = {}
    for i, a in enumerate(attr_names):
        g, v = a.split("::", 1)
        out.setdefault(g, {})[v] = i
    return out


def group_probs(attr_logits: torch.Tensor, groups: dict[str, dict[str, int]],
                temperature: float = 1.0) -> dict[str, tuple[list[str], torch.Tensor]]:
    """group → (values, [B, n_values] calibrated within-group probabilities)."""
    out = {}
    for g, vals in groups.items():
        names = list(vals)
        idx = torch.tensor([vals[v] for v in names])
        out[g] = (names, F.softmax(attr_logits[:, idx] / temperature, 1))
    return out


def agreement(probs: dict, row: int, named: dict[str, str]) -> float | None:
    """Geometric mean of the named values' probabilities for one image; None if nothing is named
    that the attribute head knows."""
    logs = []
    for g, v in named.items():
        if g in probs and v in probs[g][0]:
            p = float(probs[g][1][row, probs[g][0].index(v)])
            logs.append(math.log(max(p, 1e-12)))
    return math.exp(sum(logs) / len(logs)) if logs else None


def auroc(pos, neg) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    ranks[order] = np.arange(1, len(allv) + 1)
    for v in np.unique(allv):  # average ranks of ties
        m = allv == v
        ranks[m] = ranks[m].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@torch.no_grad()
def edit_auroc(model, ds, lexicon: Lexicon, temperature: float = 1.0, captions_per_image: int = 2,
               seed: int = 0, batch: int = 256) -> dict:
    """On real images: the caption's own text (positive) against the same caption with one named
    attribute changed to another value of its group (negative). AUROC of attribute_agreement, per
    group and pooled. `temperature` is the attribute temperature of a checkpoint (exported graphs
    already apply it: pass 1)."""
    rng = np.random.default_rng(seed)
    groups = group_index(ds.attr_names)
    model.eval()
    per_group: dict[str, tuple[list, list]] = {}
    for start in range(0, len(ds), batch):
        b = ds.batch(range(start, min(len(ds), start + batch)))
        _, _, attr_logits = model(b["image"])
        probs = group_probs(attr_logits, groups, temperature)
        for r in range(attr_logits.shape[0]):
            caps = ds.captions[start + r]
            for ci in rng.permutation(len(caps))[:captions_per_image]:
                text = caps[int(ci)]
                named = lexicon.named(text)
                true = agreement(probs, r, named)
                if true is None:
                    continue
                for g in named:
                    others = [v for v in groups.get(g, {}) if v != named[g]]
                    if not others:
                        continue
                    edited = lexicon.edit(text, g, others[int(rng.integers(len(others)))])
                    if edited is None:
                        continue
                    neg = agreement(probs, r, lexicon.named(edited))
                    pos_l, neg_l = per_group.setdefault(g, ([], []))
                    pos_l.append(true)
                    neg_l.append(neg)
    out = {g: {"auroc": auroc(p, n), "pairs": len(p)} for g, (p, n) in sorted(per_group.items())}
    all_p = [x for p, _ in per_group.values() for x in p]
    all_n = [x for _, n in per_group.values() for x in n]
    return {"auroc": auroc(all_p, all_n), "pairs": len(all_p), "per_group": out}
