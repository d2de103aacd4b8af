"""Leaderboard files: the CSV and its sidecar, a Markdown rendering and one plot per dataset."""

from __future__ import annotations

import json
import math
import re
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
        for dataset in dict.fromkeys(board.table["dataset"]):
            path = out_dir / f"{name}_{safe_name(dataset)}.png"
            plot_dataset(board.table[board.table["dataset"] == dataset], dataset, path)
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


def _best(block: pd.DataFrame, column: str, digits: int, lowest: bool) -> set[int]:
    """Row labels whose displayed mean is the best of the block (ties all bold); none when
    there is nothing to compare."""
    values = block[column].astype(float).round(digits).dropna()
    if len(values) < 2:
        return set()
    best = values.min() if lowest else values.max()
    return set(values.index[values == best])


def _published(row: pd.Series) -> str:
    return ", ".join(f"{m.upper()} {row[f'published_{m}']:.4f}" for m in METRICS
                     if not _isnan(row.get(f"published_{m}")))


def dataset_table(rows: pd.DataFrame) -> str:
    """A GitHub-Markdown table of one dataset, the best mean of each block in bold."""
    bold: dict[str, set[int]] = {c: set() for c in (*METRICS, "train_time")}
    for _, block in rows.groupby(list(BLOCK_COLUMNS[1:]), sort=False, dropna=False):
        for metric in METRICS:
            bold[metric] |= _best(block, f"{metric}_mean", 4, lowest=False)
        bold["train_time"] |= _best(block, "train_time_mean", 1, lowest=True)
    body = []
    for index, row in rows.iterrows():
        missing = row["missing"] + (f" ({row['missing_params']})" if row["missing_params"] else "")
        n = f"{row['n_seeds']}" + (f" ({row['n_failed']} failed)" if row["n_failed"] else "")
        body.append([
            missing, "-" if _isnan(row["rate"]) else f"{row['rate']:g}", row["method"], row["option_set"], n,
            *[_cell(row[f"{m}_mean"], row[f"{m}_std"], 4, index in bold[m]) for m in METRICS],
            _cell(row["train_time_mean"], row["train_time_std"], 1, index in bold["train_time"]),
            _published(row),
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
    if meta.get("left_out"):
        lines.append(f"- {meta['left_out']}")
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
        lines += [f"## {dataset}", "", dataset_table(rows), "",
                  f"![{dataset}]({board.name}_{safe_name(dataset)}.png)", ""]
    return "\n".join(lines)


def _series(rows: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    """(label, option set, mechanism, rows) per option set and missingness setting. Complete
    data is the rate-0 point of every missingness curve of the same option set."""
    settings = rows.loc[rows["missing"] != "none", ["missing", "missing_params"]].drop_duplicates()
    several = len(settings) > 1
    out = []
    for option_set, group in rows.groupby("option_set", sort=False):
        complete = group[group["missing"] == "none"]
        incomplete = group[group["missing"] != "none"]
        if incomplete.empty:
            out.append((option_set, option_set, "none", complete))
        for (missing, params), part in incomplete.groupby(["missing", "missing_params"], sort=False):
            setting = missing + (f" {params}" if params else "")
            label = f"{option_set} [{setting}]" if several else option_set
            out.append((label, option_set, missing, pd.concat([complete, part]).sort_values("rate")))
    return out


def plot_dataset(rows: pd.DataFrame, dataset: str, path: Path) -> None:
    """ACC and NMI against the missing rate, a line per option set with a ±std band; with a
    single rate, bars with std error bars instead. Published numbers are stars."""
    series = _series(rows)
    rates = rows["rate"].dropna().unique()
    option_sets = list(dict.fromkeys(rows["option_set"]))
    # tab10 colours, then a new marker for every further ten option sets: tab20's paired
    # shades would make neighbouring option sets look alike.
    styles = [(colormaps["tab10"](i % 10), MARKERS[i // 10 % len(MARKERS)])
              for i in (option_sets.index(option_set) for _, option_set, _, _ in series)]
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
