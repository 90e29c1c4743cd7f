import numpy as np
import torch
import torch.nn.functional as F

from fgtrain import classifier, data, metrics


def test_default_size_and_outputs():
    m = classifier.Classifier(48, 60)
    assert 500_000 <= classifier.n_params(m) <= 1_500_000
    logits, feats, attrs = m.eval()(torch.zeros(3, 3, 64, 64))
    assert logits.shape == (3, 48) and feats.shape == (3, 256) and attrs.shape == (3, 60)


def test_training_steps_reduce_loss(tiny_data, tiny_index):
    torch.manual_seed(0)
    ds = data.CUBDataset(tiny_data, "train", "seen", 64, with_captions=False, index=tiny_index)
    b = ds.batch(range(16))
    m = classifier.Classifier(len(ds.class_ids), len(ds.attr_names), width=8, dropout=0.0)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        m.train()
        logits, _, attrs = m(b["image"])
        loss = F.cross_entropy(logits, b["label"]) + 0.5 * F.binary_cross_entropy_with_logits(attrs, b["attrs"])
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_checkpoint_and_resume(tiny_data, tiny_run, tmp_path):
    import shutil
    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    ck = torch.load(run / "classifier.pt")
    assert ck["step"] == 8 and 0.0 <= ck["metrics"]["top1"] <= 1.0
    m = classifier.train(tiny_data, str(run), quick=True, resume=True, batch=16, width=8,
                         log=lambda **kw: None)
    assert m["steps"] == 16
    assert torch.load(run / "classifier.pt")["step"] == 16


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    s1 = a @ a.T + np.eye(6)
    assert abs(metrics.frechet_distance(np.zeros(6), s1, np.zeros(6), s1)) < 1e-8
    # diagonal case: sum (m1-m2)^2 + sum (sqrt(d1) - sqrt(d2))^2
    d1, d2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    want = ((m1 - m2) ** 2).sum() + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()
    assert abs(metrics.frechet_distance(m1, np.diag(d1), m2, np.diag(d2)) - want) < 1e-9
    # a non-commuting pair agrees with the definition via eigendecomposition of s1 s2
    b = rng.normal(size=(6, 6))
    s2 = b @ b.T + 0.5 * np.eye(6)
    ev = np.linalg.eigvals(s1 @ s2)
    want = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(ev.real.clip(0)).sum()
    assert abs(metrics.frechet_distance(np.zeros(6), s1, np.zeros(6), s2) - want) < 1e-6


def test_inception_score_and_diversity():
    assert abs(metrics.inception_score(np.full((10, 5), 0.2))[0] - 1.0) < 1e-9
    assert abs(metrics.inception_score(np.eye(5))[0] - 5.0) < 1e-6
    f = np.array([[0.0, 0], [3, 4], [0, 0], [0, 0], [1, 0]])
    labels = np.array([0, 0, 1, 1, 1])
    # class 0: one pair at 5; class 1: pairs 0, 1, 1 -> 2/3
    assert abs(metrics.intra_class_diversity(f, labels) - (5 + 2 / 3) / 2) < 1e-9


def test_extract_features(tiny_run, tiny_data, tiny_index):
    m, _ = classifier.load_classifier(tiny_run + "/classifier.pt")
    ds = data.CUBDataset(tiny_data, "test", "seen", 64, with_captions=False, index=tiny_index)
    f, p = classifier.extract(m, ds.images, batch=7, with_probs=True)
    assert f.shape == (len(ds), m.feature_dim) and p.shape == (len(ds), m.num_classes)
    assert np.allclose(p.sum(1), 1)
    assert np.allclose(f, classifier.extract(m, data.to_float(ds.images), batch=100), atol=1e-5)


def test_fidelity_auroc_and_agreement_on_constructed_logits():
    import torch

    from fgtrain import fidelity
    groups = fidelity.group_index(["has_crown_color::red", "has_crown_color::black",
                                   "has_size::small", "has_size::large"])
    logits = torch.tensor([[4.0, -4.0, 0.0, 0.0]])  # crown clearly red, size unknown
    probs = fidelity.group_probs(logits, groups)
    red = fidelity.agreement(probs, 0, {"has_crown_color": "red"})
    black = fidelity.agreement(probs, 0, {"has_crown_color": "black"})
    assert red > 0.99 and black < 0.01
    both = fidelity.agreement(probs, 0, {"has_crown_color": "red", "has_size": "small"})
    assert abs(both - (red * 0.5) ** 0.5) < 1e-6  # geometric mean
    assert fidelity.agreement(probs, 0, {"has_tail_shape": "fan-shaped"}) is None
    assert fidelity.auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert fidelity.auroc([0.1], [0.9]) == 0.0
    assert fidelity.auroc([0.5, 0.5], [0.5, 0.5]) == 0.5
