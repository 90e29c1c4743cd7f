"""Training on several processes with DistributedDataParallel, as torchrun starts them.

    torchrun --nproc_per_node 4 -m fgtrain classifier --data D --out R --device cuda   # 4 GPUs
    python3 -m fgtrain.launch --nproc 2 classifier --data D --out R                    # 2 CPU processes

Under torchrun (WORLD_SIZE > 1 in the environment) every trainer:
  - joins the process group: NCCL on CUDA (one GPU per process, cuda:LOCAL_RANK), gloo on the CPU;
  - draws each global batch (indices, noise, augmentation) from the same seeded generators on every
    rank, and computes only its own rows (`shard`); the random numbers are those of one process;
  - wraps the networks it trains in DistributedDataParallel, with BatchNorm made synchronous
    (torch's SyncBatchNorm on CUDA, `DistBatchNorm` below on gloo) so that statistics are those of
    the global batch; terms that couple samples of a batch (contrastive losses, batch means) gather
    the global batch (`gather`, `all_sum`) with gradients;
  - takes the wall-clock budget's decisions (learning-rate schedule, when to stop) from rank 0;
  - writes checkpoints, logs, samples and model directories on rank 0 only.

Hence a run on N processes matches a run on one process with the same global batch, up to the
order of floating-point sums (training/tests/test_dist.py checks it on 2 gloo processes).
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as td
import torch.nn as nn


class Dist:
    """Where this process stands: rank, world size and the device it trains on."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, device: str = "cpu"):
        self.rank, self.world, self.local_rank, self.device = rank, world, local_rank, device

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's rows of a global batch of n (contiguous; the first n % world ranks get one more)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def weight(self, n: int) -> float:
        """Factor of a loss that is a mean over this rank's rows of a global batch of n, such that the
        mean over ranks that DistributedDataParallel takes is the global mean."""
        s = self.shard(n)
        return (s.stop - s.start) * self.world / max(1, n)

    def wrap(self, module: nn.Module, sync_bn: bool = True) -> nn.Module:
        """DistributedDataParallel around module (BatchNorm made synchronous first); the module
        itself in one process. Buffers are not broadcast (synchronous BatchNorm keeps them equal),
        so a network may run several times before one backward (a GAN's discriminator)."""
        if not self.enabled:
            return module
        if sync_bn:
            convert_batchnorm(module, self.device)
        kw = {"device_ids": [self.local_rank]} if str(self.device).startswith("cuda") else {}
        return nn.parallel.DistributedDataParallel(module, broadcast_buffers=False, **kw)

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum over ranks, with gradients (each rank's input gets the sum of all ranks' gradients)."""
        return _AllSum.apply(t) if self.enabled else t

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """The global batch: every rank's rows (dim 0) concatenated in rank order, with gradients
        flowing back to this rank's rows."""
        return _Gather.apply(t) if self.enabled else t

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """In-place sum over ranks, no gradients."""
        if self.enabled:
            td.all_reduce(t)
        return t

    def global_mean(self, values, n: int) -> list[float]:
        """Means over this rank's rows of a global batch of n (floats) -> the global batch's means
        (for logs: every rank must call it at the same steps)."""
        if not self.enabled:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64) * (self.weight(n) / self.world)
        if str(self.device).startswith("cuda"):
            t = t.to(self.device)
        td.all_reduce(t)
        return t.cpu().tolist()

    def broadcast_(self, t: torch.Tensor) -> torch.Tensor:
        """In place: rank 0's values on every rank."""
        if self.enabled:
            td.broadcast(t, 0)
        return t

    def barrier(self) -> None:
        if self.enabled:
            td.barrier()

    def close(self) -> None:
        if self.enabled and td.is_initialized():
            td.destroy_process_group()


_CURRENT = Dist()


def current() -> Dist:
    return _CURRENT


def init(device: str = "cpu") -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1), else a one-process Dist.
    `device` "cuda" becomes cuda:LOCAL_RANK. Idempotent."""
    global _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        _CURRENT = Dist(device=device)
        return _CURRENT
    if _CURRENT.enabled:
        return _CURRENT
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(local)
        device = "cuda:%d" % local
    if not td.is_initialized():
        td.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    _CURRENT = Dist(rank, world, local, device)
    return _CURRENT


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


class _AllSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        t = t.clone()
        td.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, g):
        g = g.clone()
        td.all_reduce(g)
        return g


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        world, rank = td.get_world_size(), td.get_rank()
        n = torch.tensor([t.shape[0]], device=t.device)
        sizes = [torch.zeros_like(n) for _ in range(world)]
        td.all_gather(sizes, n)
        sizes = [int(x) for x in sizes]
        big = max(sizes)
        pad = t.new_zeros((big - t.shape[0],) + tuple(t.shape[1:]))
        parts = [t.new_empty((big,) + tuple(t.shape[1:])) for _ in range(world)]
        td.all_gather(parts, torch.cat([t, pad]).contiguous())
        ctx.start, ctx.n = sum(sizes[:rank]), t.shape[0]
        return torch.cat([p[:k] for p, k in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, g):
        g = g.contiguous().clone()
        td.all_reduce(g)  # every rank's loss depends on every rank's rows (gloo has no reduce-scatter)
        return g[ctx.start:ctx.start + ctx.n]


class DistBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch on any backend (torch 1.13's SyncBatchNorm needs CUDA): in
    training, the sums and counts of all ranks are added up (with gradients), as one process over the
    whole batch would compute them. State dict keys are BatchNorm's."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError("expected at least 2-D input")

    def forward(self, x):
        if not (self.training and td.is_initialized() and td.get_world_size() > 1):
            return super().forward(x)
        C = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        n_local = x.numel() // C
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), x.new_tensor([float(n_local)])])
        stats = _AllSum.apply(stats)
        n = stats[2 * C]
        mean = stats[:C] / n
        var = (stats[C:2 * C] / n - mean * mean).clamp(min=0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach() * m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp(min=1)) * m)
        shape = [1, C] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_batchnorm(module: nn.Module, device) -> nn.Module:
    """Make every BatchNorm of module synchronous, in place (the layers keep their parameters and
    buffers): SyncBatchNorm on CUDA, DistBatchNorm elsewhere."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                child, (nn.SyncBatchNorm, DistBatchNorm)):
            if str(device).startswith("cuda"):
                new = nn.SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                       child.track_running_stats)
            else:
                new = DistBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.to(next(iter(child.buffers()), torch.zeros(())).device)
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_batchnorm(child, device)
    return module


class Budget:
    """A trainer's wall-clock budget (fgtrain.Budget) whose decisions come from rank 0: done() is
    asked once a step, on every rank, and broadcasts (done, frac, elapsed); frac() and elapsed() then
    give rank 0's values, so every rank follows the same learning-rate schedule and stops together."""

    def __init__(self, inner, dist: Dist):
        self.inner, self.dist = inner, dist
        self._frac, self._elapsed = inner.frac(), inner.elapsed()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    @property
    def step(self):
        return self.inner.step

    @step.setter
    def step(self, v):
        self.inner.step = v

    def done(self) -> bool:
        t = torch.tensor([float(self.inner.done()), self.inner.frac(), self.inner.elapsed()], dtype=torch.float64)
        if self.dist.enabled:
            t = t.to(self.dist.device) if str(self.dist.device).startswith("cuda") else t
            self.dist.broadcast_(t)
            t = t.cpu()
        self._frac, self._elapsed = float(t[1]), float(t[2])
        return bool(t[0] > 0)

    def frac(self) -> float:
        return self._frac if self.dist.enabled else self.inner.frac()

    def elapsed(self) -> float:
        return self._elapsed if self.dist.enabled else self.inner.elapsed()


def budget(inner, dist: Dist):
    """The budget every rank follows: inner itself in one process."""
    return Budget(inner, dist) if dist.enabled else inner


class NullLogger:
    """The logger of ranks other than 0."""

    def __call__(self, **rec) -> None:
        pass


# ---- dropout whose mask does not depend on how a batch is split ---------------------------------

_ROWS: tuple[int, slice] | None = None


class batch_rows:
    """Context: the forward passes inside run on rows `rows` of a global batch of `total` samples
    (RowDropout draws its masks for the whole global batch)."""

    def __init__(self, total: int, rows: slice):
        self.value = (total, rows)

    def __enter__(self):
        global _ROWS
        self.saved, _ROWS = _ROWS, self.value
        return self

    def __exit__(self, *exc):
        global _ROWS
        _ROWS = self.saved


class RowDropout(nn.Module):
    """Dropout whose mask comes from the CPU's default generator, drawn for the global batch (see
    batch_rows) and cut to this rank's rows: a batch split over N processes drops what one process
    would, on any device. Identity in eval mode (and in an exported graph)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p <= 0:
            return x
        total, rows = _ROWS if _ROWS is not None and x.shape[0] != _ROWS[0] else (x.shape[0], slice(None))
        keep = torch.empty((total,) + tuple(x.shape[1:])).bernoulli_(1 - self.p)[rows]
        return x * keep.to(x.device, x.dtype) / (1 - self.p)

    def extra_repr(self) -> str:
        return "p=%g" % self.p
