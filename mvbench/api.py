"""The Python API, for notebooks and scripts: the commands ``run``, ``sweep`` and
``leaderboard`` as functions, and records as pandas DataFrames.

>>> from mvbench import api
>>> runs = api.run("kmeans", "synthetic", seeds=2, out="results/km")   # one row per trial
>>> api.sweep(methods="kmeans,rav[z_normalize=true]", datasets=["synthetic"], rates=[0.1, 0.3])
>>> api.records("results/km")                     # any trials.jsonl (or its folder) as a DataFrame
>>> api.board("ci").table                         # a suite's leaderboard (the CSV's rows)
>>> api.trial_rows("ci")                          # its per-trial rows, the input of mvbench.stats

Every function raises :class:`mvbench.errors.MvbenchError` for a bad input, with the fix in
its message; the commands call the same functions, so a folder written by one is resumed by
the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mvbench import adhoc
from mvbench.checkpoint import DEFAULT_EVERY
from mvbench.errors import MvbenchError
from mvbench.leaderboard import Leaderboard, build, cell_rows, current_versions
from mvbench.metrics import METRICS
from mvbench.registry import Registry, get_registry
from mvbench.results import RECORDS_FILE, latest_records, ok_by_key, read_records, write_summary
from mvbench.runner import Settings, Trial
from mvbench.selection import parse_selection, select
from mvbench.sweep import (PlannedTrial, SweepTrial, adhoc_name, expand, keyed, mark, pin_threads, plan,
                           run_sweep, suite_settings, to_run)
from mvbench.suite import load_suite

DEFAULT_DATASET = "handwritten"
Seeds = int | Sequence[int]


def _seeds(seeds: Seeds) -> list[int]:
    """A count N (seeds 0..N-1) or the seeds themselves."""
    chosen = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not chosen or min(chosen) < 0 or len(set(chosen)) != len(chosen):
        raise MvbenchError(f"seeds {seeds!r} must name at least one seed, none negative or repeated")
    return chosen


def _by_target(options: Mapping[str, Any] | None, dataset_options: Mapping[str, Any] | None,
               missing_options: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {"method": dict(options or {}), "dataset": dict(dataset_options or {}),
            "missing": dict(missing_options or {})}


# --- run ----------------------------------------------------------------------------------

def default_method(registry: Registry) -> str:
    """The strongest installed method (the highest ``default_priority``)."""
    if not registry.methods:
        raise MvbenchError("no method plugin is installed; reinstall mvbench")
    return max(registry.methods.values(), key=lambda spec: spec.default_priority).name


def run_missing(registry: Registry, dataset: str, missing: str | None, rate: float | None,
                view_rates: str | Sequence[float] | None, given: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The mechanism and its options of a run. Unnamed, it is ``per-view`` with view rates,
    ``mcar`` with a rate, else the dataset's default (``file`` for a dataset that ships its
    missing-view pattern, so running one as complete data takes an explicit ``none``)."""
    mechanism = missing or ("per-view" if view_rates is not None else "mcar" if rate is not None
                            else adhoc.default_mechanism(registry, dataset))
    options = dict(given)
    if rate is not None:
        if mechanism == "per-view":
            raise MvbenchError("--rate is for mcar; per-view takes --view-rates R1,R2,...")
        options["rate"] = rate
    if view_rates is not None:
        if mechanism != "per-view":
            raise MvbenchError(f"--view-rates is for --missing per-view, not {mechanism!r}; use --rate")
        options["rates"] = view_rates
    return mechanism, options


def run_trials_for(registry: Registry, *, method: str | None, dataset: str | None, seeds: Sequence[int],
                   missing: str | None = None, rate: float | None = None,
                   view_rates: str | Sequence[float] | None = None,
                   by_target: Mapping[str, Mapping[str, Any]] | None = None, fill: str = "mean") -> list[Trial]:
    """The trials of ``mvbench run``: one per seed."""
    by_target = by_target or _by_target(None, None, None)
    method = method or default_method(registry)
    dataset = dataset or DEFAULT_DATASET
    mechanism, missing_options = run_missing(registry, dataset, missing, rate, view_rates, by_target["missing"])
    return [Trial(method=method, dataset=dataset, seed=seed, missing=mechanism,
                  method_options=dict(by_target["method"]), dataset_options=dict(by_target["dataset"]),
                  missing_options=missing_options, fill=fill) for seed in seeds]


@dataclass
class RunPlan:
    """A run as a sweep of one cell: its trials, keyed and marked from the records already in
    the folder, with the earlier ok record of each done trial (those are not run again, and the
    summary counts each trial once)."""

    out_dir: Path
    planned: list[PlannedTrial]
    done: dict[str, dict[str, Any]]

    @property
    def results_file(self) -> Path:
        return self.out_dir / RECORDS_FILE

    @property
    def pending(self) -> list[PlannedTrial]:
        """The trials to run: not yet recorded ok (a failed trial runs again)."""
        return to_run(self.planned, retry_failed=True)

    def ordered(self, new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One record per trial, in the trials' order: the new one, else the earlier one."""
        by_key = {**self.done, **{r["trial_key"]: dict(r) for r in new}}
        return [by_key[p.key] for p in self.planned if p.key in by_key]


def plan_run(trials: Sequence[Trial], settings: Settings, registry: Registry, out_dir: Path) -> RunPlan:
    """Key the trials (resolving every option first, so a typo fails before any training) and
    mark those already recorded ok in ``out_dir``."""
    found = read_records(out_dir / RECORDS_FILE)
    planned = plan([SweepTrial(t, t.dataset, None) for t in trials], registry, settings, found)
    ok = ok_by_key(found)
    return RunPlan(out_dir, planned, {p.key: ok[p.key] for p in planned if p.key in ok})


def execute_run(run_plan: RunPlan,
                drive: Callable[[Sequence[PlannedTrial]], list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], Path | None]:
    """Run the pending trials of ``run_plan`` with ``drive`` (:func:`mvbench.sweep.run_sweep`
    with an executor, or the CLI's display around it), then rewrite the folder's summary (also
    after Ctrl-C, for the trials that finished). Returns one record per trial and the summary
    path (None when the folder has no records)."""
    new: list[dict[str, Any]] = []
    try:
        if run_plan.pending:
            new = drive(run_plan.pending)
    finally:
        results_file = run_plan.results_file
        summary = write_summary(run_plan.out_dir, read_records(results_file)) if results_file.exists() else None
    return run_plan.ordered(new), summary


def run(method: str | None = None, dataset: str = DEFAULT_DATASET, *, seeds: Seeds = 3,
        missing: str | None = None, rate: float | None = None, view_rates: Sequence[float] | None = None,
        options: Mapping[str, Any] | None = None, dataset_options: Mapping[str, Any] | None = None,
        missing_options: Mapping[str, Any] | None = None, fill: str = "mean", device: str = "auto",
        precision: str = "fp32", out: str | Path, jobs: int | None = None, data_dir: str | None = None,
        plugins: Sequence[str] = (), save_labels: bool = False,
        checkpoint_every: float = DEFAULT_EVERY) -> pd.DataFrame:
    """``mvbench run``: seeded trials of one method on one dataset, recorded in ``out``
    (trials already recorded ok there are not rerun). Returns one row per trial
    (see :func:`records`). ``options`` are the method's options (``--set``); ``jobs`` > 1 runs
    trials in a local process pool."""
    from mvbench.executors import make_executor

    registry = get_registry(tuple(plugins))
    trials = run_trials_for(registry, method=method, dataset=dataset, seeds=_seeds(seeds), missing=missing,
                            rate=rate, view_rates=list(view_rates) if view_rates is not None else None,
                            by_target=_by_target(options, dataset_options, missing_options), fill=fill)
    settings = Settings(device=device, precision=precision, data_dir=data_dir, save_labels=save_labels,
                        checkpoint_every=checkpoint_every)
    run_plan = plan_run(trials, settings, registry, Path(out))
    executor = make_executor(jobs=jobs)
    records_of_run, _ = execute_run(run_plan, lambda pending: run_sweep(
        pending, settings, tuple(plugins), executor, run_plan.results_file, suite=None))
    return records_frame(records_of_run)


# --- sweep --------------------------------------------------------------------------------

@dataclass
class PreparedSweep:
    """A sweep ready to run: its trials with their states, the pending ones, where records go."""

    name: str | None
    planned: list[PlannedTrial]
    pending: list[PlannedTrial]
    settings: Settings
    results_file: Path


def prepare_sweep(registry: Registry, suite: str | Path | None = None, *, methods: str | None = None,
                  datasets: Sequence[str] = (), missing: Sequence[str] = (), rates: Sequence[float] = (),
                  seeds: Sequence[int] | None = None, by_target: Mapping[str, Mapping[str, Any]] | None = None,
                  fill: str | None = None, device: str | None = None, precision: str | None = None,
                  data_dir: str | None = None, out: str | Path | None = None, only: Sequence[str] = (),
                  retry_failed: bool = False, save_labels: bool = False,
                  checkpoint_every: float = DEFAULT_EVERY) -> PreparedSweep:
    """Expand a suite (or an ad-hoc grid), key every trial and mark it done, failed or left
    from the records file. An ad-hoc grid's records go to ``mvbench-results/sweep-HASH``
    unless ``out`` is given (the hash depends on the grid, not its seeds)."""
    selection = parse_selection(only)
    if suite:
        loaded = load_suite(suite, registry)
        pin_threads(loaded)
        items, name = expand(loaded), loaded.name
        settings = suite_settings(loaded, device=device, precision=precision, data_dir=data_dir)
        results_file = Path(out) / RECORDS_FILE if out else loaded.results_file
    else:
        if not methods or not datasets:
            raise MvbenchError("give a suite file, or --method and --dataset for an ad-hoc sweep; "
                               "e.g. mvbench sweep --method kmeans --dataset synthetic")
        items, name = adhoc.grid(registry, methods=methods, datasets=datasets, missing=missing, rates=rates,
                                 seeds=seeds or [0, 1, 2], by_target=by_target or _by_target(None, None, None),
                                 fill=fill or "mean"), None
        settings = Settings(device=device or "auto", precision=precision or "fp32", data_dir=data_dir)
        results_file = Path(out) / RECORDS_FILE if out else None
    settings = replace(settings, save_labels=save_labels, checkpoint_every=checkpoint_every)
    planned = plan(items, registry, settings)
    if results_file is None:
        results_file = Path("mvbench-results") / adhoc_name(planned, registry, settings) / RECORDS_FILE
    if selection:  # after naming the folder: a slice of an ad-hoc grid shares the grid's records
        planned = select(planned, selection)
    planned = mark(planned, loaded.records(results_file) if suite else read_records(results_file))
    return PreparedSweep(name, planned, to_run(planned, retry_failed=retry_failed), settings, results_file)


def sweep(suite: str | Path | None = None, *, methods: str | Sequence[str] | None = None,
          datasets: Sequence[str] = (), missing: Sequence[str] = (), rates: Sequence[float] = (),
          seeds: Seeds | None = None, options: Mapping[str, Any] | None = None,
          dataset_options: Mapping[str, Any] | None = None, missing_options: Mapping[str, Any] | None = None,
          fill: str | None = None, device: str | None = None, precision: str | None = None,
          out: str | Path | None = None, only: Sequence[str] = (), retry_failed: bool = False,
          jobs: int | None = None, data_dir: str | None = None, plugins: Sequence[str] = (),
          save_labels: bool = False, checkpoint_every: float = DEFAULT_EVERY) -> pd.DataFrame:
    """``mvbench sweep``: run what is left of a suite (a name such as ``"ci"`` or a file) or
    of an ad-hoc grid (``methods`` in the selector grammar of :mod:`mvbench.adhoc`, e.g.
    ``"rav[z_normalize=true],kmeans"``). ``jobs`` > 1 runs trials in a local process pool.
    Returns one row per trial of the grid that has a record (see :func:`records`)."""
    from mvbench.executors import make_executor

    if suite and (methods or datasets or missing or rates or seeds is not None or options
                  or dataset_options or missing_options or fill):
        raise MvbenchError("methods, datasets, missing, rates, seeds, options and fill define an ad-hoc "
                           "grid; with a suite, edit the suite file instead")
    registry = get_registry(tuple(plugins))
    prepared = prepare_sweep(
        registry, suite, methods=methods if isinstance(methods, str) or methods is None else ",".join(methods),
        datasets=[datasets] if isinstance(datasets, str) else datasets,
        missing=[missing] if isinstance(missing, str) else missing, rates=rates,
        seeds=_seeds(seeds) if seeds is not None else None,
        by_target=_by_target(options, dataset_options, missing_options), fill=fill, device=device,
        precision=precision, data_dir=data_dir, out=out, only=only, retry_failed=retry_failed,
        save_labels=save_labels, checkpoint_every=checkpoint_every)
    if prepared.pending:
        run_sweep(prepared.pending, prepared.settings, tuple(plugins), make_executor(jobs=jobs),
                  prepared.results_file, suite=prepared.name)
    keys = {p.key for p in prepared.planned}
    return records_frame([r for r in latest_records(read_records(prepared.results_file))
                          if r.get("trial_key") in keys])


# --- reading ------------------------------------------------------------------------------

_FIRST_COLUMNS = ("trial_key", "status", "method", "variant", "option_set", "dataset", "missing", "rate",
                  "seed", *METRICS, "train_time", "wall_time", "error")
_NOT_COLUMNS = ("metrics", "metric_definitions")


def records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per record: the metrics as columns (``acc``, ``nmi``, ...), ``rate`` the
    mechanism's rate option, then every other field of the record as it is (options and
    extras as dicts)."""
    rows = []
    for r in records:
        row = {key: value for key, value in r.items() if key not in _NOT_COLUMNS}
        row.update({m: (r.get("metrics") or {}).get(m, math.nan) for m in METRICS})
        row["rate"] = (r.get("missing_options") or {}).get("rate", math.nan)
        rows.append(row)
    frame = pd.DataFrame(rows)
    first = [c for c in _FIRST_COLUMNS if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def _records_file(path: str | Path) -> Path:
    path = Path(path)
    return path / RECORDS_FILE if path.is_dir() or not path.suffix else path


def records(path: str | Path, *, latest: bool = True) -> pd.DataFrame:
    """The records of a results folder (or ``trials.jsonl``) as a DataFrame; with ``latest``,
    one per trial (its last ok record, else its last failed one), as summaries and boards
    count them."""
    file = _records_file(path)
    found = read_records(file)
    if not found:
        raise MvbenchError(f"no trial records in {file}; run mvbench run/sweep with --out {file.parent}")
    return records_frame(latest_records(found) if latest else found)


def _suite_trials(registry: Registry, name: str | Path, results: str | Path | None,
                  device: str | None) -> tuple[Any, list[dict[str, Any]], list[PlannedTrial]]:
    """A suite, its records made on one kind of device, and its trials keyed for that kind."""
    suite = load_suite(name, registry)
    file = _records_file(results) if results else suite.results_file
    found = read_records(file)
    if device:
        kind = _device_kind(device)
        found = [r for r in found if _device_kind(r["device"]) == kind]
    combos = sorted({(_device_kind(r["device"]), r["precision"]) for r in found})
    if len(combos) > 1:
        raise MvbenchError(f"records of suite {suite.name!r} come from "
                           f"{', '.join('/'.join(c) for c in combos)}; choose one with --device")
    if not combos:
        raise MvbenchError(f"no records of suite {suite.name!r} in {file}"
                           + (f" made on {device}" if device else "") + "; run mvbench sweep first")
    kind, precision = combos[0]
    return suite, found, keyed(expand(suite), registry, torch.device(kind), precision)


def _device_kind(device: str) -> str:
    try:
        return torch.device(device).type
    except RuntimeError:
        raise MvbenchError(f"unknown device {device!r}; use cpu, cuda or mps") from None


def board(name: str | Path | None = None, *, results: str | Path | None = None, device: str | None = None,
          plugins: Sequence[str] = ()) -> Leaderboard:
    """A suite's leaderboard (``board.table`` holds the CSV's rows, ``board.meta`` the sidecar),
    or, without a name, the leaderboard of the records in ``results``. Nothing is written."""
    registry = get_registry(tuple(plugins))
    if name is None:
        if results is None:
            raise MvbenchError("name a suite, or give results=DIR of an ad-hoc sweep or run")
        found = read_records(_records_file(results))
        if not found:
            raise MvbenchError(f"no trial records in {_records_file(results)}")
        return build("leaderboard", found, registry)
    suite, found, planned = _suite_trials(registry, name, results, device)
    return build(suite.name, found, registry, suite, planned)


def trial_rows(name: str | Path | None = None, *, results: str | Path | None = None,
               device: str | None = None, plugins: Sequence[str] = ()) -> pd.DataFrame:
    """The per-trial rows a board aggregates (its latest record per trial, current method
    versions only): dataset label, missing, missing_params, rate, method, option_set, seed,
    status and the metrics; the input of :mod:`mvbench.stats`. ``rows.attrs["left_out"]`` says
    which records of older method versions were left out (empty when none)."""
    registry = get_registry(tuple(plugins))
    if name is None:
        if results is None:
            raise MvbenchError("name a suite, or give results=DIR of an ad-hoc sweep or run")
        rows = cell_rows(read_records(_records_file(results)), None, registry)
    else:
        _, found, planned = _suite_trials(registry, name, results, device)
        rows = cell_rows(found, planned, registry)
    if rows.empty:
        raise MvbenchError("no trial records to analyse; run the sweep first")
    rows, stale = current_versions(rows, registry)
    rows.attrs["left_out"] = stale  # a sentence naming records of older method versions, or ""
    return rows
