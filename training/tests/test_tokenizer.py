import json

import pytest

from fgtrain.tokenizer import NoKnownWordError, Vocab, golden_tokenizer, tokenize


def small_vocab(max_words=18):
    return Vocab.build(["a red bird", "a bird with red wings", "a small bird", "the bird"], max_words)


def test_tokenize_rules():
    assert tokenize("This BIRD has a Red-Crown.") == ["this", "bird", "has", "a", "red", "crown"]
    assert tokenize("café naïve") == ["caf", "nave"]  # non-ASCII characters are dropped, not split on
    assert tokenize("bird_1 2nd,3") == ["bird_1", "2nd", "3"]
    assert tokenize("\u212a\u0130") == []  # dropped before lower-casing (Kelvin sign, dotted I)
    assert tokenize("  \t\n ") == []


def test_vocab_order_and_padding():
    v = small_vocab()
    assert v.word2id["<pad>"] == 0
    # frequency: bird 4, a 3, red 2, then alphabetical: small, the, wings, with
    assert v.id2word == ["<pad>", "bird", "a", "red", "small", "the", "wings", "with"]


def test_encode_unknown_and_truncation():
    v = small_vocab(max_words=3)
    e = v.encode("A RED zebra bird, with wings!")
    assert e.ids == [v.word2id[w] for w in ("a", "red", "bird")]
    assert e.unknown == ["zebra"]
    assert e.dropped == ["with", "wings"]
    ids, n = v.encode_padded("red bird", 5)
    assert n == 2 and ids == [3, 1, 0, 0, 0]
    with pytest.raises(NoKnownWordError):
        v.encode("zebra giraffe")
    with pytest.raises(NoKnownWordError):
        v.encode("")


def test_save_load_round_trip(tmp_path):
    v = small_vocab()
    p = tmp_path / "vocab.json"
    v.save(p)
    obj = json.loads(p.read_text())
    assert obj["tokenizer"] == {"lowercase": True, "pattern": "[a-z0-9_]+", "ascii_only": True,
                                "max_words": 18, "truncate": "first"}
    assert obj["padding_id"] == 0 and obj["words"]["<pad>"] == 0
    w = Vocab.load(p)
    assert w.id2word == v.id2word and w.max_words == v.max_words


def test_golden_round_trip(tmp_path, tiny_vocab):
    rows = golden_tokenizer(tiny_vocab)
    p = tmp_path / "tokenizer.json"
    p.write_text(json.dumps(rows))
    again = json.loads(p.read_text())
    assert again == rows
    assert any(r["dropped"] for r in rows), "a row longer than max_words"
    assert any(r["unknown"] and r["ids"] for r in rows), "a row with unknown words"
    assert any(r.get("error") for r in rows), "a row with no known word"
    assert any(any(ord(ch) > 127 for ch in r["caption"]) for r in rows)
    assert any(r["caption"] != r["caption"].lower() for r in rows)
    v = Vocab.from_json(tiny_vocab.to_json())
    for r in again:
        if r.get("error"):
            with pytest.raises(NoKnownWordError):
                v.encode(r["caption"])
            continue
        e = v.encode(r["caption"])
        assert (e.ids, e.unknown, e.dropped) == (r["ids"], r["unknown"], r["dropped"])
        assert len(e.ids) <= v.max_words
