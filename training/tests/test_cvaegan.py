"""CVAE-GAN: one training step, export + verification, determinism, and the CLI end to end."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fgtrain import cvaegan, trainkit
from fgtrain import export as ex
from fgtrain.cvaegan_nets import CVAEGANConfig

K = 5


def small_model(seed: int = 0) -> cvaegan.CVAEGAN:
    torch.manual_seed(seed)
    cfg = CVAEGANConfig(num_classes=K, z_dim=16, emb_dim=8, ngf=8, nef=8, ndf=8, ncf=8, feat_dim=32)
    return cvaegan.CVAEGAN(cfg)


def test_train_step_losses_finite_and_all_nets_learn():
    m = small_model()
    opts = cvaegan.make_optimizers(m, 1e-3)
    before = {k: [p.detach().clone() for p in getattr(m, k).parameters()] for k in "EGDC"}
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 64, 64, generator=g) * 2 - 1
    y = torch.randint(0, K, (8,), generator=g)
    losses = cvaegan.train_step(m, opts, x, y, g, group=4)
    assert all(np.isfinite(v) for v in losses.values()), losses
    for k in "EGDC":
        after = list(getattr(m, k).parameters())
        assert any(not torch.equal(a, b) for a, b in zip(after, before[k])), "%s did not change" % k
    ema_before = [p.clone() for p in m.G_ema.parameters()]
    trainkit.ema_update(m.G_ema, m.G, 0.5)
    assert any(not torch.equal(a, b) for a, b in zip(m.G_ema.parameters(), ema_before))


def test_generator_is_deterministic_and_rows_are_independent():
    m = small_model()
    cvaegan.calibrate_ema(m, batches=2, batch=16)
    G = m.G_ema.eval()
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 16, generator=g)
    c = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), K).float()
    with torch.no_grad():
        a, b = G(z, c), G(z, c)
        first = G(z[:1], c[:1])
        other_z = G(torch.randn(4, 16, generator=g), c)
    assert torch.equal(a, b)
    assert (a[:1] - first).abs().max() < 1e-5  # no batch statistics at inference
    assert (a - other_z).abs().mean() > 1e-4  # z reaches the image
    assert a.min() >= -1 and a.max() <= 1


def test_export_verifies_at_two_batch_sizes(tmp_path):
    m = small_model()
    cvaegan.calibrate_ema(m, batches=2, batch=16)
    entries = cvaegan.export_graphs(m, str(tmp_path), verify_batches=(1, 4), log=lambda s: None)
    assert set(entries) == {"generator", "encoder"}
    for role, e in entries.items():
        assert e["verification"] <= ex.TOLERANCE
        assert ex.check_golden(str(tmp_path / (role + ".onnx")), str(tmp_path / "golden" / (role + ".json"))) <= 1e-4
    names = {role: ([s["name"] for s in e["inputs"]], [s["name"] for s in e["outputs"]])
             for role, e in entries.items()}
    assert names["generator"] == (["z", "class_onehot"], ["image"])
    assert names["encoder"] == (["image", "class_onehot"], ["z_mu", "z_logvar"])


def test_cli_quick_train_resume_eval_export(tiny_data, tiny_run, tmp_path):
    out = str(tmp_path / "run")
    common = ["--data", tiny_data, "--out", out, "--quick", "--batch", "8", "--ngf", "8", "--ndf", "8",
              "--z-dim", "16"]
    assert cvaegan.main(common + ["--no-export"]) == 0
    ck = torch.load(os.path.join(out, "cvaegan.pt"), map_location="cpu")
    assert ck["step"] == 2
    assert any(f.endswith(".png") for f in os.listdir(os.path.join(out, "samples")))

    assert cvaegan.main(common + ["--resume", "--classifier", os.path.join(tiny_run, "classifier.pt")]) == 0
    ck = torch.load(os.path.join(out, "cvaegan.pt"), map_location="cpu")
    assert ck["step"] == 4
    with open(os.path.join(out, "cvaegan_metrics.json")) as f:
        met = json.load(f)
    for k in ("top1_generated", "diversity_ratio", "fd_real_vs_generated", "fd_real_half_vs_half"):
        assert np.isfinite(met[k]), k
    model_dir = os.path.join(out, "cvaegan-birds")
    assert ex.validate_model_dir(model_dir, {"generator": ["z", "class_onehot", "image"],
                                             "encoder": ["image", "class_onehot", "z_mu", "z_logvar"]}) == []
    with open(os.path.join(model_dir, "model.json")) as f:
        manifest = json.load(f)
    assert manifest["kind"] == "cvaegan" and manifest["sizes"]["z_dim"] == 16
    assert "top1_generated" in open(os.path.join(model_dir, "MODEL_CARD.md")).read()


def test_resume_refuses_a_checkpoint_of_other_classes(tiny_data, tmp_path):
    m = small_model()
    other = SimpleNamespace(class_ids=list(range(1, K + 1)), class_names=["c%d" % i for i in range(K)])
    torch.save(cvaegan.checkpoint(m, cvaegan.make_optimizers(m, 1e-3), 1, 1.0, other, {}),
               str(tmp_path / "cvaegan.pt"))
    with pytest.raises(ValueError, match="classes"):
        cvaegan.main(["--data", tiny_data, "--out", str(tmp_path), "--quick", "--resume", "--no-export"])
