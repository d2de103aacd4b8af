"""Statistics on small hand-checked cases: Wilcoxon p-values, Holm, ranks, Friedman, Nemenyi's
critical difference, bootstrap intervals; and the stats command on a results folder."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mvbench import stats
from mvbench.errors import MvbenchError
from mvbench.results import RECORDS_FILE, append_record


def rows_of(values: dict[str, list[float]], blocks: int = 1) -> pd.DataFrame:
    """Per-trial rows: entry -> one value per (block, seed) cell; cells are spread over
    ``blocks`` datasets, seeds numbered within each."""
    out = []
    for entry, cells in values.items():
        per_block = len(cells) // blocks
        for i, value in enumerate(cells):
            out.append({"dataset": f"d{i // per_block}", "missing": "none", "missing_params": "", "rate": 0.0,
                        "method": entry, "option_set": "default", "seed": i % per_block, "status": "ok",
                        "acc": value})
    return stats.with_entries(pd.DataFrame(out))


def test_all_six_differences_positive_give_the_exact_two_sided_p_2_over_64():
    rows = rows_of({"ref": [0.5] * 6, "better": [0.51, 0.52, 0.53, 0.54, 0.55, 0.56]}, blocks=2)
    (result,) = stats.wilcoxon_vs_reference(rows, "ref", "acc").to_dict("records")
    assert result["n_pairs"] == 6 and (result["wins"], result["ties"], result["losses"]) == (6, 0, 0)
    assert result["statistic"] == 0 and result["p_value"] == pytest.approx(2 / 64)
    assert result["p_holm"] == pytest.approx(2 / 64)  # one comparison: nothing to adjust
    assert result["median_diff"] == pytest.approx(0.035)


def test_one_smallest_negative_difference_gives_p_6_over_64():
    # differences of ranks 1..6, the one of rank 2 negative: W = W- = 2; the subsets of {1..6}
    # with a rank sum <= 2 are {}, {1}, {2}: P(W <= 2) = 3/64, two-sided 6/64.
    rows = rows_of({"ref": [0.5] * 6, "other": [0.51, 0.48, 0.53, 0.54, 0.55, 0.56]})
    (result,) = stats.wilcoxon_vs_reference(rows, "ref", "acc").to_dict("records")
    assert result["statistic"] == 2 and result["p_value"] == pytest.approx(6 / 64)
    assert (result["wins"], result["losses"]) == (5, 1)


def test_ties_with_the_reference_are_dropped_and_all_ties_mean_no_evidence():
    rows = rows_of({"ref": [0.5] * 4, "same": [0.5] * 4, "mixed": [0.5, 0.6, 0.7, 0.8]})
    result = stats.wilcoxon_vs_reference(rows, "ref", "acc").set_index("entry")
    assert result.loc["same", "p_value"] == 1.0 and result.loc["same", "ties"] == 4
    # 'mixed': one tie dropped, 3 positive differences: exact p = 2/8
    assert result.loc["mixed", "p_value"] == pytest.approx(2 / 8)


def test_only_cells_both_entries_have_are_paired():
    rows = rows_of({"ref": [0.5, 0.5, 0.5], "other": [0.6, 0.7, 0.8]})
    rows = rows[~((rows["entry"] == "ref") & (rows["seed"] == 2))]
    (result,) = stats.wilcoxon_vs_reference(rows, "ref", "acc").to_dict("records")
    assert result["n_pairs"] == 2 and result["p_value"] == pytest.approx(2 / 4)


def test_holm_by_hand():
    adjusted = stats.holm([0.01, 0.04, 0.03, math.nan])
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04, made monotone -> 0.06
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(adjusted[3])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def toy_table() -> pd.DataFrame:
    """Three entries on three blocks (mean over seeds given directly, one seed each)."""
    values = {"A": [0.9, 0.6, 0.5], "B": [0.8, 0.8, 0.4], "C": [0.7, 0.8, 0.6]}
    return rows_of(values, blocks=3)


def test_average_ranks_of_a_toy_table_with_a_tie():
    means = stats.block_means(toy_table(), "acc")
    ranks = stats.average_ranks(means)
    # block 1: A 1, B 2, C 3; block 2: B and C tie for 1-2 (1.5 each), A 3; block 3: C 1, A 2, B 3
    assert ranks.to_dict() == pytest.approx({"C": (3 + 1.5 + 1) / 3, "A": (1 + 3 + 2) / 3, "B": (2 + 1.5 + 3) / 3})
    assert list(ranks.index) == ["C", "A", "B"]


def test_blocks_where_an_entry_has_no_result_are_left_out_of_the_ranks():
    rows = toy_table()
    rows = rows[~((rows["entry"] == "B") & (rows["dataset"] == "d2"))]
    means = stats.block_means(rows, "acc")
    assert len(means) == 3 and len(stats.complete_blocks(means)) == 2
    # blocks d0 (A 1, B 2, C 3) and d1 (A 3, B 1.5, C 1.5)
    assert stats.average_ranks(means).to_dict() == pytest.approx({"A": 2.0, "B": 1.75, "C": 2.25})


def test_friedman_statistic_by_hand_and_the_nemenyi_critical_difference():
    result = stats.friedman_nemenyi(stats.block_means(toy_table(), "acc"))
    # rank sums 6, 6.5, 5.5; chi2 = 12/(N k (k+1)) sum R^2 - 3N(k+1) = 108.5/3 - 36 = 1/6, divided
    # by the tie correction 1 - sum(t^3 - t) / (N k (k^2 - 1)) = 1 - 6/72.
    assert result.statistic == pytest.approx((1 / 6) / (1 - 6 / 72))
    assert result.n_blocks == 3 and result.cd == pytest.approx(stats.critical_difference(3, 3))
    # Demsar (2006), Table 5a: q_0.05 = 2.343 for k = 3, 2.569 for k = 4.
    assert stats.critical_difference(3, 14) == pytest.approx(2.343 * math.sqrt(12 / 84), abs=1e-3)
    assert stats.critical_difference(4, 10) == pytest.approx(2.569 * math.sqrt(20 / 60), abs=1e-3)
    assert list(result.pairwise.index) == ["A", "B", "C"] and np.allclose(np.diag(result.pairwise), 1)
    assert "Friedman test over 3 blocks" in result.statement() and "Nemenyi" in result.statement()


def test_friedman_needs_three_entries_and_two_complete_blocks():
    with pytest.raises(MvbenchError, match="at least 3 entries and 2 blocks"):
        stats.friedman_nemenyi(stats.block_means(rows_of({"A": [0.1, 0.2], "B": [0.3, 0.4]}, blocks=2), "acc"))


def test_critical_difference_diagram_is_written(tmp_path):
    result = stats.friedman_nemenyi(stats.block_means(toy_table(), "acc"))
    path = stats.cd_diagram(result, tmp_path / "cd.png", "toy")
    assert path.stat().st_size > 5_000


def test_bootstrap_interval():
    assert all(math.isnan(v) for v in stats.bootstrap_ci([0.5]))
    assert stats.bootstrap_ci([0.7, 0.7, 0.7]) == (0.7, 0.7)
    values = [0.61, 0.65, 0.70, 0.72, 0.80]
    low, high = stats.bootstrap_ci(values)
    assert min(values) <= low < np.mean(values) < high <= max(values)
    assert stats.bootstrap_ci(values) == (low, high)  # seeded: the same interval every time
    table = stats.bootstrap_table(rows_of({"A": values}), "acc")
    assert table[["n", "ci_low", "ci_high"]].iloc[0].tolist() == [5, low, high]
    assert table["std"].iloc[0] == pytest.approx(np.std(values, ddof=1))


def test_reference_lookup():
    rows = toy_table()
    assert stats.find_entry(rows, "A") == "A"
    with pytest.raises(MvbenchError, match="did you mean 'A'"):
        stats.find_entry(rows, "AA")


def _records(folder, values: dict[str, list[float]]) -> None:
    """Ad-hoc records of fake methods on three datasets, two seeds each."""
    for method, accs in values.items():
        for i, acc in enumerate(accs):
            append_record(folder / RECORDS_FILE, {
                "trial_key": f"{method}-{i}", "status": "ok", "method": method, "option_set": None,
                "dataset": f"d{i // 2}", "missing": "none", "missing_options": {}, "seed": i % 2,
                "metrics": {"acc": acc, "nmi": acc}, "device": "cpu", "precision": "fp32"})


def test_stats_command_on_a_results_folder(cli, tmp_path):
    _records(tmp_path, {"ref": [0.5] * 6, "better": [0.51, 0.52, 0.53, 0.54, 0.55, 0.56],
                        "worse": [0.4, 0.3, 0.45, 0.2, 0.1, 0.35]})
    code, out, err = cli("stats", "--results", str(tmp_path), "--reference", "ref", "--bootstrap")
    assert code == 0, err
    assert "0.03125" in out and "Holm" in out and "Wilcoxon signed-rank" in out
    assert "average rank over 3 blocks" in out and "Friedman chi2 =" in out and "Nemenyi" in out
    assert (tmp_path / "board_cd_acc.png").is_file() and "bootstrap" in out
    code, _, err = cli("stats", "--results", str(tmp_path), "--reference", "nobody")
    assert code == 2 and "unknown reference entry 'nobody'" in err
