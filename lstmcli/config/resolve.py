"""Defaults chosen from the data: every `auto` in a config becomes a number before training.

The rules were found by measurement on many public series (`benchmarks/accuracy_suite.py`,
figures in benchmarks/README.md) and use the training rows only: the time column's
frequency, the season, the horizon and how many rows and windows the training part holds.
The resolved config is what runs: `--print-config`, config.yaml and model.pt hold the numbers,
and metrics.json says what was chosen and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lstmcli.config.data_section import SplitDates, SplitFractions
from lstmcli.config.edit import edit_config
from lstmcli.config.fields import AUTO, has_val_part, is_auto
from lstmcli.config.plan import Choice, Plan
from lstmcli.config.schema import Config, ModelConfig, no_val_part_for_intervals
from lstmcli.data.table import Table
from lstmcli.data.times import first_field, frequency
from lstmcli.data.windows import split_rows
from lstmcli.errors import LstmcliError
from lstmcli.model.prior import (
    AUTO_MAX_WINDOWS,
    Init,
    auto_priors,
    check_fits,
    load_prior,
    mismatches,
    prior_errors,
    prior_settings,
)

if TYPE_CHECKING:
    from lstmcli.model.checkpoint import Checkpoint


# Rows per season for each kind of regular frequency (pandas offset names, without anchors).
SEASONS = {"W": 52, "MS": 12, "ME": 12, "M": 12, "QS": 4, "QE": 4, "Q": 4, "D": 7, "B": 5}


MAX_SEASON = 400  # longer "seasons" (minutes in a week) are no use to a lookback window


VAL_SHARE = 0.1  # of the training rows, carved as a validation part when the split has none


MIN_TRAIN_WINDOWS = 30  # a carve-out must leave this many training windows


MIN_INTERVAL_WINDOWS = 10  # ... or this many, when intervals need the val part to calibrate


def resolve(config: Config, table: Table) -> Plan:
    """The plan of `config` on this data: every `auto` replaced, what was chosen and why, and
    the prior the network starts from (loaded here, once)."""
    data, model, training = config.data, config.model, config.training
    choices: list[Choice] = []

    def choose(key: str, value: Any, why: str) -> None:
        choices.append(Choice(key, value, why))

    forecast = data.task == "forecast"
    if data.time_format is None and table.time_format is not None:
        order = first_field(table.time_format)
        why = f"{order}-first, as the file's times read; kept for later files"
        choose("data.time_format", table.time_format, why)
    season = data.season
    if is_auto(season):
        season, why = infer_season(table)
        choose("data.season", season, why)
    horizon = data.horizon if forecast else 1
    series_rows = _series_train_rows(table, config)
    train_rows = int(np.median(series_rows))  # the median series'
    init, prior, no_prior = _choose_init(config, table, season, train_rows, choose)
    if prior is None and training.epochs == 0:
        raise LstmcliError(
            "training.epochs: 0 uses a prior as is, and no builtin prior fits this run "
            "(see model.init in the README); set model.init to a run folder or builtin:NAME"
        )
    if prior is not None:  # the network's shape, its lookback and normalization: the prior's
        for key, value in prior_settings(prior).items():
            section, name = key.split(".")
            if is_auto(getattr(getattr(config, section), name)):
                choose(key, value, f"the prior's ({init})")
    if is_auto(data.window_norm) and prior is None:
        norm = "standard" if forecast else "none"
        why = "each window in its own units" if forecast else "regression"
        choose("data.window_norm", norm, why)
    lookback = data.lookback if not is_auto(data.lookback) else _chosen(choices, "data.lookback")
    if is_auto(lookback):
        lookback, why = choose_lookback(season, horizon, train_rows, forecast)
        choose("data.lookback", lookback, why)
    quiet: dict[str, Any] = {}  # resolved without a word: the usual case needs none
    if is_auto(data.scale_by):
        if data.id_column is not None:
            choose("data.scale_by", "series", "each series in its own units (an id column)")
        else:
            quiet["data.scale_by"] = "global"
    if is_auto(data.min_history):
        if prior is not None:
            why = "a short history is padded up to the prior's lookback"
            choose("data.min_history", PRIOR_MIN_HISTORY, why)
        else:
            quiet["data.min_history"] = None
    if is_auto(model.init) and prior is None:
        quiet["model.init"] = "none"
    # Intervals are calibrated on a val part: for them, a carve may leave fewer windows. A
    # prior needs no training window: the val part (several origins) decides what is kept.
    needs_val = model.needs_val_part
    minimum = MIN_INTERVAL_WINDOWS if needs_val else MIN_TRAIN_WINDOWS
    if prior is not None:  # windows are padded and the training part may keep none: only
        minimum = -lookback  # horizon - 1 rows must be left before the val part
    split = data.split.model_dump()
    val = None
    if not has_val_part(split) and data.validation == "auto":
        purpose = "for early stopping and the best epoch"
        if prior is not None:
            purpose = "forecast origins that choose the epoch (0: the prior as is)"
        history = PRIOR_MIN_HISTORY if prior is not None else lookback
        shortest = None  # a prior's panel: a shorter val part rather than series skipped,
        if prior is not None and len(series_rows) > 1:  # for those one horizon leaves enough
            savable = series_rows[series_rows - horizon >= history]
            shortest = int(savable.min()) if len(savable) else None
        val = _carve_validation(split, train_rows, lookback, horizon, table, minimum, purpose,
                                min_rows=history, shortest=shortest)  # fmt: skip
    if val is not None:
        choose("data.split", *val)
    elif needs_val and not has_val_part(split) and not _calibrates_alone(prior, model):
        why = f"the {train_rows} training rows of {data.path} are too few to spare one"
        if data.validation == "none":
            why = "data.validation is none"
        elif prior is None:
            why += f" (it would leave fewer than {minimum} training windows)"
        if prior is not None:
            why += f", and {init} has no calibration of its own errors"
        elif no_prior and data.validation != "none":
            why += f", and no prior can calibrate them instead: {no_prior}"
        raise LstmcliError(no_val_part_for_intervals(model, why, data.validation))
    values = {c.key: c.value for c in choices} | quiet
    if val is None and not has_val_part(split):
        values["data.validation"] = "none"  # what ran: no val part was carved
    windows = _train_windows(table, edit_config(config, values, "auto"))
    size = model_size(windows)
    for name in ("hidden_size", "num_layers", "head"):
        if is_auto(getattr(model, name)) and prior is None:
            choose(f"model.{name}", size[name], f"{windows} training windows")
    whys = dict.fromkeys(("epochs", "ensemble", "batch_size"), f"{windows} training windows")
    if prior is not None:  # fine-tuning, the prior itself a candidate at every epoch
        val_part = val is not None or has_val_part(split)
        tuned = val_part and windows > 0
        # batches grow with a panel's windows as from scratch (32 for one short series)
        size |= {"epochs": FINE_TUNE_EPOCHS if tuned else 0, "ensemble": prior.spec.members,
                 "batch_size": size["batch_size"]}  # fmt: skip
        if tuned:
            whys["epochs"] = (f"at most, fine-tuning the prior on {windows} training windows; "
                              "the val part keeps the best epoch, 0: the prior as is")  # fmt: skip
        else:
            missing = "no training window" if windows == 0 else "no val part to choose an epoch"
            whys["epochs"] = f"the prior as is: {missing} to fine-tune with"
        whys["ensemble"] = f"the prior's members ({init})"
        whys["batch_size"] = f"fine-tuning batches for {windows} training windows"
    small_from_scratch = prior is None and windows < SMALL_DATA_WINDOWS
    scheduler = training.scheduler
    if is_auto(scheduler):
        scheduler = "cosine" if small_from_scratch else "none"
        if small_from_scratch:
            choose("training.scheduler", scheduler, f"a small network trained from scratch on "
                   f"{windows} windows: the rate decays to zero over the epochs")  # fmt: skip
        else:
            values["training.scheduler"] = scheduler  # as always: no word
    cycles = 1
    if scheduler == "cosine" and small_from_scratch:
        batch = size["batch_size"] if is_auto(training.batch_size) else training.batch_size
        most = size["epochs"]
        size["epochs"], whys["epochs"] = cosine_epochs(windows, batch, most)
        if is_auto(training.epochs):  # epochs a user sets are the most that run
            cycles = max(1, most // size["epochs"])
    for name in ("epochs", "ensemble", "batch_size"):
        if is_auto(getattr(training, name)):
            choose(f"training.{name}", size[name], whys[name])
    if is_auto(training.cycles):
        if cycles > 1:
            choose("training.cycles", cycles, f"up to {cycles} cycles of the schedule, "
                   f"{cycles * size['epochs']} epochs at most: another while the last still "
                   "lowers the val loss")  # fmt: skip
        else:
            values["training.cycles"] = 1
    if is_auto(model.lstm_rows):
        rows, why = choose_lstm_rows(lookback, horizon, model.linear_skip and forecast)
        if rows is None:
            values["model.lstm_rows"] = None  # the whole window, as always: no word
        else:
            choose("model.lstm_rows", rows, why)
    if is_auto(training.workers):
        ensemble = _resolved(training.ensemble, choices, "training.ensemble")
        layers = _resolved(model.num_layers, choices, "model.num_layers")
        workers, why = choose_workers(ensemble, training.threads, layers, model.dropout)
        values["training.workers"] = workers
        if workers > 1:
            choose("training.workers", workers, why)
    return Plan.of(edit_config(config, values | {c.key: c.value for c in choices}, "auto"),
                   choices, Init(init, prior))  # fmt: skip


SMALL_DATA_WINDOWS = 2000  # fewer training windows: small members, a fixed cosine schedule

SCHEDULE_STEPS = 800  # optimizer steps a small run's cosine schedule spans, at least

MIN_SCHEDULE_EPOCHS = 20


def cosine_epochs(windows: int, batch_size: int | None, most: int) -> tuple[int, str]:
    """Epochs of a small run's cosine schedule: enough for SCHEDULE_STEPS optimizer steps and
    MIN_SCHEDULE_EPOCHS, at most `most`. A short schedule, not only patience, bounds the run:
    with few windows the val loss is too noisy to wait on, and the patience epochs after a
    lucky low cost more than they bring (benchmarks/README.md, "A cosine schedule")."""
    per_epoch = -(-max(1, windows) // batch_size) if batch_size else 1
    epochs = min(most, max(MIN_SCHEDULE_EPOCHS, -(-SCHEDULE_STEPS // per_epoch)))
    steps = f"{per_epoch} step{'s' if per_epoch > 1 else ''} an epoch of {windows} windows"
    if epochs == most:
        return epochs, f"the most for the cosine schedule: {epochs * per_epoch} steps, {steps}"
    return epochs, f"the cosine schedule's span: {SCHEDULE_STEPS} steps or more, {steps}"


LSTM_ROWS = 104  # rows an LSTM reads by default, at most (two horizons when longer)


def choose_lstm_rows(lookback: int, horizon: int, skip: bool) -> tuple[int | None, str]:
    """None (the whole window) up to LSTM_ROWS rows or two horizons; beyond, those last rows,
    since a recurrence's cost grows with its length and a long season's lags reach the
    forecast through the linear skip over the whole window (without a skip: all rows)."""
    rows = max(LSTM_ROWS, 2 * horizon)
    if not skip or lookback <= rows:
        return None, "the whole window"
    return rows, (
        f"the last {rows} of the {lookback}-row window; the linear skip reads them all "
        f"({'two horizons' if rows > LSTM_ROWS else f'at most {LSTM_ROWS} rows'} through the LSTM)"
    )


def choose_workers(
    ensemble: int, threads: int | None, num_layers: int, dropout: float
) -> tuple[int, str]:
    """Members trained at once: one per CPU thread of the run (training.threads, else torch's
    current count), up to the ensemble's size. One when training draws random numbers
    (dropout between LSTM layers: one global generator, so threads would make it depend on
    timing) or under torchrun (each rank trains every member in step with the others)."""
    import torch

    from lstmcli.run.distributed import from_environment

    if ensemble <= 1:
        return 1, "one network"
    if num_layers > 1 and dropout > 0:
        return 1, "dropout draws random numbers"
    if from_environment().world > 1:
        return 1, "torchrun"
    budget = threads or torch.get_num_threads()
    workers = max(1, min(ensemble, budget))
    return workers, f"{ensemble} members on {budget} CPU threads"


def _calibrates_alone(prior: Checkpoint | None, model: ModelConfig) -> bool:
    """Whether the prior's own errors can calibrate conformal intervals without a val part."""
    return (
        prior is not None
        and not model.interval_method.from_quantiles
        and prior_errors(prior) is not None
    )


PRIOR_MIN_HISTORY = 3  # real rows a window needs when the model starts from a prior


FINE_TUNE_EPOCHS = 30  # at most, fine-tuning a prior (the val part picks the epoch, 0 included)


def _chosen(choices: list[Choice], key: str) -> Any:
    return next((c.value for c in choices if c.key == key), AUTO)


def _resolved(value: Any, choices: list[Choice], key: str) -> Any:
    """A config value, or what was chosen for it when it is `auto`."""
    return _chosen(choices, key) if is_auto(value) else value


def _choose_init(
    config: Config, table: Table, season: int | None, train_rows: int, choose: Any
) -> tuple[str, Checkpoint | None, str]:
    """`model.init` as it runs, the checkpoint it names (None: from scratch) and, without
    one, why not (for messages); `auto` takes the first builtin prior of the season that
    fits the run, when the data is short."""
    init = config.model.init
    trial = edit_config(config, {"data.season": season}, "auto")
    if init == "none":
        return init, None, "model.init is none"
    if init != "auto":
        prior = load_prior(init)
        check_fits(prior, trial, init)
        return init, prior, ""
    lookback = config.data.lookback if isinstance(config.data.lookback, int) else None
    if lookback is not None and lookback > train_rows:  # train's error says so
        return "none", None, f"data.lookback {lookback} is longer than the training part"

    def scratch(why: str) -> tuple[str, None, str]:
        choose("model.init", "none", f"{why}: train from scratch")
        return "none", None, why

    names = auto_priors(season, yearly=_time_unit(table) in YEARLY)
    if not names:
        kind = f"a season of {season} rows" if season else "series without a season"
        return scratch(f"lstmcli has no builtin prior for {kind}")
    missed = []  # the priors that do not fit: the nearest is named (fewest problems, then
    for name in names:  # a horizon that covers the run's, then the closest horizon)
        prior = load_prior(name)
        if not (problems := mismatches(prior, trial)):
            break
        steps, horizon = prior.spec.steps, trial.data.horizon
        missed.append(((len(problems), steps < horizon, abs(steps - horizon)), name, problems))
    else:
        _, name, problems = min(missed)
        return scratch(f"{name} needs {'; '.join(problems)}")
    lookback = lookback or prior.config.data.lookback
    per_series = _series_windows(table, edit_config(trial, {"data.lookback": lookback}, "auto"))
    windows = int(np.median(per_series))
    panel = len(per_series) > 1
    whose = "the median series' training part" if panel else "the training part"
    plural = "window" if windows == 1 else "windows"
    counted = f"{windows} {plural} of {lookback} rows in {whose}"  # the prior's lookback
    if windows >= AUTO_MAX_WINDOWS:
        return scratch(f"{counted}, at least {AUTO_MAX_WINDOWS}")
    why = f"{counted}, under {AUTO_MAX_WINDOWS}"
    choose("model.init", name, f"{why}: start from the prior")
    return name, prior, ""


YEARLY = ("YS", "YE", "Y", "A", "AS", "BYS", "BYE")  # pandas' names of yearly offsets


def infer_season(table: Table) -> tuple[int | None, str]:
    """Rows per season from the time column's frequency (of the longest series)."""
    if table.time is None:
        return None, "no time column"
    time = _longest_time(table)
    if not pd.api.types.is_datetime64_any_dtype(time):
        return None, "numeric times have no calendar season"
    freq = frequency(time)
    if freq is None:
        return None, "irregular times"
    offset = pd.tseries.frequencies.to_offset(freq)
    name = offset.rule_code.split("-")[0]
    if name in YEARLY:
        return None, f"yearly times ({freq})"
    if name in SEASONS and offset.n == 1:
        return SEASONS[name], f"{_describe(name)} times ({freq}): one {_cycle(name)}"
    try:
        step = pd.Timedelta(offset)
    except (ValueError, TypeError):
        return None, f"no season for {freq} times"
    day = pd.Timedelta(days=1)
    if step < day and day % step == pd.Timedelta(0) and 1 < day // step <= MAX_SEASON:
        return int(day // step), f"{freq} steps: one day"
    return None, f"no season for {freq} times"


def _longest_time(table: Table) -> pd.Series:
    longest = int(np.argmax(table.lengths))
    return table.time.iloc[table.offsets[longest] : table.offsets[longest + 1]]


def _time_unit(table: Table) -> str | None:
    """The pandas name of the time column's frequency without its anchor ("YS", "MS", "D"),
    "Y" for whole numbers counting years (1960, 1961, ...: a `year` column), None without
    regular times."""
    if table.time is None:
        return None
    time = _longest_time(table)
    if pd.api.types.is_numeric_dtype(time):
        values = time.to_numpy(dtype=float)
        steps = np.diff(values)
        # a missing year is a gap, as for dates, not another unit
        years = len(values) > 1 and (values % 1 == 0).all() and (steps >= 1).all()
        years = years and np.median(steps) == 1
        return "Y" if years and 1000 <= values.min() and values.max() <= 2999 else None
    if not pd.api.types.is_datetime64_any_dtype(time):
        return None
    freq = frequency(time)
    return None if freq is None else pd.tseries.frequencies.to_offset(freq).rule_code.split("-")[0]


def _describe(name: str) -> str:
    return {"W": "weekly", "D": "daily", "B": "business-day", "QS": "quarterly", "QE": "quarterly",
            "Q": "quarterly"}.get(name, "monthly")  # fmt: skip


def _cycle(name: str) -> str:
    return {"D": "week", "B": "week"}.get(name, "year")


def choose_lookback(
    season: int | None, horizon: int, train_rows: int, forecast: bool
) -> tuple[int, str]:
    """Two seasons (or two horizons, whichever is longer, at least 8 rows), as long as the
    training part keeps enough windows: at most a third of its rows less the horizon (a
    window's targets need those rows after it)."""
    wanted = max(2 * (season or 0), 2 * horizon, 8)
    why = "two seasons" if season and 2 * season >= 2 * horizon else "two horizons"
    if wanted == 8 and why == "two horizons" and 2 * horizon < 8:
        why = "the shortest lookback used"
    ahead = horizon if forecast else 0
    room = max(1, (train_rows - ahead) // 3)
    if wanted > room:
        rows = f"({train_rows} - {ahead}) / 3" if ahead else f"{train_rows} / 3"
        cap = "a third of the training rows less the horizon" if ahead else "a third of them"
        return room, f"{why} would be {wanted} rows; at most {cap}, {rows} = {room}"
    return wanted, why


def model_size(windows: int) -> dict[str, Any]:
    """Network, epochs, ensemble and batch from the number of training windows: small data
    gets small, quick members and several of them, since averaging steadies what a small
    network learns from few windows."""
    if windows < SMALL_DATA_WINDOWS:
        return {"hidden_size": 32, "num_layers": 1, "head": [64], "epochs": 150, "ensemble": 5,
                "batch_size": 32}  # fmt: skip
    if windows < 20000:
        return {"hidden_size": 64, "num_layers": 1, "head": [64], "epochs": 100, "ensemble": 3,
                "batch_size": 64}  # fmt: skip
    return {"hidden_size": 64, "num_layers": 2, "head": [128], "epochs": 50, "ensemble": 1,
            "batch_size": 128}  # fmt: skip


def _series_train_rows(table: Table, config: Config) -> np.ndarray:
    """Training rows of each series (before the val part, if any, and the test part)."""
    split = config.data.split
    if isinstance(split, SplitFractions):
        return np.floor(table.lengths * split.train).astype(np.int64)
    # a date split: rows before the first cut
    starts, stops = split_rows(table, config.data.model_copy(update={"lookback": 1})).bounds[
        "train"
    ]
    return stops - starts


def _carve_validation(
    split: dict,
    train_rows: int,
    lookback: int,
    horizon: int,
    table: Table,
    minimum: int = MIN_TRAIN_WINDOWS,
    purpose: str = "for early stopping and the best epoch",
    min_rows: int = 1,
    shortest: int | None = None,
) -> tuple[dict, str] | None:
    """A val part from the end of the training part of a split without one, when the
    training part keeps at least `minimum` windows and `min_rows` rows (a val window's real
    history lies before it); None when there is nothing to carve. With `shortest` (the
    shortest series' training rows) the val part shrinks, down to one horizon, so that it
    keeps `min_rows` too."""
    val_rows = max(2 * horizon, int(round(VAL_SHARE * train_rows)))
    if shortest is not None and shortest - val_rows < min_rows:
        val_rows = max(horizon, shortest - min_rows)
    left = train_rows - val_rows - lookback - horizon + 1
    if left < minimum or train_rows - val_rows < min_rows:
        return None
    why = f"the last {val_rows} training rows, {purpose}"
    if "train" in split:
        share = split["train"] * val_rows / max(train_rows, 1)
        new = {"train": split["train"] - share, "val": share, "test": split["test"]}
        return {k: round(v, 6) for k, v in new.items()}, why
    dates = SplitDates.model_validate(split)
    longest = int(np.argmax(table.lengths))
    time = table.time.iloc[table.offsets[longest] : table.offsets[longest + 1]]
    before = time[time < _as_time(dates.test_start, time)]
    if len(before) <= val_rows:
        return None
    start = before.iloc[len(before) - val_rows]
    return {"val_start": _time_text(start), "test_start": dates.test_start}, why


def _time_text(at: Any) -> str | float:
    """A time as a split date is written: the date alone at midnight (2019-01-01, as users
    write dates), else date and time (2020-01-15 08:00:00, with its offset where zoned)."""
    if not isinstance(at, pd.Timestamp):
        return float(at)
    return at.strftime("%Y-%m-%d") if at == at.normalize() else str(at)


def _as_time(value: str | float, time: pd.Series) -> Any:
    if pd.api.types.is_numeric_dtype(time):
        return float(value)
    at = pd.Timestamp(value)
    return at.tz_localize(time.dt.tz) if time.dt.tz and at.tz is None else at


def _train_windows(table: Table, config: Config) -> int:
    return int(len(split_rows(table, config.data).anchors["train"]))


def _series_windows(table: Table, config: Config) -> np.ndarray:
    """Training windows of each series: a panel of many short series is short data."""
    anchors = split_rows(table, config.data).anchors["train"]
    return np.bincount(table.series_of(anchors), minlength=table.n_series)
