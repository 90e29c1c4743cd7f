"""Statistics of features and codes, NumPy only (no torch, nothing else from fgtrain): Fréchet
distance, IS-style score, R-precision, intra-class diversity, top-1. The torch side (classifier
features, the Scorer that bundles the classifier and the DAMSM) is fgtrain.scoring.
"""

from __future__ import annotations

import numpy as np


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """||mu1-mu2||^2 + tr(s1) + tr(s2) - 2 tr((s1 s2)^1/2), with tr((s1 s2)^1/2) computed as the sum
    of square roots of the eigenvalues of the symmetric s1^1/2 s2 s1^1/2 (no scipy)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    r1 = _sqrt_psd(s1)
    m = r1 @ s2 @ r1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def stats(features) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def inception_score(probs, splits: int = 1) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) with the fidelity classifier's probabilities [N,K];
    mean and std over `splits` folds."""
    p = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(p, max(1, splits)):
        if len(part) == 0:
            continue
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def _normalize(x):
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


def r_precision(img_codes, sent_codes, labels, n_candidates: int = 100, k: int = 1, seed: int = 0,
                folds: int = 1) -> float:
    """R-precision as in AttnGAN: image i's own caption (sent_codes[i]) among n_candidates - 1
    captions of other classes' images, ranked by cosine similarity to img_codes[i]; the share of
    true captions ranked in the top k (R = 1 true caption). Negatives are drawn without replacement
    when there are enough, otherwise with replacement. Averaged over `folds` draws."""
    img, sent = _normalize(img_codes), _normalize(sent_codes)
    labels = np.asarray(labels)
    n = len(img)
    rng = np.random.default_rng(seed)
    hits = []
    for _ in range(folds):
        for i in range(n):
            others = np.flatnonzero(labels != labels[i])
            if len(others) == 0:
                continue
            m = n_candidates - 1
            neg = rng.choice(others, m, replace=len(others) < m)
            cand = np.concatenate([sent[i:i + 1], sent[neg]])
            s = cand @ img[i]
            rank = int((s[1:] > s[0]).sum())  # ties count for the true caption
            hits.append(rank < k)
    return float(np.mean(hits)) if hits else float("nan")


def intra_class_diversity(features, labels) -> float:
    """Mean pairwise L2 distance between features of the same class, averaged over classes
    (classes with fewer than 2 samples are skipped)."""
    f = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    per = []
    for c in np.unique(labels):
        x = f[labels == c]
        if len(x) < 2:
            continue
        sq = (x * x).sum(1)
        d2 = np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None)
        iu = np.triu_indices(len(x), 1)
        per.append(float(np.sqrt(d2[iu]).mean()))
    return float(np.mean(per)) if per else float("nan")


def top1(logits, labels) -> float:
    return float((np.asarray(logits).argmax(1) == np.asarray(labels)).mean())
