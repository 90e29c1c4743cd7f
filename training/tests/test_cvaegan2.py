"""CVAE-GAN v2: a step under every ablation switch, the generator's contract, and the CLI end to end on
tiny 128-px data (train, resume, evaluate with morphs, export, ONNX parity, same bytes at batch 1 and 4)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fgtrain import cvaegan2, data
from fgtrain import export as ex
from fgtrain.cvaegan2_nets import CVAEGAN2Config

K = 5


def tiny_model(seed=0, size=32, **switches) -> cvaegan2.CVAEGAN2:
    torch.manual_seed(seed)
    cfg = CVAEGAN2Config(num_classes=K, z_dim=16, emb_dim=8, ngf=4, nef=4, ndf=4, ncf=4, feat_dim=16,
                         image_size=size, **switches.get("cfg", {}))
    return cvaegan2.CVAEGAN2(cfg, cvaegan2.LossWeights(**switches.get("weights", {})),
                             cvaegan2.Recipe(**switches.get("recipe", {})))


@pytest.mark.parametrize("switches", [
    {},
    {"recipe": {"loss": "bce", "diffaug": "none"}, "weights": {"gp": 0.0, "cycle": 0.0, "adv": 0.0}},
    {"cfg": {"sn": False, "fusion": False, "up": "deconv"}, "recipe": {"gp_every": 2, "diffaug": "color"}},
])
def test_train_step_under_each_switch_and_all_nets_learn(switches):
    m = tiny_model(**switches)
    opts = cvaegan2.make_optimizers(m)
    before = {k: [p.detach().clone() for p in getattr(m, k).parameters()] for k in "EGDC"}
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1
    y = torch.randint(0, K, (8,), generator=g)
    for step in range(2):
        losses = cvaegan2.train_step(m, opts, x, y, g, group=4, ramp=1.0, step=step)
    assert all(np.isfinite(v) for v in losses.values()), losses
    assert ("gp" in losses) == (m.w.gp > 0 and 1 % m.recipe.gp_every == 0)
    assert (losses["cycle"] > 0) == (m.w.cycle > 0)
    for k in "EGDC":
        after = list(getattr(m, k).parameters())
        assert any(not torch.equal(a, b) for a, b in zip(after, before[k])), "%s did not change" % k
    assert all(p.requires_grad for k in "DC" for p in getattr(m, k).parameters())
    assert m.centre_seen.sum() > 0


def test_generator_deterministic_rows_independent_and_mixtures_allowed():
    m = tiny_model(size=64)
    G = m.G_ema.eval()
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 16, generator=g)
    c = F.one_hot(torch.tensor([0, 1, 2, 3]), K).float()
    c[3] = 0.5 * c[0] + 0.5 * c[1]
    with torch.no_grad():
        a, b = G(z, c), G(z, c)
        rows = [G(z[i:i + 1], c[i:i + 1]) for i in range(4)]
        mu, logvar = m.E(a, c)
    assert a.shape == (4, 3, 64, 64) and mu.shape == (4, 16) and logvar.shape == (4, 16)
    assert torch.equal(a, b) and a.min() >= -1 and a.max() <= 1
    for i in range(4):
        assert (rows[i] - a[i:i + 1]).abs().max() < 1e-5


def _same_bytes_at_batch_1_and_4(path, inputs):
    ev = ex.reference_evaluator(path)
    names = ["z", "class_onehot"]
    full = ev.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
    for i in range(inputs[0].shape[0]):
        one = ev.run(None, {n: t[i:i + 1].numpy() for n, t in zip(names, inputs)})[0]
        assert torch.equal(data.to_uint8(torch.from_numpy(one)), data.to_uint8(torch.from_numpy(full[i:i + 1]))), i
    return full


def test_cli_quick_train_resume_eval_export_128(tiny_data128, tiny_run128, tmp_path):
    out = str(tmp_path / "run")
    common = ["--data", tiny_data128, "--out", out, "--quick", "--quick-steps", "1", "--batch", "4", "--ngf", "4",
              "--ndf", "4", "--z-dim", "16", "--group", "2"]
    assert cvaegan2.main(common + ["--no-export"]) == 0
    ck = torch.load(os.path.join(out, "cvaegan2.pt"), map_location="cpu")
    assert ck["step"] == 1 and ck["config"]["image_size"] == 128 and ck["kind"] == "cvaegan2"
    samples = os.listdir(os.path.join(out, "samples"))
    assert any(f.startswith("cvaegan2_morph_") for f in samples) and len(samples) == 2
    model_dir = os.path.join(out, "cvaegan-birds-v2")
    assert cvaegan2.main(common + ["--resume", "--classifier", os.path.join(tiny_run128, "classifier.pt"),
                                   "--eval-limit", "12", "--model-dir", model_dir]) == 0
    assert torch.load(os.path.join(out, "cvaegan2.pt"), map_location="cpu")["step"] == 2
    with open(os.path.join(out, "cvaegan2_metrics.json")) as f:
        met = json.load(f)
    for k in ("top1_generated", "fd_real_vs_generated", "morph_top1_target", "morph_layout_corr",
              "morph_layout_corr_unrelated"):
        assert np.isfinite(met[k]), k
    assert ex.validate_model_dir(model_dir, {"generator": ["z", "class_onehot", "image"],
                                             "encoder": ["image", "class_onehot", "z_mu", "z_logvar"]}) == []
    with open(os.path.join(model_dir, "model.json")) as f:
        manifest = json.load(f)
    assert manifest["name"] == "cvaegan-birds" and manifest["sizes"]["image_size"] == 128
    assert manifest["graphs"]["generator"]["outputs"][0]["shape"] == ["B", 3, 128, 128]
    assert all(v <= ex.TOLERANCE for v in manifest["training"]["verification"].values())
    assert "morph_layout_corr" in open(os.path.join(model_dir, "MODEL_CARD.md")).read()
    # same bytes at batch 1 and 4, and the graph equals the EMA generator; a soft mixture row included
    m, _ = cvaegan2.load_for_export(out)
    Kc = m.cfg.num_classes
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4, 16, generator=g)
    c = F.one_hot(torch.tensor([0, 1, 2, 3]) % Kc, Kc).float()
    c[3] = 0.3 * c[0] + 0.7 * c[1]
    full = _same_bytes_at_batch_1_and_4(os.path.join(model_dir, "generator.onnx"), (z, c))
    with torch.no_grad():
        ref = m.G_ema(z, c)
    assert np.abs(full - ref.numpy()).max() <= ex.TOLERANCE
    # the slim checkpoint alone (what the GPU script brings back) gives the same graphs
    os.remove(os.path.join(out, "cvaegan2.pt"))
    m2, ck2 = cvaegan2.load_for_export(out)
    assert ck2["kind"] == "cvaegan2-ema"
    x = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m2.G_ema(z, c), ref)
        assert torch.equal(m2.E(x, c[:2])[0], m.E(x, c[:2])[0])
