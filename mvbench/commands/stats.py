"""Statistics over a board's trials: a paired Wilcoxon signed-rank test of each entry (method and
option set) against --reference on the same (dataset, missing-view setting, seed) cells with
Holm's correction; average ranks over the blocks (dataset x setting); the Friedman test with
Nemenyi's critical difference and a critical-difference diagram (NAME_cd_METRIC.png); with
--bootstrap, bootstrap confidence intervals beside mean +- std.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
from rich.markup import escape
from rich.table import Table

from mvbench import stats
from mvbench.api import trial_rows
from mvbench.console import console
from mvbench.errors import MvbenchError
from mvbench.metrics import METRICS
from mvbench.suite import load_suite
from mvbench.commands.common import add_command, registry_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "stats", __doc__,
                         epilog="example: mvbench stats incomplete-faithful --reference kmeans --metric acc")
    parser.add_argument("name", nargs="?", help="suite NAME (leaderboards/NAME.toml) or a suite file")
    parser.add_argument("--results", metavar="DIR",
                        help="records folder (default: the suite's); without a suite, an ad-hoc "
                             "sweep's or a run's folder")
    parser.add_argument("--reference", metavar="ENTRY",
                        help="the entry the others are tested against (an option-set name as the "
                             "board shows it, or a method with one entry)")
    parser.add_argument("--entries", metavar="E1,E2,...",
                        help="only these entries (ranks and the Friedman test need blocks in which "
                             "every chosen entry has results)")
    parser.add_argument("--metric", default="acc", choices=METRICS, help="default acc")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--bootstrap", action="store_true",
                        help="also a bootstrap confidence interval of each cell's mean over seeds")
    parser.add_argument("--confidence", type=float, default=0.95, help="of the bootstrap interval (0.95)")
    parser.add_argument("--device", help="with records from several devices: use those of this kind")
    parser.add_argument("--out-dir", metavar="DIR",
                        help="where the diagram goes (default: the suite's folder, or --results)")
    parser.set_defaults(handler=handle)


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4g}"


def _diff(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:+.4f}"


def handle(args: argparse.Namespace) -> int:
    if not 0 < args.alpha < 1 or not 0 < args.confidence < 1:
        raise MvbenchError("--alpha and --confidence must lie strictly between 0 and 1")
    registry = registry_from(args)
    rows = stats.with_entries(trial_rows(args.name, results=args.results, device=args.device,
                                         plugins=tuple(args.plugin)))
    if args.entries:
        rows = stats.restrict(rows, [e.strip() for e in args.entries.split(",") if e.strip()])
    metric = args.metric
    means = stats.block_means(rows, metric)
    title = args.name or str(args.results)
    console.print(f"{escape(title)}: {means.shape[1]} entries, {means.shape[0]} blocks (dataset x missing-view "
                  f"setting), {int((rows['status'] == 'ok').sum())} ok trials; metric {metric.upper()}",
                  highlight=False, soft_wrap=True)
    if rows.attrs.get("left_out"):
        console.print(rows.attrs["left_out"], highlight=False, markup=False, soft_wrap=True)
    if args.reference:
        _print_wilcoxon(rows, stats.find_entry(rows, args.reference), metric, args.alpha)
    else:
        console.print("paired tests: give --reference ENTRY to test every entry against it", highlight=False)
    _print_ranks(means)
    if means.shape[1] >= 3:
        out_dir = Path(args.out_dir) if args.out_dir else (
            load_suite(args.name, registry).path.parent if args.name else Path(args.results))
        stem = Path(str(args.name)).stem if args.name else "board"
        _print_friedman(means, args.alpha, out_dir / f"{stem}_cd_{metric}.png", f"{stem} ({metric.upper()})")
    if args.bootstrap:
        _print_bootstrap(rows, metric, args.confidence)
    return 0


def _print_wilcoxon(rows: pd.DataFrame, reference: str, metric: str, alpha: float) -> None:
    result = stats.wilcoxon_vs_reference(rows, reference, metric)
    table = Table(title=f"{metric.upper()}: each entry against {escape(reference)} (paired by dataset, "
                        f"setting and seed)")
    for column in ("entry", "pairs", "wins", "ties", "losses", "mean diff", "median diff", "W", "p",
                   "p (Holm)", f"p (Holm) < {alpha:g}"):
        table.add_column(column, justify="left" if column == "entry" else "right")
    for row in result.itertuples():
        table.add_row(escape(row.entry), str(row.n_pairs), str(row.wins), str(row.ties), str(row.losses),
                      _diff(row.mean_diff), _diff(row.median_diff), _p(row.statistic), _p(row.p_value),
                      _p(row.p_holm), "yes" if row.p_holm < alpha else "no")
    console.print(table)
    console.print("test: " + stats.WILCOXON_STATEMENT.format(m=len(result)), highlight=False, soft_wrap=True)
    few = result[result["n_pairs"] < 6]["entry"].tolist()
    if few:
        console.print(f"note: with fewer than 6 pairs no two-sided p-value can fall below 0.05 "
                      f"({', '.join(few)})", highlight=False, markup=False, soft_wrap=True)


def _print_ranks(means: pd.DataFrame) -> None:
    ranks = stats.average_ranks(means)
    complete = stats.complete_blocks(means)
    table = Table(title=f"average rank over {len(complete)} blocks in which every entry has results (1 = best)")
    table.add_column("entry")
    table.add_column("average rank", justify="right")
    for entry, rank in ranks.items():
        table.add_row(escape(str(entry)), f"{rank:.2f}")
    console.print(table)
    left_out = len(means) - len(complete)
    if left_out:
        console.print(f"{left_out} blocks where some entry has no ok trial are left out of the ranks"
                      + ("; choose entries that share blocks with --entries" if complete.empty else ""),
                      highlight=False)


def _print_friedman(means: pd.DataFrame, alpha: float, path: Path, title: str) -> None:
    try:
        result = stats.friedman_nemenyi(means, alpha)
    except MvbenchError as exc:
        console.print(f"Friedman test not run: {exc}", highlight=False, markup=False, soft_wrap=True)
        return
    console.print(f"Friedman chi2 = {result.statistic:.3f}, p = {_p(result.p_value)}; Nemenyi CD = "
                  f"{result.cd:.3f}", highlight=False)
    console.print("test: " + result.statement(), highlight=False, soft_wrap=True)
    if result.pairwise is None:
        console.print(f"pairwise Nemenyi p-values and the critical-difference diagram need scikit-posthocs: "
                      f"{stats.INSTALL_HINT}", highlight=False, markup=False, soft_wrap=True)
        return
    console.print(f"critical-difference diagram: {stats.cd_diagram(result, path, title)}", highlight=False,
                  soft_wrap=True)


def _print_bootstrap(rows: pd.DataFrame, metric: str, confidence: float) -> None:
    result = stats.bootstrap_table(rows, metric, confidence)
    table = Table(title=f"{metric.upper()}: mean +- std and {confidence:.0%} bootstrap interval per cell")
    for column in ("dataset", "setting", "entry", "n", "mean +- std", "interval"):
        table.add_column(column, justify="right" if column in ("n", "mean +- std", "interval") else "left")
    for row in result.itertuples():
        setting = row.missing + (f" ({row.missing_params})" if row.missing_params else "") + (
            "" if pd.isna(row.rate) else f" {row.rate:g}")
        std = "" if math.isnan(row.std) else f" +- {row.std:.4f}"
        interval = "-" if math.isnan(row.ci_low) else f"[{row.ci_low:.4f}, {row.ci_high:.4f}]"
        table.add_row(escape(str(row.dataset)), escape(setting), escape(row.entry), str(row.n),
                      f"{row.mean:.4f}{std}", interval)
    console.print(table)
    console.print("interval: " + stats.BOOTSTRAP_STATEMENT.format(
        level=confidence * 100, resamples=stats.BOOTSTRAP_RESAMPLES, seed=stats.BOOTSTRAP_SEED),
                  highlight=False, soft_wrap=True)
