"""The LaTeX rendering of a leaderboard (``mvbench leaderboard NAME --latex``) against a reviewed
snapshot, and the ``--format`` flags of the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvbench.leaderboard import aggregate_cells, build, cell_rows
from mvbench.leaderboard_render import latex, latex_escape, ranked, row_label

from run_helpers import kmeans_suite

SNAPSHOT = Path(__file__).parent / "snapshots" / "leaderboard.tex"


def record(seed: int, acc: float | None, *, option_set: str, method: str = "kmeans", dataset: str = "synthetic",
           missing: str = "none", rate: float | None = None) -> dict:
    """A hand-made trial record (``acc=None``: a failed trial); NMI = ACC - 0.1, ARI = ACC / 2."""
    out = {"trial_key": f"{method}|{option_set}|{dataset}|{missing}|{rate}|{seed}",
           "status": "ok" if acc is not None else "failed", "method": method, "option_set": option_set,
           "dataset": dataset, "missing": missing, "missing_options": {} if rate is None else {"rate": rate},
           "seed": seed, "fill": "mean", "device": "cpu", "device_name": "x86_64 (1 threads)",
           "precision": "fp32", "versions": {"mvbench": "0.1.0", "torch": "2.13.0", "git_commit": "abc123"}}
    if acc is not None:
        out["metrics"] = {"acc": acc, "nmi": acc - 0.1, "ari": acc / 2, "pur": acc, "f": 0.5}
        out["train_time"] = 1.0
    return out


def demo_board():
    """Two datasets (one whose name needs escaping), a complete and an incomplete block, a tie,
    a one-seed cell (no std) and a cell whose every seed failed."""
    acc = {"kmeans": (0.70, 0.72, 0.74), "mflvc": (0.90, 0.92, 0.94), "rav-stable": (0.80, 0.80, 0.80)}
    methods = {"kmeans": "kmeans", "mflvc": "mflvc", "rav-stable": "rav"}
    records = [record(seed, value, option_set=name, method=methods[name])
               for name, values in acc.items() for seed, value in enumerate(values)]
    records += [record(seed, 0.6 - 0.1 * (name == "kmeans"), option_set=name, method=methods[name],
                       missing="mcar", rate=0.5) for name in ("kmeans", "mflvc") for seed in (0, 1)]
    records += [record(0, 0.55, option_set="mflvc", method="mflvc", dataset="BDGP_fea&3view"),
                record(0, None, option_set="kmeans", method="kmeans", dataset="BDGP_fea&3view")]
    board = build("demo_board", records, registry=None)
    board.meta["seeds"] = [0, 1, 2]
    return board


def test_latex_matches_the_reviewed_snapshot():
    # The snapshot was written once by latex(demo_board()), read line by line and checked by
    # hand (see the asserts below for what was checked), then committed.
    assert latex(demo_board()) == SNAPSHOT.read_text(encoding="utf-8")


def _row(lines: list[str], prefix: str) -> list[str]:
    """The cells of the snapshot's first row starting with ``prefix``."""
    return next(line for line in lines if line.startswith(prefix)).removesuffix(r" \\").split(" & ")


def test_the_snapshot_marks_best_and_second_per_dataset_and_setting():
    lines = SNAPSHOT.read_text(encoding="utf-8").splitlines()
    # Complete block of synthetic: mflvc best (ACC 0.92), rav-stable second (0.80), kmeans
    # neither; F is 0.5 everywhere, a tie, so every F is bold (as in the Markdown).
    kmeans, mflvc, rav = (_row(lines, p) for p in ("synthetic & complete & kmeans", " &  & mflvc & 3",
                                                    " &  & rav-stable"))
    assert mflvc[4] == r"\textbf{0.9200} $\pm$ 0.0200" and rav[4] == r"\underline{0.8000} $\pm$ 0.0000"
    assert kmeans[4] == r"0.7200 $\pm$ 0.0200" and kmeans[6] == r"0.3600 $\pm$ 0.0100"
    assert {kmeans[8], mflvc[8], rav[8]} == {r"\textbf{0.5000} $\pm$ 0.0000"}
    # The mcar 0.5 block is ranked on its own: mflvc best, kmeans second.
    mcar_kmeans, mcar_mflvc = _row(lines, " & mcar 0.5 & kmeans"), _row(lines, " &  & mflvc & 2")
    assert mcar_kmeans[4] == r"\underline{0.5000} $\pm$ 0.0000" and mcar_mflvc[4] == r"\textbf{0.6000} $\pm$ 0.0000"
    # Another dataset, another ranking: one finished cell has nothing to be compared with; one
    # seed has no std; a cell whose seeds all failed shows dashes.
    assert _row(lines, r"BDGP\_fea\&3view") == [r"BDGP\_fea\&3view", "complete", "mflvc", "1", "0.5500",
                                                 "0.4500", "0.2750", "0.5500", "0.5000"]
    assert _row(lines, " &  & kmeans & 0") == ["", "", "kmeans", "0", "--", "--", "--", "--", "--"]
    # Booktabs rules: a midrule per dataset, a cmidrule between its settings.
    rules = [line for line in lines if line.startswith(("\\toprule", "\\midrule", "\\cmidrule", "\\bottomrule"))]
    assert rules == [r"\toprule", r"\midrule", r"\cmidrule(l){2-9}", r"\midrule", r"\bottomrule"]
    caption = next(line for line in lines if line.startswith(r"\caption{"))
    assert "seeds 0, 1, 2" in caption and "precision fp32" in caption and r"x86\_64 (1 threads)" in caption
    assert "Best mean per dataset and setting in bold, second underlined" in caption


def test_ranks_follow_the_blocks_and_ties():
    table = aggregate_cells(cell_rows([record(0, 0.8, option_set="a"), record(0, 0.8, option_set="b"),
                                       record(0, 0.7, option_set="c"), record(0, 0.6, option_set="d")]))
    best, second = ranked(table)["acc"]
    assert (best, second) == ({0, 1}, {2})  # a tie is best together; second is the next value
    assert ranked(table)["train_time"] == ({0, 1, 2, 3}, set())  # all equal: all best, no second
    assert latex_escape("a_b&c%d$e#f{g}h~i^j\\k") == (r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i"
                                                       r"\textasciicircum{}j\textbackslash{}k")


def test_row_labels_name_the_method_when_the_option_set_does_not():
    assert row_label({"method": "rav", "option_set": "rav-stable"}) == "rav-stable"
    assert row_label({"method": "kmeans", "option_set": "default"}) == "kmeans"
    assert row_label({"method": "mflvc", "option_set": "short"}) == "mflvc [short]"


SUITE = kmeans_suite(head='description = "a tiny suite"\nthreads = 1')


@pytest.fixture
def swept(tmp_path, cli):
    folder = tmp_path / "leaderboards"
    folder.mkdir()
    suite = folder / "tiny.toml"
    suite.write_text(SUITE)
    assert cli("sweep", str(suite), "-q")[0] == 0
    return suite


@pytest.mark.parametrize("flags", [("--latex",), ("--format", "latex")])
def test_latex_flag_prints_the_table_and_writes_nothing(swept, cli, flags):
    code, out, _ = cli("leaderboard", str(swept), *flags)
    assert code == 0
    assert out.startswith("% mvbench leaderboard tiny --latex") and out.rstrip().endswith(r"\end{table*}")
    assert r"synthetic & complete & kmeans & 2 &" in out
    assert not (swept.parent / "tiny.csv").exists()


def test_each_format_prints_its_rendering(swept, cli):
    csv = cli("leaderboard", str(swept), "--format", "csv")[1]
    assert csv.startswith("dataset,dataset_name,missing") and len(csv.splitlines()) == 2
    assert cli("leaderboard", str(swept), "--format", "md")[1].startswith("# Leaderboard `tiny`")
    page = cli("leaderboard", str(swept), "--format", "html")[1]
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert "1 torch thread per trial" in page
    assert "data:image" not in cli("leaderboard", str(swept), "--format", "html", "--no-plots")[1]
    assert not list(swept.parent.glob("tiny.*[!l]"))  # nothing written but the suite file


def test_format_with_check_is_a_one_line_error(swept, cli):
    code, out, err = cli("leaderboard", str(swept), "--latex", "--check")
    assert code == 2 and err.startswith("error: --format/--latex print the leaderboard") and len(err.splitlines()) == 1
    with pytest.raises(SystemExit):
        cli("leaderboard", str(swept), "--format", "pdf")
