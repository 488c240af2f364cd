"""`lstmcli check`: everything `train` would verify, reported at once, without training.

Unlike `train`, which stops at the first problem, the check goes as far as the data allows and
lists every problem it finds, next to the facts a person wants before a long run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lstmcli.config import Config
from lstmcli.data import infer_freq, numeric_column, parse_time, prepare_table, read_csv
from lstmcli.errors import LstmcliError
from lstmcli.scaling import constant_columns
from lstmcli.windows import empty_parts, part_rows, rows_needed, split_rows


@dataclass
class CheckReport:
    facts: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(config: Config, run_dir: Path) -> CheckReport:
    """Read the data as `train` would and report rows, time, gaps, missing values and splits."""
    report = CheckReport()
    cfg = config.data
    try:
        frame = read_csv(cfg.path)
    except LstmcliError as e:
        report.problems.append(str(e))
        return report
    report.facts.append(("data", f"{cfg.path}: {len(frame)} rows, {len(frame.columns)} columns"))
    needed = [c for c in [cfg.id_column, cfg.time_column, *cfg.input_columns, *cfg.target] if c]
    absent = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if absent:
        available = ", ".join(map(str, frame.columns))
        report.problems.append(f"column(s) {absent} not found; available: {available}")
        return report
    columns = list(dict.fromkeys(cfg.input_columns + cfg.target))
    try:
        counts = [
            int(np.isnan(numeric_column(frame, c, cfg.path, np.float32)).sum()) for c in columns
        ]
    except LstmcliError as e:
        report.problems.append(str(e))
        return report
    missing = ", ".join(f"{c} {n}" for c, n in zip(columns, counts, strict=True))
    report.facts.append(("missing values", f"{missing} ({cfg.missing})"))
    if cfg.time_column and cfg.id_column is None:  # gaps and steps of one series
        _describe_time(frame[cfg.time_column], cfg.time_column, cfg.path, report)
    elif cfg.time_column:
        try:
            time = parse_time(frame[cfg.time_column], cfg.time_column, cfg.path)
            report.facts.append(("time", f"{time.min()} .. {time.max()}"))
        except LstmcliError as e:
            report.problems.append(str(e))

    try:
        table = prepare_table(frame, cfg, cfg.path)
        n_rows = len(table.inputs)
        report.warnings += table.notes
    except LstmcliError as e:
        report.problems.append(str(e))
        table, n_rows = None, len(frame)
    try:
        split = split_rows(table if table is not None else n_rows, cfg)
    except LstmcliError as e:
        report.problems.append(str(e))
        return report
    if table is not None and table.ids is not None:
        lengths = table.lengths
        report.facts.append(
            ("series", f"{table.n_series} (rows per series {lengths.min()}..{lengths.max()})")
        )
        short = int((lengths < rows_needed("train", cfg)).sum())
        if short:
            report.warnings.append(f"{short} series are shorter than one window; train skips them")
    for name, (starts, stops) in split.bounds.items():
        windows = len(split.anchors[name])
        if len(starts) == 1:
            start, stop = int(starts[0]), int(stops[0])
            text = f"rows {start}..{stop - 1} ({stop - start} rows), {windows} windows"
        else:
            text = f"{int((stops - starts).sum())} rows in {len(starts)} series, {windows} windows"
        report.facts.append((name, text))
    report.problems += empty_parts(split, cfg)
    if table is not None:
        train_rows = part_rows(split.bounds["train"])
        constant = constant_columns(table.inputs[train_rows], table.input_columns)
        if constant:
            report.warnings.append(f"column(s) {constant} are constant in the training rows")

    try:
        from lstmcli.device import resolve_device

        report.facts.append(("device", str(resolve_device(config.training.device))))
    except LstmcliError as e:
        report.problems.append(str(e))
    if run_dir.is_dir() and any(run_dir.iterdir()):
        report.warnings.append(
            f"run folder {run_dir} is not empty: train needs --overwrite or another --output"
        )
    return report


def _describe_time(column: pd.Series, name: str, label: str, report: CheckReport) -> None:
    """Time range, frequency, and gaps larger than the usual step."""
    try:
        time = parse_time(column, name, label).sort_values().reset_index(drop=True)
    except LstmcliError as e:
        report.problems.append(str(e))
        return
    report.facts.append(("time", f"{time.iloc[0]} .. {time.iloc[-1]}"))
    repeated = int(time.duplicated().sum())
    if repeated:
        first = time[time.duplicated()].iloc[0]
        report.problems.append(
            f"time column {name!r} has {repeated} duplicate time(s), first {first}"
        )
    freq = infer_freq(time)
    if freq is not None:
        report.facts.append(("frequency", f"{freq} (regular)"))
        return
    steps = time.diff().iloc[1:]
    if steps.empty:
        return
    usual = steps.median()
    gaps = steps[steps > usual * 1.5]
    text = f"irregular; usual step {usual}"
    if len(gaps):
        widest = int(np.argmax(gaps.to_numpy()))
        at = time.iloc[gaps.index[widest] - 1]
        text += (
            f", {len(gaps)} gap(s) wider than 1.5 steps, the widest {gaps.iloc[widest]} after {at}"
        )
    report.facts.append(("frequency", text))
