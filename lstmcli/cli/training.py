"""`lstmcli train` and `lstmcli tune`: commands that fit models and write run folders."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lstmcli.cli.common import (
    ConfigOption,
    OutputFolderOption,
    QuietOption,
    SetOption,
    StopRequest,
    TrackOption,
    command,
    invocation,
    load_config,
    say,
    stderr,
    warner,
)
from lstmcli.errors import TrainingInterrupted

if TYPE_CHECKING:
    from rich.console import Console

    from lstmcli.config.plan import Choice
    from lstmcli.config.schema import Config
    from lstmcli.run.loop import EpochStats


@command
def train(
    context: typer.Context,
    config: ConfigOption = None,
    set_: SetOption = None,
    output: OutputFolderOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the files of an existing run folder.")
    ] = False,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config as YAML and exit.")
    ] = False,
    quiet: QuietOption = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue the run in this folder from its last.pt (after Ctrl-C, a kill or to "
            "train longer with --set training.epochs=N).",
            file_okay=False,
        ),
    ] = None,
    again: Annotated[
        Path | None,
        typer.Option(
            "--again",
            help="Train the run in this folder again: its config.yaml, refused if its data file "
            "changed since (manifest.json), with its thread count; into -o (default: "
            "RUN-again).",
            file_okay=False,
            metavar="RUN",
        ),
    ] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            "--nproc",
            min=1,
            help="Train with N processes on this machine (torchrun --standalone "
            "--nproc_per_node N): one GPU each, or CPU shares.",
        ),
    ] = None,
    track: TrackOption = None,
) -> None:
    """Train a model and write a run folder.

    The data is split in time order, scalers are fitted on the training rows only, and the
    model is evaluated on the test rows against naive and seasonal-naive baselines.

    The run folder holds model.pt (weights, scalers, config, columns), config.yaml,
    history.csv, metrics.json and test_predictions.csv, all in the data's own units.
    Its path is printed on stdout; progress and the results table go to stderr.

    Examples:

      lstmcli train --config configs/quickstart.yaml

      lstmcli train -c run.yaml --set training.epochs=5 --set data.lookback=48 -o runs/try

      lstmcli train --resume runs/try --set training.epochs=50

      lstmcli train --again runs/try -o runs/try-2   (the same run once more)

      MLFLOW_TRACKING_URI=sqlite:///mlflow.db lstmcli train -c run.yaml --track mlflow

      torchrun --nproc_per_node 4 -m lstmcli train -c run.yaml   (or: --nproc 4)
    """
    if nproc is not None and nproc > 1:
        from lstmcli.cli.launch import relaunch_under_torchrun

        raise typer.Exit(relaunch_under_torchrun(nproc, sys.argv[1:]))
    if resume is not None and (config is not None or output is not None or overwrite):
        raise typer.BadParameter("--resume continues a run folder: no --config, -o or --overwrite")
    if again is not None and (config is not None or resume is not None):
        raise typer.BadParameter("--again trains a run's own config: no --config or --resume")
    from lstmcli.cli.display import EpochReporter, print_results, say_forecast
    from lstmcli.config.io import config_to_yaml, with_output_dir
    from lstmcli.run.distributed import from_environment
    from lstmcli.run.pipeline import resolved_config, train_run
    from lstmcli.run.resume import epochs_done, prepare_resume

    main = from_environment().main
    quiet = quiet or not main  # rank 0 alone prints; the others only train
    set_ = [*(set_ or []), *([f"output.track={track.value}"] if track else [])]
    console = stderr()
    last = chosen_before = None
    if resume is not None:
        last, resolved = prepare_resume(resume, set_ or [])
    elif again is not None:
        from lstmcli.run.manifest import chosen_in, rerun_config

        resolved = rerun_config(again, set_, warner(console, quiet=quiet))
        chosen_before = chosen_in(again)
        output = output or Path(f"{again}-again")
    else:
        resolved = load_config(config, set_)
    if resume or output:  # the resolved config is what runs: its folder included
        resolved = with_output_dir(resolved, resume or output)
    if print_config:  # with every `auto` chosen from the data, as train would
        if main:
            resolved = resolved_config(resolved, warner(console, quiet=True)).config
            typer.echo(config_to_yaml(resolved), nl=False)
        return

    run_dir = Path(resolved.output.dir)
    stop = StopRequest()
    done = epochs_done(last.train_state) if last is not None else 0
    reporter = EpochReporter(console, quiet=quiet, done=done)

    epochs_heard = []

    def hear(stats: EpochStats) -> None:
        epochs_heard.append(stats.epoch)
        reporter(stats)

    def starting(config: Config, choices: list[Choice]) -> None:
        if choices and not quiet:
            say(console, "Chosen from the data: " + "; ".join(map(str, choices)))
        reporter.plan(config.training.epochs, config.training.ensemble)

    try:
        with stop.installed(), reporter:
            result = train_run(
                resolved,
                run_dir,
                overwrite=overwrite,
                on_start=starting,
                on_epoch=hear,
                should_stop=stop,
                warn=warner(console, quiet),  # quiet on ranks other than 0 too
                resume=last,
                command=invocation(context),
                chosen_before=chosen_before,
            )
    except (TrainingInterrupted, KeyboardInterrupt) as e:
        if main:
            say(console, f"Interrupted: {e or 'stopped'}")
        raise typer.Exit(stop.exit_code) from None
    if main:
        if not quiet:
            print_results(console, result.metrics)
        say_forecast(console, result.metrics.get("blend"), quiet)
        if last is not None and not epochs_heard and not result.training.interrupted:
            warner(console, quiet)(f"--resume trained no epoch: {run_dir} had nothing left to "
                                   "train (its training part has no window); the run folder "
                                   "was scored again")  # fmt: skip
        typer.echo(str(run_dir))
    if result.training.interrupted:
        if main:
            say(
                console,
                f"Interrupted after {result.training.epochs_run} complete epoch(s); the best "
                f"model so far is saved in {run_dir}; continue with "
                f"`lstmcli train --resume {run_dir}`",
            )
        raise typer.Exit(stop.exit_code)


@command
def tune(
    context: typer.Context,
    config: ConfigOption = None,
    set_: SetOption = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            "-n",
            min=1,
            help="Trials in the study, all runs together (sets tune.trials); a continued "
            "study runs only the missing ones.",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0.001, help="Seconds after which no new trial starts (tune.timeout)."
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Database URL of the study (default: sqlite in the "
            "study folder); share one to tune on many machines.",
            metavar="URL",
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study name in the storage (default lstmcli).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Study folder (default: output.dir + '-tune').", file_okay=False
        ),
    ] = None,
    track: TrackOption = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Trials run at once, each in its own process "
            "sharing the study (threads split between them).",
        ),
    ] = 1,
    quiet: QuietOption = False,
) -> None:
    """Search hyper-parameters with Optuna, choosing on the validation part only.

    Each trial trains the config with the trial's values of the `tune.space` keys (or the
    default space) and is scored on the val part; the test rows are never scored during the
    search. The study lives in a database (study.db in the study folder): run the same
    command again to continue it after Ctrl-C or a kill. At the end the best config is
    written to best.yaml, trained once more into the `best` run folder and scored on the
    test part like `train`. The folder also holds trials.csv and history.png (and
    importance.png). Its path is printed on stdout.

    Examples:

      lstmcli tune -c run.yaml --trials 30

      lstmcli tune -c run.yaml --jobs 2 --timeout 600 -o runs/study

      lstmcli tune -c run.yaml --storage postgresql://user@db/optuna --study sales

      lstmcli tune -c run.yaml --track mlflow   (the study and each trial as MLflow runs)
    """
    from lstmcli.cli.display import print_results, trials_table
    from lstmcli.config.io import parse_overrides
    from lstmcli.tune import tune_run

    overrides = list(set_ or [])
    overrides += [f"tune.trials={trials}"] if trials is not None else []
    overrides += [f"tune.timeout={timeout}"] if timeout is not None else []
    overrides += [f"output.track={track.value}"] if track else []
    resolved = load_config(config, overrides)
    folder = output or Path(resolved.output.dir + "-tune")
    console = stderr()
    stop = StopRequest()
    listener = _TuneMessages(console, quiet)
    try:
        with stop.installed(), listener.progress:
            result = tune_run(
                resolved,
                folder,
                storage=storage,
                study_name=study,
                jobs=jobs,
                should_stop=stop,
                warn=warner(console, quiet),
                listener=listener,
                source=str(config) if config is not None else "config",
                overridden=list(parse_overrides(overrides)),
                command=invocation(context),
            )
    except (TrainingInterrupted, KeyboardInterrupt) as e:
        say(console, f"Interrupted: {e or 'stopped'}; run the same command to continue")
        raise typer.Exit(stop.exit_code) from None
    if not quiet:
        keys = [k for k in result.trials.columns if "." in k]
        console.print(trials_table(result.trials, result.metric, keys))
        if result.run is not None:
            print_results(console, result.run.metrics, "test metrics of the best config")
    typer.echo(str(folder))
    if result.run is None:
        say(console, f"Interrupted; trials so far are in {folder}; run the same command to "
             "continue the study")  # fmt: skip
        raise typer.Exit(stop.exit_code)


class _TuneMessages:
    """What `tune` says while a study runs: its plan, a progress line per trial, the best run."""

    def __init__(self, console: Console, quiet: bool) -> None:
        from lstmcli.cli.display import EpochReporter, TrialReporter

        self.console, self.quiet = console, quiet
        self.progress = TrialReporter(console, quiet=quiet)
        self.trial = self.progress
        self.epoch = EpochReporter(console, quiet=True)

    def planned(self, plan: Any, notes: list[str], done: int, earlier: list[int]) -> None:
        if not self.quiet:
            for note in notes:
                say(self.console, note)
            left = max(0, plan.trials - done)
            say(self.console, f"study {plan.study_name!r} in {plan.storage}: {done} trial(s) "
                 f"done, {left} to run, chosen by {plan.metric}")  # fmt: skip
        self.progress.plan(plan.trials, plan.metric, done, earlier)

    def best(self, chosen: Config) -> None:
        if not self.quiet:
            say(self.console, f"training the best config into {chosen.output.dir}")
