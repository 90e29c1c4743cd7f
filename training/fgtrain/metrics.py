"""Metrics: classifier features, Fréchet distance, IS-style score, R-precision, intra-class diversity,
and a Scorer that bundles the classifier and DAMSM for the generators' evaluation.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_float_images(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dtype == torch.uint8:
        return x.float().div(127.5).sub(1.0)
    return x.float()


@torch.no_grad()
def extract(classifier, images, batch: int = 256, with_probs: bool = False):
    """Penultimate features [N,F] (numpy float64) of a classifier returning (logits, features, ...),
    for uint8 images or float images in [-1,1]. With with_probs, also softmax probabilities [N,K]."""
    if hasattr(classifier, "eval"):
        classifier.eval()
    feats, probs = [], []
    for i in range(0, len(images), batch):
        out = classifier(_as_float_images(images[i:i + batch]))
        logits, f = out[0], out[1]
        feats.append(torch.as_tensor(f).double().numpy())
        if with_probs:
            probs.append(torch.softmax(torch.as_tensor(logits).double(), dim=1).numpy())
    f = np.concatenate(feats) if feats else np.zeros((0, 0))
    if with_probs:
        return f, np.concatenate(probs)
    return f


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


class Scorer:
    """Classifier + DAMSM encoders + real-image feature statistics, for evaluating generated images.

    s = Scorer.from_checkpoints("runs/classifier.pt", "runs/damsm.pt", data_dir)
    s.fid(fake_images)                           # vs real test images of seen classes
    s.inception_score(fake_images); s.accuracy(fake_images, labels)
    s.r_precision(fake_images, captions, cap_lens, labels)
    s.diversity(fake_images, labels)
    """

    def __init__(self, classifier, image_encoder=None, text_encoder=None, vocab=None,
                 real_stats: dict | None = None, batch: int = 128, size: int = 64,
                 captions: str = "text"):
        self.classifier = classifier
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.vocab = vocab
        self.real_stats = real_stats or {}
        self.batch = batch
        self.size = size  # the classifier's input side
        self.captions = captions  # what the DAMSM's captions were: "text" or "attributes"

    @classmethod
    def from_checkpoints(cls, classifier_pt: str, damsm_pt: str | None = None,
                         data_dir: str | None = None, size: int = 64):
        from .classifier import load_classifier
        clf, cck = load_classifier(classifier_pt)
        ie = te = vocab = None
        captions = "text"
        if damsm_pt:
            from .damsm import load_damsm_model
            dm, vocab, dck = load_damsm_model(damsm_pt)
            te, ie = dm.text, dm.image
            captions = (dck.get("config") or {}).get("captions", "text")
        s = cls(clf, ie, te, vocab, size=cck["config"].get("size", 64), captions=captions)
        if data_dir:
            from . import data
            idx = data.load_index(data_dir)
            for split in ("test", "train"):
                ds = data.CUBDataset(data_dir, split, "seen", size, with_captions=False, index=idx)
                s.real_stats[split + "_seen"] = stats(s.features(ds.images))
        return s

    @classmethod
    def from_model_dir(cls, model_dir: str):
        """Runs the exported ONNX graphs with the reference evaluator (slow, but exactly what is served)."""
        import json
        import os
        from .export import reference_evaluator
        from .tokenizer import Vocab

        def graph(name):
            ev = reference_evaluator(os.path.join(model_dir, name + ".onnx"))

            def run(*xs):
                outs = ev.run(None, {n: np.asarray(x) for n, x in zip(_inputs(name), xs)})
                return tuple(torch.from_numpy(np.asarray(o)) for o in outs)
            return run

        with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as f:
            manifest = json.load(f)

        def _inputs(name):
            return [s["name"] for s in manifest["graphs"][name]["inputs"]]

        st = {}
        p = os.path.join(model_dir, "feature_stats.json")
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                fs = json.load(f)
            for k in ("test_seen", "train_seen"):
                if k in fs:
                    st[k] = (np.asarray(fs[k]["mean"]), np.asarray(fs[k]["cov"]))
        clf = graph("classifier")
        size = int(manifest.get("sizes", {}).get("image_size", 64))
        if "image_encoder" not in manifest["graphs"] or "text_encoder" not in manifest["graphs"]:
            return cls(clf, None, None, None, st, batch=32, size=size)
        img = graph("image_encoder")
        txt = graph("text_encoder")
        vocab = Vocab.load(os.path.join(model_dir, "vocab.json"))
        return cls(clf, lambda x: tuple(reversed(img(x))), txt, vocab, st, batch=32, size=size,
                   captions=manifest.get("captions", "text"))

    def features(self, images, with_probs=False):
        return extract(self.classifier, images, self.batch, with_probs)

    def fid(self, images, against: str = "test_seen") -> float:
        mu, cov = stats(self.features(images))
        mu2, cov2 = self.real_stats[against]
        return frechet_distance(mu, cov, mu2, cov2)

    def inception_score(self, images, splits: int = 1):
        return inception_score(self.features(images, with_probs=True)[1], splits)

    def accuracy(self, images, labels) -> float:
        """Share of images classified as their conditioning class (labels = classifier indices)."""
        _, p = self.features(images, with_probs=True)
        return top1(p, labels)

    def diversity(self, images, labels) -> float:
        return intra_class_diversity(self.features(images), labels)

    @torch.no_grad()
    def codes(self, images=None, captions=None, cap_lens=None):
        """DAMSM cnn_code of images and/or sent_emb of captions (numpy)."""
        ic = sc = None
        if images is not None:
            out = []
            for i in range(0, len(images), self.batch):
                _, code = self.image_encoder(_as_float_images(images[i:i + self.batch]))
                out.append(torch.as_tensor(code).double().numpy())
            ic = np.concatenate(out)
        if captions is not None:
            out = []
            for i in range(0, len(captions), self.batch):
                c = torch.as_tensor(captions[i:i + self.batch])
                n = torch.as_tensor(cap_lens[i:i + self.batch])
                T = max(1, int(n.max()))
                _, sent = self.text_encoder(c[:, :T], n)
                out.append(torch.as_tensor(sent).double().numpy())
            sc = np.concatenate(out)
        return ic, sc

    def r_precision(self, images, captions, cap_lens, labels, folds: int = 1, seed: int = 0) -> float:
        ic, sc = self.codes(images, captions, cap_lens)
        return r_precision(ic, sc, labels, folds=folds, seed=seed)
