from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lstmcli.config.edit import validate_config
from lstmcli.config.io import commented_defaults, load_config
from lstmcli.config.resolve import resolve
from lstmcli.config.schema import Config
from lstmcli.data.reading import read_csv
from lstmcli.data.table import prepare_table
from lstmcli.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    return info.value.problems


def test_unknown_key_suggests_the_close_name() -> None:
    assert problems({"training": {"epohcs": 5}}) == [
        "training.epohcs: unknown key; did you mean 'epochs'?"
    ]


def test_unknown_section_lists_the_sections() -> None:
    assert problems({"trainig": {}}) == ["trainig: unknown key; did you mean 'training'?"]
    assert problems({"zzz": 1}) == [
        "zzz: unknown key; expected one of: data, model, training, output, tune"
    ]


def test_every_problem_is_reported_with_its_key_path() -> None:
    found = problems({"training": {"epochs": "many", "device": "gpu"}, "model": {"hidden_size": 0}})
    assert len(found) == 3
    assert found[0] == "model.hidden_size: must be a whole number of at least 1 or 'auto', got 0"
    assert found[1] == "training.epochs: must be a whole number of at least 0 or 'auto', got 'many'"
    assert found[2] == "training.device: must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (1.5, "data.split: a train fraction must be between 0 and 1, got 1.5"),
        (0, "data.split: a train fraction must be between 0 and 1, got 0"),
        (
            {"train": 0.5, "val": 0.1, "test": 0.1},
            "data.split: train + val + test must add up to 1, got 0.7",
        ),
        ({"train": 0.8, "vall": 0.1}, "data.split.vall: unknown key; did you mean 'val'?"),
        (
            "half",
            "data.split: must be a train fraction, {train, val, test} or {val_start, test_start}, "
            "got 'half'",
        ),
    ],
)
def test_bad_split(split: object, message: str) -> None:
    assert problems({"data": {"split": split}}) == [message]


def test_a_float_split_means_train_then_test() -> None:
    split = validate_config({"data": {"split": 0.8}}).data.split
    assert (split.train, split.val) == (0.8, 0.0)
    assert split.test == pytest.approx(0.2)


def test_task_rules() -> None:
    assert problems({"data": {"task": "regress"}}) == [
        "data: task 'regress' needs at least one column in features"
    ]
    assert problems({"data": {"task": "regress", "features": ["x"], "horizon": 3}}) == [
        "data: horizon applies to the forecast task; regress predicts row t only"
    ]
    assert problems({"data": {"target": ["y"], "features": ["y"]}}) == [
        "data: columns listed twice in target/features/known_features/calendar: ['y']"
    ]
    cfg = validate_config({"data": {"target": "y", "features": ["a"]}})
    assert cfg.data.layout.inputs == ["y", "a"]
    cfg = validate_config({"data": {"target": "y", "features": ["a"], "task": "regress"}})
    assert cfg.data.layout.inputs == ["a"] and cfg.data.layout.target_index is None


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- data\n- model\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        "expected a mapping with sections data, model, training, output, tune; got a list"
    ]


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  target: [y\nmodel: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].startswith("YAML syntax error at line 3, column 6")


def test_overrides_are_parsed_as_yaml_and_validated(tmp_path: Path) -> None:
    cfg = load_config(None, ["training.epochs=5", "model.head=[]", "training.batch_size=null"])
    assert (cfg.training.epochs, cfg.model.head, cfg.training.batch_size) == (5, [], None)
    with pytest.raises(ConfigError) as info:
        load_config(None, ["training.epochs=-1"])
    assert info.value.problems == [
        "training.epochs: must be a whole number of at least 0 or 'auto', got -1"
    ]
    with pytest.raises(ConfigError) as info:
        load_config(None, ["training"])
    assert info.value.problems == ["override 'training' must look like section.key=value"]
    assert info.value.exit_code == 2  # a malformed command line, as Click's usage errors


def test_a_malformed_override_exits_2_with_one_error_line() -> None:
    from .helpers import run

    result = run("train", "--set", "data.horizon")
    assert result.exit_code == 2
    assert (
        result.stderr == "Error: --set: override 'data.horizon' must look like section.key=value\n"
    )


def test_an_unquoted_date_splits_at_that_time(tmp_path: Path) -> None:
    """YAML reads `test_start: 2018-10-01` as a date, not text: the same split either way."""
    yaml_text = "data: {split: {val_start: 2018-07-01, test_start: 2018-10-01}}"
    split = validate_config(yaml.safe_load(yaml_text)).data.split
    assert (split.val_start, split.test_start) == ("2018-07-01", "2018-10-01")
    cfg = load_config(None, ["data.split.test_start=2018-10-01"])
    assert cfg.data.split.test_start == "2018-10-01"


def test_yaml_1e_notation_is_accepted_as_a_number() -> None:
    # PyYAML reads 1e-3 as a string; a learning rate written that way must still work.
    assert load_config(None, ["training.learning_rate=1e-3"]).training.learning_rate == 0.001


def test_relative_data_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "c.yaml"
    path.write_text("data: {path: ../data/x.csv}\n")
    assert load_config(path).data.path == str(tmp_path / "data" / "x.csv")
    monkeypatch.chdir(tmp_path)
    assert load_config(path, ["data.path=y.csv"]).data.path == str(tmp_path / "y.csv")


def test_init_template_is_the_defaults() -> None:
    assert validate_config(yaml.safe_load(commented_defaults())) == Config()


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "configs").glob("*.yaml"), *(ROOT / "benchmarks" / "configs").glob("*.yaml")]),
    ids=lambda p: p.name,
)
def test_every_shipped_config_validates_and_its_data_loads(path: Path) -> None:
    cfg = load_config(path)
    if not cfg.data.path.startswith("builtin:") and not Path(cfg.data.path).is_file():
        pytest.skip(f"{cfg.data.path} is not on this machine (the shared dataset folder)")
    table = prepare_table(read_csv(cfg.data.path), cfg.data, cfg.data.path)
    resolved = resolve(cfg, table).config  # every `auto` becomes a number
    assert len(table.inputs) > resolved.data.lookback


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scale_by": "series"}, "data: scale_by 'series' needs an id_column"),
        (
            {"calendar": ["month"], "time_column": None},
            "data: calendar features are computed from the time_column; set one",
        ),
        (
            {"task": "regress", "features": ["a"], "known_features": ["p"]},
            "data: known_features need the forecast task; a regress window already holds row t, "
            "so list them in features",
        ),
        (
            {"id_column": "co2_ppmv"},
            "data: id_column 'co2_ppmv' cannot also be a target or feature",
        ),
        ({"id_column": "date"}, "data: id_column and time_column must be different columns"),
        (
            {"features": ["month_sin"], "calendar": ["month"]},
            "data: columns listed twice in target/features/known_features/calendar: ['month_sin']",
        ),
        (
            {"calendar": ["month", "month"]},
            "data: calendar lists a feature twice: ['month', 'month']",
        ),
        (
            {"scale_by": "each"},
            "data.scale_by: Input should be 'global', 'series' or 'auto' (got 'each')",
        ),
    ],
)
def test_many_series_and_covariate_rules(data: dict, message: str) -> None:
    assert problems({"data": data}) == [message]


def test_input_columns_put_known_and_calendar_inputs_last() -> None:
    cfg = validate_config(
        {"data": {"features": ["a"], "known_features": ["p"], "calendar": ["hour", "month"]}}
    ).data
    layout = cfg.layout
    assert layout.inputs == [
        "co2_ppmv", "a", "p", "hour_sin", "hour_cos", "month_sin", "month_cos"
    ]  # fmt: skip
    assert layout.inputs[layout.future] == ["p", "hour_sin", "hour_cos", "month_sin", "month_cos"]
    assert layout.inputs[layout.calendar_slice] == [
        "hour_sin",
        "hour_cos",
        "month_sin",
        "month_cos",
    ]
    assert layout.file_inputs == ["co2_ppmv", "a", "p"] and layout.target_index == [0]
