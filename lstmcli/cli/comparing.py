"""`lstmcli runs`: run folders side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lstmcli.cli.common import command, say, stderr
from lstmcli.cli.launch import EXIT_ERROR


@command
def runs(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Run folders, or folders holding them (default: runs).",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="Column or setting to sort by (run, when, status, data, rows, val_rmse, "
            "val_mase, test_rmse, test_mase, worst_mase, skill, seconds, or a key like "
            "training.learning_rate); prefix - for descending.",
            metavar="KEY",
        ),
    ] = "when",
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON on stdout, one object per run.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout, one row per run.")] = False,
) -> None:
    """List run folders side by side: when, data, the settings that differ, scores, seconds.

    Each run is read from its own files (config.yaml, metrics.json, manifest.json); folders
    under the given ones are searched three levels deep, so a tune study's best run is found.
    Columns: validation and test scores in the data's units, `skill` against the better of
    the naive baselines on the same test targets, and the wall seconds of all sessions.
    Folders that cannot be read, are still being written, or were killed mid-run are listed
    with that status. A table on stdout, or --json / --csv for scripts.

    Examples:

      lstmcli runs

      lstmcli runs runs/lr-* --sort test_rmse

      lstmcli runs --csv > runs.csv
    """
    from lstmcli.run import runs as core

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    summaries, differing, missing = core.list_runs(folders or [Path("runs")])
    name = sort.removeprefix("-")
    known = set(core.COLUMNS) | {k for s in summaries for k in s.settings}
    if name not in known:
        raise typer.BadParameter(
            f"unknown sort key {name!r}; use a column ({', '.join(core.COLUMNS)}) or a setting "
            "such as training.learning_rate",
            param_hint="--sort",
        )
    summaries = core.sort_runs(summaries, sort)
    records = core.rows(summaries, differing)
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    elif as_csv:
        import pandas as pd

        from lstmcli.files import csv_text

        frame = pd.DataFrame(records, columns=[*core.COLUMNS, *differing, "problem"])
        typer.echo(csv_text(frame.astype({"rows": "Int64"})), nl=False)
    elif summaries:
        from lstmcli.cli.display import runs_table

        _stdout().print(runs_table(summaries, differing))
    console = stderr()
    for summary in summaries:
        if summary.problem:
            say(console, f"Warning: {summary.path}: {summary.problem}")
    for message in missing:
        say(console, f"Error: {message}")
    if missing or not summaries:
        if not missing:
            say(console, f"Error: no run folders in {', '.join(map(str, folders or ['runs']))}")
        raise typer.Exit(EXIT_ERROR)


def _stdout():  # noqa: ANN202 - rich is imported only when a table is printed
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 200)
    return console
