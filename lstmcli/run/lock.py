"""One writer per run folder: an exclusive operating-system lock on `<run>/.lock`.

`flock` locks belong to the open file and end with the process, so a writer killed with
SIGKILL (or a machine that rebooted) leaves no lock behind, only the file with its holder's
details: the next writer takes it over and says so. While a lock is held, the file says who
holds it (pid, host, start time), so a second writer can name it. A finished run removes the
file (unlinked before it is unlocked; a writer that locked an unlinked file tries again).
Readers (predict, evaluate, plot, export) ask with a shared lock held for an instant, so a
folder being trained is refused by name and one whose writer died is read as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from lstmcli.errors import LstmcliError, Warn, ignore_warning

LOCK_FILE = ".lock"
NO_LOCK_VARIABLE = "LSTMCLI_NO_LOCK"  # =1: write without a lock (file systems without locks)
READERS_GRACE_S = 0.1  # a writer waits this long for readers' instant shared locks to end


class RunFolderBusy(LstmcliError):
    """Another process holds the run folder's lock (it is writing the folder)."""


@contextlib.contextmanager
def run_folder_lock(folder: Path, warn: Warn = ignore_warning) -> Iterator[None]:
    """Hold the run folder's lock for the block; an error at once when another process holds
    it. A folder this call created is removed again when the block leaves it empty (a run
    that failed its checks writes nothing)."""
    if os.environ.get(NO_LOCK_VARIABLE) == "1":
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one writer is then the user's to ensure
        yield
        return
    created = not folder.exists()
    if folder.exists() and not folder.is_dir():
        raise LstmcliError(f"output path {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LstmcliError(f"cannot create run folder {folder}: {e.strerror or e}") from None
    path = folder / LOCK_FILE
    descriptor = _acquire(path, fcntl)
    try:
        previous = _holder(descriptor)
        if previous and previous.get("pid") != os.getpid():
            warn(
                f"run folder {folder}: took over the lock of {_describe(previous)}, which ended "
                "without releasing it (killed?); its last complete files are kept"
            )
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(mine).encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # before unlocking: see the module's docstring
        os.close(descriptor)  # releases the lock
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: a run that wrote nothing leaves nothing


def refuse_busy(run: Path) -> None:
    """An error naming the writer when a live process holds the lock of the run folder `run`
    (or of the folder a file such as its model.pt is in): while training, model.pt may be an
    early epoch's, without its interval calibration, and the other files may be missing or
    older. A lock whose holder has died is stale: the folder reads as it is."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock, nothing to ask
        return
    folder = run if run.is_dir() else run.parent
    try:
        descriptor = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody writes the folder (a missing model.pt is said later)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(descriptor)
        raise RunFolderBusy(
            _held_message(folder, holder, "wait for the run to finish, then use it")
        ) from None
    except OSError:
        return  # a file system without locks: nothing to ask
    finally:
        os.close(descriptor)  # releases the shared lock at once


def _acquire(path: Path, fcntl: object) -> int:
    """The lock file's descriptor, locked; the holder named in an error when it is taken."""
    readers_gone = time.monotonic() + READERS_GRACE_S
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise LstmcliError(
                f"run folder {path.parent} is not writable: {e.strerror or e}"
            ) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[attr-defined]
        except BlockingIOError:
            holder = _holder(descriptor)
            os.close(descriptor)
            if time.monotonic() < readers_gone:  # perhaps a reader's instant shared lock
                time.sleep(0.01)
                continue
            raise RunFolderBusy(_held_message(path.parent, holder)) from None
        except OSError as e:  # no locks on this file system (some network mounts)
            os.close(descriptor)
            raise LstmcliError(
                f"cannot lock run folder {path.parent}: {e.strerror or e}; this file system "
                f"has no locks: write runs to a local disk, or set {NO_LOCK_VARIABLE}=1 if you "
                "make sure yourself that one process writes each run folder"
            ) from None
        try:  # the file we locked must still be the one at the path (not unlinked meanwhile)
            if os.fstat(descriptor).st_ino == os.stat(path).st_ino:
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)


def _holder(descriptor: int) -> dict | None:
    try:
        text = os.pread(descriptor, 4096, 0).decode("utf-8", "replace")
        holder = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _held_message(
    folder: Path, holder: dict | None, advice: str = "wait for it, or use another -o"
) -> str:
    who = _describe(holder) if holder else "another process (still starting)"
    message = f"run folder {folder} is being written by {who}; {advice}"
    if holder and holder.get("host") != socket.gethostname():
        message += (
            f" (if that process no longer runs on {holder.get('host')}, delete "
            f"{folder / LOCK_FILE})"
        )
    return message


def _describe(holder: dict) -> str:
    return f"pid {holder.get('pid')} on {holder.get('host')} (started {holder.get('started')})"


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S%z")
