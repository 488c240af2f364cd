"""Ways to train an ensemble's small LSTM members: milliseconds per training step, one table.

Each row trains M members of an `nn.LSTM(1, hidden)` with a linear head for a few Adam steps
on random windows (B windows of T rows) and reports the time per step of all M members:

- one after another: M separate networks, each its own step (what lstmcli did before #26);
- at once, in threads: the same M networks, each stepped in its own thread with
  `torch.set_num_threads(cores // workers)` (what `training.workers` does);
- block-diagonal: the M members as one wide LSTM whose weights are masked to M diagonal
  blocks (one kernel call, M x M the recurrent arithmetic);
- torch.func.vmap over stacked parameters (reported as unsupported where torch has no
  batching rule for the LSTM kernel).

  python benchmarks/ensemble_kernels.py                 # T 104, B 32, hidden 32, 5 members
  python benchmarks/ensemble_kernels.py --rows 672 --batch 64 --hidden 64 --members 3
Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable

import torch
from torch import nn


def member(rows: int, batch: int, hidden: int, steps: int) -> Callable[[], None]:
    """One training step of one member on its own random windows."""
    lstm, head = nn.LSTM(1, hidden, batch_first=True), nn.Linear(hidden, steps)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()])
    x, y = torch.randn(batch, rows, 1), torch.randn(batch, steps)

    def step() -> None:
        _, (h, _) = lstm(x)
        loss = ((head(h[-1]) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def block_diagonal(rows: int, batch: int, hidden: int, steps: int, members: int) -> Callable:
    """All members as one LSTM of members x hidden units, weights masked to diagonal blocks."""
    lstm = nn.LSTM(members, members * hidden, batch_first=True)
    head = nn.Linear(members * hidden, members * steps)
    mask = torch.block_diag(*[torch.ones(4 * hidden, hidden)] * members)
    input_mask = torch.block_diag(*[torch.ones(4 * hidden, 1)] * members)
    with torch.no_grad():
        lstm.weight_hh_l0.mul_(mask)
        lstm.weight_ih_l0.mul_(input_mask)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()])
    x, y = torch.randn(batch, rows, members), torch.randn(batch, members * steps)

    def step() -> None:
        _, (h, _) = lstm(x)
        loss = ((head(h[-1]) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        lstm.weight_hh_l0.grad.mul_(mask)  # the blocks stay apart
        lstm.weight_ih_l0.grad.mul_(input_mask)
        optimizer.step()

    return step


def timed(step: Callable[[], None], repeats: int) -> float:
    step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats * 1000


def in_threads(steps: list[Callable[[], None]], workers: int, repeats: int) -> float:
    """Members stepped `repeats` times each, `workers` of them at once in threads."""
    for step in steps:
        step()
    queue = list(range(len(steps)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                index = queue.pop(0)
            for _ in range(repeats):
                steps[index]()

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - started) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=104)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--steps", type=int, default=52, help="forecast steps of the head")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    shape = (args.rows, args.batch, args.hidden, args.steps)
    print(f"{args.members} members, T {args.rows}, B {args.batch}, hidden {args.hidden}; "
          f"{cores} cores; ms per step of all members")  # fmt: skip
    for threads in sorted({1, cores}):
        torch.set_num_threads(threads)
        steps = [member(*shape) for _ in range(args.members)]
        one = timed(steps[0], args.repeats)
        print(f"  one after another, {threads} thread(s) each: {one * args.members:8.1f}")
        wide = timed(block_diagonal(*shape, args.members), args.repeats)
        print(f"  block-diagonal, {threads} thread(s):          {wide:8.1f}")
    workers = min(cores, args.members)
    torch.set_num_threads(max(1, cores // workers))
    steps = [member(*shape) for _ in range(args.members)]
    print(f"  at once, {workers} threads of 1 thread each:    "
          f"{in_threads(steps, workers, args.repeats):8.1f}")  # fmt: skip
    try:
        from torch.func import functional_call, stack_module_state, vmap

        networks = [nn.LSTM(1, args.hidden, batch_first=True) for _ in range(args.members)]
        params, buffers = stack_module_state(networks)
        base = nn.LSTM(1, args.hidden, batch_first=True).to("meta")
        x = torch.randn(args.members, args.batch, args.rows, 1)
        vmap(lambda p, b, w: functional_call(base, (p, b), (w,))[1][0])(params, buffers, x)
        print("  vmap: runs (not timed here)")
    except RuntimeError as e:
        print(f"  vmap over stacked members: unsupported ({str(e).splitlines()[0][:70]})")


if __name__ == "__main__":
    main()
