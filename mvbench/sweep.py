"""Sweeps: grid expansion, resume bookkeeping and the executor interface.

A suite (:mod:`mvbench.suite`) or an ad-hoc grid expands to :class:`~mvbench.runner.Trial`
objects. Each trial is keyed by :meth:`ResolvedTrial.key`, so a rerun skips every trial already
recorded as ok in the results file and runs only the rest. Trials run through an
:class:`Executor`; only the driver (:func:`run_sweep`) writes records, so executors that run
trials elsewhere (worker processes, a cluster) need no access to the results file.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from mvbench.checkpoint import snapshots_beside
from mvbench.claims import claim_one, held_by_others, release
from mvbench.device import check_precision, resolve_device
from mvbench.errors import MvbenchError
from mvbench.registry import Registry, get_registry
from mvbench.results import append_record, read_records
from mvbench.runner import DatasetCache, ResolvedTrial, Settings, Trial, preflight, resolve, run_resolved
from mvbench.specs import Progress
from mvbench.suite import Suite

DONE, FAILED, LEFT = "done", "failed", "left"

@dataclass(frozen=True)
class SweepTrial:
    """A trial of a grid with the labels a leaderboard needs."""

    trial: Trial
    dataset_label: str
    rate: float | None


@dataclass(frozen=True)
class PlannedTrial:
    """A grid trial with its key and its state in the results file."""

    item: SweepTrial
    key: str
    state: str

    @property
    def trial(self) -> Trial:
        return self.item.trial


def take_every(index: int) -> bool:
    """The ``take`` of a run that shares its trials with no other process."""
    return True


class Executor(Protocol):
    """Runs trials and reports each finished record; it never writes records itself.

    ``plugins`` are the extra plugin modules (``-p``) the trials need, so that an executor
    running trials in other processes can rebuild the same registry there. ``take(i)`` is asked
    just before trial ``i`` starts: False means another process has it, and the trial is passed
    over without a record. A record is passed to ``on_record`` as soon as its trial ends, failed
    or not; KeyboardInterrupt propagates after the records of finished trials were reported.
    ``datasets`` holds what this process has already loaded (the sweep's preflight): an executor
    that runs trials in this process reuses it rather than reading every file a second time."""

    def run(self, trials: Sequence[Trial], settings: Settings, plugins: Sequence[str],
            on_record: Callable[[dict[str, Any]], None], *, take: Callable[[int], bool] = take_every,
            datasets: DatasetCache | None = None) -> None: ...


class SequentialExecutor:
    """Runs trials one after the other in this process, loading each dataset once."""

    def __init__(self, progress_factory: Callable[[ResolvedTrial], Progress] | None = None) -> None:
        self.progress_factory = progress_factory

    def run(self, trials: Sequence[Trial], settings: Settings, plugins: Sequence[str],
            on_record: Callable[[dict[str, Any]], None], *, take: Callable[[int], bool] = take_every,
            datasets: DatasetCache | None = None) -> None:
        registry = get_registry(tuple(plugins))
        resolved = [resolve(trial, registry) for trial in trials]
        cache = datasets or DatasetCache(settings.data_dir)
        for index, item in enumerate(resolved):
            if not take(index):
                continue
            progress = self.progress_factory(item) if self.progress_factory else None
            on_record(run_resolved(item, settings, cache, progress))


# --- grids, keys, plans ------------------------------------------------------------------

def expand(suite: Suite) -> list[SweepTrial]:
    """All trials of the suite, cell by cell (dataset, missingness, method), seeds innermost,
    so an interrupted sweep leaves whole cells rather than a thin layer of every cell."""
    out: list[SweepTrial] = []
    for grid in suite.grids:
        for dataset in grid.datasets:
            for missing in grid.missing:
                missing_options = dict(missing.options)
                if missing.rate is not None:
                    missing_options["rate"] = missing.rate
                rate = missing.rate
                if rate is None:
                    rate = 0.0 if missing.mechanism == "none" else dataset.rate
                for option_set in grid.option_sets:
                    out.extend(SweepTrial(
                        Trial(method=option_set.method, dataset=dataset.name, seed=seed,
                              missing=missing.mechanism, method_options=dict(option_set.options),
                              dataset_options=dict(dataset.options), missing_options=missing_options,
                              fill=suite.fill, option_set=option_set.name),
                        dataset.label, rate) for seed in suite.seeds)
    return out


def _check_rate_options(items: Iterable[SweepTrial], registry: Registry) -> None:
    for item in items:
        trial = item.trial
        if "rate" in trial.missing_options:
            declared = {option.name for option in registry.mechanism(trial.missing).options}
            if "rate" not in declared:
                raise MvbenchError(f"missingness {trial.missing!r} has no rate option; give rates "
                                   f"only to mechanisms that take one (e.g. mcar)")


def record_states(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``done`` when any record of a key is ok, else ``failed``."""
    states: dict[str, str] = {}
    for record in records:
        key = record.get("trial_key")
        if key is not None and states.get(key) != DONE:
            states[key] = DONE if record.get("status") == "ok" else FAILED
    return states


def plan(items: Sequence[SweepTrial], registry: Registry, settings: Settings,
         records: Iterable[Mapping[str, Any]] = ()) -> list[PlannedTrial]:
    """Key every trial for the settings' device and precision (resolving all options first,
    so a typo fails before any training) and mark it done, failed or left from ``records``."""
    device = resolve_device(settings.device)
    return mark(keyed(items, registry, device, check_precision(settings.precision, device)), records)


def keyed(items: Sequence[SweepTrial], registry: Registry, device: torch.device,
          precision: str) -> list[PlannedTrial]:
    """The trials with the keys the runner records on a device of this kind, all left."""
    _check_rate_options(items, registry)
    planned: list[PlannedTrial] = []
    first: dict[str, SweepTrial] = {}
    for item in items:
        key = resolve(item.trial, registry).key(device, precision)
        if key in first:
            other = first[key]
            if (other.trial.option_set, other.dataset_label) == (item.trial.option_set, item.dataset_label):
                continue  # the same cell listed by two grids runs once
            raise MvbenchError(
                f"option sets {other.trial.option_set!r} on {other.dataset_label!r} and "
                f"{item.trial.option_set!r} on {item.dataset_label!r} resolve to the same trial; "
                f"make their options differ or drop one")
        first[key] = item
        planned.append(PlannedTrial(item, key, LEFT))
    return planned


def mark(planned: Sequence[PlannedTrial], records: Iterable[Mapping[str, Any]]) -> list[PlannedTrial]:
    """The same plan with each trial's state read from ``records``."""
    states = record_states(records)
    return [replace(p, state=states.get(p.key, LEFT)) for p in planned]


def to_run(planned: Sequence[PlannedTrial], *, retry_failed: bool) -> list[PlannedTrial]:
    wanted = {LEFT, FAILED} if retry_failed else {LEFT}
    return [p for p in planned if p.state in wanted]


def adhoc_name(planned: Sequence[PlannedTrial], registry: Registry, settings: Settings) -> str:
    """A folder name that depends on the grid but not on its seeds, so rerunning an ad-hoc
    sweep, with the same or more seeds, resumes it."""
    device, precision = resolve_device(settings.device), check_precision(settings.precision)
    cells = sorted({resolve(replace(p.trial, seed=0), registry).key(device, precision) for p in planned})
    return f"sweep-{hashlib.sha256(''.join(cells).encode()).hexdigest()[:10]}"


def run_sweep(planned: Sequence[PlannedTrial], settings: Settings, plugins: Sequence[str],
              executor: Executor, results_file: Path, *, suite: str | None,
              on_record: Callable[[dict[str, Any]], None] | None = None,
              on_skipped: Callable[[PlannedTrial], None] | None = None,
              on_start: Callable[[list[str]], None] | None = None) -> list[dict[str, Any]]:
    """Run ``planned`` through ``executor``; each record is appended to ``results_file`` the
    moment it is reported, tagged with the suite name. Each trial is claimed just before it
    starts (:mod:`mvbench.claims`): one that another live process has claimed, or recorded since
    this sweep began, is left to it (``on_skipped`` gets it), so two sweeps of one grid share its
    trials and never run one twice. ``on_start`` gets the keys of the trials this process expects
    to run (those no other process holds yet), once the datasets are loaded (and downloaded,
    which shows its own progress bar), just before the first trial runs."""
    registry = get_registry(tuple(plugins))
    datasets = preflight([resolve(p.trial, registry) for p in planned], settings.data_dir)
    results_file.parent.mkdir(parents=True, exist_ok=True)  # a bad --out fails before any trial
    if settings.checkpoints is None:
        # An interrupted long trial resumes from its snapshots here when the sweep is run again.
        settings = replace(settings, checkpoints=str(snapshots_beside(results_file)))
    # A trial planned as left had no record; one planned as failed (--retry-failed) had these.
    failures_at_start = Counter(r.get("trial_key") for r in read_records(results_file))
    before = {p.key: failures_at_start[p.key] if p.state == FAILED else 0 for p in planned}
    records: list[dict[str, Any]] = []

    def recorded_meanwhile(key: str) -> bool:
        return _recorded_since(results_file, key, before[key])

    def take(index: int) -> bool:
        if claim_one(results_file, planned[index].key, recorded_meanwhile):
            return True
        if on_skipped:
            on_skipped(planned[index])
        return False

    def finished(record: dict[str, Any]) -> None:
        record["suite"] = suite
        append_record(results_file, record)
        registry.trial_finished(record)
        records.append(record)
        if on_record:
            on_record(record)

    try:
        if on_start:
            held = held_by_others(results_file, [p.key for p in planned])
            on_start([p.key for p in planned if p.key not in held])
        executor.run([p.trial for p in planned], settings, plugins, finished, take=take, datasets=datasets)
    finally:
        release(results_file)
    return records


def _recorded_since(results_file: Path, key: str, records_before: int) -> bool:
    """Whether ``key`` has an ok record, or more records than it had when the sweep began (another
    process ran it meanwhile, even if it failed: only --retry-failed reruns a failed trial, and
    then only the failures it planned for). Only lines naming the key are parsed."""
    if not results_file.exists():
        return False
    count = 0
    with open(results_file, encoding="utf-8") as handle:
        for line in handle:
            if key not in line or not line.endswith("\n"):
                continue
            record = json.loads(line)
            if record.get("trial_key") == key:
                if record.get("status") == "ok":
                    return True
                count += 1
    return count > records_before


def pin_threads(suite: Suite) -> None:
    """Use the suite's CPU thread count in this process: on CPU, float reductions (and so,
    occasionally, labels) depend on it, and tiny networks run fastest on one thread."""
    if suite.threads:
        torch.set_num_threads(suite.threads)


def suite_settings(suite: Suite, *, device: str | None, precision: str | None,
                   data_dir: str | None) -> Settings:
    """The suite's device and precision unless the command line overrides them."""
    return Settings(device=device or suite.device, precision=precision or suite.precision,
                    data_dir=data_dir)
