"""`lstmcli check`: everything `train` would verify, reported at once, without training.

Unlike `train`, which stops at the first problem, the check goes as far as the data allows and
lists every problem it finds, next to the facts a person wants before a long run. It asks the
same functions `train` uses, so a problem is found by one rule and worded one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lstmcli.config.data_section import DataConfig
from lstmcli.config.resolve import resolve
from lstmcli.config.schema import Config
from lstmcli.data.missing import numeric_column
from lstmcli.data.reading import read_csv
from lstmcli.data.rows import frame_problems, needed_columns
from lstmcli.data.scaling import warn_constant_columns, warn_series_scales
from lstmcli.data.table import Table, prepare_table
from lstmcli.data.times import frequency, infer_freq, missing_steps, parse_time
from lstmcli.data.training_data import longest_series_time, warn_missing_rows
from lstmcli.data.windows import empty_parts, part_rows, split_rows, training_series
from lstmcli.errors import LstmcliError
from lstmcli.model.prior import is_prior, windowless_parts
from lstmcli.model.spec import ModelSpec
from lstmcli.run.device import resolve_device
from lstmcli.run.distributed import describe, from_environment
from lstmcli.run.fitting import describe_blend, window_under_season
from lstmcli.run.manifest import data_difference, run_manifest
from lstmcli.run.tracking import require_mlflow, tracked

# Measured, not fixed: the quantile head's bands fell short where conformal ones held.
QUANTILE_COVERAGE = (
    "model.intervals: quantile: the quantile head's bands may undercover on rolling test rows "
    "(in our measurement 80%/95% bands covered 70%/88% on the monthly El Nino series); "
    "model.intervals: conformal (the default) is calibrated on the val part's origins"
)


@dataclass
class CheckReport:
    facts: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(config: Config, run_dir: Path | None) -> CheckReport:
    """Read the data as `train` would and report rows, time, gaps, missing values and splits
    (and whether `run_dir`, the folder train would write, is free; None: not asked)."""
    report = CheckReport()
    cfg, warn = config.data, report.warnings.append
    try:
        frame = read_csv(cfg.path, text=[cfg.id_column])
    except LstmcliError as e:
        report.problems.append(str(e))
        return report
    report.facts.append(("data", f"{cfg.path}: {len(frame)} rows, {len(frame.columns)} columns"))
    report.problems += frame_problems(frame, cfg, cfg.path)
    if any(c not in frame.columns for c in needed_columns(cfg)):
        return report  # nothing more can be said without the columns
    report.facts.append(("missing values", _missing_counts(frame, config)))

    # The table train would build, when the file has no problem yet: train's own choice of
    # `auto` values and selection of series, so that the counts below are training's.
    table = None
    if report.ok:
        try:
            prepared = prepare_table(frame, cfg, cfg.path, warn=warn)
            _describe_table(prepared, report)
            plan = resolve(config, prepared)
            config, cfg = plan.config, plan.config.data
            for choice in plan.choices:
                report.facts.append(("auto", str(choice)))
            table = training_series(prepared, cfg, warn)
            time = longest_series_time(table)
            warn_missing_rows(table, frequency(time) if time is not None else None, cfg, warn)
        except LstmcliError as e:
            report.problems.append(str(e))
    else:
        if cfg.time_column and cfg.id_column is None:  # worth knowing while fixing the file
            _describe_time(frame[cfg.time_column], cfg.time_column, cfg.path, report)
        cfg = _rough_resolution(frame, config)
    if cfg is not None:
        split = split_rows(table if table is not None else len(frame), cfg)
        for name, (starts, stops) in split.bounds.items():
            windows = len(split.anchors[name])
            if table is None or table.ids is None:
                start, stop = int(starts[0]), int(stops[0])
                span = (
                    f"rows {start}..{stop - 1} ({stop - start} rows)" if stop > start else "no rows"
                )
                text = f"{span}, {windows} windows"
            else:
                rows = int((stops - starts).sum())
                text = f"{rows} rows in {len(starts)} series, {windows} windows"
            report.facts.append((name, text))
        report.problems += empty_parts(split, cfg, windowless_parts(config.model.init))
        if table is not None:
            _describe_blend(config, table, split.anchors.get("val", np.array([], int)), report)
            train_rows = part_rows(split.bounds["train"])
            warn_constant_columns(table.inputs[train_rows], table.input_columns, warn)
            if table.ids is not None:
                series = table.row_series()[train_rows]
                warn_series_scales(table, table.targets[train_rows], series,
                                   shared=cfg.scale_by == "global", warn=warn)  # fmt: skip

    if config.model.levels:
        levels = ", ".join(f"{level:g}%" for level in config.model.levels)
        adaptive = "; adapted to misses in rolling backtests" if config.model.adaptive else ""
        has_val = cfg is not None and len(split.anchors.get("val", [])) > 0
        origins = "the val part's origins" if has_val else ""
        method = config.model.interval_method
        if is_prior(config.model.init) and not method.from_quantiles:
            own = f"{config.model.init}'s own errors"
            origins = f"{origins} pooled with {own}" if has_val else f"{own} (no val part)"
        origins = origins or "nothing: there is no val part"
        report.facts.append(
            ("intervals", f"{levels} ({config.model.intervals}, calibrated on {origins}{adaptive})")
        )
        if method.from_quantiles:
            warn(QUANTILE_COVERAGE)
    if tracked(config):
        try:
            require_mlflow()
        except LstmcliError as e:
            report.problems.append(str(e))
    try:
        device = resolve_device(config.training.device)
        report.facts.append(("device", str(device)))
        distributed = describe(from_environment(), device)  # gloo on the CPU, nccl on GPUs
        if distributed is not None:
            report.facts.append(("distributed", distributed))
    except LstmcliError as e:
        report.problems.append(str(e))
    if run_dir is not None and run_dir.is_dir() and any(run_dir.iterdir()):
        warn(f"run folder {run_dir} is not empty: train needs --overwrite or another --output")
    return report


def _describe_blend(config: Config, table: Table, val: np.ndarray, report: CheckReport) -> None:
    """What the network's forecast will be combined with, by train's own rule on the val
    part's origins (`val`: their anchor rows)."""
    if config.data.task != "forecast":
        return
    spec = ModelSpec.for_config(config.data, config.model)
    if config.model.blend != "auto" or spec.quantile_levels:
        why = "model.blend: none" if config.model.blend != "auto" else "a quantile head"
        report.facts.append(("blend", f"none: the network alone ({why})"))
        return
    n_series = len(np.unique(table.series_of(val))) if len(val) else 1
    text = describe_blend(spec, is_prior(config.model.init), int(table.lengths.max()),
                          len(val), n_series, window_under_season(config.data, spec))  # fmt: skip
    report.facts.append(("blend", text))


def _rough_resolution(frame: pd.DataFrame, config: Config) -> DataConfig | None:
    """The data section with its `auto` values chosen on the file with empty cells dropped,
    for a first look at the split while the file still has problems; None when even that
    table cannot be built."""
    try:
        lenient = config.data.model_copy(update={"missing": "drop"})
        table = prepare_table(frame, lenient, config.data.path)
        return resolve(config, table).config.data
    except LstmcliError:
        return None


def _missing_counts(frame: pd.DataFrame, config: Config) -> str:
    """Empty cells per used column, and what data.missing does with them."""
    cfg = config.data
    counts = []
    for name in dict.fromkeys(cfg.layout.file_inputs + cfg.target):
        try:
            counts.append(
                f"{name} {int(np.isnan(numeric_column(frame, name, '', np.float64)).sum())}"
            )
        except LstmcliError:
            counts.append(f"{name} not counted (not all numbers)")  # reported as a problem
    return f"{', '.join(counts)} (data.missing: {cfg.missing})"


def _describe_table(table: Table, report: CheckReport) -> None:
    """Series, time range, frequency and gaps of the table train would use."""
    if table.ids is not None:
        lengths = table.lengths
        report.facts.append(
            ("series", f"{table.n_series} (rows per series {lengths.min()}..{lengths.max()})")
        )
    if table.time is None:
        return
    time = table.time
    report.facts.append(("time", f"{time.min()} .. {time.max()}"))
    if table.ids is None:
        report.facts.append(("frequency", describe_frequency(time)))


def _describe_time(column: pd.Series, name: str, label: str, report: CheckReport) -> None:
    """Time range and frequency of a file whose table could not be built (its problem is
    reported already, so a time that does not parse adds nothing here)."""
    try:
        time = parse_time(column, name, label).sort_values().reset_index(drop=True)
    except LstmcliError:
        return
    report.facts.append(("time", f"{time.iloc[0]} .. {time.iloc[-1]}"))
    report.facts.append(("frequency", describe_frequency(time)))


def describe_frequency(time: pd.Series) -> str:
    """The frequency of sorted times (a pandas alias for dates, the step for numbers such as
    years or seconds): regular, regular with missing rows, or `irregular` with the gaps
    wider than 1.5 steps."""
    freq = infer_freq(time)
    if freq is not None:
        return f"{freq} (regular)"
    freq = frequency(time)
    if freq is not None:
        gaps = missing_steps(time, freq)
        first = time.iloc[int(np.flatnonzero(gaps)[0])] if gaps.any() else None
        return (
            f"{freq} with rows missing: {int(gaps.sum())} gap(s), the first after {first} "
            "(rows are read in order; data.missing fills empty cells, not missing rows)"
        )
    steps = time.diff().iloc[1:].reset_index(drop=True)
    if steps.empty:
        return "unknown (one row)"
    usual = steps.median()
    if pd.api.types.is_numeric_dtype(time) and np.allclose(steps, usual, rtol=1e-9, atol=0):
        return f"every {usual:g} (regular)"
    gaps = steps[steps > usual * 1.5]
    text = f"irregular; usual step {usual}"
    if len(gaps):
        widest = int(np.argmax(gaps.to_numpy()))
        at = time.iloc[gaps.index[widest]]
        text += (
            f", {len(gaps)} gap(s) wider than 1.5 steps, the widest {gaps.iloc[widest]} after {at}"
        )
    return text


def compare_data(source: str, run_dir: Path) -> tuple[str, str | None]:
    """What `run_dir` was trained on (from its manifest), and why `source` is not that file
    (None: it is, byte for byte)."""
    manifest = run_manifest(run_dir, "nothing to compare with")
    ran = manifest["data"]
    span = f", {ran['first']} .. {ran['last']}" if ran.get("first") else ""
    trained = (
        f"{ran['path']}: {ran['bytes']} bytes, {ran['rows']} rows{span}, SHA-256 {ran['sha256']}"
    )
    return trained, data_difference(source, run_dir, manifest)
