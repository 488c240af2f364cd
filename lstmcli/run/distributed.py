"""Training in several processes (`torchrun`): who this process is, and the few collectives.

lstmcli notices torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) itself; nothing in the
config changes. Every rank reads the data and builds the same windows (each needs them on its
own device, and reading a file is cheaper than shipping a table over the process group);
every rank takes its share of each global batch and the gradients are summed across ranks
before each step, so N processes train the model one process would, up to the order of
floating-point sums. Rank 0 alone prints and writes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from lstmcli.errors import LstmcliError

SETUP_TIMEOUT = timedelta(minutes=5)  # how long a rank waits for the others to join


@dataclass(frozen=True)
class Distributed:
    rank: int
    world: int
    local_rank: int
    local_world: int

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Distributed(rank=0, world=1, local_rank=0, local_world=1)


def from_environment() -> Distributed:
    """This process's place under torchrun; one process (rank 0 of 1) otherwise."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return SINGLE
        return Distributed(
            rank=int(os.environ["RANK"]),
            world=world,
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            local_world=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
        )
    except (KeyError, ValueError):
        raise LstmcliError(
            "WORLD_SIZE is set but RANK or LOCAL_RANK is missing or not a number; start "
            "distributed runs with torchrun"
        ) from None


def describe(dist: Distributed, device: torch.device | None = None) -> str | None:
    """For `check`: the environment a run on `device` would use; None for one process."""
    if dist.world == 1:
        return None
    return (
        f"rank {dist.rank} of {dist.world} (torchrun; {dist.local_world} on this machine), "
        f"backend {backend_for(device)}"
    )


def backend_for(device: torch.device | None) -> str:
    cuda = device.type == "cuda" if device is not None else torch.cuda.is_available()
    return "nccl" if cuda else "gloo"


def device_for(dist: Distributed, device: torch.device) -> torch.device:
    """One GPU per local rank; CPU stays CPU."""
    if device.type == "cuda" and dist.world > 1:
        index = dist.local_rank % max(1, torch.cuda.device_count())
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


@contextlib.contextmanager
def process_group(dist: Distributed, device: torch.device) -> Iterator[None]:
    """In the process group for the block (nothing to join for one process)."""
    import torch.distributed as td

    if dist.world == 1 or td.is_initialized():
        yield
        return
    td.init_process_group(backend_for(device), timeout=SETUP_TIMEOUT)
    try:
        yield
    finally:
        td.destroy_process_group()


def agree(dist: Distributed, ok: bool, device: torch.device) -> bool:
    """Whether every rank is ok (one small collective): a rank that failed its checks joins
    this before it raises, so no other rank waits forever for it."""
    if dist.world == 1:
        return ok
    import torch.distributed as td

    flag = torch.tensor([1.0 if ok else 0.0], device=device)
    td.all_reduce(flag, op=td.ReduceOp.MIN)
    return bool(flag.item() > 0)


def sum_gradients(model: torch.nn.Module, stop_requested: bool) -> bool:
    """Sum every parameter's gradient across ranks in one all-reduce, with a stop flag
    riding along: returns whether any rank was asked to stop, so all stop at this batch."""
    import torch.distributed as td

    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device
    grads = [
        p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=device)
        for p in params
    ]
    flag = torch.tensor([1.0 if stop_requested else 0.0], device=device)
    flat = torch.cat([*grads, flag])
    td.all_reduce(flat)
    offset = 0
    for p in params:
        size = p.numel()
        if p.grad is None:
            p.grad = torch.empty_like(p)
        p.grad.copy_(flat[offset : offset + size].view_as(p))
        offset += size
    return bool(flat[-1].item() > 0)


def sum_values(values: list[float], device: torch.device) -> list[float]:
    """Sums across ranks of a few numbers (losses and counts)."""
    import torch.distributed as td

    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    td.all_reduce(tensor)
    return tensor.tolist()


def gather(value: Any, dist: Distributed) -> list[Any]:
    """Every rank's `value` (any picklable object), in rank order, on every rank."""
    if dist.world == 1:
        return [value]
    import torch.distributed as td

    out: list[Any] = [None] * dist.world
    td.all_gather_object(out, value)
    return out


@contextlib.contextmanager
def checked_together(dist: Distributed, device: torch.device) -> Iterator[None]:
    """Run a block of checks on every rank, and learn whether every rank passed: a rank whose
    check fails tells the others before it raises, so no rank waits forever for it, and the
    others fail too (rank 0 says why)."""
    try:
        yield
    except LstmcliError:
        agree(dist, False, device)
        raise
    if not agree(dist, True, device):
        raise LstmcliError("another process of this distributed run failed (rank 0 says why)")
