"""Writing run files safely: each file appears whole or not at all, and runs are not clobbered."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from lstmcli.errors import LstmcliError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    The file is created with the usual permissions (0666 less the umask), as open() would,
    not mkstemp's private 0600: run folders are meant to be shared and read. A failed write
    (a full disk, an I/O error) leaves the previous file as it was and no temporary file, and
    becomes one error naming the file and the cause.
    """
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise LstmcliError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def make_parents(path: Path) -> None:
    """The folders a file will be written into, created when missing; failing that, the one
    `cannot write <path>: <why>` error."""
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise LstmcliError(f"cannot write {path}: {parent} is a file, not a folder")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LstmcliError(f"cannot write {path}: {e.strerror or e}") from None


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """A frame as a Parquet file, atomically (pyarrow; the index is not written)."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow")


def frame_text(frame: pd.DataFrame, output_format: str) -> str:
    """A frame as CSV or as JSON lines (`output_format` csv or json)."""
    return json_lines_text(frame) if output_format == "json" else csv_text(frame)


def write_frame(path: Path, frame: pd.DataFrame, output_format: str) -> None:
    """A frame to a file that appears whole or not at all: Parquet when the name ends in
    .parquet or .pq, else CSV or JSON lines; missing folders are created."""
    make_parents(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        write_parquet(path, frame)
    else:
        write_text(path, frame_text(frame, output_format))


def prepare_run_dir(path: Path, overwrite: bool) -> None:
    """Create the run folder; refuse a non-empty one unless overwriting was asked for."""
    if path.exists() and not path.is_dir():
        raise LstmcliError(f"output path {path} exists and is not a folder")
    if path.is_dir() and any(p.name != ".lock" for p in path.iterdir()) and not overwrite:
        raise LstmcliError(
            f"run folder {path} already exists and is not empty; pass --overwrite or "
            "choose another --output"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LstmcliError(f"cannot create run folder {path}: {e.strerror or e}") from None
    probe = path / f".write-test.{os.getpid()}.tmp"
    try:  # a real write, not os.access: root, ACLs and immutable folders all answer truly
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        probe.unlink()
    except OSError as e:
        raise LstmcliError(f"run folder {path} is not writable: {e.strerror or e}") from None
    remove_stale_files(path)


def remove_stale_files(path: Path) -> None:
    """Temporary files left by a run that was killed while saving."""
    for stale in path.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _plain_text(column: pd.Series) -> bool:
    """Text that CSV can hold without quoting: no separators, quotes or line breaks."""
    if not (pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column)):
        return False
    values = pd.unique(column.to_numpy(dtype=object))
    return all(
        isinstance(v, str) and v and v == v.strip() and not any(c in v for c in ',"\n\r')
        for v in values
    )


def csv_text(frame: pd.DataFrame) -> str:
    """The frame as CSV without its index.

    pyarrow's writer when every column is a number or a naive time (about 10x faster than
    pandas on large predictions); times are written as dates when all are midnight, as pandas
    does. Numbers are written in their shortest exact form (an integral float as `3`, not
    `3.0`); they read back identical. Anything else goes through pandas.
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:  # pragma: no cover - pyarrow is a dependency; keep working without it
        return frame.to_csv(index=False)
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column) and column.dt.tz is None:
            stamps = column.to_numpy()
            if (stamps == stamps.astype("datetime64[D]")).all():
                columns[name] = pa.array(stamps.astype("datetime64[D]"))
            elif (stamps == stamps.astype("datetime64[s]")).all():
                columns[name] = pa.array(stamps.astype("datetime64[s]"))
            else:
                columns[name] = pa.array(stamps)
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            columns[name] = pa.array(column.to_numpy(), from_pandas=True)  # NaN -> empty cell
        elif _plain_text(column):  # series ids: written as they are, no quotes needed
            columns[name] = pa.array(column.astype(str).to_numpy(dtype=object))
        else:
            return frame.to_csv(index=False)
    header = pd.DataFrame(columns=frame.columns).to_csv(index=False)  # pandas quotes names
    body = io.BytesIO()
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    pa_csv.write_csv(pa.table(columns), body, write_options=options)
    return header + body.getvalue().decode()


def json_lines_text(frame: pd.DataFrame) -> str:
    """The frame as JSON lines, one object per row: numbers in their shortest exact form (as
    in the CSV output: 1.7e-12 stays 1.7e-12), times in ISO 8601, empty cells as null."""
    import json

    import pyarrow as pa
    import pyarrow.compute as pc

    if frame.empty:
        return ""
    fields = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            values = _iso_times(column)
        elif pd.api.types.is_bool_dtype(column):
            values = pa.array(np.where(column.to_numpy(), "true", "false"))
        elif pd.api.types.is_numeric_dtype(column):
            numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
            finite = pa.array(np.where(np.isfinite(numbers), numbers, np.nan), from_pandas=True)
            if pd.api.types.is_integer_dtype(column):
                finite = pa.array(column.to_numpy())
            values = pc.fill_null(pc.cast(finite, pa.string()), "null")
        else:
            text = column.astype(object)
            values = pa.array([json.dumps(v) if isinstance(v, str) else "null" for v in text])
        fields.append(pc.binary_join_element_wise(json.dumps(str(name)), values, ":"))
    rows = pc.binary_join_element_wise(*fields, ",")
    return "".join(f"{{{row}}}\n" for row in rows.to_pylist())


def _iso_times(column: pd.Series) -> object:
    """Times as quoted ISO 8601 strings (whole seconds without a fraction; offsets as +01:00)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    zone = column.dt.tz
    utc = column.dt.tz_convert("UTC").dt.tz_localize(None) if zone is not None else column
    stamps = utc.to_numpy()
    known = stamps[~np.isnat(stamps)]
    unit = "s" if (known == known.astype("datetime64[s]")).all() else "us"
    times = pa.array(stamps.astype(f"datetime64[{unit}]"), from_pandas=True)
    if zone is not None:
        times = pc.cast(times, pa.timestamp(unit, tz=str(zone)))
    text = pc.strftime(times, format="%Y-%m-%dT%H:%M:%S" + ("%z" if zone is not None else ""))
    if zone is not None:
        text = pc.replace_substring_regex(text, r"([+-]\d\d)(\d\d)$", r"\1:\2")
    quoted = pc.binary_join_element_wise('"', text, '"', "")
    return pc.fill_null(quoted, "null")
