"""What the quality_*.py scripts share: their command line, running each seed as the runner trial
a suite runs, and the text of their per-seed lines and mean +- std summaries.

``--out`` is a records file (JSON lines) in the format of ``mvbench sweep``. Before a seed runs,
the file is searched for an ok record under the seed's trial key (the key a sweep gives the same
trial on the same device kind and precision); if there is one it is reused and the seed does not
run. So an interrupted check resumes where it stopped, and a check pointed at a suite's
``leaderboards/results/<suite>/trials.jsonl`` runs only the seeds that suite has not; new records
are appended under the file's lock, so a sweep may write the same file meanwhile. A seed is claimed
in the file before it runs (``mvbench.claims``, as a sweep claims its trials): a seed that a sweep
or another script is running is passed over until the other seeds are done, then waited for and its
record reused; a sweep started meanwhile leaves our seeds to us. So two copies of one script given
the same seeds run them in parallel.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mvbench.checkpoint import snapshots_beside
from mvbench.claims import claim_one, release
from mvbench.device import PRECISIONS, check_precision, resolve_device
from mvbench.options import split_assignment
from mvbench.registry import get_registry
from mvbench.results import append_record, ok_by_key, read_records
from mvbench.runner import DatasetCache, ResolvedTrial, Settings, Trial, resolve, run_resolved
from mvbench.specs import Dataset
from mvbench.suite import load_suite

from epoch_log import EpochLog

Record = dict[str, Any]


def make_parser(doc: str, *, datasets: Sequence[str], seeds: Sequence[int],
                choices: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The options every quality script takes; a script adds its own before :func:`parse`."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=choices, default=list(datasets))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    # extend: both spellings the scripts have documented work, --set a=1 b=2 and --set a=1 --set b=2.
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="NAME=VALUE",
                        help="a method option")
    parser.add_argument("--out", type=Path,
                        help="records file (JSON lines): seeds recorded ok there are reused, new ones appended")
    return parser


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The parsed command line, with torch's CPU thread count set from ``--threads``."""
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def method_options(args: argparse.Namespace) -> dict[str, str]:
    """The ``--set`` method options, as a trial takes them."""
    return dict(map(split_assignment, args.set))


@functools.lru_cache(maxsize=None)
def _suite_datasets(suite: str) -> dict[str, Mapping[str, Any]]:
    return {entry.name: entry.options for grid in load_suite(suite).grids for entry in grid.datasets}


def suite_dataset_options(suite: str, dataset: str) -> dict[str, Any]:
    """The options the suite file gives ``dataset`` ({} when it lists no such dataset). Taken
    from the file rather than restated, so the script's trial stays the suite's trial (same key,
    shared records) whatever the suite changes."""
    return dict(_suite_datasets(suite).get(dataset, {}))


class Quality:
    """Runs seeds as runner trials on one device and precision, reusing the ok records of
    ``--out`` and appending the new ones."""

    def __init__(self, args: argparse.Namespace, *, device: str = "cpu", epoch_every: int = 10) -> None:
        self.registry = get_registry()  # every method and mechanism here is an installed entry point
        # Snapshots of long seeds go beside --out, as a sweep's beside its records: rerun, an
        # interrupted seed resumes from them.
        self.settings = Settings(device=device, precision=args.precision,
                                 checkpoints=str(snapshots_beside(args.out)) if args.out else None)
        # Keyed as mvbench.sweep.plan keys a suite's trials, so the keys of both agree.
        self.device = resolve_device(device)
        self.precision = check_precision(args.precision, self.device)
        self.cache = DatasetCache(None)
        self.out: Path | None = args.out
        self.epoch_every = epoch_every
        self.held: set[str] = set()  # keys announced as held by another process
        if self.out:
            self.out.parent.mkdir(parents=True, exist_ok=True)  # a bad --out fails before any training

    def dataset(self, resolved: ResolvedTrial) -> Dataset:
        """The trial's dataset, loaded once for the header line and the runs alike."""
        return self.cache.get(resolved)

    def header(self, resolved: ResolvedTrial) -> str:
        """What the seeds that follow run: method, dataset (and the options the script gives it),
        mask, precision, CPU threads, preset and method options."""
        trial = resolved.trial
        given = f" ({dict(trial.dataset_options)})" if trial.dataset_options else ""
        mask = "" if trial.missing == "none" else ", " + " ".join(
            [trial.missing, *(f"{name} {value}" for name, value in resolved.missing_options.items())])
        return (f"{trial.method} on {resolved.dataset_name}{given}{mask}, {self.precision}, torch threads "
                f"{torch.get_num_threads()}, preset {resolved.preset}, options {resolved.method_options}")

    def run(self, trials: Iterable[Trial], describe: Callable[[Record], str],
            announce: Callable[[ResolvedTrial], str] | None = None, poll_seconds: float = 30.0) -> list[Record]:
        """The ok record of every trial (reused or run), in the order given, printing ``announce``
        (default: :meth:`header`) of the first trial and ``describe`` of every record as it comes;
        a failed trial ends the script. A trial another live process holds is passed over until the
        others are done, then waited for, so two scripts given the same seeds share them."""
        resolved = [resolve(trial, self.registry) for trial in trials]
        if resolved:
            print((announce or self.header)(resolved[0]), flush=True)
        records: dict[int, Record] = {}
        pending = list(range(len(resolved)))
        while pending:
            for index in pending:
                record = self.record(resolved[index])
                if record is not None:
                    records[index] = record
                    print(describe(record), flush=True)
            pending = [index for index in pending if index not in records]
            if pending:
                time.sleep(poll_seconds)
        return [records[index] for index in range(len(resolved))]

    def record(self, resolved: ResolvedTrial) -> Record | None:
        """The trial's ok record from ``--out``, else a new one, run and appended there; None while
        another live process holds the trial's claim."""
        label = f"{resolved.dataset_name} seed {resolved.trial.seed}"
        key = resolved.key(self.device, self.precision)
        # claim_one asks, under the lock, whether the seed was recorded; only then is it read here.
        if self.out and not claim_one(self.out, key, lambda key: self.recorded(key) is not None):
            recorded = self.recorded(key)
            if recorded is None:
                if key not in self.held:
                    print(f"{label}: trial {key} is running in another process writing {self.out}; "
                          f"its record is awaited after the other seeds", flush=True)
                    self.held.add(key)
                return None
            suite = f", suite {recorded['suite']}" if recorded.get("suite") else ""
            print(f"{label}: reused the record of trial {key} in {self.out} (run at {recorded.get('started_at')}"
                  f"{suite})", flush=True)
            return recorded
        try:
            record = run_resolved(resolved, self.settings, self.cache, progress=EpochLog(self.epoch_every))
            if record["status"] != "ok":
                raise SystemExit(f"{label} failed: {record['error']}")
            if self.out:
                append_record(self.out, record)
        finally:
            if self.out:
                release(self.out)
        return record

    def recorded(self, key: str) -> Record | None:
        """The last ok record of ``key`` in ``--out``; the file is read again for every seed, since
        a sweep sharing it may have finished the trial meanwhile."""
        return ok_by_key(read_records(self.out)).get(key) if self.out else None


def mean_std(values: Sequence[float]) -> str:
    """Mean +- sample std (ddof=1) to 4 decimals; the mean alone for one value."""
    spread = f" +- {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.4f}{spread}"


def metric_summary(records: Sequence[Record], metric: str) -> str:
    """:func:`mean_std` of one metric over the records."""
    return mean_std([record["metrics"][metric] for record in records])


def metrics_text(record: Record, names: Iterable[str] | None = None) -> str:
    """``acc 0.9123 nmi 0.8456 ...``: the named metrics (default: all the record has)."""
    metrics = record["metrics"]
    return " ".join(f"{name} {metrics[name]:.4f}" for name in (names or metrics))


def epoch_seconds(record: Record, average: Callable[[list[float]], float] = statistics.mean) -> dict[str, float]:
    """The average seconds per epoch of every stage that ran."""
    return {stage: average(s) for stage, s in record["extras"]["epoch_seconds"].items() if s}


def seconds_text(record: Record, digits: int = 2) -> str:
    """``pretrain 0.12, train 0.34``: the mean seconds per epoch of each stage."""
    return ", ".join(f"{stage} {s:.{digits}f}" for stage, s in epoch_seconds(record).items())


def run_main(main: Callable[[], None]) -> None:
    """Run a script's ``main``; Ctrl-C ends it with one line instead of a traceback."""
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted; the seeds that finished are in --out, if given") from None
