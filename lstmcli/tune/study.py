"""Where a study lives: its database, sampler and pruner, and how trials are counted.

A study lives in a database (by default `study.db`, SQLite, in the study folder), so a killed
or interrupted study loses at most its running trials and the same command continues it; with
a shared database URL, processes on many machines work on one study.
"""

from __future__ import annotations

import json
import time
import warnings
from typing import TYPE_CHECKING, Any

import yaml

from lstmcli.config.edit import config_value
from lstmcli.config.schema import Config, SearchRange
from lstmcli.errors import LstmcliError
from lstmcli.tune.plan import StudyPlan

if TYPE_CHECKING:
    import optuna

HEARTBEAT_SECONDS = 10  # a trial whose process stops beating this long * 3 is failed
OPEN_ATTEMPTS = 10  # tries to open a study database another process is creating
PRUNE_STARTUP_TRIALS = 5  # the median pruner waits for this many finished trials
PRUNE_WARMUP_EPOCHS = 10  # ... and prunes no trial before its 10th epoch


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise LstmcliError(
            "lstmcli tune needs Optuna, which is not installed; install it with "
            "`pip install 'lstmcli[tune]'`"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # lstmcli reports trials itself
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def suggest(trial: optuna.Trial, space: dict[str, SearchRange]) -> dict[str, Any]:
    params = {}
    for key, r in space.items():
        if r.type == "choice":
            params[key] = trial.suggest_categorical(key, r.values)
        elif r.type == "int":
            step = int(r.step or 1)
            params[key] = trial.suggest_int(key, int(r.low), int(r.high), step=step, log=r.log)
        else:
            params[key] = trial.suggest_float(key, r.low, r.high, step=r.step, log=r.log)
    return params


def open_study(plan: StudyPlan, *, create: bool) -> tuple[optuna.Study, bool]:
    """The study in its database, created when `create` (the command's first worker), and
    whether this call created it.

    Processes that meet a new database at the same moment race to create its tables; the
    loser sees an integrity error and simply tries again, when the tables are there."""
    from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

    for attempt in range(OPEN_ATTEMPTS):
        try:
            return _open_study(plan, create)
        except ImportError as e:  # e.g. postgresql:// without its driver
            raise LstmcliError(
                f"cannot open the study in {plan.storage}: its database driver is not "
                f"installed ({one_line(e.__cause__ or e)})"
            ) from None
        except (IntegrityError, OperationalError) as e:  # another process creating tables
            if attempt == OPEN_ATTEMPTS - 1:
                raise LstmcliError(
                    f"cannot open the study in {plan.storage}: {one_line(e)}"
                ) from None
            time.sleep(0.2 * (attempt + 1))
        except SQLAlchemyError as e:  # a URL no retry will mend
            raise LstmcliError(f"cannot open the study in {plan.storage}: {one_line(e)}") from None
    raise AssertionError("unreachable")


def _open_study(plan: StudyPlan, create: bool) -> tuple[optuna.Study, bool]:
    optuna = require_optuna()
    storage = optuna.storages.RDBStorage(
        plan.storage,
        heartbeat_interval=HEARTBEAT_SECONDS,
        grace_period=3 * HEARTBEAT_SECONDS,
        engine_kwargs=_engine_args(plan.storage),
    )
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=PRUNE_WARMUP_EPOCHS
        )
        if plan.prune
        else optuna.pruners.NopPruner()
    )
    if not create:
        study = optuna.load_study(study_name=plan.study_name, storage=storage, pruner=pruner)
        return study, False
    try:  # the database lets exactly one process create a study of this name
        study = optuna.create_study(
            study_name=plan.study_name, storage=storage, pruner=pruner, direction="minimize"
        )
        fresh = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=plan.study_name, storage=storage, pruner=pruner)
        fresh = False
    _same_study(study, plan)
    if fresh:
        given = base_values(plan)
        if given:  # trial 0: the config as `train` would run it, so the search starts there
            moved = outside_space(plan)
            study.enqueue_trial(given, user_attrs={"base": True, "moved": moved})
    return study, fresh


def base_values(plan: StudyPlan) -> dict[str, Any]:
    """The base config's value of each searched key that lies in its range."""
    values = {}
    for key, r in plan.space.items():
        node = config_value(plan.config, key)
        if r.type == "choice":
            if node in (r.values or []):
                values[key] = node
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            inside = r.low <= node <= r.high
            on_step = (
                r.step is None
                or abs((node - r.low) / r.step - round((node - r.low) / r.step)) < 1e-9
            )
            if inside and (on_step or r.log) and (r.type == "float" or float(node).is_integer()):
                values[key] = int(node) if r.type == "int" else float(node)
    return values


def outside_space(plan: StudyPlan) -> str:
    """The base config's values that lie outside the space (trial 0 takes values from the
    space for them), as a note; empty when there are none."""
    given = base_values(plan)
    moved = [f"{key} {config_value(plan.config, key)!r}" for key in plan.space if key not in given]
    return (
        f"the config's {', '.join(moved)} lie(s) outside the space: trial 0 takes a value "
        "from the space there"
        if moved
        else ""
    )


def _engine_args(url: str) -> dict:
    """SQLite: wait up to a minute for another worker's write instead of failing at once."""
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def make_sampler(plan: StudyPlan, seed: int) -> optuna.samplers.BaseSampler:
    optuna = require_optuna()
    sampler = plan.config.tune.sampler
    if sampler == "grid":
        grid = {key: r.grid() for key, r in plan.space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = min(10, plan.trials // 3 + 1)  # random trials before TPE models the space
    # constant_liar: a trial running in another worker counts as a poor one, so parallel
    # workers do not propose the same point (alone, a study samples as without it).
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


PLAN_ATTR = "plan"  # the study's config, metric, space and folds, as one JSON attribute


def _same_study(study: optuna.Study, plan: StudyPlan) -> None:
    """A study continues only under the config and space it started with."""
    mine = {
        "config": _comparable(plan.config),
        "metric": plan.metric,
        "space": _space_text(plan),
        "folds": str(plan.folds),
    }
    stored = study.user_attrs
    if PLAN_ATTR in stored:
        stored = json.loads(stored[PLAN_ATTR])
    elif not all(key in stored for key in mine):  # a new study (studies before PLAN_ATTR
        # kept one attribute per key): one attribute, written at once, so that a command
        # joining the study at that moment never reads half of it
        study.set_user_attr(PLAN_ATTR, json.dumps(mine))
        return
    changed = [key for key in mine if stored.get(key) != mine[key]]
    if changed:
        raise LstmcliError(
            f"study {plan.study_name!r} in {plan.storage} was started with another "
            f"{' and '.join(changed)}; continue it with the same config, or give another "
            "-o folder or --study name"
        )


def _comparable(config: Config) -> str:
    raw = config.model_dump(mode="json")
    raw.pop("tune")
    raw.pop("output")
    raw["training"].pop("threads")
    raw["training"].pop("device")
    return yaml.safe_dump(raw, sort_keys=True)


def _space_text(plan: StudyPlan) -> str:
    return yaml.safe_dump({k: r.model_dump(exclude_none=True) for k, r in plan.space.items()})


def counts(trial: Any) -> bool:
    """Whether a trial counts towards the study's total: finished (complete, pruned, failed
    for a reason of its own) or running. Interrupted, stale and surplus trials do not."""
    state = trial.state.name
    return state in ("COMPLETE", "PRUNED", "RUNNING") or (
        state == "FAIL" and "error" in trial.user_attrs
    )


def counted(study: optuna.Study) -> int:
    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def surplus(study: optuna.Study, number: int, total: int) -> bool:
    """Whether trial `number` (just started) is beyond the study's total. Trial numbers come
    from the database in order, so of two workers that started a trial at the same moment
    only the later one sees the other as running before it: exactly `total` trials run."""
    trials = study.get_trials(deepcopy=False)
    return sum(counts(t) for t in trials if t.number < number) >= total


def one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__
