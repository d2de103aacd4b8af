"""Run seeded trials of one method on one dataset and print per-seed rows and mean +- std.
Without --method, the strongest installed method runs."""

# A run is a sweep of one cell: its trials go through the sweep's driver
# (mvbench.sweep.run_sweep) and executors, into --out, which it resumes.

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from mvbench.adhoc import default_mechanism
from mvbench.api import DEFAULT_DATASET, execute_run, plan_run, run_trials_for
from mvbench.console import console
from mvbench.errors import MvbenchError
from mvbench.executors import add_parallel_arguments, executor_from_args
from mvbench.metrics import METRICS
from mvbench.registry import Registry
from mvbench.results import RECORDS_FILE, aggregate
from mvbench.runner import Settings, Trial
from mvbench.commands.common import (add_command, add_trial_arguments, checkpoint_seconds, default_out_dir,
                                     first_line, parse_seeds, parse_settings, registry_from, traceback_hint)
from mvbench.commands.sweep import run_with_display


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "run", f"{__doc__} Without --dataset, the embedded {DEFAULT_DATASET!r}.")
    parser.add_argument("-m", "--method", help="method name (see 'mvbench list methods')")
    parser.add_argument("-d", "--dataset", help="dataset name, or a path to a .mat file "
                                                "(see 'mvbench list datasets')")
    parser.add_argument("--missing", default=None,
                        help="missingness mechanism: none, mcar, per-view, file, ... (default: file for "
                             "a dataset that ships its missing-view pattern, else none)")
    parser.add_argument("--rate", type=float, default=None,
                        help="missing rate for mcar (fraction of samples with a missing view)")
    parser.add_argument("--view-rates", default=None, metavar="R1,R2,...",
                        help="per-view missing rates for per-view (one per view, or one for all)")
    parser.add_argument("--rates", default=None, help=argparse.SUPPRESS)  # the old spelling: an error
    add_trial_arguments(parser)
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="results folder (default: mvbench-results/run-TIMESTAMP); records are "
                             "appended to DIR/trials.jsonl, the summary to DIR/summary.csv; trials "
                             "already recorded ok in DIR are not rerun")
    add_parallel_arguments(parser)  # --executor, --jobs, --gpus, --trials-per-gpu, --address
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.rates is not None:
        raise MvbenchError("run's --rates is now --view-rates (per-view missing rates); --rates is "
                           "sweep's grid of missing rates")
    registry = registry_from(args)
    trials = run_trials_for(registry, method=args.method, dataset=args.dataset, seeds=parse_seeds(args.seeds),
                            missing=args.missing, rate=args.rate, view_rates=args.view_rates,
                            by_target=parse_settings(args.settings), fill=args.fill)
    out_dir = Path(args.out) if args.out else default_out_dir("run")
    settings = Settings(device=args.device, precision=args.precision, data_dir=args.data_dir,
                        save_labels=args.save_labels, checkpoint_every=checkpoint_seconds(args.checkpoint_every))
    run_plan = plan_run(trials, settings, registry, out_dir)
    note = missing_note(registry, trials[0], explicit=args.missing is not None)
    if note:
        console.print(note, highlight=False, markup=False, soft_wrap=True)
    if run_plan.done:
        console.print(f"resuming {out_dir}: {len(run_plan.done)} of {len(trials)} trials are already recorded "
                      f"ok there and are not rerun (the summary counts each trial once)",
                      highlight=False, soft_wrap=True)
    records, summary = execute_run(run_plan, lambda pending: run_with_display(
        pending, settings, tuple(args.plugin), run_plan.results_file, None, quiet=args.quiet,
        make_executor=lambda factory: executor_from_args(args, factory)))
    if records:  # none when another process holds every trial of the run
        console.print(results_table(records))
    console.print(f"records: {out_dir / RECORDS_FILE}" + (f"  summary: {summary}" if summary else ""),
                  highlight=False, soft_wrap=True)
    failed = [r for r in records if r["status"] != "ok"]
    for record in failed:
        console.print(f"[red]seed {record['seed']} failed:[/] {escape(first_line(record.get('error')))}",
                      highlight=False, soft_wrap=True)
    hint = traceback_hint(failed, out_dir / RECORDS_FILE)
    if hint:
        console.print(hint, highlight=False, markup=False, soft_wrap=True)
    for record in records:
        if record.get("degenerate"):  # ok, metrics as computed, but collapsed by a label-free check
            reasons = escape("; ".join(record["degenerate"]))
            console.print(f"[yellow]seed {record['seed']} degenerate:[/] {reasons}", highlight=False,
                          soft_wrap=True)
    return 1 if records and len(failed) == len(records) else 0  # none: another process runs them all


def missing_note(registry: Registry, trial: Trial, *, explicit: bool) -> str | None:
    """A line saying which missingness a dataset that ships its missing-view pattern runs with."""
    default = default_mechanism(registry, trial.dataset)
    if default == "none":
        return None
    if trial.missing == default:
        return (None if explicit else f"note: {trial.dataset} ships its missing-view pattern, so it runs "
                f"with --missing {default}; --missing none runs it as complete data")
    return (f"note: {trial.dataset} ships its missing-view pattern (its default, --missing {default}); this "
            f"run uses --missing {trial.missing} instead, and its records say so (dataset_default_missing)")


def _fmt(value: float, digits: int = 4) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def results_table(records: list[dict[str, Any]]) -> Table:
    """Per-seed rows, then mean +- std over the seeds that finished."""
    first = records[0]
    title = (f"{first['method']} on {first['dataset']} (missing: {first['missing']}"
             + (f" {first['missing_options']}" if first["missing_options"] else "") + ")")
    table = Table(title=title)
    table.add_column("seed", justify="right")
    table.add_column("status")
    for metric in METRICS:
        table.add_column(metric.upper(), justify="right")
    table.add_column("train s", justify="right")
    for r in records:
        metrics = r.get("metrics", {})
        table.add_row(str(r["seed"]), r["status"], *[f"{metrics[m]:.4f}" if m in metrics else "-"
                                                     for m in METRICS],
                      f"{r['train_time']:.1f}" if "train_time" in r else "-")
    summary = aggregate(records)
    if not summary.empty:
        row = summary.iloc[0]
        table.add_section()
        table.add_row("mean", f"n={int(row['n_seeds'])}",
                      *[f"{row[f'{m}_mean']:.4f}" for m in METRICS], f"{row['train_time_mean']:.1f}")
        table.add_row("std", "ddof=1", *[_fmt(row[f"{m}_std"]) for m in METRICS],
                      _fmt(row["train_time_std"], 1))
    return table
