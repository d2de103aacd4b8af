"""How long trials will take, from the wall times of finished trials of the same kind.

A pending trial is estimated by the median wall time of the finished (ok) records of the same
method, options and dataset (with its options) on the same kind of device; of those only the ones of
the method's current version where there are any (a version changes what a trial computes, and so
can change its cost), and of those only the ones made on the same hardware model where there are any
(the same trial took 1.7 times as long on one 2-core CPU as on another; the thread count is not
compared). They are found in the results file the trials go to and in the committed records
(``leaderboards/results/*/trials.jsonl`` of the folders :func:`mvbench.suite.suite_folders`
searches); a trial that resumes from its snapshots counts the training they hold off
(:func:`mvbench.commands.sweep.estimate`). ``mvbench sweep --dry-run`` states the estimate, ``run``
and ``sweep`` state it up front and count it down in their trials bar (:class:`Countdown`,
:class:`TimeLeftColumn`).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.progress import ProgressColumn, Task, TaskID
from rich.text import Text

from mvbench.device import hardware_of
from mvbench.registry import Registry
from mvbench.results import RECORDS_FILE, read_records
from mvbench.options import Option
from mvbench.runner import ResolvedTrial, _canonical, dataset_declared, resolve
from mvbench.suite import RESULTS_DIR, suite_folders
from mvbench.sweep import PlannedTrial


class FinishedTimes:
    """The wall times of finished trials, by method, dataset and kind of device, with the
    method's and the dataset's options, the method's version and the hardware model of each;
    ``where`` says which records they come from."""

    def __init__(self, records: Iterable[Mapping[str, Any]], where: str) -> None:
        self.where = where
        self._times: dict[tuple[str, str, str], list[tuple[dict, dict, int, str, float]]] = defaultdict(list)
        for r in records:
            taken = r.get("wall_time", r.get("train_time"))
            if r.get("status") == "ok" and taken is not None:
                cell = (r["method"], r["dataset"], device_kind(r.get("device", "")))
                self._times[cell].append((r.get("method_options") or {}, r.get("dataset_options") or {},
                                          r.get("method_version", 1), hardware_of(r.get("device_name", "")),
                                          float(taken)))

    def seconds(self, resolved: ResolvedTrial, device: str, hardware: str | None = None) -> float | None:
        """The median wall time of the finished trials like ``resolved`` on ``device`` (a
        kind: cpu, cuda, mps), of those of the method's current version if there are any, and of
        those made on ``hardware`` (a model, as :func:`mvbench.device.hardware_name` gives it) if
        there are any; None when there is none."""
        found = [(version, made_on, taken) for method_options, dataset_options, version, made_on, taken
                 in self._times.get((resolved.method.name, resolved.dataset_name, device), ())
                 if _same(resolved.method_options, method_options, resolved.method.options)
                 and _same(resolved.dataset_options, dataset_options, dataset_declared(resolved))]
        current = [(made_on, taken) for version, made_on, taken in found if version == resolved.method.version]
        found_here = current or [(made_on, taken) for _, made_on, taken in found]
        here = [taken for made_on, taken in found_here if made_on == hardware]
        return statistics.median(here or [taken for _, taken in found_here]) if found_here else None


def _same(given: Mapping[str, Any], recorded: Mapping[str, Any], declared: Iterable[Option]) -> bool:
    # A record made before a plugin gained an option ran that option's default (the value that
    # keeps the old behaviour), as it does for resume: it counts for a trial at the default only.
    defaults = {option.name: option.default for option in declared}
    return all(_canonical(value) == _canonical(recorded[name] if name in recorded else defaults[name])
               for name, value in given.items() if name in recorded or name in defaults)


def device_kind(device: str) -> str:
    """``cuda:1`` -> ``cuda``."""
    return str(device).split(":")[0]


def committed_files(folders: Sequence[Path] | None = None) -> list[Path]:
    """The records files of the suites in ``folders`` (default: where suite names are looked up)."""
    found: dict[Path, Path] = {}
    for folder in suite_folders() if folders is None else folders:
        for path in sorted((folder / RESULTS_DIR).glob(f"*/{RECORDS_FILE}")):
            found.setdefault(path.resolve(), path)
    return list(found.values())


def finished_times(results_file: Path | None, folders: Sequence[Path] | None = None) -> FinishedTimes:
    """The finished trials of ``results_file`` and of the committed records, each file read once."""
    committed = committed_files(folders)
    files = {path.resolve(): path for path in committed}
    if results_file is not None:
        files.setdefault(results_file.resolve(), results_file)
    where = [str(results_file)] if results_file is not None else []
    where += [f"{folder}/*/{RECORDS_FILE}" for folder in sorted({str(p.parent.parent) for p in committed})]
    return FinishedTimes([r for path in files.values() for r in read_records(path)],
                         " and ".join(where) or "no records")


def trial_seconds(pending: Sequence[PlannedTrial], registry: Registry, device: str,
                  times: FinishedTimes, hardware: str | None = None) -> dict[str, float | None]:
    """Each pending trial's estimated seconds (None: nothing to go by), by trial key."""
    return {p.key: times.seconds(resolve(p.trial, registry), device, hardware) for p in pending}


def _shown(seconds: float) -> int:
    """The seconds :func:`duration` shows: whole seconds below 90 s, else whole minutes."""
    return round(seconds) if round(seconds) < 90 else 60 * max(2, round(seconds / 60))


def duration(seconds: float) -> str:
    """``40 s``, ``11 min``, ``1 h 41 min``."""
    shown = _shown(seconds)
    if shown < 90:
        return f"{shown} s"
    minutes = shown // 60
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"


def describe(pending: Sequence[PlannedTrial], seconds: Mapping[str, float | None], device: str, where: str,
             lanes: int = 1, hardware: str | None = None) -> str:
    """One line: how long the pending trials will take on ``device`` (a kind: cpu, cuda, mps;
    trials x minutes when they share one estimate; on ``hardware`` where recorded there), from
    what, and which trials have nothing to go by."""
    known = [seconds[p.key] for p in pending if seconds.get(p.key) is not None]
    unknown = Counter(f"{p.trial.option_set or p.trial.method} on {p.trial.dataset}"
                      for p in pending if seconds.get(p.key) is None)
    if not known:
        return (f"cannot estimate the time: no finished trial of the same method, options and dataset on "
                f"{device} in {where}")
    total = sum(known)
    on = f"{device} ({hardware} where recorded there)" if hardware else device
    basis = (f"median wall time of finished trials of the same method (its current version where recorded), "
             f"options and dataset on {on} in {where}")
    if unknown:
        missing = ", ".join(f"{cell} ({n})" for cell, n in unknown.items())
        return (f"estimated time: at least {duration(total)} for {len(known)} of {len(pending)} trials "
                f"({basis}); no finished trial to go by for {missing}")
    trials = f"{len(known)} trial{'s' if len(known) > 1 else ''}"
    amount = (f"{trials} x about {duration(known[0])} = about {duration(_shown(known[0]) * len(known))}"
              if len({_shown(s) for s in known}) == 1 else f"about {duration(total)} for {trials}")
    if lanes > 1:
        amount += f" one at a time, about {duration(total / min(lanes, len(known)))} {lanes} at a time"
    return f"estimated time: {amount} ({basis})"


class Countdown:
    """The time left of a run: the estimates of its unfinished trials (scaled by how long the
    finished ones took against theirs; a trial without an estimate counts the median of the
    finished ones), less the time the running ones have been at it, spread over ``lanes``
    trials at a time."""

    def __init__(self, seconds: Mapping[str, float | None], lanes: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._left = dict(seconds)  # the unfinished trials, in the order they run
        self.lanes = lanes
        self._clock = clock
        self._since = clock()
        self._taken: list[float] = []  # wall times of finished trials
        self._versus: list[tuple[float, float]] = []  # (taken, estimated) of those with an estimate

    def start(self, keys: Iterable[str]) -> None:
        """The trials of ``keys`` begin now (the others were left to another process)."""
        wanted = set(keys)
        self._left = {key: estimate for key, estimate in self._left.items() if key in wanted}
        self._since = self._clock()

    def drop(self, key: str) -> None:
        """The trial of ``key`` will not run here (another process took it)."""
        self._left.pop(key, None)

    def finished(self, record: Mapping[str, Any]) -> None:
        estimate = self._left.pop(record.get("trial_key", ""), None)
        self._since = self._clock()
        taken = record.get("wall_time")
        if taken is not None:
            self._taken.append(float(taken))
            if estimate is not None:
                self._versus.append((float(taken), estimate))

    def remaining(self) -> float | None:
        """Seconds left, or None when some unfinished trial has nothing to go by yet."""
        expected = sum(e for _, e in self._versus)
        scale = sum(t for t, _ in self._versus) / expected if expected > 0 else 1.0
        fallback = statistics.median(self._taken) if self._taken else None
        guesses = [e * scale if e is not None else fallback for e in self._left.values()]
        if not guesses:
            return 0.0
        if any(g is None for g in guesses):
            return None
        lanes = max(1, min(self.lanes, len(guesses)))
        elapsed = self._clock() - self._since
        running = sum(max(0.0, g - elapsed) for g in guesses[:lanes])
        return (running + sum(guesses[lanes:])) / lanes


class TimeLeftColumn(ProgressColumn):
    """The countdown of one task of a rich progress display (the other rows stay empty)."""

    def __init__(self, countdown: Countdown) -> None:
        super().__init__()
        self.countdown = countdown
        self.task_id: TaskID | None = None

    def render(self, task: Task) -> Text:
        if task.id != self.task_id:
            return Text("")
        left = self.countdown.remaining()
        shown = "-:--:--" if left is None else str(dt.timedelta(seconds=round(left)))
        return Text(f"~{shown} left", style="progress.remaining")
