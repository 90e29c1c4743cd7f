"""CUB-200-2011 layout reader, with Reed et al. captions and the zero-shot class split.

The reader contract, the same in Go (internal/cub) and held equal by shared test vectors
(internal/cub/testdata/contract.json, fixtures made by internal/cub/testdata/cubfixture.py):

    images.txt                          <image_id> <class_dir>/<file>.jpg
    image_class_labels.txt              <image_id> <class_id>
    train_test_split.txt                <image_id> <1 = train, 0 = test>
    bounding_boxes.txt                  <image_id> <x> <y> <w> <h>       (optional)
    classes.txt                         <class_id> <class_dir>
    images/<class_dir>/<file>.jpg       RGB, grayscale or CMYK JPEG (or PNG)
    attributes.txt                      <attr_id> <group::value>         (optional; also beside root/)
    attributes/image_attribute_labels.txt  <image_id> <attr_id> <is_present> <certainty> <time>
    text/ or text_c10/<class_dir>/<file>.txt   one caption a line (Reed et al.; optional)
    trainvalclasses.txt / testclasses.txt      class dirs: seen / held-out (optional)

Every file is looked for in `root`, then in `root/CUB_200_2011` (the archive's folder). Class split:
trainvalclasses.txt lists the seen classes and testclasses.txt the held-out ones; either alone
splits all classes into it and the rest; neither: all classes seen. Images listed but missing are
found before any pixel is read (MissingFilesError; --skip-missing drops them).

See training/SPEC.md for the API. Images are decoded once, cropped around the bird as AttnGAN does
(square of 1.5x the box's longer side, clipped to the image; the whole image without a box),
resized to `size` (Pillow's bicubic), and kept in memory as uint8.
"""

from __future__ import annotations

import math
import os
import random
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

from .tokenizer import NoKnownWordError, Vocab

SPLITS = ("train", "test", "all")
LOAD_THREADS = min(8, os.cpu_count() or 1)  # threads that decode images
CLASS_SETS = ("seen", "heldout", "all")


def _find(root: str, *names: str, required: bool = True):
    """First existing path of `names` under root or root/CUB_200_2011; attributes.txt may also sit
    beside root (the CUB tarball keeps it outside CUB_200_2011/)."""
    bases = [root, os.path.join(root, "CUB_200_2011")]
    if "attributes.txt" in names:
        bases.append(os.path.dirname(os.path.abspath(root)))
    for b in bases:
        for n in names:
            p = os.path.join(b, n)
            if os.path.exists(p):
                return p
    if required:
        raise FileNotFoundError(
            "%s not found under %s or %s: a CUB-200-2011 folder holds images.txt, classes.txt, "
            "image_class_labels.txt, train_test_split.txt and images/ (docs/real-cub.md)" % (
                " or ".join(names), root, os.path.join(root, "CUB_200_2011")))
    return None


def _rows(path: str):
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts:
                yield parts


def _class_list(path, name_to_id) -> list[int]:
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            n = line.strip()
            if not n:
                continue
            if n not in name_to_id:
                raise ValueError("%s: unknown class %r (not in classes.txt)" % (path, n))
            ids.append(name_to_id[n])
    return sorted(ids)


# Certainty ids of attributes/image_attribute_labels.txt (attributes/certainties.txt).
CERTAIN = 3  # "probably" (3) or "definitely" (4): what attribute captions are made from


class MissingFilesError(FileNotFoundError):
    """Images listed in images.txt that are not under images/ (a partial download)."""

    def __init__(self, missing: list[str], total: int, images_dir: str):
        self.missing, self.total, self.images_dir = missing, total, images_dir
        super().__init__(
            "%d of %d images listed in images.txt are missing under %s (e.g. %s): a partial "
            "download? Pass --skip-missing to use the %d that are there" % (
                len(missing), total, images_dir, ", ".join(missing[:3]), total - len(missing)))


class NoCaptionsError(FileNotFoundError):
    """A text model was asked for on a data set without captions."""


# --skip-missing of the command line sets this; load_index(skip_missing=None) follows it.
SKIP_MISSING = False


def load_index(root: str, skip_missing: bool | None = None) -> dict:
    """Read the metadata files (the reader contract: internal/cub/testdata/contract.json).

    Missing image files are found here, before any pixel is read: a MissingFilesError names how
    many and a few, unless skip_missing (default: SKIP_MISSING), which drops them from the index.

    Returns a dict:
      root, meta_dir (where images.txt is), images_dir, text_dir (text/ or text_c10/, or None)
      images:     OrderedDict image_id -> relative path (under images/), in file order
      labels:     image_id -> class_id (1-based)
      split:      image_id -> 1 (train) | 0 (test)
      bboxes:     image_id -> (x, y, w, h) floats (empty dict if no bounding_boxes.txt)
      classes:    OrderedDict class_id -> class dir name ("001.Black_footed_Albatross")
      attributes: list of "group::value" (index = attribute id - 1; [] if none)
      image_attributes: image_id -> np.uint8[A] of is_present (absent if no labels file)
      image_certainty:  image_id -> np.uint8[A] certainty ids (1 not visible .. 4 definitely)
      seen, heldout: sorted lists of class ids; missing: relative paths skipped
      caption_source: "text" (the files in text_dir; see use_captions)
    """
    skip = SKIP_MISSING if skip_missing is None else skip_missing
    images = OrderedDict((int(r[0]), r[1]) for r in _rows(_find(root, "images.txt")))
    meta_dir = os.path.dirname(_find(root, "images.txt"))
    labels = {int(r[0]): int(r[1]) for r in _rows(_find(root, "image_class_labels.txt"))}
    split = {int(r[0]): int(r[1]) for r in _rows(_find(root, "train_test_split.txt"))}
    bb_path = _find(root, "bounding_boxes.txt", required=False)
    bboxes = {int(r[0]): tuple(float(v) for v in r[1:5]) for r in _rows(bb_path)} if bb_path else {}
    classes = OrderedDict(sorted((int(r[0]), r[1]) for r in _rows(_find(root, "classes.txt"))))
    name_to_id = {n: i for i, n in classes.items()}

    attr_path = _find(root, "attributes.txt", os.path.join("attributes", "attributes.txt"),
                      required=False)
    attributes = []
    if attr_path:
        rows = sorted((int(r[0]), r[1]) for r in _rows(attr_path))
        attributes = [n for _, n in rows]
    image_attributes, image_certainty = {}, {}
    ial = _find(root, os.path.join("attributes", "image_attribute_labels.txt"), required=False)
    if ial and attributes:
        for r in _rows(ial):  # <image> <attribute> <is_present> <certainty> <time> (some lines: one more)
            img, a, present = int(r[0]), int(r[1]), int(r[2])
            v = image_attributes.get(img)
            if v is None:
                v = image_attributes[img] = np.zeros(len(attributes), dtype=np.uint8)
                image_certainty[img] = np.zeros(len(attributes), dtype=np.uint8)
            v[a - 1] = 1 if present else 0
            image_certainty[img][a - 1] = int(r[3]) if len(r) > 3 else 4

    # Class split (Reed et al.): trainvalclasses.txt lists the seen classes, testclasses.txt the
    # held-out ones; either file alone splits all classes into it and the rest; neither: all seen.
    seen_path = _find(root, "trainvalclasses.txt", required=False)
    held_path = _find(root, "testclasses.txt", required=False)
    seen = _class_list(seen_path, name_to_id) if seen_path else None
    heldout = _class_list(held_path, name_to_id) if held_path else None
    if seen is None:
        seen = sorted(set(classes) - set(heldout or []))
    if heldout is None:
        heldout = sorted(set(classes) - set(seen)) if seen_path else []
    if set(seen) & set(heldout):
        raise ValueError("classes both seen and held out: %s" % sorted(set(seen) & set(heldout)))

    unlabelled = [i for i in images if i not in labels or i not in split]
    if unlabelled:
        raise ValueError("images without label or split: %s" % unlabelled[:5])
    images_dir = os.path.join(meta_dir, "images")
    if not os.path.isdir(images_dir):
        images_dir = _find(root, "images")
    missing = [rel for rel in images.values() if not os.path.isfile(os.path.join(images_dir, rel))]
    if missing and not skip:
        raise MissingFilesError(missing, len(images), images_dir)
    if missing:
        gone = set(missing)
        images = OrderedDict((i, rel) for i, rel in images.items() if rel not in gone)
    text_dir = _find(root, "text", "text_c10", required=False)
    return dict(root=root, meta_dir=meta_dir, images_dir=images_dir, text_dir=text_dir, images=images,
                labels=labels, split=split, bboxes=bboxes, classes=classes, attributes=attributes,
                image_attributes=image_attributes, image_certainty=image_certainty, seen=seen,
                heldout=heldout, missing=missing, caption_source="text")


CAPTION_SOURCES = ("text", "attributes")


def no_captions_message(index: dict, what: str) -> str:
    root = index["root"]
    msg = ("no captions in %s: %s needs captions, one file per image, text/<class>/<image>.txt or "
           "text_c10/<class>/<image>.txt (one caption a line) in the data folder or its "
           "CUB_200_2011/. CUB-200-2011 has none of its own: they are Reed et al.'s (CVPR 2016, "
           "\"Learning Deep Representations of Fine-Grained Visual Descriptions\"), the "
           "cvpr2016_cub archive linked from https://github.com/reedscot/cvpr2016 — unpack it and "
           "move its text_c10/ (and trainvalclasses.txt, testclasses.txt) into %s (docs/real-cub.md). "
           % (root, what, root))
    if index["image_attributes"]:
        msg += ("Or make captions from CUB's attribute annotations, which are here: add --captions "
                "attributes (each image's attributes marked present with certainty 'probably' or "
                "'definitely', as sentences; the model card says so).")
    else:
        msg += ("CUB's attribute annotations (attributes.txt, attributes/image_attribute_labels.txt) "
                "could stand in with --captions attributes, but they are not here either.")
    return msg


def use_captions(index: dict, source: str, what: str) -> dict:
    """Choose where captions come from for a text model (`what` names it in errors): "text" (the
    caption files) or "attributes" (sentences made from certain attribute annotations). Raises
    NoCaptionsError with what is missing and where to get it. Returns the index (updated)."""
    if source not in CAPTION_SOURCES:
        raise ValueError("captions must be one of %s, not %r" % (CAPTION_SOURCES, source))
    if source == "text" and not index["text_dir"]:
        raise NoCaptionsError(no_captions_message(index, what))
    if source == "attributes" and not index["image_attributes"]:
        raise NoCaptionsError(
            "--captions attributes: no attribute annotations in %s (attributes.txt and "
            "attributes/image_attribute_labels.txt of CUB-200-2011)" % index["root"])
    index["caption_source"] = source
    n = sum(1 for i in index["images"] if image_captions(index, i))
    if n == 0:
        raise NoCaptionsError("%s: none of the %d images has a caption (%s)" % (
            what, len(index["images"]), index["text_dir"] if source == "text" else "attributes"))
    return index


def image_captions(index: dict, image_id: int) -> list[str]:
    """The captions of an image from the index's caption source."""
    if index.get("caption_source") == "attributes":
        return attribute_captions(index, image_id)
    return read_captions(index["text_dir"], index["images"][image_id])


# ---- captions from attribute annotations (the same rules in Go: internal/cub) -------------------

_PART_NOUNS = {"wing": "wings", "eye": "eyes", "leg": "legs", "primary": "body"}


def _clean(value: str) -> str:
    """"small_(5_-_9_in)" -> "small", "curved_(up_or_down)" -> "curved", "rounded-wings" -> "rounded wings"."""
    v = value.split("_(", 1)[0].split("(", 1)[0]
    return " ".join(v.replace("_", " ").replace("-", " ").split())


def _phrase(group: str, values: list[str]) -> tuple[str, str]:
    """(kind, text) of one attribute group: kind "size" (a subject word) or "part"."""
    g = group[4:] if group.startswith("has_") else group
    part, _, aspect = g.rpartition("_")
    if not part:
        part, aspect = "", g
    noun = _PART_NOUNS.get(part, part.replace("_", " "))
    vals = [_clean(v) for v in values if _clean(v)]
    if not vals:
        return "", ""
    if aspect == "size" and not part:
        return "size", vals[0]
    if aspect in ("color", "pattern"):
        return "part", "%s %s" % (" and ".join(vals), noun)
    if aspect == "shape":
        v = vals[0]
        last = v.split()[-1]
        if not noun:
            return "part", "a %s shape" % v
        if last in (noun, noun.rstrip("s"), part) or noun.endswith(last):
            return "part", v
        return "part", "%s %s" % (v, noun)
    if aspect == "length":
        return "part", "%s %s" % (noun, vals[0])
    if vals[0] in ("yes", "no"):
        return "part", ("%s %s" if vals[0] == "yes" else "no %s %s") % (noun, aspect)
    return "part", "%s %s %s" % (vals[0], noun, aspect)


def attribute_captions(index: dict, image_id: int, n: int = 10, per_caption: int = 4) -> list[str]:
    """Captions made from an image's attribute annotations: the attributes marked present with
    certainty >= CERTAIN, grouped (values of one group joined by "and", groups in attribute-id
    order), and up to n sentences "this [size] bird has A, B, C and D" over rotations of the groups.
    Not human-written: models trained on them say so in their card."""
    names = index["attributes"]
    present = index["image_attributes"].get(image_id)
    if present is None or not names:
        return []
    cert = index["image_certainty"].get(image_id)
    groups: dict[str, list[str]] = {}
    for j, name in enumerate(names):
        if present[j] and (cert is None or cert[j] >= CERTAIN):
            group, _, value = name.partition("::")
            groups.setdefault(group, []).append(value)
    size, phrases = "", []
    for group, values in groups.items():
        kind, text = _phrase(group, values)
        if kind == "size":
            size = text
        elif text:
            phrases.append(text)
    if not phrases:
        return []
    subject = "this %s bird has " % size if size else "this bird has "
    out = []
    for k in range(min(n, len(phrases))):
        rot = (phrases[k:] + phrases[:k])[:per_caption]
        body = rot[0] if len(rot) == 1 else ", ".join(rot[:-1]) + " and " + rot[-1]
        out.append(subject + body)
    return out


def class_label(class_dir: str) -> str:
    """"001.Black_footed_Albatross" -> "Black footed Albatross"."""
    name = class_dir.split(".", 1)[1] if "." in class_dir else class_dir
    return name.replace("_", " ")


def class_attributes(index: dict, class_id: int) -> dict:
    """group -> value with the highest share of this class's images (only groups seen at all)."""
    names = index["attributes"]
    rows = [v for img, v in index["image_attributes"].items() if index["labels"][img] == class_id]
    if not names or not rows:
        return {}
    mean = np.stack(rows).astype(np.float64).mean(0)
    best = {}
    for j, n in enumerate(names):
        group, _, value = n.partition("::")
        if mean[j] > 0 and (group not in best or mean[j] > best[group][0]):
            best[group] = (mean[j], value)
    return {g: v for g, (_, v) in best.items()}


def crop_box(width: int, height: int, bbox):
    """(x1, y1, x2, y2) of the crop around a bird box (x, y, w, h): a square of 1.5x the box's longer
    side around its centre, clipped to the image; the whole image without a box (or when the clipped
    square is under 2 pixels wide)."""
    if bbox is None:
        return 0, 0, width, height
    x, y, bw, bh = bbox
    r = int(max(bw, bh) * 0.75)
    cx, cy = int(x + bw / 2), int(y + bh / 2)
    x1, x2 = max(0, cx - r), min(width, cx + r)
    y1, y2 = max(0, cy - r), min(height, cy + r)
    if x2 - x1 >= 2 and y2 - y1 >= 2:
        return x1, y1, x2, y2
    return 0, 0, width, height


def load_image(path: str, bbox=None, size: int = 64) -> np.ndarray:
    """uint8 [3,size,size]: crop_box, then Pillow's bicubic resize. Grayscale and CMYK JPEGs become
    RGB (CMYK multiplicatively: r = (255 - c)(255 - k) / 255), alpha is dropped."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            box = crop_box(im.size[0], im.size[1], bbox)
            if box != (0, 0) + im.size:
                im = im.crop(box)
            im = im.resize((size, size), Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
    except (OSError, ValueError) as e:
        raise ValueError("cannot read image %s: %s" % (path, e)) from e


def read_captions(text_dir, rel_image_path: str) -> list[str]:
    if not text_dir:
        return []
    p = os.path.join(text_dir, os.path.splitext(rel_image_path)[0] + ".txt")
    if not os.path.exists(p):
        return []
    with open(p, encoding="utf-8", errors="replace") as f:
        return [ln.strip() for ln in f if ln.strip()]


class CUBDataset(torch.utils.data.Dataset):
    """See training/SPEC.md. Besides __getitem__, whole-set tensors for fast batching:

    images uint8 [N,3,S,S], labels long [N], attrs float [N,A], image_ids long [N],
    captions list[list[str]], and with a vocab: caption_ids long [N,C,max_words], caption_lens long
    [N,C] (C = most captions per image; missing or unencodable captions have length 0).
    """

    def __init__(self, root: str, split: str = "train", classes: str = "seen", size: int = 64,
                 with_captions: bool = True, vocab: Vocab | None = None,
                 caption_index: int | None = None, seed: int = 0, index: dict | None = None):
        if split not in SPLITS:
            raise ValueError("split must be one of %s" % (SPLITS,))
        if classes not in CLASS_SETS:
            raise ValueError("classes must be one of %s" % (CLASS_SETS,))
        idx = index if index is not None else load_index(root)
        self.index = idx
        self.root = root
        self.split = split
        self.size = size
        self.vocab = vocab
        self.caption_index = caption_index
        self.rng = random.Random(seed)

        if classes == "seen":
            cids = idx["seen"]
        elif classes == "heldout":
            cids = idx["heldout"]
        else:
            cids = sorted(idx["classes"])
        self.class_ids = list(cids)
        self.class_names = [idx["classes"][c] for c in cids]
        self.attr_names = list(idx["attributes"])
        cls_pos = {c: i for i, c in enumerate(cids)}

        want = {"train": (1,), "test": (0,), "all": (0, 1)}[split]
        ids = [i for i in idx["images"] if idx["labels"][i] in cls_pos and idx["split"][i] in want]
        self.image_ids = torch.tensor(ids, dtype=torch.long)
        self.labels = torch.tensor([cls_pos[idx["labels"][i]] for i in ids], dtype=torch.long)
        self.class_id_of = torch.tensor([idx["labels"][i] for i in ids], dtype=torch.long)
        A = len(self.attr_names)
        attrs = np.zeros((len(ids), A), dtype=np.float32)
        for k, i in enumerate(ids):
            v = idx["image_attributes"].get(i)
            if v is not None:
                attrs[k] = v
        self.attrs = torch.from_numpy(attrs)

        imgs = np.zeros((len(ids), 3, size, size), dtype=np.uint8)

        def one(k):
            i = ids[k]
            imgs[k] = load_image(os.path.join(idx["images_dir"], idx["images"][i]), idx["bboxes"].get(i), size)
        # Pillow decodes and resizes without the GIL: threads use the cores
        with ThreadPoolExecutor(max(1, min(LOAD_THREADS, len(ids)))) as ex:
            list(ex.map(one, range(len(ids))))
        self.images = torch.from_numpy(imgs)

        self.with_captions = with_captions
        self.captions = [image_captions(idx, i) if with_captions else [] for i in ids]
        self.caption_ids = self.caption_lens = None
        if vocab is not None and with_captions:
            self._encode_captions(vocab)

    def _encode_captions(self, vocab: Vocab):
        C = max([len(c) for c in self.captions] + [1])
        L = vocab.max_words
        cap = torch.zeros((len(self.captions), C, L), dtype=torch.long)
        lens = torch.zeros((len(self.captions), C), dtype=torch.long)
        for k, caps in enumerate(self.captions):
            for j, c in enumerate(caps):
                try:
                    ids, n = vocab.encode_padded(c, L)
                except NoKnownWordError:
                    continue
                cap[k, j] = torch.tensor(ids)
                lens[k, j] = n
        self.caption_ids, self.caption_lens = cap, lens

    def __len__(self) -> int:
        return len(self.image_ids)

    def pick_caption(self, k: int, caption_index: int | None = None, rng=None) -> int:
        """Index of the caption used for item k: `caption_index` (default: the dataset's) if that
        caption is encodable (else the next valid one), or a random valid one when None."""
        ci = self.caption_index if caption_index is None else caption_index
        valid = (self.caption_lens[k] > 0).nonzero().flatten().tolist()
        if not valid:
            raise NoKnownWordError("image %d has no encodable caption" % int(self.image_ids[k]))
        if ci is None:
            return (rng or self.rng).choice(valid)
        j = ci % self.caption_lens.shape[1]
        return j if self.caption_lens[k, j] > 0 else valid[j % len(valid)]

    def __getitem__(self, k: int) -> dict:
        item = dict(image=to_float(self.images[k]), label=int(self.labels[k]),
                    class_id=int(self.class_id_of[k]), image_id=int(self.image_ids[k]),
                    attrs=self.attrs[k], captions=list(self.captions[k]))
        if self.caption_ids is not None:
            j = self.pick_caption(k)
            item["caption"] = self.caption_ids[k, j].clone()
            item["cap_len"] = int(self.caption_lens[k, j])
            item["caption_index"] = j
        return item

    def batch(self, indices, caption_index: int | None = None, rng: random.Random | None = None):
        """Tensors for a batch of item indices without per-item Python work:
        image float [B,3,S,S] in [-1,1], label, attrs, and with a vocab: caption [B,L], cap_len [B]."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        out = dict(image=to_float(self.images[idx]), label=self.labels[idx], attrs=self.attrs[idx],
                   class_id=self.class_id_of[idx], image_id=self.image_ids[idx])
        if self.caption_ids is not None:
            js = [self.pick_caption(k, caption_index, rng) for k in idx.tolist()]
            j = torch.tensor(js, dtype=torch.long)
            out["caption"] = self.caption_ids[idx, j]
            out["cap_len"] = self.caption_lens[idx, j]
        return out

    def all_captions(self) -> list[str]:
        return [c for caps in self.captions for c in caps]


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [...,3,S,S] -> float in [-1,1]."""
    return images_u8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float in [-1,1] -> uint8 (pixel = (x + 1) * 127.5)."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def collate(items: list[dict]) -> dict:
    """Collate __getitem__ dicts: tensors stacked, ints to LongTensor, captions kept as lists."""
    out = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if isinstance(vals[0], torch.Tensor):
            out[key] = torch.stack(vals)
        elif isinstance(vals[0], int):
            out[key] = torch.tensor(vals, dtype=torch.long)
        else:
            out[key] = vals
    return out


def augment(images: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4,
            flip: bool = True, jitter: float = 0.1, total: int | None = None,
            rows: slice | None = None) -> torch.Tensor:
    """Random crop (reflect-pad by `pad`, crop back), horizontal flip and brightness/contrast/
    saturation jitter of +-`jitter`, for float images [B,3,S,S] in [-1,1].

    In a distributed run `images` are rows `rows` of a global batch of `total`: the random numbers
    are drawn for the whole global batch (as one process would) and this rank's rows used."""
    B, _, S, _ = images.shape
    total = B if total is None else total
    rows = slice(None) if rows is None else rows
    g = generator
    x = images
    dev = x.device  # random numbers come from the (CPU) generator, so runs repeat on any device
    if pad > 0:
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
        ox = torch.randint(0, 2 * pad + 1, (total,), generator=g)[rows].to(dev)
        oy = torch.randint(0, 2 * pad + 1, (total,), generator=g)[rows].to(dev)
        ar = torch.arange(S, device=dev)
        rows_ = (oy[:, None] + ar[None, :])  # [B,S]
        cols = (ox[:, None] + ar[None, :])
        x = x[torch.arange(B, device=dev)[:, None, None, None], torch.arange(3, device=dev)[None, :, None, None],
              rows_[:, None, :, None], cols[:, None, None, :]]
    if flip:
        f = (torch.rand(total, generator=g)[rows] < 0.5).to(dev)
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    if jitter > 0:
        x = _colour_jitter(x, g, jitter, total, rows)
    return x.contiguous()


def _colour_jitter(x, g, jitter, total, rows):
    dev = x.device

    def r():
        return (1 + (torch.rand(total, 1, 1, 1, generator=g)[rows] * 2 - 1) * jitter).to(dev)
    x01 = (x + 1) / 2
    x01 = x01 * r()  # brightness
    m = x01.mean(dim=(1, 2, 3), keepdim=True)
    x01 = (x01 - m) * r() + m  # contrast
    gray = x01.mean(dim=1, keepdim=True)
    x01 = (x01 - gray) * r() + gray  # saturation
    return x01.clamp(0, 1) * 2 - 1


def photo_augment(images: torch.Tensor, generator: torch.Generator | None = None,
                  scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3), flip: bool = True, jitter: float = 0.25,
                  total: int | None = None, rows: slice | None = None) -> torch.Tensor:
    """Augmentation for photos, float images [B,3,S,S] in [-1,1]: a random resized crop (a share
    `scale` of the area, aspect ratio in `ratio`, anywhere in the image, resampled bilinearly back to
    S), horizontal flip and brightness/contrast/saturation jitter of +-`jitter`. Random numbers as
    in augment (drawn for the global batch, from the CPU generator)."""
    B, _, S, _ = images.shape
    total = B if total is None else total
    rows = slice(None) if rows is None else rows
    g = generator
    dev = images.device
    area = torch.empty(total).uniform_(scale[0], scale[1], generator=g)[rows]
    logr = torch.empty(total).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g)[rows]
    w = (area * logr.exp()).sqrt().clamp(max=1.0)
    h = (area / logr.exp()).sqrt().clamp(max=1.0)
    cx = (torch.rand(total, generator=g)[rows] * 2 - 1) * (1 - w)
    cy = (torch.rand(total, generator=g)[rows] * 2 - 1) * (1 - h)
    sx = w
    if flip:
        sx = torch.where(torch.rand(total, generator=g)[rows] < 0.5, -w, w)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, h, cy
    grid = torch.nn.functional.affine_grid(theta.to(dev), [B, 3, S, S], align_corners=False)
    x = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                                        align_corners=False)
    if jitter > 0:
        x = _colour_jitter(x, g, jitter, total, rows)
    return x.contiguous()


def seen_train_captions(root: str, index: dict | None = None) -> list[str]:
    """All captions of train images of seen classes (what the vocabulary is built from)."""
    idx = index if index is not None else load_index(root)
    seen = set(idx["seen"])
    out = []
    for i in idx["images"]:
        if idx["split"][i] == 1 and idx["labels"][i] in seen:
            out.extend(image_captions(idx, i))
    return out


def build_vocab(root: str, max_words: int = 18, index: dict | None = None) -> Vocab:
    return Vocab.build(seen_train_captions(root, index), max_words=max_words)
