"""AttnGAN v2: a step under every ablation switch, attention consistency, and the CLI end to end on
tiny 128-px data (train, resume, evaluate, export, ONNX parity, the same bytes at batch 1 and 4)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from fgtrain import attngan2, data
from fgtrain import export as ex
from fgtrain.attngan2_nets import AttnGAN2Config, Generator2
from fgtrain.damsm import DAMSM

D, N_WORDS = 32, 40


def tiny_cfg(**kw) -> AttnGAN2Config:
    return AttnGAN2Config(text_dim=D, z_dim=16, cond_dim=8, ngf=4, ndf=4, stage_sizes=[16, 32, 64], **kw)


def batch(B=6, S=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([9, 4, 7, 2, 9, 5][:B])
    caps = torch.randint(1, N_WORDS, (B, 12), generator=g) * (torch.arange(12)[None] < lens[:, None])
    return {"image": torch.rand(B, 3, S, S, generator=g) * 2 - 1, "caption": caps, "cap_len": lens,
            "label": torch.tensor([0, 1, 2, 0, 1, 3][:B])}


@pytest.mark.parametrize("switches", [
    {},
    {"recipe": {"loss": "bce", "diffaug": "none"}, "weights": {"gp": 0.0, "ms": 0.0, "att": 0.0}},
    {"cfg": {"sn": False, "fusion": False, "up": "deconv"}, "recipe": {"gp_every": 2, "diffaug": "translation"}},
])
def test_train_step_under_each_switch(switches):
    torch.manual_seed(0)
    m = attngan2.AttnGAN2(tiny_cfg(damsm_size=32, **switches.get("cfg", {})),
                          attngan2.LossWeights(**switches.get("weights", {})),
                          attngan2.Recipe(**switches.get("recipe", {})))
    dm = DAMSM(N_WORDS, D, 8).eval()
    opts = attngan2.make_optimizers(m)
    g = torch.Generator().manual_seed(0)
    before_g = [p.detach().clone() for p in m.G.parameters()]
    before_d = [p.detach().clone() for p in m.Ds.parameters()]
    for step in range(2):
        losses = attngan2.train_step(m, opts, dm.text, dm.image, batch(), g, step)
    assert all(np.isfinite(v) for v in losses.values()), losses
    w = m.w
    assert ("gp0" in losses) == (w.gp > 0 and 1 % m.recipe.gp_every == 0)
    assert ("att" in losses) == (w.att > 0) and ("ms_ratio" in losses) == (w.ms > 0)
    assert any(not torch.equal(a, b) for a, b in zip(m.G.parameters(), before_g))
    assert any(not torch.equal(a, b) for a, b in zip(m.Ds.parameters(), before_d))
    assert all(p.requires_grad for p in m.Ds.parameters())


def test_attention_consistency_is_zero_for_matching_maps_and_masks_padding():
    torch.manual_seed(0)
    B, T, R = 2, 5, 4
    region = torch.randn(B, D, R, R)
    words = torch.randn(B, D, T)
    mask = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.float32)
    q = attngan2.damsm_attention(region, words, mask)  # [B,T,R*R]
    assert torch.allclose(q.sum(2), torch.ones(B, T), atol=1e-5)
    # a generator map equal to q (upsampled x2) gives KL 0 and agreement 1 on the real words
    att = q.view(B, T, R, R).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert attngan2.attention_consistency(att, region, words, mask).abs() < 1e-5
    agree = attngan2.attention_agreement(att, region, words, mask)
    assert torch.allclose(agree[0, :3], torch.ones(3), atol=1e-5) and torch.all(agree[0, 3:] == 0)
    uniform = torch.full_like(att, 1.0 / (R * R))
    assert attngan2.attention_consistency(uniform, region, words, mask) > 0


def test_generator_contract_and_rows_independent():
    torch.manual_seed(0)
    G = Generator2(tiny_cfg()).eval()
    lens = torch.tensor([7, 3, 5, 1])
    enc = DAMSM(N_WORDS, D, 8).text.eval()
    caps = torch.randint(1, N_WORDS, (4, 7)) * (torch.arange(7)[None] < lens[:, None])
    with torch.no_grad():
        words, sent = enc(caps, lens)
        mask = (torch.arange(7)[None] >= lens[:, None]).float()
        z, eps = torch.randn(4, 16), torch.randn(4, 8)
        out = G(z, eps, sent, words, mask)
        alone = [G(z[i:i + 1], eps[i:i + 1], sent[i:i + 1], words[i:i + 1], mask[i:i + 1]) for i in range(4)]
    assert G.output_names() == ["img16", "img32", "img64", "att1", "att2", "mu", "logvar"]
    assert [tuple(o.shape) for o in out[:5]] == [(4, 3, 16, 16), (4, 3, 32, 32), (4, 3, 64, 64),
                                                 (4, 7, 16, 16), (4, 7, 32, 32)]
    for i, n in enumerate(lens.tolist()):
        assert torch.allclose(out[4][i, :n].sum(0), torch.ones(32, 32), atol=1e-5)
        assert torch.all(out[4][i, n:] == 0)
        for a, b in zip(alone[i], out):
            assert (a - b[i:i + 1]).abs().max() < 1e-5


def _rows_alone_same_bytes(path, args):
    """Run the graph on a batch of 4 and on each row alone: the uint8 images must be identical."""
    ev = ex.reference_evaluator(path)
    names = ["z_code", "ca_eps", "sent_emb", "words_emb", "words_mask"]
    full = ev.run(None, {n: a.numpy() for n, a in zip(names, args)})
    for i in range(args[0].shape[0]):
        one = ev.run(None, {n: a[i:i + 1].numpy() for n, a in zip(names, args)})
        for k in range(3):  # img32, img64, img128
            a = data.to_uint8(torch.from_numpy(one[k]))
            b = data.to_uint8(torch.from_numpy(full[k][i:i + 1]))
            assert torch.equal(a, b), "row %d of output %d differs between batch 1 and 4" % (i, k)
    return full


def test_cli_quick_train_resume_eval_export_128(tiny_data128, tiny_run128, tmp_path):
    out = str(tmp_path / "run")
    damsm = os.path.join(tiny_run128, "damsm.pt")
    common = ["--data", tiny_data128, "--out", out, "--quick", "--quick-steps", "1", "--batch", "4", "--ngf", "4",
              "--ndf", "4", "--damsm", damsm]
    assert attngan2.main(common + ["--no-export"]) == 0
    ck = torch.load(os.path.join(out, "attngan2.pt"), map_location="cpu")
    assert ck["step"] == 1 and ck["config"]["stage_sizes"] == [32, 64, 128] and ck["kind"] == "attngan2"
    assert os.path.exists(os.path.join(out, "attngan2.done"))
    model_dir = os.path.join(out, "attngan-birds-v2")
    assert attngan2.main(common + ["--resume", "--classifier", os.path.join(tiny_run128, "classifier.pt"),
                                   "--eval-limit", "12", "--model-dir", model_dir]) == 0
    ck = torch.load(os.path.join(out, "attngan2.pt"), map_location="cpu")
    assert ck["step"] == 2
    with open(os.path.join(out, "attngan2_metrics.json")) as f:
        met = json.load(f)
    for k in ("top1_generated", "fd_real_vs_generated", "r_precision_generated", "attention_agreement"):
        assert np.isfinite(met[k]), k
    assert ex.validate_model_dir(model_dir, {
        "generator": ["z_code", "ca_eps", "sent_emb", "words_emb", "words_mask", "img32", "img64", "img128",
                      "att1", "att2"],
        "text_encoder": ["captions", "cap_lens"], "image_encoder": ["image", "cnn_code"]}) == []
    with open(os.path.join(model_dir, "model.json")) as f:
        manifest = json.load(f)
    assert manifest["name"] == "attngan-birds" and manifest["sizes"]["image_size"] == 128
    assert all(v <= ex.TOLERANCE for v in manifest["training"]["verification"].values())
    ie = manifest["graphs"]["image_encoder"]["inputs"][0]["shape"]
    assert ie == ["B", 3, 128, 128]
    # the exported graph: same bytes at batch 1 and 4, and equal to the EMA generator in PyTorch
    G, _ = attngan2.load_generator(out)
    from fgtrain.attngan import generator_inputs
    from fgtrain.damsm import load_damsm
    text_enc, _, vocab = load_damsm(damsm)
    args = generator_inputs(G.cfg, text_enc, 4, 9, len(vocab), seed=5)
    full = _rows_alone_same_bytes(os.path.join(model_dir, "generator.onnx"), args)
    with torch.no_grad():
        ref = G(*args)
    assert np.abs(full[2] - ref[2].numpy()).max() <= ex.TOLERANCE
    # the slim checkpoint alone (what the GPU script brings back) exports the same generator
    os.remove(os.path.join(out, "attngan2.pt"))
    G2, ck2 = attngan2.load_generator(out)
    assert ck2["kind"] == "attngan2-ema" and ck2["step"] == 2
    with torch.no_grad():
        assert torch.equal(G2(*args)[2], ref[2])
