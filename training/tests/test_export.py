import json
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fgtrain import export
from fgtrain.export import (CLASSIFIER_ROLES, check_golden, check_specs, decode_tensor, export_graph,
                            image_inputs, spec, validate_model_dir, verify)
from fgtrain.tokenizer import Vocab


@pytest.fixture(scope="session")
def model_dir(tiny_run, tiny_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("models") / "classifier-birds")
    export.write_classifier_dir(out, tiny_data, tiny_run + "/classifier.pt", tiny_run + "/damsm.pt",
                                {"classifier_top1_test_seen": {"value": 0.5, "how": "test"}},
                                verify_batches=(1, 4), verify_T=(5, 18), log=lambda *a: None)
    return out


def load(d, name):
    with open(os.path.join(d, name), encoding="utf-8") as f:
        return json.load(f)


def test_manifest_valid(model_dir):
    assert validate_model_dir(model_dir, CLASSIFIER_ROLES) == []
    m = load(model_dir, "model.json")
    assert m["schema"] == 1 and m["name"] == "classifier-birds" and m["kind"] == "classifier"
    assert set(m["graphs"]) == {"classifier", "image_encoder", "text_encoder"}
    for role, e in m["graphs"].items():
        assert e["sha256"] == export.sha256(os.path.join(model_dir, e["file"]))
    te = m["graphs"]["text_encoder"]
    assert [(s["role"], s["dtype"], s["shape"]) for s in te["inputs"]] == [
        ("captions", "int64", ["B", "T"]), ("cap_lens", "int64", ["B"])]
    assert [(s["role"], s["shape"]) for s in te["outputs"]] == [
        ("words_emb", ["B", 256, "T"]), ("sent_emb", ["B", 256])]
    cl = m["graphs"]["classifier"]
    K, A, F = m["sizes"]["num_classes"], m["sizes"]["num_attributes"], m["sizes"]["feature_dim"]
    assert F == 64  # 8 x width (8 in the tests; 256 at the default width 32)
    assert [(s["role"], s["shape"]) for s in cl["outputs"]] == [
        ("logits", ["B", K]), ("features", ["B", F]), ("attributes", ["B", A]), ("cnn_code", ["B", 256])]
    assert m["training"]["steps"] == 16 and m["vocab"] == "vocab.json" and m["classes"] == "classes.json"
    assert "classifier_top1_test_seen" in open(os.path.join(model_dir, "MODEL_CARD.md")).read()


def test_sha256_mismatch_is_reported(model_dir, tmp_path):
    import shutil
    d = tmp_path / "copy"
    shutil.copytree(model_dir, d)
    with open(d / "classifier.onnx", "ab") as f:
        f.write(b"\0")
    assert any("sha256" in p for p in validate_model_dir(str(d)))


def test_classes_and_vocab(model_dir, tiny_index, tiny_vocab):
    c = load(model_dir, "classes.json")
    assert c["attributes"] == tiny_index["attributes"]
    assert len(c["classes"]) == len(tiny_index["classes"])
    seen = [x for x in c["classes"] if x["seen"]]
    held = [x for x in c["classes"] if not x["seen"]]
    assert {x["id"] for x in held} == set(tiny_index["heldout"]) and all(x["index"] == -1 for x in held)
    assert sorted(x["index"] for x in seen) == list(range(len(seen)))
    assert all(x["label"] and x["name"] == tiny_index["classes"][x["id"]] for x in c["classes"])
    assert all(isinstance(x["attributes"], dict) and x["attributes"] for x in c["classes"])
    v = Vocab.load(os.path.join(model_dir, "vocab.json"))
    assert v.id2word == tiny_vocab.id2word


def test_goldens(model_dir):
    for g in ("classifier", "image_encoder", "text_encoder"):
        path = os.path.join(model_dir, "golden", g + ".json")
        obj = load(os.path.dirname(path), os.path.basename(path))
        assert obj["tolerance"] == 1e-4
        for t in list(obj["inputs"].values()) + list(obj["outputs"].values()):
            assert decode_tensor(t).shape == tuple(t["shape"]) and t["shape"][0] == 3
        assert check_golden(os.path.join(model_dir, g + ".onnx"), path) <= 1e-4
    t = load(os.path.join(model_dir, "golden"), "text_encoder.json")
    caps, lens = decode_tensor(t["inputs"]["captions"]), decode_tensor(t["inputs"]["cap_lens"])
    assert caps.dtype == np.int64 and (lens < caps.shape[1]).any() and (lens >= 1).all()
    rows = load(os.path.join(model_dir, "golden"), "tokenizer.json")
    assert rows and all({"caption", "ids", "unknown", "dropped"} <= set(r) for r in rows)


def test_one_scorer_graph_gives_the_image_encoders_code(model_dir, tiny_run):
    # the DAMSM was trained with the classifier's trunk frozen: the classifier graph gives the same
    # cnn_code as image_encoder.onnx from one trunk run (the golden inputs are the same images)
    g = load(os.path.join(model_dir, "golden"), "classifier.json")
    e = load(os.path.join(model_dir, "golden"), "image_encoder.json")
    assert np.array_equal(decode_tensor(g["inputs"]["image"]), decode_tensor(e["inputs"]["image"]))
    a, b = decode_tensor(g["outputs"]["cnn_code"]), decode_tensor(e["outputs"]["cnn_code"])
    assert a.shape == b.shape and np.abs(a).max() > 0 and np.allclose(a, b, atol=1e-5)
    # a DAMSM whose trunk moved does not share it: no folding
    from fgtrain.classifier import load_classifier
    from fgtrain.damsm import load_damsm_model
    clf, _ = load_classifier(tiny_run + "/classifier.pt")
    dm, _, _ = load_damsm_model(tiny_run + "/damsm.pt")
    assert export.shares_trunk(clf, dm.image)
    with torch.no_grad():
        next(dm.image.trunk.parameters()).add_(1e-3)
    assert not export.shares_trunk(clf, dm.image)


def test_feature_stats(model_dir, tiny_data, tiny_index):
    from fgtrain import data
    fs = load(model_dir, "feature_stats.json")
    n_test = len(data.CUBDataset(tiny_data, "test", "seen", 64, with_captions=False, index=tiny_index))
    assert fs["test_seen"]["n"] == n_test
    for k in ("test_seen", "train_seen"):
        mu, cov = np.array(fs[k]["mean"]), np.array(fs[k]["cov"])
        assert mu.shape == (64,) and cov.shape == (64, 64) and np.allclose(cov, cov.T)


def test_text_graph_any_batch_and_length(model_dir, tiny_vocab):
    # the fixture already verified B in {1, 4} x T in {5, 18}; here B=7, T=2 on the exported graph
    ev = export.reference_evaluator(os.path.join(model_dir, "text_encoder.onnx"))
    caps, lens = export.text_inputs(7, 2, len(tiny_vocab), seed=1)
    words, sent = ev.run(None, {"captions": caps.numpy(), "cap_lens": lens.numpy()})
    assert words.shape == (7, 256, 2) and sent.shape == (7, 256)
    assert np.all(words[lens.numpy() == 1][:, :, 1] == 0)


class Zoo(nn.Module):
    """Ops the generators use, to check the reference evaluator against PyTorch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)
        self.bn = nn.BatchNorm2d(8)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.up = nn.ConvTranspose2d(4, 4, 4, 2, 1)
        self.fc = nn.Linear(4 * 8 * 8, 6)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x, z):
        h = F.leaky_relu(self.bn(self.conv(x)), 0.2)
        h = self.inorm(h)
        h = F.glu(h, dim=1)  # Split/Slice + Sigmoid + Mul
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = F.avg_pool2d(torch.tanh(self.up(h)), 4)
        h = F.max_pool2d(h, 2)
        logits = self.fc(h.flatten(1)) + z.sum(1, keepdim=True)
        img = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)
        return torch.softmax(logits, 1), torch.sigmoid(img) * z.mean()


def test_reference_evaluator_ops(tmp_path):
    torch.manual_seed(0)
    m = Zoo().eval()
    ins = [spec("x", ["B", 3, 16, 16]), spec("z", ["B", 5])]
    outs = [spec("p", ["B", 6]), spec("img", ["B", 3, 8, 8])]
    path = str(tmp_path / "zoo.onnx")
    export_graph(m, (torch.randn(2, 3, 16, 16), torch.randn(2, 5)), ins, outs, path)
    r = verify(path, m, [(torch.randn(b, 3, 16, 16), torch.randn(b, 5)) for b in (1, 3)])
    assert r["max_abs_diff"] <= 1e-4 and len(r["runs"]) == 2


def test_verify_detects_a_wrong_graph(tmp_path):
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    path = str(tmp_path / "m.onnx")
    export_graph(m, image_inputs(2, 8), [spec("image", ["B", 3, 8, 8])], [spec("y", ["B", 4])], path)
    verify(path, m, [image_inputs(1, 8), image_inputs(3, 8)])
    with torch.no_grad():
        m[0].bias += 0.01
    with pytest.raises(AssertionError):
        verify(path, m, [image_inputs(2, 8)])


def test_check_specs_names_the_tensor(tmp_path):
    import onnx
    m = nn.Linear(4, 2)
    path = str(tmp_path / "l.onnx")
    export_graph(m, (torch.randn(2, 4),), [spec("x", ["B", 4])], [spec("y", ["B", 2])], path)
    model = onnx.load(path)
    with pytest.raises(ValueError, match="'x'"):
        check_specs(model, [spec("x", ["B", 4], "int64")], [spec("y", ["B", 2])])
    with pytest.raises(ValueError, match="'logits'"):
        check_specs(model, [spec("x", ["B", 4])], [spec("logits", ["B", 2])])
    with pytest.raises(ValueError, match="rank"):
        check_specs(model, [spec("x", ["B", 4, 1])], [spec("y", ["B", 2])])


def test_cli_eval_and_dispatch(tiny_run, tiny_data, tmp_path, capsys):
    from fgtrain.__main__ import main
    out = tmp_path / "eval.json"
    assert main(["eval", "--data", tiny_data, "--run", tiny_run, "--folds", "2", "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    for k in ("top1_test_seen", "r_precision_test_seen", "fid_test_vs_train_seen",
              "inception_score_test_seen", "intra_class_diversity_test_seen"):
        assert np.isfinite(m[k]), k
    assert 0 <= m["top1_test_seen"] <= 1 and 0 <= m["r_precision_test_seen"] <= 1
    assert main(["no-such-command"]) == 2
