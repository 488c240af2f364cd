"""MLflow tracking (`output.track: mlflow`): a run's settings, losses, scores, files and
manifest in an MLflow tracking store, beside the run folder (which stays the record).

Optional: needs the `lstmcli[mlflow]` extra. The store is `output.tracking_uri`, else
MLFLOW_TRACKING_URI, else MLflow's own default (sqlite:///mlflow.db in the current folder).
Runs are written through `MlflowClient` with explicit run ids, never MLflow's global active
run, so ensemble threads, tune workers and nested runs cannot cross. The MLflow run is opened
before training (a wrong URI fails in seconds) and closed with FINISHED, KILLED (interrupted)
or FAILED; a resumed run continues the same MLflow run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lstmcli.config.schema import Config, OutputConfig
from lstmcli.errors import LstmcliError, Warn

if TYPE_CHECKING:
    from lstmcli.run.loop import EpochStats

MISSING_EXTRA = (
    "output.track: mlflow needs the mlflow package, which is not installed; install the "
    "extra with: pip install 'lstmcli[mlflow]'"
)
# metrics.json's sections with one value per forecast step or per series: kept in the
# metrics.json artifact, not turned into thousands of MLflow metrics.
NOT_LOGGED = {"per_step", "series", "auto"}
# Training state for --resume and a study's database: large, and of no use elsewhere.
NOT_ARTIFACTS = {"last.pt", "study.db"}
BATCH = 100  # MLflow's log_batch takes at most 100 parameters or tags (1000 metrics)
LIVE_SECONDS = 10.0  # losses sent to the store while training runs, at most this often


def tracked(config: Config) -> bool:
    return config.output.track == "mlflow"


def require_mlflow() -> Any:
    """MLflow's client class, or the one error that names the missing extra."""
    try:
        with _quiet():
            from mlflow.tracking import MlflowClient
    except ImportError:
        raise LstmcliError(MISSING_EXTRA) from None
    return MlflowClient


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's and its database's warnings and info lines are not the user's business;
    their failures become one error naming the store."""
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass
class Tracker:
    """One open MLflow run; `logged` holds the last epoch logged per member (resume)."""

    client: Any
    uri: str
    experiment_id: str
    run_id: str
    logged: dict[str, int] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        output: OutputConfig,
        run_name: str,
        *,
        parent_run_id: str | None = None,
        earlier: dict | None = None,
    ) -> Tracker:
        """Open a new MLflow run in `output.experiment` (created when missing), or continue
        `earlier` (the manifest's `mlflow` entry of a resumed run)."""
        client_class = require_mlflow()
        given = output.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        _reachable(given)
        _openable(given or _default_uri())
        with _store(output.tracking_uri) as uri:
            client = client_class(tracking_uri=uri)
            uri = client.tracking_uri  # resolved: the URI given, the variable's, or MLflow's
            if earlier and earlier.get("tracking_uri") == uri:
                client.update_run(earlier["run_id"], status="RUNNING")
                return cls(client, uri, earlier["experiment_id"], earlier["run_id"],
                           dict(earlier.get("logged", {})))  # fmt: skip
            experiment = client.get_experiment_by_name(output.experiment)
            if experiment is None:
                experiment_id = client.create_experiment(output.experiment)
            else:
                experiment_id = experiment.experiment_id
            tags = {"mlflow.parentRunId": parent_run_id} if parent_run_id else {}
            run = client.create_run(experiment_id, run_name=run_name, tags=tags)
            return cls(client, uri, experiment_id, run.info.run_id)

    def record(self) -> dict[str, Any]:
        """What the manifest keeps to find this run again."""
        return {"tracking_uri": self.uri, "experiment_id": self.experiment_id,
                "run_id": self.run_id, "logged": self.logged}  # fmt: skip

    def log_params(self, config: Config) -> None:
        """The resolved config as parameters with dotted keys (model.hidden_size)."""
        from lstmcli.run.runs import flatten

        params = flatten(config.model_dump(mode="json"))
        self.send(params=[(k, v[:6000]) for k, v in params.items()])

    def log_tags(self, values: dict[str, Any], prefix: str = "lstmcli.") -> None:
        """Flattened values as text tags (the manifest: versions, data, machine, seconds)."""
        from lstmcli.run.runs import flatten

        self.send(tags=[(prefix + k, v[:5000]) for k, v in flatten(values).items()])

    def log_history(self, history: pd.DataFrame, members: int = 1) -> None:
        """Per-epoch losses and learning rate, stepped by epoch; each member's of an ensemble
        of `members` as member_K/train_loss. Epochs logged before (by an earlier session, or
        while training ran) are not logged again."""
        if history.empty:
            return
        member_of = history["member"] if "member" in history else pd.Series(1, history.index)
        metrics = []
        for member, rows in history.groupby(member_of.to_numpy()):
            done = self.logged.get(str(member), 0)
            prefix = f"member_{member}/" if members > 1 else ""
            for row in rows.itertuples():
                if row.epoch <= done:
                    continue
                for name in ("train_loss", "val_loss", "learning_rate"):
                    value = getattr(row, name)
                    if value is not None and math.isfinite(value):
                        metrics.append((prefix + name, float(value), int(row.epoch)))
            self.logged[str(member)] = int(rows["epoch"].max())
        self.send(metrics=metrics)

    def log_metrics(self, metrics: dict, prefix: str = "") -> None:
        """metrics.json's numbers as dotted names (model.rmse, baselines.naive.rmse,
        skill.naive, validation.rmse, per_target.<target>.model.mae, ...)."""
        values = [(prefix + k, v, 0) for k, v in _numbers(metrics).items()]
        self.send(metrics=values)

    def log_artifacts(self, run_dir: Path) -> None:
        """A folder's files (not its subfolders; all but NOT_ARTIFACTS and hidden ones)."""
        with _store(self.uri):
            for path in sorted(run_dir.iterdir()):
                if (
                    path.is_file()
                    and not path.name.startswith(".")
                    and path.name not in NOT_ARTIFACTS
                ):
                    self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str) -> None:
        """FINISHED, KILLED (interrupted) or FAILED."""
        with _store(self.uri):
            self.client.set_terminated(self.run_id, status=status)

    def send(
        self,
        params: list[tuple[str, str]] = (),
        tags: list[tuple[str, str]] = (),
        metrics: list[tuple[str, float, int]] = (),
    ) -> None:
        """Parameters and tags as (name, text), metrics as (name, value, step), in as few
        calls as MLflow's batch limits allow."""
        from mlflow.entities import Metric, Param, RunTag

        stamp = int(time.time() * 1000)
        with _store(self.uri):
            for i in range(0, len(params), BATCH):
                chunk = [Param(_key(k), v) for k, v in params[i : i + BATCH]]
                self.client.log_batch(self.run_id, params=chunk)
            for i in range(0, len(tags), BATCH):
                chunk = [RunTag(_key(k), v) for k, v in tags[i : i + BATCH]]
                self.client.log_batch(self.run_id, tags=chunk)
            for i in range(0, len(metrics), 10 * BATCH):
                chunk = [Metric(_key(k), v, stamp, s) for k, v, s in metrics[i : i + 10 * BATCH]]
                self.client.log_batch(self.run_id, metrics=chunk)


@contextlib.contextmanager
def _store(uri: str | None) -> Iterator[str | None]:
    """Calls to the tracking store: quiet, and a failure becomes one error naming it."""
    try:
        with _quiet():
            yield uri
    except LstmcliError:
        raise
    except Exception as e:  # MLflow raises its own, SQLAlchemy's, requests' and OS errors
        where = uri or "MLflow's default store (MLFLOW_TRACKING_URI unset)"
        message = " ".join(str(e).split())
        raise LstmcliError(f"MLflow tracking at {where}: {message[:700]}") from None


def _reachable(uri: str | None, timeout: float = 5.0) -> None:
    """A tracking server that does not answer fails at once: MLflow's own client retries a
    refused connection for minutes before it gives up."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise LstmcliError(
            f"MLflow tracking at {uri}: cannot connect to {parts.hostname}:{port} ({why}); "
            "is the tracking server running?"
        ) from None


def _default_uri() -> str:
    """MLflow's own store when none is given (sqlite:///mlflow.db in the current folder)."""
    with _quiet():
        import mlflow

        return mlflow.get_tracking_uri()


def _openable(uri: str) -> None:
    """A SQLite store whose file cannot be opened (or created) fails at once: MLflow retries
    opening it for about 100 seconds, with a warning each time. The file is created as
    MLflow would (an empty file is an empty database), with its missing folders."""
    import sqlite3

    match = re.match(r"sqlite(\+\w+)?:///([^?]*)", uri)
    if match is None or match.group(2) in ("", ":memory:"):
        return
    path = Path(match.group(2))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as database:
            database.execute("pragma schema_version")  # reads the header: a database at all?
    except (OSError, sqlite3.Error) as e:
        why = (e.strerror if isinstance(e, OSError) else None) or str(e)
        raise LstmcliError(
            f"MLflow tracking at {uri}: cannot open the SQLite database {path} ({why})"
        ) from None


def _numbers(tree: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested dict under dotted names, leaving out NOT_LOGGED."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        if key in NOT_LOGGED:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _numbers(value, name + ".")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                out[name] = float(value)
        elif isinstance(value, bool):
            out[name] = float(value)
    return out


def _key(name: str) -> str:
    """A name MLflow accepts: letters, digits and _ - . : / and space; 250 characters."""
    return re.sub(r"[^\w\-.:/ ]", "_", name)[:250]


def start_tracking(
    config: Config, run_dir: Path, earlier: dict | None, parent_run_id: str | None = None
) -> Tracker | None:
    """The MLflow run of a training run (None when not tracked): opened, or continued from
    the manifest of a resumed run, with the resolved config as parameters."""
    if not tracked(config):
        return None
    previous = (earlier or {}).get("mlflow")
    tracker = Tracker.open(
        config.output, run_dir.name, parent_run_id=parent_run_id, earlier=previous
    )
    if previous is None or previous.get("run_id") != tracker.run_id:
        tracker.log_params(config)  # parameters are written once: a resumed run keeps them
        tracker.log_tags({"run_dir": str(run_dir.resolve())})
    return tracker


class LiveLosses:
    """An `on_epoch` listener that sends the epochs' losses while training runs, at most
    every LIVE_SECONDS (one store write per epoch would cost more than a small model's
    epoch), so MLflow draws a long run's curves as it goes; what is left goes at the end.
    Ensemble members call it from their threads. A store that fails here costs one warning,
    never the training."""

    def __init__(self, tracker: Tracker, members: int, warn: Warn) -> None:
        self.tracker, self.members, self.warn = tracker, members, warn
        self.epochs: list[EpochStats] = []
        self.sent = time.monotonic()
        self.failed = False
        self.lock = threading.Lock()

    def __call__(self, stats: EpochStats) -> None:
        with self.lock:
            if self.failed:
                return
            self.epochs.append(stats)
            if time.monotonic() - self.sent < LIVE_SECONDS:
                return
            epochs, self.epochs, self.sent = self.epochs, [], time.monotonic()
            try:
                self.tracker.log_history(history_frame(epochs), self.members)
            except LstmcliError as e:
                self.failed = True
                self.warn(f"{e}; the losses are sent when training ends instead")


def history_frame(epochs: list[EpochStats]) -> pd.DataFrame:
    """Epochs as history.csv has them (member, epoch, losses, learning rate, ...)."""
    return pd.DataFrame([asdict(stats) for stats in epochs])


def finish_tracking(
    tracker: Tracker,
    run_dir: Path,
    metrics: dict,
    history: pd.DataFrame,
    manifest: dict,
    members: int,
) -> None:
    """Losses, scores, the manifest (as tags) and the run folder's files; then the run's
    end state. Call after the manifest naming this MLflow run is written."""
    tracker.log_history(history, members)
    tracker.log_metrics(metrics)
    sessions = manifest.get("sessions") or [{}]
    facts = {k: v for k, v in manifest.items() if k not in ("sessions", "mlflow")}
    tracker.log_tags({**facts, "seconds": sessions[-1].get("seconds", {})})
    tracker.log_artifacts(run_dir)
    tracker.end("KILLED" if metrics.get("interrupted") else "FINISHED")


def abandon(tracker: Tracker | None, status: str = "FAILED") -> None:
    """Close the MLflow run of a training that failed or was stopped at once; a store that
    fails here adds nothing to the error being reported."""
    if tracker is not None:
        with contextlib.suppress(LstmcliError):
            tracker.end(status)


STUDY_RUN_ATTR = "mlflow_run"  # the study's MLflow run, kept in the Optuna study's user attrs
TRIAL_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}


def start_study(config: Config, study: Any, study_name: str) -> Tracker:
    """The MLflow run of a tune study (the parent of its trials' runs): continued when the
    Optuna study already has one in the same store, else opened and remembered there."""
    earlier = study.user_attrs.get(STUDY_RUN_ATTR)
    tracker = Tracker.open(config.output, f"tune {study_name}", earlier=earlier)
    if earlier is None or earlier.get("run_id") != tracker.run_id:
        tracker.log_params(config)
        study.set_user_attr(STUDY_RUN_ATTR, tracker.record())
    return tracker


def trial_target(tracker: Tracker, output: OutputConfig) -> dict[str, str]:
    """What a trial (in this or a worker process) needs to log itself under the study."""
    return {"tracking_uri": tracker.uri, "experiment": output.experiment,
            "parent": tracker.run_id}  # fmt: skip


def log_trial(
    target: dict[str, str],
    number: int,
    config: Config,
    state: str,
    metric: str,
    value: float | None,
    history: list[EpochStats],
    facts: dict[str, Any],
) -> None:
    """One trial as a run nested under its study's: the trial's config as parameters, its
    validation score, the first member's per-epoch losses of the first cut, its state."""
    output = config.output.model_copy(
        update={"tracking_uri": target["tracking_uri"], "experiment": target["experiment"]}
    )
    tracker = Tracker.open(output, f"trial {number}", parent_run_id=target["parent"])
    tracker.log_params(config)
    tracker.log_tags({"trial": number, "state": state, **facts})
    if value is not None:
        tracker.send(metrics=[(metric, value, 0)])
    tracker.log_history(history_frame(history))
    tracker.end(TRIAL_STATUS[state])


def finish_study(
    tracker: Tracker, folder: Path, best: dict, metric: str, trials: int, stopped: bool
) -> None:
    """The study's best value (stepped by the trials counted), the best trial's values as
    tags (parameters are fixed once written, and a continued study may find a better one),
    and the study folder's files (trials.csv, best.yaml, the figures)."""
    tracker.send(metrics=[(f"best_{metric}", float(best["value"]), trials)])
    tracker.log_tags({"best_trial": best["number"], "best": best["params"]})
    tracker.log_artifacts(folder)
    tracker.end("KILLED" if stopped else "FINISHED")
