"""What a person sees on stderr while training: a rich progress bar on a terminal, a plain line
every few epochs elsewhere (logs, CI), and a results table at the end."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from lstmcli.cli.common import say, warner

if TYPE_CHECKING:
    from lstmcli.run.loop import EpochStats

PLAIN_LINES = 10  # about this many progress lines per run when stderr is not a terminal


class EpochReporter:
    """Receives one EpochStats per epoch; use as a context manager around training."""

    def __init__(
        self,
        console: Console,
        epochs: int | None = None,
        quiet: bool = False,
        members: int = 1,
        done: int = 0,
    ) -> None:
        """`epochs` per member of an ensemble of `members` (or later, with `plan`, once the
        data has chosen them); `done` epochs already run (resume)."""
        self.console, self.quiet = console, quiet
        self.done = done
        self.epochs: int | None = None
        self.members = 1
        self.every = 1
        self.progress: Progress | None = None
        self.started = time.perf_counter()
        if epochs is not None:
            self.plan(epochs, members)

    def plan(self, epochs: int, members: int = 1) -> None:
        """How many epochs to expect: `epochs` for each of `members`."""
        self.epochs, self.members = epochs * members, members
        self.every = max(1, epochs // PLAIN_LINES)
        if self.progress is not None:
            self.progress.update(self.task, total=self.epochs)

    def __enter__(self) -> EpochReporter:
        if not self.quiet and self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]epoch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[losses]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=self.epochs, losses="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, stats: EpochStats) -> None:
        self.done += 1
        if self.quiet:
            return
        losses = f"train {stats.train_loss:.4g}"
        if stats.val_loss is not None:
            losses += f"  val {stats.val_loss:.4g}  best epoch {stats.best_epoch}"
        if self.progress is not None:  # another cosine cycle may add epochs (training.cycles)
            total = max(self.epochs or 0, self.done)
            self.progress.update(self.task, completed=self.done, total=total, losses=losses)
        elif stats.epoch == 1 or stats.epoch % self.every == 0 or stats.epoch == stats.epochs:
            elapsed = time.perf_counter() - self.started
            member = f"member {stats.member}/{self.members}  " if self.members > 1 else ""
            self.console.print(
                f"{member}epoch {stats.epoch}/{stats.epochs}  {losses}  {elapsed:.1f}s",
                markup=False,
                soft_wrap=True,
                highlight=False,
            )


def print_results(console: Console, metrics: dict, title: str = "test metrics") -> None:
    """The results of a scoring (train's test part, evaluate, a study's best run): the model
    against the baselines per target, its intervals, and the per-series summary."""
    for table in results_tables(metrics, title):
        console.print(table)
    if "intervals" in metrics:
        console.print(intervals_table(metrics["intervals"]))
    if "series" in metrics:
        console.print(series_table(metrics["series"]))


def say_forecast(console: Console, blend: dict | None, quiet: bool) -> None:
    """The forecast a run kept, after its results: a warning where the network weighs 0 (the
    model is then a baseline, which the results table alone does not say)."""
    from lstmcli.model.blend import describe_chosen

    text = describe_chosen(blend)
    if blend and blend["model_weight"] == 0.0:
        warner(console, quiet)(f"the forecast kept is {text}")
    elif not quiet:
        say(console, f"forecast: {text}")


def results_tables(metrics: dict, title: str = "test metrics") -> list[Table]:
    """Model against the naive baselines on the same targets, in the data's units: one table
    per target, since targets in other units do not mix."""
    targets = metrics.get("targets") or []
    if len(targets) <= 1:
        return [_results_table(metrics["model"], metrics["baselines"], metrics["skill"], title)]
    return [
        _results_table(
            metrics["model"]["per_target"][target],
            {name: b["per_target"][target] for name, b in metrics["baselines"].items()},
            metrics["skill_per_target"][target],
            f"{title}: {target}",
        )
        for target in targets
    ]


def _results_table(model: dict, baselines: dict, skills: dict, title: str) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        caption="in the data's units; skill = 1 - model rmse / baseline rmse (> 0: model better)",
        caption_justify="left",
    )
    columns = ["mae", "rmse", "smape", "mase", "r2"]
    table.add_column("", no_wrap=True)
    for name in columns:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("skill", justify="right", no_wrap=True)
    rows = [("model", model, None)] + [(n, m, skills.get(n)) for n, m in baselines.items()]
    for name, values, skill in rows:
        cells = [_number(values.get(c)) for c in columns]
        table.add_row(name, *cells, "" if name == "model" else _number(skill))
    return table


def intervals_table(intervals: dict, title: str = "prediction intervals") -> Table:
    """Coverage, width, interval score and MSIS of each level, the model's and the seasonal-
    naive baseline's on the same targets, and the model's skill in interval score."""
    table = Table(
        title=title,
        title_justify="left",
        caption="coverage: share of actuals inside; skill = 1 - model interval score / "
        "baseline's (> 0: model better)",
        caption_justify="left",
    )
    columns = ["coverage", "width", "interval_score", "msis"]
    table.add_column("", no_wrap=True)
    table.add_column("level", justify="right", no_wrap=True)
    for name in columns:
        table.add_column(name.replace("_", " "), justify="right", no_wrap=True)
    table.add_column("skill", justify="right", no_wrap=True)
    for level, values in intervals["model"].items():
        table.add_row("model", f"{level}%", *[_number(values.get(c)) for c in columns], "")
        for name, baseline in intervals["baselines"].items():
            cells = [_number(baseline[level].get(c)) for c in columns]
            table.add_row(name, f"{level}%", *cells, _number(intervals["skill"][level].get(name)))
    return table


def series_table(series: dict) -> Table:
    """Per-series metrics summed up: mean and median over series, and how often the model
    beats each baseline."""
    caption = "beats: share of series where the model's rmse is below the baseline's"
    worst = series["aggregate"].get("worst")
    if worst is not None:
        naive = worst["better_naive_mase"]
        caption += (f"; worst series {worst['id']!r}: mase {_number(worst['mase'])} (better naive "
                    f"{_number(naive)})")  # fmt: skip
    table = Table(
        title=f"per series ({series['count']} series)",
        title_justify="left",
        caption=Text(caption),  # an id is text, never markup
        caption_justify="left",
    )
    columns = ["rmse", "mase"]
    table.add_column("", no_wrap=True)
    for name in columns:
        table.add_column(f"mean {name}", justify="right", no_wrap=True)
        table.add_column(f"median {name}", justify="right", no_wrap=True)
    table.add_column("model beats it", justify="right", no_wrap=True)
    aggregate = series["aggregate"]
    rows = [("model", aggregate["model"], None)]
    rows += [(n, v, aggregate["beats"].get(n)) for n, v in aggregate["baselines"].items()]
    for name, values, beats in rows:
        cells = []
        for column in columns:
            cells += [_number(values["mean"].get(column)), _number(values["median"].get(column))]
        table.add_row(name, *cells, "" if beats is None else f"{100 * beats:.0f}%")
    return table


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class TrialReporter:
    """Hears the study after each finished trial: a rich progress bar with the best value so
    far on a terminal, one line per trial elsewhere."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console, self.quiet = console, quiet
        self.progress: Progress | None = None
        self.reported: set[int] = set()
        self.total, self.metric = 0, ""
        self.started = time.perf_counter()

    def plan(self, total: int, metric: str, done: int, earlier: list[int] = ()) -> None:
        """The study's size and metric, the trials counted so far, and the numbers of the
        trials a continued study already has (reported then, not again now)."""
        self.total, self.metric = total, metric
        self.reported.update(earlier)
        if self.progress is not None:
            self.progress.update(self.task, total=total, completed=done)

    def __enter__(self) -> TrialReporter:
        if not self.quiet and self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]trial"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[best]}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.progress.start()
            self.task = self.progress.add_task("tune", total=self.total or None, best="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, trials: pd.DataFrame, counted: int) -> None:
        """`trials`: trials.csv's rows so far; `counted`: trials towards the total. Each new
        finished trial gets a line with its own seconds and the best of the trials up to it."""
        if self.quiet or not len(trials):
            return
        if self.progress is not None:
            self.progress.update(self.task, completed=counted, best=self._best(trials))
            return
        for _, row in trials.sort_values("number").iterrows():
            number = int(row["number"])
            if number in self.reported or row["state"] == "running":
                continue
            self.reported.add(number)
            value = row[self.metric]
            outcome = f"{self.metric} {value:.4g}" if row["state"] == "complete" else row["state"]
            if isinstance(row.get("error"), str):
                outcome += f": {row['error']}"
            best = self._best(trials[trials["number"] <= number])
            seconds = row.get("seconds")
            took = f"  {seconds:.1f}s" if isinstance(seconds, float) and seconds == seconds else ""
            self.console.print(
                f"trial {number}  {outcome}  {best}{took}",
                markup=False,
                soft_wrap=True,
                highlight=False,
            )

    def _best(self, trials: pd.DataFrame) -> str:
        done = trials[trials["state"] == "complete"]
        if not len(done):
            return ""
        row = done.loc[done[self.metric].idxmin()]
        return f"best {self.metric} {row[self.metric]:.4g} (trial {int(row['number'])})"


def trials_table(trials: pd.DataFrame, metric: str, keys: list[str], show: int = 10) -> Table:
    """The best completed trials, best first, with their searched values."""
    done = trials[trials["state"] == "complete"].sort_values([metric, "number"]).head(show)
    counts = trials["state"].value_counts().to_dict()
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    table = Table(
        title=f"tune: best trials ({summary})",
        title_justify="left",
        caption=f"{metric} on the validation part; the test part is scored for the best only",
        caption_justify="left",
    )
    table.add_column("trial", justify="right", no_wrap=True)
    table.add_column(metric, justify="right", no_wrap=True)
    for key in keys:
        table.add_column(key, justify="right", no_wrap=True)
    table.add_column("epochs", justify="right", no_wrap=True)
    for _, row in done.iterrows():
        cells = [_cell(row[key]) for key in keys]
        table.add_row(str(int(row["number"])), _number(row[metric]), *cells, _cell(row["epochs"]))
    return table


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def runs_table(summaries: list, differing: list[str]) -> Table:
    """`lstmcli runs`: one row per run folder, the settings that differ between them as
    `key=value` lines, scores with the skill against the better naive baseline."""
    table = Table(
        title_justify="left",
        caption="skill = 1 - model rmse / rmse of the better naive baseline on the test part",
        caption_justify="left",
    )
    for name in ("run", "when", "status", "data", "rows", "settings"):
        table.add_column(name, overflow="fold")
    panels = any(s.values.get("worst") is not None for s in summaries)
    scores = ("val_rmse", "test_rmse", "test_mase") + (("worst series",) if panels else ())
    for name in (*scores, "skill", "seconds"):
        table.add_column(name, justify="right", no_wrap=True)
    for summary in summaries:
        v = summary.values
        when = (v["when"] or "")[:16].replace("T", " ") or "-"
        settings = "\n".join(f"{k}={summary.settings.get(k, '-')}" for k in differing)
        skill = "-" if v["skill"] is None else f"{v['skill']:.3f} vs {v['vs']}"
        worst = "-" if v["worst"] is None else f"{v['worst']}: {_cell(v['worst_mase'])}"
        cells = [
            v["run"], when, v["status"], _cell(v["data"]), _cell(v["rows"]), settings or "-",
            _cell(v["val_rmse"]), _cell(v["test_rmse"]), _cell(v["test_mase"]),
            *([worst] if panels else []), skill,
            "-" if v["seconds"] is None else f"{v['seconds']:.1f}",
        ]  # fmt: skip
        table.add_row(*map(Text, cells))  # as written: a folder named [x] is no markup
    return table
