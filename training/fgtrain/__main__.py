"""Command line: /usr/bin/python3 -m fgtrain <command> --data DIR --out DIR [options]

    classifier  train the fidelity classifier            -> <out>/classifier.pt
    damsm       train DAMSM (text + image encoders)       -> <out>/damsm.pt
    export      write models/classifier-birds from classifier.pt + damsm.pt (verified ONNX graphs)
    eval        metrics of the classifier and DAMSM (from checkpoints or from an exported model dir)
    cvaegan     train CVAE-GAN   (fgtrain/cvaegan.py: main(argv))
    attngan     train AttnGAN    (fgtrain/attngan.py: main(argv))
    cvaegan2    train CVAE-GAN v2 at 128 px (fgtrain/cvaegan2.py)
    attngan2    train AttnGAN v2, stages 32/64/128 (fgtrain/attngan2.py)
    bench       PyTorch eager images/s of every graph of exported model dirs (fgtrain/bench.py;
                --models DIR [--run RUN] --threads N --batches 1,8,32 --json OUT)

Common options: --data DIR --out DIR [--quick] [--minutes N] [--resume] [--seed S] [--threads N].
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys

from . import load_checkpoint, setup

# Commands implemented in their own module as `main(argv) -> int | None` (owned by the generator
# training code). Hook: add a name here and a module fgtrain/<name>.py with `main`.
MODULE_COMMANDS = ("cvaegan", "attngan", "cvaegan2", "attngan2")


def _common(p: argparse.ArgumentParser, minutes: float):
    p.add_argument("--data", required=True, help="data set root (CUB-200-2011 layout)")
    p.add_argument("--out", required=True, help="run directory for checkpoints and logs")
    p.add_argument("--quick", action="store_true", help="a few steps only (tests)")
    p.add_argument("--minutes", type=float, default=minutes,
                   help="wall-clock training budget in minutes, including time before --resume")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--width", type=int, default=32, help="CNN width (channels of the first stage)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    p.add_argument("--ckpt-every", type=int, default=200, help="checkpoint every N steps")
    p.add_argument("--eval-every", type=int, default=500, help="evaluate on the test split every N steps")


def _opt(args, **names):
    return {k: getattr(args, v) for k, v in names.items() if getattr(args, v) is not None}


def cmd_classifier(argv):
    p = argparse.ArgumentParser(prog="fgtrain classifier", description="train a classifier: the "
                                "fidelity scorer (default), the generators' loss trunk (--name "
                                "lossnet --seed 1) or the evaluation network (--name judge --arch "
                                "resnet --seed 2)")
    _common(p, 6.0)
    p.add_argument("--name", default="classifier", help="checkpoint <out>/<name>.pt")
    p.add_argument("--arch", default="cnn", choices=("cnn", "resnet"))
    a = p.parse_args(argv)
    setup(a.threads, a.seed)
    from .classifier import train
    m = train(a.data, a.out, a.minutes, a.quick, a.resume, a.seed, width=a.width,
              ckpt_every=a.ckpt_every, eval_every=a.eval_every, device=a.device, name=a.name,
              arch=a.arch, **_opt(a, batch="batch", lr="lr"))
    print(json.dumps(m, indent=1))


def cmd_damsm(argv):
    p = argparse.ArgumentParser(prog="fgtrain damsm", description="train DAMSM text and image encoders")
    _common(p, 8.0)
    p.add_argument("--init-classifier", help="classifier.pt whose trunk starts the image encoder "
                   "(default: <out>/classifier.pt if it exists; 'none' to start from scratch)")
    p.add_argument("--freeze-trunk", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the classifier-initialised trunk frozen (default: yes when initialised)")
    p.add_argument("--export", metavar="MODEL_DIR",
                   help="then write the classifier model dir (needs <out>/classifier.pt)")
    p.add_argument("--name", default="damsm", help="checkpoint <out>/<name>.pt (damsm: the one "
                   "AttnGAN trains against; damsm_scorer: the scorer's)")
    a = p.parse_args(argv)
    setup(a.threads, a.seed)
    from .damsm import train
    init = a.init_classifier
    if init is None and os.path.exists(os.path.join(a.out, "classifier.pt")):
        init = os.path.join(a.out, "classifier.pt")
    if init == "none":
        init = None
    m = train(a.data, a.out, a.minutes, a.quick, a.resume, a.seed, width=a.width,
              init_classifier=init, freeze_trunk=a.freeze_trunk, ckpt_every=a.ckpt_every, eval_every=a.eval_every,
              device=a.device, name=a.name,
              **_opt(a, batch="batch", lr="lr"))
    print(json.dumps(m, indent=1))
    if a.export:
        _export(a.data, a.out, a.export, damsm_name=a.name)


def fidelity_metrics(data_dir: str, classifier_pt: str) -> dict:
    """Model-card rows: does attribute_agreement tell true captions of real test images from the same
    captions with one attribute word changed? (AUROC, pooled and per group.)"""
    from . import data
    from .classifier import load_classifier
    from .export import lexicon_of
    from .fidelity import edit_auroc
    from .lexicon import Lexicon
    lex = lexicon_of(data_dir)
    if not lex:
        return {}
    clf, ck = load_classifier(classifier_pt)
    t = (ck.get("calibration") or {}).get("attribute_temperature", 1.0)
    ds = data.CUBDataset(data_dir, "test", "seen", ck["config"].get("size", 64), with_captions=True)
    r = edit_auroc(clf, ds, Lexicon(lex), temperature=t)
    how = ("AUROC of attribute_agreement on the %d real test images of seen classes: two of each "
           "image's captions (positives) against the same captions with one named attribute changed "
           "to another value of its group (negatives)" % len(ds))
    out = {"fidelity_auroc_one_word_edit": {"value": r["auroc"], "how": how + "; %d pairs" % r["pairs"]}}
    for g, v in r["per_group"].items():
        out["fidelity_auroc_" + g] = {"value": v["auroc"], "how": "the same, edits of %s only; %d pairs"
                                      % (g, v["pairs"])}
    return out


def _export(data_dir, run_dir, model_dir, damsm_name="damsm_scorer"):
    from .classifier import calibration_metrics
    from .export import write_classifier_dir
    cpt, dpt = os.path.join(run_dir, "classifier.pt"), os.path.join(run_dir, damsm_name + ".pt")
    cm = load_checkpoint(cpt).get("metrics", {})
    dm = load_checkpoint(dpt).get("metrics", {})
    metrics = {}
    if "top1" in cm:
        metrics["classifier_top1_test_seen"] = {
            "value": cm["top1"], "how": "top-1 accuracy on the %d real test images of seen classes" % cm.get("n", 0)}
        metrics["classifier_top5_test_seen"] = {"value": cm.get("top5"), "how": "top-5, same images"}
        metrics["attribute_accuracy_test_seen"] = {
            "value": cm.get("attr_acc"), "how": "mean per-attribute accuracy of attribute logits > 0, same images"}
    metrics.update(calibration_metrics(cm))
    metrics.update(fidelity_metrics(data_dir, cpt))
    if "r_precision" in dm:
        metrics["damsm_r_precision_test_seen"] = {
            "value": dm["r_precision"],
            "how": "real test images of seen classes with one of their own captions among 100 "
                   "(99 from other classes), cosine of cnn_code and sent_emb, top-1; mean of %d draws "
                   "(std %.4f), %d images" % (dm.get("folds", 1), dm.get("r_precision_std", 0.0), dm.get("n", 0))}
    m = write_classifier_dir(model_dir, data_dir, cpt, dpt, metrics, name=os.path.basename(model_dir.rstrip("/")))
    print("wrote %s (%s)" % (model_dir, ", ".join(sorted(m["graphs"]))))


def cmd_export(argv):
    p = argparse.ArgumentParser(prog="fgtrain export",
                                description="export classifier.pt + damsm.pt of a run to a model dir")
    p.add_argument("--data", required=True)
    p.add_argument("--run", required=True, help="run directory with classifier.pt and damsm.pt")
    p.add_argument("--out", required=True, help="model directory to write (e.g. models/classifier-birds)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--damsm-name", default="damsm_scorer",
                   help="the scorer's DAMSM checkpoint in --run (<name>.pt)")
    p.add_argument("--judge", action="store_true",
                   help="write the evaluation network's model dir from <run>/judge.pt instead")
    a = p.parse_args(argv)
    setup(a.threads, 0)
    if a.judge:
        from .export import write_judge_dir
        m = write_judge_dir(a.out, a.data, os.path.join(a.run, "judge.pt"))
        print("wrote %s (%s)" % (a.out, ", ".join(sorted(m["graphs"]))))
        return
    _export(a.data, a.run, a.out, damsm_name=a.damsm_name)


def cmd_eval(argv):
    p = argparse.ArgumentParser(prog="fgtrain eval", description=(
        "classifier top-1 on the test split of seen classes and DAMSM R-precision of real test "
        "images; from a run's checkpoints (--run) or an exported model dir (--models, runs the "
        "ONNX graphs with the reference evaluator)"))
    p.add_argument("--data", required=True)
    p.add_argument("--run", help="run directory with classifier.pt and damsm.pt")
    p.add_argument("--models", help="exported classifier model dir (slow: reference evaluator)")
    p.add_argument("--out", help="write the metrics as JSON here")
    p.add_argument("--limit", type=int, help="evaluate at most N test images")
    p.add_argument("--quick", action="store_true", help="64 images, one draw (tests)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    setup(a.threads, a.seed)
    if not a.run and not a.models:
        p.error("give --run or --models")
    if a.quick:
        a.limit, a.folds = min(a.limit or 64, 64), 1
    m = evaluate_real(a.data, run_dir=a.run, model_dir=a.models, limit=a.limit, folds=a.folds, seed=a.seed)
    text = json.dumps(m, indent=1)
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


def evaluate_real(data_dir, run_dir=None, model_dir=None, limit=None, folds=5, seed=0) -> dict:
    """Classifier top-1, attribute accuracy, FID(test vs train), IS and intra-class diversity of
    real images, and DAMSM R-precision of real test images of seen classes."""
    import numpy as np
    import torch

    from . import data, metrics
    if run_dir:
        scorer = metrics.Scorer.from_checkpoints(os.path.join(run_dir, "classifier.pt"),
                                                 os.path.join(run_dir, "damsm.pt"))
    else:
        scorer = metrics.Scorer.from_model_dir(model_dir)
    idx = data.load_index(data_dir)
    test = data.CUBDataset(data_dir, "test", "seen", 64, vocab=scorer.vocab, index=idx, seed=seed)
    train = data.CUBDataset(data_dir, "train", "seen", 64, with_captions=False, index=idx)
    n = len(test) if limit is None else min(limit, len(test))
    sel = torch.arange(n)
    f, p = scorer.features(test.images[sel], with_probs=True)
    labels = test.labels[sel].numpy()
    ftr = scorer.features(train.images if limit is None else train.images[:limit])
    out = {"n_test": n, "top1_test_seen": metrics.top1(p, labels),
           "fid_test_vs_train_seen": metrics.frechet_distance(*metrics.stats(f), *metrics.stats(ftr)),
           "inception_score_test_seen": metrics.inception_score(p)[0],
           "intra_class_diversity_test_seen": metrics.intra_class_diversity(f, labels)}
    if scorer.image_encoder is not None:
        import random
        rng = random.Random(seed)
        ic, _ = scorer.codes(test.images[sel])
        rs = []
        for k in range(folds):
            b = test.batch(sel, rng=rng)
            _, sc = scorer.codes(None, b["caption"], b["cap_len"])
            rs.append(metrics.r_precision(ic, sc, labels, seed=seed + k))
        out["r_precision_test_seen"] = float(np.mean(rs))
        out["r_precision_std"] = float(np.std(rs))
    return out


def cmd_bench(argv):
    from .bench import main as bench_main
    return bench_main(argv)


COMMANDS = {"classifier": cmd_classifier, "damsm": cmd_damsm, "export": cmd_export, "eval": cmd_eval,
            "bench": cmd_bench}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = sorted(list(COMMANDS) + list(MODULE_COMMANDS))
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd in COMMANDS:
        return COMMANDS[cmd](rest) or 0
    if cmd in MODULE_COMMANDS:
        # hook for fgtrain/cvaegan.py and fgtrain/attngan.py: each provides main(argv)
        if importlib.util.find_spec("fgtrain." + cmd) is None:
            print("fgtrain: command %r is not available (fgtrain/%s.py is missing)" % (cmd, cmd),
                  file=sys.stderr)
            return 2
        mod = importlib.import_module("fgtrain." + cmd)
        return mod.main(rest) or 0
    print("fgtrain: unknown command %r (commands: %s)" % (cmd, ", ".join(names)), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
