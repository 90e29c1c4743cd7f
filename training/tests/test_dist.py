"""Training on several processes (fgtrain.dist): every trainer on 2 gloo processes, started as
torchrun starts them (fgtrain.launch), gives the losses and weights of one process with the same
global batch, and writes its checkpoint and log once. Tiny data: the reader contract's fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from conftest import REPO, TRAINING

# Both runs execute this: in the test's process (one process) and in 2 launched processes.
RUN_ALL = '''
def run_all(data, out):
    from fgtrain import attngan, classifier, cvaegan, damsm, setup
    setup(1, 0)
    classifier.train(data, out, quick=True, batch=4, width=8, eval_every=3, ckpt_every=4)
    setup(1, 0)
    damsm.train(data, out, quick=True, batch=4, width=8, eval_every=100)
    gan = ["--data", data, "--out", out, "--quick", "--quick-steps", "3", "--batch", "4", "--ngf", "8",
           "--ndf", "8", "--no-export", "--threads", "1"]
    cvaegan.main(gan + ["--group", "2", "--z-dim", "8", "--warmup", "0"])
    attngan.main(gan + ["--damsm", out + "/damsm.pt"])
'''

DRIVER = '''import sys
sys.path.insert(0, %r)
%s
run_all(sys.argv[1], sys.argv[2])
from fgtrain import dist
dist.current().close()
''' % (TRAINING, RUN_ALL)


def records(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_two_gloo_processes_match_one(tmp_path):
    data = str(tmp_path / "cub")
    r = subprocess.run([sys.executable, os.path.join(REPO, "internal", "cub", "testdata", "cubfixture.py"),
                        "--out", data, "--case", "nested"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, PYTHONPATH=TRAINING)
    proc = subprocess.Popen([sys.executable, "-m", "fgtrain.launch", "--nproc", "2", "--script", str(driver),
                             data, two], cwd=TRAINING, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    scope = {}
    exec(RUN_ALL, scope)  # the one-process run, here, while the two processes run
    threads = torch.get_num_threads()
    try:
        scope["run_all"](data, one)
    finally:
        torch.set_num_threads(threads)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log[-3000:]

    for name, keys in (("classifier", ["loss", "loss_cls", "loss_attr"]), ("damsm", ["w0", "w1", "s0", "s1"]),
                       ("cvaegan", ["loss_d", "loss_c", "loss_g", "fm_d", "fm_c", "ms_ratio"]),
                       ("attngan", ["loss_d", "loss_g", "damsm", "kl", "ms_ratio"])):
        a, b = records(os.path.join(one, name + ".log.jsonl")), records(os.path.join(two, name + ".log.jsonl"))
        # written once: one start, the same records as one process
        assert [r.get("event") for r in b].count("start") == 1, name
        assert len(a) == len(b), (name, len(a), len(b))
        steps_a = [r for r in a if "step" in r and keys[0] in r]
        steps_b = [r for r in b if "step" in r and keys[0] in r]
        assert len(steps_a) == len(steps_b) >= 3, name
        for ra, rb in zip(steps_a, steps_b):
            for k in keys:
                assert abs(ra[k] - rb[k]) <= 1e-4 * max(1.0, abs(ra[k])), (name, ra["step"], k, ra[k], rb[k])
    from fgtrain import load_checkpoint
    for ckpt in ("classifier.pt", "damsm.pt", "cvaegan.pt", "attngan.pt"):
        a, b = load_checkpoint(os.path.join(one, ckpt)), load_checkpoint(os.path.join(two, ckpt))
        assert a["step"] == b["step"]
        diff = max(float((a["state"][k].double() - b["state"][k].double()).abs().max())
                   for k in a["state"] if a["state"][k].is_floating_point())
        assert diff < 1e-3, (ckpt, diff)
    assert b["args"]["processes"] == 2
    assert not [f for f in os.listdir(two) if f.endswith(".tmp")]
