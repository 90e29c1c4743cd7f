"""fgtrain bench: the PyTorch side of the ONNX Runtime vs eager comparison (scripts/bench.sh)."""

import json
import os

import pytest

from fgtrain import bench, export


@pytest.fixture(scope="module")
def models(tiny_run, tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmodels")
    export.write_classifier_dir(str(root / "classifier-birds"), tiny_data, tiny_run + "/classifier.pt",
                                tiny_run + "/damsm.pt", verify_batches=(1,), verify_T=(5,), log=lambda *a: None)
    return str(root)


def test_checkpoint_weights_are_the_exported_ones(models, tiny_run):
    res = bench.run(models, tiny_run, threads=1, batches=[1, 3], repeats=2, warmup=1, min_seconds=0,
                    log=lambda s: None)
    keys = [g["graph"] for g in res["graphs"]]
    assert keys == ["classifier-birds/classifier", "classifier-birds/image_encoder", "classifier-birds/text_encoder"]
    for g in res["graphs"]:
        assert "= exported weights" in g["weights"], g["weights"]
        assert set(g["batches"]) == {"1", "3"}
        for b in g["batches"].values():
            assert len(b["samples"]) == 2 and b["min"] <= b["images_per_s"] <= b["max"] and b["min"] > 0
    assert res["threads"] == 1


def test_random_init_without_checkpoints(models, tmp_path):
    res = bench.run(models, str(tmp_path), threads=1, batches=[2], repeats=1, warmup=1, min_seconds=0,
                    only="birds/classifier", log=lambda s: None)
    assert [g["graph"] for g in res["graphs"]] == ["classifier-birds/classifier"]
    assert res["graphs"][0]["weights"].startswith("random init")


def test_duplicate_graphs_are_measured_once(models, tmp_path):
    # a second model dir holding the same text encoder file: one entry, one alias
    src = os.path.join(models, "classifier-birds")
    with open(os.path.join(src, "model.json"), encoding="utf-8") as f:
        m = json.load(f)
    other = tmp_path / "models"
    os.makedirs(other / "classifier-birds")
    os.makedirs(other / "zz-copy")
    for d in ("classifier-birds", "zz-copy"):
        mm = dict(m, name=d)
        with open(other / d / "model.json", "w", encoding="utf-8") as f:
            json.dump(mm, f)
    graphs = bench.unique_graphs(bench.read_models(str(other)))
    assert [g["key"] for g in graphs] == ["classifier-birds/classifier", "classifier-birds/image_encoder",
                                          "classifier-birds/text_encoder"]
    assert graphs[2]["aliases"] == ["zz-copy/text_encoder"]


def test_inputs_follow_the_manifest():
    graph = {"inputs": [{"name": "captions", "dtype": "int64", "shape": ["B", "T"]},
                        {"name": "cap_lens", "dtype": "int64", "shape": ["B"]},
                        {"name": "words_mask", "dtype": "float32", "shape": ["B", "T"]},
                        {"name": "z", "dtype": "float32", "shape": ["B", 7]}]}
    caps, lens, mask, z = bench.make_inputs(graph, {"max_words": 5, "vocab_size": 9}, 4)
    assert caps.shape == (4, 5) and int(caps.min()) >= 1 and int(caps.max()) < 9
    assert lens.tolist() == [5, 5, 5, 5]
    assert mask.shape == (4, 5) and float(mask.abs().sum()) == 0
    assert z.shape == (4, 7) and float(z.std()) > 0.5
