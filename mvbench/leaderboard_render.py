"""Leaderboard files: the CSV and its sidecar, a Markdown rendering and one plot per dataset."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from tabulate import tabulate

from mvbench.leaderboard import Leaderboard, csv_text, distinct
from mvbench.metrics import METRICS
from mvbench.results import write_atomic

BLOCK_COLUMNS = ("dataset", "missing", "missing_params", "rate")
LINE_STYLES = {"mcar": "-", "file": "--", "none": ":"}
MARKERS = ("o", "s", "^", "D")


def write(board: Leaderboard, out_dir: Path, *, plots: bool = True) -> list[Path]:
    """Write NAME.csv, NAME.meta.json, NAME.md and NAME_<dataset>.png into ``out_dir``."""
    name = board.name
    paths = [out_dir / f"{name}.csv", out_dir / f"{name}.meta.json", out_dir / f"{name}.md"]
    write_atomic(paths[0], csv_text(board))
    write_atomic(paths[1], json.dumps(board.meta, indent=2, default=list) + "\n")
    write_atomic(paths[2], markdown(board))
    if plots:
        entries = table_entries(board.table)
        for dataset in dict.fromkeys(board.table["dataset"]):
            path = out_dir / f"{name}_{safe_name(dataset)}.png"
            plot_dataset(board.table[board.table["dataset"] == dataset], dataset, path, entries)
            paths.append(path)
    return paths


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "dataset"


def _isnan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(mean: float, std: float, digits: int, bold: bool) -> str:
    if _isnan(mean):
        return "-"
    text = f"{mean:.{digits}f}"
    text = f"**{text}**" if bold else text
    return text if _isnan(std) else f"{text} ± {std:.{digits}f}"


def _top_two(block: pd.DataFrame, column: str, digits: int, lowest: bool) -> tuple[set[int], set[int]]:
    """Row labels whose displayed mean is the best of the block (ties all best) and those with
    the next displayed value; none when there is nothing to compare."""
    values = block[column].astype(float).round(digits).dropna()
    if len(values) < 2:
        return set(), set()
    ordered = sorted(set(values), reverse=not lowest)
    second = set(values.index[values == ordered[1]]) if len(ordered) > 1 else set()
    return set(values.index[values == ordered[0]]), second


def ranked(rows: pd.DataFrame) -> dict[str, tuple[set[int], set[int]]]:
    """Per metric (and ``train_time``, lowest best): the row labels of the best and second-best
    displayed mean within each block of rows of the same dataset, missingness and rate."""
    ranks: dict[str, tuple[set[int], set[int]]] = {c: (set(), set()) for c in (*METRICS, "train_time")}
    for _, block in rows.groupby(list(BLOCK_COLUMNS), sort=False, dropna=False):
        for column, (best, second) in ranks.items():
            top, next_ = _top_two(block, f"{column}_mean", 1 if column == "train_time" else 4,
                                  lowest=column == "train_time")
            best |= top
            second |= next_
    return ranks


def setting_label(row: pd.Series) -> str:
    """``complete``, or the mechanism, its parameters and the rate (``mcar 0.5``)."""
    if row["missing"] == "none":
        return "complete"
    params = f" ({row['missing_params']})" if row["missing_params"] else ""
    rate = "" if _isnan(row["rate"]) else f" {row['rate']:g}"
    return f"{row['missing']}{params}{rate}"


def provenance(table: pd.DataFrame, threads: str = "") -> list[tuple[str, str]]:
    """What a board's numbers were computed with, as (label, value) pairs for a page header:
    hardware (with the thread count each trial ran with), the suite's thread setting when
    given, precision, versions and commits (``+dirty``: run from a modified tree)."""
    def listed(column: str) -> str:
        return "; ".join(distinct(table[column])) or "-"

    items = [("hardware", listed("device_name"))]
    if threads:
        items.append(("threads", threads))
    return [*items, ("precision", listed("precision")),
            ("versions", f"mvbench {listed('mvbench_version')}; torch {listed('torch_version')}"),
            ("commit", listed("git_commit"))]


def published_text(row: pd.Series) -> str:
    return ", ".join(f"{m.upper()} {row[f'published_{m}']:.4f}" for m in METRICS
                     if not _isnan(row.get(f"published_{m}")))


DEGENERATE_MARK = "†"
DEGENERATE_FOOTNOTE = (f"{DEGENERATE_MARK} degenerate: seeds whose trial the label-free checks flagged (one "
                       "cluster, fewer than K/2 clusters, a loss flat over a whole stage, a constant "
                       "embedding or uniform assignments; see the README), the rules of this version "
                       "applied to each stored record; their metrics are in the mean as computed")


def n_degenerate(row: pd.Series) -> int:
    """The cell's degenerate seeds (0 for a board made before the column existed)."""
    value = row.get("n_degenerate")
    return 0 if _isnan(value) else int(value)


def dataset_table(rows: pd.DataFrame) -> str:
    """A GitHub-Markdown table of one dataset, the best mean of each block in bold."""
    bold = {column: best for column, (best, _) in ranked(rows).items()}
    body = []
    for index, row in rows.iterrows():
        missing = row["missing"] + (f" ({row['missing_params']})" if row["missing_params"] else "")
        notes = [f"{row['n_failed']} failed"] if row["n_failed"] else []
        if n_degenerate(row):
            notes.append(f"{n_degenerate(row)} degenerate {DEGENERATE_MARK}")
        n = f"{row['n_seeds']}" + (f" ({'; '.join(notes)})" if notes else "")
        body.append([
            missing, "-" if _isnan(row["rate"]) else f"{row['rate']:g}", row["method"], row["option_set"], n,
            *[_cell(row[f"{m}_mean"], row[f"{m}_std"], 4, index in bold[m]) for m in METRICS],
            _cell(row["train_time_mean"], row["train_time_std"], 1, index in bold["train_time"]),
            published_text(row),
        ])
    headers = ["missing", "rate", "method", "option set", "n", *[m.upper() for m in METRICS],
               "train s", "published (paper)"]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def markdown(board: Leaderboard) -> str:
    meta, table = board.meta, board.table
    lines = [f"# Leaderboard `{board.name}`", ""]
    if meta.get("description"):
        lines += [meta["description"], ""]
    # "; " here, not the CSV's ";", so a header line naming several devices or commits reads as a list
    listed = {column: "; ".join(distinct(table[column])) or "-"
              for column in ("device_name", "precision", "mvbench_version", "torch_version", "git_commit")}
    facts = [f"device: {listed['device_name']}", f"precision: {listed['precision']}"]
    if meta.get("seeds"):
        facts.append(f"seeds: {', '.join(map(str, meta['seeds']))}")
    facts += [f"mvbench {listed['mvbench_version']}", f"torch {listed['torch_version']}",
              f"commit {listed['git_commit']}"]
    lines += ["- " + "; ".join(facts)]
    if meta.get("epochs"):
        lines.append(f"- epochs: {meta['epochs']}")
    if meta.get("regenerate"):
        lines.append(f"- regenerate (e.g. on a GPU): `{meta['regenerate']}`")
    for fact in ("left_out", "reused"):
        if meta.get(fact):
            lines.append(f"- {meta[fact]}")
    lines += [
        "- cells: mean ± std over the seeds that finished (std: sample std, ddof=1; none for one "
        "seed); **bold**: best mean among the rows of the same missingness and rate (lowest for time)",
        "- NMI: arithmetic-mean normalisation; F: pairwise F-score; rate: nominal missing rate "
        f"(definitions in `{board.name}.meta.json`)",
        "- published: the paper's number for the same method and setting, from the dataset "
        "registry; never mixed into our columns",
        "",
    ]
    for dataset in dict.fromkeys(table["dataset"]):
        rows = table[table["dataset"] == dataset]
        lines += [f"## {dataset}", "", dataset_table(rows), ""]
        if any(n_degenerate(row) for _, row in rows.iterrows()):
            lines += [DEGENERATE_FOOTNOTE, ""]
        lines += [f"![{dataset}]({board.name}_{safe_name(dataset)}.png)", ""]
    return "\n".join(lines)


_LATEX_SPECIAL = re.compile(r"([\\&%$#_{}~^])")
_LATEX_REPLACEMENTS = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped, for names in a table."""
    return _LATEX_SPECIAL.sub(lambda m: _LATEX_REPLACEMENTS.get(m.group(1), "\\" + m.group(1)), text)


def row_label(row: pd.Series) -> str:
    """The name a row goes by in a table: its option set, prefixed by the method when the set's
    name does not already say which method it is."""
    option_set = row["option_set"]
    if option_set in ("", "default"):
        return row["method"]
    return option_set if option_set.startswith(row["method"]) else f"{row['method']} [{option_set}]"


def _latex_cell(mean: float, std: float, style: str) -> str:
    if _isnan(mean):
        return "--"
    text = f"{mean:.4f}"
    text = {"best": rf"\textbf{{{text}}}", "second": rf"\underline{{{text}}}"}.get(style, text)
    return text if _isnan(std) else rf"{text} $\pm$ {std:.4f}"


def latex(board: Leaderboard) -> str:
    """The board as a booktabs table (LaTeX packages booktabs and graphicx): a row per cell with mean ± std
    of the five metrics; in each block of one dataset, missingness and rate the best mean is
    bold and the second underlined (as the Markdown bolds the best); the caption states the
    seeds, the precision and the device."""
    table = board.table
    ranks = ranked(table)
    columns = 4 + len(METRICS)
    lines = [f"% mvbench leaderboard {board.name} --latex (generated; needs \\usepackage{{booktabs,graphicx}})",
             r"\begin{table*}[t]", r"\centering", rf"\caption{{{_latex_caption(board)}}}",
             rf"\label{{tab:mvbench-{safe_name(board.name)}}}",
             # Five mean ± std columns are wider than a page: scaled to the text width.
             r"\resizebox{\textwidth}{!}{%",
             rf"\begin{{tabular}}{{lllr{'c' * len(METRICS)}}}", r"\toprule",
             " & ".join(["Dataset", "Setting", "Method", "$n$", *[m.upper() for m in METRICS]]) + r" \\"]
    last_dataset, last_block = None, None
    for index, row in table.iterrows():
        block = tuple(str(row[c]) for c in BLOCK_COLUMNS)
        if row["dataset"] != last_dataset:
            lines.append(r"\midrule")
        elif block != last_block:
            lines.append(rf"\cmidrule(l){{2-{columns}}}")
        cells = [latex_escape(row["dataset"]) if row["dataset"] != last_dataset else "",
                 latex_escape(setting_label(row)) if block != last_block else "",
                 latex_escape(row_label(row)), str(int(row["n_seeds"]))]
        for metric in METRICS:
            best, second = ranks[metric]
            style = "best" if index in best else "second" if index in second else ""
            cells.append(_latex_cell(row[f"{metric}_mean"], row[f"{metric}_std"], style))
        lines.append(" & ".join(cells) + r" \\")
        last_dataset, last_block = row["dataset"], block
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table*}", ""]
    return "\n".join(lines)


def _latex_caption(board: Leaderboard) -> str:
    table, meta = board.table, board.meta
    seeds = (f"seeds {', '.join(map(str, meta['seeds']))}" if meta.get("seeds")
             else "the seeds that finished")
    precision = ", ".join(distinct(table["precision"])) or "unknown"
    device = "; ".join(distinct(table["device_name"])) or "unknown device"
    return latex_escape(
        f"Leaderboard {board.name}: mean ± std over {seeds} (n: seeds that finished; sample std, "
        f"ddof=1), precision {precision}, on {device}. Best mean per dataset and setting in bold, "
        f"second underlined. NMI: arithmetic-mean normalisation; F: pairwise F-score."
    ).replace("±", r"$\pm$")


def _series(rows: pd.DataFrame) -> list[tuple[str, tuple[str, str], str, pd.DataFrame]]:
    """(label, (method, option set), mechanism, rows) per method and option set and missingness
    setting: two methods whose option sets share a name (``default`` on an ad-hoc board) are two
    lines. Complete data is the rate-0 point of every missingness curve of the same entry."""
    settings = rows.loc[rows["missing"] != "none", ["missing", "missing_params"]].drop_duplicates()
    several = len(settings) > 1
    out = []
    for entry, group in rows.groupby(["method", "option_set"], sort=False):
        name = row_label(group.iloc[0])
        complete = group[group["missing"] == "none"]
        incomplete = group[group["missing"] != "none"]
        if incomplete.empty:
            out.append((name, entry, "none", complete))
        for (missing, params), part in incomplete.groupby(["missing", "missing_params"], sort=False):
            setting = missing + (f" {params}" if params else "")
            label = f"{name} [{setting}]" if several else name
            out.append((label, entry, missing, pd.concat([complete, part]).sort_values("rate")))
    return out


def table_entries(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """The (method, option set) pairs of a board's table, in the order they first appear."""
    return list(dict.fromkeys(zip(rows["method"], rows["option_set"])))


def entry_style(entries: Sequence[tuple[str, str]], entry: tuple[str, str]) -> tuple[tuple[float, ...], str]:
    """Colour and marker of an entry, from its place among ``entries``: tab10 colours, then a new
    marker for every further ten (tab20's paired shades would make neighbours look alike)."""
    i = list(entries).index(entry)
    return colormaps["tab10"](i % 10), MARKERS[i // 10 % len(MARKERS)]


def plot_dataset(rows: pd.DataFrame, dataset: str, path: Path,
                 entries: Sequence[tuple[str, str]] | None = None) -> None:
    """ACC and NMI against the missing rate, a line per method and option set with a ±std band;
    with a single rate, bars with std error bars instead. Published numbers are stars.
    ``entries``: the whole board's (method, option set) pairs, so that an entry keeps its colour
    on every dataset's plot (default: those of ``rows``)."""
    series = _series(rows)
    rates = rows["rate"].dropna().unique()
    entries = table_entries(rows) if entries is None else entries
    styles = [entry_style(entries, entry) for _, entry, _, _ in series]
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    lines = len(rates) >= 2
    for ax, metric in zip(axes, ("acc", "nmi")):
        for position, ((label, _, mechanism, group), (color, marker)) in enumerate(zip(series, styles)):
            if lines:
                group = group.dropna(subset=["rate"])
                x = group["rate"].to_numpy(float)
                mean = group[f"{metric}_mean"].to_numpy(float)
                std = np.nan_to_num(group[f"{metric}_std"].to_numpy(float))
                ax.plot(x, mean, LINE_STYLES.get(mechanism, "-."), marker=marker, color=color, label=label)
                ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
            else:
                x = np.full(len(group), position)
                ax.bar(position, group[f"{metric}_mean"].astype(float).mean(), color=color,
                       yerr=np.nan_to_num(group[f"{metric}_std"].astype(float).mean()), capsize=3)
            published = group[f"published_{metric}"].to_numpy(float) if f"published_{metric}" in group else []
            if np.isfinite(published).any():
                ax.scatter(x, published, marker="*", s=160, color=color, edgecolors="black", zorder=5,
                           label="published (paper)")
        if lines:
            ax.set_xlabel("missing rate")
            ax.set_xticks(sorted(rates))
        else:
            ax.set_xticks(range(len(series)), [label for label, *_ in series], rotation=40, ha="right",
                          fontsize=8)
            if len(rates):
                ax.set_xlabel("complete data" if rates[0] == 0 else f"missing rate {rates[0]:g}")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(metric.upper())
        ax.set_title(f"{dataset}: {metric.upper()} (mean ± std over seeds)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    legend = dict(zip(labels, handles))  # one "published" entry however many stars
    if lines or "published (paper)" in legend:
        if not lines:
            legend = {"published (paper)": legend["published (paper)"]}
        fig.legend(legend.values(), legend.keys(), loc="outside right upper", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
