"""One trial: the trial's config, fitted as `train` fits it, scored on the val part.

A trial runs train's own stages (resolve, prepare, fit; see run/fitting.py) without the ones
that write; the data is read and checked once per study, and the prepared data and windows
are reused while no data key changes.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lstmcli.config.io import config_from_yaml, config_to_yaml
from lstmcli.config.plan import Plan
from lstmcli.config.resolve import resolve
from lstmcli.data.table import Table
from lstmcli.data.training_data import TrainingData, make_windows, plan_data
from lstmcli.errors import LstmcliError, TrainingInterrupted, Warn, ignore_warning
from lstmcli.run.device import resolve_device
from lstmcli.run.events import ignore_event, on_epochs
from lstmcli.run.fitting import fit_forecaster
from lstmcli.run.loop import EpochStats
from lstmcli.run.tracking import log_trial
from lstmcli.tune.plan import StudyPlan, fold_config, trial_config
from lstmcli.tune.study import make_sampler, one_line, require_optuna, suggest, surplus

if TYPE_CHECKING:
    import optuna


class TrialFailed(Exception):
    """A trial that cannot run (its config or data says why); the study goes on."""


class TrialSurplus(Exception):
    """The study already has its trials: this one is not run (see `study.surplus`)."""


class TrialStopped(Exception):
    """Ctrl-C or SIGTERM arrived during the trial."""


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
        plan = self.plan
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        if surplus(trial.study, trial.number, plan.trials):
            trial.set_user_attr("surplus", True)
            raise TrialSurplus
        if plan.config.tune.sampler != "grid":
            # Each trial number draws from its own seed: numbers are unique in a study, so
            # processes sharing one never propose the same values, and one alone reproduces.
            trial.study.sampler = make_sampler(plan, plan.config.tune.seed + trial.number)
        params = suggest(trial, plan.space)
        history: list[EpochStats] = []
        try:
            value = self._run(trial, params, history)
        except optuna.TrialPruned:
            self._track(trial, params, "pruned", None, history)
            raise
        except TrialFailed:
            self._track(trial, params, "failed", None, history)
            raise
        self._track(trial, params, "complete", value, history)
        return value

    def _run(self, trial: optuna.Trial, params: dict, history: list[EpochStats]) -> float:
        """The trial's config fitted on each validation cut; the mean of their scores."""
        optuna = require_optuna()
        plan = self.plan
        started = time.perf_counter()
        seen = {"epochs": 0}

        def on_epoch(stats: EpochStats) -> None:
            seen["epochs"] += 1
            if stats.member == 1:
                history.append(stats)
            if plan.prune and stats.member == 1 and stats.val_loss is not None:
                trial.report(stats.val_loss, stats.epoch)  # the pruner compares first members
                if trial.should_prune():
                    trial.set_user_attr("epochs", seen["epochs"])
                    trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
                    raise optuna.TrialPruned

        values, configs, epochs = [], [], 0
        try:
            config = trial_config(plan.config, params)
            for fold in range(plan.folds):  # fold 0: the split itself; then earlier val parts
                fold_plan = resolve(fold_config(config, fold), self.table)
                resolved = fold_plan.config
                data, windows = self._prepare(fold_plan)
                fitted = fit_forecaster(
                    fold_plan,
                    data,
                    windows,
                    windows["train"].anchors.device,
                    events=on_epochs(on_epoch if fold == 0 else None) or ignore_event,
                    should_stop=self.should_stop,
                )
                epochs += fitted.training.epochs_run
                if fitted.training.interrupted or self.should_stop():
                    break
                values.append(metric_value(fitted.validation, plan.metric))
                configs.append(resolved)
        except TrainingInterrupted:
            trial.set_user_attr("interrupted", True)
            raise TrialStopped from None
        except (LstmcliError, ValueError, RuntimeError) as e:
            trial.set_user_attr("error", one_line(e))
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

    def _track(
        self, trial: optuna.Trial, params: dict, state: str, value: float | None,
        history: list[EpochStats],
    ) -> None:  # fmt: skip
        """The trial as an MLflow run nested under the study's (output.track: mlflow); a
        store that fails costs a warning, not the trial."""
        if self.plan.tracking is None:
            return
        attrs = trial.user_attrs
        if "config" in attrs:  # completed: the config it ran, every `auto` chosen
            config = config_from_yaml(attrs["config"], f"trial {trial.number}")
        else:
            config = trial_config(self.plan.config, params)
        facts = {k: attrs[k] for k in ("epochs", "seconds", "error", "folds") if k in attrs}
        try:
            log_trial(self.plan.tracking, trial.number, config, state, self.plan.metric,
                      value, history, facts)  # fmt: skip
        except LstmcliError as e:
            self.warn(f"trial {trial.number} was not logged to MLflow: {e}")

    def _prepare(self, plan: Plan) -> tuple[TrainingData, dict]:
        """The data and windows for a data config: made once, reused by later trials."""
        config = plan.config
        key = config.data.model_dump_json()
        if key not in self.prepared:
            if len(self.prepared) >= 4 * self.plan.folds:  # memory stays bounded
                self.prepared.pop(next(iter(self.prepared)))
            data = plan_data(plan, self.table, self.warn)
            device = resolve_device(config.training.device)
            self.prepared[key] = (data, make_windows(data, config.data, device))
        return self.prepared[key]


def metric_value(validation: dict | None, metric: str) -> float | None:
    if validation is None:
        return None
    value = validation.get(metric.removeprefix("val_"))
    return None if value is None or not np.isfinite(value) else float(value)
