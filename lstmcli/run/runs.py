"""`lstmcli runs`: run folders side by side, from the files each one already holds.

A run is summarised from config.yaml (its settings, flattened to dotted keys), metrics.json
(validation and test scores, skill against the better naive baseline) and manifest.json
(when, which data, seconds). Folders that cannot be read, or that a run is still writing or
was killed writing, are listed as such: one bad folder never hides the others.
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lstmcli.run.lock import LOCK_FILE
from lstmcli.run.manifest import MANIFEST_FILE

RUN_FILES = ("config.yaml", "metrics.json", MANIFEST_FILE, "model.pt", "last.pt")
SEARCH_DEPTH = 3  # runs/<study>-tune/best is two levels below runs/
# Settings every run has its own value of: never what tells two runs apart.
NOT_SETTINGS = {"output.dir"}
COLUMNS = [
    "run", "when", "status", "data", "rows", "val_rmse", "val_mase", "test_rmse",
    "test_mase", "worst_mase", "worst", "skill", "vs", "seconds",
]  # fmt: skip


@dataclass
class RunSummary:
    """One run folder as `lstmcli runs` lists it; `values` holds the COLUMNS' values."""

    path: Path
    values: dict[str, Any]
    settings: dict[str, str] = field(default_factory=dict)  # dotted key -> value as text
    problem: str | None = None  # why (part of) the folder could not be read


def find_runs(folders: list[Path]) -> tuple[list[Path], list[str]]:
    """The run folders in or under `folders` (a folder holding any run file is a run), and
    one message per given folder that does not exist or is a file."""
    runs, missing = [], []
    for folder in folders:
        if not folder.is_dir():
            missing.append(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
            continue
        runs += _runs_under(folder, SEARCH_DEPTH)
    return sorted(dict.fromkeys(runs)), missing


def _runs_under(folder: Path, depth: int) -> list[Path]:
    if any((folder / name).exists() for name in RUN_FILES):
        return [folder]
    if depth == 0:
        return []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return [run for child in children for run in _runs_under(child, depth - 1)]


def summarise(run_dir: Path) -> RunSummary:
    """What one run folder says about its run; never raises on a bad folder."""
    values: dict[str, Any] = {name: None for name in COLUMNS}
    values["run"] = str(run_dir)
    summary = RunSummary(run_dir, values)
    problems = []
    manifest, problem = _read(run_dir / MANIFEST_FILE, json.loads)
    problems += [problem] if problem else []
    config, problem = _read(run_dir / "config.yaml", _yaml)
    problems += [problem] if problem else []
    metrics, problem = _read(run_dir / "metrics.json", json.loads)
    problems += [problem] if problem else []
    if isinstance(config, dict):
        summary.settings = {k: v for k, v in flatten(config).items() if k not in NOT_SETTINGS}
    if isinstance(manifest, dict):
        values |= _manifest_values(manifest)
    if isinstance(metrics, dict):
        values |= _metric_values(metrics)
    if values["seconds"] is None and isinstance(metrics, dict):  # a run from before manifests
        values["seconds"] = _number(metrics.get("training_seconds"))
    if values["when"] is None and (run_dir / "metrics.json").exists():
        values["when"] = _mtime(run_dir / "metrics.json")
    if values["data"] is None and isinstance(config, dict):
        values["data"] = _data_name(str((config.get("data") or {}).get("path", "")))
    values["status"] = _status(run_dir, metrics, problems)
    summary.problem = "; ".join(problems) or None
    return summary


def _yaml(text: str) -> Any:
    """YAML through libyaml when PyYAML has it (ten times faster over hundreds of runs)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _read(path: Path, parse: Any) -> tuple[Any, str | None]:
    """A file's parsed contents (None when absent), or the reason it cannot be read."""
    if not path.exists():
        return None, None
    try:
        content = parse(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return None, f"{path.name}: {first}"
    if not isinstance(content, dict):
        return None, f"{path.name}: not a mapping"
    return content, None


def _status(run_dir: Path, metrics: dict | None, problems: list[str]) -> str:
    writer = _live_writer(run_dir)
    if writer:
        return f"running ({writer})"
    if problems:
        return "unreadable"
    if metrics is None:
        resumable = (run_dir / "last.pt").exists()
        return "incomplete (resumable)" if resumable else "incomplete"
    return "interrupted" if metrics.get("interrupted") else "finished"


def _live_writer(run_dir: Path) -> str | None:
    """Who holds the folder's lock, when that process is alive (or on another host)."""
    try:
        holder = json.loads((run_dir / LOCK_FILE).read_text())
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname():
        return f"pid {pid} on {host}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # killed: the next writer takes the lock over
    except PermissionError:
        pass  # alive, another user's
    return f"pid {pid}"


def _manifest_values(manifest: dict) -> dict[str, Any]:
    data = manifest.get("data") or {}
    sessions = manifest.get("sessions") or []
    seconds = [s.get("seconds", {}).get("total") for s in sessions]
    known = [s for s in seconds if isinstance(s, (int, float))]
    return {
        "when": sessions[0].get("started") if sessions else None,
        "data": _data_name(str(data.get("source") or data.get("path") or "")),
        "rows": data.get("rows"),
        "seconds": round(sum(known), 1) if known else None,
    }


def _metric_values(metrics: dict) -> dict[str, Any]:
    model, validation = metrics.get("model") or {}, metrics.get("validation") or {}
    skills = {k: v for k, v in (metrics.get("skill") or {}).items() if _number(v)}
    vs = min(skills, key=skills.get) if skills else None  # the better baseline: least skill
    worst = ((metrics.get("series") or {}).get("aggregate") or {}).get("worst") or {}
    return {
        "worst_mase": _number(worst.get("mase")),  # a panel's series with the highest MASE
        "worst": worst.get("id"),
        "val_rmse": _number(validation.get("rmse")),
        "val_mase": _number(validation.get("mase")),
        "test_rmse": _number(model.get("rmse")),
        "test_mase": _number(model.get("mase")),
        "skill": skills[vs] if vs else None,
        "vs": vs,
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _data_name(path: str) -> str | None:
    if not path:
        return None
    return path if path.startswith("builtin:") else Path(path).name


def _mtime(path: Path) -> str:
    from datetime import datetime

    stamp = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    return stamp.isoformat(timespec="seconds")


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    """Nested settings as dotted keys; leaves as compact text (see value_text)."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= flatten(value, name + ".")
        else:
            flat[name] = value_text(value)
    return flat


def value_text(value: Any) -> str:
    """Text as it is; anything else as JSON (null, true, 0.003, [80, 95])."""
    return value if isinstance(value, str) else json.dumps(value)


def differing_keys(summaries: list[RunSummary]) -> list[str]:
    """The settings whose values are not the same in every run that has a config."""
    configured = [s.settings for s in summaries if s.settings]
    if len(configured) < 2:
        return []
    keys = sorted(set().union(*configured))
    return [k for k in keys if len({c.get(k) for c in configured}) > 1]


def list_runs(folders: list[Path]) -> tuple[list[RunSummary], list[str], list[str]]:
    """Every run under `folders` summarised, the settings that differ between them, and the
    folders that were not found."""
    paths, missing = find_runs(folders)
    summaries = [summarise(path) for path in paths]
    return summaries, differing_keys(summaries), missing


def sort_runs(summaries: list[RunSummary], key: str) -> list[RunSummary]:
    """Sorted by a column or a dotted setting (`-` first: descending); missing values last."""
    descending = key.startswith("-")
    name = key.removeprefix("-")

    def value(summary: RunSummary) -> Any:
        raw = summary.values[name] if name in summary.values else summary.settings.get(name)
        if raw is None:
            return None
        try:
            return float(raw)
        except (TypeError, ValueError):
            return str(raw)

    present = [s for s in summaries if value(s) is not None]
    absent = [s for s in summaries if value(s) is None]
    numbers = all(isinstance(value(s), float) for s in present)
    order = sorted(present, key=lambda s: value(s) if numbers else str(value(s)),
                   reverse=descending)  # fmt: skip
    return order + absent


def rows(summaries: list[RunSummary], differing: list[str]) -> list[dict[str, Any]]:
    """One record per run for --json and --csv: the columns, the differing settings, and
    the problem of a folder that could not be read."""
    return [
        {**s.values, **{k: s.settings.get(k) for k in differing}, "problem": s.problem}
        for s in summaries
    ]
