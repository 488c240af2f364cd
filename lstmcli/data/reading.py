"""Reading tables: CSV files, Parquet files, bundled datasets and standard input.

Ids are read as text and duplicate headers refused here, so every command sees a file the
same way; checking and ordering the rows is table.py's and rows.py's job.
"""

from __future__ import annotations

import csv
import io
import warnings
from importlib import resources
from pathlib import Path
from typing import TextIO

import pandas as pd

from lstmcli.config.fields import BUILTIN_PREFIX
from lstmcli.errors import LstmcliError


def builtin_datasets() -> list[str]:
    folder = resources.files("lstmcli") / "datasets"
    return sorted(p.name.removesuffix(".csv") for p in folder.iterdir() if p.name.endswith(".csv"))


def data_file(source: str) -> Path:
    """The file behind a data path: `builtin:NAME` is a CSV inside the package."""
    if not source.startswith(BUILTIN_PREFIX):
        return Path(source)
    name = source.removeprefix(BUILTIN_PREFIX)
    if name not in builtin_datasets():
        raise LstmcliError(f"unknown built-in dataset {name!r}; available: {builtin_datasets()}")
    return Path(str(resources.files("lstmcli") / "datasets" / f"{name}.csv"))


def read_csv(
    source: str | Path | TextIO,
    label: str | None = None,
    columns: list[str] | None = None,
    text: list[str | None] = (),
) -> pd.DataFrame:
    """Read a CSV file, `builtin:NAME`, or an open text stream into a DataFrame.

    With `columns`, a file is read with only those (when it has them all). The `text` columns
    (series ids) are read as text: ids are labels, so `07` stays `07` and never merges with
    `7`. Duplicate column names are refused (pandas would rename the second to `y.1`).
    """
    label = label or str(source)
    if isinstance(source, str):
        source = data_file(source)
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() in PARQUET_SUFFIXES:
        return read_parquet(Path(source), label, columns, text)
    dtype = {name: str for name in text if name} or None
    try:
        if isinstance(source, (str, Path)):
            with open(source, encoding="utf-8", newline="") as file:
                first_line = file.readline()
            data: str | Path | TextIO = source
        else:  # a stream is read once: keep its text for the header and the rows
            content = source.read()
            first_line, data = content.split("\n", 1)[0], io.StringIO(content)
        names = _header(first_line, label)
        usecols = None
        if columns is not None and set(columns) <= set(names):
            usecols = [c for c in names if c in set(columns)]
        with warnings.catch_warnings():  # more fields than the header: refused, not shifted
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                data, header=0, names=names, usecols=usecols, dtype=dtype, index_col=False
            )
    except pd.errors.ParserWarning:
        raise LstmcliError(
            f"cannot read CSV {label}: its rows have more fields than its header's "
            f"{len(names)} ({', '.join(names)}); decimal commas, or a separator other than "
            "','? lstmcli reads comma-separated files with decimal points"
        ) from None
    except FileNotFoundError:
        raise LstmcliError(f"data file not found: {label}") from None
    except IsADirectoryError:
        raise LstmcliError(f"data path is a folder, not a CSV file: {label}") from None
    except pd.errors.EmptyDataError:
        raise LstmcliError(f"data file is empty: {label}") from None
    except (ValueError, OSError) as e:  # ParserError and UnicodeDecodeError are ValueErrors
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LstmcliError(f"cannot read CSV {label}: {detail}") from None
    if frame.empty:
        raise LstmcliError(f"data file has a header but no rows: {label}")
    return frame


PARQUET_SUFFIXES = (".parquet", ".pq")


def read_parquet(
    path: Path, label: str, columns: list[str] | None = None, text: list[str | None] = ()
) -> pd.DataFrame:
    """A Parquet file (pyarrow), read column-wise: only `columns` when it has them all, so a
    wide file costs only what a run uses. Id columns become text, as in a CSV."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        wanted = (
            [c for c in names if c in set(columns)]
            if columns and set(columns) <= set(names)
            else None
        )
        frame = pq.read_table(path, columns=wanted).to_pandas()
    except FileNotFoundError:
        raise LstmcliError(f"data file not found: {label}") from None
    except IsADirectoryError:
        raise LstmcliError(f"data path is a folder, not a Parquet file: {label}") from None
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LstmcliError(f"cannot read Parquet {label}: {detail}") from None
    for name in text:
        if name and name in frame.columns:
            frame[name] = frame[name].astype(str)
    if frame.empty:
        raise LstmcliError(f"data file has no rows: {label}")
    return frame


def _header(line: str, label: str) -> list[str]:
    """The column names of a CSV's first line, without stray spaces around them (`date, y`);
    a name given twice is an error (pandas would quietly rename the second `y.1`)."""
    if not line.strip():
        raise pd.errors.EmptyDataError
    names = [name.strip() for name in next(csv.reader([line]))]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise LstmcliError(f"{label} has duplicate column names {repeated}; rename them")
    return names


def read_input(
    source: str | None, id_column: str | None, stdin: TextIO | None
) -> tuple[pd.DataFrame, str]:
    """What `predict` and `evaluate` read: a file, `builtin:NAME`, or `stdin` when `source`
    is None or `-`; with its name for messages. Ids are read as text."""
    if source in (None, "-"):
        if stdin is None or stdin.isatty():  # closed (<&-) or a terminal
            raise LstmcliError("no input: give a CSV file or pipe one in on stdin")
        return read_csv(stdin, "<stdin>", text=[id_column]), "<stdin>"
    path = source if source.startswith(BUILTIN_PREFIX) else Path(source)
    return read_csv(path, source, text=[id_column]), source


def at_row(row: int) -> str:
    """Where a bad value is, as a person finds it in the file (the header is line 1)."""
    return f"at line {row + 2}"
