"""The CUB reader contract, shared with Go (internal/cub/contract_test.go): fixtures in the exact
layout of a CUB-200-2011 download (+ Reed et al.'s captions), made by internal/cub/testdata/
cubfixture.py, must read as internal/cub/testdata/contract.json says."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from fgtrain import data

TESTDATA = os.path.join(REPO, "internal", "cub", "testdata")
with open(os.path.join(TESTDATA, "contract.json"), encoding="utf-8") as f:
    CONTRACT = json.load(f)


def make_fixture(out: str, case: str) -> str:
    r = subprocess.run([sys.executable, os.path.join(TESTDATA, "cubfixture.py"), "--out", out, "--case", case],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("cubcontract")
    return {c: make_fixture(str(base / c), c) for c in CONTRACT["cases"]}


@pytest.mark.parametrize("case", sorted(CONTRACT["cases"]))
def test_reader_contract(fixtures, case):
    want = CONTRACT["cases"][case]
    root = fixtures[case]
    if "missing" in want:
        with pytest.raises(data.MissingFilesError) as e:
            data.load_index(root)
        m = want["missing"]
        assert len(e.value.missing) == m["count"] and e.value.total == m["total"]
        assert e.value.missing[0] == m["first"]
        msg = str(e.value)
        assert "%d of %d images" % (m["count"], m["total"]) in msg and "--skip-missing" in msg
        assert m["first"] in msg
        idx = data.load_index(root, skip_missing=True)
    else:
        idx = data.load_index(root)
    assert {str(k): v for k, v in idx["classes"].items()} == want["classes"]
    assert os.path.relpath(idx["meta_dir"], root) == want["meta_dir"]
    got_text = os.path.relpath(idx["text_dir"], root) if idx["text_dir"] else None
    assert got_text == want["captions_dir"]
    assert idx["seen"] == want["seen"] and idx["heldout"] == want["heldout"]
    assert list(idx["images"]) == [im["id"] for im in want["images"]]
    size = CONTRACT["size"]
    for im in want["images"]:
        i = im["id"]
        assert idx["images"][i] == im["path"]
        assert idx["labels"][i] == im["class"] and bool(idx["split"][i]) == im["train"]
        path = os.path.join(idx["images_dir"], im["path"])
        from PIL import Image
        with Image.open(path) as pil:
            assert pil.mode == im["mode"]
            w, h = pil.size
        assert list(data.crop_box(w, h, idx["bboxes"].get(i))) == im["crop"]
        assert len(data.read_captions(idx["text_dir"], im["path"])) == im["captions"]
        arr = data.load_image(path, idx["bboxes"].get(i), size)
        assert arr.shape == (3, size, size)
        mean = arr.reshape(3, -1).mean(1)
        assert max(abs(a - b) for a, b in zip(mean, im["mean"])) <= 2.0, (i, mean, im["mean"])
        if "sha256" in im:
            assert hashlib.sha256(arr.tobytes()).hexdigest() == im["sha256"]
    if "captions_of_12" in want:
        assert data.read_captions(idx["text_dir"], idx["images"][12]) == want["captions_of_12"]
    for i, caps in want.get("attribute_captions", {}).items():
        assert data.attribute_captions(idx, int(i)) == caps


def test_dataset_on_the_official_layout(fixtures):
    """CUBDataset reads the nested archive with Reed's text_c10 and the held-out class."""
    root = fixtures["nested"]
    ds = data.CUBDataset(root, "test", "heldout", 16)
    assert ds.class_names == ["004.Groove_billed_Ani"] and len(ds) == 1
    ds = data.CUBDataset(root, "train", "seen", 16)
    assert len(ds) == 6 and all(len(c) == 10 for c in ds.captions)


def test_no_captions_says_what_and_where(fixtures):
    idx = data.load_index(fixtures["partial"], skip_missing=True)
    with pytest.raises(data.NoCaptionsError) as e:
        data.use_captions(idx, "text", "fgtrain damsm")
    msg = str(e.value)
    for part in ("fgtrain damsm needs captions", "text_c10", "Reed", "github.com/reedscot/cvpr2016",
                 "--captions attributes"):
        assert part in msg, (part, msg)
    idx = data.load_index(fixtures["nosplit"])
    with pytest.raises(data.NoCaptionsError) as e:
        data.use_captions(idx, "attributes", "fgtrain damsm")
    assert "no attribute annotations" in str(e.value)


def test_attribute_captions_stand_in(fixtures):
    idx = data.load_index(fixtures["partial"], skip_missing=True)
    data.use_captions(idx, "attributes", "fgtrain damsm")
    ds = data.CUBDataset(fixtures["partial"], "train", "seen", 16, index=idx)
    assert all(c and c[0].startswith("this ") for c in ds.captions)
    vocab = data.build_vocab(fixtures["partial"], index=idx)
    assert "wings" in vocab


def test_skip_missing_module_default(fixtures, monkeypatch):
    monkeypatch.setattr(data, "SKIP_MISSING", True)
    assert len(data.load_index(fixtures["partial"])["images"]) == 8
