"""The reproduction report: every published number that a leaderboard cell carries, beside our
mean +- std over seeds, with a verdict whose rule is stated in the report itself.

Built from the suites' records (never from a committed CSV) and the dataset registry's
published numbers, through the same aggregation as the leaderboards, so the report and the
boards cannot disagree. Nothing in it depends on the time or the machine it is written on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

from mvbench.commands.leaderboard import suite_board
from mvbench.errors import MvbenchError
from mvbench.leaderboard_render import provenance, row_label, setting_label
from mvbench.metrics import METRICS
from mvbench.registry import Registry
from mvbench.results import latest_records
from mvbench.suite import Suite, load_suite

REPORT_FILE = "REPRODUCTION.md"
CI_SUITE = "ci"
SMOKE_PREFIX = "smoke-"
SIGMAS = 2.0
MARGIN = 0.01
# Absorbs float error in |ours - paper| <= margin (0.9515 - 0.9415 is 0.010000000000000009).
_EPSILON = 1e-9

REPRODUCED, BELOW, ABOVE, NO_RESULT = "reproduced", "below paper", "above paper", "no ok trial"
VERDICT_RULE = (f"**{REPRODUCED}** when the paper's value lies within our mean ± {SIGMAS:g} std or "
                f"within {MARGIN:g} of our mean (with one seed there is no std: only the {MARGIN:g} "
                f"margin applies); otherwise **{BELOW}** (our mean is lower than the paper's value by "
                f"more than that) or **{ABOVE}** (higher)")


def is_smoke(name: str) -> bool:
    """A smoke suite runs a shortened grid: never a leaderboard, never in the report."""
    return name.startswith(SMOKE_PREFIX)


def suite_files(folder: Path, *, smoke: bool = False) -> list[Path]:
    """The leaderboard suites in ``folder`` by name: every ``*.toml`` but ``ci`` and, unless
    ``smoke``, the ``smoke-*`` suites (a suite's file is named after it)."""
    if not folder.is_dir():
        raise MvbenchError(f"leaderboards folder {str(folder)!r} not found; run from the repository "
                           f"root or pass --leaderboards DIR")
    return [p for p in sorted(folder.glob("*.toml"))
            if p.stem != CI_SUITE and (smoke or not is_smoke(p.stem))]


def threads_text(suite: Suite) -> str:
    """The suite's torch thread setting, for a provenance header."""
    if suite.threads is None:
        return "torch's default (the suite sets none)"
    return f"{suite.threads} torch thread{'s' if suite.threads > 1 else ''} per trial (suite setting)"


def verdict(paper: float, mean: float, std: float) -> str:
    """The report's verdict for one number (rule: ``VERDICT_RULE``)."""
    if math.isnan(mean):
        return NO_RESULT
    margin = max(MARGIN, SIGMAS * std if not math.isnan(std) else 0.0)
    if abs(paper - mean) <= margin + _EPSILON:
        return REPRODUCED
    return BELOW if mean < paper else ABOVE


@dataclass(frozen=True)
class ReportRow:
    """One published number beside ours."""

    board: str
    run_on: str
    dataset: str
    setting: str
    method: str
    metric: str
    paper: float
    source: str
    mean: float
    std: float
    n: int
    degenerate: int

    @property
    def difference(self) -> float:
        return self.mean - self.paper

    @property
    def verdict(self) -> str:
        return verdict(self.paper, self.mean, self.std)


@dataclass(frozen=True)
class BoardSummary:
    """What the report read from one suite (and one device kind and precision)."""

    name: str
    run_on: str = ""
    ok_trials: int = 0
    cells: int = 0
    provenance: tuple[tuple[str, str], ...] = ()
    not_counted: int = 0


@dataclass
class Report:
    rows: list[ReportRow] = field(default_factory=list)
    boards: list[BoardSummary] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many rows got each verdict, in a fixed order."""
        return {v: sum(r.verdict == v for r in self.rows) for v in (REPRODUCED, BELOW, ABOVE, NO_RESULT)}


def collect(folder: Path, registry: Registry) -> Report:
    """The report over every leaderboard suite in ``folder`` (see ``suite_files``)."""
    report = Report()
    for path in suite_files(folder):
        suite = load_suite(path, registry)
        records = suite.records()
        if not records:
            report.boards.append(BoardSummary(suite.name))
            continue
        for run_on, part in _by_device_and_precision(records).items():
            rows, summary = _board_rows(suite, registry, part, run_on)
            report.rows += rows
            report.boards.append(summary)
    return report


def _by_device_and_precision(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    # A board holds the records of one device kind and precision (their trial keys differ);
    # a suite run on both CPU and GPU gives two boards, each named in its rows.
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(f"{torch.device(record['device']).type} {record['precision']}", []).append(record)
    return dict(sorted(groups.items()))


def _board_rows(suite: Suite, registry: Registry, records: Sequence[Mapping[str, Any]],
                run_on: str) -> tuple[list[ReportRow], BoardSummary]:
    board = suite_board(suite, registry, records)
    table = board.table
    rows = []
    for _, row in table.iterrows():
        for metric in METRICS:
            paper = float(row[f"published_{metric}"])
            if math.isnan(paper):
                continue
            rows.append(ReportRow(
                board=suite.name, run_on=run_on, dataset=row["dataset"], setting=setting_label(row),
                method=row_label(row), metric=metric, paper=paper, source=row["published_setting"],
                mean=float(row[f"{metric}_mean"]), std=float(row[f"{metric}_std"]), n=int(row["n_seeds"]),
                # A record without a "degenerate" list counts as not degenerate; .get keeps the
                # report working on an aggregation that predates the column.
                degenerate=int(row.get("n_degenerate", 0))))
    # Trials whose key the suite no longer plans (an older method version, changed options)
    # are not in the board; say how many, so that a board missing old results is explained.
    counted = int(table["n_seeds"].sum() + table["n_failed"].sum())
    summary = BoardSummary(suite.name, run_on, int(table["n_seeds"].sum()), len(table),
                           tuple(provenance(table, threads_text(suite))), len(latest_records(records)) - counted)
    return rows, summary


# --- the Markdown file ---------------------------------------------------------------------

def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


def _ours(row: ReportRow) -> str:
    if math.isnan(row.mean):
        return "-"
    return _number(row.mean) if math.isnan(row.std) else f"{row.mean:.4f} ± {row.std:.4f}"


def _difference(row: ReportRow) -> str:
    return "-" if math.isnan(row.mean) else f"{row.difference:+.4f}"


TABLE_HEADERS = ("board", "dataset", "setting", "method", "metric", "paper", "ours (mean ± std)", "n",
                 "ours − paper", "verdict", "degenerate", "paper's number: source")


def table_cells(row: ReportRow) -> list[str]:
    """A report row as the text of its cells (``TABLE_HEADERS``), shared by Markdown and HTML."""
    board = row.board if row.run_on == "cpu fp32" else f"{row.board} ({row.run_on})"
    return [board, row.dataset, row.setting, row.method, row.metric.upper(), _number(row.paper), _ours(row),
            str(row.n), _difference(row), row.verdict, str(row.degenerate), row.source]


def definitions(report: Report) -> list[str]:
    """The sentences that say what the report's columns and verdicts mean."""
    boards = ", ".join(f"`{b}`" for b in dict.fromkeys(s.name for s in report.boards)) or "none"
    return [
        f"boards: every suite in `leaderboards/` but `{CI_SUITE}` and the `{SMOKE_PREFIX}*` suites "
        f"(smoke checks, never leaderboards): {boards}; records from `leaderboards/results/NAME/trials.jsonl` "
        f"and from those of the suites a suite reuses (`[suite] reuse`)",
        "paper: the published number for the same method, dataset and setting, from the dataset registry "
        "(`datasets/manifest.toml`); an option set that switches off an ablation toggle is compared only "
        "with the paper's number for that ablation",
        "ours: mean ± std over the seeds that finished (sample std, ddof=1), n seeds; only records of each "
        "method's current version count; a board is run on CPU in fp32 unless the board column says otherwise",
        f"verdict: {VERDICT_RULE}",
        "degenerate: how many of the n trials their record flags as degenerate (counted in the mean)",
    ]


def markdown(report: Report) -> str:
    """The text of ``REPRODUCTION.md``."""
    counts = report.counts()
    lines = [
        "# Reproduction report", "",
        "Every published number that a leaderboard cell carries, beside ours. Written by `mvbench report` "
        "from the suites' records and the dataset registry; CI checks that this file matches the records "
        "(`mvbench report --check`), so do not edit it by hand.", "",
        *[f"- {sentence}" for sentence in definitions(report)], "",
        f"{len(report.rows)} published numbers matched: "
        + ", ".join(f"{n} {v}" for v, n in counts.items() if n or v != NO_RESULT) + ".", "",
    ]
    if report.rows:
        lines += [tabulate([table_cells(r) for r in report.rows], headers=TABLE_HEADERS, tablefmt="github",
                           disable_numparse=True), ""]
    lines += ["## Boards read", ""]
    lines += [f"- {name}: {text}" for name, text in board_lines(report)]
    return "\n".join(lines) + "\n"


def board_lines(report: Report) -> list[tuple[str, str]]:
    """Per board, its name (with the device kind and precision) and a sentence: what was read,
    on what hardware, with which versions and from which commits, what was not counted."""
    out = []
    for board in report.boards:
        if not board.run_on:
            out.append((f"`{board.name}`", f"no records yet (`mvbench sweep {board.name}`)"))
            continue
        text = (f"{board.ok_trials} ok trials in {board.cells} cells; "
                + "; ".join(f"{label} {value}" for label, value in board.provenance))
        if board.not_counted:
            text += (f"; {board.not_counted} recorded trials not counted (not in the suite's current plan: "
                     f"an older method version or changed options)")
        out.append((f"`{board.name}` ({board.run_on})", text + f"; what is left: `mvbench sweep {board.name} --dry-run`"))
    return out
