"""Leaderboards: trial records aggregated to mean +- std per cell, with the published numbers
beside ours, a definitions sidecar, and comparison of two leaderboards.

A cell is (dataset, missingness, rate, method, option set). The CSV holds numbers only; what
they mean (std ddof, NMI normalisation, missing-rate definitions, columns) is in the sidecar
``NAME.meta.json``, so the CSV stays plain for any CSV reader.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mvbench.degeneracy import RULES as DEGENERACY_RULES
from mvbench.degeneracy import record_reasons
from mvbench.errors import MvbenchError
from mvbench.metrics import DEFINITIONS as METRIC_DEFINITIONS
from mvbench.metrics import METRICS
from mvbench.options import ablated
from mvbench.registry import Registry
from mvbench.results import STD_DEFINITION, latest_records, options_label
from mvbench.sweep import PlannedTrial
from mvbench.suite import Suite

KEY_COLUMNS = ("dataset", "dataset_name", "missing", "missing_params", "rate", "method", "method_version",
               "option_set")
STAT_COLUMNS = (*METRICS, "train_time")
PROVENANCE_COLUMNS = ("fill", "device", "device_name", "precision", "mvbench_version", "torch_version",
                      "git_commit")
COLUMNS = (*KEY_COLUMNS, "n_seeds", "n_failed", "n_degenerate",
           *[f"{c}_{s}" for c in STAT_COLUMNS for s in ("mean", "std")], "incomplete_fraction",
           *[f"published_{m}" for m in METRICS], "published_setting", *PROVENANCE_COLUMNS)
# The CI check compares these; times and provenance legitimately change from run to run.
COMPARED_COLUMNS = ("n_seeds", "n_failed", *[f"{m}_{s}" for m in METRICS for s in ("mean", "std")])
METRIC_DIGITS = 6
# Metrics are written with 6 decimals, so a rerun that reproduces the labels exactly (same seed,
# CPU) differs from the committed CSV by at most the rounding of the last digit (5e-7) plus float
# noise in the mean/std; 1e-6 absorbs that and nothing else: one changed label among N <= 1e5
# samples moves ACC by >= 1e-5.
CHECK_TOLERANCE = 1e-6
# Another CPU model (or thread count) rounds floats differently, and a few labels of a tiny
# training run may flip: there the check compares only the mean metrics, to this absolute
# tolerance. A change of a method's computation usually moves a mean by more; one that moves
# none by more than this passes unnoticed on a foreign CPU and is caught on the recording one.
FOREIGN_CPU_TOLERANCE = 0.05
FOREIGN_CPU_COLUMNS = ("n_seeds", "n_failed", *[f"{m}_mean" for m in METRICS])

RATE_DEFINITION = ("rate: the nominal missing rate of the cell: the mechanism's rate option "
                   "(mcar: fraction of samples with at least one missing view), the suite's "
                   "rate of a dataset whose missing-view pattern comes with the file, 0 for "
                   "complete data; see definitions.missing for each mechanism. "
                   "incomplete_fraction is the measured fraction of samples with a missing view "
                   "(mean over seeds).")
PUBLISHED_DEFINITION = ("published_<metric>: the number the paper (or the authors' released model) "
                        "reports for this method and setting, from the dataset registry; never "
                        "computed here and never mixed into our columns. An option set that moves "
                        "one of the method's ablation toggles (see mvbench show METHOD) off its "
                        "faithful value carries a number only when the suite names the paper's "
                        "ablation (published = ...); other variants carry the full model's.")


@dataclass
class Leaderboard:
    """An aggregated table with what the sidecar needs to explain it."""

    name: str
    table: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


# --- records to cells --------------------------------------------------------------------

def _rate_of(record: Mapping[str, Any]) -> float:
    options = record.get("missing_options") or {}
    if "rate" in options:
        return float(options["rate"])
    return 0.0 if record.get("missing") == "none" else math.nan


def _method_version(record: Mapping[str, Any]) -> int:
    # Records made before methods had versions are version 1.
    return int(record.get("method_version") or 1)


def cell_rows(records: Iterable[Mapping[str, Any]],
              planned: Sequence[PlannedTrial] | None = None,
              registry: Registry | None = None) -> pd.DataFrame:
    """One row per trial. With a plan (a suite), only the plan's trials count, and labels come
    from the suite (so renaming an option set needs no rerun); records of trials no longer in
    the suite are left out. With a registry, ``ablates`` names the method's ablation toggles
    that the trial moved off their faithful values."""
    by_key = {p.key: p for p in planned} if planned is not None else None
    rows = []
    for r in latest_records(records):
        item = by_key.get(r.get("trial_key")) if by_key is not None else None
        if by_key is not None and item is None:
            continue
        missing_options = {k: v for k, v in (r.get("missing_options") or {}).items() if k != "rate"}
        versions = r.get("versions") or {}
        rows.append({
            "dataset": item.item.dataset_label if item else r["dataset"],
            "dataset_name": r["dataset"],
            "missing": r["missing"],
            "missing_params": options_label(missing_options),
            "rate": (item.item.rate if item and item.item.rate is not None else _rate_of(r)),
            "method": r["method"],
            "method_version": _method_version(r),
            "option_set": (item.trial.option_set if item else r.get("option_set")) or "default",
            "seed": r.get("seed"),
            "status": r.get("status"),
            "degenerate": r.get("status") == "ok" and bool(record_reasons(r)),
            **{m: (r.get("metrics") or {}).get(m, math.nan) for m in METRICS},
            "train_time": r.get("train_time", math.nan),
            "incomplete_fraction": r.get("incomplete_fraction", math.nan),
            "fill": r.get("fill") or "",
            "device": r.get("device", ""), "device_name": r.get("device_name", ""),
            "precision": r.get("precision", ""),
            "mvbench_version": versions.get("mvbench", ""), "torch_version": versions.get("torch", ""),
            "git_commit": versions.get("git_commit") or "",
            "ablates": ";".join(_ablates(registry, r)),
        })
    return pd.DataFrame(rows, columns=[*KEY_COLUMNS, "seed", "status", "degenerate", *STAT_COLUMNS,
                                       "incomplete_fraction", *PROVENANCE_COLUMNS, "ablates"])


def _ablates(registry: Registry | None, record: Mapping[str, Any]) -> tuple[str, ...]:
    if registry is None:
        return ()
    try:
        spec = registry.method(record["method"])
    except MvbenchError:
        return ()  # a method no longer installed: its records still aggregate
    return ablated(spec.options, record.get("method_options") or {}, record.get("preset") or {})


def distinct(values: Iterable[Any]) -> list[str]:
    """The distinct values, sorted. A value may itself be a ";"-joined list (a cell whose seeds
    ran at different commits), so lists are merged, not nested; empty and "nan" (a blank CSV
    cell read back) values are dropped."""
    return sorted({part for v in values for part in str(v).split(";") if part and part != "nan"})


def joined(values: Iterable[Any]) -> str:
    """The distinct values (see ``distinct``) ";"-joined: the CSV cell form, split back losslessly."""
    return ";".join(distinct(values))


def aggregate_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std (ddof=1) over the ok seeds of each cell, in first-seen order."""
    if rows.empty:
        return pd.DataFrame(columns=[c for c in COLUMNS if not c.startswith("published")])
    grouped = rows.groupby(list(KEY_COLUMNS), sort=False, dropna=False)
    out = []
    for key, group in grouped:
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = dict(zip(KEY_COLUMNS, key))
        row["n_seeds"] = len(ok)
        row["n_failed"] = int((group["status"] != "ok").sum())
        row["n_degenerate"] = int(ok["degenerate"].astype(bool).sum())
        for column in STAT_COLUMNS:
            values = ok[column].astype(float)
            row[f"{column}_mean"] = values.mean() if len(ok) else math.nan
            row[f"{column}_std"] = values.std(ddof=1) if len(ok) > 1 else math.nan
        row["incomplete_fraction"] = ok["incomplete_fraction"].astype(float).mean() if len(ok) else math.nan
        for column in PROVENANCE_COLUMNS:
            row[column] = joined(group[column])
        row["ablates"] = joined(group["ablates"])
        out.append(row)
    return _block_order(pd.DataFrame(out))


def _block_order(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of a dataset grouped by missingness setting (complete first, then by mechanism
    and rate), each block keeping the suite's method order, so rows compared together
    (and bolded together in the Markdown) sit together."""
    datasets = {d: i for i, d in enumerate(dict.fromkeys(table["dataset"]))}
    mechanisms = {m: i for i, m in enumerate(dict.fromkeys(table["missing"]))}
    order = pd.DataFrame({
        "dataset": table["dataset"].map(datasets),
        "complete": table["missing"] != "none",
        "mechanism": table["missing"].map(mechanisms),
        "params": table["missing_params"],
        "rate": table["rate"].astype(float).fillna(-1.0),
    })
    index = order.sort_values(list(order.columns), kind="stable").index
    return table.loc[index].reset_index(drop=True)


# --- published numbers -------------------------------------------------------------------

_RATE_SETTING = re.compile(r"missing rate\s+([0-9.]+)")


def _setting_matches(condition: str, mechanism: str, missing: str, rate: float) -> bool:
    condition = condition.strip().lower()
    if condition.startswith("complete"):
        return missing == "none"
    found = _RATE_SETTING.match(condition)
    return bool(found) and missing == mechanism and math.isclose(float(found.group(1)), rate)


def published_numbers(registry: Registry | None, dataset: str, method: str, missing: str, rate: float,
                      ablation: str | None = None) -> tuple[dict[str, float], str]:
    """The registry's published metrics for this cell and the setting they come from.

    Reads ``summary["results"]`` of the dataset spec (method, metric, value, setting =
    "CONDITION; SOURCE", and for a missing rate the optional ``mechanism`` whose masks it was
    measured on: ``mcar`` when absent, since the registry's rates are sample-level fractions);
    a number measured on other masks (e.g. the authors' ``get-mask``) belongs to no cell of
    another mechanism. Tolerates a registry, dataset or field that is absent. Without
    ``ablation`` only full-model numbers count (no "without ..." and no reproductions)."""
    if registry is None:
        return {}, ""
    try:
        spec = registry.dataset(dataset)
    except MvbenchError:
        return {}, ""
    found: dict[str, float] = {}
    sources: list[str] = []
    for result in spec.summary.get("results") or []:
        try:
            condition, _, source = str(result["setting"]).partition(";")
            metric, value = str(result["metric"]).lower(), float(result["value"])
            same_method = str(result["method"]).lower() == method.lower()
            mechanism = str(result.get("mechanism", "mcar")).lower()
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        source = source.strip()
        if ablation:
            wanted = ablation.lower() in source.lower()
        else:
            wanted = "without" not in source.lower() and "reproduction" not in source.lower()
        if (same_method and wanted and metric in METRICS and metric not in found
                and _setting_matches(condition, mechanism, missing, rate)):
            found[metric] = value
            if source not in sources:
                sources.append(source)
    return found, "; ".join(sources)


def add_published(table: pd.DataFrame, registry: Registry | None,
                  ablations: Mapping[str, str | None]) -> pd.DataFrame:
    """The published columns. ``ablations`` maps an option set to the paper's name for its
    ablation; a cell that ablates a component (``ablates``) without such a name gets none, as
    the full model's number does not describe it."""
    table = table.copy()
    numbers = []
    for row in table.itertuples():
        named = ablations.get(row.option_set)
        numbers.append(({}, "") if row.ablates and not named else
                       published_numbers(registry, row.dataset_name, row.method, row.missing, row.rate, named))
    for metric in METRICS:
        table[f"published_{metric}"] = [n.get(metric, math.nan) for n, _ in numbers]
    table["published_setting"] = [source for _, source in numbers]
    return table[[c for c in COLUMNS if c in table.columns]]


# --- building, writing, reading ----------------------------------------------------------

def build(name: str, records: Sequence[Mapping[str, Any]], registry: Registry | None,
          suite: Suite | None = None, planned: Sequence[PlannedTrial] | None = None) -> Leaderboard:
    """Aggregate ``records`` (restricted to ``planned`` when given) into a leaderboard."""
    rows = cell_rows(records, planned, registry)
    if planned is not None:
        # A plan's keys carry the current versions, so records of older versions match no key:
        # add them back here for current_versions to count as left out.
        rows = pd.concat([rows, cell_rows(superseded(records, planned, registry), None, registry)],
                         ignore_index=True)
    rows, stale = current_versions(rows, registry)
    ablations = {s.name: s.published for s in suite.option_sets} if suite else {}
    if registry is not None:
        for option_set in (suite.option_sets if suite else ()):
            if option_set.name not in ablations or ablations[option_set.name] is None:
                ablations[option_set.name] = _variant_published(registry, option_set.method)
    table = add_published(aggregate_cells(rows), registry, ablations)
    meta = _meta(name, rows, registry, suite)
    if stale:
        meta["left_out"] = stale
    if suite is not None and planned is not None:
        reused = _reused(records, planned, suite.name)
        if reused:
            meta["reused"] = reused
    return Leaderboard(name, table, meta)


def _reused(records: Iterable[Mapping[str, Any]], planned: Sequence[PlannedTrial], name: str) -> str:
    """A sentence naming the trials shown here that another suite recorded (``reuse``), or ""."""
    keys = {p.key for p in planned}
    counts = Counter(r.get("suite") for r in latest_records(records)
                     if r.get("trial_key") in keys and r.get("suite") not in (None, name))
    if not counts:
        return ""
    return "trials recorded by other suites (the same trials): " + ", ".join(
        f"{n} by {suite}" for suite, n in sorted(counts.items()))


def superseded(records: Iterable[Mapping[str, Any]], planned: Sequence[PlannedTrial],
               registry: Registry | None) -> list[Mapping[str, Any]]:
    """The records of a planned trial (same option set, dataset, missingness, rate and seed) made
    by a version of its method other than the installed one."""
    if registry is None:
        return []
    current = {name: spec.version for name, spec in registry.methods.items()}
    cells = {(p.trial.option_set, p.trial.dataset, p.trial.missing, p.trial.missing_options.get("rate"), p.trial.seed)
             for p in planned}
    return [r for r in latest_records(records)
            if _method_version(r) != current.get(r.get("method"), _method_version(r))
            and (r.get("option_set") or r.get("method"), r.get("dataset"), r.get("missing"),
                 (r.get("missing_options") or {}).get("rate"), r.get("seed")) in cells]


def current_versions(rows: pd.DataFrame, registry: Registry | None) -> tuple[pd.DataFrame, str]:
    """The rows of each installed method's current version, and a sentence saying what was left
    out (empty when nothing was): a board never mixes the results of two versions of a method,
    since a version changes what the defaults compute."""
    if registry is None or rows.empty:
        return rows, ""
    current = {name: spec.version for name, spec in registry.methods.items()}
    keep = [current.get(m, v) == v for m, v in zip(rows["method"], rows["method_version"])]
    stale = rows[[not k for k in keep]]
    if stale.empty:
        return rows, ""
    counts = stale.groupby(["method", "method_version"]).size()
    parts = [f"{n} of {m} version {v} (now {current[m]})" for (m, v), n in counts.items()]
    return rows[keep], f"records of older method versions left out: {', '.join(parts)}"


def _variant_published(registry: Registry, method: str) -> str | None:
    try:
        spec, variant = registry.method_variant(method)
    except MvbenchError:
        return None
    return spec.variants[variant].published if variant else None


def _meta(name: str, rows: pd.DataFrame, registry: Registry | None, suite: Suite | None) -> dict[str, Any]:
    missing: dict[str, str] = {}
    for mechanism in sorted(set(rows["missing"])):
        if registry is not None and mechanism in registry.missingness:
            missing[mechanism] = registry.missingness[mechanism].definition
    for dataset in sorted(set(rows.loc[rows["missing"] == "file", "dataset_name"])):
        try:
            definition = registry.dataset(dataset).summary.get("missing_definition") if registry else None
        except MvbenchError:
            definition = None
        if definition:
            missing[f"file: {dataset}"] = definition
    meta: dict[str, Any] = {"leaderboard": name}
    if suite is not None:
        meta.update({
            "description": suite.description, "epochs": suite.epochs, "seeds": list(suite.seeds),
            "suite_device": suite.device, "precision": suite.precision, "fill": suite.fill,
            "option_sets": {s.name: {"method": s.method, "options": dict(s.options),
                                     **({"description": s.description} if s.description else {}),
                                     **({"published": s.published} if s.published else {})}
                            for s in suite.option_sets},
            "regenerate": f"mvbench sweep {suite.path or name} --device cuda && mvbench leaderboard {name}",
        })
    meta["definitions"] = {
        "std": STD_DEFINITION, "rate": RATE_DEFINITION, "published": PUBLISHED_DEFINITION,
        "metrics": METRIC_DEFINITIONS, "missing": missing,
        "train_time": "seconds spent in the method's fit_predict (data loading and masking excluded)",
        "n_seeds": "seeds whose trial finished ok; n_failed: seeds whose trial failed",
        "n_degenerate": ("ok seeds whose trial the label-free degeneracy checks flagged (their "
                         "metrics are included as computed); the rules: " + "; ".join(
                             f"{name}: {rule}" for name, rule in DEGENERACY_RULES.items())),
        "check_tolerance": f"mvbench leaderboard NAME --check accepts |ours - committed| <= "
                           f"{CHECK_TOLERANCE:g} in {', '.join(COMPARED_COLUMNS)}",
    }
    return meta


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for column in table.columns:
        if column.endswith(("_mean", "_std")) or (column.startswith("published_")
                                                   and column != "published_setting"):
            digits = 3 if column.startswith("train_time") else METRIC_DIGITS
            table[column] = table[column].astype(float).round(digits)
    table["incomplete_fraction"] = table["incomplete_fraction"].astype(float).round(4)
    return table


def csv_text(board: Leaderboard) -> str:
    return _rounded(board.table).to_csv(index=False, lineterminator="\n")


def read_leaderboard(path: Path) -> pd.DataFrame:
    """A leaderboard CSV with empty text cells as '' and empty numbers as NaN."""
    if not path.is_file():
        raise MvbenchError(f"leaderboard {str(path)!r} not found; create it with mvbench leaderboard NAME")
    text_columns = [c for c in COLUMNS if c != "rate" and (c in KEY_COLUMNS or c in PROVENANCE_COLUMNS
                                                         or c == "published_setting")]
    table = pd.read_csv(path, dtype=dict.fromkeys(text_columns, str))
    if "method_version" not in table.columns and "method" in table.columns:
        table.insert(list(table.columns).index("method") + 1, "method_version", "1")  # older boards
    absent = [c for c in KEY_COLUMNS if c not in table.columns]
    if absent:
        raise MvbenchError(f"{path} is not a leaderboard CSV: it lacks {', '.join(absent)}")
    for column in text_columns:
        if column in table.columns:
            table[column] = table[column].fillna("")
    return table


# --- comparing ---------------------------------------------------------------------------

@dataclass
class Comparison:
    """What differs between two leaderboards: rows only in one, and changed numbers."""

    added: list[tuple[str, ...]]
    removed: list[tuple[str, ...]]
    changed: list[tuple[tuple[str, ...], str, float, float]]

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed)


def row_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    rate = row["rate"]
    empty = rate is None or rate == "" or (isinstance(rate, float) and math.isnan(rate))
    rate_text = "" if empty else f"{float(rate):g}"
    return tuple(rate_text if c == "rate" else str(row[c]) for c in KEY_COLUMNS)


def check_mode(committed: pd.DataFrame, device_name: str) -> tuple[float, tuple[str, ...], str]:
    """How strictly a fresh run on this hardware must match a committed board: exactly (to
    CHECK_TOLERANCE, every compared column) where the board was recorded on the same CPU model
    and thread count, else the mean metrics to FOREIGN_CPU_TOLERANCE. Returns (tolerance,
    columns, a sentence saying which and why)."""
    recorded = distinct(committed["device_name"]) if "device_name" in committed.columns else []
    if recorded == [device_name]:
        return CHECK_TOLERANCE, COMPARED_COLUMNS, f"exact: recorded on this hardware ({device_name})"
    return (FOREIGN_CPU_TOLERANCE, FOREIGN_CPU_COLUMNS,
            f"tolerant: recorded on {'; '.join(recorded) or 'unknown hardware'}, running on {device_name}; "
            f"mean metrics compared to {FOREIGN_CPU_TOLERANCE:g}, n_seeds and n_failed exactly")


def compare(new: pd.DataFrame, old: pd.DataFrame, tolerance: float = CHECK_TOLERANCE,
            columns: Sequence[str] = COMPARED_COLUMNS) -> Comparison:
    """Rows matched by their key columns; a number counts as changed when it moves by more
    than ``tolerance`` or becomes (or stops being) empty."""
    new_rows = {row_key(r): r for r in new.to_dict("records")}
    old_rows = {row_key(r): r for r in old.to_dict("records")}
    changed = []
    for key in new_rows.keys() & old_rows.keys():
        for column in columns:
            a = _number(old_rows[key].get(column))
            b = _number(new_rows[key].get(column))
            if math.isnan(a) and math.isnan(b):
                continue
            if math.isnan(a) or math.isnan(b) or abs(a - b) > tolerance:
                changed.append((key, column, a, b))
    order = {key: i for i, key in enumerate([*new_rows, *old_rows])}
    return Comparison(added=sorted(new_rows.keys() - old_rows.keys(), key=order.get),
                      removed=sorted(old_rows.keys() - new_rows.keys(), key=order.get),
                      changed=sorted(changed, key=lambda c: (order[c[0]], columns.index(c[1]))))


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def describe_key(key: tuple[str, ...]) -> str:
    parts = dict(zip(KEY_COLUMNS, key))
    missing = parts["missing"] + (f" ({parts['missing_params']})" if parts["missing_params"] else "")
    return (f"{parts['dataset']} | {missing} rate {parts['rate'] or '-'} | {parts['method']} "
            f"[{parts['option_set']}]")
