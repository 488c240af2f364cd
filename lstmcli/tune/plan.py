"""What a study searches and how it decides, checked before any trial runs.

The base config has every `auto` chosen and its split (val part included) fixed, so all
trials are scored on the same rows; the space's keys and bounds are validated like `--set`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmcli.config.edit import edit_config, set_by_override
from lstmcli.config.plan import PlannedConfig
from lstmcli.config.resolve import MIN_TRAIN_WINDOWS, resolve
from lstmcli.config.schema import Config, SearchRange
from lstmcli.data.table import Table
from lstmcli.data.windows import split_rows
from lstmcli.errors import ConfigError, LstmcliError
from lstmcli.model.prior import NETWORK_KEYS, is_prior

STUDY_FILE = "study.db"
DEFAULT_STUDY = "lstmcli"
# Keys a search may not set: they change what is read or forecast, or where and how a run is
# saved, not how well it forecasts.
FIXED_KEYS = {
    "data.path", "data.time_column", "data.time_format", "data.target", "data.features",
    "data.known_features", "data.calendar", "data.id_column", "data.task", "data.horizon",
    "data.split", "data.missing", "data.validation", "data.season", "training.device",
    "training.threads", "training.checkpoint_every", "model.levels", "model.init",
}  # fmt: skip
# Keys that change what the loss measures: epoch val losses of trials that differ in them are
# not comparable, so such a space cannot select on val_loss and is not pruned.
LOSS_UNIT_KEYS = {
    "training.loss", "data.scaler", "data.scale_by", "data.window_norm", "model.intervals",
    "model.conformalize",
}  # fmt: skip


@dataclass(frozen=True)
class Origin:
    """Where a config key came from, for messages: `--set` when an override set it (or the
    section holding it), else the config file."""

    source: str = "config"
    overridden: tuple[str, ...] = ()

    def __call__(self, key: str) -> str:
        return "--set" if set_by_override(key, list(self.overridden)) else self.source


@dataclass(frozen=True)
class StudyPlan:
    """What every worker of a study needs: the base config (every `auto` chosen, the split
    with its val part fixed, so all trials are scored on the same rows), the space and where
    the study lives."""

    config: Config
    space: dict[str, SearchRange]
    metric: str
    storage: str
    study_name: str
    trials: int
    deadline: float  # time.time() after which no trial starts; inf: none
    prune: bool
    folds: int = 1  # validation cuts each trial is scored on (see fold_config)
    tracking: dict[str, str] | None = None  # the study's MLflow run, for trials to nest under


def plan_study(
    config: Config,
    table: Table,
    folder: Path,
    storage: str | None = None,
    study_name: str | None = None,
    origin: Origin | None = None,
) -> tuple[StudyPlan, list[str]]:
    """Check everything a study needs before any trial runs: the val part, the space (each
    key and bound validated like --set), the metric. Returns the plan and notes for the user
    (what the space is, when pruning is off and why). The number of trials and the time
    limit are the config's `tune.trials` and `tune.timeout`. `origin` says where a key came
    from (the config file or `--set`), for the messages."""
    origin = origin or Origin()
    tune = config.tune
    base = resolve(config, table).config
    if not base.data.has_val_part:
        raise LstmcliError(
            "tune chooses on the val part, and this split has none (data.validation: auto "
            "could not carve one from the training rows); give data.split a val part, e.g. "
            "{train: 0.7, val: 0.1, test: 0.2}"
        )
    notes = []
    space = tune.space
    if space is None:
        space = default_space(base, table)
        notes.append("space (the default): " + describe_space(space))
    check_space(base, space, origin)
    metric = tune.metric
    several = len(base.data.target) > 1
    if metric == "auto":  # errors in one unit for one series; unit-free across many
        metric = "val_mase" if several or base.data.id_column else "val_rmse"
    elif several and metric in ("val_rmse", "val_mae"):
        raise ConfigError(
            [
                f"tune.metric: {metric} is in a target's units and this config has "
                f"{len(base.data.target)} targets; use val_mase or val_loss"
            ],
            origin("tune.metric"),
        )
    unit_keys = sorted(LOSS_UNIT_KEYS & set(space))
    if metric == "val_loss" and unit_keys:
        raise ConfigError(
            [
                f"tune.metric: val_loss is not comparable across trials that change "
                f"{', '.join(unit_keys)}; use val_rmse, val_mae or val_mase"
            ],
            origin("tune.metric"),
        )
    prune = tune.pruner == "median"
    if prune and unit_keys:
        prune = False
        notes.append(f"pruning off: {', '.join(unit_keys)} change what the epoch losses measure")
    if tune.sampler == "grid":
        open_keys = [key for key, r in space.items() if r.grid() is None]
        if open_keys:
            raise ConfigError(
                [f"tune.space.{key}: the grid sampler needs a step for a float range"
                 for key in open_keys],
                sources=[origin(f"tune.space.{key}") for key in open_keys],
            )  # fmt: skip
    if tune.folds > 1:
        _check_folds(base, table, tune.folds, origin("tune.folds"))
        notes.append(
            f"each trial is scored on {tune.folds} validation cuts (the val part and the "
            f"{tune.folds - 1} of the same length before it); the metric is their mean"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LstmcliError(f"cannot create study folder {folder}: {e.strerror or e}") from None
    plan = StudyPlan(
        config=base,
        space=space,
        metric=metric,
        storage=storage or f"sqlite:///{(folder / STUDY_FILE).resolve()}",
        study_name=study_name or DEFAULT_STUDY,
        trials=tune.trials,
        deadline=time.time() + tune.timeout if tune.timeout else math.inf,
        prune=prune,
        folds=tune.folds,
    )
    return plan, notes


def fold_config(config: Config, fold: int) -> Config:
    """The config of validation cut `fold`: 0 is the config itself; fold k moves the val part
    k val-lengths earlier, training only on the rows before it (the rows after it, up to the
    test part, are not used). A fraction split only (checked by `_check_folds`)."""
    if fold == 0:
        return config
    split = config.data.split.model_dump()
    train = split["train"] - fold * split["val"]
    moved = {
        "train": round(train, 9),
        "val": split["val"],
        "test": round(1 - train - split["val"], 9),
    }
    return edit_config(config, {"data.split": moved}, "tune")


def _check_folds(config: Config, table: Table, folds: int, source: str) -> None:
    split = config.data.split.model_dump()
    if "train" not in split:
        raise ConfigError(
            ["tune.folds: several validation cuts need a fraction split ({train, val, test}); "
             "this config splits by dates"],
            source,
        )  # fmt: skip
    earliest = fold_config(config, folds - 1)
    if split["train"] - (folds - 1) * split["val"] <= 0 or _train_windows(earliest, table) < 1:
        raise ConfigError(
            [f"tune.folds: {folds} validation cuts leave the earliest one no training windows; "
             "use fewer folds"],
            source,
        )  # fmt: skip


def default_space(config: PlannedConfig, table: Table) -> dict[str, SearchRange]:
    """The space searched when the config has none: the lookback in whole seasons (or
    horizons) up to four that leave enough training windows, the LSTM's width (not when the
    run starts from a prior: its shape is given), the learning rate and the batch size: what
    matters most for the cost of a trial kept to what `auto` would choose for small data, so
    a 30-trial study stays within minutes. The loss, scaler
    and window normalization stay as `auto` chose them, so epoch losses stay comparable and
    hopeless trials can be pruned."""
    data = config.data
    unit = data.season if data.season is not None and data.season > 1 else max(data.horizon, 4)
    windows = _train_windows(config, table)
    lookbacks = {data.lookback}
    for k in (1, 2, 3, 4):
        extra = k * unit - data.lookback  # each row more in a window is one window fewer
        if k * unit >= 2 and windows - extra >= MIN_TRAIN_WINDOWS:
            lookbacks.add(k * unit)
    ranges: dict[str, Any] = {
        "data.lookback": {"type": "choice", "values": sorted(lookbacks)},
        "model.hidden_size": {"type": "choice", "values": [16, 32, 64]},
        "training.learning_rate": {"type": "float", "low": 3e-4, "high": 1e-2, "log": True},
        "training.batch_size": {"type": "choice", "values": [16, 32, 64]},
    }
    if is_prior(config.model.init):  # fine-tuning a prior: its network's shape is given
        del ranges["model.hidden_size"]
    return {key: SearchRange.model_validate(value) for key, value in ranges.items()}


def _train_windows(config: Config, table: Table) -> int:
    return int(len(split_rows(table, config.data).anchors["train"]))


def describe_space(space: dict[str, SearchRange]) -> str:
    parts = []
    for key, r in space.items():
        if r.type == "choice":
            parts.append(f"{key} in {r.values}")
        else:
            scale = " log" if r.log else (f" step {r.step:g}" if r.step else "")
            parts.append(f"{key} {r.low:g}..{r.high:g}{scale}")
    return "; ".join(parts)


def check_space(
    config: Config, space: dict[str, SearchRange], origin: Origin | None = None
) -> None:
    """Every key a config key that may be searched, every bound and choice a value the
    schema accepts for it: all problems at once, before any trial, each blamed on where its
    key came from."""
    origin = origin or Origin()
    problems, sources = [], []
    for key, r in space.items():
        where = origin(f"tune.space.{key}")
        if key.split(".")[0] not in ("data", "model", "training"):
            problems.append(f"tune.space.{key}: only data, model and training keys can be searched")
            sources.append(where)
            continue
        if key in FIXED_KEYS:
            problems.append(
                f"tune.space.{key}: cannot be searched (it changes what is read, forecast or "
                "saved, not how well)"
            )
            sources.append(where)
            continue
        if is_prior(config.model.init) and key in {f"model.{k}" for k in NETWORK_KEYS}:
            problems.append(
                f"tune.space.{key}: the network's shape is model.init's ({config.model.init}); "
                "search it from scratch with model.init: none"
            )
            sources.append(where)
            continue
        candidates = r.values if r.type == "choice" else [r.low, r.high]
        for value in candidates or []:
            if r.type == "int":
                value = int(value)
            try:
                edit_config(config, {key: value})
            except ConfigError as e:
                problems.append(f"tune.space.{e.problems[0]}")
                sources.append(where)
                break
            except LstmcliError as e:
                problems.append(f"tune.space.{key}: {e}")
                sources.append(where)
                break
    if problems:
        raise ConfigError(problems, sources=sources)


def trial_config(config: Config, params: dict[str, Any]) -> Config:
    """The base config with a trial's values set."""
    return edit_config(config, params, "tune")
