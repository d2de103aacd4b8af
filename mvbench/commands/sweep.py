"""Expand a grid of trials, skip those already recorded as ok, run the rest. A suite's records go
to leaderboards/results/NAME/trials.jsonl; an ad-hoc grid's to mvbench-results/sweep-HASH (the
same grid always maps to the same folder whatever the seeds, so rerunning a command, with the
same or more seeds, resumes it).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mvbench.commands.common import add_command
from mvbench.api import prepare_sweep
from mvbench.checkpoint import SnapshotInfo, snapshots_beside, snapshots_of
from mvbench.claims import held_by_others
from mvbench.console import console
from mvbench.device import device_name, hardware_name, resolve_device
from mvbench.errors import MvbenchError
from mvbench.estimate import Countdown, TimeLeftColumn, describe, duration, finished_times, trial_seconds
from mvbench.progress import RichTrialProgress
from mvbench.registry import Registry, get_registry
from mvbench.results import options_label
from mvbench.provenance import versions
from mvbench.runner import ResolvedTrial, Settings, snapshot_fingerprint
from mvbench.sweep import DONE, FAILED, LEFT, Executor, PlannedTrial, run_sweep
from mvbench.executors import add_parallel_arguments, executor_from_args
from mvbench.commands.common import (add_trial_arguments, checkpoint_seconds, first_line, parse_seeds,
                                     parse_settings, registry_from, traceback_hint)

ProgressFactory = Callable[[ResolvedTrial], RichTrialProgress]

RUNNING = "running"  # a dry run's column: left trials that another live process has claimed
ADHOC_ONLY = ("method", "dataset", "missing", "rates", "seeds", "fill")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "sweep", __doc__,
                         epilog="examples: mvbench sweep leaderboards/complete.toml --dry-run | "
               "mvbench sweep --method kmeans,rav --dataset synthetic --missing mcar "
               "--rates 0.1,0.3 --seeds 3 | "
               "mvbench sweep -m \"rav[z_normalize=true],kmeans\" -d ngs | "
               "mvbench sweep incomplete-faithful --only method=dimvc-hia --only rate=0.5,0.7")
    parser.add_argument("suite", nargs="?", help="suite file, or NAME for leaderboards/NAME.toml")
    parser.add_argument("-m", "--method",
                        help="ad hoc: comma-separated method (or variant) names, each with optional "
                             "options in brackets: \"rav[z_normalize=true,w_normalize=[mean,energy]],kmeans\" "
                             "(a bracketed list: one option set per value)")
    parser.add_argument("-d", "--dataset", help="ad hoc: comma-separated dataset names or paths")
    parser.add_argument("--missing",
                        help="ad hoc: comma-separated mechanisms (default: mcar with --rates, else file "
                             "for a dataset that ships its missing-view pattern and none for the others)")
    parser.add_argument("--rates", metavar="R1,R2,...",
                        help="ad hoc: missing rates; each mechanism with a rate option (e.g. mcar) "
                             "runs once per rate")
    add_trial_arguments(parser)
    # None = "not given", so a suite's own device, precision and seeds apply.
    parser.set_defaults(seeds=None, device=None, precision=None, fill=None)
    parser.add_argument("--only", action="append", default=[], metavar="FIELD=V1,V2",
                        help="run only the trials whose FIELD (method, dataset, missing, rate or seed) "
                             "is one of the values; repeatable, fields combine with 'and'; a method "
                             "value matches an option set or every option set of that method")
    parser.add_argument("--out", metavar="DIR", help="results folder (records in DIR/trials.jsonl)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what is done, failed and left per cell (and running in another "
                             "process), and which trials resume from snapshots; run nothing")
    parser.add_argument("--retry-failed", action="store_true",
                        help="also rerun trials whose records are all failed")
    add_parallel_arguments(parser)  # --executor, --jobs, --gpus, --trials-per-gpu, --address
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.set_defaults(handler=handle)


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _rates(text: str | None) -> list[float]:
    try:
        return [float(r) for r in _split(text)]
    except ValueError:
        raise MvbenchError(f"--rates {text!r} must be comma-separated numbers, e.g. 0.1,0.3") from None


def handle(args: argparse.Namespace) -> int:
    registry = registry_from(args)
    if args.suite:
        given = [f"--{name}" for name in ADHOC_ONLY if getattr(args, name) is not None] + (
            ["--set"] if args.settings else [])
        if given:
            raise MvbenchError(f"{', '.join(given)} define an ad-hoc grid; with a suite file, edit "
                               f"the file instead")
    prepared = prepare_sweep(
        registry, args.suite, methods=args.method, datasets=_split(args.dataset), missing=_split(args.missing),
        rates=_rates(args.rates), seeds=parse_seeds(args.seeds) if args.seeds else None,
        by_target=parse_settings(args.settings), fill=args.fill, device=args.device, precision=args.precision,
        data_dir=args.data_dir, out=args.out, only=args.only, retry_failed=args.retry_failed,
        save_labels=args.save_labels, checkpoint_every=checkpoint_seconds(args.checkpoint_every))
    name, planned, pending = prepared.name, prepared.planned, prepared.pending
    settings, results_file = prepared.settings, prepared.results_file
    if args.dry_run:
        running = held_by_others(results_file, [p.key for p in pending])
        console.print(plan_table(planned, title=f"{name or 'ad-hoc sweep'}: {results_file}", running=running))
        console.print(_plan_summary(planned, pending, args.retry_failed), highlight=False)
        if running:
            verb = "is" if len(running) == 1 else "are"
            console.print(f"{len(running)} of the trials to run {verb} running now in another process "
                          f"(a sweep running alongside does not start them)", highlight=False)
        for line in snapshot_lines([p for p in pending if p.key not in running], snapshots_beside(results_file),
                                   settings):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        if pending:
            _, estimate_line = estimate(pending, registry, settings, results_file)
            console.print(estimate_line(1), highlight=False, markup=False, soft_wrap=True)
        return 0
    console.print(_plan_summary(planned, pending, args.retry_failed), highlight=False)
    if not pending:
        return 0
    try:
        records = run_with_display(pending, settings, tuple(args.plugin), results_file, name,
                                   quiet=args.quiet,
                                   make_executor=lambda factory: executor_from_args(args, factory))
    except KeyboardInterrupt:
        console.print(f"[yellow]stopped:[/] finished trials are in {results_file}; rerun the same "
                      f"command to resume (a long trial that took snapshots resumes from them)", highlight=False)
        return 130  # the shell's code for Ctrl-C; raising would add the CLI's generic second line
    failed = [r for r in records if r["status"] != "ok"]
    console.print(f"ran {len(records)} trials: {len(records) - len(failed)} ok, {len(failed)} failed; "
                  f"records: {results_file}", highlight=False)
    for record in failed[:20]:
        console.print(record_line(record), highlight=False, markup=False, soft_wrap=True)
    hint = traceback_hint(failed, results_file)
    if hint:
        console.print(hint, highlight=False, markup=False, soft_wrap=True)
    if failed:
        console.print("rerun with --retry-failed to try the failed trials again", highlight=False)
    degenerate = [r for r in records if r["status"] == "ok" and r.get("degenerate")]
    if degenerate:
        console.print(f"{len(degenerate)} of the ok trials look degenerate (label-free checks; metrics "
                      f"kept as computed):", highlight=False)
    for record in degenerate[:20]:
        console.print(record_line(record), highlight=False, markup=False, soft_wrap=True)
    if name:
        console.print(f"next: mvbench leaderboard {name}", highlight=False)
    return 1 if failed else 0


class TrialDisplay:
    """What a command shows while trials run: a trials bar counting down the estimated time
    left, an epochs bar for executors that take the progress factory, and a line per finished
    trial (which stays in a terminal's scrollback and in a redirected log, where the transient
    bars leave nothing). The bars appear once the trials start (:meth:`start`), after the
    datasets are loaded, so that a dataset download shows its own bar first."""

    def __init__(self, total: int, results_file: Path, seconds: Mapping[str, float | None], *,
                 quiet: bool) -> None:
        self.total, self.results_file, self.quiet = total, results_file, quiet
        self.countdown = Countdown(seconds)
        time_left = TimeLeftColumn(self.countdown)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), time_left, console=console, disable=quiet,
                                 transient=True)
        self.overall = time_left.task_id = self.progress.add_task("trials", total=total)
        self._current: list[RichTrialProgress] = []

    def executor(self, make_executor: Callable[[ProgressFactory], Executor]) -> Executor:
        """The executor, given the epochs bar's factory; the countdown spreads over its workers."""
        executor = make_executor(self.make_progress)
        # Ray without --jobs takes as many trials at once as the cluster has room for, which
        # is unknown here: counted as one at a time, the time left errs long.
        self.countdown.lanes = getattr(executor, "jobs", None) or 1
        return executor

    def start(self, keys: Sequence[str]) -> None:
        """The trials of ``keys`` (those not left to another process) begin now."""
        self.countdown.start(keys)
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def make_progress(self, resolved: ResolvedTrial) -> RichTrialProgress:
        trial = resolved.trial
        name = escape(trial.option_set or resolved.method.name)  # "rav[a=1]" is not markup
        self.progress.update(self.overall, description=f"trials ({name} on {resolved.dataset_name}, "
                                                       f"{trial.missing}, seed {trial.seed})")
        self._current.append(RichTrialProgress(self.progress))
        return self._current[-1]

    def finished(self, record: dict[str, Any]) -> None:
        if self._current:
            self._current.pop().close()
        self.countdown.finished(record)
        self.progress.advance(self.overall)
        if not self.quiet:
            done = int(self.progress.tasks[self.overall].completed)
            console.print(f"[{done}/{self.total}] {record_line(record)}", highlight=False, markup=False,
                          soft_wrap=True)

    def skipped(self, planned: PlannedTrial) -> None:
        """Another process claimed or recorded this trial first."""
        self.total -= 1
        self.progress.update(self.overall, total=self.total)
        self.countdown.drop(planned.key)
        trial = planned.trial
        what = trial_words(trial.method, trial.option_set, trial.dataset, trial.missing, trial.missing_options,
                           trial.seed)
        console.print(f"{what}: taken by another process writing {self.results_file}; left to it",
                      highlight=False, markup=False, soft_wrap=True)


def run_with_display(pending: Sequence[PlannedTrial], settings: Settings, plugins: Sequence[str],
                     results_file: Path, suite: str | None, *, quiet: bool,
                     make_executor: Callable[[ProgressFactory], Executor]) -> list[dict[str, Any]]:
    """Run ``pending`` through :func:`mvbench.sweep.run_sweep`, appending records to
    ``results_file``: say up front how long the trials will take (:mod:`mvbench.estimate`),
    then show them (:class:`TrialDisplay`)."""
    seconds, estimate_line = estimate(pending, get_registry(tuple(plugins)), settings, results_file)
    display = TrialDisplay(len(pending), results_file, seconds, quiet=quiet)
    executor = display.executor(make_executor)
    if not quiet:
        console.print(estimate_line(display.countdown.lanes), highlight=False, markup=False, soft_wrap=True)
    try:
        return run_sweep(pending, settings, plugins, executor, results_file, suite=suite,
                         on_record=display.finished, on_skipped=display.skipped, on_start=display.start)
    finally:
        display.stop()


def estimate(pending: Sequence[PlannedTrial], registry: Registry, settings: Settings,
             results_file: Path) -> tuple[dict[str, float | None], Callable[[int], str]]:
    """Each pending trial's estimated seconds on the settings' device (preferring records of its
    hardware model), less the training seconds its snapshots hold when it resumes from them, and
    the line that states them for a number of trials at a time."""
    times, run_device = finished_times(results_file), resolve_device(settings.device)
    device, hardware = run_device.type, hardware_name(run_device)
    seconds = trial_seconds(pending, registry, device, times, hardware)
    checkpoints = Path(settings.checkpoints) if settings.checkpoints else snapshots_beside(results_file)
    resuming = {key: info.seconds for key, (info, differ) in snapshot_states(pending, checkpoints, settings).items()
                if not differ and seconds.get(key) is not None}
    seconds = {key: max(0.0, s - resuming[key]) if key in resuming else s for key, s in seconds.items()}
    trials = f"{len(resuming)} trial{'s' if len(resuming) > 1 else ''} that resume{'' if len(resuming) > 1 else 's'}"
    held = (f"; for the {trials} from snapshots, less the {duration(sum(resuming.values()))} of training "
            f"{'those hold' if len(resuming) > 1 else 'it holds'}" if resuming else "")
    return seconds, lambda lanes: describe(pending, seconds, device, times.where, lanes, hardware) + held


_FINGERPRINT_WORDS = {"trial_key": "trial key", "git_commit": "commit", "torch": "torch", "device_name": "hardware"}


def snapshot_states(pending: Sequence[PlannedTrial], checkpoints: Path,
                    settings: Settings) -> dict[str, tuple[SnapshotInfo, list[str]]]:
    """The last snapshot of each ``pending`` trial that has one in ``checkpoints``, with how what
    made it differs from this run (commit, torch, hardware; empty: the trial resumes from it)."""
    found = snapshots_of(checkpoints, [p.key for p in pending])
    here, device = versions(), device_name(resolve_device(settings.device))
    states = {}
    for key, info in found.items():
        made_by = info.fingerprint
        states[key] = (info, [f"{_FINGERPRINT_WORDS[name]} {_short(name, made_by.get(name))} (this run: "
                              f"{_short(name, value)})" for name, value
                              in snapshot_fingerprint(key, here, device).items() if made_by.get(name) != value])
    return states


def snapshot_lines(pending: Sequence[PlannedTrial], checkpoints: Path, settings: Settings) -> list[str]:
    """What a dry run says of the snapshots of the ``pending`` trials in ``checkpoints``: which trials
    resume and from where, and which have snapshots made by other code, torch or hardware, which the
    run sets aside (a user who updated the code learns it before the hours are lost)."""
    states = snapshot_states(pending, checkpoints, settings)
    resume, aside = [], []
    for p in pending:
        if p.key not in states:
            continue
        (info, differ), trial = states[p.key], p.trial
        words = trial_words(trial.method, trial.option_set, p.item.dataset_label, trial.missing,
                            trial.missing_options, trial.seed)
        if differ:
            aside.append(f"  {words}: {info.describe()}, made with {', '.join(differ)}")
        else:
            resume.append(f"  {words}: from {info.describe()}")
    lines = []
    if resume:
        lines += [f"{len(resume)} of the trials to run resume from their snapshots in {checkpoints}:", *resume]
    if aside:
        lines += [f"{len(aside)} of the trials to run have snapshots in {checkpoints} that this run sets aside "
                  f"(the trial starts over; to resume it, run it with the commit, torch and hardware that made "
                  f"them):", *aside]
    return lines


def _short(name: str, value: Any) -> str:
    return str(value)[:7] if name == "git_commit" and value else str(value)


def trial_words(method: str, option_set: str | None, dataset: str, missing: str,
                missing_options: Mapping[str, Any] | None, seed: int) -> str:
    """A trial as the sweep's lines name it: method (option set) on dataset, missingness, seed."""
    missing_text = missing + (f" {options_label(missing_options)}" if missing_options else "")
    return f"{method} ({option_set or 'default'}) on {dataset}, {missing_text}, seed {seed}"


def record_line(record: dict[str, Any]) -> str:
    """What a finished trial was and how it went, on one line."""
    what = trial_words(record["method"], record.get("option_set"), record["dataset"], record["missing"],
                       record.get("missing_options"), record["seed"])
    if record["status"] != "ok":
        return f"{what}: failed: {first_line(record.get('error'))}"
    metrics = record.get("metrics") or {}
    degenerate = f"; degenerate: {'; '.join(record['degenerate'])}" if record.get("degenerate") else ""
    return (f"{what}: ACC {metrics.get('acc', float('nan')):.4f} NMI {metrics.get('nmi', float('nan')):.4f} "
            f"in {record.get('train_time', float('nan')):.0f} s{degenerate}")


def _cell(p: PlannedTrial) -> tuple[str, str, str, str]:
    trial = p.trial
    rate = "" if p.item.rate is None else f"{p.item.rate:g}"
    params = options_label({k: v for k, v in trial.missing_options.items() if k != "rate"})
    missing = trial.missing + (f" ({params})" if params else "")
    return p.item.dataset_label, missing, rate, trial.option_set or trial.method


def plan_table(planned: Sequence[PlannedTrial], *, title: str, running: Set[str] = frozenset()) -> Table:
    """Done / failed / left seeds per cell (dataset, missingness, rate, option set), and, when
    another process is running some of them (``running`` keys), how many of those are."""
    counts: dict[tuple[str, str, str, str], Counter] = {}
    for p in planned:
        cell = counts.setdefault(_cell(p), Counter())
        cell[p.state] += 1
        cell[RUNNING] += p.key in running
    states = (DONE, FAILED, LEFT, RUNNING) if running else (DONE, FAILED, LEFT)
    table = Table(title=title)
    for column in ("dataset", "missing", "rate", "method / option set"):
        table.add_column(column)
    for column in states:
        table.add_column(column, justify="right")
    for cell, c in counts.items():
        style = "green" if c[DONE] and not (c[FAILED] or c[LEFT]) else ("red" if c[FAILED] else None)
        table.add_row(*map(escape, cell), *(str(c[state]) for state in states), style=style)
    return table


def _plan_summary(planned: Sequence[PlannedTrial], pending: Sequence[PlannedTrial], retry: bool) -> str:
    c = Counter(p.state for p in planned)
    note = "" if retry or not c[FAILED] else " (failed ones rerun only with --retry-failed)"
    return (f"{len(planned)} trials: {c[DONE]} done, {c[FAILED]} failed, {c[LEFT]} left; "
            f"{len(pending)} to run{note}")
