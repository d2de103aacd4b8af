"""Leaderboard aggregation, CSV schema, published numbers, Markdown, plots, compare and the CI check."""

from __future__ import annotations

import json
import math
import statistics
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from mvbench.hookspecs import hookimpl
from mvbench.leaderboard import (COLUMNS, add_published, aggregate_cells, build, cell_rows, compare, csv_text,
                                 published_numbers, read_leaderboard)
from mvbench import leaderboard_render as render
from mvbench.leaderboard_render import dataset_table, markdown, plot_dataset, write
from mvbench.registry import build_registry
from mvbench.results import RECORDS_FILE, read_records
from mvbench.options import Option
from mvbench.specs import DatasetSpec, MethodSpec

from run_helpers import kmeans_suite

def record(seed: int, acc: float | None, *, option_set: str = "full", method: str = "kmeans",
           dataset: str = "synthetic", missing: str = "none", rate: float | None = None,
           train_time: float = 1.0) -> dict:
    """A hand-made trial record; ``acc=None`` makes it a failed trial."""
    out = {
        "trial_key": f"{method}|{option_set}|{dataset}|{missing}|{rate}|{seed}",
        "status": "ok" if acc is not None else "failed", "method": method, "option_set": option_set,
        "dataset": dataset, "missing": missing, "missing_options": {} if rate is None else {"rate": rate},
        "seed": seed, "fill": "mean", "device": "cpu", "device_name": "test cpu", "precision": "fp32",
        "incomplete_fraction": rate or 0.0,
        "versions": {"mvbench": "0.1.0", "torch": "2.x", "git_commit": "abc123"},
    }
    if acc is None:
        out["error"] = "ValueError: planned"
    else:
        out["metrics"] = {"acc": acc, "nmi": acc / 2, "ari": acc - 0.1, "pur": acc, "f": acc / 4}
        out["train_time"] = train_time
    return out


def test_aggregation_mean_std_ddof1_and_counts():
    records = [
        record(0, None),  # seed 0 failed first, then succeeded: the ok record counts
        record(0, 0.5, train_time=1.0), record(1, 0.6, train_time=2.0), record(2, 0.9, train_time=6.0),
        record(3, None),
        record(0, 0.4, option_set="other"),
    ]
    table = aggregate_cells(cell_rows(records))
    full = table[table["option_set"] == "full"].iloc[0]
    assert (full["n_seeds"], full["n_failed"]) == (3, 1)
    assert full["acc_mean"] == pytest.approx(2 / 3)
    assert full["acc_std"] == pytest.approx(statistics.stdev([0.5, 0.6, 0.9]))  # ddof=1
    assert full["acc_std"] != pytest.approx(float(np.std([0.5, 0.6, 0.9])))   # not ddof=0
    assert full["nmi_mean"] == pytest.approx(1 / 3) and full["ari_mean"] == pytest.approx(2 / 3 - 0.1)
    assert full["train_time_mean"] == pytest.approx(3.0) and full["train_time_std"] == pytest.approx(math.sqrt(7))
    other = table[table["option_set"] == "other"].iloc[0]
    assert other["n_seeds"] == 1 and math.isnan(other["acc_std"])  # one seed: no std
    assert list(table["rate"]) == [0.0, 0.0]


def test_cells_split_by_missingness_and_rate_and_group_by_block():
    records = [record(s, 0.5 + r, missing="mcar", rate=r, option_set=o)
               for r in (0.3, 0.1) for o in ("a", "b") for s in (0, 1)]
    records += [record(0, 0.9, option_set="b"), record(0, 0.2, dataset="other")]
    table = aggregate_cells(cell_rows(records))
    # Per dataset in first-seen order: complete data first, then each mechanism by rate;
    # within a block the option sets keep their first-seen order.
    assert list(zip(table["dataset"], table["missing"], table["rate"], table["option_set"])) == [
        ("synthetic", "none", 0.0, "b"), ("synthetic", "mcar", 0.1, "a"), ("synthetic", "mcar", 0.1, "b"),
        ("synthetic", "mcar", 0.3, "a"), ("synthetic", "mcar", 0.3, "b"), ("other", "none", 0.0, "full")]
    assert list(table["n_seeds"]) == [1, 2, 2, 2, 2, 1]


def test_csv_schema_sidecar_and_round_trip(tmp_path):
    board = build("demo", [record(s, a) for s, a in enumerate((0.5, 0.6, 0.9))], registry=None)
    paths = write(board, tmp_path, plots=False)
    assert [p.name for p in paths] == ["demo.csv", "demo.meta.json", "demo.md"]
    header = (tmp_path / "demo.csv").read_text().splitlines()[0]
    assert header.split(",") == list(COLUMNS)
    assert header.startswith("dataset,dataset_name,missing,missing_params,rate,method,method_version,option_set,"
                             "n_seeds,n_failed,n_degenerate,"
                             "acc_mean,acc_std,nmi_mean,nmi_std")
    table = read_leaderboard(tmp_path / "demo.csv")
    assert table.loc[0, "acc_mean"] == 0.666667 and table.loc[0, "n_seeds"] == 3  # 6 decimals
    assert table.loc[0, "missing_params"] == "" and table.loc[0, "git_commit"] == "abc123"
    assert compare(board.table, table).same
    meta = json.loads((tmp_path / "demo.meta.json").read_text())
    definitions = meta["definitions"]
    assert "ddof=1" in definitions["std"] and "arithmetic" in definitions["metrics"]["nmi"]
    assert "rate" in definitions["rate"] and "never mixed" in definitions["published"]
    assert "1e-06" in definitions["check_tolerance"]


def _registry_with_results():
    results = [
        {"method": "KMeans", "metric": "ACC", "value": 0.91, "setting": "complete; paper"},
        {"method": "KMeans", "metric": "NMI", "value": 0.81, "setting": "complete; paper"},
        {"method": "KMeans", "metric": "ACC", "value": 0.55, "setting": "complete; paper ablation without L_S"},
        {"method": "KMeans", "metric": "ACC", "value": 0.70, "setting": "missing rate 0.5; paper"},
        {"method": "KMeans", "metric": "ACC", "value": 0.60, "setting": "missing rate 0.5; authors' code (reproduction)"},
        {"method": "KMeans", "metric": "NMI", "value": 0.66, "setting": "missing rate 0.5; authors' masks",
         "mechanism": "get-mask"},
        {"method": "Other", "metric": "ACC", "value": 0.11, "setting": "complete; paper"},
        {"method": "Toggled", "metric": "ACC", "value": 0.88, "setting": "complete; paper"},
    ]
    spec = DatasetSpec(name="fakedata", load=lambda options, data_dir: None, description="fake",
                       summary={"results": results})
    toggled = MethodSpec(name="toggled", fit_predict=lambda data: None, description="a method with toggles",
                         options=(Option("part", "bool", True, "a component the paper ablates", ablation=True),
                                  Option("variant", "str", "a", "an implementation choice")))

    @hookimpl
    def mvbench_datasets():
        return [spec]

    @hookimpl
    def mvbench_methods():
        return [toggled]

    return build_registry(objects=[("fake-datasets", SimpleNamespace(mvbench_datasets=mvbench_datasets)),
                                   ("fake-methods", SimpleNamespace(mvbench_methods=mvbench_methods))])


def test_published_numbers_match_method_setting_and_ablation():
    registry = _registry_with_results()
    assert published_numbers(registry, "fakedata", "kmeans", "none", 0.0) == (
        {"acc": 0.91, "nmi": 0.81}, "paper")
    assert published_numbers(registry, "fakedata", "kmeans", "mcar", 0.5)[0] == {"acc": 0.70}
    assert published_numbers(registry, "fakedata", "kmeans", "mcar", 0.3)[0] == {}
    # A number measured on other masks belongs to its own mechanism's cells only.
    assert published_numbers(registry, "fakedata", "kmeans", "get-mask", 0.5)[0] == {"nmi": 0.66}
    assert published_numbers(registry, "fakedata", "kmeans", "none", 0.0, "without L_S")[0] == {"acc": 0.55}
    # Absent registry, dataset or results: no published number, no error.
    assert published_numbers(None, "fakedata", "kmeans", "none", 0.0) == ({}, "")
    assert published_numbers(registry, "absent", "kmeans", "none", 0.0) == ({}, "")
    assert published_numbers(registry, "synthetic", "kmeans", "none", 0.0) == ({}, "")
    rows = [record(0, 0.5, dataset="fakedata"), record(0, 0.4, option_set="noLS", dataset="fakedata"),
            record(0, 0.3, option_set="plain", dataset="fakedata")]
    table = add_published(aggregate_cells(cell_rows(rows)),
                          registry, {"noLS": "without L_S"})
    assert list(table["published_acc"].fillna(-1)) == [0.91, 0.55, 0.91]
    assert table.loc[0, "acc_mean"] == 0.5  # ours stay ours


def test_an_unnamed_ablation_never_shows_the_full_models_number():
    registry = _registry_with_results()

    def toggled(option_set: str, options: dict) -> dict:
        return {**record(0, 0.5, option_set=option_set, method="toggled", dataset="fakedata"),
                "method_options": {"part": True, "variant": "a", **options}}

    rows = [toggled("full", {}), toggled("variant-b", {"variant": "b"}), toggled("no-part", {"part": False}),
            toggled("no-part-named", {"part": False})]
    table = add_published(aggregate_cells(cell_rows(rows, registry=registry)), registry,
                          {"no-part-named": "without L_S"})
    published = dict(zip(table["option_set"], table["published_acc"].fillna(-1)))
    assert published == {"full": 0.88, "variant-b": 0.88, "no-part": -1, "no-part-named": -1}
    assert list(table.columns) == [c for c in COLUMNS if c in table.columns]  # "ablates" is not a CSV column


def test_markdown_bolds_the_best_mean_of_each_block():
    records = [record(0, 0.8), record(1, 0.8), record(0, 0.7, option_set="ablation"),
               record(1, 0.7, option_set="ablation"), record(0, 0.6, missing="mcar", rate=0.5)]
    table = aggregate_cells(cell_rows(records))
    text = dataset_table(table)
    rows = [line for line in text.splitlines() if line.startswith("| none") or line.startswith("| mcar")]
    assert "**0.8000** ± 0.0000" in rows[0] and "**" not in rows[1].split("|")[6]
    assert "0.7000 ± 0.0000" in rows[1]
    assert "**" not in rows[2]  # alone in its block: nothing to compare
    tie = aggregate_cells(cell_rows([record(0, 0.8), record(0, 0.8, option_set="twin")]))
    tie_rows = [line for line in dataset_table(tie).splitlines() if line.startswith("| none")]
    assert [line.split("|")[6].strip() for line in tie_rows] == ["**0.8000**", "**0.8000**"]
    board = build("demo", records, registry=None)
    page = markdown(board)
    assert page.startswith("# Leaderboard `demo`") and "ddof=1" in page and "![synthetic](demo_synthetic.png)" in page


def test_markdown_header_lists_each_device_and_commit_once():
    # Two cells whose seeds ran on different machines: each cell's CSV value is already
    # ";"-joined, and the header must not list those joined values next to their parts.
    records = [record(0, 0.8), record(1, 0.7), record(0, 0.6, option_set="b")]
    records[1]["device_name"], records[1]["versions"]["git_commit"] = "other cpu", "def456"
    page = markdown(build("demo", records, registry=None))
    header = next(line for line in page.splitlines() if line.startswith("- device:"))
    assert header.startswith("- device: other cpu; test cpu; precision: fp32;")
    assert "commit abc123; def456" in header and "abc123;def456" not in header


@pytest.mark.parametrize("rates", [(0.1, 0.3, 0.5), (0.5,)])
def test_plots_are_written(tmp_path, rates):
    records = [record(s, 0.9 - r - 0.05 * s - 0.1 * (o == "b"), option_set=o, missing="mcar", rate=r)
               for r in rates for o in ("a", "b") for s in (0, 1, 2)]
    table = aggregate_cells(cell_rows(records))
    path = tmp_path / "plot.png"
    plot_dataset(table, "synthetic", path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    image = imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 800
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_an_entry_keeps_its_colour_on_every_dataset_plot(tmp_path, monkeypatch):
    # The second dataset lists its rows in another order; the plots must still agree on colours.
    records = [record(s, 0.8, option_set=o) for o in ("a", "b") for s in (0, 1)]
    records += [record(s, 0.7, option_set=o, dataset="other") for o in ("b", "a") for s in (0, 1)]
    board = build("demo", records, registry=None)
    styles: dict[str, dict[tuple[str, str], object]] = {}

    def spy(rows, dataset, path, entries=None):
        styles[dataset] = {entry: render.entry_style(entries, entry) for entry in render.table_entries(rows)}

    monkeypatch.setattr(render, "plot_dataset", spy)
    write(board, tmp_path)
    assert set(styles) == {"synthetic", "other"}
    assert styles["synthetic"] == styles["other"]
    assert len({str(style) for style in styles["synthetic"].values()}) == 2


def test_compare_reports_changes_beyond_the_tolerance_only():
    old = aggregate_cells(cell_rows([record(s, a) for s, a in enumerate((0.5, 0.6))]
                                    + [record(0, 0.3, option_set="gone")]))
    new = old.copy()
    assert compare(new, old).same
    new.loc[0, "acc_mean"] += 5e-7
    assert compare(new, old).same
    new.loc[0, "acc_mean"] += 1e-3
    new = new[new["option_set"] != "gone"]
    result = compare(new, old)
    assert [(c[1], round(c[3] - c[2], 6)) for c in result.changed] == [("acc_mean", 0.001)]
    assert [k[-1] for k in result.removed] == ["gone"] and result.added == []


SUITE = kmeans_suite(
    head="""
        description = "a tiny suite"
        threads = 1
        epochs = "n/a (k-means)"
    """,
    methods="""
        [[methods]]
        name = "kmeans-raw"
        method = "kmeans"
        options = { n_init = 1, standardize = false }
    """,
    tail="""
        [[missing]]
        mechanism = "none"

        [[missing]]
        mechanism = "mcar"
        rates = [0.5]
    """)


@pytest.fixture
def suite_dir(tmp_path):
    folder = tmp_path / "leaderboards"
    folder.mkdir()
    (folder / "tiny.toml").write_text(SUITE)
    return folder


def test_leaderboard_command_writes_csv_markdown_plots_and_compares(suite_dir, cli):
    suite = str(suite_dir / "tiny.toml")
    assert cli("sweep", suite, "-q")[0] == 0
    code, out, _ = cli("leaderboard", suite)
    assert code == 0 and "4 rows from 8 ok trials" in out
    for name in ("tiny.csv", "tiny.meta.json", "tiny.md", "tiny_synthetic.png"):
        assert (suite_dir / name).stat().st_size > 100
    table = read_leaderboard(suite_dir / "tiny.csv")
    assert list(table["option_set"]) == ["kmeans", "kmeans-raw", "kmeans", "kmeans-raw"]
    assert set(table["n_seeds"]) == {2} and set(table["device"]) == {"cpu"}
    assert {r["suite"] for r in read_records(suite_dir / "results" / "tiny" / RECORDS_FILE)} == {"tiny"}
    other = suite_dir / "other.csv"
    table.loc[1, "nmi_mean"] = 0.123
    table.to_csv(other, index=False)
    code, out, _ = cli("leaderboard", suite, "--no-plots", "--compare", str(other))
    assert code == 0 and "nmi_mean" in out and "0.123000" in out


def test_records_outside_the_suite_are_left_out_and_labels_follow_the_suite(suite_dir, cli):
    suite = suite_dir / "tiny.toml"
    assert cli("sweep", str(suite), "-q")[0] == 0
    suite.write_text(suite.read_text().replace('name = "kmeans-raw"', 'name = "renamed"')
                     .replace('rates = [0.5]', 'rates = [0.3]'))
    assert cli("leaderboard", str(suite), "--no-plots")[0] == 0
    table = read_leaderboard(suite_dir / "tiny.csv")
    assert list(zip(table["option_set"], table["rate"])) == [("kmeans", 0.0), ("renamed", 0.0)]


def test_ci_check_passes_on_a_rerun_and_fails_on_a_changed_number(suite_dir, cli):
    suite = str(suite_dir / "tiny.toml")
    assert cli("sweep", suite, "-q")[0] == 0
    assert cli("leaderboard", suite, "--no-plots")[0] == 0
    committed = suite_dir / "tiny.csv"
    code, out, _ = cli("leaderboard", suite, "--check", "-q")  # a fresh run from scratch
    assert code == 0 and "matches the fresh run within 1e-06" in out
    good = committed.read_text()
    table = pd.read_csv(committed)
    table.loc[2, "acc_mean"] = round(table.loc[2, "acc_mean"] - 0.01, 6)
    committed.write_text(csv_text(SimpleNamespace(table=table)))
    results = str(suite_dir / "results" / "tiny")
    code, out, _ = cli("leaderboard", suite, "--check", "--results", results)
    assert code == 1 and "mismatch" in out and "acc_mean" in out and "mcar" in out
    assert "--check --update" in out
    code, out, _ = cli("leaderboard", suite, "--check", "--results", results, "--update", "--no-plots")
    assert code == 0 and committed.read_text() == good
    assert cli("leaderboard", suite, "--check", "--results", results)[0] == 0


def test_a_board_never_mixes_method_versions():
    from dataclasses import replace as _replace

    from mvbench.leaderboard import build
    from mvbench.registry import get_registry

    registry = get_registry()
    base = {"status": "ok", "dataset": "synthetic", "missing": "none", "method": "kmeans",
            "metrics": {"acc": 0.5, "nmi": 0.5, "ari": 0.5, "pur": 0.5, "f": 0.5}, "train_time": 1.0}
    old = [{**base, "trial_key": f"old{s}", "seed": s} for s in range(2)]  # no version: version 1
    new = [{**base, "trial_key": f"new{s}", "seed": s, "method_version": 2,
            "metrics": {**base["metrics"], "acc": 0.9}} for s in range(2)]
    def at_version(version: int):
        return _replace(registry, methods={**registry.methods,
                                           "kmeans": _replace(registry.methods["kmeans"], version=version)})

    bumped = at_version(2)
    board = build("demo", old + new, bumped)
    assert list(board.table["method_version"]) == [2]
    assert board.table["acc_mean"].tolist() == [0.9] and board.table["n_seeds"].tolist() == [2]
    assert board.meta["left_out"] == "records of older method versions left out: 2 of kmeans version 1 (now 2)"
    # Without a bump, the unversioned records are version 1 and nothing is left out.
    assert "left_out" not in build("demo", old, at_version(1)).meta


def test_the_ci_check_is_exact_on_the_recording_cpu_and_tolerant_elsewhere():
    from mvbench.leaderboard import (CHECK_TOLERANCE, FOREIGN_CPU_TOLERANCE, KEY_COLUMNS, check_mode,
                                     compare)

    committed = pd.DataFrame([{**{c: "" for c in KEY_COLUMNS}, "n_seeds": 2, "n_failed": 0,
                               "acc_mean": 0.80, "acc_std": 0.010, "device_name": "CPU A (1 threads)"}])
    tolerance, columns, mode = check_mode(committed, "CPU A (1 threads)")
    assert tolerance == CHECK_TOLERANCE and "acc_std" in columns and mode.startswith("exact")
    # Same model, other thread count: rounding differs, so tolerant.
    tolerance, columns, mode = check_mode(committed, "CPU A (2 threads)")
    assert tolerance == FOREIGN_CPU_TOLERANCE and "acc_std" not in columns and mode.startswith("tolerant")
    drifted = committed.assign(acc_mean=0.83, acc_std=0.05)  # a few labels flipped elsewhere
    assert not compare(drifted, committed, *check_mode(committed, "CPU A (1 threads)")[:2]).same
    assert compare(drifted, committed, *check_mode(committed, "CPU B (1 threads)")[:2]).same
    broken = committed.assign(acc_mean=0.60)  # a changed computation
    assert not compare(broken, committed, *check_mode(committed, "CPU B (1 threads)")[:2]).same
    assert not compare(committed.assign(n_seeds=1), committed, *check_mode(committed, "CPU B (1 threads)")[:2]).same
