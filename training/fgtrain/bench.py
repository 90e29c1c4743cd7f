"""PyTorch eager throughput of every graph of the exported model directories, for comparison with the
Go benchmark `BenchmarkGraph` (generator/bench_test.go), which runs the same graphs through ONNX Runtime:

    /usr/bin/python3 -m fgtrain bench --models ../samples/models [--run ../training/runs/birds] \\
        --threads 2 --batches 1,8,32 --json /tmp/torch.json

Each graph (identical files, by sha256, are measured once, under the first model directory and role in
sorted order, the same rule as the Go benchmark) is rebuilt as the training code's nn.Module and run in
eval mode under torch.no_grad() with torch.set_num_threads(--threads), which should equal ONNX Runtime's
intra-op threads. Weights come from the run's checkpoints when --run has them (checked against the
model directory's golden files, so they are known to be the exported weights), otherwise the same
architecture is built from model.json's training config with random initialisation; the output says
which. Timing does not depend on the values.

Inputs are built from the manifest's tensor specs exactly as the Go benchmark builds them: B = batch,
T = sizes.max_words; float tensors random normal, masks (name contains "mask") zero, token ids uniform in
[1, vocab_size), lengths (name contains "len") = T.

Throughput: after --warmup runs, --repeats timed samples of at least --min-seconds each (as many runs
as that takes, at least one); images/s = batch * runs / seconds; the median of the samples is reported
with their minimum and maximum. Each sample also records the process's CPU time per image
(time.process_time, all threads), which depends less than wall time on how busy the machine is.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn

from . import load_checkpoint

GOLDEN_TOL = 1e-3  # the checkpoint is "the exported weights" when it reproduces the golden outputs


# ---------------------------------------------------------------- graphs of the model directories


def read_models(models_dir: str) -> list[dict]:
    """model.json of every model directory under models_dir, sorted by directory name."""
    res = []
    for name in sorted(os.listdir(models_dir)):
        path = os.path.join(models_dir, name, "model.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                m = json.load(f)
            m["_dir"] = os.path.join(models_dir, name)
            res.append(m)
    return res


def unique_graphs(models: list[dict]) -> list[dict]:
    """One entry per distinct graph file (by sha256): first model (sorted) and role (sorted) wins; the
    other places it appears are listed as aliases."""
    seen: dict[str, dict] = {}
    out = []
    for m in models:
        for role in sorted(m["graphs"]):
            g = m["graphs"][role]
            key = "%s/%s" % (m["name"], role)
            sha = g.get("sha256", key)
            if sha in seen:
                seen[sha]["aliases"].append(key)
                continue
            e = {"key": key, "model": m, "role": role, "graph": g, "sha256": sha, "aliases": []}
            seen[sha] = e
            out.append(e)
    return out


def dim(d, B: int, T: int) -> int:
    if isinstance(d, int):
        return d
    if d == "B":
        return B
    if d == "T":
        return T
    raise ValueError("unknown dynamic dimension %r" % (d,))


def make_inputs(graph: dict, sizes: dict, B: int, seed: int = 0) -> list[torch.Tensor]:
    """Inputs in manifest order (= the module's forward arguments), built as the Go benchmark does."""
    T = int(sizes.get("max_words", 18))
    vocab = int(sizes.get("vocab_size", 2))
    g = torch.Generator().manual_seed(seed)
    res = []
    for s in graph["inputs"]:
        shape = [dim(d, B, T) for d in s["shape"]]
        name = s["name"].lower()
        if s["dtype"] == "int64":
            if "len" in name:
                res.append(torch.full(shape, T, dtype=torch.long))
            else:
                res.append(torch.randint(1, max(2, vocab), shape, generator=g, dtype=torch.long))
        elif s["dtype"] == "bool":
            res.append(torch.zeros(shape, dtype=torch.bool))
        elif "mask" in name:
            res.append(torch.zeros(shape))
        else:
            res.append(torch.randn(shape, generator=g))
    return res


# ---------------------------------------------------------------- modules: from checkpoints or random


def _damsm_module(role: str, sizes: dict, config: dict, ckpt: str | None):
    from .damsm import DAMSM, CNNCode, load_damsm_model
    if ckpt:
        dm, _, _ = load_damsm_model(ckpt)
    else:
        dm = DAMSM(int(sizes["vocab_size"]), int(sizes.get("text_dim", 256)), int(config.get("width", 32)))
    return dm.text if role == "text_encoder" else CNNCode(dm.image)


def build_module(e: dict, run_dir: str | None) -> tuple[nn.Module, str | None]:
    """(module in eval mode, checkpoint path or None) for one graph of a model directory."""
    m, role = e["model"], e["role"]
    kind, sizes, tr = m["kind"], m.get("sizes", {}), m.get("training", {})

    def ck(name):
        p = os.path.join(run_dir, name) if run_dir else None
        return p if p and os.path.isfile(p) else None

    if role in ("text_encoder", "image_encoder"):
        # the scorer's DAMSM is its own (damsm_scorer.pt); AttnGAN's is the one it trained against
        p = (ck("damsm_scorer.pt") if kind == "classifier" else None) or ck("damsm.pt")
        dcfg = tr.get("damsm") if isinstance(tr.get("damsm"), dict) else {}
        return _damsm_module(role, sizes, dcfg.get("config", {}), p), p
    if kind in ("classifier", "evaluator") and role == "classifier":
        from .classifier import Classifier, load_classifier
        from .export import _ClassifierGraph
        p = ck("classifier.pt" if kind == "classifier" else "judge.pt")
        cal = m.get("calibration")  # the temperatures the exported graph applies
        if p:
            clf, cck = load_classifier(p)
            cal = cck.get("calibration") or cal
        else:
            cfg = tr.get("classifier", {}).get("config") or tr.get("config", {})
            clf = Classifier(int(sizes["num_classes"]), int(sizes["num_attributes"]),
                             int(cfg.get("width", 32)), arch=cfg.get("arch", "cnn"))
        return _ClassifierGraph(clf, cal), p
    if kind == "cvaegan":
        from .cvaegan import CVAEGAN, _EncoderGraph, load_cvaegan
        from .cvaegan_nets import CVAEGANConfig
        p = ck("cvaegan.pt")
        cv = load_cvaegan(p)[0] if p else CVAEGAN(CVAEGANConfig(**tr["config"]))
        if role == "generator":
            return cv.G_ema, p
        if role == "encoder":
            return _EncoderGraph(cv.E), p
    if kind == "attngan" and role == "generator":
        from .attngan import AttnGAN, load_attngan
        from .attngan_nets import AttnGANConfig
        p = ck("attngan.pt")
        ag = load_attngan(p)[0] if p else AttnGAN(AttnGANConfig.from_dict(tr["config"]))
        return ag.G_ema, p
    raise ValueError("no PyTorch module known for %s (kind %s)" % (e["key"], kind))


def golden_diff(e: dict, module: nn.Module) -> float | None:
    """Max |torch - golden| over the golden outputs of the graph, or None without a golden file."""
    from .export import decode_tensor
    path = os.path.join(e["model"]["_dir"], "golden", e["role"] + ".json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        gold = json.load(f)
    ins = [torch.from_numpy(np.array(decode_tensor(gold["inputs"][s["name"]]))) for s in e["graph"]["inputs"]]
    with torch.no_grad():
        outs = module(*ins)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    worst = 0.0
    for s, o in zip(e["graph"]["outputs"], outs):
        if s["name"] in gold["outputs"]:
            want = decode_tensor(gold["outputs"][s["name"]])
            worst = max(worst, float(np.abs(o.numpy() - want).max()))
    return worst


def load_module(e: dict, run_dir: str | None) -> tuple[nn.Module, str]:
    """Module in eval mode and a line saying where its weights come from."""
    try:
        module, ckpt = build_module(e, run_dir)
    except Exception as err:  # a checkpoint of another architecture: time the manifest's instead
        if not run_dir:
            raise
        module, ckpt = build_module(e, None)
        ckpt = None
        print("bench: %s: checkpoint unusable (%s); random init" % (e["key"], err), file=sys.stderr)
    module.eval()
    if ckpt is None:
        return module, "random init (architecture from model.json)"
    diff = golden_diff(e, module)
    if diff is None:
        return module, "checkpoint %s (no golden file to compare)" % ckpt
    if diff <= GOLDEN_TOL:
        return module, "checkpoint %s (= exported weights: golden max diff %.1e)" % (ckpt, diff)
    return module, "checkpoint %s (differs from the exported graph: golden max diff %.3g)" % (ckpt, diff)


# ---------------------------------------------------------------- timing


def time_forward(module: nn.Module, inputs, batch: int, repeats: int, warmup: int, min_seconds: float) -> dict:
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(max(1, warmup)):
            module(*inputs)
        per_run = (time.perf_counter() - t0) / max(1, warmup)
        runs = max(1, math.ceil(min_seconds / max(per_run, 1e-9)))
        samples, cpu = [], []
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(runs):
                module(*inputs)
            samples.append(batch * runs / (time.perf_counter() - t0))
            cpu.append(1000 * (time.process_time() - c0) / (batch * runs))
    return {"images_per_s": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": [round(s, 3) for s in samples], "runs_per_sample": runs,
            "cpu_ms_per_image": [round(c, 4) for c in cpu]}


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model or platform.processor(), "python": platform.python_version()}


def loadavg() -> list[float]:
    try:
        return [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        return []


def run(models_dir: str, run_dir: str | None, threads: int, batches: list[int], repeats: int = 5,
        warmup: int = 1, min_seconds: float = 0.5, only: str | None = None, log=print) -> dict:
    torch.set_num_threads(max(1, threads))
    torch.manual_seed(0)
    res = {"tool": "pytorch-eager", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
           "batches": batches, "repeats": repeats, "warmup": warmup, "min_seconds": min_seconds,
           "machine": machine(), "loadavg_start": loadavg(), "graphs": []}
    for e in unique_graphs(read_models(models_dir)):
        if only and only not in e["key"]:
            continue
        module, weights = load_module(e, run_dir)
        entry = {"graph": e["key"], "sha256": e["sha256"], "aliases": e["aliases"], "weights": weights,
                 "batches": {}}
        log("%s: %s" % (e["key"], weights))
        for B in batches:
            inputs = make_inputs(e["graph"], e["model"].get("sizes", {}), B)
            r = time_forward(module, inputs, B, repeats, warmup, min_seconds)
            entry["batches"][str(B)] = r
            log("  batch %3d: %9.2f images/s (min %.2f, max %.2f; %d samples x %d runs)" % (
                B, r["images_per_s"], r["min"], r["max"], repeats, r["runs_per_sample"]))
        res["graphs"].append(entry)
    res["loadavg_end"] = loadavg()
    return res


def main(argv) -> int:
    p = argparse.ArgumentParser(prog="fgtrain bench", description=(
        "PyTorch eager images/s of every graph of the model directories (compare with the Go "
        "BenchmarkGraph on ONNX Runtime; scripts/bench.sh runs both)"))
    p.add_argument("--models", required=True, help="folder of model directories (e.g. ../samples/models)")
    p.add_argument("--run", help="run directory with the checkpoints (classifier.pt, damsm.pt, cvaegan.pt, "
                                 "attngan.pt); without it, or where one is missing, random init")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (= ONNX Runtime intra-op threads)")
    p.add_argument("--batches", default="1,8,32", help="comma-separated batch sizes")
    p.add_argument("--repeats", type=int, default=5, help="timed samples per graph and batch")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    p.add_argument("--min-seconds", type=float, default=0.5, help="least duration of one sample")
    p.add_argument("--only", help="graphs whose key (model/role) contains this")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args(argv)
    batches = [int(b) for b in a.batches.split(",") if b.strip()]
    if not batches or min(batches) < 1:
        p.error("--batches needs positive integers")
    res = run(a.models, a.run, a.threads, batches, a.repeats, a.warmup, a.min_seconds, a.only,
              log=lambda s: print(s, file=sys.stderr, flush=True))
    text = json.dumps(res, indent=1)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0
