"""manifest.json: what made a run, so that it can be compared with others and made again.

The versions and machine, the command line, the data file's fingerprint (path, size, SHA-256,
rows, time range), the seed, and one entry per session: a run that was interrupted and
resumed has two, each with its wall time per stage. It is written when the run folder opens
(a run killed before it ends still says what it was) and again at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmcli import __version__
from lstmcli.errors import LstmcliError, Warn

if TYPE_CHECKING:  # `lstmcli runs` reads manifests without pandas, torch or pydantic
    from lstmcli.config.schema import Config

MANIFEST_FILE = "manifest.json"
FORMAT = 1
VERSIONS = ("lstmcli", "python", "torch", "numpy", "pandas")  # what decides the computation


def now() -> str:
    """The time as ISO 8601 with the UTC offset, to the second."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def file_fingerprint(path: Path) -> dict[str, Any]:
    """A data file's path, size and SHA-256 (read in blocks: large files stay out of memory)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
    except OSError as e:
        raise LstmcliError(f"cannot read {path}: {e.strerror or e}") from None
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def data_facts(source: str, time: Any, rows: int, series: int) -> dict[str, Any]:
    """What a run read: the data file's fingerprint, its rows and series, its time range."""
    from lstmcli.data.reading import data_file

    facts = {"source": source, **file_fingerprint(data_file(source)), "rows": rows}
    facts["series"] = series
    if time is not None and len(time):
        facts["first"], facts["last"] = _time_text(time.min()), _time_text(time.max())
    return facts


def _time_text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def versions() -> dict[str, str]:
    """The versions that decide what a run computes."""
    import numpy
    import pandas
    import torch

    return {
        "lstmcli": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
    }


def machine(device: str) -> dict[str, Any]:
    """Where a session runs: platform, CPUs, torch's threads, the device (and GPU's name)."""
    import torch

    facts: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return facts


@dataclass
class StageClock:
    """Wall seconds per named stage of one session (a stage timed twice adds up)."""

    started: str = field(default_factory=now)
    seconds: dict[str, float] = field(default_factory=dict)
    _start: float = field(default_factory=time.perf_counter)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - began
            self.seconds[name] = round(self.seconds.get(name, 0.0) + spent, 3)

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self._start, 3)


def session_entry(
    clock: StageClock, command: list[str] | None, device: str, world: int, finished: bool,
    interrupted: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One session of a run: how it was started, where, how long each stage took."""
    return {
        "command": command,
        "cwd": os.getcwd(),
        "started": clock.started,
        "finished": now() if finished else None,
        "seconds": {**clock.seconds, "total": clock.total} if finished else dict(clock.seconds),
        "interrupted": interrupted,
        "processes": world,
        **versions(),
        **machine(device),
    }


def build_manifest(
    earlier: dict | None, session: dict, data: dict[str, Any], seed: int
) -> dict[str, Any]:
    """The manifest after `session`: the earlier sessions of a resumed run kept, the latest
    one's versions and machine at the top (what the run's current files came from)."""
    sessions = [*(earlier or {}).get("sessions", []), session]
    top = {k: session[k] for k in (*VERSIONS, "platform", "machine", "cpus", "threads", "device")}
    return {
        "format": FORMAT,
        **top,
        "command": sessions[0]["command"],
        "seed": seed,
        "data": data,
        "interrupted": session["interrupted"],
        "resumed": len(sessions) - 1,
        "sessions": sessions,
        **({"mlflow": earlier["mlflow"]} if earlier and "mlflow" in earlier else {}),
    }


def read_manifest(run_dir: Path) -> dict | None:
    """A run folder's manifest, or None when it has none (a run from before manifests)."""
    path = run_dir / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LstmcliError(f"cannot read {path}: {e}") from None
    if not isinstance(manifest, dict) or "data" not in manifest:
        raise LstmcliError(f"{path} is not an lstmcli manifest")
    return manifest


def run_manifest(run_dir: Path, instead: str) -> dict:
    """A run folder's manifest, or the one error that says it has none and what to do
    `instead`."""
    manifest = read_manifest(run_dir)
    if manifest is None:
        raise LstmcliError(
            f"{run_dir} has no {MANIFEST_FILE}: not a run folder, or written before lstmcli "
            f"kept manifests; {instead}"
        )
    return manifest


def write_manifest(run_dir: Path, manifest: dict) -> None:
    from lstmcli.files import write_text

    write_text(run_dir / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


@dataclass
class RunRecord:
    """The manifest of the run being written: opened with the run folder, saved at its end."""

    run_dir: Path
    data: dict[str, Any]
    seed: int
    device: str
    world: int
    command: list[str] | None
    clock: StageClock
    earlier: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the MLflow run's ids

    @classmethod
    def open(
        cls, run_dir: Path, data: dict[str, Any], seed: int, device: str, world: int,
        command: list[str] | None, clock: StageClock, resumed: bool, warn: Warn,
    ) -> RunRecord:  # fmt: skip
        """The manifest of a starting session (a resumed run keeps its earlier sessions);
        written by `save`."""
        earlier = None
        if resumed:
            try:
                earlier = read_manifest(run_dir)
            except LstmcliError as e:
                warn(f"{e}; a new manifest starts with this session")
            if earlier is not None and earlier["data"].get("sha256") != data["sha256"]:
                warn(
                    f"{data['path']} changed since {run_dir} started (SHA-256 "
                    f"{earlier['data'].get('sha256', '?')[:12]}... then, {data['sha256'][:12]}... "
                    "now); the manifest records the file as it is now"
                )
        return cls(run_dir, data, seed, device, world, command, clock, earlier)

    def save(self, finished: bool, interrupted: bool = False) -> dict:
        session = session_entry(
            self.clock, self.command, self.device, self.world, finished, interrupted
        )
        manifest = build_manifest(self.earlier, session, self.data, self.seed) | self.extra
        write_manifest(self.run_dir, manifest)
        return manifest


def data_difference(source: str, run_dir: Path, manifest: dict) -> str | None:
    """Why `source` is not the data file the run in `run_dir` was trained on (None: it is,
    byte for byte)."""
    from lstmcli.data.reading import data_file

    ran = manifest["data"]
    now = file_fingerprint(data_file(source))
    if now["sha256"] == ran["sha256"]:
        return None
    return (
        f"{source} is not the data {run_dir} was trained on: SHA-256 {now['sha256'][:16]}... "
        f"({now['bytes']} bytes) vs {ran['sha256'][:16]}... ({ran['bytes']} bytes)"
    )


def environment_changes(manifest: dict) -> list[str]:
    """What differs between the versions and machine a run was trained with and these: each
    a reason a rerun's scores may differ in their last digits."""
    now = {**versions(), **machine(str(manifest.get("device", "cpu")))}
    keys = (*VERSIONS, "platform", "machine", "device")
    return [
        f"{key} {manifest[key]} (now {now[key]})"
        for key in keys
        if key in manifest and str(manifest[key]) != str(now[key])
    ]


def chosen_in(run_dir: Path) -> dict | None:
    """What a run chose from the data and why (its manifest's `chosen`, else the `auto` of
    its metrics.json for a run from before manifests kept it)."""
    manifest = read_manifest(run_dir) or {}
    if "chosen" in manifest:
        return manifest["chosen"]
    try:
        return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")).get("auto")
    except (OSError, ValueError, AttributeError):
        return None


def rerun_config(run_dir: Path, overrides: list[str], warn: Warn) -> Config:
    """The config to train the run in `run_dir` again: its config.yaml (the resolved config)
    with `overrides`, refused when its data file changed since (unless `overrides` name
    another data.path), with the run's thread count when the config leaves it to torch (the
    thread count changes a float sum's order, so the last digits), and a warning for each
    version or machine that differs."""
    import torch

    from lstmcli.config.io import edit_config, load_config

    manifest = run_manifest(
        run_dir, f"train its config instead: lstmcli train -c {run_dir / 'config.yaml'}"
    )
    config = load_config(run_dir / "config.yaml", overrides)
    if config.data.path == manifest["data"].get("source"):
        difference = data_difference(config.data.path, run_dir, manifest)
        if difference is not None:
            raise LstmcliError(
                f"{difference}; a rerun would not be the same run (--set data.path=FILE trains "
                "on another file knowingly)"
            )
    threads = manifest.get("threads")
    if config.training.threads is None and threads and threads != torch.get_num_threads():
        config = edit_config(config, {"training.threads": threads})
        warn(f"training.threads {threads}, as {run_dir} ran (this machine has "
             f"{torch.get_num_threads()})")  # fmt: skip
    changes = environment_changes(manifest)
    if changes:
        warn(f"{run_dir} was trained with {', '.join(changes)}: scores may differ in the last "
             "digits")  # fmt: skip
    return config
