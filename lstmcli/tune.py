"""`lstmcli tune`: a hyper-parameter search with Optuna, chosen on the val part only.

A study lives in a database (by default `study.db`, SQLite, in the study folder), so a killed
or interrupted study loses at most its running trials and the same command continues it; with
a shared database URL, processes on many machines work on one study. Each trial is the config
with the trial's values set, trained in this process exactly as `train` would (the data read
and checked once, windows reused while no data key changes) and scored on the val part; the
test rows are split off and never scored. At the end the best trial's config is trained once
more, from the same seed, into a run folder like `train`'s, and only that run meets the test
part.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from lstmcli.auto import MIN_TRAIN_WINDOWS, resolve
from lstmcli.config import (
    Config,
    SearchRange,
    config_to_yaml,
    override_config,
    validate_config,
)
from lstmcli.data import Table, load_table
from lstmcli.errors import ConfigError, LstmcliError, TrainingInterrupted, Warn, ignore_warning
from lstmcli.files import csv_text, write_text

if TYPE_CHECKING:
    import optuna

    from lstmcli.pipeline import RunResult
    from lstmcli.train import EpochStats

STUDY_FILE = "study.db"
TRIALS_FILE = "trials.csv"
BEST_CONFIG = "best.yaml"
BEST_RUN = "best"
DEFAULT_STUDY = "lstmcli"
# Keys a search may not set: they change what is read or forecast, or where and how a run is
# saved, not how well it forecasts.
FIXED_KEYS = {
    "data.path", "data.time_column", "data.time_format", "data.target", "data.features",
    "data.known_features", "data.calendar", "data.id_column", "data.task", "data.horizon",
    "data.split", "data.missing", "data.validation", "data.season", "training.device",
    "training.threads", "training.checkpoint_every", "model.levels",
}  # fmt: skip
# Keys that change what the loss measures: epoch val losses of trials that differ in them are
# not comparable, so such a space cannot select on val_loss and is not pruned.
LOSS_UNIT_KEYS = {
    "training.loss", "data.scaler", "data.scale_by", "data.window_norm", "model.intervals",
    "model.conformalize",
}  # fmt: skip
HEARTBEAT_SECONDS = 10  # a trial whose process stops beating this long * 3 is failed
OPEN_ATTEMPTS = 10  # tries to open a study database another process is creating
PRUNE_STARTUP_TRIALS = 5  # the median pruner waits for this many finished trials
PRUNE_WARMUP_EPOCHS = 10  # ... and prunes no trial before its 10th epoch


class TrialFailed(Exception):
    """A trial that cannot run (its config or data says why); the study goes on."""


class TrialSurplus(Exception):
    """The study already has its trials: this one is not run (see `_surplus`)."""


class TrialStopped(Exception):
    """Ctrl-C or SIGTERM arrived during the trial."""


@dataclass
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


@dataclass
class TuneResult:
    folder: Path
    trials: pd.DataFrame
    best: dict  # number, value, params, config (YAML)
    run: RunResult | None  # the best config trained and tested; None when interrupted
    metric: str
    notes: list[str]


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise LstmcliError(
            "lstmcli tune needs Optuna, which is not installed; install it with "
            "`pip install 'lstmcli[tune]'`"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # lstmcli reports trials itself
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def plan_study(
    config: Config,
    table: Table,
    folder: Path,
    trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    source: str = "config",
) -> tuple[StudyPlan, list[str]]:
    """Check everything a study needs before any trial runs: the val part, the space (each
    key and bound validated like --set), the metric. Returns the plan and notes for the user
    (what the space is, when pruning is off and why)."""
    tune = config.tune
    base, _ = resolve(config, table)
    if not _has_val(base):
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
    check_space(base, space, source)
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
            source,
        )
    unit_keys = sorted(LOSS_UNIT_KEYS & set(space))
    if metric == "val_loss" and unit_keys:
        raise ConfigError(
            [
                f"tune.metric: val_loss is not comparable across trials that change "
                f"{', '.join(unit_keys)}; use val_rmse, val_mae or val_mase"
            ],
            source,
        )
    prune = tune.pruner == "median"
    if prune and unit_keys:
        prune = False
        notes.append(f"pruning off: {', '.join(unit_keys)} change what the epoch losses measure")
    if tune.sampler == "grid":
        open_keys = [key for key, r in space.items() if r.grid() is None]
        if open_keys:
            raise ConfigError(
                [
                    f"tune.space.{key}: the grid sampler needs a step for a float range"
                    for key in open_keys
                ],
                source,
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LstmcliError(f"cannot create study folder {folder}: {e.strerror or e}") from None
    seconds = timeout if timeout is not None else tune.timeout
    plan = StudyPlan(
        config=base,
        space=space,
        metric=metric,
        storage=storage or f"sqlite:///{(folder / STUDY_FILE).resolve()}",
        study_name=study_name or DEFAULT_STUDY,
        trials=trials if trials is not None else tune.trials,
        deadline=time.time() + seconds if seconds else math.inf,
        prune=prune,
        folds=tune.folds,
    )
    if tune.folds > 1:
        _check_folds(base, table, tune.folds, source)
        notes.append(
            f"each trial is scored on {tune.folds} validation cuts (the val part and the "
            f"{tune.folds - 1} of the same length before it); the metric is their mean"
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
    raw = config.model_dump(mode="json")
    raw["data"]["split"] = moved
    return validate_config(raw, "tune")


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


def _has_val(config: Config) -> bool:
    split = config.data.split.model_dump()
    return split.get("val", 0) > 0 or split.get("val_start") is not None


def default_space(config: Config, table: Table) -> dict[str, SearchRange]:
    """The space searched when the config has none: the lookback in whole seasons (or
    horizons) up to four that leave enough training windows, the LSTM's width, the learning
    rate and the batch size: what matters most for the cost of a trial kept to what `auto`
    would choose for small data, so a 30-trial study stays within minutes. The loss, scaler
    and window normalization stay as `auto` chose them, so epoch losses stay comparable and
    hopeless trials can be pruned."""
    data = config.data
    unit = data.season if isinstance(data.season, int) and data.season > 1 else max(data.horizon, 4)
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
    return {key: SearchRange.model_validate(value) for key, value in ranges.items()}


def _train_windows(config: Config, table: Table) -> int:
    from lstmcli.windows import split_rows

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


def check_space(config: Config, space: dict[str, SearchRange], source: str = "config") -> None:
    """Every key a config key that may be searched, every bound and choice a value the
    schema accepts for it: all problems at once, before any trial."""
    problems = []
    for key, r in space.items():
        if key.split(".")[0] not in ("data", "model", "training"):
            problems.append(f"tune.space.{key}: only data, model and training keys can be searched")
            continue
        if key in FIXED_KEYS:
            problems.append(
                f"tune.space.{key}: cannot be searched (it changes what is read, forecast or "
                "saved, not how well)"
            )
            continue
        candidates = r.values if r.type == "choice" else [r.low, r.high]
        for value in candidates or []:
            if r.type == "int":
                value = int(value)
            try:
                override_config(config, [f"{key}={yaml.safe_dump(value).strip()}"])
            except ConfigError as e:
                problems.extend(f"tune.space.{problem}" for problem in e.problems[:1])
                break
            except LstmcliError as e:
                problems.append(f"tune.space.{key}: {e}")
                break
    if problems:
        raise ConfigError(problems, source)


def trial_config(config: Config, params: dict[str, Any]) -> Config:
    """The base config with a trial's values set."""
    raw = config.model_dump(mode="json")
    for key, value in params.items():
        node = raw
        *sections, name = key.split(".")
        for section in sections:
            node = node[section]
        node[name] = value
    return validate_config(raw, "tune")


def suggest(trial: optuna.Trial, space: dict[str, SearchRange]) -> dict[str, Any]:
    params = {}
    for key, r in space.items():
        if r.type == "choice":
            params[key] = trial.suggest_categorical(key, r.values)
        elif r.type == "int":
            step = int(r.step or 1)
            params[key] = trial.suggest_int(key, int(r.low), int(r.high), step=step, log=r.log)
        else:
            params[key] = trial.suggest_float(key, r.low, r.high, step=r.step, log=r.log)
    return params


def open_study(plan: StudyPlan, *, create: bool) -> optuna.Study:
    """The study in its database, created when `create` (the command's first worker).

    Processes that meet a new database at the same moment race to create its tables; the
    loser sees an integrity error and simply tries again, when the tables are there."""
    from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

    for attempt in range(OPEN_ATTEMPTS):
        try:
            return _open_study(plan, create)
        except ImportError as e:  # e.g. postgresql:// without its driver
            raise LstmcliError(
                f"cannot open the study in {plan.storage}: its database driver is not "
                f"installed ({_one_line(e.__cause__ or e)})"
            ) from None
        except (IntegrityError, OperationalError) as e:  # another process creating tables
            if attempt == OPEN_ATTEMPTS - 1:
                raise LstmcliError(
                    f"cannot open the study in {plan.storage}: {_one_line(e)}"
                ) from None
            time.sleep(0.2 * (attempt + 1))
        except SQLAlchemyError as e:  # a URL no retry will mend
            raise LstmcliError(f"cannot open the study in {plan.storage}: {_one_line(e)}") from None
    raise AssertionError("unreachable")


def _open_study(plan: StudyPlan, create: bool) -> optuna.Study:
    optuna = require_optuna()
    storage = optuna.storages.RDBStorage(
        plan.storage,
        heartbeat_interval=HEARTBEAT_SECONDS,
        grace_period=3 * HEARTBEAT_SECONDS,
        engine_kwargs=_engine_args(plan.storage),
    )
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=PRUNE_WARMUP_EPOCHS
        )
        if plan.prune
        else optuna.pruners.NopPruner()
    )
    if not create:
        return optuna.load_study(study_name=plan.study_name, storage=storage, pruner=pruner)
    try:  # the database lets exactly one process create a study of this name
        study = optuna.create_study(
            study_name=plan.study_name, storage=storage, pruner=pruner, direction="minimize"
        )
        fresh = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=plan.study_name, storage=storage, pruner=pruner)
        fresh = False
    _same_study(study, plan)
    if fresh:
        given = base_values(plan)
        if given:  # trial 0: the config as `train` would run it, so the search starts there
            study.enqueue_trial(given, user_attrs={"base": True})
    return study


def base_values(plan: StudyPlan) -> dict[str, Any]:
    """The base config's value of each searched key that lies in its range."""
    raw = plan.config.model_dump(mode="json")
    values = {}
    for key, r in plan.space.items():
        node: Any = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if r.type == "choice":
            if node in (r.values or []):
                values[key] = node
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            inside = r.low <= node <= r.high
            on_step = (
                r.step is None
                or abs((node - r.low) / r.step - round((node - r.low) / r.step)) < 1e-9
            )
            if inside and (on_step or r.log) and (r.type == "float" or float(node).is_integer()):
                values[key] = int(node) if r.type == "int" else float(node)
    return values


def _engine_args(url: str) -> dict:
    """SQLite: wait up to a minute for another worker's write instead of failing at once."""
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def make_sampler(plan: StudyPlan, seed: int) -> optuna.samplers.BaseSampler:
    optuna = require_optuna()
    sampler = plan.config.tune.sampler
    if sampler == "grid":
        grid = {key: r.grid() for key, r in plan.space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = min(10, plan.trials // 3 + 1)  # random trials before TPE models the space
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def _same_study(study: optuna.Study, plan: StudyPlan) -> None:
    """A study continues only under the config and space it started with."""
    mine = {
        "config": _comparable(plan.config),
        "metric": plan.metric,
        "space": _space_text(plan),
        "folds": str(plan.folds),
    }
    stored = study.user_attrs
    if not stored:
        for key, value in mine.items():
            study.set_user_attr(key, value)
        return
    changed = [key for key in mine if stored.get(key) != mine[key]]
    if changed:
        raise LstmcliError(
            f"study {plan.study_name!r} in {plan.storage} was started with another "
            f"{' and '.join(changed)}; continue it with the same config, or give another "
            "-o folder or --study name"
        )


def _comparable(config: Config) -> str:
    raw = config.model_dump(mode="json")
    raw.pop("tune")
    raw.pop("output")
    raw["training"].pop("threads")
    raw["training"].pop("device")
    return yaml.safe_dump(raw, sort_keys=True)


def _space_text(plan: StudyPlan) -> str:
    return yaml.safe_dump({k: r.model_dump(exclude_none=True) for k, r in plan.space.items()})


def counts(trial: Any) -> bool:
    """Whether a trial counts towards the study's total: finished (complete, pruned, failed
    for a reason of its own) or running. Interrupted, stale and surplus trials do not."""
    state = trial.state.name
    return state in ("COMPLETE", "PRUNED", "RUNNING") or (
        state == "FAIL" and "error" in trial.user_attrs
    )


def counted(study: optuna.Study) -> int:
    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def _surplus(study: optuna.Study, number: int, total: int) -> bool:
    """Whether trial `number` (just started) is beyond the study's total. Trial numbers come
    from the database in order, so of two workers that started a trial at the same moment
    only the later one sees the other as running before it: exactly `total` trials run."""
    trials = study.get_trials(deepcopy=False)
    return sum(counts(t) for t in trials if t.number < number) >= total


class Objective:
    """One trial: the trial's config, trained as `train` would, scored on the val part."""

    def __init__(
        self,
        plan: StudyPlan,
        table: Table,
        should_stop: Callable[[], bool],
        warn: Warn = ignore_warning,
    ) -> None:
        self.plan, self.table, self.should_stop, self.warn = plan, table, should_stop, warn
        self.prepared: dict[str, tuple] = {}  # data config (JSON) -> (TrainingData, windows)

    def __call__(self, trial: optuna.Trial) -> float:
        optuna = require_optuna()
        from lstmcli.pipeline import fit_model

        plan = self.plan
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        if _surplus(trial.study, trial.number, plan.trials):
            trial.set_user_attr("surplus", True)
            raise TrialSurplus
        started = time.perf_counter()
        params = suggest(trial, plan.space)
        seen = {"epochs": 0, "first_member": True}

        def on_epoch(stats: EpochStats) -> None:
            seen["epochs"] += 1
            if stats.epoch == 1 and seen["epochs"] > 1:  # the next member of an ensemble
                seen["first_member"] = False
            if plan.prune and seen["first_member"] and stats.val_loss is not None:
                trial.report(stats.val_loss, stats.epoch)  # the pruner compares first members
                if trial.should_prune():
                    trial.set_user_attr("epochs", seen["epochs"])
                    trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
                    raise optuna.TrialPruned

        values, configs, epochs = [], [], 0
        try:
            config = trial_config(plan.config, params)
            for fold in range(plan.folds):  # fold 0: the split itself; then earlier val parts
                fitted = fit_model(
                    fold_config(config, fold),
                    self.table,
                    None,
                    on_epoch=on_epoch if fold == 0 else None,
                    should_stop=self.should_stop,
                    warn=ignore_warning,
                    prepared=self._prepare,
                )
                epochs += fitted.training.epochs_run
                if fitted.training.interrupted or self.should_stop():
                    break
                values.append(metric_value(fitted.validation, plan.metric))
                configs.append(fitted.config)
        except TrainingInterrupted:
            trial.set_user_attr("interrupted", True)
            raise TrialStopped from None
        except (LstmcliError, ValueError, RuntimeError) as e:
            trial.set_user_attr("error", _one_line(e))
            raise TrialFailed(str(e)) from None
        trial.set_user_attr("epochs", epochs)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
        if len(values) < plan.folds:
            trial.set_user_attr("interrupted", True)
            raise TrialStopped
        if any(v is None for v in values):
            trial.set_user_attr("error", f"the val part gives no {plan.metric}")
            raise TrialFailed(plan.metric)
        if plan.folds > 1:
            trial.set_user_attr("folds", values)
        trial.set_user_attr("config", config_to_yaml(configs[0]))
        return float(np.mean(values))

    def _prepare(self, config: Config) -> tuple:
        """The data and windows for a data config: made once, reused by later trials."""
        from lstmcli.device import resolve_device
        from lstmcli.pipeline import make_windows, prepare_data

        key = config.data.model_dump_json()
        if key not in self.prepared:
            if len(self.prepared) >= 4 * self.plan.folds:  # memory stays bounded
                self.prepared.pop(next(iter(self.prepared)))
            data = prepare_data(self.table, config.data, self.warn)
            device = resolve_device(config.training.device)
            self.prepared[key] = (data, make_windows(data, config.data, device))
        data, windows = self.prepared[key]
        data.calibration, data.baseline_intervals = None, None  # filled again per trial
        return data, windows


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def metric_value(validation: dict | None, metric: str) -> float | None:
    if validation is None:
        return None
    value = validation.get(metric.removeprefix("val_"))
    return None if value is None or not np.isfinite(value) else float(value)


def work(
    plan: StudyPlan,
    table: Table,
    should_stop: Callable[[], bool],
    on_trial: Callable[[optuna.Study], None] | None = None,
    *,
    worker: int = 0,
) -> None:
    """One worker: run trials until the study has its total, the deadline passes or a stop
    is requested. Workers in other processes or machines may share the study; worker 0
    creates it. Each worker's sampler is seeded from tune.seed, its index and the trials
    already in the study, so a continued study does not propose its first values again."""
    tune = plan.config.tune
    study = open_study(plan, create=worker == 0)
    trials = study.get_trials(deepcopy=False)
    others = any(t.state.name == "RUNNING" for t in trials)  # another machine is at work
    seed = tune.seed + 1000 * worker + len(trials) + (os.getpid() if others else 0)
    study.sampler = make_sampler(plan, seed)
    objective = Objective(plan, table, should_stop)
    catch = (TrialFailed, TrialSurplus, TrialStopped)
    while not should_stop() and time.time() < plan.deadline and counted(study) < plan.trials:
        before = len(study.get_trials(deepcopy=False))
        study.optimize(objective, n_trials=1, catch=catch)
        mine = study.get_trials(deepcopy=False)[before:]
        if on_trial is not None:
            on_trial(study)
        if any(t.user_attrs.get("surplus") or t.user_attrs.get("interrupted") for t in mine):
            break
        if tune.sampler == "grid" and _grid_done(study, plan):
            break


def _grid_done(study: optuna.Study, plan: StudyPlan) -> bool:
    size = math.prod(len(r.grid() or []) for r in plan.space.values())
    return counted(study) >= size


def worker_process(plan: StudyPlan, threads: int | None, worker: int) -> None:
    """A `--jobs` worker in its own process: reads the data itself, stops on SIGINT/SIGTERM
    after its current batch like the main process."""
    import signal

    import torch

    stop = {"now": False}

    def handle(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    if threads is not None:
        torch.set_num_threads(threads)
    logging.getLogger("optuna").setLevel(logging.ERROR)
    try:
        table = load_table(plan.config.data, ignore_warning)
        work(plan, table, lambda: stop["now"], worker=worker)
    except LstmcliError as e:
        print(f"Error: tune worker {worker}: {e}", file=sys.stderr)
        raise SystemExit(1) from None


def trials_frame(study: optuna.Study, plan: StudyPlan) -> pd.DataFrame:
    """trials.csv: number, state, each searched value, the metric, epochs, seconds, and why
    a trial failed. Surplus trials (never run) are left out."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):
            continue
        state = t.state.name.lower()
        if t.user_attrs.get("interrupted"):
            state = "interrupted"
        elif state == "fail" and "error" not in t.user_attrs:
            state = "stale"  # its process died without a word (killed, machine lost)
        row = {"number": t.number, "state": state, "base": bool(t.user_attrs.get("base"))}
        row.update({key: t.params.get(key) for key in plan.space})
        row[plan.metric] = t.value if t.state.name == "COMPLETE" else None
        if plan.folds > 1:  # each validation cut's figure, the first the split's own
            row["fold_values"] = json.dumps(t.user_attrs.get("folds"))
        row["epochs"] = t.user_attrs.get("epochs")
        row["seconds"] = t.user_attrs.get("seconds")
        row["error"] = t.user_attrs.get("error")
        rows.append(row)
    return pd.DataFrame(rows)


def best_trial(study: optuna.Study) -> dict | None:
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not done:
        return None
    best = min(done, key=lambda t: (t.value, t.number))
    return {
        "number": best.number,
        "value": best.value,
        "params": dict(best.params),
        "config": best.user_attrs["config"],
    }


def finish(study: optuna.Study, plan: StudyPlan, folder: Path) -> tuple[pd.DataFrame, dict]:
    """trials.csv, best.yaml and the figures; an error when no trial completed."""
    frame = trials_frame(study, plan)
    write_text(folder / TRIALS_FILE, csv_text(frame))
    best = best_trial(study)
    if best is None:
        reasons = frame["error"].dropna().unique().tolist() if len(frame) else []
        why = f": {reasons[0]}" if reasons else ""
        raise LstmcliError(f"no trial of the study completed{why} (see {folder / TRIALS_FILE})")
    write_text(folder / BEST_CONFIG, best["config"])
    write_figures(study, frame, plan, folder)
    return frame, best


MIN_IMPORTANCE_TRIALS = 8  # fewer completed trials say little about which key matters


def write_figures(study: optuna.Study, frame: pd.DataFrame, plan: StudyPlan, folder: Path) -> None:
    """history.png always; importance.png once enough trials completed (PED-ANOVA: no
    scikit-learn needed)."""
    from lstmcli.plot import importance_figure, save, tune_history_figure

    save(tune_history_figure(frame, plan.metric), folder / "history.png")
    complete = int((frame["state"] == "complete").sum()) if len(frame) else 0
    if complete >= MIN_IMPORTANCE_TRIALS and len(plan.space) > 1:
        optuna = require_optuna()
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        try:
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError):  # e.g. every trial with the same values
            return
        save(importance_figure(importances, plan.metric), folder / "importance.png")


def best_config(best: dict, folder: Path) -> Config:
    """best.yaml as a config whose run folder is the study's `best` folder."""
    raw = yaml.safe_load(best["config"])
    raw["output"]["dir"] = str(folder / BEST_RUN)
    return validate_config(raw, str(folder / BEST_CONFIG))


def tune_run(
    config: Config,
    folder: Path,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    jobs: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
    warn: Warn = ignore_warning,
    on_plan: Callable[[StudyPlan, list[str], int], None] | None = None,
    on_trial: Callable[[pd.DataFrame, int], None] | None = None,
    on_best: Callable[[Config], None] | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    source: str = "config",
) -> TuneResult:
    """The whole study: plan and check, run the trials (in this process, plus `jobs` - 1
    worker processes), write trials.csv, best.yaml and the figures, then train the best
    config into `folder/best` and score it on the test part."""
    require_optuna()
    table = load_table(config.data, warn)
    plan, notes = plan_study(config, table, folder, trials, timeout, storage, study_name, source)
    study = open_study(plan, create=True)
    done = counted(study)
    if on_plan is not None:
        on_plan(plan, notes, done)
    threads = config.training.threads
    if jobs > 1 and threads is None:
        threads = max(1, (os.cpu_count() or 1) // jobs)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    def report(study: optuna.Study) -> None:
        if on_trial is not None:
            on_trial(trials_frame(study, plan), counted(study))

    workers = _start_workers(plan, threads, jobs)
    try:
        work(plan, table, should_stop, report, worker=0)
        if workers:
            _wait_for(workers, study, report)
    finally:
        for process in workers:
            process.join()
    frame, best = finish(study, plan, folder)
    if should_stop():
        return TuneResult(folder, frame, best, None, plan.metric, notes)
    # The best config, trained once more from its seed (the same model as its trial) into a
    # run folder like train's; only this run is scored on the test part.
    from lstmcli.pipeline import train_run

    chosen = best_config(best, folder)
    if on_best is not None:
        on_best(chosen)
    run = train_run(
        chosen,
        folder / BEST_RUN,
        overwrite=True,
        on_epoch=on_epoch,
        should_stop=should_stop,
        warn=warn,
    )
    return TuneResult(folder, frame, best, run, plan.metric, notes)


def _start_workers(plan: StudyPlan, threads: int | None, jobs: int) -> list:
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no forked torch or database state
    workers = []
    for index in range(1, jobs):
        process = context.Process(target=worker_process, args=(plan, threads, index))
        process.start()
        workers.append(process)
    return workers


def _wait_for(workers: list, study: optuna.Study, report: Callable[[optuna.Study], None]) -> None:
    """Report the other workers' trials as they finish, until every worker has ended."""
    seen = -1
    while any(p.is_alive() for p in workers):
        finished = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
        if finished != seen:
            report(study)
            seen = finished
        time.sleep(0.5)
    report(study)
