"""The v2 generators' stabilisers: spectral norm, the zero-centred gradient penalty (double backward
through spectral norm), DiffAugment, deep-fusion blocks, slim checkpoints and the deadline budget."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn as nn

from fgtrain import gan2


def test_spectral_norm_bounds_the_top_singular_value():
    torch.manual_seed(0)
    c = gan2.SNConv2d(8, 16, 3, 1, 1)
    with torch.no_grad():
        c.weight.mul_(5.0)
    c.train()
    x = torch.randn(2, 8, 6, 6)
    for _ in range(30):  # power iterations happen in training forwards
        c(x)
    s = torch.linalg.svdvals(c.sn_weight().detach().flatten(1))[0].item()
    assert abs(s - 1.0) < 0.02, s
    off = gan2.SNConv2d(8, 16, 3, 1, 1, sn=False)
    assert torch.equal(off.sn_weight(), off.weight)
    # eval mode does not move u
    c.eval()
    u = c.sn_u.clone()
    c(x)
    assert torch.equal(u, c.sn_u)


def test_gradient_penalty_trains_d_through_spectral_norm():
    torch.manual_seed(0)
    D = nn.Sequential(gan2.conv(3, 8, 3), nn.LeakyReLU(0.2), gan2.DownBlock(8, 16), nn.Flatten(),
                      gan2.SNLinear(16 * 4 * 4, 1))
    D.train()
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    e = torch.randn(4, 5, requires_grad=True)
    out = D(x).flatten() + (e ** 2).sum(1)
    gp = gan2.zero_centred_gp(out, (x, e), k=2.0, p=6.0)
    gx, ge = torch.autograd.grad(out.sum(), (x, e), retain_graph=True)
    norm = (gx.flatten(1).pow(2).sum(1) + ge.pow(2).sum(1)).sqrt()
    assert torch.allclose(gp, 2.0 * norm.pow(6).mean(), rtol=1e-4)
    gp.backward()
    weights = [p for n, p in D.named_parameters() if n.endswith("weight")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)  # (biases: ~0 through lrelu)


def test_diff_augment_is_seeded_differentiable_and_switchable():
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    pol = gan2.parse_policy("color,translation,cutout")
    a = gan2.diff_augment(x, pol, torch.Generator().manual_seed(1))
    b = gan2.diff_augment(x, pol, torch.Generator().manual_seed(1))
    c = gan2.diff_augment(x, pol, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(gan2.diff_augment(x, gan2.parse_policy("none"), None), x)
    # cutout zeroes a square of half the side (at least a quarter of it inside the image)
    cut = gan2.diff_augment(x, ("cutout",), torch.Generator().manual_seed(0))
    zero = (cut == 0).all(1).flatten(1).sum(1)
    assert torch.all(zero >= 16) and torch.all(zero <= 64)
    # translation moves content, padding with zeros, by at most 1/8 of the side
    t = gan2.diff_augment(torch.ones(2, 3, 16, 16), ("translation",), torch.Generator().manual_seed(3))
    assert t.sum() > 0.7 * 2 * 3 * 256
    y = x.clone().requires_grad_(True)
    gan2.diff_augment(y, pol, torch.Generator().manual_seed(0)).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        gan2.parse_policy("color,flip")


def test_fused_block_starts_as_identity_affine_and_rows_are_independent():
    torch.manual_seed(0)
    blk = gan2.FusedResBlock(4, 6, 10, up="nearest").eval()
    c = torch.randn(3, 10)
    h = torch.randn(3, 4, 5, 5)
    a = gan2.Affine(10, 4)
    assert torch.allclose(a(h, c), h)
    with torch.no_grad():
        out = blk(h, c)
        assert out.shape == (3, 6, 10, 10)
        for i in range(3):
            assert (blk(h[i:i + 1], c[i:i + 1]) - out[i:i + 1]).abs().max() < 1e-5
    de = gan2.FusedResBlock(4, 4, 10, up="deconv", fusion=False)
    assert de(h, c).shape == (3, 4, 10, 10)


def test_slim_state_fits_or_falls_back_to_fp16():
    m = nn.Linear(100, 100)
    sds, dtype = gan2.slim_state({"m": m})
    assert dtype == "float32" and sds["m"]["weight"].dtype == torch.float32
    sds, dtype = gan2.slim_state({"m": m}, max_bytes=1000)
    assert dtype == "float16" and sds["m"]["weight"].dtype == torch.float16
    m2 = nn.Linear(100, 100)
    gan2.load_slim_state(m2, sds["m"])
    assert m2.weight.dtype == torch.float32
    assert torch.allclose(m2.weight, m.weight, atol=1e-3)


def test_deadline_budget_stops_without_marking_done(tmp_path):
    b = gan2.DeadlineBudget(10.0, 0.0, stop_at=time.time() - 1)
    assert b.done() and b.deadline_hit()
    gan2.write_done(str(tmp_path), "x", b)
    assert not (tmp_path / "x.done").exists()
    b = gan2.DeadlineBudget(10.0, 0.0, max_steps=2)
    b.step = 2
    assert b.done()
    gan2.write_done(str(tmp_path), "x", b)
    assert (tmp_path / "x.done").exists()
