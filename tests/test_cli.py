from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lstmcli.cli import app
from lstmcli.config.edit import validate_config
from lstmcli.config.schema import Config
from lstmcli.run import pipeline
from tests.conftest import tiny_config
from tests.helpers import run_wide as run

ROOT = Path(__file__).resolve().parents[1]


def test_train_end_to_end(tmp_path: Path, config_path: Path) -> None:
    out = tmp_path / "runs" / "one"
    result = run("train", "--config", str(config_path), "--output", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{out}\n"  # data on stdout: the run folder only
    assert {p.name for p in out.iterdir()} == {
        "model.pt",
        "last.pt",
        "config.yaml",
        "history.csv",
        "metrics.json",
        "test_predictions.csv",
        "manifest.json",
    }
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["device"] == "cpu"
    assert "test metrics" in result.stderr
    assert "\nforecast: the network alone\n" in result.stderr  # tiny_config: model.blend none
    assert re.search(r"^epoch 3/3  train ", result.stderr, re.M)
    saved = validate_config(yaml.safe_load((out / "config.yaml").read_text()))
    assert saved.training.epochs == 3 and saved.data.path.endswith("series.csv")


def test_quiet_prints_only_the_run_folder(tmp_path: Path, config_path: Path) -> None:
    result = run("train", "-c", str(config_path), "-o", str(tmp_path / "r"), "--quiet")
    assert result.exit_code == 0
    assert result.stdout == f"{tmp_path / 'r'}\n" and result.stderr == ""


def test_quiet_silences_every_warning_and_not_errors(
    tmp_path: Path, config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    levels = ["-s", "model.levels=[99.9]"]  # the val part has too few scores for 99.9%
    loud = run("train", "-c", str(config_path), "-o", str(tmp_path / "a"), *levels)
    assert loud.exit_code == 0, loud.stderr
    assert "Warning: model.levels: 99.9% needs at least 999 calibration scores" in loud.stderr
    quiet = run("train", "-c", str(config_path), "-o", str(tmp_path / "b"), *levels, "-q")
    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.stdout == f"{tmp_path / 'b'}\n" and quiet.stderr == ""
    # Warnings outside lstmcli's own channel too: Python's and a library's log records.
    resolve = pipeline.resolve_device

    def noisy(name: str) -> object:
        warnings.warn("a library's UserWarning", UserWarning, stacklevel=1)
        logging.getLogger("somelibrary").warning("a library's log warning")
        return resolve(name)

    monkeypatch.setattr(pipeline, "resolve_device", noisy)
    noisy_run = run("train", "-c", str(config_path), "-o", str(tmp_path / "c"), "-q")
    assert noisy_run.exit_code == 0, noisy_run.stderr
    assert noisy_run.stderr == ""
    assert logging.root.manager.disable == logging.NOTSET  # as it was before the command
    failed = run("train", "-c", str(config_path), "-o", str(tmp_path / "b"), *levels, "-q")
    assert failed.exit_code == 1  # errors still print
    assert failed.stderr.startswith(f"Error: run folder {tmp_path / 'b'} already exists")
    assert len(failed.stderr.splitlines()) == 1


def test_bad_config_fails_with_one_line_per_problem(config_path: Path) -> None:
    raw = yaml.safe_load(config_path.read_text())
    raw["training"]["epohcs"] = 3
    raw["model"]["num_layers"] = 0
    config_path.write_text(yaml.safe_dump(raw))
    result = run("train", "--config", str(config_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {config_path}: model.num_layers: must be a whole number of at least 1 or "
        "'auto', got 0",
        f"Error: {config_path}: training.epohcs: unknown key; did you mean 'epochs'?",
    ]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "missing.yaml"], "Error: missing.yaml: file not found"),
        (["--set", "data.path=nope.csv"], "Error: data file not found: "),
        (["--set", "data.target=zz"], "Error: column(s) ['zz'] not found in "),
        (["--set", "training.device=cuda:3"], "Error: device 'cuda:3' is not available"),
        (["--set", "data.lookback=500"], "Error: the train part has "),
        (
            ["--set", "training.epochs=oops"],
            "Error: --set: training.epochs: must be a whole number of at least 0 or 'auto'",
        ),
    ],
)
def test_bad_input_is_one_error_line_and_exit_1(
    tmp_path: Path, csv_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = ["--set", f"data.path={csv_path}", "--set", "data.target=y", "-o", "out"]
    result = run("train", *base, *args)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not (tmp_path / "out").exists()  # nothing written on bad input


def test_existing_run_folder_is_kept_unless_overwrite(tmp_path: Path, config_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run("train", "-c", str(config_path), "-o", str(out), "-q")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: run folder {out} already exists and is not empty")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    result = run("train", "-c", str(config_path), "-o", str(out), "-q", "--overwrite")
    assert result.exit_code == 0 and (out / "model.pt").is_file()


def test_print_config_shows_the_resolved_config(config_path: Path, csv_path: Path) -> None:
    result = run("train", "-c", str(config_path), "--set", "training.epochs=9", "--print-config")
    assert result.exit_code == 0
    cfg = validate_config(yaml.safe_load(result.stdout))
    assert cfg.training.epochs == 9 and cfg.data.path == str(csv_path)


def test_init_writes_the_defaults_and_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    assert run("init", str(path)).exit_code == 0
    assert validate_config(yaml.safe_load(path.read_text())) == Config()
    path.write_text("mine")
    result = run("init", str(path))
    assert result.exit_code == 1 and path.read_text() == "mine"
    assert result.stderr == f"Error: {path} already exists; pass --force to replace it\n"


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        result = run(name, "--help")
        assert result.exit_code == 0 and "Example" in result.stdout
        assert f"lstmcli {name}" in readme


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from lstmcli.cli import main\n"
        "from lstmcli.cli import app\n"
        "names = [c.name or c.callback.__name__ for c in app.registered_commands]\n"
        "assert len(names) >= 4, names\n"
        "for args in [['--help']] + [[name, '--help'] for name in names]:\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = {'torch', 'pandas', 'sklearn', 'matplotlib'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_installed_entry_point_and_module() -> None:
    for command in (["lstmcli", "--version"], [sys.executable, "-m", "lstmcli", "--version"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.startswith("lstmcli 0.")
    result = subprocess.run(["lstmcli", "train", "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2  # a bad command line, as Click reports it


@pytest.mark.slow
def test_ctrl_c_keeps_the_best_model_and_exits_130(tmp_path: Path, csv_path: Path) -> None:
    config = tiny_config(csv_path, training={"epochs": 100000, "patience": None})
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    process = subprocess.Popen(
        ["lstmcli", "train", "-c", str(path), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:  # not a terminal: plain progress lines
        if line.startswith("epoch 1/"):
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stdout == f"{out}\n"
    assert "Interrupted after " in stderr and "Traceback" not in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["epochs_run"] >= 1
    history = pd.read_csv(out / "history.csv")
    assert len(history) == metrics["epochs_run"]
    from lstmcli.model.checkpoint import load_checkpoint

    assert load_checkpoint(out).config.training.epochs == 100000


def test_every_config_key_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for section, field in Config.model_fields.items():
        for key in field.annotation.model_fields:
            assert f"`{section}.{key}`" in readme


@pytest.mark.parametrize("name", ["quickstart", "tutorial", "elnino"])
@pytest.mark.slow
def test_shipped_configs_train_end_to_end(tmp_path: Path, name: str) -> None:
    config = ROOT / "configs" / f"{name}.yaml"
    out = tmp_path / name
    result = run("train", "-c", str(config), "--set", "training.epochs=2", "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["model"]["rmse"] > 0
    assert set(metrics["baselines"]) == {"naive", "seasonal_naive"}
