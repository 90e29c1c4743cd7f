"""Start N local processes of an fgtrain command with the environment torchrun gives them:

    python3 -m fgtrain.launch --nproc 2 classifier --data D --out R [...]

is `torchrun --standalone --nproc_per_node 2 -m fgtrain classifier ...` (RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT). For hosts where torchrun itself does not start: Debian's
torch 1.13 on Python 3.11 fails in torch.distributed.elastic (`'NoneType' object has no attribute
'get'`). Exits with the first non-zero exit status of the processes; if one fails the others are
stopped.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m fgtrain.launch", description=__doc__.split("\n")[0])
    p.add_argument("--nproc", type=int, default=2, help="processes (one per GPU, or per CPU with gloo)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each process")
    p.add_argument("--script", help="run this Python file (with the arguments) instead of -m fgtrain")
    p.add_argument("command", nargs=argparse.REMAINDER, help="fgtrain command and its arguments")
    a = p.parse_args(argv)
    if not a.command and not a.script:
        p.error("give an fgtrain command, e.g. classifier --data D --out R")
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(a.nproc),
               LOCAL_WORLD_SIZE=str(a.nproc), OMP_NUM_THREADS=str(a.threads))
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, a.script] if a.script else [sys.executable, "-m", "fgtrain"]
    procs = [subprocess.Popen(cmd + a.command,
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r))) for r in range(a.nproc)]
    rc = 0
    try:
        while procs:
            for pr in list(procs):
                code = pr.poll()
                if code is None:
                    continue
                procs.remove(pr)
                if code != 0 and rc == 0:
                    rc = code
                    for other in procs:
                        other.terminate()
            time.sleep(0.05)
    except KeyboardInterrupt:
        for pr in procs:
            pr.terminate()
        rc = 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
