"""Distributed data-parallel training (`har train --nproc N`) and the training device.

`har train --nproc N` re-launches itself under torchrun (``relaunch``); each of the N processes
(ranks) it starts runs the ordinary `har train`, which finds its place here (``rank_context``): a
process group (gloo on CPU, NCCL on CUDA), its device, its share of the training windows
(``shard_sampler``) and of the batch (``per_rank_batch``: train.batch_size // N, so the global batch
is what params says). DistributedDataParallel averages the gradients, so every rank holds the same
weights after each step; rank 0 alone talks to MLflow and writes checkpoints and the model
(har.stages.model.train). Without torchrun everything here is rank 0 of 1 and no process group is
made, so the single-process path is the one it always was.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from har.config import TrainParams
from har.errors import HarError
from har.logging import get_logger
from har.models import get_model

log = get_logger(__name__)
# torchrun sets these in every process it starts; a process that has them is a rank already
TORCHRUN_ENV = ("LOCAL_RANK", "WORLD_SIZE")
NPROC_OPTION = "--nproc"


@dataclass(frozen=True)
class Rank:
    """This process's place in the training: rank ``rank`` of ``world_size``, on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def is_torchrun_child() -> bool:
    return any(key in os.environ for key in TORCHRUN_ENV)


def resolve_device(setting: str) -> torch.device:
    """params train.device: ``auto`` is cuda when torch sees a GPU, else cpu."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise HarError("train.device is cuda, but torch sees no GPU (none present, or a CPU-only torch "
                       "build); set train.device to auto or cpu")
    return torch.device(setting)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask: a container's or taskset's limit)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """Each rank's batch: the global train.batch_size split evenly, so N ranks step like one."""
    if batch_size % world_size:
        raise HarError(f"train.batch_size {batch_size} is not divisible by {world_size} processes "
                       f"(--nproc): each rank takes an equal share of the global batch; use a multiple "
                       f"of {world_size}")
    return batch_size // world_size


def threads_per_rank(num_threads: int, world_size: int) -> int:
    """train.num_threads is the whole run's: N ranks on one machine share the cores."""
    return max(1, num_threads // world_size)


def plan_nproc(tp: TrainParams, nproc: int) -> int:
    """How many processes `har train --nproc N` starts: N, clamped to the CPUs available on CPU (a
    warning: more ranks than cores only contend); more than the GPUs on CUDA is an error (one rank
    per GPU). Checks the batch split before anything starts."""
    if nproc < 1:
        raise HarError(f"--nproc {nproc}: needs at least 1 process")
    if nproc == 1:
        return 1
    if get_model(tp.model).kind == "classic":
        raise HarError(f"--nproc {nproc}: train.model {tp.model} is not a torch model; distributed "
                       "training is for the deep models")
    device = resolve_device(tp.device)
    if device.type == "cuda":
        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise HarError(f"--nproc {nproc}: only {gpus} GPU(s) visible; one process per GPU")
    else:
        cpus = available_cpus()
        if nproc > cpus:
            log.warning("--nproc %d: only %d CPUs available to this process; starting %d processes",
                        nproc, cpus, cpus)
            nproc = cpus
    if nproc > 1:
        per_rank_batch(tp.batch_size, nproc)
    return nproc


def strip_option(argv: list[str], option: str = NPROC_OPTION) -> list[str]:
    """``argv`` without ``--option VALUE`` / ``--option=VALUE``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The `har` command line ``argv`` (without the program name) run by torchrun on ``nproc``
    processes of this machine; --nproc is dropped so the ranks do not launch again."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            str(nproc), "-m", "har.cli", *strip_option(argv)]


def relaunch(tp: TrainParams, nproc: int, argv: list[str]) -> NoReturn:
    """Replace this process with torchrun running ``argv`` on ``nproc`` ranks. exec, not a child:
    signals (Ctrl-C, a scheduler's SIGTERM) reach torchrun, which stops every rank, and its exit
    code is the command's."""
    cmd = torchrun_command(nproc, argv)
    env = dict(os.environ)
    # torchrun would otherwise set 1 with a warning; the ranks set train.num_threads // N themselves
    env.setdefault("OMP_NUM_THREADS", str(threads_per_rank(tp.num_threads, nproc)))
    log.info("distributed training on %d processes: %s", nproc, shlex.join(cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)


@contextmanager
def rank_context(tp: TrainParams) -> Iterator[Rank]:
    """This process's Rank. Under torchrun with more than one process: the process group (gloo on
    CPU, NCCL on CUDA, one GPU per local rank), destroyed on the way out, errors included."""
    device = resolve_device(tp.device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield Rank(device=device)
        return
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    # every rank fails alike before the group exists: no rank is left waiting for the others
    per_rank_batch(tp.batch_size, world)
    if get_model(tp.model).kind == "classic":
        raise HarError(f"train.model {tp.model} is not a torch model; distributed training is for the "
                       "deep models")
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise HarError(f"local rank {local}: only {torch.cuda.device_count()} GPU(s) visible")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    try:
        yield Rank(rank, world, device)
    finally:
        dist.destroy_process_group()


def shard_sampler(n: int, seed: int, rank: Rank) -> DistributedSampler:
    """Each rank's share of ``n`` training windows, reshuffled every epoch (``set_epoch``) from
    ``seed``; padded by repetition so every rank takes the same number of steps."""
    return DistributedSampler(range(n), num_replicas=rank.world_size, rank=rank.rank,  # type: ignore[arg-type]
                              shuffle=True, seed=seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed (dropout) of one rank's epoch: distinct per rank, resume-safe per epoch."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def sync_buffers(model: nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics). Each rank updated them on
    its own last batch of the epoch; DDP only re-broadcasts them before the next training forward,
    so without this the ranks would validate different networks and could disagree on stopping."""
    for buf in model.buffers():
        dist.broadcast(buf, src=0)


def mean_over_ranks(value: float, device: torch.device) -> float:
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()
