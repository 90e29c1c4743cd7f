"""Real CUB-200-2011 as users download it: every network trainable, evaluable and exportable on its
own, names chosen at export, a generator refused when its scorer does not know its classes, the photo
classifier (ResNet, 96 px and up), and early errors on partial downloads and missing captions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO
from fgtrain import data
from fgtrain.__main__ import main as fgtrain

FIXTURE = os.path.join(REPO, "internal", "cub", "testdata", "cubfixture.py")


def fixture(out, case):
    r = subprocess.run([sys.executable, FIXTURE, "--out", str(out), "--case", case], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return str(out)


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    return fixture(tmp_path_factory.mktemp("real") / "nested", "nested")


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    return fixture(tmp_path_factory.mktemp("real") / "partial", "partial")


def test_classifier_alone_exports_and_evaluates(nested, tmp_path, capsys):
    run = str(tmp_path / "run")  # a classifier and no DAMSM
    fgtrain(["classifier", "--data", nested, "--out", run, "--quick", "--width", "8", "--batch", "4",
             "--threads", "1"])
    out = tmp_path / "models" / "some-dir"
    fgtrain(["export", "--data", nested, "--run", run, "--out", str(out), "--name", "classifier-x"])
    m = json.loads((out / "model.json").read_text())
    assert m["name"] == "classifier-x" and m["kind"] == "classifier" and sorted(m["graphs"]) == ["classifier"]
    assert "vocab" not in m and not (out / "text_encoder.onnx").exists()
    from fgtrain.export import validate_model_dir
    assert validate_model_dir(str(out)) == []
    capsys.readouterr()
    fgtrain(["eval", "--data", nested, "--run", run, "--quick"])
    res = json.loads(capsys.readouterr().out)
    assert "top1_test_seen" in res and "r_precision_test_seen" not in res


def test_photo_resnet_trains_exports_at_96(nested, tmp_path):
    run = str(tmp_path / "run")
    fgtrain(["classifier", "--data", nested, "--out", run, "--quick", "--arch", "resnet", "--size", "96",
             "--width", "8", "--batch", "4", "--threads", "1"])
    from fgtrain import load_checkpoint
    ck = load_checkpoint(os.path.join(run, "classifier.pt"))
    assert ck["config"]["size"] == 96 and ck["config"]["augment"] == "photo" and ck["step"] == 8
    out = tmp_path / "classifier-photo"
    fgtrain(["export", "--data", nested, "--run", run, "--out", str(out)])
    m = json.loads((out / "model.json").read_text())
    assert m["sizes"]["image_size"] == 96 and m["name"] == "classifier-photo"
    with pytest.raises(SystemExit):
        fgtrain(["classifier", "--data", nested, "--out", run, "--size", "100"])


def test_pretrained_resnet18_weights_load_by_name():
    from fgtrain.classifier import PhotoResTrunk, load_pretrained
    src = PhotoResTrunk(64)
    sd = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in src.state_dict().items()}
    sd["fc.weight"], sd["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)  # torchvision's head
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fake_resnet18_%d.pth" % os.getpid())
    torch.save(sd, path)
    try:
        dst = PhotoResTrunk(64)
        assert load_pretrained(dst, path) == len(src.state_dict())
        assert torch.equal(dst.layer4[1].conv2.weight, sd["layer4.1.conv2.weight"])
        with pytest.raises(ValueError, match="--width 64"):
            load_pretrained(PhotoResTrunk(32), path)
    finally:
        os.remove(path)


def test_photo_augment_is_split_like_one_batch():
    """Random numbers are drawn for the global batch: two halves augment as the whole does."""
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    whole = data.photo_augment(x, torch.Generator().manual_seed(3))
    a = data.photo_augment(x[:3], torch.Generator().manual_seed(3), total=6, rows=slice(0, 3))
    b = data.photo_augment(x[3:], torch.Generator().manual_seed(3), total=6, rows=slice(3, 6))
    assert torch.allclose(torch.cat([a, b]), whole, atol=1e-6)
    assert whole.shape == x.shape and not torch.allclose(whole, x)


def test_generator_of_other_classes_is_refused_before_training(nested, tmp_path):
    models = tmp_path / "models"
    (models / "classifier-birds").mkdir(parents=True)
    (models / "classifier-birds" / "classes.json").write_text(json.dumps({"attributes": [], "classes": [
        {"index": 0, "id": 1, "name": "001.Red_crowned_Hookbill"}, {"index": 1, "id": 2, "name": "002.Blue_Finch"}]}))
    t0 = time.monotonic()
    with pytest.raises(ValueError) as e:
        fgtrain(["cvaegan", "--data", nested, "--out", str(tmp_path / "run"), "--model-dir",
                 str(models / "cvaegan-cub"), "--quick"])
    msg = str(e.value)
    assert "cvaegan-cub" in msg and "classifier-birds" in msg and "001.Black_footed_Albatross" in msg, msg
    assert time.monotonic() - t0 < 5 and not (tmp_path / "run" / "cvaegan.pt").exists()


def test_partial_download_and_missing_captions_stop_early(partial, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(data.MissingFilesError, match="4 of 12 images .* --skip-missing"):
        fgtrain(["damsm", "--data", partial, "--out", str(tmp_path / "r"), "--quick"])
    with pytest.raises(data.NoCaptionsError) as e:
        fgtrain(["damsm", "--data", partial, "--out", str(tmp_path / "r"), "--quick", "--skip-missing"])
    assert "fgtrain damsm needs captions" in str(e.value) and "--captions attributes" in str(e.value)
    assert time.monotonic() - t0 < 10
    data.SKIP_MISSING = False


def test_damsm_from_attribute_captions_says_so_in_the_card(partial, tmp_path):
    run = str(tmp_path / "run")
    try:
        fgtrain(["damsm", "--data", partial, "--out", run, "--quick", "--skip-missing", "--captions",
                 "attributes", "--batch", "4", "--width", "8", "--init-classifier", "none", "--threads", "1",
                 "--name", "damsm_scorer"])
        fgtrain(["classifier", "--data", partial, "--out", run, "--quick", "--skip-missing", "--batch", "4",
                 "--width", "8", "--threads", "1"])
        out = tmp_path / "classifier-attr"
        fgtrain(["export", "--data", partial, "--run", run, "--out", str(out), "--skip-missing"])
    finally:
        data.SKIP_MISSING = False
    m = json.loads((out / "model.json").read_text())
    assert m["captions"] == "attributes" and "text_encoder" in m["graphs"]
    assert "attribute annotations" in (out / "MODEL_CARD.md").read_text()


def test_check_reports_what_is_missing(partial, capsys):
    assert fgtrain(["check", "--data", partial]) == 1
    out = capsys.readouterr().out
    assert "4 listed but missing" in out and "captions      none" in out and "8 images" in out
