"""`lstmcli train --resume`: what a run folder needs to continue, and what may change.

A resumed run takes its config, scalers, weights and training state from last.pt; only the
length, saving and place of training may change (RESUMABLE_KEYS), so config.yaml keeps
saying what ran.
"""

from __future__ import annotations

from pathlib import Path

from lstmcli.config.io import override_config
from lstmcli.config.schema import Config, TrainingConfig
from lstmcli.errors import LstmcliError
from lstmcli.model.checkpoint import LAST_FILE, Checkpoint, load_checkpoint
from lstmcli.run.loop import EpochStats, planned_epochs

# What `--resume` may change: the length and saving of training, where it runs and where
# it is tracked.
RESUMABLE_KEYS = {
    "output.track",
    "output.tracking_uri",
    "output.experiment",
    "training.epochs",
    "training.max_steps",
    "training.threads",
    "training.workers",
    "training.precision",
    "training.patience",
    "training.checkpoint_every",
    "training.device",
}


def prepare_resume(run_dir: Path, overrides: list[str] = ()) -> tuple[Checkpoint, Config]:
    """The run's last.pt and its config with overrides (only RESUMABLE_KEYS may change);
    pass both to `train_run(config, run_dir, resume=checkpoint)`. One network and ensembles
    alike: last.pt holds every started member's state."""
    last = load_checkpoint(run_dir, LAST_FILE)
    if last.train_state is None:
        raise LstmcliError(
            f"{run_dir / LAST_FILE} holds no training state to resume from (written by an "
            "lstmcli whose ensembles could not be resumed); start a new run"
        )
    config = override_config(last.config, list(overrides), RESUMABLE_KEYS, "--resume")
    _refuse_finished(last.train_state, config.training, run_dir)
    return last, config


def epochs_done(train_state: dict) -> int:
    """Epochs already run, all members together (for the progress bar of a resumed run)."""
    plain = train_state["members"] if "members" in train_state else [train_state]
    return sum(member["epoch"] for member in plain)


def _refuse_finished(train_state: dict, cfg: TrainingConfig, run_dir: Path) -> None:
    """A run that ended (every member ran all its epochs, stopped early or reached max_steps)
    has nothing to continue: resuming it would only re-evaluate, under a config.yaml that no
    longer says what ran."""
    plain = train_state["members"] if "members" in train_state else [train_state]
    if len(plain) < cfg.ensemble:
        return  # members left to train
    reasons = [_why_finished(member, cfg, run_dir) for member in plain]
    if all(reasons):
        raise LstmcliError(reasons[-1])


def _why_finished(state: dict, cfg: TrainingConfig, run_dir: Path) -> str | None:
    """Why one network's training has ended, as advice on the key to raise; None when it
    has more to do."""
    if state.get("order") is not None:
        return None  # stopped in the middle of an epoch: there is an epoch to finish
    done, best = state["epoch"], state["best_epoch"]
    history = state.get("history") or []
    has_val = bool(history) and history[-1].get("val_loss") is not None
    planned = planned_epochs(cfg, [EpochStats(**stats) for stats in history])
    if done >= planned:  # all its epochs (and cycles: a cycle still learning has another)
        return (
            f"{run_dir} already ran {done} epoch(s) (training.epochs {cfg.epochs}); to train "
            f"longer, resume with --set training.epochs=N for some N above {done}"
        )
    if has_val and cfg.patience is not None and done - best >= cfg.patience:
        return (
            f"{run_dir} stopped early at epoch {done}: no better validation loss for "
            f"{done - best} epoch(s) (training.patience {cfg.patience}); to go on, resume "
            f"with --set training.patience=N for some N above {done - best}"
        )
    if cfg.max_steps is not None and state["steps"] >= cfg.max_steps:
        return (
            f"{run_dir} reached training.max_steps ({cfg.max_steps}); resume with a higher "
            "--set training.max_steps=N"
        )
    return None
