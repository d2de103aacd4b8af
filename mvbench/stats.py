"""Statistics for paper tables, from a board's per-trial rows (one row per trial: the block
columns, method, option set, seed, status and the metrics; see :func:`mvbench.api.trial_rows`).

An *entry* is a row of the board: a method with its option set. A *block* is a dataset and
missing-view setting (mechanism, its parameters, rate). What is computed:

- a paired Wilcoxon signed-rank test of each entry against a reference entry on the same
  (block, seed) cells, the p-values adjusted with Holm's method;
- average ranks over the blocks, and the Friedman test with the Nemenyi post-hoc test and its
  critical difference (Demsar 2006), drawn as a critical-difference diagram;
- bootstrap confidence intervals of a cell's mean over its seeds.

The Nemenyi pairwise p-values and the diagram need scikit-posthocs (``pip install
'mvbench[stats]'``); everything else needs scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from mvbench.errors import MvbenchError, unknown_name
from mvbench.leaderboard_render import row_label

BLOCK_COLUMNS = ("dataset", "missing", "missing_params", "rate")
INSTALL_HINT = "pip install 'mvbench[stats]' (scikit-posthocs)"
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0

WILCOXON_STATEMENT = (
    "two-sided paired Wilcoxon signed-rank test (scipy.stats.wilcoxon; exact p-value for fewer "
    "than 51 pairs without tied differences, else the normal approximation; zero differences "
    "dropped) of each entry against the reference on the same (dataset, setting, seed) cells; "
    "p-values adjusted for the {m} comparisons with Holm's step-down method")
FRIEDMAN_STATEMENT = (
    "Friedman test over {n} blocks (dataset x missing-view setting; value: the mean over seeds) "
    "and {k} entries; Nemenyi post-hoc test, critical difference CD = q_alpha * sqrt(k(k+1)/(6N)) "
    "= {cd:.3f} at alpha = {alpha:g} (Demsar 2006): entries whose average ranks differ by less "
    "than CD are not significantly different")
BOOTSTRAP_STATEMENT = (
    "{level:g}% bootstrap confidence interval of the mean over seeds (scipy.stats.bootstrap, "
    "percentile method, {resamples} resamples, generator seed {seed}); none for fewer than 2 seeds")


def with_entries(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with an ``entry`` column: the name a board row goes by (its option set, with the
    method in front when the name does not say which method it is)."""
    rows = rows.copy()
    rows["entry"] = [row_label(row) for _, row in rows.iterrows()] if len(rows) else []
    return rows


def _ok(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    if metric not in rows.columns:
        raise unknown_name("metric", metric, [c for c in ("acc", "nmi", "ari", "pur", "f") if c in rows])
    ok = rows[rows["status"] == "ok"]
    return ok[np.isfinite(ok[metric].astype(float))]


def find_entry(rows: pd.DataFrame, name: str) -> str:
    """The entry called ``name``; a method name also finds its only entry."""
    entries = list(dict.fromkeys(rows["entry"]))
    if name in entries:
        return name
    of_method = list(dict.fromkeys(rows.loc[rows["method"] == name, "entry"]))
    if len(of_method) == 1:
        return of_method[0]
    if of_method:
        raise MvbenchError(f"method {name!r} has several entries ({', '.join(of_method)}); name one "
                           f"of them as the reference")
    raise unknown_name("reference entry", name, entries)


def restrict(rows: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Only the rows of the named entries (a method name also names its only entry)."""
    wanted = {find_entry(rows, name) for name in names}
    return rows[rows["entry"].isin(wanted)]


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment: the i-th smallest of m p-values is multiplied by m - i
    (i from 0), made monotone and capped at 1; NaN stays NaN and does not count in m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        out[index] = running
    return out


def wilcoxon_vs_reference(rows: pd.DataFrame, reference: str, metric: str) -> pd.DataFrame:
    """One row per entry other than the reference: the number of paired (block, seed) cells,
    wins / ties / losses against the reference, the mean and median difference (entry minus
    reference), the Wilcoxon statistic, its p-value and the Holm-adjusted p-value."""
    ok = _ok(rows, metric)
    cell = [*BLOCK_COLUMNS, "seed"]
    ref = ok[ok["entry"] == reference].drop_duplicates(cell, keep="last")
    out = []
    for entry in dict.fromkeys(ok["entry"]):
        if entry == reference:
            continue
        mine = ok[ok["entry"] == entry].drop_duplicates(cell, keep="last")
        paired = mine.merge(ref, on=cell, suffixes=("", "_ref"), how="inner")
        diff = paired[metric].astype(float).to_numpy() - paired[f"{metric}_ref"].astype(float).to_numpy()
        statistic, p_value = math.nan, math.nan
        if np.any(diff != 0):
            result = scipy_stats.wilcoxon(diff, alternative="two-sided", zero_method="wilcox")
            statistic, p_value = float(result.statistic), float(result.pvalue)
        elif len(diff):
            p_value = 1.0  # every pair tied: no evidence of a difference
        out.append({"entry": entry, "n_pairs": len(diff), "wins": int((diff > 0).sum()),
                    "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum()),
                    "mean_diff": float(diff.mean()) if len(diff) else math.nan,
                    "median_diff": float(np.median(diff)) if len(diff) else math.nan,
                    "statistic": statistic, "p_value": p_value})
    table = pd.DataFrame(out, columns=["entry", "n_pairs", "wins", "ties", "losses", "mean_diff",
                                       "median_diff", "statistic", "p_value"])
    table["p_holm"] = holm(table["p_value"].to_numpy(float)) if len(table) else []
    return table


def block_means(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The mean over seeds of each (block, entry): blocks as rows, entries as columns, in the
    order the board lists them; NaN where an entry has no ok trial in a block."""
    ok = _ok(rows, metric)
    means = ok.groupby([*BLOCK_COLUMNS, "entry"], sort=False, dropna=False)[metric].mean()
    table = means.unstack("entry")
    return table[[e for e in dict.fromkeys(rows["entry"]) if e in table.columns]]


def complete_blocks(means: pd.DataFrame) -> pd.DataFrame:
    """The blocks in which every entry has a value (ranks compare like with like)."""
    return means.dropna(axis=0, how="any")


def average_ranks(means: pd.DataFrame) -> pd.Series:
    """The mean rank of each entry over the complete blocks; rank 1 is the highest value in a
    block, tied values share their average rank. Sorted from best to worst."""
    complete = complete_blocks(means)
    if complete.empty:
        return pd.Series(dtype=float)
    ranks = complete.apply(lambda block: pd.Series(scipy_stats.rankdata(-block.to_numpy(float)),
                                                   index=block.index), axis=1)
    return ranks.mean(axis=0).sort_values(kind="stable")


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference for ``k`` entries ranked over ``n`` blocks:
    ``q_alpha * sqrt(k (k + 1) / (6 n))`` with ``q_alpha`` the studentized range quantile
    divided by sqrt(2) (Demsar 2006, Table 5a)."""
    q_alpha = scipy_stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q_alpha * math.sqrt(k * (k + 1) / (6 * n)))


@dataclass
class FriedmanResult:
    """The Friedman test over complete blocks, with Nemenyi's critical difference and (with
    scikit-posthocs) the pairwise Nemenyi p-values."""

    statistic: float
    p_value: float
    n_blocks: int
    ranks: pd.Series
    cd: float
    alpha: float
    pairwise: pd.DataFrame | None

    def statement(self) -> str:
        return FRIEDMAN_STATEMENT.format(n=self.n_blocks, k=len(self.ranks), cd=self.cd, alpha=self.alpha)


def friedman_nemenyi(means: pd.DataFrame, alpha: float = 0.05) -> FriedmanResult:
    """Friedman's test and Nemenyi's post-hoc test over the complete blocks of ``means``.
    Needs at least 3 entries and 2 complete blocks; the pairwise p-values are None when
    scikit-posthocs is not installed."""
    complete = complete_blocks(means)
    k, n = complete.shape[1], complete.shape[0]
    if k < 3 or n < 2:
        raise MvbenchError(f"the Friedman test needs at least 3 entries and 2 blocks (datasets x "
                           f"settings) in which all of them have results; found {k} entries and {n} "
                           f"such blocks")
    result = scipy_stats.friedmanchisquare(*[complete[c].to_numpy(float) for c in complete.columns])
    return FriedmanResult(float(result.statistic), float(result.pvalue), n, average_ranks(means),
                          critical_difference(k, n, alpha), alpha, _nemenyi(complete))


def _nemenyi(complete: pd.DataFrame) -> pd.DataFrame | None:
    try:
        import scikit_posthocs
    except ImportError:
        return None
    pairwise = scikit_posthocs.posthoc_nemenyi_friedman(complete.to_numpy(float))
    pairwise.index = pairwise.columns = list(complete.columns)
    return pairwise


def cd_diagram(result: FriedmanResult, path: Path, title: str) -> Path:
    """Draw the critical-difference diagram (average ranks; a bar joins entries that Nemenyi's
    test does not separate) into ``path``."""
    if result.pairwise is None:
        raise MvbenchError(f"the critical-difference diagram needs scikit-posthocs: {INSTALL_HINT}")
    import scikit_posthocs
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 1.2 + 0.28 * len(result.ranks)), layout="constrained")
    ax = fig.subplots()
    # The CD goes into the title: scikit-posthocs draws its bar over the rank axis' labels.
    scikit_posthocs.critical_difference_diagram(result.ranks, result.pairwise, ax=ax, alpha=result.alpha)
    ax.set_title(f"{title}: average ranks (1 = best); Nemenyi CD = {result.cd:.2f} at alpha = {result.alpha:g}",
                 fontsize=9, pad=18)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, metadata={"Software": None})
    return path


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``values`` (NaN, NaN for fewer than 2)."""
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return math.nan, math.nan
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])  # every resample has the same mean
    result = scipy_stats.bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=resamples,
                                   method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_table(rows: pd.DataFrame, metric: str, confidence: float = 0.95,
                    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """Per (block, entry): the number of ok seeds, mean, sample std (ddof=1) and the bootstrap
    interval of the mean."""
    ok = _ok(rows, metric)
    out = []
    for key, group in ok.groupby([*BLOCK_COLUMNS, "entry"], sort=False, dropna=False):
        values = group[metric].astype(float).to_numpy()
        low, high = bootstrap_ci(values, confidence, resamples, seed)
        out.append({**dict(zip([*BLOCK_COLUMNS, "entry"], key)), "n": len(values), "mean": values.mean(),
                    "std": values.std(ddof=1) if len(values) > 1 else math.nan, "ci_low": low, "ci_high": high})
    return pd.DataFrame(out, columns=[*BLOCK_COLUMNS, "entry", "n", "mean", "std", "ci_low", "ci_high"])
