"""Running a study's trials: in this process, and in `--jobs` worker processes that share
its database. Workers never print: a worker that cannot work leaves its reason for the main
process, which reports it."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lstmcli.data.table import Table, load_table
from lstmcli.errors import LstmcliError, ignore_warning
from lstmcli.tune.plan import StudyPlan
from lstmcli.tune.study import counted, make_sampler, open_study
from lstmcli.tune.trial import Objective, TrialFailed, TrialStopped, TrialSurplus

if TYPE_CHECKING:
    import optuna


def work(
    plan: StudyPlan,
    table: Table,
    should_stop: Callable[[], bool],
    on_trial: Callable[[optuna.Study], None] | None = None,
    *,
    worker: int = 0,
    created: bool = False,
) -> None:
    """One worker: run trials until the study has its total, the deadline passes or a stop
    is requested. Workers in other processes or machines may share the study; worker 0
    creates it (`created`: this command did). The grid sampler's order is seeded from
    tune.seed, the worker's index and the trials already in the study (plus the process id
    when another command is at work), so a continued study does not start its grid again;
    the other samplers draw each trial from a seed of its own number (see Objective)."""
    tune = plan.config.tune
    study, _ = open_study(plan, create=worker == 0)
    trials = study.get_trials(deepcopy=False)
    others = any(t.state.name == "RUNNING" for t in trials)  # another machine is at work
    joined = worker == 0 and not created and not any(t.state.is_finished() for t in trials)
    seed = tune.seed + 1000 * worker + len(trials) + (os.getpid() if others or joined else 0)
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


def worker_process(plan: StudyPlan, threads: int | None, worker: int, problems: Any) -> None:
    """A `--jobs` worker in its own process: reads the data itself, stops on SIGINT/SIGTERM
    after its current batch like the main process; a problem goes to `problems` (a queue
    the main process reads)."""
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
        problems.put(f"tune worker {worker} stopped: {e}")


class Workers:
    """`jobs - 1` worker processes beside this one (spawned: no forked torch or database
    state), and what they reported."""

    def __init__(self, plan: StudyPlan, threads: int | None, jobs: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.problems = context.SimpleQueue()
        self.processes = []
        for index in range(1, jobs):
            process = context.Process(
                target=worker_process, args=(plan, threads, index, self.problems)
            )
            process.start()
            self.processes.append(process)

    def wait(self, study: optuna.Study, report: Callable[[optuna.Study], None]) -> list[str]:
        """Report the other workers' trials as they finish, until every worker has ended;
        then their problems, one line each."""
        seen = -1
        while any(p.is_alive() for p in self.processes):
            finished = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
            if finished != seen:
                report(study)
                seen = finished
            time.sleep(0.5)
        if self.processes:
            report(study)
        return self.join()

    def join(self) -> list[str]:
        for process in self.processes:
            process.join()
        problems = []
        while not self.problems.empty():
            problems.append(self.problems.get())
        return problems
