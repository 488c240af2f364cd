"""`lstmcli tune`: a hyper-parameter search with Optuna, chosen on the val part only.

The jobs, one module each: `plan` (what is searched and how it decides, checked before any
trial), `study` (the database, sampler, pruner and trial counts), `trial` (one trial: train's
own stages without the writing ones, scored on the val part), `workers` (trials in this and
`--jobs` processes) and `outputs` (trials.csv, best.yaml, figures). `tune_run` strings them
together; at the end the best trial's config is trained once more, from the same seed, into a
run folder like `train`'s, and only that run meets the test part.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lstmcli.config.io import config_from_yaml
from lstmcli.config.schema import Config
from lstmcli.data.table import load_table
from lstmcli.errors import LstmcliError, Warn, ignore_warning
from lstmcli.run.lock import LOCK_FILE, RunFolderBusy, run_folder_lock
from lstmcli.run.pipeline import RunResult, train_run
from lstmcli.run.tracking import (
    abandon,
    finish_study,
    require_mlflow,
    start_study,
    tracked,
    trial_target,
)
from lstmcli.tune.outputs import BEST_RUN, best_config, finish, trials_frame
from lstmcli.tune.plan import Origin, StudyPlan, plan_study
from lstmcli.tune.study import counted, open_study, outside_space, require_optuna
from lstmcli.tune.workers import Workers, work

if TYPE_CHECKING:
    from collections.abc import Callable

    import optuna
    import pandas as pd

    from lstmcli.run.loop import EpochStats


@dataclass(frozen=True)
class TuneResult:
    folder: Path
    trials: pd.DataFrame
    best: dict  # number, value, params, config (YAML)
    run: RunResult | None  # the best config trained and tested; None when interrupted
    metric: str
    notes: list[str]


class TuneListener:
    """What a study tells whoever watches it (the CLI's progress and messages); every method
    does nothing here."""

    def planned(self, plan: StudyPlan, notes: list[str], done: int, earlier: list[int]) -> None:
        """The study is checked and open: its plan, notes on it, the trials counted so far
        and the numbers of those a continued study already has."""

    def trial(self, trials: pd.DataFrame, counted: int) -> None:
        """A trial finished (trials.csv's rows so far)."""

    def best(self, config: Config) -> None:
        """The best config is about to be trained into its run folder."""

    def epoch(self, stats: EpochStats) -> None:
        """An epoch of the best config's training finished."""


def tune_run(
    config: Config,
    folder: Path,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    jobs: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
    warn: Warn = ignore_warning,
    listener: TuneListener | None = None,
    source: str = "config",
    overridden: list[str] = (),
    command: list[str] | None = None,
) -> TuneResult:
    """The whole study: plan and check, run the trials (in this process, plus `jobs` - 1
    worker processes), write trials.csv, best.yaml and the figures, then train the best
    config into `folder/best` and score it on the test part. `config.tune.trials` and
    `config.tune.timeout` say how many trials and for how long. `source` (the config file)
    and `overridden` (the keys `--set` gave) say where a problem's key came from."""
    require_optuna()
    if tracked(config):
        require_mlflow()
    listener = listener or TuneListener()
    table = load_table(config.data, warn)
    origin = Origin(source, tuple(overridden))
    plan, notes = plan_study(config, table, folder, storage, study_name, origin)
    if outside_space(plan):
        notes.append(outside_space(plan))
    study, created = open_study(plan, create=True)
    tracker = None
    if tracked(config):  # the study's MLflow run; each trial nests a run under it
        tracker = start_study(config, study, plan.study_name)
        plan = replace(plan, tracking=trial_target(tracker, config.output))
    earlier = [t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    listener.planned(plan, notes, counted(study), earlier)
    threads = config.training.threads
    if jobs > 1 and threads is None:
        threads = max(1, (os.cpu_count() or 1) // jobs)
    with contextlib.ExitStack() as scope:  # torch's thread count restored at the end
        if threads is not None:
            from lstmcli.run.fitting import cpu_threads

            scope.enter_context(cpu_threads(threads))

        def report(study: optuna.Study) -> None:
            listener.trial(trials_frame(study, plan), counted(study))

        workers = Workers(plan, threads, jobs)
        try:
            work(plan, table, should_stop, report, worker=0, created=created)
            problems = workers.wait(study, report)
        except BaseException:
            abandon(tracker, "KILLED" if should_stop() else "FAILED")
            raise
        finally:
            workers.join()
        for problem in problems:
            warn(problem)
        try:
            frame, best = finish(study, plan, folder)
        except LstmcliError:  # no trial completed
            abandon(tracker)
            raise
        if should_stop():
            if tracker is not None:
                finish_study(tracker, folder, best, plan.metric, counted(study), stopped=True)
            return TuneResult(folder, frame, best, None, plan.metric, notes)
        # The best config, trained once more from its seed (the same model as its trial) into a
        # run folder like train's; only this run is scored on the test part.
        chosen = best_config(best, folder)
        listener.best(chosen)
        run = finished_run(folder / BEST_RUN, chosen)  # a continued study whose best is the same
        while run is None and not should_stop():
            try:  # under the folder's lock: look again, then train only if nobody has
                with run_folder_lock(folder / BEST_RUN, warn):
                    run = finished_run(folder / BEST_RUN, chosen, locked=True)
                    if run is None:
                        run = train_run(
                            chosen,
                            folder / BEST_RUN,
                            overwrite=True,
                            on_epoch=listener.epoch,
                            should_stop=should_stop,
                            warn=warn,
                            command=command,
                            tracking_parent=tracker.run_id if tracker is not None else None,
                            locked=True,
                        )
            except RunFolderBusy:  # another command of this study is training its best config
                time.sleep(1.0)
                run = finished_run(folder / BEST_RUN, chosen)
        if tracker is not None:
            finish_study(tracker, folder, best, plan.metric, counted(study), stopped=run is None)
        return TuneResult(folder, frame, best, run, plan.metric, notes)


def finished_run(run_dir: Path, config: Config, locked: bool = False) -> RunResult | None:
    """The run in `run_dir` when it is finished and ran `config` (as another command of the
    same study leaves it), else None (also while another process holds its lock, unless
    `locked`: the caller holds it)."""
    try:
        ran = config_from_yaml((run_dir / "config.yaml").read_text(), str(run_dir))
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError, LstmcliError):
        return None
    busy = not locked and (run_dir / LOCK_FILE).exists()
    if ran != config or metrics.get("interrupted") or busy:
        return None
    return RunResult(run_dir, metrics, None)
