import numpy as np
import torch

from fgtrain import damsm, data, metrics
from fgtrain.damsm import DAMSM, TextEncoder, attention_similarity, load_damsm


def padded(caps, lens, T):
    out = torch.zeros(len(caps), T, dtype=torch.long)
    out[:, :caps.shape[1]] = caps
    return out


def test_text_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = TextEncoder(30, emb_dim=16, hidden=8).eval()
    lens = torch.tensor([5, 2, 1])
    caps = torch.randint(1, 30, (3, 5)) * (torch.arange(5)[None] < lens[:, None])
    w1, s1 = enc(caps, lens)
    w2, s2 = enc(padded(caps, lens, 9), lens)
    assert w1.shape == (3, 16, 5) and w2.shape == (3, 16, 9) and s1.shape == (3, 16)
    assert torch.allclose(s1, s2, atol=1e-6)
    assert torch.allclose(w1, w2[:, :, :5], atol=1e-6)
    assert (w2[:, :, 5:] == 0).all() and (w1[1, :, 2:] == 0).all()
    # each row depends on its own caption only (no mixing across the batch)
    w3, s3 = enc(caps[1:2, :2], lens[1:2])
    assert torch.allclose(s3[0], s1[1], atol=1e-6)
    # the backward direction reads the caption reversed: the first word's backward state differs
    # from the last word's forward state, and both halves of the sentence are used
    assert not torch.allclose(s1[0, :8], s1[0, 8:])


def test_word_similarity_masks_padding_per_sample():
    torch.manual_seed(0)
    img = torch.randn(4, 16, 3, 3)
    words = torch.randn(3, 16, 6)
    lens = torch.tensor([6, 3, 2])
    mask = torch.arange(6)[None] >= lens[:, None]
    s = attention_similarity(img, words, mask)
    # garbage at padded positions must not change anything
    words2 = words.clone()
    words2[mask.unsqueeze(1).expand_as(words2)] = 100.0
    assert torch.allclose(s, attention_similarity(img, words2, mask), atol=1e-5)
    # a caption alone gives the same score as inside a batch
    s1 = attention_similarity(img, words[1:2, :, :3], mask[1:2, :3])
    assert torch.allclose(s[:, 1:2], s1, atol=1e-5)


def test_same_class_negatives_are_masked():
    code = torch.randn(4, 8)
    sent = torch.randn(4, 8)
    l0, l1, _ = damsm.sent_loss(code, sent, torch.tensor([7, 7, 7, 7]))
    assert l0.item() == 0.0 and l1.item() == 0.0  # only the true pair is left in every row
    l0, _, sim = damsm.sent_loss(code, sent, torch.tensor([1, 2, 1, 3]))
    assert torch.isinf(sim[0, 2]) and torch.isfinite(sim[0, 1]) and l0.item() > 0


def test_training_steps_reduce_loss(tiny_data, tiny_index, tiny_vocab):
    torch.manual_seed(0)
    ds = data.CUBDataset(tiny_data, "train", "seen", 64, vocab=tiny_vocab, caption_index=0, index=tiny_index)
    b = ds.batch(range(0, len(ds), max(1, len(ds) // 10)))
    T = int(b["cap_len"].max())
    m = DAMSM(len(tiny_vocab), 256, width=8)
    m.text.drop.p = 0.0
    opt = torch.optim.Adam(m.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(6):
        m.train()
        L = m.losses(b["image"], b["caption"][:, :T], b["cap_len"], b["class_id"])
        assert all(torch.isfinite(v) for v in L.values())
        opt.zero_grad()
        L["total"].backward()
        opt.step()
        losses.append(L["total"].item())
    assert losses[-1] < losses[0]


def test_checkpoint_has_vocab_and_loads(tiny_run, tiny_vocab):
    te, ie, vocab = load_damsm(tiny_run + "/damsm.pt")
    assert vocab.id2word == tiny_vocab.id2word
    assert not te.training and not ie.training
    feats, code = ie(torch.zeros(2, 3, 64, 64))
    assert feats.shape == (2, 256, 8, 8) and code.shape == (2, 256)
    ck = torch.load(tiny_run + "/damsm.pt")
    assert ck["step"] == 8 and "r_precision" in ck["metrics"]


def test_r_precision():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(50), 4)
    codes = rng.normal(size=(200, 32))
    assert metrics.r_precision(codes, codes, labels) == 1.0
    assert metrics.r_precision(codes, codes + 0.01 * rng.normal(size=codes.shape), labels) == 1.0
    rand = metrics.r_precision(codes, rng.normal(size=(200, 32)), labels, folds=5)
    assert rand < 0.06  # chance is 1/100


def test_fast_lstm_matches_nn_lstm():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(12, 8, batch_first=True)
    x = torch.randn(3, 5, 12)
    assert torch.allclose(damsm.run_lstm(lstm, x), lstm(x)[0], atol=1e-6)
