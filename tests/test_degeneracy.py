"""Label-free degeneracy flags: the rules, the diagnostics methods report, the record, the
run and sweep output and the leaderboard."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mvbench.degeneracy import (DIAGNOSTICS_KEY, EMBEDDING_RELATIVE_STD_MIN, FLAT_MIN_EPOCHS, FLAT_RELATIVE,
                                UNIFORM_MARGIN, cluster_sizes, degeneracy_reasons, diagnostics,
                                record_reasons)
from mvbench.leaderboard import build
from mvbench.leaderboard_render import DEGENERATE_FOOTNOTE, markdown
from mvbench.progress import QuietProgress
from mvbench.runner import Trial
from mvbench.specs import MethodInput
from mvbench_plugins.methods import cvcl, dimvc_hia, dsimvc, gcfaggmvc, mflvc, proimp, rav
from run_helpers import run_trials

SMALL = {"samples": "60", "dims": "5"}
HEALTHY = np.arange(60) % 3


# --- the rules ----------------------------------------------------------------------------

def test_a_healthy_trial_has_no_reasons():
    extras = {"loss_history": {"pretrain": [3.0, 2.0, 1.0, 0.9, 0.8]},
              DIAGNOSTICS_KEY: {"embedding_relative_std": 0.6, "assignment_max_mean": 0.9}}
    assert degeneracy_reasons(cluster_sizes(HEALTHY), 3, extras) == []
    assert degeneracy_reasons(cluster_sizes(HEALTHY), 3, None) == []


def test_cluster_rules():
    assert degeneracy_reasons(cluster_sizes(np.zeros(40, dtype=int)), 40, {}) == [
        "one cluster: all 40 samples have one label (K = 40)"]
    assert degeneracy_reasons(cluster_sizes(np.arange(40) % 4), 10, {}) == [
        "few clusters: 4.00 effective of K = 10 (4 labels used, largest cluster 10 of 40 samples; fewer than K/2)"]
    assert degeneracy_reasons(cluster_sizes(np.arange(40) % 5), 10, {}) == []  # exactly K/2 equal clusters is not fewer
    # CVCL on synthetic3d: a second cluster of 2 samples does not make 2 clusters (1.02 effective).
    near_collapse = np.repeat([0, 1], [598, 2])
    assert degeneracy_reasons(cluster_sizes(near_collapse), 3, {}) == [
        "few clusters: 1.02 effective of K = 3 (2 labels used, largest cluster 598 of 600 samples; fewer than K/2)"]
    assert degeneracy_reasons(cluster_sizes(np.repeat([0, 1], [309, 291])), 3, {}) == []  # two real clusters of K = 3
    assert degeneracy_reasons(cluster_sizes(np.zeros(5, dtype=int)), 1, {}) == []  # K = 1: one cluster is the task


def test_stored_records_are_checked_again_by_the_current_rules():
    # CVCL's synthetic3d records ran under the distinct-labels rule and say [], but their sizes
    # (598 / 2 / 0, reported in extras) are a collapse under the effective-clusters rule.
    old = {"status": "ok", "n_clusters": 3, "degenerate": [], "extras": {"cluster_sizes": [598, 2, 0]}}
    assert record_reasons(old) == [
        "few clusters: 1.02 effective of K = 3 (2 labels used, largest cluster 598 of 600 samples; fewer than K/2)"]
    assert record_reasons({**old, "cluster_sizes": [300, 300]}) == []  # the runner's sizes come first
    # Without sizes nothing can be recomputed: the reasons stored at run time stand.
    assert record_reasons({"n_clusters": 3, "degenerate": ["one cluster: x"]}) == ["one cluster: x"]
    assert record_reasons({"n_clusters": 3, "degenerate": None}) == []
    assert record_reasons({**old, "extras": {"cluster_sizes": "598/2"}}) == []  # a plugin's odd extras: ignored
    flat = {"loss_history": {"train": [1.0] * FLAT_MIN_EPOCHS}}
    assert record_reasons({"n_clusters": 3, "cluster_sizes": [20, 20, 20], "extras": flat}) == [
        f"flat loss: stage 'train' stayed at 1 for all {FLAT_MIN_EPOCHS} epochs"]
    board = build("demo", [{**old, "trial_key": "k", "method": "m", "dataset": "d", "missing": "none", "seed": 0,
                            "metrics": {"acc": 0.34}}], registry=None)
    assert list(board.table["n_degenerate"]) == [1]


def test_flat_loss_means_constant_to_float_precision_over_a_whole_stage():
    def reasons(losses):
        return degeneracy_reasons(cluster_sizes(HEALTHY), 3, {"loss_history": {"contrastive": losses}})

    flat = [8.4337] * FLAT_MIN_EPOCHS
    assert reasons(flat) == [f"flat loss: stage 'contrastive' stayed at 8.4337 for all {FLAT_MIN_EPOCHS} epochs"]
    wiggle = [8.4337 * (1 + FLAT_RELATIVE / 2 * (i % 2)) for i in range(FLAT_MIN_EPOCHS)]
    assert reasons(wiggle)  # within the relative precision: still flat
    assert reasons([8.4337 * (1 + 3 * FLAT_RELATIVE)] + flat[1:]) == []  # it moved
    assert reasons(flat[:-1]) == []  # too few epochs to say
    assert reasons([0.0] * FLAT_MIN_EPOCHS)  # an exactly zero loss did not move either
    # A stage of named parts is judged on its total; a constant part alone (e.g. an inert
    # L_S) is not a degenerate trial.
    parts = {"total": [3.0, 2.0, 1.5, 1.2, 1.0], "s": flat}
    assert degeneracy_reasons(cluster_sizes(HEALTHY), 3, {"loss_history": {"train": parts}}) == []
    assert degeneracy_reasons(cluster_sizes(HEALTHY), 3, {"loss_history": {"train": {"total": flat}}})


def test_embedding_and_assignment_rules_and_their_thresholds():
    def reasons(**found):
        return degeneracy_reasons(cluster_sizes(HEALTHY), 5, {DIAGNOSTICS_KEY: found})

    assert reasons(embedding_relative_std=EMBEDDING_RELATIVE_STD_MIN / 2) == [
        "constant embedding: std across samples 0.005 of the row norm (< 0.01)"]
    assert reasons(embedding_relative_std=EMBEDDING_RELATIVE_STD_MIN) == []
    uniform = 1 / 5
    assert reasons(assignment_max_mean=uniform + 0.0002) == [
        "uniform assignments: mean largest assignment 0.2002, uniform 0.2000 (K = 5)"]
    assert reasons(assignment_max_mean=uniform + 2 * UNIFORM_MARGIN * (1 - uniform)) == []


def test_extras_in_another_shape_are_ignored_not_an_error():
    odd = {"loss_history": {"a": "text", "b": [1.0, math.nan, 1.0, 1.0, 1.0], "c": {"rec": [1.0] * 9}},
           DIAGNOSTICS_KEY: {"embedding_relative_std": "0", "assignment_max_mean": True}}
    assert degeneracy_reasons(cluster_sizes(HEALTHY), 3, odd) == []
    assert degeneracy_reasons(cluster_sizes(HEALTHY), 3, {"loss_history": [1.0] * 9, DIAGNOSTICS_KEY: [0.0]}) == []


def test_diagnostics_are_scale_free_statistics_of_the_final_state():
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    spread = diagnostics(x)["embedding_relative_std"]
    assert 0.9 < spread <= 1.0  # centred noise: almost all of the norm is spread
    assert diagnostics(1000 * x)["embedding_relative_std"] == pytest.approx(spread)
    assert diagnostics(torch.ones(50, 8))["embedding_relative_std"] == 0.0
    assert diagnostics(torch.zeros(50, 8))["embedding_relative_std"] == 0.0
    found = diagnostics(x, torch.full((50, 4), 0.25))
    assert found["assignment_max_mean"] == pytest.approx(0.25)


# --- the built-in deep methods report diagnostics ------------------------------------------

def tiny_input(options: dict, *, missing: bool = False) -> MethodInput:
    g = torch.Generator().manual_seed(0)
    views = [torch.rand(48, 7, generator=g), torch.rand(48, 5, generator=g)]
    mask = torch.ones(48, 2, dtype=torch.bool)
    if missing:
        mask[::4, 1] = False
        views[1] = torch.where(mask[:, 1, None], views[1], torch.nan)
    return MethodInput(views=views, mask=mask, n_clusters=3, options=options, seed=0,
                       device=torch.device("cpu"), precision="fp32", progress=QuietProgress())


DEEP = {spec.name: spec for spec in (mflvc.SPEC, rav.SPEC, dimvc_hia.SPEC, cvcl.SPEC, dsimvc.SPEC,
                                     gcfaggmvc.SPEC, proimp.SPEC)}
SOFT_ASSIGNMENTS = {"mflvc", "rav", "dimvc-hia", "cvcl", "dsimvc"}  # the others label by k-means


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_methods_report_diagnostics(name):
    spec = DEEP[name]
    options = {o.name: o.default for o in spec.options} | dict(spec.smoke_options)
    out = spec.fit_predict(tiny_input(options, missing=spec.handles_missing))
    found = out.extras[DIAGNOSTICS_KEY]
    assert 0 < found["embedding_relative_std"] <= 1
    if name in SOFT_ASSIGNMENTS:
        assert 1 / 3 <= found["assignment_max_mean"] <= 1
    else:
        assert "assignment_max_mean" not in found


# --- records, run and sweep output, leaderboards -------------------------------------------

@pytest.fixture(scope="module")
def records(tmp_path_factory):
    trials = [Trial(method=method, dataset="synthetic", seed=seed, dataset_options=SMALL)
              for method in ("one-cluster", "constant-embedding", "kmeans") for seed in (0, 1)]
    return run_trials(trials, tmp_path_factory.mktemp("degenerate"))


def test_records_carry_the_reasons_and_keep_their_metrics(records):
    by_method = {r["method"]: r for r in records if r["seed"] == 0}
    one = by_method["one-cluster"]
    assert one["status"] == "ok" and one["degenerate"] == ["one cluster: all 60 samples have one label (K = 3)"]
    assert one["metrics"]["acc"] == pytest.approx(1 / 3) and one["metrics"]["nmi"] == 0.0  # as computed
    constant = by_method["constant-embedding"]
    assert constant["status"] == "ok"
    assert constant["degenerate"] == ["constant embedding: std across samples 0 of the row norm (< 0.01)"]
    assert by_method["kmeans"]["degenerate"] == []
    sizes = by_method["kmeans"]["cluster_sizes"]
    assert sum(sizes) == 60 and sizes == sorted(sizes, reverse=True)
    assert by_method["one-cluster"]["cluster_sizes"] == [60]


def test_leaderboard_counts_and_marks_degenerate_cells(records):
    board = build("demo", records, registry=None)
    counts = dict(zip(board.table["method"], board.table["n_degenerate"]))
    assert counts == {"one-cluster": 2, "constant-embedding": 2, "kmeans": 0}
    assert dict(zip(board.table["method"], board.table["n_seeds"]))["one-cluster"] == 2  # still counted
    page = markdown(board)
    assert "| 2 (2 degenerate †)" in page and page.count(DEGENERATE_FOOTNOTE) == 1
    assert "n_degenerate" in board.meta["definitions"]
    healthy = markdown(build("demo", [r for r in records if r["method"] == "kmeans"], registry=None))
    assert "†" not in healthy


def test_run_and_sweep_print_one_line_per_degenerate_seed(cli, tmp_path):
    code, out, _ = cli("-p", "mvbench_testplugins", "run", "-m", "one-cluster", "-d", "synthetic",
                       "--set", "dataset.samples=60", "--seeds", "2", "-q", "--out", str(tmp_path / "run"))
    assert code == 0
    lines = [line for line in out.splitlines() if "degenerate:" in line]
    assert lines == [f"seed {s} degenerate: one cluster: all 60 samples have one label (K = 3)" for s in (0, 1)]
    code, out, _ = cli("-p", "mvbench_testplugins", "sweep", "-m", "constant-embedding,kmeans", "-d", "synthetic",
                       "--set", "dataset.samples=60", "--seeds", "2", "-q", "--out", str(tmp_path / "sweep"))
    assert code == 0
    assert "2 of the ok trials look degenerate" in out
    flagged = [line for line in out.splitlines() if "; degenerate: constant embedding" in line]
    assert len(flagged) == 2 and all("constant-embedding" in line for line in flagged)
