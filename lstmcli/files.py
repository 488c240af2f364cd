"""Writing run files safely: each file appears whole or not at all, and runs are not clobbered."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from lstmcli.errors import LstmcliError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    The file is created with the usual permissions (0666 less the umask), as open() would,
    not mkstemp's private 0600: run folders are meant to be shared and read.
    """
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_with(path: Path, writer: Callable[[IO[str]], None]) -> None:
    """Let `writer` stream text into a temporary file that then replaces `path`."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        writer(handle)


def prepare_run_dir(path: Path, overwrite: bool) -> None:
    """Create the run folder; refuse a non-empty one unless overwriting was asked for."""
    if path.exists() and not path.is_dir():
        raise LstmcliError(f"output path {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
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
    for stale in path.glob(".*.tmp"):  # left by a run that was killed while saving
        stale.unlink(missing_ok=True)
