import torch

from fgtrain import data
from fgtrain.tokenizer import Vocab

from conftest import TINY


def test_index_counts_and_class_split(tiny_index):
    idx = tiny_index
    n = TINY["classes"] * TINY["per_class"]
    assert len(idx["images"]) == n
    assert len(idx["classes"]) == TINY["classes"]
    assert idx["seen"] and idx["heldout"]
    assert not set(idx["seen"]) & set(idx["heldout"])
    assert set(idx["seen"]) | set(idx["heldout"]) == set(idx["classes"])
    assert len(idx["attributes"]) > 0 and all("::" in a for a in idx["attributes"])
    assert set(idx["image_attributes"]) == set(idx["images"])
    assert idx["text_dir"] is not None


def test_splits_exclude_heldout_classes(tiny_data, tiny_index):
    idx = tiny_index
    train = data.CUBDataset(tiny_data, "train", "seen", 64, with_captions=False, index=idx)
    test = data.CUBDataset(tiny_data, "test", "seen", 64, with_captions=False, index=idx)
    held = data.CUBDataset(tiny_data, "all", "heldout", 64, with_captions=False, index=idx)
    allc = data.CUBDataset(tiny_data, "all", "all", 64, with_captions=False, index=idx)
    seen, heldout = set(idx["seen"]), set(idx["heldout"])
    for ds in (train, test):
        assert ds.class_ids == sorted(seen)
        assert set(ds.class_id_of.tolist()) <= seen
    assert set(held.class_id_of.tolist()) == heldout
    assert len(train) + len(test) + len(held) == len(allc) == len(idx["images"])
    assert all(idx["split"][i] == 1 for i in train.image_ids.tolist())
    assert all(idx["split"][i] == 0 for i in test.image_ids.tolist())
    assert not set(train.image_ids.tolist()) & set(test.image_ids.tolist())
    # label = position of the class among the chosen classes, the same in both splits
    for ds in (train, test):
        for lab, cid in zip(ds.labels.tolist(), ds.class_id_of.tolist()):
            assert ds.class_ids[lab] == cid
            assert ds.class_names[lab] == idx["classes"][cid]


def test_items(tiny_data, tiny_index, tiny_vocab):
    ds = data.CUBDataset(tiny_data, "train", "seen", 64, vocab=tiny_vocab, index=tiny_index)
    assert ds.images.dtype == torch.uint8 and ds.images.shape[1:] == (3, 64, 64)
    it = ds[0]
    assert it["image"].shape == (3, 64, 64) and it["image"].dtype == torch.float32
    assert -1.0 <= it["image"].min() and it["image"].max() <= 1.0
    assert it["image"].std() > 0.01
    assert it["attrs"].shape == (len(ds.attr_names),) and set(it["attrs"].unique().tolist()) <= {0.0, 1.0}
    assert len(it["captions"]) == 10 and all(isinstance(c, str) and c for c in it["captions"])
    cap, n = it["caption"], it["cap_len"]
    assert cap.shape == (tiny_vocab.max_words,) and cap.dtype == torch.long
    assert 1 <= n <= tiny_vocab.max_words
    assert (cap[:n] > 0).all() and (cap[n:] == 0).all()
    # the encoded caption is one of the item's own captions
    assert any(tiny_vocab.encode(c).ids == cap[:n].tolist() for c in it["captions"])


def test_caption_index_is_deterministic(tiny_data, tiny_index, tiny_vocab):
    a = data.CUBDataset(tiny_data, "test", "seen", 64, vocab=tiny_vocab, caption_index=3, index=tiny_index)
    for k in range(len(a)):
        it = a[k]
        assert it["caption_index"] == 3
        assert it["caption"][:it["cap_len"]].tolist() == tiny_vocab.encode(it["captions"][3]).ids
    b = a.batch(range(len(a)), caption_index=3)
    assert torch.equal(b["caption"], torch.stack([a[k]["caption"] for k in range(len(a))]))


def test_batch_and_collate_agree(tiny_data, tiny_index, tiny_vocab):
    ds = data.CUBDataset(tiny_data, "train", "seen", 64, vocab=tiny_vocab, caption_index=0, index=tiny_index)
    b = ds.batch([0, 2, 4])
    c = data.collate([ds[0], ds[2], ds[4]])
    for key in ("image", "label", "attrs", "caption", "cap_len", "class_id", "image_id"):
        assert torch.equal(b[key], c[key]), key
    assert len(c["captions"]) == 3


def test_vocab_from_seen_train_captions(tiny_data, tiny_index, tiny_vocab):
    caps = data.seen_train_captions(tiny_data, tiny_index)
    assert len(caps) > 0
    assert tiny_vocab.to_json() == Vocab.build(caps).to_json()
    train = data.CUBDataset(tiny_data, "train", "seen", 64, index=tiny_index)
    assert sorted(train.all_captions()) == sorted(caps)


def test_augment_keeps_shape_and_range(tiny_data, tiny_index):
    ds = data.CUBDataset(tiny_data, "train", "seen", 64, with_captions=False, index=tiny_index)
    x = ds.batch(range(8))["image"]
    y = data.augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert not torch.equal(x, y)
    assert torch.equal(data.to_uint8(data.to_float(ds.images[:2])), ds.images[:2])


def test_class_attributes(tiny_index):
    groups = {a.split("::")[0] for a in tiny_index["attributes"]}
    cid = tiny_index["seen"][0]
    attrs = data.class_attributes(tiny_index, cid)
    assert attrs and set(attrs) <= groups
    for g, v in attrs.items():
        assert "%s::%s" % (g, v) in tiny_index["attributes"]
