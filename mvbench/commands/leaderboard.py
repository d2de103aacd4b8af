"""Aggregate leaderboards/results/NAME/trials.jsonl into leaderboards/NAME.csv (mean and std per
dataset, missingness, rate, method and option set), NAME.meta.json (definitions), NAME.md and
NAME_<dataset>.png.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from mvbench.console import console
from mvbench.errors import MvbenchError
from mvbench.leaderboard import (CHECK_TOLERANCE, Comparison, Leaderboard, build, check_mode, compare, describe_key,
                                 joined,
                                 read_leaderboard)
from mvbench.registry import Registry
from mvbench.results import RECORDS_FILE, read_records
from mvbench.sweep import PlannedTrial, SequentialExecutor, expand, keyed, pin_threads, plan, suite_settings
from mvbench.suite import Suite, load_suite
from mvbench.commands.common import add_command, registry_from
from mvbench.commands.sweep import run_with_display


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "leaderboard", __doc__,
                         epilog=f"CI: 'mvbench leaderboard ci --check' reruns leaderboards/ci.toml from "
                                f"scratch and fails if a number moved by more than {CHECK_TOLERANCE:g}; "
                                f"add --update to replace the committed records and leaderboard with "
                                f"the fresh run.")
    parser.add_argument("name", nargs="?", help="suite NAME (leaderboards/NAME.toml) or a suite file")
    parser.add_argument("--results", metavar="DIR",
                        help="records folder (default: the suite's results/NAME); without a suite, "
                             "the leaderboard of an ad-hoc sweep folder is written into it")
    parser.add_argument("--out-dir", metavar="DIR", help="where to write (default: the suite's folder)")
    parser.add_argument("--device", help="with records from several devices: use those of this kind")
    parser.add_argument("--compare", metavar="OTHER.csv",
                        help="show what changed against another leaderboard")
    parser.add_argument("--check", action="store_true",
                        help="rerun the suite from scratch (or read --results) and compare with the "
                             "committed NAME.csv; exit 1 on any difference")
    parser.add_argument("--update", action="store_true",
                        help="with --check: write the fresh records and leaderboard over the committed ones")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--format", choices=FORMATS,
                        help="print the leaderboard to stdout in this format instead of writing files "
                             "(latex: a booktabs table; html: a self-contained page)")
    parser.add_argument("--latex", dest="format", action="store_const", const="latex",
                        help="the same as --format latex")
    parser.add_argument("--html", metavar="DIR",
                        help="also write the board's self-contained web page to DIR/NAME.html")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.set_defaults(handler=handle)


FORMATS = ("csv", "md", "latex", "html")


def _write(board: Leaderboard, out_dir: Path, *, plots: bool) -> list[Path]:
    # Imported here so that matplotlib loads only when a leaderboard is written, not with the CLI.
    from mvbench.leaderboard_render import write

    return write(board, out_dir, plots=plots)


def handle(args: argparse.Namespace) -> int:
    if args.update and not args.check:
        raise MvbenchError("--update goes with --check (it replaces the committed leaderboard "
                           "with a fresh run)")
    if args.format and (args.check or args.compare or args.html):
        raise MvbenchError("--format/--latex print the leaderboard and write nothing; leave out "
                           "--check, --compare and --html (or drop --format to write the files)")
    registry = registry_from(args)
    if not args.name:
        if not args.results or args.check:
            raise MvbenchError("name a suite (e.g. mvbench leaderboard complete), or give --results "
                               "DIR of an ad-hoc sweep")
        path = Path(args.results) / RECORDS_FILE
        records = _required(read_records(path), path)
        board = build("leaderboard", records, registry)
        out_dir = Path(args.out_dir or args.results)
    else:
        suite = load_suite(args.name, registry)
        out_dir = Path(args.out_dir) if args.out_dir else suite.path.parent
        if args.check:
            return check(suite, registry, args, out_dir)
        results_file = Path(args.results) / RECORDS_FILE if args.results else suite.results_file
        board = suite_board(suite, registry, _required(suite.records(results_file), results_file), args.device)
    page = page_facts(suite) if args.name else PageFacts()
    if args.format:
        sys.stdout.write(rendered(board, args.format, plots=not args.no_plots, facts=page))
        return 0
    paths = _write(board, out_dir, plots=not args.no_plots)
    if args.html:
        paths.append(write_page(board, Path(args.html), out_dir if not args.no_plots else None, page))
    console.print(f"{len(board.table)} rows from {int(board.table['n_seeds'].sum())} ok trials; wrote "
                  + ", ".join(str(p) for p in paths), highlight=False)
    if args.compare:
        comparison = compare(board.table, read_leaderboard(Path(args.compare)))
        print_comparison(comparison, new=str(paths[0]), old=args.compare)
    return 0


@dataclass(frozen=True)
class PageFacts:
    """What a board's web page says beyond the board: the suite's thread setting, and whether
    it is a smoke suite (shortened epochs)."""

    threads: str = ""
    smoke: bool = False


def page_facts(suite: Suite) -> PageFacts:
    from mvbench.report import is_smoke, threads_text  # imported here: mvbench.report imports this module

    return PageFacts(threads_text(suite), is_smoke(suite.name))


def rendered(board: Leaderboard, fmt: str, *, plots: bool, facts: PageFacts) -> str:
    """The board as text in one of ``FORMATS``; an html page embeds freshly drawn plots."""
    from mvbench.leaderboard import csv_text
    from mvbench.leaderboard_render import latex, markdown
    from mvbench.site import board_page, plot_files

    if fmt == "csv":
        return csv_text(board)
    if fmt == "md":
        return markdown(board)
    if fmt == "latex":
        return latex(board)
    images: dict[str, bytes] = {}
    if plots:
        with tempfile.TemporaryDirectory(prefix="mvbench-plots-") as tmp:
            _write(board, Path(tmp), plots=True)
            images = plot_files(board, Path(tmp))
    return board_page(board, images, threads=facts.threads, smoke=facts.smoke)


def write_page(board: Leaderboard, out_dir: Path, plot_dir: Path | None, facts: PageFacts) -> Path:
    """Write the board's self-contained page to ``out_dir/NAME.html`` with the plots of ``plot_dir``."""
    from mvbench.results import write_atomic
    from mvbench.site import board_page, plot_files

    path = out_dir / f"{board.name}.html"
    images = plot_files(board, plot_dir) if plot_dir else {}
    write_atomic(path, board_page(board, images, threads=facts.threads, smoke=facts.smoke))
    return path


def _required(records: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """``records`` (read from ``path``, and for a suite those it reuses); none is an error."""
    if not records:
        raise MvbenchError(f"no trial records in {path}; run the sweep first (mvbench sweep ...)")
    return records


def suite_board(suite: Suite, registry: Registry, records: Sequence[Mapping[str, Any]],
                device: str | None = None) -> Leaderboard:
    """The suite's leaderboard from records made on one kind of device (keys depend on it)."""
    if device:
        try:
            kind = torch.device(device).type
        except RuntimeError:
            raise MvbenchError(f"unknown device {device!r}; use cpu, cuda or mps") from None
        records = [r for r in records if torch.device(r["device"]).type == kind]
    combos = sorted({(torch.device(r["device"]).type, r["precision"]) for r in records})
    if len(combos) > 1:
        found = ", ".join("/".join(c) for c in combos)
        raise MvbenchError(f"records of suite {suite.name!r} come from {found}; choose one with --device")
    if not combos:
        raise MvbenchError(f"no records of suite {suite.name!r} match --device {device}")
    kind, precision = combos[0]
    planned = keyed(expand(suite), registry, torch.device(kind), precision)
    return build(suite.name, records, registry, suite, planned)


def check(suite: Suite, registry: Registry, args: argparse.Namespace, out_dir: Path) -> int:
    """Compare the committed NAME.csv with a fresh run of the whole suite."""
    committed_path = out_dir / f"{suite.name}.csv"
    committed = read_leaderboard(committed_path)
    with tempfile.TemporaryDirectory(prefix=f"mvbench-check-{suite.name}-") as tmp:
        if args.results:
            results_file = Path(args.results) / RECORDS_FILE
        else:
            results_file = Path(tmp) / RECORDS_FILE
            _run_fresh(suite, registry, args, results_file)
        board = suite_board(suite, registry, _required(read_records(results_file), results_file), args.device)
        tolerance, columns, mode = check_mode(committed, joined(board.table["device_name"]))
        console.print(f"check mode: {mode}", highlight=False, soft_wrap=True)
        comparison = compare(board.table, committed, tolerance, columns)
        print_comparison(comparison, new="fresh run", old=str(committed_path))
        if args.update:
            if results_file != suite.results_file:
                suite.results_file.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(results_file, suite.results_file)
            _write(board, out_dir, plots=not args.no_plots)
            console.print(f"updated {committed_path} and {suite.results_file}; commit them with the "
                          f"change that moved the numbers", highlight=False)
            return 0
    if comparison.same:
        console.print(f"[green]ok:[/] {committed_path} matches the fresh run within {tolerance:g}",
                      highlight=False)
        return 0
    console.print(f"[red]mismatch:[/] {committed_path} differs from a fresh run of {suite.path} "
                  f"(tolerance {tolerance:g}). If the change is intended, run "
                  f"'mvbench leaderboard {suite.name} --check --update' and commit the result.",
                  highlight=False)
    return 1


def _run_fresh(suite: Suite, registry: Registry, args: argparse.Namespace, results_file: Path) -> None:
    pin_threads(suite)
    settings = suite_settings(suite, device=args.device, precision=None, data_dir=args.data_dir)
    planned: list[PlannedTrial] = plan(expand(suite), registry, settings)
    console.print(f"check: running all {len(planned)} trials of {suite.path} from scratch", highlight=False)
    records = run_with_display(planned, settings, tuple(args.plugin), results_file, suite.name,
                               quiet=args.quiet, make_executor=SequentialExecutor)
    failed = [r for r in records if r["status"] != "ok"]
    for record in failed[:10]:
        console.print(f"[red]failed[/] {record.get('option_set')} on {record['dataset']} seed "
                      f"{record['seed']}: {record.get('error')}", highlight=False)


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.6f}"


def print_comparison(comparison: Comparison, *, new: str, old: str) -> None:
    if comparison.same:
        console.print(f"no change between {old} and {new}", highlight=False)
        return
    if comparison.changed:
        table = Table(title=f"changed: {old} -> {new}")
        for column in ("cell", "column", "old", "new", "new - old"):
            table.add_column(column, justify="right" if column in ("old", "new", "new - old") else "left")
        for key, column, a, b in comparison.changed:
            delta = _fmt(b - a) if a == a and b == b else ""  # NaN != NaN: no delta to an empty cell
            table.add_row(describe_key(key), column, _fmt(a), _fmt(b), delta)
        console.print(table)
    for title, keys in (("only in " + new, comparison.added), ("only in " + old, comparison.removed)):
        if keys:
            console.print(f"{title} ({len(keys)} rows):", highlight=False)
            for key in keys:
                console.print(f"  {describe_key(key)}", highlight=False)
