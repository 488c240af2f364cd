"""Fitting a forecaster on prepared data: the network(s), then the blend, the interval
calibration and the val part's scores, each chosen on the validation windows only.

Fitting writes nothing: it emits events (run/events.py). `train` hands them to its run folder
(model.pt and last.pt as training goes, MLflow's losses); a tune trial runs the same stages
with a pruning listener and reads the validation scores.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd
import torch

from lstmcli.config.plan import Plan, PlannedTraining
from lstmcli.config.schema import (
    Config,
    DataConfig,
    TrainingConfig,
    no_val_part_for_intervals,
)
from lstmcli.data.training_data import TrainingData
from lstmcli.data.windows import WindowSet
from lstmcli.errors import LstmcliError, TrainingInterrupted, Warn, ignore_warning
from lstmcli.model.blend import Blend, choose_blend
from lstmcli.model.checkpoint import Checkpoint
from lstmcli.model.classical import combined_share, seasonal_history, too_short_for_the_season
from lstmcli.model.fitted import FittedForecaster
from lstmcli.model.forecaster import Forecaster
from lstmcli.model.intervals import METHODS, unsupported_levels
from lstmcli.model.network import Ensemble, member
from lstmcli.model.spec import ModelSpec
from lstmcli.run.distributed import SINGLE, Distributed
from lstmcli.run.events import CheckpointDue, EpochEnded, ForecasterReady, Listener, ignore_event
from lstmcli.run.loop import EpochStats, TrainResult, TrainState, fit
from lstmcli.use.backtest import actual_values
from lstmcli.use.metrics import report


@dataclass(frozen=True)
class Fitted:
    """A trained forecaster before its test part is scored."""

    forecaster: Forecaster
    training: TrainResult
    history: pd.DataFrame
    blend: dict | None  # what the val part chose (metrics.json's `blend`), None: not chosen
    validation: dict | None  # the val part's scores in original units (see validation_scores)


def fit_forecaster(
    plan: Plan,
    data: TrainingData,
    windows: dict[str, WindowSet],
    device: torch.device,
    *,
    events: Listener = ignore_event,
    snapshots: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    resume: Checkpoint | None = None,
    dist: Distributed = SINGLE,
    warn: Warn = ignore_warning,
) -> Fitted:
    """Train, blend, calibrate and score the val part, in that order, as `plan` says; writes
    nothing. `events` hears every epoch, with `snapshots` the members' resumable states
    as training goes (CheckpointDue: what last.pt and model.pt hold; a snapshot copies the
    weights and optimizer, so only a fit that is recorded asks for them) and the fitted
    forecaster at the end (ForecasterReady)."""
    # The network(s): one, or an ensemble of members (several at once, training.workers);
    # resumable and saved as training goes.
    with threads_of(plan.config):
        return _fit(plan, data, windows, device, events, snapshots, should_stop, resume, dist,
                    warn)  # fmt: skip


CLASSICAL = "classical"  # what a network combines with (classical.KINDS)
LAST_SEASON = "last_season"  # seasonal naive from the history (classical.KINDS)
# A network trained from scratch is combined with the classical forecast on series up to this
# many rows each: AutoETS and AutoTheta are fitted a few times per series (the fit grid of
# classical.py), and a fit on longer series takes seconds (4 s for 4,000 hourly rows).
CLASSICAL_ROWS = 2_000


def threads_of(config: Config) -> contextlib.AbstractContextManager:
    """training.threads for a while (then torch's count as it was), or nothing to change."""
    threads = config.training.threads
    return cpu_threads(threads) if threads is not None else contextlib.nullcontext()


def _fit(
    plan: Plan, data: TrainingData, windows: dict[str, WindowSet], device: torch.device,
    events: Listener, snapshots: bool, should_stop: Callable[[], bool],
    resume: Checkpoint | None, dist: Distributed, warn: Warn,
) -> Fitted:  # fmt: skip
    config, init = plan.config, plan.init
    spec = ModelSpec.for_config(config.data, config.model)
    # fine-tuned from the prior's weights (a member not yet started when resuming)
    start = init.weights(spec)
    network, training, history = train_members(
        spec, windows, config.training, device, events, snapshots,
        should_stop, resume, dist, start=start,
    )  # fmt: skip
    spec = replace(spec, members=len(network.members) if isinstance(network, Ensemble) else 1)
    data_cfg, model_cfg = config.data, config.model
    forecaster = Forecaster(spec, network, data.input_scaler, data.target_scaler,
                            adaptive=model_cfg.adaptive)  # fmt: skip
    val = windows.get("val")
    has_val = val is not None and len(val) > 0
    val_rows = data.window_series("val") if has_val else None

    # The blend with the better naive forecast, where the val part says it helps.
    blend = None
    blendable = data_cfg.task == "forecast" and not spec.quantile_levels
    with_classical = combines_classical(spec, init.from_model, int(data.table.lengths.max()))
    origins, origin_rows = val, val_rows
    honest = True  # the network never trained on the origins' windows
    if with_classical and not has_val and len(windows["train"]):
        # No val part: the training part's last windows (each series' last two horizons, as
        # a val part would hold) are honest origins for the runaway guard's history
        # forecasts, and for a prior used as is (it never saw them). A network trained on
        # them looks better there than it is: it is judged only within the combination (a
        # runaway even so), never chosen alone.
        honest = training.epochs_run == 0
        series = data.window_series("train")
        latest = latest_windows(series, 2 * spec.steps, len(windows["train"]))
        origins = windows["train"].subset(latest)
        origin_rows = series[latest] if series is not None else None
    judged = origins is not None and len(origins) > 0
    if model_cfg.blend == "auto" and judged and blendable:
        network.eval()
        batches = lambda: (batch for _, batch in forecaster.batches(origins))  # noqa: E731
        # forecasts of each origin's history: the classical one, and seasonal naive where
        # the window cannot hold a season
        kinds = [CLASSICAL] if with_classical else []
        if window_under_season(data_cfg, spec):
            kinds.append(LAST_SEASON)
        others = {}
        if kinds:
            histories = origins.histories(np.arange(len(origins)), spec.target_columns[0])
            for kind in kinds:
                others[kind] = forecaster.history_forecasts(
                    histories, origin_rows, data_cfg.season, kind
                )
        # thirds unless a runaway, or the val part's choice where it can tell a good network
        n_series = 1 if origin_rows is None else len(np.unique(origin_rows))
        thirds = with_classical and (
            init.from_model or not long_val(len(origins), n_series, spec.steps)
        )
        chosen, scores = choose_blend(
            network, batches, data_cfg.season, spec.target_columns, others,
            combine=CLASSICAL if thirds else None, inner=honest and not init.from_model,
            network_alone=honest,
        )  # fmt: skip
        part = "val" if origins is val else "train"
        forecaster, blend = forecaster.with_blend(chosen), chosen.report(scores, part)
    elif model_cfg.blend == "auto" and blendable and with_classical:
        # no origin at all: the combination
        chosen = Blend(combined_share(CLASSICAL), CLASSICAL, data_cfg.season)
        forecaster, blend = forecaster.with_blend(chosen), chosen.report({}, None)
    if forecaster.reads_history and forecaster.blend.kind == CLASSICAL:
        warn_short_seasonal_history(data, data_cfg.season, warn)

    # Interval bounds, calibrated on the val part's origins (pooled with a prior's own
    # errors when starting from one; those alone when there is no val window).
    if model_cfg.levels:
        method = METHODS[model_cfg.intervals]
        errors = init.errors() if not method.from_quantiles else None
        outputs = actual = None
        if model_cfg.needs_val_part:
            if has_val:
                outputs, actual = forecaster.scaled_outputs(val, val_rows)
            elif errors is None:
                raise LstmcliError(no_val_part_for_intervals(model_cfg, "this split has none"))
        calibration = method.fit(
            model_cfg.levels, spec.n_targets, outputs, actual, errors, steps=spec.steps
        )
        for problem in unsupported_levels(calibration, spec.steps):
            warn(problem)
        forecaster = forecaster.with_calibration(calibration)
    events(ForecasterReady(forecaster))

    validation = validation_scores(forecaster, data, val, config, training) if has_val else None
    return Fitted(forecaster, training, history, blend, validation)


def combines_classical(spec: ModelSpec, from_model: bool, longest: int) -> bool:
    """Whether the network is combined with the classical forecast of its target's history:
    one target, and a network from a prior, or from scratch without features (the classical
    models see no feature) on series short enough to fit them (CLASSICAL_ROWS)."""
    univariate = spec.n_inputs == 1 and longest <= CLASSICAL_ROWS
    return spec.n_targets == 1 and (from_model or univariate)


def warn_short_seasonal_history(data: TrainingData, season: int | None, warn: Warn) -> None:
    """A combination with the classical forecast reads each series' history: at a test
    origin with fewer rows than that forecast needs to follow the season it ignores the
    season, and the runaway guard, judging on the still shorter histories before, cannot
    tell. Say so."""
    need = seasonal_history(CLASSICAL, season)
    anchors = data.split.anchors.get("test")
    if need is None or anchors is None or not len(anchors):
        return
    rows = data.table.rows_up_to(anchors)  # each test origin's history
    short = int((rows < need).sum())
    if short:
        warn(
            f"{short} of {len(rows)} test origins have fewer than {need} rows of history: "
            f"{too_short_for_the_season(CLASSICAL, season)}; compare the seasonal naive "
            "baseline in the results"
        )


def window_under_season(data: DataConfig, spec: ModelSpec) -> bool:
    """Whether the window is shorter than the season (a short series' lookback is capped at a
    third of its training rows), so that seasonal naive, a candidate of the val part's
    choice and the runaway guard, is read off each origin's history (`last_season`)."""
    if not isinstance(data.lookback, int) or not data.season:
        return False
    return data.lookback < data.season and spec.n_targets == 1


def long_val(origins: int, n_series: int, steps: int) -> bool:
    """Whether a val part of `origins` windows over `n_series` series holds more than two
    horizons of origins per series (its rows span three horizons or more; one carved by
    `auto` spans two, or a tenth of the training rows where that is more): enough to choose
    a scratch network's blend among the weights, where a shorter one picks worse than the
    combination in thirds (measured on M3 and synthetic series, benchmarks/README.md)."""
    return origins > 2 * steps * n_series


def describe_blend(
    spec: ModelSpec,
    from_model: bool,
    longest: int,
    val_origins: int,
    n_series: int,
    short_window: bool = False,
) -> str:
    """What `model.blend: auto` will combine the network with, by the rules `_fit` applies
    (for `lstmcli check`; `short_window`: see window_under_season)."""
    text = _blend_rule(spec, from_model, longest, val_origins, n_series)
    judged = val_origins or combines_classical(spec, from_model, longest)  # or the train part
    if short_window and judged:
        why = "the window is shorter than the season"
        return f"{text}; seasonal naive read off the history ({why})"
    return text


def _blend_rule(
    spec: ModelSpec, from_model: bool, longest: int, val_origins: int, n_series: int
) -> str:
    if not combines_classical(spec, from_model, longest):
        if not val_origins:
            return "none: the network alone (no val part to choose a naive blend on)"
        why = ("several targets" if spec.n_targets > 1 else "features" if spec.n_inputs > 1
               else f"series over {CLASSICAL_ROWS:,} rows")  # fmt: skip
        return (f"naive or seasonal naive, the network's share chosen on the val part "
                f"(no classical forecast: {why})")  # fmt: skip
    thirds = "AutoETS and AutoTheta (statsforecast), in thirds with the network"
    guard = "unless one forecast alone is a runaway's margin better on the val part"
    if from_model and not val_origins:
        return (f"{thirds}, {guard.replace('the val part', 'the training part')} (no val "
                "part; the network alone only for a prior used as is)")  # fmt: skip
    if from_model:
        return f"{thirds}, {guard}"
    if not val_origins:
        return (f"{thirds}, unless naive, seasonal naive or the classical forecast alone is a "
                "runaway's margin better on the training part's last origins (no val part; "
                "the network, trained on them, is judged only within the combination)")  # fmt: skip
    if not long_val(val_origins, n_series, spec.steps):
        return f"{thirds} (its third first blended with naive as the val part chooses), {guard}"
    return (f"chosen on the val part ({val_origins} origins): naive, seasonal naive or AutoETS "
            f"and AutoTheta, and the network's share")  # fmt: skip


def validation_scores(
    forecaster: Forecaster,
    data: TrainingData,
    val: WindowSet,
    config: Config,
    training: TrainResult,
) -> dict:
    """The val part's scores: the best epoch's loss (scaled units, as early stopping saw it)
    and the final forecaster's RMSE, MAE and MASE in original units (after the blend; the
    median of a quantile model). What `tune` selects on and metrics.json reports as
    `validation`."""
    anchors = data.split.anchors["val"]
    series = np.arange(data.table.n_series) if data.input_scaler.per_series else None
    model = fitted_model(config, data, val.anchors.device, forecaster)
    predicted = model.backtest(data.table, anchors, series).points
    actual = actual_values(data.table, anchors, config.data)
    scores = report(actual, predicted, data.table.target_columns, data.mase_scales)
    best_loss = training.state.best_loss
    return {
        "loss": best_loss if np.isfinite(best_loss) else None,
        "rmse": scores.get("rmse"),  # in a target's units: one target only
        "mae": scores.get("mae"),
        "mase": scores.get("mase"),
        "windows": int(len(anchors)),
    }


def train_members(
    spec: ModelSpec,
    windows: dict[str, WindowSet],
    cfg: TrainingConfig,
    device: torch.device,
    events: Listener,
    snapshots: bool,
    should_stop: Callable[[], bool],
    resume: Checkpoint | None,
    dist: Distributed = SINGLE,
    start: list[dict] | None = None,
) -> tuple[torch.nn.Module, TrainResult, pd.DataFrame]:
    """`cfg.ensemble` networks from seeds seed, seed+1, ..., `cfg.workers` of them training
    at once (each in its own thread with its share of the CPU threads: a small network's
    kernels use one core well, and two cores poorly), each from its saved state when
    resuming. A member's training depends on nothing but its own seed, weights and window
    order, so the result is the same whatever the number of workers and whichever member
    finishes first. After every `checkpoint_every` epochs of any member and at the end (also
    when interrupted), with `snapshots`, `events` hears every started member's state, which
    last.pt holds, so `--resume` continues
    exactly where training stopped: finished members are kept, running ones continue
    mid-epoch, and the result equals an uninterrupted run. A stop request stops every running
    member after its current batch; members not yet started wait for the resume. Under
    torchrun every rank trains each member on its share of each batch (see train.fit), one
    member at a time.

    With `start` (a prior's weights, one dict per member of the prior) member i starts from
    start[i mod len(start)] instead of random weights, and those weights are a candidate
    like every epoch: the val part keeps them when no epoch of fine-tuning beats them (and
    with training.epochs 0 or no training window they are the model as is).

    Returns the network (one, or the Ensemble of the members with at least one epoch), the
    last started member's result (interrupted when any was) and the history (`member` column
    for an ensemble)."""
    saved = member_states(resume.train_state) if resume is not None else []
    workers = members_at_once(cfg, dist)
    per_member = member_threads(cfg, workers)
    latest: list[dict | None] = [s.to_dict() for s in saved[: cfg.ensemble]]
    latest += [None] * (cfg.ensemble - len(latest))  # each member's last consistent state
    trained: list[torch.nn.Module | None] = [None] * cfg.ensemble  # each member's network
    lock, halt = threading.Lock(), threading.Event()

    def build(index: int) -> torch.nn.Module:
        torch.manual_seed(cfg.seed + index)  # its initial weights (and its dropout, alone)
        network = member(spec).to(device)
        if index < len(saved):
            network.load_state_dict(saved[index].last_weights)
        elif start is not None:
            network.load_state_dict(start[index % len(start)])
        return network

    def stop() -> bool:  # one member's stop request stops them all
        if not halt.is_set() and should_stop():
            halt.set()
        return halt.is_set()

    def keep(index: int, state: TrainState) -> None:
        with lock:
            latest[index] = state.to_dict()  # in the member's own thread: consistent
            if started := _started(latest):
                events(CheckpointDue(spec, started))

    def train(index: int, network: torch.nn.Module | None) -> TrainResult | None:
        if halt.is_set():
            return None  # stopped before this member started
        if workers > 1:  # this thread's own OpenMP count (torch's count stays per_member)
            torch.set_num_threads(per_member)
        network = network or build(index)
        report = lambda stats: events(EpochEnded(replace(stats, member=index + 1)))  # noqa: E731
        try:
            result = fit(
                network, windows["train"], windows.get("val"),
                cfg.model_copy(update={"seed": cfg.seed + index}), report, stop,
                state=saved[index] if index < len(saved) else None,
                on_checkpoint=(lambda state: keep(index, state)) if snapshots else None,
                dist=dist, start_is_candidate=start is not None,
            )  # fmt: skip
        except BaseException:
            halt.set()  # the others stop after their batch; the error goes to the caller
            raise
        with lock:
            latest[index] = result.state.to_dict()
        trained[index] = network
        return result

    if workers == 1:
        results = [train(index, None) for index in range(cfg.ensemble)]
    else:  # built here, in order: the global generator is not shared between threads
        networks = [build(index) for index in range(cfg.ensemble)]
        with cpu_threads(per_member), ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(train, i, net) for i, net in enumerate(networks)]
            try:
                results = [future.result() for future in futures]
            finally:
                halt.set()  # a second Ctrl-C or an error: no member goes on alone
    if snapshots and (saved_states := _started(latest)):
        events(CheckpointDue(spec, saved_states))
    started = [(i, r) for i, r in enumerate(results) if r is not None]
    networks, histories = [], []
    for index, result in started:
        if result.epochs_run:
            rows = pd.DataFrame([asdict(s) for s in result.history]).drop(columns="member")
            histories.append(rows.assign(member=index + 1) if cfg.ensemble > 1 else rows)
        if result.epochs_run or result.state.best_weights is not None:
            networks.append(trained[index])
    if not networks:
        raise TrainingInterrupted("interrupted before the first epoch finished")
    result = started[-1][1]
    result.interrupted = any(r.interrupted for _, r in started)
    network = networks[0] if len(networks) == 1 else Ensemble(networks)
    if not histories:  # the starting weights kept, no epoch run: an empty history.csv
        columns = [f.name for f in fields(EpochStats) if f.name != "member"]
        histories = [pd.DataFrame(columns=columns + (["member"] if cfg.ensemble > 1 else []))]
    return network, result, pd.concat(histories, ignore_index=True)


def members_at_once(cfg: PlannedTraining, dist: Distributed) -> int:
    """training.workers, at most the ensemble; one under torchrun (the ranks train each
    member's batches in step)."""
    return 1 if dist.world > 1 else max(1, min(cfg.workers, cfg.ensemble))


def latest_windows(series: np.ndarray | None, count: int, total: int) -> np.ndarray:
    """The positions of each series' last `count` windows (windows are in series, then time
    order; `series` each window's, None for one series)."""
    if series is None:
        return np.arange(max(0, total - count), total)
    from_end = pd.Series(series[::-1]).groupby(series[::-1]).cumcount().to_numpy()[::-1]
    return np.flatnonzero(from_end < count)


def member_threads(cfg: TrainingConfig, workers: int) -> int:
    """CPU threads each member computes with: the run's threads (training.threads, else
    torch's count) shared by the members training at once. The count decides how float
    sums are split, so a run's last digits depend on it (manifest.json records it), never on
    timing: it is set before the members start and in each member's thread, and nothing
    changes it while they run."""
    return max(1, (cfg.threads or torch.get_num_threads()) // max(1, workers))


@contextlib.contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """torch's CPU threads set to `count` for a while, then back."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _started(latest: list[dict | None]) -> list[dict]:
    """The states of the members started in order (the first unsaved member ends the list:
    last.pt lists members by position, and a member left out restarts from its seed)."""
    out = []
    for state in latest:
        if state is None:
            break
        out.append(state)
    return out


def member_states(train_state: dict) -> list[TrainState]:
    """The states of a last.pt's members: one network's, or an ensemble's one per member."""
    plain = train_state["members"] if "members" in train_state else [train_state]
    return [TrainState.from_dict(state) for state in plain]


def members_of(spec: ModelSpec, weights: list[dict]) -> tuple[ModelSpec, dict]:
    """The spec and weights of a model made of these members' weights (one: the network
    itself; several: an Ensemble)."""
    if len(weights) == 1 and spec.members == 1:
        return replace(spec, members=1), weights[0]
    stacked = {
        f"members.{k}.{name}": value for k, w in enumerate(weights) for name, value in w.items()
    }
    return replace(spec, members=len(weights)), stacked


def run_checkpoint(
    config: Config, data: TrainingData, device: torch.device | str, spec: ModelSpec,
    weights: dict, calibration: dict | None = None, state: dict | None = None,
) -> Checkpoint:  # fmt: skip
    """The one place a run's checkpoint is assembled (model.pt, last.pt, test scoring)."""
    table = data.table
    return Checkpoint(
        config=config,
        spec=spec,
        state_dict=weights,
        input_columns=table.input_columns,
        target_columns=table.target_columns,
        input_scaler=data.input_scaler,
        target_scaler=data.target_scaler,
        mase_scales=data.mase_scales,
        trained_on=str(device),
        time_freq=data.time_freq,
        time_step=data.time_step,
        time_zone=data.time_zone,
        data_rows=len(table.inputs),
        train_state=state,
        series_ids=table.id_labels() if table.ids is not None else None,
        series_mase_scales=_plain(data.series_mase_scales),
        calibration=calibration,
        baseline_intervals=data.baseline_intervals,
    )


def forecaster_checkpoint(
    config: Config, data: TrainingData, device: torch.device | str, forecaster: Forecaster,
    weights: bool = True,
) -> Checkpoint:  # fmt: skip
    """model.pt of a fitted forecaster: its network's spec and weights (or none, for a
    checkpoint that only describes it), its calibration and its combination."""
    calibration, blend = forecaster.calibration, forecaster.blend
    checkpoint = run_checkpoint(
        config, data, device, forecaster.spec,
        forecaster.network.state_dict() if weights else {},
        calibration.to_dict() if calibration is not None else None,
    )  # fmt: skip
    checkpoint.blend = blend.to_dict() if blend is not None else None
    return checkpoint


def fitted_model(
    config: Config, data: TrainingData, device: torch.device | str, forecaster: Forecaster
) -> FittedForecaster:
    """A freshly fitted forecaster as model.pt will hold it, rows to frames (test scoring)."""
    checkpoint = forecaster_checkpoint(config, data, device, forecaster, weights=False)
    return checkpoint.fitted(device, forecaster)


def _plain(values: np.ndarray | None) -> list | None:
    """An array as nested lists with None for NaN, for the checkpoint."""
    if values is None:
        return None
    return [[None if np.isnan(v) else float(v) for v in row] for row in values]
