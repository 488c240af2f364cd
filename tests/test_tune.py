"""`lstmcli tune`: the space is checked before any trial, trials are chosen on the val part
only, a study continues where it stopped, workers share it without extra trials, pruning
stops trials early, and best.yaml trains to the figure the study reported."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lstmcli.config.edit import validate_config
from lstmcli.config.schema import Config
from lstmcli.errors import ConfigError
from lstmcli.tune import plan as tune_plan
from lstmcli.tune import study as tune_study
from lstmcli.tune import tune_run
from lstmcli.tune.study import open_study

from .conftest import seasonal_frame, tiny_config
from .helpers import run

pytest.importorskip("optuna")

SPACE = {
    "model.hidden_size": {"type": "choice", "values": [4, 8]},
    "training.learning_rate": {"type": "float", "low": 0.001, "high": 0.02, "log": True},
}


def study_config(csv: Path, trials: int = 3, **tune: object) -> dict:
    config = tiny_config(csv)
    config["tune"] = {"trials": trials, "space": SPACE, "pruner": "none", **tune}
    return config


def write(folder: Path, config: dict) -> Path:
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def trials(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "trials.csv")


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {"model.hiden_size": {"type": "int", "low": 4, "high": 8}},
            "tune.space.model.hiden_size: unknown key; did you mean 'hidden_size'?",
        ),
        (
            {"model.hidden_size": {"type": "int", "low": 0, "high": 8}},
            "tune.space.model.hidden_size: must be a whole number of at least 1 or 'auto', got 0",
        ),
        (
            {"data.horizon": {"type": "int", "low": 1, "high": 3}},
            "tune.space.data.horizon: cannot be searched (it changes what is read, forecast or "
            "saved, not how well)",
        ),
        (
            {"model.hidden_size": {"type": "int", "low": 4.5, "high": 8}},
            "tune.space.model.hidden_size: an int range needs whole low, high and step",
        ),
        (
            {"model.head": {"type": "choice", "values": [[8], [16]]}},
            "tune.space.model.head: choice values must be numbers, text, true/false or null",
        ),
        (
            {"training.learning_rate": {"type": "float", "low": 0.1, "high": 0.01}},
            "tune.space.training.learning_rate: low (0.1) is above high (0.01)",
        ),
    ],
)
def test_a_bad_space_is_an_error_before_any_trial(
    tmp_path: Path, csv_path: Path, space: dict, message: str
) -> None:
    config = study_config(csv_path)
    config["tune"]["space"] = space
    path = write(tmp_path, config)
    result = run("tune", "-c", str(path), "-o", str(tmp_path / "study"))
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"Error: {path}: {message}"]
    assert not (tmp_path / "study").exists()  # nothing written
    # The same space given with --set is blamed on --set, not on the file.
    del config["tune"]["space"]
    path = write(tmp_path, config)
    given = f"tune.space={json.dumps(space)}"
    result = run("tune", "-c", str(path), "--set", given, "-o", "study")
    assert result.stderr.splitlines() == [f"Error: --set: {message}"]


def test_val_loss_across_loss_units_and_a_split_without_val_are_refused(
    tmp_path: Path, csv_path: Path
) -> None:
    config = study_config(csv_path, metric="val_loss")
    config["tune"]["space"] = {"data.scaler": {"type": "choice", "values": ["minmax", "robust"]}}
    result = run("tune", "-c", str(write(tmp_path, config)), "-o", str(tmp_path / "s1"))
    assert result.exit_code == 1
    assert "val_loss is not comparable across trials that change data.scaler" in result.stderr
    config = study_config(csv_path)
    config["data"]["split"] = {"train": 0.8, "test": 0.2}
    config["data"]["validation"] = "none"
    result = run("tune", "-c", str(write(tmp_path, config)), "-o", str(tmp_path / "s2"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: tune chooses on the val part, and this split has none")


@pytest.mark.slow
def test_a_study_continues_and_best_yaml_trains_to_its_figure(
    tmp_path: Path, csv_path: Path
) -> None:
    path = write(tmp_path, study_config(csv_path, trials=2))
    study = tmp_path / "study"
    first = run("tune", "-c", str(path), "-o", str(study), "-q")
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == str(study)
    before = trials(study)
    assert list(before["number"]) == [0, 1] and set(before["state"]) == {"complete"}
    # Trial 0 is the config as given (its values lie in the space); the search starts there.
    assert list(before["base"]) == [True, False]
    assert before.loc[0, "model.hidden_size"] == 8
    assert before.loc[0, "training.learning_rate"] == pytest.approx(0.003)
    more = run("tune", "-c", str(path), "-o", str(study), "--trials", "3")
    assert more.exit_code == 0, more.output
    # the continued study reports its new trial only, with that trial's own time
    lines = [line for line in more.stderr.splitlines() if line.startswith("trial ")]
    assert len(lines) == 1 and lines[0].startswith("trial 2  val_rmse ")
    assert lines[0].endswith(f"{trials(study)['seconds'].iloc[2]:.1f}s")
    after = trials(study)
    assert list(after["number"]) == [0, 1, 2]  # the total counts, the first two are kept
    pd.testing.assert_frame_equal(after.iloc[:2].drop(columns="seconds"),
                                  before.drop(columns="seconds"))  # fmt: skip
    for name in ("study.db", "best.yaml", "history.png", "best/model.pt", "best/metrics.json"):
        assert (study / name).exists(), name
    best = after.loc[after["val_rmse"].idxmin()]
    # The best run folder and a fresh `train` from best.yaml reproduce the trial's figure.
    tested = yaml.safe_load((study / "best" / "metrics.json").read_text())
    assert tested["validation"]["rmse"] == pytest.approx(best["val_rmse"], rel=1e-6)
    assert "model" in tested and "rmse" in tested["model"]  # the best is scored on the test part
    again = run("train", "-c", str(study / "best.yaml"), "-o", str(tmp_path / "again"), "-q")
    assert again.exit_code == 0, again.output
    retrained = yaml.safe_load((tmp_path / "again" / "metrics.json").read_text())
    assert retrained["validation"]["rmse"] == pytest.approx(best["val_rmse"], rel=1e-6)
    chosen = yaml.safe_load((study / "best.yaml").read_text())
    assert chosen["model"]["hidden_size"] == best["model.hidden_size"]
    assert chosen["output"]["dir"] == str(tmp_path / "study-best")  # a folder of its own
    # Another config cannot continue this study.
    changed = study_config(csv_path, trials=4)
    changed["training"]["epochs"] = 4
    other = run("tune", "-c", str(write(tmp_path, changed)), "-o", str(study))
    assert other.exit_code == 1
    assert "was started with another config" in other.stderr


@pytest.mark.slow
def test_the_test_rows_never_influence_the_search(tmp_path: Path) -> None:
    frame = seasonal_frame()
    results = []
    for name, scale in (("a", 1.0), ("b", 50.0)):
        changed = frame.copy()
        test_rows = slice(int(len(frame) * 0.8), None)  # inside the 20% test part
        noise = np.random.default_rng(1).normal(0, scale, len(changed.iloc[test_rows]))
        changed.loc[changed.index[test_rows], "y"] = changed["y"].iloc[test_rows] * scale + noise
        csv = tmp_path / f"{name}.csv"
        changed.to_csv(csv, index=False)
        config = validate_config(study_config(csv, trials=3))
        results.append(tune_run(config, tmp_path / f"study_{name}"))
    a, b = (r.trials.drop(columns="seconds") for r in results)
    pd.testing.assert_frame_equal(a, b)  # same values, same metrics, same choice
    assert results[0].best == results[1].best | {"config": results[0].best["config"]}
    # ... while the test scores of the two best runs differ, as their test rows do.
    assert results[0].run.metrics["model"]["rmse"] != results[1].run.metrics["model"]["rmse"]


@pytest.mark.slow
def test_pruning_stops_hopeless_trials_early(tmp_path: Path, csv_path: Path, monkeypatch) -> None:
    from lstmcli.data.table import load_table

    monkeypatch.setattr(tune_study, "PRUNE_STARTUP_TRIALS", 2)
    monkeypatch.setattr(tune_study, "PRUNE_WARMUP_EPOCHS", 2)
    raw = study_config(csv_path, trials=3, pruner="median", sampler="random")
    raw["training"]["epochs"] = 8
    raw["tune"]["space"] = {
        "training.learning_rate": {"type": "float", "low": 1e-6, "high": 0.05, "log": True}
    }
    config = validate_config(raw)
    # Two good rates first (the pruner's reference: the base config's 0.003, queued as trial
    # 0 when a study is created, and 0.02), then a hopeless one.
    plan, _ = tune_plan.plan_study(config, load_table(config.data, print), tmp_path / "study")
    study, _ = open_study(plan, create=True)
    (queued,) = study.get_trials()  # queued, not yet run
    assert queued.system_attrs["fixed_params"] == {"training.learning_rate": 0.003}
    for rate in (0.02, 1e-6):
        study.enqueue_trial({"training.learning_rate": rate})
    result = tune_run(config, tmp_path / "study")
    frame = result.trials.set_index("training.learning_rate")
    assert list(frame["state"]) == ["complete", "complete", "pruned"]
    assert frame.loc[1e-6, "epochs"] == 2  # at the end of the warm-up, of 8 epochs
    assert list(frame["epochs"].iloc[:2]) == [8, 8]
    assert result.best["params"]["training.learning_rate"] != 1e-6


def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path: Path, csv_path: Path) -> None:
    config = study_config(csv_path, trials=4, sampler="grid")
    config["tune"]["space"] = {"data.lookback": {"type": "choice", "values": [12, 500]}}
    result = tune_run(validate_config(config), tmp_path / "study")
    frame = result.trials.set_index("data.lookback")
    assert frame.loc[12, "state"] == "complete"
    assert frame.loc[500, "state"] == "fail" and "lookback" in frame.loc[500, "error"]
    assert result.best["params"] == {"data.lookback": 12}
    # When every trial fails, it is an error that says why.
    config["tune"]["space"] = {"data.lookback": {"type": "choice", "values": [500, 600]}}
    study = tmp_path / "s2"
    out = run("tune", "-c", str(write(tmp_path, config)), "-o", str(study), "-q")
    assert out.exit_code == 1
    assert out.stderr.splitlines()[-1].startswith("Error: no trial of the study completed: ")
    assert (study / "trials.csv").exists()  # the failed trials and their reasons


@pytest.mark.slow
def test_an_interrupted_study_keeps_its_trials_and_continues(
    tmp_path: Path, csv_path: Path
) -> None:
    config = validate_config(study_config(csv_path, trials=3))
    calls = {"n": 0}

    def stop_in_second_trial() -> bool:  # asked after every batch
        calls["n"] += 1
        return calls["n"] > 40

    stopped = tune_run(config, tmp_path / "study", should_stop=stop_in_second_trial)
    assert stopped.run is None  # no best run trained after Ctrl-C
    states = list(stopped.trials["state"])
    assert states[0] == "complete" and states[-1] == "interrupted"
    done = tune_run(config, tmp_path / "study")
    counted = done.trials[done.trials["state"] != "interrupted"]
    assert len(counted) == 3 and set(counted["state"]) == {"complete"}


@pytest.mark.slow
def test_two_workers_share_one_study_without_extra_trials(tmp_path: Path, csv_path: Path) -> None:
    path = write(tmp_path, study_config(csv_path, trials=5))
    study = tmp_path / "study"
    command = [sys.executable, "-m", "lstmcli", "tune", "-c", str(path), "-o", str(study), "-q"]
    # Two commands on one SQLite file at once, one of them with two worker processes.
    first = subprocess.Popen([*command, "--jobs", "2"], stderr=subprocess.PIPE, text=True)
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second.stderr
    frame = trials(study)
    assert frame["number"].is_unique
    assert (frame["state"] == "complete").sum() == 5  # exactly the total, not one more
    params = frame[["model.hidden_size", "training.learning_rate"]].apply(tuple, axis=1)
    assert params.is_unique  # no point trained twice


def test_missing_optuna_names_the_extra(tmp_path: Path, csv_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    result = run("tune", "-c", str(write(tmp_path, study_config(csv_path))))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: lstmcli tune needs Optuna, which is not installed; install it with "
        "`pip install 'lstmcli[tune]'`"
    )


def test_the_default_space_fits_the_data() -> None:
    from lstmcli.config.resolve import resolve
    from lstmcli.data.table import load_table

    data = {"path": "builtin:elnino_monthly", "time_column": "date", "target": "sst_celsius",
            "horizon": 12, "split": 0.75}  # fmt: skip
    config = Config.model_validate({"data": data})
    table = load_table(config.data, lambda _: None)
    base = resolve(config, table).config
    space = tune_plan.default_space(base, table)
    lookbacks = space["data.lookback"].values
    assert base.data.lookback in lookbacks and all(v % 12 == 0 for v in lookbacks)
    assert max(lookbacks) == 48  # four seasons: 732 rows leave windows enough
    short = Config.model_validate({"data": data | {"split": 0.1}, "model": {"init": "none"}})
    short_base = resolve(short, table).config  # 73 training rows: 42 windows at lookback 20
    short_space = tune_plan.default_space(short_base, table)["data.lookback"].values
    assert short_space == [12, 20, 24]  # 36 would leave 26 windows, under MIN_TRAIN_WINDOWS
    assert set(space) >= {"model.hidden_size", "training.learning_rate"}
    # From the builtin prior (the default for short data) the network's width is the prior's
    prior_base = resolve(Config.model_validate({"data": data | {"split": 0.1}}), table).config
    assert prior_base.model.init == "builtin:m3-monthly"
    prior_space = tune_plan.default_space(prior_base, table)
    assert "model.hidden_size" not in prior_space and 36 in prior_space["data.lookback"].values
    with pytest.raises(ConfigError, match="tune.space.model.hidden_size: the network's shape"):
        tune_plan.check_space(prior_base, {"model.hidden_size": space["model.hidden_size"]})
    assert not set(space) & tune_plan.LOSS_UNIT_KEYS  # so pruning stays on


def test_the_default_metric_is_unit_free_across_series(tmp_path: Path) -> None:
    from lstmcli.data.table import load_table

    data = {"path": "builtin:macrodata_long", "id_column": "series", "time_column": "date",
            "target": "value", "horizon": 4, "split": 0.75}  # fmt: skip
    config = Config.model_validate({"data": data})
    plan, _ = tune_plan.plan_study(config, load_table(config.data, print), tmp_path / "s")
    assert plan.metric == "val_mase"  # GDP in billions and rates in percent do not pool


def test_several_validation_cuts_score_each_trial_on_their_mean(tmp_path: Path, csv_path: Path):
    import json

    config = validate_config(study_config(csv_path, trials=2, folds=2))
    result = tune_run(config, tmp_path / "study")
    folds = [json.loads(v) for v in result.trials["fold_values"]]
    assert all(len(f) == 2 and f[0] != f[1] for f in folds)
    np.testing.assert_allclose(result.trials["val_rmse"], [np.mean(f) for f in folds])
    best = result.trials.loc[result.trials["val_rmse"].idxmin()]
    first = json.loads(best["fold_values"])[0]  # the split's own cut: what best/ reports
    assert result.run.metrics["validation"]["rmse"] == pytest.approx(first, rel=1e-6)
    moved = tune_plan.fold_config(config, 1).data.split
    assert (moved.train, moved.val) == pytest.approx((0.6, 0.1))
    dated = study_config(csv_path, folds=2)
    dated["data"]["split"] = {"val_start": "2009-01-01", "test_start": "2011-01-01"}
    out = run("tune", "-c", str(write(tmp_path, dated)), "-o", str(tmp_path / "d"))
    assert (
        out.exit_code == 1 and "tune.folds: several validation cuts need a fraction" in out.stderr
    )


def test_a_storage_url_that_cannot_work_is_one_error_at_once(tmp_path: Path, csv_path: Path):
    path = write(tmp_path, study_config(csv_path))
    for url, message in (
        ("nosuchdb://x", "Can't load plugin: sqlalchemy.dialects:nosuchdb"),
        ("postgresql://nobody@127.0.0.1:1/x", "its database driver is not installed"),
    ):
        started = time.perf_counter()
        result = run("tune", "-c", str(path), "-o", str(tmp_path / "s"), "--storage", url)
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith(f"Error: cannot open the study in {url}: ")
        assert message in lines[-1] and not any("Traceback" in line for line in lines)
        assert time.perf_counter() - started < 5  # no retries for what no retry mends


def test_trial_0_says_which_base_values_lie_outside_the_space(
    tmp_path: Path, csv_path: Path
) -> None:
    raw = study_config(csv_path, trials=1)
    raw["model"]["hidden_size"] = 16  # the space offers 4 and 8
    path = write(tmp_path, raw)
    result = run("tune", "-c", str(path), "-o", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    note = (
        "the config's model.hidden_size 16 lie(s) outside the space: trial 0 takes a value "
        "from the space there"
    )
    assert note in result.stderr.splitlines()
    frame = trials(tmp_path / "s")
    assert frame.loc[0, "base"] and frame.loc[0, "note"] == note
    assert frame.loc[0, "model.hidden_size"] in (4, 8)
    raw["tune"]["space"] = {"training.learning_rate": {"type": "float", "values": [0.1]}}
    bad = run("tune", "-c", str(write(tmp_path, raw)), "-o", "x")
    assert "a float range takes low and high, not values" in bad.stderr


@pytest.mark.slow
def test_the_best_run_is_trained_once_for_commands_sharing_a_study(
    tmp_path: Path, csv_path: Path
) -> None:
    """A command that finds the best config's run already written (by another command of the
    same study, or by itself before) uses it; while another writes it, it waits."""
    import threading

    from lstmcli.run.lock import run_folder_lock

    config = validate_config(study_config(csv_path, trials=2))
    first = tune_run(config, tmp_path / "study")
    assert first.run.training is not None  # trained here
    model = tmp_path / "study" / "best" / "model.pt"
    written = model.stat().st_mtime_ns
    held = threading.Event()

    def writer() -> None:  # another process writing the folder for a moment
        with run_folder_lock(tmp_path / "study" / "best"):
            held.set()
            time.sleep(1.5)

    thread = threading.Thread(target=writer)
    thread.start()
    held.wait()
    again = tune_run(config, tmp_path / "study")
    thread.join()
    assert again.run.training is None and again.run.metrics == first.run.metrics
    assert model.stat().st_mtime_ns == written  # not trained a second time
