"""The training loop: shuffled mini-batches of windows, validation, early stopping, best weights.

It reports through a callback and asks `should_stop` after every batch, so the caller owns
progress display and Ctrl-C handling; this module never prints.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from lstmcli.config.schema import TrainingConfig
from lstmcli.data.windows import WindowSet
from lstmcli.errors import LstmcliError
from lstmcli.model.network import inference_batch
from lstmcli.run.distributed import SINGLE, Distributed, sum_gradients, sum_values
from lstmcli.run.startup import optimizer_step, skip_compiler_import


@dataclass
class EpochStats:
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    learning_rate: float
    seconds: float
    best_epoch: int
    member: int = 1  # of an ensemble, counted from 1


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped; saved in last.pt.

    Between epochs `order` is None; after an interruption it holds the interrupted epoch's
    window order and `next_batch` the first batch not yet trained on.
    """

    epoch: int = 0
    steps: int = 0  # optimizer steps over all epochs, for training.max_steps
    next_batch: int = 0
    order: torch.Tensor | None = None
    loss_sum: float = 0.0
    seen: int = 0  # windows trained on in the current epoch
    history: list[EpochStats] = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    start_loss: float | None = None  # the val loss of the starting weights (from a prior)
    last_weights: dict[str, torch.Tensor] | None = None
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None  # ReduceLROnPlateau's state
    rng: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Tensors and plain types only, so it loads with weights_only=True."""
        out = {k: v for k, v in vars(self).items() if k != "history"}
        out["history"] = [asdict(h) for h in self.history]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainState:
        fields = {k: v for k, v in d.items() if k != "history"}
        return cls(**fields, history=[EpochStats(**h) for h in d["history"]])


@dataclass
class TrainResult:
    state: TrainState
    stopped_early: bool = False
    interrupted: bool = False
    reached_max_steps: bool = False

    @property
    def history(self) -> list[EpochStats]:
        return self.state.history

    @property
    def best_epoch(self) -> int:
        return self.state.best_epoch

    @property
    def seconds(self) -> float:
        return self.state.seconds

    @property
    def epochs_run(self) -> int:
        return len(self.state.history)


def fit(
    model: nn.Module,
    train: WindowSet,
    val: WindowSet | None,
    cfg: TrainingConfig,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    state: TrainState | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    dist: Distributed = SINGLE,
    start_is_candidate: bool = False,
) -> TrainResult:
    """Train with Adam on MSE of scaled targets; return with the best weights loaded.

    With `start_is_candidate` (weights from a prior) the starting weights count as epoch 0:
    kept unless an epoch's validation loss beats theirs, and kept as they are when there is
    nothing to train on (no training window, or training.epochs 0).

    With a validation part the best epoch is the one with the lowest validation loss, and
    `patience` epochs without improvement stop training; without one it is the last epoch.
    `should_stop` is asked after every batch; `state` (from an earlier, stopped call) continues
    that call exactly; `on_checkpoint` receives the state every `checkpoint_every` epochs.

    Under torchrun (`dist.world` > 1) each rank takes every world-th window of each global
    batch, weighs its mean loss by its share of the batch and the gradients are summed across
    ranks before the step: the gradient of the global batch's mean loss, as one process would
    compute it, also when the last batch does not split evenly (a rank without windows adds
    zero). Losses are summed across ranks, so every rank takes the same early-stopping and
    best-epoch decisions; a stop request on any rank stops all after the same batch.
    """
    fresh = state is None
    state = state or TrainState()
    loop = _Loop.start(model, cfg, state, train.anchors.device)
    result = TrainResult(state)
    started = time.perf_counter() - state.seconds
    if fresh and start_is_candidate:  # epoch 0: the starting weights as they are
        if val is not None and len(val):
            state.best_loss = state.start_loss = evaluate_loss(model, val, loop.loss_fn, dist)
        state.best_epoch, state.best_weights = 0, copy.deepcopy(model.state_dict())
    epochs = planned_epochs(cfg, state.history) if len(train) else 0  # none: nothing to train on

    epoch = state.epoch
    while epoch < epochs:
        epoch += 1
        if _patience_ran_out(state, val, cfg):
            result.stopped_early = True
            break
        if cfg.max_steps is not None and state.steps >= cfg.max_steps:
            result.reached_max_steps = True
            break
        epoch_started = time.perf_counter()
        scheduled = _scheduled_rate(cfg, epoch)
        if scheduled is not None:
            for group in loop.optimizer.param_groups:
                group["lr"] = scheduled
        train_loss = _train_epoch(loop, train, cfg, state, result, should_stop, dist)
        if result.interrupted:
            break
        stats = _end_epoch(loop, val, cfg, state, epoch, train_loss, dist)
        epochs = stats.epochs = planned_epochs(cfg, state.history)  # another cycle, maybe
        stats.seconds = time.perf_counter() - epoch_started
        state.seconds = time.perf_counter() - started
        if on_epoch is not None:
            on_epoch(stats)
        if on_checkpoint is not None and cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0:
            on_checkpoint(_snapshot(state, loop))
        if result.reached_max_steps:
            break
        if dist.world == 1 and should_stop():  # ranks agree on stopping at a batch's end
            result.interrupted = True
            break
    else:
        result.stopped_early = _patience_ran_out(state, val, cfg) and state.epoch < epochs

    _snapshot(state, loop)
    state.seconds = time.perf_counter() - started
    if state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    return result


@dataclass
class _Loop:
    """What lives in objects while training runs (the state keeps copies for last.pt)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    shuffler: torch.Generator
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None
    loss_fn: nn.Module
    autocast: torch.autocast
    device: torch.device

    @classmethod
    def start(
        cls, model: nn.Module, cfg: TrainingConfig, state: TrainState, device: torch.device
    ) -> _Loop:
        """A fresh optimizer and generators, or those of `state` when it continues a run."""
        skip_compiler_import()
        optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        shuffler = torch.Generator().manual_seed(cfg.seed)
        if state.optimizer is not None:
            optimizer.load_state_dict(state.optimizer)
        if state.rng is not None:
            _restore_rng(state.rng, shuffler)
        loss_fn = loss_for(model, cfg)
        plateau = None
        if cfg.scheduler == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=0.5, patience=max(1, (cfg.patience or 20) // 4)
            )
            if state.scheduler is not None:
                plateau.load_state_dict(state.scheduler)
        if cfg.precision == "bf16" and not bf16_supported(device):
            raise LstmcliError(
                f"training.precision: bf16 is not supported on this {device.type} (its LSTM "
                "kernels have no bfloat16 version here); use precision 32"
            )
        autocast = torch.autocast(device.type, torch.bfloat16, enabled=cfg.precision == "bf16")
        return cls(model, optimizer, shuffler, plateau, loss_fn, autocast, device)


def bf16_supported(device: torch.device) -> bool:
    """Whether an LSTM runs under bfloat16 autocast on `device` (some CPUs' oneDNN builds
    have no bfloat16 LSTM and fail inside the kernel)."""
    lstm = nn.LSTM(1, 2, batch_first=True).to(device)
    try:
        with torch.autocast(device.type, torch.bfloat16), torch.no_grad():
            lstm(torch.zeros(1, 2, 1, device=device))
    except RuntimeError:
        return False
    return True


def _train_epoch(
    loop: _Loop,
    train: WindowSet,
    cfg: TrainingConfig,
    state: TrainState,
    result: TrainResult,
    should_stop: Callable[[], bool],
    dist: Distributed,
) -> float:
    """One pass over the training windows in the epoch's order (or the rest of an
    interrupted epoch); the epoch's mean training loss. Stops after the batch where a stop is
    requested or max_steps is reached (flagged in `result`)."""
    model, optimizer = loop.model, loop.optimizer
    if state.order is None:
        state.order = torch.randperm(len(train), generator=loop.shuffler)
        state.next_batch, state.loss_sum, state.seen = 0, 0.0, 0
    order = state.order.to(loop.device)
    batch_size = cfg.batch_size or len(train)
    n_batches = -(-len(order) // batch_size)
    carried = state.loss_sum if dist.main else 0.0  # a resumed epoch's sum, counted once
    loss_sum = torch.tensor(carried, device=loop.device)
    model.train()
    for index in range(state.next_batch, n_batches):  # slices, not a list of 100k views
        positions = order[index * batch_size : (index + 1) * batch_size]
        mine, weight = _share(positions, dist)
        inputs, future, targets = train.batch(mine)
        with loop.autocast:
            loss = loop.loss_fn(outputs(model, inputs, future).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        (loss * weight if dist.world > 1 else loss).backward()
        stop = should_stop()
        if dist.world > 1:
            stop = sum_gradients(model, stop)  # the same decision on every rank
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer_step(optimizer)
        loss_sum += loss.detach() * (weight * len(positions))
        state.steps += 1
        state.seen += len(positions)
        if cfg.max_steps is not None and state.steps >= cfg.max_steps:
            result.reached_max_steps = True  # this epoch ends here, evaluated as usual
            break
        if stop:
            state.next_batch, state.loss_sum = index + 1, _total(loss_sum, dist)
            result.interrupted = True
            return math.nan
    return _total(loss_sum, dist) / state.seen  # one sync per epoch, not per batch


def _end_epoch(
    loop: _Loop,
    val: WindowSet | None,
    cfg: TrainingConfig,
    state: TrainState,
    epoch: int,
    train_loss: float,
    dist: Distributed,
) -> EpochStats:
    """Validate, step the plateau schedule, keep the best weights and record the epoch."""
    val_loss = evaluate_loss(loop.model, val, loop.loss_fn, dist) if val is not None else None
    if not math.isfinite(train_loss) or (val_loss is not None and not math.isfinite(val_loss)):
        raise LstmcliError(
            f"the loss became {train_loss if not math.isfinite(train_loss) else val_loss} at "
            f"epoch {epoch}; try a lower training.learning_rate or a training.grad_clip"
        )
    monitored = val_loss if val_loss is not None else train_loss
    if loop.plateau is not None and epoch > cfg.warmup_epochs:
        loop.plateau.step(monitored)
        state.scheduler = loop.plateau.state_dict()
    if val is None or monitored < state.best_loss:
        state.best_loss, state.best_epoch = monitored, epoch
        state.best_weights = copy.deepcopy(loop.model.state_dict())
    stats = EpochStats(
        epoch=epoch,
        epochs=cfg.epochs,
        train_loss=train_loss,
        val_loss=val_loss,
        learning_rate=loop.optimizer.param_groups[0]["lr"],
        seconds=0.0,
        best_epoch=state.best_epoch,
    )
    state.history.append(stats)
    state.epoch, state.order = epoch, None
    return stats


def _share(positions: torch.Tensor, dist: Distributed) -> tuple[torch.Tensor, float]:
    """This rank's windows of a global batch and its share of the batch's mean loss; a rank
    left without windows computes one with weight 0, so every rank joins the gradient sum."""
    if dist.world == 1:
        return positions, 1.0
    mine = positions[dist.rank :: dist.world]
    if len(mine) == 0:
        return positions[:1], 0.0
    return mine, len(mine) / len(positions)


def _total(value: torch.Tensor, dist: Distributed) -> float:
    return sum_values([value.item()], value.device)[0] if dist.world > 1 else value.item()


def _patience_ran_out(state: TrainState, val: WindowSet | None, cfg: TrainingConfig) -> bool:
    return (
        val is not None
        and cfg.patience is not None
        and state.epoch > 0
        and state.epoch - state.best_epoch >= cfg.patience
    )


def _snapshot(state: TrainState, loop: _Loop) -> TrainState:
    """Fill the state's copies of what lives in objects: weights, optimizer, random generators."""
    state.last_weights = copy.deepcopy(loop.model.state_dict())
    state.optimizer = copy.deepcopy(loop.optimizer.state_dict())
    state.rng = {
        "torch": torch.get_rng_state(),
        # only once CUDA is in use: reading its generators starts CUDA on every GPU
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "shuffler": loop.shuffler.get_state(),
    }
    return state


def _restore_rng(rng: dict[str, Any], shuffler: torch.Generator) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    shuffler.set_state(rng["shuffler"])


LOSSES = {"mse": nn.MSELoss, "mae": nn.L1Loss, "huber": nn.HuberLoss}


class PinballLoss(nn.Module):
    """The mean pinball (quantile) loss of quantile forecasts (..., quantiles) against
    targets (...): each quantile q is pulled to where a share q of the targets lies below."""

    def __init__(self, probabilities: list[float]) -> None:
        super().__init__()
        self.register_buffer("q", torch.tensor(probabilities, dtype=torch.float32))

    def forward(self, predicted: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        error = targets.unsqueeze(-1) - predicted
        return torch.maximum(self.q * error, (self.q - 1) * error).mean()


def quantile_probabilities(levels: tuple[float, ...]) -> list[float]:
    """The quantiles of central intervals at `levels` (ascending), in a quantile model's
    output order: the lower bounds from the widest level in, 0.5, the upper bounds out."""
    lower = [(1 - level / 100) / 2 for level in reversed(levels)]
    return [*lower, 0.5, *[1 - q for q in reversed(lower)]]


def loss_for(model: nn.Module, cfg: TrainingConfig) -> nn.Module:
    """training.loss, or the pinball loss of a quantile model's quantiles."""
    levels = getattr(model, "quantile_levels", ())
    if levels:
        return PinballLoss(quantile_probabilities(levels)).to(next(model.parameters()).device)
    return LOSSES[cfg.loss]()


def outputs(model: nn.Module, inputs: torch.Tensor, future: torch.Tensor | None) -> torch.Tensor:
    """What the loss compares with the targets: the forecasts, or a quantile model's
    quantiles."""
    if getattr(model, "quantile_levels", ()):
        return model.quantile_forward(inputs, future)
    return model(inputs, future)


# A cosine cycle still learning when its rate reached zero is followed by another from the
# top (training.cycles): the first when its last val loss is its best (within AT_BEST) and
# STILL_LEARNING below the loss three quarters through it (a noisy val loss that dipped and
# rose again is not learning); a later one when its best is STILL_LEARNING below the best
# before it.
STILL_LEARNING = 0.05
AT_BEST = 0.01


def planned_epochs(cfg: TrainingConfig, history: list[EpochStats]) -> int:
    """The epochs training runs to, as far as its history decides: `epochs`, and with the
    cosine schedule another cycle of them after each that was still learning, at most
    `cycles`. The same history gives the same plan, so a resumed run continues it."""
    cycles = cfg.cycles
    if cfg.scheduler != "cosine" or not isinstance(cycles, int) or cycles <= 1:
        return cfg.epochs
    limit = cfg.epochs
    while (
        limit < cfg.epochs * cycles
        and len(history) >= limit
        and _still_learning([stats.val_loss for stats in history[:limit]], cfg.epochs)
    ):
        limit += cfg.epochs
    return limit


def _still_learning(losses: list[float | None], length: int) -> bool:
    """Whether the last cycle (`length` epochs) of these val losses was still learning."""
    if any(loss is None for loss in losses):
        return False
    cycle, before = losses[-length:], losses[:-length]
    best = min(cycle)
    if before:
        return best <= (1 - STILL_LEARNING) * min(before)
    quarter = max(1, length // 4)
    last = cycle[-1]
    return last <= (1 + AT_BEST) * best and last <= (1 - STILL_LEARNING) * cycle[-quarter - 1]


def _scheduled_rate(cfg: TrainingConfig, epoch: int) -> float | None:
    """The learning rate an epoch starts with: linear warm-up, then cosine decay to zero, in
    cycles of `epochs` (training.cycles), each from the top; None leaves the rate alone (no
    schedule, or plateau, which steps on the monitored loss)."""
    if epoch <= cfg.warmup_epochs:
        return cfg.learning_rate * epoch / cfg.warmup_epochs
    if cfg.scheduler == "cosine":
        if epoch > cfg.epochs:  # a later cycle (training.cycles): the whole `epochs`, no warm-up
            progress = ((epoch - 1) % cfg.epochs) / cfg.epochs
        else:
            progress = (epoch - 1 - cfg.warmup_epochs) / max(1, cfg.epochs - cfg.warmup_epochs)
        return cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))
    if epoch == cfg.warmup_epochs + 1 and cfg.warmup_epochs:
        return cfg.learning_rate  # the end of the warm-up
    return None


def evaluate_loss(
    model: nn.Module,
    windows: WindowSet,
    loss_fn: nn.Module | None = None,
    dist: Distributed = SINGLE,
) -> float:
    """The training loss (MSE by default) over all windows, in scaled units (each rank of a
    distributed run scores every world-th window; the sum is shared)."""
    loss_fn = loss_fn or nn.MSELoss()
    model.eval()
    total = torch.zeros((), device=windows.anchors.device)
    with torch.inference_mode():
        positions = torch.arange(len(windows), device=windows.anchors.device)
        positions = positions[dist.rank :: dist.world]
        for chunk in positions.split(inference_batch(model, len(windows.input_offsets))):
            inputs, future, targets = windows.batch(chunk)
            total += loss_fn(outputs(model, inputs, future), targets) * len(chunk)
    return _total(total, dist) / len(windows)
