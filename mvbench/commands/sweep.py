"""``mvbench sweep``: run a suite file or an ad-hoc grid, resuming whatever is already done."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mvbench.console import console
from mvbench.errors import MvbenchError
from mvbench.progress import RichTrialProgress
from mvbench.results import RECORDS_FILE, options_label, read_records
from mvbench.runner import ResolvedTrial, Settings, Trial
from mvbench.selection import parse_selection, select
from mvbench.sweep import (DONE, FAILED, LEFT, Executor, PlannedTrial, SweepTrial,
                           adhoc_name, expand, load_suite, mark, pin_threads, plan, run_sweep, suite_settings,
                           to_run)
from mvbench.executors import add_parallel_arguments, executor_from_args
from mvbench.commands.common import add_trial_arguments, parse_seeds, parse_settings, registry_from

ProgressFactory = Callable[[ResolvedTrial], RichTrialProgress]

ADHOC_ONLY = ("method", "dataset", "missing", "rates", "seeds", "fill")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a suite (leaderboards/NAME.toml) or an ad-hoc grid, resuming",
        description="Expand a grid of trials, skip those already recorded as ok, run the rest. "
                    "A suite's records go to leaderboards/results/NAME/trials.jsonl; an ad-hoc "
                    "grid's to mvbench-results/sweep-HASH (the same grid always maps to the same "
                    "folder whatever the seeds, so rerunning a command, with the same or more seeds, "
                    "resumes it).",
        epilog="examples: mvbench sweep leaderboards/complete.toml --dry-run | "
               "mvbench sweep --method kmeans,rav --dataset synthetic --missing mcar "
               "--rates 0.1,0.3 --seeds 3 | "
               "mvbench sweep incomplete-faithful --only method=dimvc-hia --only rate=0.5,0.7")
    parser.add_argument("suite", nargs="?", help="suite file, or NAME for leaderboards/NAME.toml")
    parser.add_argument("-m", "--method", help="ad hoc: comma-separated method names")
    parser.add_argument("-d", "--dataset", help="ad hoc: comma-separated dataset names or paths")
    parser.add_argument("--missing",
                        help="ad hoc: comma-separated mechanisms (default: none, or mcar with --rates)")
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
                        help="show what is done, failed and left per cell; run nothing")
    parser.add_argument("--retry-failed", action="store_true",
                        help="also rerun trials whose records are all failed")
    add_parallel_arguments(parser)  # --executor, --jobs, --gpus, --trials-per-gpu, --address
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.set_defaults(handler=handle)


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def adhoc_trials(args: argparse.Namespace) -> list[SweepTrial]:
    methods, datasets = _split(args.method), _split(args.dataset)
    if not methods or not datasets:
        raise MvbenchError("give a suite file, or --method and --dataset for an ad-hoc sweep; "
                           "e.g. mvbench sweep --method kmeans --dataset synthetic")
    by_target = parse_settings(args.settings)
    rates: list[float | None] = [None]
    if args.rates:
        try:
            rates = [float(r) for r in _split(args.rates)]
        except ValueError:
            raise MvbenchError(f"--rates {args.rates!r} must be comma-separated numbers, "
                               f"e.g. 0.1,0.3") from None
    mechanisms = _split(args.missing) or ["mcar" if args.rates else "none"]
    option_set = options_label(by_target["method"]) or None
    items = []
    for dataset in datasets:
        for mechanism in mechanisms:
            # Only mechanisms with a rate take the rates; plan() rejects rates on the others,
            # so mechanism 'none' next to mcar runs once.
            for rate in rates if mechanism != "none" else [None]:
                missing_options = dict(by_target["missing"])
                if rate is not None:
                    missing_options["rate"] = rate
                label_rate = rate if rate is not None else (0.0 if mechanism == "none" else None)
                for method in methods:
                    items.extend(SweepTrial(
                        Trial(method=method, dataset=dataset, seed=seed, missing=mechanism,
                              method_options=by_target["method"], dataset_options=by_target["dataset"],
                              missing_options=missing_options, fill=args.fill or "mean",
                              option_set=option_set), dataset, label_rate)
                        for seed in parse_seeds(args.seeds or "3"))
    return items


def handle(args: argparse.Namespace) -> int:
    selection = parse_selection(args.only)
    registry = registry_from(args)
    if args.suite:
        given = [f"--{name}" for name in ADHOC_ONLY if getattr(args, name) is not None] + (
            ["--set"] if args.settings else [])
        if given:
            raise MvbenchError(f"{', '.join(given)} define an ad-hoc grid; with a suite file, edit "
                               f"the file instead")
        suite = load_suite(args.suite, registry)
        pin_threads(suite)
        items, name = expand(suite), suite.name
        settings = suite_settings(suite, device=args.device, precision=args.precision,
                                  data_dir=args.data_dir)
        results_file = Path(args.out) / RECORDS_FILE if args.out else suite.results_file
    else:
        items, name = adhoc_trials(args), None
        settings = Settings(device=args.device or "auto", precision=args.precision or "fp32",
                            data_dir=args.data_dir)
        results_file = None if not args.out else Path(args.out) / RECORDS_FILE
    planned = plan(items, registry, settings)
    if results_file is None:
        results_file = Path("mvbench-results") / adhoc_name(planned, registry, settings) / RECORDS_FILE
    if selection:  # after naming the folder: a slice of an ad-hoc grid shares the grid's records
        planned = select(planned, selection)
    planned = mark(planned, read_records(results_file))
    pending = to_run(planned, retry_failed=args.retry_failed)
    if args.dry_run:
        console.print(plan_table(planned, title=f"{name or 'ad-hoc sweep'}: {results_file}"))
        console.print(_plan_summary(planned, pending, args.retry_failed), highlight=False)
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
                      f"command to resume", highlight=False)
        return 130  # the shell's code for Ctrl-C; raising would add the CLI's generic second line
    failed = [r for r in records if r["status"] != "ok"]
    console.print(f"ran {len(records)} trials: {len(records) - len(failed)} ok, {len(failed)} failed; "
                  f"records: {results_file}", highlight=False)
    for record in failed[:20]:
        console.print(record_line(record), highlight=False, markup=False, soft_wrap=True)
    if failed:
        console.print("rerun with --retry-failed to try the failed trials again", highlight=False)
    if name:
        console.print(f"next: mvbench leaderboard {name}", highlight=False)
    return 1 if failed else 0


def run_with_display(pending: Sequence[PlannedTrial], settings: Settings, plugins: Sequence[str],
                     results_file: Path, suite: str | None, *, quiet: bool,
                     make_executor: Callable[[ProgressFactory], Executor]) -> list[dict[str, Any]]:
    """Run ``pending`` with a trials bar (and an epochs bar for executors that take the
    progress factory), appending records to ``results_file``."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, disable=quiet, transient=True)
    with progress:
        overall = progress.add_task("trials", total=len(pending))
        current: list[RichTrialProgress] = []

        def make_progress(resolved: ResolvedTrial) -> RichTrialProgress:
            trial = resolved.trial
            name = trial.option_set or resolved.method.name
            progress.update(overall, description=f"trials ({name} on {resolved.dataset_name}, "
                                                 f"{trial.missing}, seed {trial.seed})")
            current.append(RichTrialProgress(progress))
            return current[-1]

        def finished(record: dict[str, Any]) -> None:
            if current:
                current.pop().close()
            progress.advance(overall)
            # One line per trial stays in a terminal's scrollback and in a redirected log,
            # where the transient bars leave nothing.
            if not quiet:
                done = int(progress.tasks[overall].completed)
                console.print(f"[{done}/{len(pending)}] {record_line(record)}", highlight=False, markup=False,
                              soft_wrap=True)

        return run_sweep(pending, settings, plugins, make_executor(make_progress), results_file,
                         suite=suite, on_record=finished)


def record_line(record: dict[str, Any]) -> str:
    """What a finished trial was and how it went, on one line."""
    params = record.get("missing_options")
    missing = record["missing"] + (f" {options_label(params)}" if params else "")
    what = (f"{record['method']} ({record.get('option_set') or 'default'}) on {record['dataset']}, "
            f"{missing}, seed {record['seed']}")
    if record["status"] != "ok":
        return f"{what}: failed: {record.get('error')}"
    metrics = record.get("metrics") or {}
    return (f"{what}: ACC {metrics.get('acc', float('nan')):.4f} NMI {metrics.get('nmi', float('nan')):.4f} "
            f"in {record.get('train_time', float('nan')):.0f} s")


def _cell(p: PlannedTrial) -> tuple[str, str, str, str]:
    trial = p.trial
    rate = "" if p.item.rate is None else f"{p.item.rate:g}"
    params = options_label({k: v for k, v in trial.missing_options.items() if k != "rate"})
    missing = trial.missing + (f" ({params})" if params else "")
    return p.item.dataset_label, missing, rate, trial.option_set or trial.method


def plan_table(planned: Sequence[PlannedTrial], *, title: str) -> Table:
    """Done / failed / left seeds per cell (dataset, missingness, rate, option set)."""
    counts: dict[tuple[str, str, str, str], Counter] = {}
    for p in planned:
        counts.setdefault(_cell(p), Counter())[p.state] += 1
    table = Table(title=title)
    for column in ("dataset", "missing", "rate", "method / option set"):
        table.add_column(column)
    for column in (DONE, FAILED, LEFT):
        table.add_column(column, justify="right")
    for cell, c in counts.items():
        style = "green" if c[DONE] and not (c[FAILED] or c[LEFT]) else ("red" if c[FAILED] else None)
        table.add_row(*cell, str(c[DONE]), str(c[FAILED]), str(c[LEFT]), style=style)
    return table


def _plan_summary(planned: Sequence[PlannedTrial], pending: Sequence[PlannedTrial], retry: bool) -> str:
    c = Counter(p.state for p in planned)
    note = "" if retry or not c[FAILED] else " (failed ones rerun only with --retry-failed)"
    return (f"{len(planned)} trials: {c[DONE]} done, {c[FAILED]} failed, {c[LEFT]} left; "
            f"{len(pending)} to run{note}")
