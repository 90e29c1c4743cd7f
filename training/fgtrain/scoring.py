"""Scoring generated images with the fidelity classifier and the DAMSM encoders (torch): the Scorer,
from checkpoints or from an exported model directory (its ONNX graphs run by the reference
evaluator). The statistics it reports are fgtrain.metrics' (NumPy only); classifier features are
fgtrain.classifier.extract.
"""

from __future__ import annotations

import numpy as np
import torch

from .classifier import as_float_images, extract, load_classifier
from .metrics import frechet_distance, inception_score, intra_class_diversity, r_precision, stats, top1


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
                _, code = self.image_encoder(as_float_images(images[i:i + self.batch]))
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
