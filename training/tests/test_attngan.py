"""AttnGAN: one training step, attention masking per sample, export + verification at two batch sizes
and two caption lengths, determinism, the reference-architecture export, and the CLI end to end."""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from fgtrain import attngan
from fgtrain import export as ex
from fgtrain.attngan_nets import AttnGANConfig, Generator, words_mask_from_lens
from fgtrain.damsm import DAMSM

D = 32  # text dim of the small DAMSM used here
N_WORDS = 40


def small_cfg() -> AttnGANConfig:
    return AttnGANConfig(text_dim=D, z_dim=16, cond_dim=8, ngf=8, ndf=8, stage_sizes=[32, 64], n_res=1)


def text(B, lens, seed=0):
    """words_emb from a random text encoder for captions of the given lengths, and the float mask."""
    torch.manual_seed(seed)
    enc = DAMSM(N_WORDS, D, 8).text.eval()
    T = max(lens)
    lens = torch.tensor(lens)
    caps = torch.randint(1, N_WORDS, (B, T)) * (torch.arange(T)[None] < lens[:, None])
    with torch.no_grad():
        words, sent = enc(caps, lens)
    return words, sent, words_mask_from_lens(lens, T), caps, lens


def inputs(cfg, lens, seed=0):
    words, sent, mask, _, _ = text(len(lens), lens, seed)
    g = torch.Generator().manual_seed(seed)
    B = len(lens)
    return (torch.randn(B, cfg.z_dim, generator=g), torch.randn(B, cfg.cond_dim, generator=g), sent, words, mask)


def eval_generator(seed=0) -> Generator:
    torch.manual_seed(seed)
    G = Generator(small_cfg())
    G.train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        for i in range(3):
            G(*inputs(G.cfg, [7, 3, 5, 2], seed=10 + i))
    return G.eval()


def test_train_step_losses_finite():
    torch.manual_seed(0)
    cfg = small_cfg()
    m = attngan.AttnGAN(cfg)
    dm = DAMSM(N_WORDS, D, 8).eval()
    opts = attngan.make_optimizers(m, 1e-3, 1e-3)
    g = torch.Generator().manual_seed(0)
    B, T = 6, 9
    lens = torch.tensor([9, 4, 7, 2, 9, 5])
    batch = {"image": torch.rand(B, 3, 64, 64, generator=g) * 2 - 1,
             "caption": torch.randint(1, N_WORDS, (B, 12), generator=g) * (torch.arange(12)[None] < lens[:, None]),
             "cap_len": lens, "label": torch.tensor([0, 1, 2, 0, 1, 3])}
    before = [p.detach().clone() for p in m.G.parameters()]
    losses = attngan.train_step(m, opts, dm.text, dm.image, batch, g)
    assert all(np.isfinite(v) for v in losses.values()), losses
    assert losses["damsm"] > 0 and losses["kl"] >= 0 and losses["ms_ratio"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(m.G.parameters(), before))


def test_attention_sums_to_one_over_words_and_is_zero_on_padding():
    G = eval_generator()
    lens = [7, 3, 5, 1]
    with torch.no_grad():
        out = G(*inputs(G.cfg, lens))
    att = out[2]  # [B,T,32,32]
    assert att.shape == (4, 7, 32, 32)
    for i, n in enumerate(lens):
        assert torch.allclose(att[i, :n].sum(0), torch.ones(32, 32), atol=1e-5)
        assert torch.all(att[i, n:] == 0)


def test_mask_is_per_sample_and_noise_is_an_input():
    G = eval_generator()
    args = inputs(G.cfg, [7, 2, 5, 4])
    with torch.no_grad():
        full, again = G(*args), G(*args)
        for i in range(4):
            T_i = int((args[4][i] == 0).sum())  # the row alone, trimmed to its own length
            alone = G(*(a[i:i + 1] for a in args[:3]), args[3][i:i + 1, :, :T_i], args[4][i:i + 1, :T_i])
            assert (alone[1] - full[1][i:i + 1]).abs().max() < 1e-5, "row %d depends on the batch" % i
        other = G(torch.randn_like(args[0]), *args[1:])
        mean_ca = G(args[0], torch.zeros_like(args[1]), *args[2:])
    for a, b in zip(full, again):
        assert torch.equal(a, b)
    assert (other[1] - full[1]).abs().mean() > 1e-4  # z_code reaches the image
    assert torch.allclose(mean_ca[-2], full[-2])  # mu does not depend on the noise
    assert G.output_names() == ["img32", "img64", "att1", "mu", "logvar"]


def test_export_verifies_at_two_batch_sizes_and_two_lengths(tmp_path):
    G = eval_generator()
    dm = DAMSM(N_WORDS, D, 8).eval()
    entries = attngan.export_graphs(str(tmp_path), G, dm.text, dm.image, N_WORDS, 64,
                                    verify_batches=(1, 4), verify_T=(5, 18), log=lambda s: None)
    assert set(entries) == {"generator", "text_encoder", "image_encoder"}
    for role, e in entries.items():
        assert e["verification"] <= ex.TOLERANCE, role
    gen = entries["generator"]
    assert [s["name"] for s in gen["inputs"]] == ["z_code", "ca_eps", "sent_emb", "words_emb", "words_mask"]
    assert [s["name"] for s in gen["outputs"]] == ["img32", "img64", "att1", "mu", "logvar"]
    assert gen["outputs"][2]["shape"] == ["B", "T", 32, 32]
    # the graph itself masks per sample: run it on a batch with a padded row
    ev = ex.reference_evaluator(str(tmp_path / "generator.onnx"))
    args = inputs(G.cfg, [6, 2, 4], seed=3)
    got = ev.run(None, {s["name"]: a.numpy() for s, a in zip(gen["inputs"], args)})
    att = got[2]
    for i, n in enumerate([6, 2, 4]):
        np.testing.assert_allclose(att[i, :n].sum(0), 1.0, atol=1e-5)
        assert np.all(att[i, n:] == 0)
    assert ex.check_golden(str(tmp_path / "generator.onnx"), str(tmp_path / "golden" / "generator.json")) <= 1e-4


def test_reference_architecture_export_builds(tmp_path):
    out = str(tmp_path / "ref")
    manifest = attngan.export_reference(out, verify=False, log=lambda s: None)
    assert ex.validate_model_dir(out, {"generator": ["z_code", "ca_eps", "sent_emb", "words_emb", "words_mask",
                                                     "img64", "img128", "img256", "att1", "att2"],
                                       "text_encoder": ["captions", "cap_lens", "words_emb", "sent_emb"],
                                       "image_encoder": ["image", "cnn_code"]}) == []
    assert manifest["sizes"]["stage_sizes"] == [64, 128, 256]
    assert manifest["sizes"]["vocab_size"] >= 5000 and manifest["sizes"]["max_words"] == 25
    outs = {s["name"]: s["shape"] for s in manifest["graphs"]["generator"]["outputs"]}
    assert outs["img256"] == ["B", 3, 256, 256] and outs["att2"] == ["B", "T", 128, 128]


def test_cli_quick_train_resume_eval_export(tiny_data, tiny_run, tmp_path):
    out = str(tmp_path / "run")
    common = ["--data", tiny_data, "--out", out, "--quick", "--batch", "8", "--ngf", "8", "--ndf", "8",
              "--damsm", os.path.join(tiny_run, "damsm.pt")]
    assert attngan.main(common + ["--no-export"]) == 0
    assert torch.load(os.path.join(out, "attngan.pt"), map_location="cpu")["step"] == 2
    assert any(f.endswith(".png") for f in os.listdir(os.path.join(out, "samples")))
    assert attngan.main(common + ["--resume", "--classifier", os.path.join(tiny_run, "classifier.pt")]) == 0
    assert torch.load(os.path.join(out, "attngan.pt"), map_location="cpu")["step"] == 4
    with open(os.path.join(out, "attngan_metrics.json")) as f:
        met = json.load(f)
    for k in ("top1_generated", "diversity_ratio", "fd_real_vs_generated", "r_precision_generated",
              "r_precision_real_test"):
        assert np.isfinite(met[k]), k
    model_dir = os.path.join(out, "attngan-birds")
    assert ex.validate_model_dir(model_dir, {"generator": ["z_code", "words_mask", "img64", "att1"],
                                             "text_encoder": ["captions", "cap_lens"],
                                             "image_encoder": ["image", "cnn_code"]}) == []
    assert os.path.exists(os.path.join(model_dir, "vocab.json"))
