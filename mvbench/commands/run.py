"""``mvbench run``: seeded trials of one method on one dataset, with a per-seed table and
mean +- std."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.markup import escape
from rich.table import Table

from mvbench.console import console
from mvbench.errors import MvbenchError
from mvbench.metrics import METRICS
from mvbench.progress import RichTrialProgress
from mvbench.registry import Registry
from mvbench.results import RECORDS_FILE, aggregate, read_records, write_summary
from mvbench.runner import Settings, Trial, run_trials
from mvbench.commands.common import (add_trial_arguments, default_out_dir, parse_seeds,
                                     parse_settings, registry_from)

DEFAULT_DATASET = "handwritten"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run seeded trials of a method on a dataset",
        description="Run seeded trials of one method on one dataset and print per-seed rows and "
                    "mean +- std. Without --method, the strongest installed method runs; without "
                    f"--dataset, the embedded {DEFAULT_DATASET!r}.")
    parser.add_argument("-m", "--method", help="method name (see 'mvbench list methods')")
    parser.add_argument("-d", "--dataset", help="dataset name, or a path to a .mat file "
                                                "(see 'mvbench list datasets')")
    parser.add_argument("--missing", default=None,
                        help="missingness mechanism: none (default), mcar, per-view, file, ...")
    parser.add_argument("--rate", type=float, default=None,
                        help="missing rate for mcar (fraction of samples with a missing view)")
    parser.add_argument("--rates", default=None, metavar="R1,R2,...",
                        help="per-view missing rates for per-view")
    add_trial_arguments(parser)
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="results folder (default: mvbench-results/run-TIMESTAMP); records are "
                             "appended to DIR/trials.jsonl, the summary to DIR/summary.csv")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.set_defaults(handler=handle)


def default_method(registry: Registry) -> str:
    if not registry.methods:
        raise MvbenchError("no method plugin is installed; reinstall mvbench")
    return max(registry.methods.values(), key=lambda spec: spec.default_priority).name


def missing_arguments(args: argparse.Namespace, given: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The mechanism and its options from --missing/--rate/--rates and --set missing.*."""
    mechanism = args.missing or ("per-view" if args.rates else "mcar" if args.rate is not None else "none")
    options = dict(given)
    if args.rate is not None:
        if mechanism == "per-view":
            raise MvbenchError("--rate is for mcar; per-view takes --rates R1,R2,...")
        options["rate"] = args.rate
    if args.rates is not None:
        if mechanism != "per-view":
            raise MvbenchError(f"--rates is for --missing per-view, not {mechanism!r}; use --rate")
        options["rates"] = args.rates
    return mechanism, options


def handle(args: argparse.Namespace) -> int:
    registry = registry_from(args)
    method = args.method or default_method(registry)
    dataset = args.dataset or DEFAULT_DATASET
    settings_by_target = parse_settings(args.settings)
    mechanism, missing_options = missing_arguments(args, settings_by_target["missing"])
    trials = [Trial(method=method, dataset=dataset, seed=seed, missing=mechanism,
                    method_options=settings_by_target["method"],
                    dataset_options=settings_by_target["dataset"],
                    missing_options=missing_options, fill=args.fill)
              for seed in parse_seeds(args.seeds)]
    out_dir = Path(args.out) if args.out else default_out_dir("run")
    settings = Settings(device=args.device, precision=args.precision, data_dir=args.data_dir)
    try:
        records = _run_with_display(trials, settings, registry, out_dir, quiet=args.quiet)
    finally:
        # Also after Ctrl-C: the summary then covers the trials that finished.
        if (out_dir / RECORDS_FILE).exists():
            summary = write_summary(out_dir, read_records(out_dir / RECORDS_FILE))
    console.print(results_table(records))
    console.print(f"records: {out_dir / RECORDS_FILE}  summary: {summary}", highlight=False)
    failed = [r for r in records if r["status"] != "ok"]
    for record in failed:
        console.print(f"[red]seed {record['seed']} failed:[/] {escape(str(record.get('error')))}", highlight=False)
    return 1 if len(failed) == len(records) else 0


def _run_with_display(trials: list[Trial], settings: Settings, registry: Registry, out_dir: Path,
                      *, quiet: bool) -> list[dict[str, Any]]:
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, disable=quiet, transient=True)
    with progress:
        overall = progress.add_task("trials", total=len(trials))
        current: list[RichTrialProgress] = []

        def make_progress(resolved: Any) -> RichTrialProgress:
            progress.update(overall, description=f"trials ({resolved.method.name} on "
                                                 f"{resolved.dataset_name}, seed {resolved.trial.seed})")
            current.append(RichTrialProgress(progress))
            return current[-1]

        def finished(record: dict[str, Any]) -> None:
            current.pop().close()
            progress.advance(overall)

        return run_trials(trials, settings, registry, out_dir, progress_factory=make_progress,
                          on_record=finished)


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
