"""The training loop: shuffled mini-batches of windows, validation, early stopping, best weights.

It reports through a callback and asks `should_stop` after every batch, so the caller owns
progress display and Ctrl-C handling; this module never prints.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from lstmcli.config import TrainingConfig
from lstmcli.data import WindowSet
from lstmcli.errors import LstmcliError

EVAL_BATCH = 4096


@dataclass
class EpochStats:
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    learning_rate: float
    seconds: float
    best_epoch: int


@dataclass
class TrainResult:
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def fit(
    model: nn.Module,
    train: WindowSet,
    val: WindowSet | None,
    cfg: TrainingConfig,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Train with Adam on MSE of scaled targets; return with the best weights loaded.

    With a validation part the best epoch is the one with the lowest validation loss, and
    `patience` epochs without improvement stop training; without one it is the last epoch.
    """
    device = train.anchors.device
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    loss_fn = nn.MSELoss()
    shuffler = torch.Generator().manual_seed(cfg.seed)
    batch_size = cfg.batch_size or len(train)
    result = TrainResult()
    best_loss, best_state = math.inf, None
    started = time.perf_counter()

    for epoch in range(1, cfg.epochs + 1):
        epoch_started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        order = torch.randperm(len(train), generator=shuffler).to(device)
        for positions in order.split(batch_size):
            inputs, targets = train.batch(positions)
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            loss_sum += loss.detach() * len(positions)
            if should_stop():
                result.interrupted = True
                break
        if result.interrupted:
            break  # a partial epoch is not recorded; the best complete one is kept

        train_loss = loss_sum.item() / len(train)  # one device sync per epoch, not per batch
        val_loss = evaluate_loss(model, val) if val is not None else None
        if not math.isfinite(train_loss) or (val_loss is not None and not math.isfinite(val_loss)):
            raise LstmcliError(
                f"the loss became {train_loss if not math.isfinite(train_loss) else val_loss} at "
                f"epoch {epoch}; try a lower training.learning_rate or a training.grad_clip"
            )
        monitored = val_loss if val_loss is not None else train_loss
        if val is None or monitored < best_loss:
            best_loss, result.best_epoch = monitored, epoch
            best_state = copy.deepcopy(model.state_dict())
        stats = EpochStats(
            epoch=epoch,
            epochs=cfg.epochs,
            train_loss=train_loss,
            val_loss=val_loss,
            learning_rate=optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - epoch_started,
            best_epoch=result.best_epoch,
        )
        result.history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        if (
            val is not None
            and cfg.patience is not None
            and epoch - result.best_epoch >= cfg.patience
        ):
            result.stopped_early = True
            break
        if should_stop():
            result.interrupted = True
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - started
    return result


def evaluate_loss(model: nn.Module, windows: WindowSet) -> float:
    """Mean squared error over all windows, in scaled units."""
    model.eval()
    total = torch.zeros((), device=windows.anchors.device)
    with torch.inference_mode():
        positions = torch.arange(len(windows), device=windows.anchors.device)
        for chunk in positions.split(EVAL_BATCH):
            inputs, targets = windows.batch(chunk)
            total += nn.functional.mse_loss(model(inputs), targets, reduction="sum")
    return total.item() / (len(windows) * windows.target_offsets.numel() * windows.targets.shape[1])
