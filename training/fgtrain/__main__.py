"""Command line: /usr/bin/python3 -m fgtrain <command> --data DIR --out DIR [options]

    classifier  train the fidelity classifier            -> <out>/classifier.pt
    damsm       train DAMSM (text + image encoders)       -> <out>/damsm.pt
    export      write a classifier model dir from classifier.pt (+ a DAMSM if there is one; verified
                ONNX graphs), or the judge's (--judge)
    eval        metrics of the classifier (and DAMSM if there is one), from checkpoints or an
                exported model dir
    cvaegan     train CVAE-GAN   (fgtrain/cvaegan.py: main(argv))
    attngan     train AttnGAN    (fgtrain/attngan.py: main(argv))
    cvaegan2    train CVAE-GAN v2 at 128 px (fgtrain/cvaegan2.py)
    attngan2    train AttnGAN v2, stages 32/64/128 (fgtrain/attngan2.py)
    check       what a data set holds and lacks (missing files, captions, attributes, split), first
    bench       PyTorch eager images/s of every graph of exported model dirs (fgtrain/bench.py;
                --models DIR [--run RUN] --threads N --batches 1,8,32 --json OUT)

Common options: --data DIR --out DIR [--quick] [--minutes N] [--resume] [--seed S] [--threads N]
[--skip-missing]. Every trainer also runs under torchrun (DistributedDataParallel, one process per GPU
or, with the gloo backend, per CPU): torchrun --nproc_per_node 2 -m fgtrain classifier ...
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
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out images listed in images.txt whose files are missing (a partial download)")


def _skip_missing(a) -> None:
    if getattr(a, "skip_missing", False):
        from . import data
        data.SKIP_MISSING = True


def _opt(args, **names):
    return {k: getattr(args, v) for k, v in names.items() if getattr(args, v) is not None}


def cmd_classifier(argv):
    p = argparse.ArgumentParser(prog="fgtrain classifier", description="train a classifier: the "
                                "fidelity scorer (default), the generators' loss trunk (--name "
                                "lossnet --seed 1) or the evaluation network (--name judge --arch "
                                "resnet --seed 2)")
    _common(p, 6.0)
    p.add_argument("--name", default="classifier", help="checkpoint <out>/<name>.pt")
    p.add_argument("--arch", default="cnn", choices=("cnn", "resnet"),
                   help="cnn: the compact 64 px CNN; resnet: a ResNet (18-layer layout, BasicBlocks "
                        "[2,2,2,2] from 96 px up, one block a stage below) for photos")
    p.add_argument("--size", type=int, default=64,
                   help="input side in pixels: 64 (sample world), 128 or 224 (photos); a multiple of 16")
    p.add_argument("--pretrained", metavar="PATH",
                   help="start the ResNet trunk from torchvision's ResNet-18 ImageNet weights (a "
                        "resnet18-*.pth file; needs --arch resnet --width 64 --size 96 or more); the "
                        "trunk then learns at a tenth of --lr")
    p.add_argument("--augment", default=None, choices=("light", "photo"),
                   help="light: pad-crop, flip, +-10%% colour (default up to 64 px); photo: random "
                        "resized crop (35-100%% of the area), flip, +-25%% colour (default above 64 px)")
    a = p.parse_args(argv)
    if a.size % 16 or a.size < 32:
        p.error("--size %d: want a multiple of 16, at least 32 (64, 128, 224)" % a.size)
    _skip_missing(a)
    setup(a.threads, a.seed)
    from .classifier import train
    m = train(a.data, a.out, a.minutes, a.quick, a.resume, a.seed, width=a.width,
              ckpt_every=a.ckpt_every, eval_every=a.eval_every, device=a.device, name=a.name,
              arch=a.arch, size=a.size, augment=a.augment, pretrained=a.pretrained,
              **_opt(a, batch="batch", lr="lr"))
    if m is not None:
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
    p.add_argument("--captions", default="text", choices=("text", "attributes"),
                   help="text: the caption files (text/ or text_c10/); attributes: sentences made from "
                        "CUB's attribute annotations (present, certainty probably/definitely) when a data "
                        "set has no captions (the model card says so)")
    a = p.parse_args(argv)
    _skip_missing(a)
    setup(a.threads, a.seed)
    from .damsm import train
    init = a.init_classifier
    if init is None and os.path.exists(os.path.join(a.out, "classifier.pt")):
        init = os.path.join(a.out, "classifier.pt")
    if init == "none":
        init = None
    m = train(a.data, a.out, a.minutes, a.quick, a.resume, a.seed, width=a.width,
              init_classifier=init, freeze_trunk=a.freeze_trunk, ckpt_every=a.ckpt_every, eval_every=a.eval_every,
              device=a.device, name=a.name, captions=a.captions,
              **_opt(a, batch="batch", lr="lr"))
    if m is None:  # not the main process of a distributed run
        return
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


def _export(data_dir, run_dir, model_dir, damsm_name="damsm_scorer", classifier="classifier",
            name=None, classifier_only=False):
    from .classifier import calibration_metrics
    from .export import write_classifier_dir
    cpt = os.path.join(run_dir, classifier + ".pt")
    dpt = os.path.join(run_dir, damsm_name + ".pt")
    if not os.path.exists(cpt):
        raise SystemExit("fgtrain export: no %s (train it with `fgtrain classifier --out %s --name %s`)"
                         % (cpt, run_dir, classifier))
    if classifier_only:
        dpt = None
    elif not os.path.exists(dpt):
        print("fgtrain export: no %s: writing a classifier-only model dir (no text similarity); "
              "train a DAMSM (`fgtrain damsm --name %s`) to add one" % (dpt, damsm_name), file=sys.stderr)
        dpt = None
    cm = load_checkpoint(cpt).get("metrics", {})
    dm = load_checkpoint(dpt).get("metrics", {}) if dpt else {}
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
    m = write_classifier_dir(model_dir, data_dir, cpt, dpt, metrics,
                             name=name or os.path.basename(model_dir.rstrip("/")))
    print("wrote %s (%s)" % (model_dir, ", ".join(sorted(m["graphs"]))))


def cmd_export(argv):
    p = argparse.ArgumentParser(prog="fgtrain export",
                                description="export a classifier (+ its DAMSM, if any) of a run to a model dir")
    p.add_argument("--data", required=True)
    p.add_argument("--run", required=True, help="run directory with the classifier (and DAMSM) checkpoints")
    p.add_argument("--out", required=True, help="model directory to write (e.g. models/classifier-birds)")
    p.add_argument("--name", help="model name in model.json (default: the --out folder's name); "
                   "generators name their scorer by it")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--classifier", default="classifier", help="the classifier checkpoint in --run (<name>.pt)")
    p.add_argument("--damsm-name", default="damsm_scorer",
                   help="the scorer's DAMSM checkpoint in --run (<name>.pt); without it the model dir "
                        "holds the classifier alone")
    p.add_argument("--classifier-only", action="store_true", help="leave the DAMSM encoders out")
    p.add_argument("--judge", action="store_true",
                   help="write the evaluation network's model dir from <run>/judge.pt instead")
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out images listed in images.txt whose files are missing")
    a = p.parse_args(argv)
    _skip_missing(a)
    setup(a.threads, 0)
    if a.judge:
        from .export import write_judge_dir
        kw = {"name": a.name} if a.name else {}
        m = write_judge_dir(a.out, a.data, os.path.join(a.run, "judge.pt"), **kw)
        print("wrote %s (%s)" % (a.out, ", ".join(sorted(m["graphs"]))))
        return
    _export(a.data, a.run, a.out, damsm_name=a.damsm_name, classifier=a.classifier, name=a.name,
            classifier_only=a.classifier_only)


def cmd_eval(argv):
    p = argparse.ArgumentParser(prog="fgtrain eval", description=(
        "classifier top-1 on the test split of seen classes and, when there is a DAMSM, its "
        "R-precision on real test images; from a run's checkpoints (--run) or an exported model dir "
        "(--models, runs the ONNX graphs with the reference evaluator)"))
    p.add_argument("--data", required=True)
    p.add_argument("--run", help="run directory with the classifier (and damsm.pt, if any)")
    p.add_argument("--classifier", default="classifier", help="the classifier checkpoint in --run (<name>.pt)")
    p.add_argument("--damsm-name", default="damsm", help="the DAMSM checkpoint in --run, if any (<name>.pt)")
    p.add_argument("--models", help="exported classifier model dir (slow: reference evaluator)")
    p.add_argument("--out", help="write the metrics as JSON here")
    p.add_argument("--limit", type=int, help="evaluate at most N test images")
    p.add_argument("--quick", action="store_true", help="64 images, one draw (tests)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out images listed in images.txt whose files are missing")
    a = p.parse_args(argv)
    _skip_missing(a)
    setup(a.threads, a.seed)
    if not a.run and not a.models:
        p.error("give --run or --models")
    if a.quick:
        a.limit, a.folds = min(a.limit or 64, 64), 1
    m = evaluate_real(a.data, run_dir=a.run, model_dir=a.models, limit=a.limit, folds=a.folds, seed=a.seed,
                      classifier=a.classifier, damsm_name=a.damsm_name)
    text = json.dumps(m, indent=1)
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


def evaluate_real(data_dir, run_dir=None, model_dir=None, limit=None, folds=5, seed=0,
                  classifier="classifier", damsm_name="damsm") -> dict:
    """Classifier top-1, attribute accuracy, FID(test vs train), IS and intra-class diversity of
    real images, and (with a DAMSM) its R-precision on real test images of seen classes."""
    import numpy as np
    import torch

    from . import data, metrics
    from .scoring import Scorer
    if run_dir:
        cpt, dpt = os.path.join(run_dir, classifier + ".pt"), os.path.join(run_dir, damsm_name + ".pt")
        if not os.path.exists(cpt):
            raise SystemExit("fgtrain eval: no %s" % cpt)
        scorer = Scorer.from_checkpoints(cpt, dpt if os.path.exists(dpt) else None)
    else:
        scorer = Scorer.from_model_dir(model_dir)
    idx = data.load_index(data_dir)
    S = scorer.size
    if scorer.image_encoder is not None:
        try:
            idx = data.use_captions(idx, scorer.captions, "DAMSM R-precision (fgtrain eval)")
        except data.NoCaptionsError as e:
            print("fgtrain eval: classifier only: %s" % e, file=sys.stderr)
            scorer.image_encoder = scorer.text_encoder = scorer.vocab = None
    test = data.CUBDataset(data_dir, "test", "seen", S, vocab=scorer.vocab, index=idx, seed=seed,
                           with_captions=scorer.vocab is not None)
    train = data.CUBDataset(data_dir, "train", "seen", S, with_captions=False, index=idx)
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
        keep = sel[(test.caption_lens[sel] > 0).any(1)]  # images with an encodable caption
        ic, _ = scorer.codes(test.images[keep])
        rs = []
        for k in range(folds):
            b = test.batch(keep, rng=rng)
            _, sc = scorer.codes(None, b["caption"], b["cap_len"])
            rs.append(metrics.r_precision(ic, sc, test.labels[keep].numpy(), seed=seed + k))
        out["r_precision_test_seen"] = float(np.mean(rs))
        out["r_precision_std"] = float(np.std(rs))
    return out


def cmd_check(argv):
    p = argparse.ArgumentParser(prog="fgtrain check", description=(
        "read a data set as every trainer will and say what it holds and what is missing: classes, "
        "images (and listed files that are not there), class split, bounding boxes, captions, "
        "attribute annotations; exit 1 when a trainer would stop"))
    p.add_argument("--data", required=True)
    a = p.parse_args(argv)
    from . import data
    problems = []
    try:
        idx = data.load_index(a.data)
    except data.MissingFilesError as e:
        problems.append(str(e))
        idx = data.load_index(a.data, skip_missing=True)
    except (FileNotFoundError, ValueError) as e:
        print("fgtrain check: %s" % e, file=sys.stderr)
        return 1
    imgs = idx["images"]
    train = sum(1 for i in imgs if idx["split"][i] == 1)
    with_caps = sum(1 for i in imgs if data.read_captions(idx["text_dir"], imgs[i])) if idx["text_dir"] else 0
    print("data set      %s (metadata in %s)" % (a.data, idx["meta_dir"]))
    print("classes       %d: %d seen, %d held out%s" % (len(idx["classes"]), len(idx["seen"]), len(idx["heldout"]),
          "" if idx["heldout"] else " (no testclasses.txt / trainvalclasses.txt: every class is seen)"))
    print("images        %d (%d train, %d test)%s" % (len(imgs), train, len(imgs) - train,
          ("; %d listed but missing (--skip-missing leaves them out)" % len(idx["missing"])) if idx["missing"] else ""))
    print("boxes         %s" % ("%d images" % sum(1 for i in imgs if i in idx["bboxes"]) if idx["bboxes"]
                                else "none (whole images are used)"))
    print("captions      %s" % ("%s: %d of %d images" % (idx["text_dir"], with_caps, len(imgs)) if idx["text_dir"]
                                else "none: text models need --captions attributes or Reed et al.'s text_c10/"))
    print("attributes    %s" % ("%d, annotated for %d images (--captions attributes can use them)" % (
        len(idx["attributes"]), sum(1 for i in imgs if i in idx["image_attributes"])) if idx["image_attributes"]
        else "none"))
    for msg in problems:
        print("problem       %s" % msg)
    return 1 if problems else 0


def cmd_bench(argv):
    from .bench import main as bench_main
    return bench_main(argv)


COMMANDS = {"classifier": cmd_classifier, "damsm": cmd_damsm, "export": cmd_export, "eval": cmd_eval,
            "bench": cmd_bench, "check": cmd_check}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = sorted(list(COMMANDS) + list(MODULE_COMMANDS))
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    try:
        return _run(cmd, rest, names)
    finally:
        from .dist import current
        current().close()  # leave the process group of a distributed run


def _run(cmd, rest, names) -> int:
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
