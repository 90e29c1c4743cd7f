"""ONNX export (opset 17, dynamic B and T), verification, golden files and model directories.

A graph spec is a list of tensor specs, one per input or output, in the order of the module's
arguments / return values:

    {"role": "captions", "name": "captions", "dtype": "int64", "shape": ["B", "T"]}

`role` is the tensor's name in docs/model-contract.md, `name` the name inside the graph; string
dims are dynamic axes. `export_graph` returns the graph's model.json entry; `write_model_dir` writes
model.json (with each graph's sha256), classes.json, vocab.json and MODEL_CARD.md.

Verification runs the graph with onnx.reference.ReferenceEvaluator when the installed onnx has it
(onnx >= 1.13) and with fgtrain.onnxref (a NumPy evaluator) otherwise, and compares with PyTorch.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import warnings

import numpy as np
import onnx
import torch

from . import __version__

OPSET = 17
TOLERANCE = 1e-4
_DTYPES = {"float32": np.float32, "int64": np.int64, "bool": np.bool_}



def dataset_ref(data_dir: str) -> str:
    """How a model card names its training data: the maker and its arguments for the sample data set
    (dataset.json), else the folder's name. Never a path of the machine that trained it."""
    meta = os.path.join(data_dir, "dataset.json")
    if os.path.exists(meta):
        with open(meta, encoding="utf-8") as f:
            d = json.load(f)
        a = d.get("args", {})
        return "%s %s (seed %s, %s classes x %s images, %s px; held-out share %s)" % (
            d.get("maker", "?"), d.get("version", "?"), a.get("seed"), a.get("classes"), a.get("per_class"),
            a.get("size"), a.get("heldout_frac"))
    return "CUB-200-2011 layout: " + os.path.basename(os.path.normpath(data_dir))


def portable(obj):
    """A copy of a JSON-able training record with absolute paths reduced to their last element."""
    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable(v) for v in obj]
    if isinstance(obj, str) and os.path.isabs(obj):
        return os.path.basename(os.path.normpath(obj))
    return obj

def spec(role, shape, dtype="float32", name=None) -> dict:
    return {"role": role, "name": name or role, "dtype": dtype, "shape": list(shape)}


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dynamic_axes(specs) -> dict:
    out = {}
    for s in specs:
        axes = {i: d for i, d in enumerate(s["shape"]) if isinstance(d, str)}
        if axes:
            out[s["name"]] = axes
    return out


def export_graph(module: torch.nn.Module, example_inputs, input_specs, output_specs, path: str,
                 dynamic_axes: dict | None = None, opset: int = OPSET) -> dict:
    """Export `module` (in eval mode) to `path`; check the graph's tensors against the specs.
    Returns the model.json entry {"file", "sha256", "inputs", "outputs"}."""
    module = module.eval()
    if dynamic_axes is None:
        dynamic_axes = _dynamic_axes(list(input_specs) + list(output_specs))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # torch 1.13 warns about prim::Constant shape inference on every LSTM export; harmless
        warnings.filterwarnings("ignore", message="The shape inference of prim::Constant")
        torch.onnx.export(module, tuple(example_inputs), path, opset_version=opset,
                          input_names=[s["name"] for s in input_specs],
                          output_names=[s["name"] for s in output_specs],
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    check_specs(model, input_specs, output_specs)
    return {"file": os.path.basename(path), "sha256": sha256(path),
            "inputs": [dict(s) for s in input_specs], "outputs": [dict(s) for s in output_specs]}


_ONNX_DTYPE = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64",
               onnx.TensorProto.BOOL: "bool"}


def check_specs(model: onnx.ModelProto, input_specs, output_specs) -> None:
    """Every spec'd tensor exists in the graph with that dtype and rank; fixed dims match."""
    init = {t.name for t in model.graph.initializer}
    graph_in = {v.name: v for v in model.graph.input if v.name not in init}
    graph_out = {v.name: v for v in model.graph.output}
    for kind, specs, have in (("input", input_specs, graph_in), ("output", output_specs, graph_out)):
        if len(specs) != len(have):
            raise ValueError("graph has %s %ss %s, spec has %s" % (len(have), kind, sorted(have),
                                                                   [s["name"] for s in specs]))
        for s in specs:
            v = have.get(s["name"])
            if v is None:
                raise ValueError("graph has no %s %r (it has %s)" % (kind, s["name"], sorted(have)))
            t = v.type.tensor_type
            dt = _ONNX_DTYPE.get(t.elem_type, str(t.elem_type))
            if dt != s["dtype"]:
                raise ValueError("%s %r: dtype %s, spec %s" % (kind, s["name"], dt, s["dtype"]))
            dims = t.shape.dim
            if len(dims) != len(s["shape"]):
                raise ValueError("%s %r: rank %d, spec %s" % (kind, s["name"], len(dims), s["shape"]))
            for d, want in zip(dims, s["shape"]):
                if isinstance(want, int) and d.HasField("dim_value") and d.dim_value != want:
                    raise ValueError("%s %r: shape %s, spec %s" % (
                        kind, s["name"], [x.dim_value or x.dim_param for x in dims], s["shape"]))
                if isinstance(want, str) and d.HasField("dim_value"):
                    raise ValueError("%s %r: dim %s is fixed (%d) in the graph" % (
                        kind, s["name"], want, d.dim_value))


def reference_evaluator(path_or_model):
    """onnx.reference.ReferenceEvaluator if available, else fgtrain.onnxref.Evaluator."""
    try:
        from onnx.reference import ReferenceEvaluator  # onnx >= 1.13
        return ReferenceEvaluator(path_or_model)
    except ImportError:
        from .onnxref import Evaluator
        ev = Evaluator(path_or_model)
        missing = ev.unsupported()
        if missing:
            raise NotImplementedError("the NumPy reference lacks ops %s" % missing)
        return ev


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def verify(path: str, module: torch.nn.Module, inputs_list, tol: float = TOLERANCE) -> dict:
    """Run the graph and the module on each input tuple; raise AssertionError if any output differs
    by more than `tol`. Returns {"max_abs_diff": float, "runs": [...], "evaluator": str}."""
    model = onnx.load(path)
    ev = reference_evaluator(model)
    in_names = [v.name for v in model.graph.input
                if v.name not in {t.name for t in model.graph.initializer}]
    out_names = [v.name for v in model.graph.output]
    module = module.eval()
    worst, runs = 0.0, []
    for inputs in inputs_list:
        inputs = tuple(inputs)
        with torch.no_grad():
            ref = module(*inputs)
        ref = ref if isinstance(ref, (tuple, list)) else (ref,)
        got = ev.run(None, {n: _np(x) for n, x in zip(in_names, inputs)})
        if len(got) != len(ref):
            raise AssertionError("%s: graph gives %d outputs, module %d" % (path, len(got), len(ref)))
        diffs = {}
        for n, r, g in zip(out_names, ref, got):
            r = _np(r)
            if r.shape != g.shape:
                raise AssertionError("%s: output %s shape %s, module %s" % (path, n, g.shape, r.shape))
            if not np.all(np.isfinite(g)):
                raise AssertionError("%s: output %s has non-finite values" % (path, n))
            diffs[n] = float(np.max(np.abs(r.astype(np.float64) - g.astype(np.float64)))) if r.size else 0.0
        shapes = {n: list(_np(x).shape) for n, x in zip(in_names, inputs)}
        runs.append({"inputs": shapes, "max_abs_diff": diffs})
        worst = max([worst] + list(diffs.values()))
        bad = {k: v for k, v in diffs.items() if v > tol}
        if bad:
            raise AssertionError("%s: outputs differ from PyTorch by %s (> %g) at inputs %s" % (
                path, bad, tol, shapes))
    return {"max_abs_diff": worst, "runs": runs, "evaluator": type(ev).__module__ + "." + type(ev).__name__}


# ---------------------------------------------------------------- example inputs


def image_inputs(batch: int, size: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, size, size, generator=g) * 2 - 1,)


def text_inputs(batch: int, T: int, n_words: int, seed: int = 0):
    """captions [B,T] and cap_lens [B] with lengths T, then shorter ones (>= 1), ids >= 1 before the
    length and 0 after (so at least one row is padded when B > 1 and T > 1)."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([max(1, T - (3 * i) % T) if i else T for i in range(batch)], dtype=torch.long)
    caps = torch.randint(1, max(2, n_words), (batch, T), generator=g)
    caps = caps * (torch.arange(T)[None, :] < lens[:, None])
    return caps.long(), lens


# ---------------------------------------------------------------- golden files


def _encode(x) -> dict:
    a = np.ascontiguousarray(_np(x))
    dt = {np.dtype(np.float32): "float32", np.dtype(np.int64): "int64"}.get(a.dtype)
    if dt is None:
        if np.issubdtype(a.dtype, np.floating):
            a, dt = a.astype(np.float32), "float32"
        else:
            a, dt = a.astype(np.int64), "int64"
    return {"dtype": dt, "shape": list(a.shape), "data": base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode()}


def decode_tensor(obj: dict) -> np.ndarray:
    dt = np.dtype(_DTYPES[obj["dtype"]]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(obj["data"]), dtype=dt).reshape(obj["shape"]).astype(_DTYPES[obj["dtype"]])


def write_golden(path: str, module: torch.nn.Module, inputs, input_specs, output_specs,
                 tolerance: float = TOLERANCE) -> dict:
    """golden/<graph>.json: the inputs and PyTorch's outputs, by graph tensor name."""
    module = module.eval()
    with torch.no_grad():
        outs = module(*inputs)
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    obj = {"inputs": {s["name"]: _encode(x) for s, x in zip(input_specs, inputs)},
           "outputs": {s["name"]: _encode(y) for s, y in zip(output_specs, outs)},
           "tolerance": tolerance}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    return obj


def check_golden(graph_path: str, golden_path: str) -> float:
    """Run the graph on the golden inputs; return the max abs difference to the golden outputs."""
    with open(golden_path, encoding="utf-8") as f:
        g = json.load(f)
    ev = reference_evaluator(graph_path)
    model = onnx.load(graph_path)
    names = [v.name for v in model.graph.output]
    got = ev.run(None, {k: decode_tensor(v) for k, v in g["inputs"].items()})
    return max(float(np.max(np.abs(decode_tensor(g["outputs"][n]).astype(np.float64) - y)))
               for n, y in zip(names, got))


# ---------------------------------------------------------------- model directories


def classes_json(index: dict, trained_class_ids, attribute_fn=None) -> dict:
    """classes.json: every class of the data set; trained ones get their output index, others -1."""
    from .data import class_attributes, class_label
    pos = {c: i for i, c in enumerate(trained_class_ids)}
    seen = set(index["seen"])
    attribute_fn = attribute_fn or (lambda cid: class_attributes(index, cid))
    classes = []
    for cid, name in index["classes"].items():
        classes.append({"index": pos.get(cid, -1), "id": cid, "name": name, "label": class_label(name),
                        "seen": cid in seen, "attributes": attribute_fn(cid)})
    return {"attributes": list(index["attributes"]), "classes": classes}


def write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def model_card(name: str, kind: str, description: str, metrics: dict | None, training: dict | None,
               sizes: dict, notes: str = "") -> str:
    lines = ["# %s" % name, "", description, "",
             "- kind: `%s`" % kind,
             "- exported: %s by fgtrain %s" % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
                                                __version__), ""]
    if training:
        lines += ["## Training", ""]
        for k, v in training.items():
            lines.append("- %s: %s" % (k, json.dumps(v) if isinstance(v, (dict, list)) else v))
        lines.append("")
    lines += ["## Sizes", ""] + ["- %s: %s" % (k, v) for k, v in sizes.items()] + [""]
    if metrics:
        lines += ["## Metrics", "", "| metric | value | how it was measured |", "| --- | --- | --- |"]
        for k, v in metrics.items():
            if isinstance(v, dict):
                val, how = v.get("value"), v.get("how", "")
            else:
                val, how = v, ""
            if isinstance(val, float):
                val = "%.4f" % val
            lines.append("| %s | %s | %s |" % (k, val, how))
        lines.append("")
    if notes:
        lines += ["## Notes", "", notes, ""]
    return "\n".join(lines)


def write_model_dir(out_dir: str, name: str, kind: str, graphs: dict, sizes: dict,
                    description: str = "", vocab=None, classes: dict | None = None,
                    metrics: dict | None = None, training: dict | None = None,
                    scorer: str | None = None, version: str = "0.1.0", notes: str = "",
                    extra: dict | None = None) -> dict:
    """Write model.json (+ classes.json, vocab.json, MODEL_CARD.md) into out_dir, which already holds
    the graphs named in `graphs` (role -> entry from export_graph). sha256 is recomputed from the files."""
    os.makedirs(out_dir, exist_ok=True)
    manifest = {"schema": 1, "name": name, "kind": kind, "version": version,
                "description": description}
    if scorer:
        manifest["scorer"] = scorer
    manifest["sizes"] = sizes
    if vocab is not None:
        (vocab.save if hasattr(vocab, "save") else (lambda p: write_json(p, vocab)))(
            os.path.join(out_dir, "vocab.json"))
        manifest["vocab"] = "vocab.json"
    if classes is not None:
        write_json(os.path.join(out_dir, "classes.json"), classes)
        manifest["classes"] = "classes.json"
    entries = {}
    for role, e in graphs.items():
        p = os.path.join(out_dir, e["file"])
        if not os.path.exists(p):
            raise FileNotFoundError(p)
        entries[role] = {**e, "sha256": sha256(p)}
    manifest["graphs"] = entries
    if extra:
        manifest.update(extra)
    manifest["training"] = training or {}
    write_json(os.path.join(out_dir, "model.json"), manifest)
    with open(os.path.join(out_dir, "MODEL_CARD.md"), "w", encoding="utf-8") as f:
        f.write(model_card(name, kind, description, metrics, training, sizes, notes))
    return manifest


def validate_model_dir(out_dir: str, required_roles: dict | None = None) -> list[str]:
    """Problems found in a model directory (empty list = valid): files present, sha256 matches,
    graph tensors match the manifest, required graph/tensor roles present."""
    problems = []
    with open(os.path.join(out_dir, "model.json"), encoding="utf-8") as f:
        m = json.load(f)
    for key in ("schema", "name", "kind", "version", "sizes", "graphs"):
        if key not in m:
            problems.append("model.json: missing %s" % key)
    for key in ("vocab", "classes"):
        if key in m and not os.path.exists(os.path.join(out_dir, m[key])):
            problems.append("%s: missing file %s" % (key, m[key]))
    for role, e in m.get("graphs", {}).items():
        p = os.path.join(out_dir, e["file"])
        if not os.path.exists(p):
            problems.append("%s: missing file %s" % (role, e["file"]))
            continue
        if sha256(p) != e["sha256"]:
            problems.append("%s: sha256 mismatch" % role)
        try:
            check_specs(onnx.load(p), e["inputs"], e["outputs"])
        except ValueError as err:
            problems.append("%s: %s" % (role, err))
    for role, tensors in (required_roles or {}).items():
        e = m.get("graphs", {}).get(role)
        if e is None:
            problems.append("missing graph role %s" % role)
            continue
        have = {s["role"] for s in e["inputs"] + e["outputs"]}
        for t in tensors:
            if t not in have:
                problems.append("graph %s: missing tensor role %s" % (role, t))
    return problems


# ---------------------------------------------------------------- the classifier-birds directory


CLASSIFIER_ROLES = {
    "classifier": ["image", "logits", "features", "attributes"],
    "image_encoder": ["image", "cnn_code", "region_features"],
    "text_encoder": ["captions", "cap_lens", "words_emb", "sent_emb"],
}


class _ClassifierGraph(torch.nn.Module):
    """The classifier with its fitted temperatures applied: softmax(logits) and the softmax of
    `attributes` within a group are the calibrated probabilities. With `image_encoder` (a DAMSM
    image encoder whose trunk is the classifier's, weight for weight) the graph also gives its
    cnn_code from the same trunk run: one scorer graph for both measures."""

    def __init__(self, clf, calibration: dict | None = None, image_encoder=None):
        super().__init__()
        self.clf = clf
        self.enc = image_encoder
        cal = calibration or {}
        self.t_class = float(cal.get("class_temperature", 1.0))
        self.t_attr = float(cal.get("attribute_temperature", 1.0))

    def forward(self, image):
        if self.enc is None:
            logits, features, attributes = self.clf(image)
            code = None
        else:
            region, last = self.clf.trunk(image, return_region=True)
            features = last.mean(dim=(2, 3))
            logits, attributes = self.clf.fc(features), self.clf.attr(features)
            code = self.enc.head(region, last)[1]
        if self.t_class != 1.0:
            logits = logits / self.t_class
        if self.t_attr != 1.0:
            attributes = attributes / self.t_attr
        return (logits, features, attributes) if code is None else (logits, features, attributes, code)


def shares_trunk(clf, image_encoder) -> bool:
    """Whether a DAMSM image encoder's trunk is the classifier's, every parameter and buffer equal
    (a DAMSM trained with the classifier's trunk frozen), and the trunk can give its region stage."""
    a, b = clf.trunk.state_dict(), image_encoder.trunk.state_dict()
    if a.keys() != b.keys() or type(clf.trunk) is not type(image_encoder.trunk):
        return False
    return all(torch.equal(a[k], b[k]) for k in a)


def calibration_entry(ck: dict) -> dict | None:
    """model.json's record of the temperatures baked into the classifier graph."""
    cal = ck.get("calibration")
    if not cal:
        return None
    return {"class_temperature": cal["class_temperature"],
            "attribute_temperature": cal["attribute_temperature"],
            "applied": "in the graph: logits and attributes are already divided by these",
            "fitted_on": cal["fitted_on"]}


def lexicon_of(data_dir: str) -> dict | None:
    """The caption lexicon of a sample-world data set (dataset.json), if it has one."""
    p = os.path.join(data_dir, "dataset.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f).get("lexicon")


def classes_with_lexicon(idx: dict, class_ids, data_dir: str) -> dict:
    out = classes_json(idx, class_ids)
    lex = lexicon_of(data_dir)
    if lex:
        out["lexicon"] = lex
    return out


def feature_stats(model, images_u8: torch.Tensor, batch: int = 256) -> dict:
    """Mean and covariance (lists of floats) of classifier features over uint8 images."""
    from .classifier import extract
    f = extract(model, images_u8, batch).astype(np.float64)
    mu = f.mean(0)
    cov = np.cov(f, rowvar=False) if len(f) > 1 else np.zeros((f.shape[1], f.shape[1]))
    def short(a):  # 7 significant digits (float32 precision) keep the JSON small
        return np.vectorize(lambda v: float("%.7g" % v), otypes=[float])(a).tolist()
    return {"n": int(len(f)), "dim": int(f.shape[1]), "mean": short(mu), "cov": short(cov)}


def write_classifier_dir(out_dir: str, data_dir: str, classifier_ckpt: str, damsm_ckpt: str | None,
                         metrics: dict | None = None, name: str = "classifier-birds",
                         verify_batches=(1, 4), verify_T=(5, 18), log=print) -> dict:
    """Export classifier.onnx, image_encoder.onnx, text_encoder.onnx (+ goldens, feature_stats.json,
    vocab, classes, model card), verifying every graph against PyTorch. Without a DAMSM checkpoint
    (damsm_ckpt None) the directory holds the classifier alone: a scorer without text similarity."""
    from . import data as fdata
    from .classifier import load_classifier
    from .damsm import CNNCode, load_damsm_model
    from .tokenizer import golden_tokenizer

    clf, cck = load_classifier(classifier_ckpt)
    dm, vocab, dck = load_damsm_model(damsm_ckpt) if damsm_ckpt else (None, None, {})
    idx = fdata.load_index(data_dir)
    K, A, F = clf.num_classes, clf.num_attributes, clf.feature_dim
    S = cck["config"].get("size", 64)
    os.makedirs(os.path.join(out_dir, "golden"), exist_ok=True)
    for stale in ("image_encoder", "text_encoder"):  # a classifier-only export over an older dir
        if dm is None:
            for p in (os.path.join(out_dir, stale + ".onnx"), os.path.join(out_dir, "golden", stale + ".json")):
                if os.path.exists(p):
                    os.remove(p)
    reports = {}

    def one(role, module, ins_spec, outs_spec, example, checks, golden_in):
        path = os.path.join(out_dir, role + ".onnx")
        entry = export_graph(module, example, ins_spec, outs_spec, path)
        reports[role] = verify(path, module, checks)
        write_golden(os.path.join(out_dir, "golden", role + ".json"), module, golden_in, ins_spec, outs_spec)
        log("exported %s: max |onnx - torch| = %.2e over %d runs (%s)" % (
            role, reports[role]["max_abs_diff"], len(checks), reports[role]["evaluator"]))
        return entry

    graphs = {}
    shared = dm is not None and shares_trunk(clf, dm.image)
    outs = [spec("logits", ["B", K]), spec("features", ["B", F]), spec("attributes", ["B", A])]
    if shared:  # the scorer runs one graph for both measures (image_encoder.onnx stays, for others)
        outs.append(spec("cnn_code", ["B", dm.text.out_dim]))
    graphs["classifier"] = one(
        "classifier", _ClassifierGraph(clf, cck.get("calibration"), dm.image if shared else None),
        [spec("image", ["B", 3, S, S])], outs,
        image_inputs(2, S), [image_inputs(b, S, seed=b) for b in verify_batches], image_inputs(3, S, 7))
    sizes = {"image_size": S, "num_classes": K, "num_attributes": A, "feature_dim": F}
    if dm is not None:
        D = dm.text.out_dim
        R = S // 8
        graphs["image_encoder"] = one(
            "image_encoder", CNNCode(dm.image), [spec("image", ["B", 3, S, S])],
            [spec("cnn_code", ["B", D]), spec("region_features", ["B", D, R, R])],
            image_inputs(2, S), [image_inputs(b, S, seed=b) for b in verify_batches], image_inputs(3, S, 7))
        V = len(vocab)
        checks = [text_inputs(b, t, V, seed=b * 100 + t) for b in verify_batches for t in verify_T]
        graphs["text_encoder"] = one(
            "text_encoder", dm.text,
            [spec("captions", ["B", "T"], "int64"), spec("cap_lens", ["B"], "int64")],
            [spec("words_emb", ["B", D, "T"]), spec("sent_emb", ["B", D])],
            text_inputs(2, 6, V), checks, text_inputs(3, 12, V, seed=3))
        write_json(os.path.join(out_dir, "golden", "tokenizer.json"), golden_tokenizer(vocab))
        sizes.update(text_dim=D, max_words=vocab.max_words, region_size=R, vocab_size=V)

    test = fdata.CUBDataset(data_dir, "test", "seen", S, with_captions=False, index=idx)
    train = fdata.CUBDataset(data_dir, "train", "seen", S, with_captions=False, index=idx)
    stats = {"feature": "features", "graph": "classifier.onnx", "image_size": S,
             "test_seen": feature_stats(clf, test.images), "train_seen": feature_stats(clf, train.images)}
    write_json(os.path.join(out_dir, "feature_stats.json"), stats)

    training = {"data": dataset_ref(data_dir), "steps": cck["step"] + dck.get("step", 0),
                "seconds": round(cck["seconds"] + dck.get("seconds", 0.0), 1),
                "seed": cck["config"].get("seed", 0),
                "classifier": {"steps": cck["step"], "seconds": round(cck["seconds"], 1),
                               "config": cck["config"]},
                "verification": {k: v["max_abs_diff"] for k, v in reports.items()}}
    if dm is not None:
        training["damsm"] = {"steps": dck.get("step", 0), "seconds": round(dck.get("seconds", 0.0), 1),
                             "config": dck.get("config", {})}
    training = portable(training)
    arch = cck["config"].get("arch", "cnn")
    if dm is not None:
        desc = ("Fidelity classifier (%s) for %d seen bird classes at %dx%d (logits, %d-d features, %d "
                "attribute logits) and the DAMSM image/text encoders (%d-d) for R-precision and "
                "caption-image similarity." % (arch, K, S, S, F, A, sizes["text_dim"]))
    else:
        desc = ("Fidelity classifier (%s) for %d seen bird classes at %dx%d (logits, %d-d features, %d "
                "attribute logits), without DAMSM encoders: it scores images, not their agreement with "
                "a caption." % (arch, K, S, S, F, A))
    notes = ("Trained only on train images of seen classes (trainvalclasses.txt); held-out classes "
             "are listed in classes.json with index -1. Images are cropped around the bird's bounding "
             "box (1.5x its longer side) when the data set has bounding_boxes.txt. feature_stats.json "
             "holds the mean and covariance of `features` over real test and train images of seen "
             "classes, for Fréchet distance. Graphs verified against PyTorch (max abs diff <= 1e-4) at "
             "batch sizes %s%s." % (list(verify_batches), (" and caption lengths %s" % list(verify_T))
                                    if dm is not None else ""))
    cap = (dck.get("config") or {}).get("captions")
    if cap == "attributes":
        notes += (" The DAMSM text encoder was trained on captions made from CUB's attribute annotations "
                  "(attributes present with certainty 'probably' or 'definitely', as sentences), not on "
                  "human-written captions.")
    extra = {"feature_stats": "feature_stats.json"}
    if calibration_entry(cck):
        extra["calibration"] = calibration_entry(cck)
    if cap:
        extra["captions"] = cap
    return write_model_dir(out_dir, name, "classifier", graphs, sizes, desc, vocab=vocab,
                           classes=classes_with_lexicon(idx, cck["class_ids"], data_dir),
                           metrics=metrics, training=training, notes=notes, extra=extra)


def scorer_classes(models_dir: str, scorer: str):
    """The trained class names of the scorer model dir `scorer` beside a model being exported into
    models_dir, or None when there is no such directory."""
    p = os.path.join(models_dir, scorer, "classes.json")
    if not os.path.exists(p):
        return None
    with open(p, encoding="utf-8") as f:
        cls = json.load(f)["classes"]
    return [c["name"] for c in sorted((c for c in cls if c["index"] >= 0), key=lambda c: c["index"])]


def preflight_scorer(model_dir: str, name: str | None, scorer: str, class_names,
                     classifier_ckpt: str | None = None) -> None:
    """Before training a generator: refuse a scorer that will not know its classes, from the scorer's
    model dir beside model_dir or else the --classifier checkpoint (unchecked when neither exists)."""
    from . import load_checkpoint
    name = name or os.path.basename(os.path.normpath(model_dir))
    known = scorer_classes(os.path.dirname(os.path.abspath(model_dir)), scorer)
    if known is None and classifier_ckpt and os.path.exists(classifier_ckpt):
        known = list(load_checkpoint(classifier_ckpt)["class_names"])
        scorer = "%s (checkpoint %s)" % (scorer, os.path.basename(classifier_ckpt))
    check_scorer(name, class_names, scorer, known)


def check_scorer(name: str, class_names, scorer: str, scorer_names) -> None:
    """Refuse a generator whose classes its scorer does not know (naming both)."""
    if scorer_names is None:
        return
    unknown = [c for c in class_names if c not in set(scorer_names)]
    if unknown:
        raise ValueError(
            "generator %s does not match its scorer %s: %d of its %d classes are not among the "
            "scorer's %d (e.g. %s); pass --scorer NAME of a classifier trained on the same data set"
            % (name, scorer, len(unknown), len(class_names), len(scorer_names), ", ".join(unknown[:3])))


def write_judge_dir(out_dir: str, data_dir: str, judge_ckpt: str, name: str = "judge-birds",
                    verify_batches=(1, 4), log=print) -> dict:
    """The evaluation network's model dir (kind "evaluator"): one calibrated classifier graph with
    logits, features and attribute logits, used by `studio eval` and never by a generator's loss or
    the fidelity scorer."""
    from . import data as fdata
    from .classifier import calibration_metrics, load_classifier

    clf, ck = load_classifier(judge_ckpt)
    idx = fdata.load_index(data_dir)
    K, A, F = clf.num_classes, clf.num_attributes, clf.feature_dim
    S = ck["config"].get("size", 64)
    os.makedirs(os.path.join(out_dir, "golden"), exist_ok=True)
    module = _ClassifierGraph(clf, ck.get("calibration"))
    ins, outs = [spec("image", ["B", 3, S, S])], [spec("logits", ["B", K]), spec("features", ["B", F]),
                                                  spec("attributes", ["B", A])]
    path = os.path.join(out_dir, "classifier.onnx")
    entry = export_graph(module, image_inputs(2, S), ins, outs, path)
    report = verify(path, module, [image_inputs(b, S, seed=b) for b in verify_batches])
    write_golden(os.path.join(out_dir, "golden", "classifier.json"), module, image_inputs(3, S, 7), ins, outs)
    log("exported judge classifier: max |onnx - torch| = %.2e" % report["max_abs_diff"])
    cm = ck.get("metrics", {})
    metrics = {"top1_test_seen": {"value": cm.get("top1"), "how": "top-1 on the %d real test images "
                                  "of seen classes" % cm.get("n", 0)},
               "attribute_accuracy_test_seen": {"value": cm.get("attr_acc"), "how": "mean "
                                                "per-attribute accuracy of attribute logits > 0"}}
    metrics.update(calibration_metrics(cm))
    training = portable({"data": dataset_ref(data_dir), "steps": ck["step"],
                         "seconds": round(ck["seconds"], 1), "seed": ck["config"].get("seed"),
                         "config": ck["config"], "verification": {"classifier": report["max_abs_diff"]}})
    desc = ("Evaluation network (%s, seed %s) for %d seen bird classes at %dx%d: logits, %d-d "
            "features, %d attribute logits, calibrated. Own architecture, seed and training; shares "
            "no weights with the fidelity scorer, the DAMSM encoders or any generator's loss, and no "
            "generator ever trained against it." % (ck["config"].get("arch"), ck["config"].get("seed"),
                                                     K, S, S, F, A))
    notes = ("`studio eval` grades generators with it (Fréchet distance, precision/recall, top-1, "
             "attribute agreement, edits, R-precision), each beside its real-image reference.")
    extra = {"role": "evaluator"}
    if calibration_entry(ck):
        extra["calibration"] = calibration_entry(ck)
    sizes = {"image_size": S, "num_classes": K, "num_attributes": A, "feature_dim": F}
    return write_model_dir(out_dir, name, "evaluator", {"classifier": entry}, sizes, desc,
                           classes=classes_with_lexicon(idx, ck["class_ids"], data_dir),
                           metrics=metrics, training=training, notes=notes, extra=extra)
