"""The run folder's one writer: its lock, manifest, checkpoints, files and MLflow run.

`train` computes (prepare, fit, score) and the run folder records: it holds the folder's lock
from before any work, opens the manifest and the MLflow run once the checks have passed,
listens to fitting's events (checkpoints as training goes, losses to MLflow) and writes the
rest at the end. Nothing else in `train` writes a file, so what a folder holds, and when, is
read here.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from lstmcli.config.io import config_to_yaml
from lstmcli.config.plan import Choice, carried_choices, choices_record
from lstmcli.config.schema import Config
from lstmcli.data.training_data import TrainingData
from lstmcli.errors import LstmcliError, Warn
from lstmcli.files import csv_text, prepare_run_dir, remove_stale_files, write_text
from lstmcli.model.checkpoint import CHECKPOINT_FILE, LAST_FILE, Checkpoint, save_checkpoint
from lstmcli.run.events import CheckpointDue, EpochEnded, Event, ForecasterReady
from lstmcli.run.fitting import forecaster_checkpoint, members_of, run_checkpoint
from lstmcli.run.lock import run_folder_lock
from lstmcli.run.manifest import RunRecord, StageClock, data_facts
from lstmcli.run.tracking import (
    LiveLosses,
    Tracker,
    abandon,
    finish_tracking,
    require_mlflow,
    start_tracking,
    tracked,
)
from lstmcli.use.metrics import json_safe

if TYPE_CHECKING:
    from lstmcli.model.spec import ModelSpec
    from lstmcli.run.loop import TrainResult


@dataclass
class RunFolder:
    """A claimed run folder: locked, then opened with the resolved config and data."""

    run_dir: Path
    warn: Warn
    config: Config | None = None
    data: TrainingData | None = None
    device: str = "cpu"
    record: RunRecord | None = None
    tracker: Tracker | None = None
    live: LiveLosses | None = None

    @classmethod
    @contextlib.contextmanager
    def claim(cls, run_dir: Path, config: Config, warn: Warn, locked: bool = False):  # noqa: ANN206
        """The folder, locked for this process (a second writer fails before any work;
        `locked`: the caller holds the lock), with the tracking extra checked."""
        with contextlib.ExitStack() as held:
            if not locked:
                held.enter_context(run_folder_lock(run_dir, warn))
            if tracked(config):
                require_mlflow()
            yield cls(run_dir, warn)

    def open(
        self, config: Config, choices: list[Choice], data: TrainingData, device: str,
        world: int, command: list[str] | None, clock: StageClock, resume: Checkpoint | None,
        overwrite: bool, workers: int, threads: int, chosen_before: dict | None = None,
        tracking_parent: str | None = None,
    ) -> list[Choice]:  # fmt: skip
        """Create the folder (refusing a used one without `overwrite`; a resumed run's is
        tidied), write the manifest's first version and open the MLflow run. Returns the
        choices as the run records them: its first session's on resume, `chosen_before` (the
        run `--again` repeats) where the config still holds their values."""
        self.config, self.data, self.device = config, data, device
        if resume is not None:
            remove_stale_files(self.run_dir)
        else:
            prepare_run_dir(self.run_dir, overwrite)
        table = data.table
        facts = data_facts(config.data.path, table.time, len(table.targets), table.n_series)
        self.record = RunRecord.open(self.run_dir, facts, config.training.seed, device, world,
                                     command, clock, resume is not None, self.warn)  # fmt: skip
        before = (self.record.earlier or {}).get("chosen") if resume else chosen_before
        choices = carried_choices(before, config, choices)
        self.record.extra["chosen"] = choices_record(choices)
        self.record.extra["threads_per_member"] = threads
        self.tracker = start_tracking(config, self.run_dir, self.record.earlier, tracking_parent)
        if self.tracker is not None:
            self.record.extra["mlflow"] = self.tracker.record()
            self.live = LiveLosses(self.tracker, config.training.ensemble, self.warn)
        self.record.save(finished=False)
        return choices

    def listen(self, event: Event) -> None:
        """Fitting's events: checkpoints written, losses sent while training runs."""
        if isinstance(event, EpochEnded) and self.live is not None:
            self.live(event.stats)
        elif isinstance(event, CheckpointDue):
            self._save_members(event.spec, event.members)
        elif isinstance(event, ForecasterReady):
            checkpoint = forecaster_checkpoint(self.config, self.data, self.device,
                                               event.forecaster)  # fmt: skip
            save_checkpoint(checkpoint, self.run_dir / CHECKPOINT_FILE)

    def _save_members(self, spec: ModelSpec, plain: list[dict]) -> None:
        """last.pt with every started member's state (TrainState.to_dict: the latest weights,
        optimizer, random generators, position in its epoch) to continue from, and model.pt
        with the best weights so far of the members that finished an epoch."""
        resumable = plain[0] if len(plain) == 1 and spec.members == 1 else {"members": plain}
        last_spec, last_weights = members_of(spec, [s["last_weights"] for s in plain])
        save_checkpoint(self._checkpoint(last_spec, last_weights, state=resumable),
                        self.run_dir / LAST_FILE)  # fmt: skip
        best = [s["best_weights"] for s in plain if s["best_weights"] is not None]
        if best:
            save_checkpoint(
                self._checkpoint(*members_of(spec, best)), self.run_dir / CHECKPOINT_FILE
            )

    def _checkpoint(
        self, spec: ModelSpec, weights: dict, calibration: dict | None = None,
        state: dict | None = None,
    ) -> Checkpoint:  # fmt: skip
        return run_checkpoint(self.config, self.data, self.device, spec, weights, calibration,
                              state)  # fmt: skip

    def write(self, metrics: dict, history: pd.DataFrame, predictions: pd.DataFrame) -> None:
        """config.yaml, history.csv, metrics.json and test_predictions.csv (model.pt and
        last.pt are written as fitting goes)."""
        write_text(self.run_dir / "config.yaml", config_to_yaml(self.config))
        columns = ["epoch", "train_loss", "val_loss", "learning_rate", "seconds"]
        history = history[["member", *columns] if "member" in history else columns]
        write_text(self.run_dir / "history.csv", csv_text(history))
        write_text(self.run_dir / "metrics.json", json.dumps(json_safe(metrics), indent=2) + "\n")
        write_text(self.run_dir / "test_predictions.csv", csv_text(predictions))

    def finish(self, metrics: dict, history: pd.DataFrame, training: TrainResult) -> None:
        """The manifest's last version, then the MLflow run's scores and files (last: the
        run folder is complete whatever the store does)."""
        manifest = self.record.save(finished=True, interrupted=training.interrupted)
        if self.tracker is None:
            return
        try:
            finish_tracking(self.tracker, self.run_dir, metrics, history, manifest,
                            self.config.training.ensemble)  # fmt: skip
        except LstmcliError as e:
            abandon(self.tracker)
            raise LstmcliError(f"{e} (the run folder {self.run_dir} is complete)") from None
        self.record.extra["mlflow"] = self.tracker.record()  # the epochs logged, for a resume
        self.record.save(finished=True, interrupted=training.interrupted)

    def stopped(self) -> None:
        """A Ctrl-C before the run could finish (before its first epoch: only last.pt holds
        anything): the manifest says this session was interrupted, the MLflow run is KILLED."""
        if self.record is not None:
            self.record.save(finished=True, interrupted=True)
        abandon(self.tracker, "KILLED")

    def abandon(self, status: str = "FAILED") -> None:
        """The MLflow run of a training that failed or was stopped ends with `status`."""
        abandon(self.tracker, status)
