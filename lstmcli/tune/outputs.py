"""What a study leaves in its folder: trials.csv, best.yaml and the figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from lstmcli.config.io import config_from_yaml, config_to_yaml
from lstmcli.config.schema import Config
from lstmcli.errors import LstmcliError
from lstmcli.files import csv_text, write_text
from lstmcli.tune.plan import StudyPlan
from lstmcli.tune.study import require_optuna

if TYPE_CHECKING:
    import optuna

TRIALS_FILE = "trials.csv"
BEST_CONFIG = "best.yaml"
BEST_RUN = "best"
MIN_IMPORTANCE_TRIALS = 8  # fewer completed trials say little about which key matters


def trials_frame(study: optuna.Study, plan: StudyPlan) -> pd.DataFrame:
    """trials.csv: number, state, each searched value, the metric, epochs, seconds, and why
    a trial failed. Surplus trials (never run) are left out."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):
            continue
        state = t.state.name.lower()
        if t.user_attrs.get("interrupted"):
            state = "interrupted"
        elif state == "fail" and "error" not in t.user_attrs:
            state = "stale"  # its process died without a word (killed, machine lost)
        row = {"number": t.number, "state": state, "base": bool(t.user_attrs.get("base"))}
        row.update({key: t.params.get(key) for key in plan.space})
        row[plan.metric] = t.value if t.state.name == "COMPLETE" else None
        if plan.folds > 1:  # each validation cut's figure, the first the split's own
            row["fold_values"] = json.dumps(t.user_attrs.get("folds"))
        row["epochs"] = t.user_attrs.get("epochs")
        row["seconds"] = t.user_attrs.get("seconds")
        row["error"] = t.user_attrs.get("error")
        row["note"] = t.user_attrs.get("moved") or None
        rows.append(row)
    return pd.DataFrame(rows)


def best_trial(study: optuna.Study) -> dict | None:
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not done:
        return None
    best = min(done, key=lambda t: (t.value, t.number))
    return {
        "number": best.number,
        "value": best.value,
        "params": dict(best.params),
        "config": best.user_attrs["config"],
    }


def finish(study: optuna.Study, plan: StudyPlan, folder: Path) -> tuple[pd.DataFrame, dict]:
    """trials.csv, best.yaml and the figures; an error when no trial completed."""
    frame = trials_frame(study, plan)
    write_text(folder / TRIALS_FILE, csv_text(frame))
    best = best_trial(study)
    if best is None:
        reasons = frame["error"].dropna().unique().tolist() if len(frame) else []
        why = f": {reasons[0]}" if reasons else ""
        raise LstmcliError(f"no trial of the study completed{why} (see {folder / TRIALS_FILE})")
    # best.yaml's own run folder, next to the study: `train -c best.yaml` writes there, not
    # into the folder the base config named (another run's, such as the quick start's).
    retrain = folder.parent / f"{folder.name}-best"
    chosen = config_from_yaml(best["config"], "tune", {"output.dir": str(retrain)})
    write_text(folder / BEST_CONFIG, config_to_yaml(chosen))
    write_figures(study, frame, plan, folder)
    return frame, best


def write_figures(study: optuna.Study, frame: pd.DataFrame, plan: StudyPlan, folder: Path) -> None:
    """history.png always; importance.png once enough trials completed (PED-ANOVA: no
    scikit-learn needed)."""
    from lstmcli.use.figures import importance_figure, tune_history_figure
    from lstmcli.use.plot import save

    save(tune_history_figure(frame, plan.metric), folder / "history.png")
    complete = int((frame["state"] == "complete").sum()) if len(frame) else 0
    if complete >= MIN_IMPORTANCE_TRIALS and len(plan.space) > 1:
        optuna = require_optuna()
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        try:
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError):  # e.g. every trial with the same values
            return
        save(importance_figure(importances, plan.metric), folder / "importance.png")


def best_config(best: dict, folder: Path) -> Config:
    """best.yaml as a config whose run folder is the study's `best` folder."""
    return config_from_yaml(
        best["config"], str(folder / BEST_CONFIG), {"output.dir": str(folder / BEST_RUN)}
    )
