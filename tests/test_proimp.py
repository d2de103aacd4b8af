"""ProImp: losses against hand-computed and plain-numpy values, prototype matching, imputation,
ablations, missing rows never read, determinism, a tiny CLI run."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mvbench.errors import MvbenchError
from mvbench.options import resolve_options
from mvbench.progress import QuietProgress
from mvbench.results import read_records
from mvbench.specs import MethodInput
from mvbench_plugins.methods import proimp
from mvbench_plugins.methods.proimp import (
    SPEC,
    Config,
    batch_losses,
    epoch_batches,
    prepared_views,
    readout,
    zscore_statistics,
)
from mvbench_plugins.methods.proimp_parts import (
    ProImpNet,
    attention_regulariser,
    imputed_representation,
    instance_loss,
    match_prototypes,
    peaked_prototype_contrast,
    prototype_counts,
    prototype_loss,
)

from run_helpers import assert_seeded

K = 3
DIMS = (7, 5)
TINY = {"hidden": [16, 16, 16], "dim": 8, "batch_size": 16, "epochs": 4, "pretrain_epochs": 2}


def _mask(n: int, seed: int, p: float = 0.3, n_views: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n_views, generator=g) > p
    mask[~mask.any(dim=1), 0] = True
    return mask


def _views(n: int, seed: int, mask: torch.Tensor, fill: float = float("nan"), dims=DIMS):
    """Clustered views with ``fill`` in every missing row, and the labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    views = []
    for v, d in enumerate(dims):
        centers = 3 * torch.randn(K, d, generator=g)
        x = centers[y] + 0.5 * torch.randn(n, d, generator=g)
        views.append(torch.where(mask[:, v, None], x, torch.tensor(fill)))
    return views, y


def _fit(xs, mask, seed=0, precision="fp32", **options):
    inp = MethodInput(views=xs, mask=mask, n_clusters=K, options={**TINY, **options}, seed=seed,
                      device=torch.device("cpu"), precision=precision, progress=QuietProgress())
    return SPEC.fit_predict(inp)


def _model(seed: int = 0, k: int = K) -> ProImpNet:
    torch.manual_seed(seed)
    return ProImpNet(DIMS, k, hidden=[16, 16, 16], dim=8, activations=["relu", "relu"], dropout=0.2)


def _cfg(**options) -> Config:
    return Config.from_options({**TINY, **options})


def _np_softmax_ce(logits: np.ndarray, target: int) -> float:
    top = logits.max()
    return float(-(logits[target] - top) + np.log(np.exp(logits - top).sum()))


# --- prototype contrast -----------------------------------------------------------------------

def _rotation_case(cos: float) -> tuple[torch.Tensor, torch.Tensor]:
    """K = 2: view-2 prototypes x0 = e1, x1 = e2; view-1 ones rotated by theta (cos theta = cos)."""
    sin = math.sqrt(1 - cos**2)
    x0, x1 = [1.0, 0.0], [0.0, 1.0]
    y0, y1 = [cos, sin], [-sin, cos]
    u = torch.tensor([x0, x1, y0, y1])
    w = torch.tensor([y0, y1, x0, x1])
    return u, w


def test_prototype_contrast_hand_computed_at_identical_and_peak_cosine():
    # Identical prototypes (cosine 1), tau 2: positive logit 0.375 - |0.5 - 0.375| = 0.25, the
    # two negatives are 0 and 0 (orthogonal) and the self copy is excluded:
    # loss = -0.25 + log(e^0.25 + 2) for every anchor.
    u, w = _rotation_case(1.0)
    got = peaked_prototype_contrast(u, w, temperature=2.0, peak=0.75)
    assert float(got) == pytest.approx(0.939069931111919, abs=1e-6)
    # The plain positive (peak 1): logit 0.5, loss = -0.5 + log(e^0.5 + 2).
    plain = peaked_prototype_contrast(u, w, temperature=2.0, peak=1.0)
    assert float(plain) == pytest.approx(0.7943767694176431, abs=1e-6)
    # At cosine 0.75 the positive logit is at its peak 0.375; the negatives are +-sin/2 (two
    # anchors each) and 0.
    u, w = _rotation_case(0.75)
    got = peaked_prototype_contrast(u, w, temperature=2.0, peak=0.75)
    assert float(got) == pytest.approx(0.8760431447348426, abs=1e-6)


def test_prototype_contrast_is_lowest_at_positive_cosine_075():
    def loss_at(cos: float, peak: float) -> float:
        # Anchor r = e_r; its positive cos * e_r + sin * f_r; every negative is orthogonal (0),
        # so the loss falls as the positive logit rises.
        k, eye = 3, torch.eye(12)
        u = eye[: 2 * k]
        w = cos * eye[: 2 * k] + math.sqrt(max(1 - cos**2, 0.0)) * eye[2 * k:]
        return float(peaked_prototype_contrast(u, w, 2.0, peak))

    cosines = np.linspace(0.0, 1.0, 41)
    peaked = [loss_at(c, 0.75) for c in cosines]
    assert cosines[int(np.argmin(peaked))] == pytest.approx(0.75)
    assert loss_at(1.0, 0.75) == pytest.approx(loss_at(0.5, 0.75), abs=1e-6)
    plain = [loss_at(c, 1.0) for c in cosines]
    assert cosines[int(np.argmin(plain))] == pytest.approx(1.0)


def test_prototype_contrast_matches_numpy_loops():
    g = torch.Generator().manual_seed(3)
    k, tau, peak = 4, 2.0, 0.75
    u = F.normalize(torch.randn(2 * k, 6, generator=g), dim=1)
    w = F.normalize(torch.randn(2 * k, 6, generator=g), dim=1)
    got = float(peaked_prototype_contrast(u, w, tau, peak))
    un, wn = u.numpy().astype(np.float64), w.numpy().astype(np.float64)
    lam = peak / tau
    losses = []
    for r in range(2 * k):
        positive = lam - abs(un[r] @ wn[r] / tau - lam)
        negatives = [un[r] @ wn[c] / tau for c in range(2 * k) if c not in (r, (r + k) % (2 * k))]
        assert len(negatives) == 2 * k - 2
        losses.append(_np_softmax_ce(np.array([positive, *negatives]), 0))
    assert got == pytest.approx(float(np.mean(losses)), abs=1e-5)


def test_prototype_loss_orders_view1_by_matching_and_swaps_halves():
    model = _model()
    model.train()
    g = torch.Generator().manual_seed(4)
    c1, c2 = torch.randn(K, 8, generator=g), torch.randn(K, 8, generator=g)
    pi = torch.tensor([2, 0, 1])
    got = prototype_loss(model, c1, c2, pi, 2.0, 0.75)
    # Two separate head calls, as the authors: [c2; c1[pi]] and [c1[pi]; c2].
    c_tilde = torch.stack([c1[2], c1[0], c1[1]])
    u = F.normalize(model.prototype_head(torch.cat([c2, c_tilde])), dim=1)
    w = F.normalize(model.prototype_head(torch.cat([c_tilde, c2])), dim=1)
    torch.testing.assert_close(got, peaked_prototype_contrast(u, w, 2.0, 0.75), atol=1e-5, rtol=1e-5)


# --- regulariser and instance loss ------------------------------------------------------------

def test_attention_regulariser_matches_numpy():
    g = torch.Generator().manual_seed(5)
    a1 = torch.softmax(2 * torch.randn(6, 4, generator=g), dim=1)
    a2 = torch.softmax(2 * torch.randn(6, 4, generator=g), dim=1)

    def expected(balance, sharp):
        total = 0.0
        for a in (a1.double().numpy(), a2.double().numpy()):
            p = a.mean(axis=0)
            total += balance * 0.5 * (math.log(4) + (p * np.log(p)).sum())
            total += sharp * (-(a * np.log(a + 1e-8)).sum(axis=1)).mean()
        return total

    for balance, sharp in [(1.0, 0.01), (1.0, 0.0), (0.0, 0.01), (2.0, 0.5)]:
        got = attention_regulariser([a1, a2], balance, sharp)
        assert float(got) == pytest.approx(expected(balance, sharp), abs=1e-6)
    # Uniform attention: balanced (0) and maximally unsharp (log K per row).
    flat = torch.full((5, 4), 0.25)
    assert float(attention_regulariser([flat, flat], 1.0, 0.0)) == pytest.approx(0.0, abs=1e-7)
    assert float(attention_regulariser([flat, flat], 0.0, 0.01)) == pytest.approx(0.02 * math.log(4), abs=1e-6)


def test_instance_loss_is_nt_xent_of_the_normalised_head_outputs():
    model = _model()
    model.instance_head = nn.Identity()  # isolate the contrast itself
    g = torch.Generator().manual_seed(6)
    h1, h2 = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    got = float(instance_loss(model, h1, h2, 0.5))
    z = F.normalize(torch.cat([h1, h2]), dim=1).double().numpy()
    losses = []
    for r in range(10):
        logits = np.array([z[r] @ z[c] / 0.5 for c in range(10) if c != r])
        target = [c for c in range(10) if c != r].index((r + 5) % 10)
        losses.append(_np_softmax_ce(logits, target))
    assert got == pytest.approx(float(np.mean(losses)), abs=1e-5)


# --- prototype matching -------------------------------------------------------------------------

def test_prototype_counts_and_hungarian_matching():
    assign1 = torch.tensor([0, 0, 1, 2, 2, 1, 0])
    assign2 = torch.tensor([1, 1, 2, 0, 0, 0, 2])
    counts = prototype_counts(assign1, assign2, 3)
    expected = np.zeros((3, 3), dtype=np.int64)
    for i, j in zip(assign1.tolist(), assign2.tolist()):
        expected[i, j] += 1
    assert np.array_equal(counts.numpy(), expected)
    pi = match_prototypes(counts)
    # view-2 prototype 1 <- view-1 prototype 0, 0 <- 2, 2 <- 1
    assert pi.tolist() == [2, 0, 1]


def test_matching_is_the_best_permutation():
    rng = np.random.default_rng(7)
    for _ in range(5):
        counts = torch.from_numpy(rng.integers(0, 20, size=(5, 5)))
        pi = match_prototypes(counts).numpy()
        assert sorted(pi.tolist()) == list(range(5))
        best = max(sum(int(counts[p[j], j]) for j in range(5)) for p in itertools.permutations(range(5)))
        assert sum(int(counts[pi[j], j]) for j in range(5)) == best


# --- imputation and readout ----------------------------------------------------------------------

def test_imputation_reorders_attention_through_the_matching():
    model = _model()
    model.eval()
    g = torch.Generator().manual_seed(8)
    pi = torch.tensor([1, 2, 0])  # view-2 prototype j <-> view-1 prototype pi[j]
    for target in (0, 1):
        source = 1 - target
        x = torch.randn(4, DIMS[source], generator=g)
        with torch.no_grad():
            got = imputed_representation(model, target, x, pi, residual=True)
            s = model.projected(source, x)
            a = model.attentions[source].attention(s, F.normalize(model.prototypes[source], dim=1))
            # Column i of the reordered attention = the source prototype matched to target prototype i.
            partner = {int(j): int(pi[j]) for j in range(K)} if source == 0 else \
                      {int(pi[j]): int(j) for j in range(K)}
            a_target = torch.stack([a[:, partner[i]] for i in range(K)], dim=1)
            values = model.attentions[target].value_proto(
                model.attentions[target].norm_proto(F.normalize(model.prototypes[target], dim=1)))
            mixed = F.normalize(a_target @ values, dim=1) + F.normalize(s, dim=1)
            expected = F.normalize(model.fuse(mixed), dim=1)
            torch.testing.assert_close(got, expected)
            no_residual = imputed_representation(model, target, x, pi, residual=False)
            expected = F.normalize(model.fuse(F.normalize(a_target @ values, dim=1)), dim=1)
            torch.testing.assert_close(no_residual, expected)


@pytest.mark.parametrize("impute", ["prototype", "cross_copy", "zero"])
def test_readout_fills_missing_views_as_configured(impute):
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, False], [True, True]])
    views, _ = _views(5, 9, mask)
    xs, _ = prepared_views(views, mask, "observed")
    model = _model()
    cfg = _cfg(impute=impute)
    feats = readout(model, xs, mask, torch.tensor([0, 1, 2]), cfg, torch.device("cpu"), "fp32")
    assert feats.shape == (5, 16) and torch.isfinite(feats).all()
    first, second = feats[:, :8], feats[:, 8:]
    observed_norms = torch.cat([first[mask[:, 0]].norm(dim=1), second[mask[:, 1]].norm(dim=1)])
    torch.testing.assert_close(observed_norms, torch.ones_like(observed_norms))
    if impute == "zero":
        assert torch.all(second[1] == 0) and torch.all(first[2] == 0)
    elif impute == "cross_copy":
        torch.testing.assert_close(second[1], first[1])
        torch.testing.assert_close(first[2], second[2])
    else:
        assert second[1].norm() == pytest.approx(1.0, abs=1e-5) and not torch.allclose(second[1], first[1])


# --- normalisation, batches ----------------------------------------------------------------------

def test_zscore_statistics_over_observed_or_zero_filled_rows():
    x = torch.tensor([[1.0, 2.0], [float("nan"), float("nan")], [3.0, 6.0]])
    observed = torch.tensor([True, False, True])
    mean, std = zscore_statistics(x, observed, "observed")
    assert (mean, std) == pytest.approx((3.0, float(np.std([1, 2, 3, 6], ddof=1))))
    mean, std = zscore_statistics(x, observed, "masked_all")
    zero_filled = [1, 2, 0, 0, 3, 6]
    assert (mean, std) == pytest.approx((np.mean(zero_filled), float(np.std(zero_filled, ddof=1))))
    xs, stats = prepared_views([x], observed[:, None], "observed")
    assert torch.isfinite(xs[0]).all() and torch.all(xs[0][1] == 0)
    torch.testing.assert_close(xs[0][0], (x[0] - 3.0) / stats[0][1])


def test_last_batch_of_one_joins_the_previous_batch():
    g = torch.Generator().manual_seed(0)
    batches = epoch_batches(9, 4, g, torch.device("cpu"))
    assert [len(b) for b in batches] == [4, 5]
    assert sorted(torch.cat(batches).tolist()) == list(range(9))
    assert [len(b) for b in epoch_batches(10, 4, g, torch.device("cpu"))] == [4, 4, 2]
    assert [len(b) for b in epoch_batches(3, 4, g, torch.device("cpu"))] == [3]


def test_training_with_a_single_sample_remainder_runs():
    mask = torch.ones(17, 2, dtype=torch.bool)  # 17 complete pairs, batch 16
    views, _ = _views(17, 1, mask)
    out = _fit(views, mask)
    assert out.labels.shape == (17,)


# --- ablations -----------------------------------------------------------------------------------

def _batch(b: int = 12):
    g = torch.Generator().manual_seed(2)
    return torch.randn(b, DIMS[0], generator=g), torch.randn(b, DIMS[1], generator=g)


def test_full_loss_parts_and_their_sum():
    model = _model()
    parts = batch_losses(model, *_batch(), torch.tensor([0, 1, 2]), _cfg())
    assert set(parts) == {"ins", "reg", "pro", "total"}
    torch.testing.assert_close(parts["total"], parts["ins"] + parts["reg"] + parts["pro"])
    # before the matching exists (pre-training), no L_pro
    assert set(batch_losses(model, *_batch(), None, _cfg())) == {"ins", "reg", "total"}


def test_use_pro_off_removes_the_term_and_never_runs_h2(monkeypatch):
    model = _model()

    def fail(*_args):
        raise AssertionError("H2 must not run without L_pro")

    monkeypatch.setattr(model.prototype_head, "forward", fail)
    parts = batch_losses(model, *_batch(), torch.tensor([0, 1, 2]), _cfg(use_pro=False))
    assert set(parts) == {"ins", "reg", "total"}


def test_use_reg_off_and_zero_weights_remove_their_terms():
    x1, x2 = _batch()
    pi = torch.tensor([0, 1, 2])
    full = batch_losses(_model(), x1, x2, pi, _cfg())
    assert "reg" not in batch_losses(_model(), x1, x2, pi, _cfg(use_reg=False))
    no_balance = batch_losses(_model(), x1, x2, pi, _cfg(reg_balance=0.0))["reg"].detach()
    no_sharp = batch_losses(_model(), x1, x2, pi, _cfg(reg_sharp=0.0))["reg"].detach()
    torch.testing.assert_close(no_balance + no_sharp, full["reg"].detach())
    assert float(no_balance) > 0 and float(no_sharp) >= 0


def test_pro_peak_one_is_the_plain_positive():
    g = torch.Generator().manual_seed(11)
    u = F.normalize(torch.randn(6, 5, generator=g), dim=1)
    # positives close to their anchors (cosine above 0.75), where the peak matters
    w = F.normalize(u + 0.1 * torch.randn(6, 5, generator=g), dim=1)
    assert float((u * w).sum(dim=1).min()) > 0.75
    plain = F.cross_entropy(
        (u @ w.T / 2.0).masked_fill(torch.eye(6).roll(3, dims=1).bool(), float("-inf")), torch.arange(6))
    torch.testing.assert_close(peaked_prototype_contrast(u, w, 2.0, 1.0), plain)
    assert not torch.allclose(peaked_prototype_contrast(u, w, 2.0, 0.75), plain)


def test_ablations_change_the_loss_history_end_to_end():
    mask = _mask(40, 3)
    views, _ = _views(40, 2, mask)
    full = _fit(views, mask)
    assert set(full.extras["loss_parts"]["train"]) == {"ins", "reg", "pro"}
    assert set(full.extras["loss_parts"]["pretrain"]) == {"ins", "reg"}
    assert set(_fit(views, mask, use_pro=False).extras["loss_parts"]["train"]) == {"ins", "reg"}
    assert set(_fit(views, mask, use_reg=False).extras["loss_parts"]["train"]) == {"ins", "pro"}


# --- end to end ----------------------------------------------------------------------------------

@pytest.mark.parametrize("norm_stats", ["observed", "masked_all"])
def test_missing_rows_are_never_read(norm_stats):
    mask = _mask(40, 4, p=0.4)
    assert (~mask).any()
    with_nan, _ = _views(40, 5, mask, fill=float("nan"))
    with_garbage, _ = _views(40, 5, mask, fill=1e30)
    a, b = _fit(with_nan, mask, norm_stats=norm_stats), _fit(with_garbage, mask, norm_stats=norm_stats)
    assert np.array_equal(a.labels, b.labels)
    assert a.extras["loss_history"] == b.extras["loss_history"]
    assert a.extras["zscore_mean_std"] == b.extras["zscore_mean_std"]
    assert all(math.isfinite(x) for stage in a.extras["loss_history"].values() for x in stage)
    assert a.labels.min() >= 0 and a.labels.max() < K


def test_same_seed_same_labels_and_the_callers_rng_is_left_alone():
    mask = _mask(40, 6)
    views, _ = _views(40, 7, mask)
    assert_seeded(lambda seed: _fit(views, mask, seed=seed), 5)


def test_extras_views_option_and_matching_schedule():
    mask = _mask(40, 8, n_views=3)
    mask[:, 2] = True
    mask[~mask[:, :2].any(dim=1), 0] = True
    views, _ = _views(40, 9, mask, dims=(7, 5, 4))
    out = _fit(views, mask, views=[2, 0], match_update="every_epoch", epochs=5, pretrain_epochs=2)
    e = out.extras
    assert e["views_used"] == [2, 0]
    assert e["n_train_pairs"] == int((mask[:, 2] & mask[:, 0]).sum())
    assert sorted(e["prototype_matching"]) == list(range(K))
    assert 0 <= e["matching_agreement"] <= 1
    assert len(e["epoch_seconds"]["matching"]) == 3 + 1  # every train epoch and the readout
    once = _fit(views, mask, epochs=5, pretrain_epochs=2).extras
    assert once["views_used"] == [0, 1] and len(once["epoch_seconds"]["matching"]) == 1
    # pre-training longer than training: the readout still matches once
    late = _fit(views, mask, epochs=2, pretrain_epochs=5).extras
    assert len(late["loss_history"]["train"]) == 0 and len(late["epoch_seconds"]["matching"]) == 1


def test_uncovered_samples_are_refused_or_read_out_as_the_mean_row():
    mask = _mask(40, 14, n_views=3)
    mask[:, 2] = True
    mask[~mask[:, :2].any(dim=1), 0] = True
    uncovered = torch.tensor([3, 17, 29])
    mask[uncovered, :2] = False
    views, _ = _views(40, 15, mask, dims=(7, 5, 4))
    with pytest.raises(MvbenchError, match="3 samples have neither of views .* uncovered=mean_fill"):
        _fit(views, mask)
    out = _fit(views, mask, uncovered="mean_fill")
    assert out.extras["n_uncovered_mean_filled"] == 3
    assert out.extras["n_train_pairs"] == int(mask[:, :2].all(dim=1).sum())  # never trained on
    # Identical inputs (the mean row, the same imputation) give one cluster.
    assert len(set(out.labels[uncovered.numpy()])) == 1
    # The mean row is the mean of the prepared observed rows; covered samples are untouched.
    xs = [torch.randn(6, 2), torch.randn(6, 3)]
    m = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0], [1, 1], [0, 0]], dtype=torch.bool)
    filled_xs, filled = proimp.mean_filled(xs, m)
    assert filled[[3, 5], 0].all() and not filled[[3, 5], 1].any()
    assert torch.equal(filled[[0, 1, 2, 4]], m[[0, 1, 2, 4]])
    assert torch.allclose(filled_xs[0][3], xs[0][[0, 1, 4]].mean(dim=0))
    assert torch.equal(filled_xs[0][[0, 1, 2, 4]], xs[0][[0, 1, 2, 4]]) and filled_xs[1] is xs[1]


def test_bf16_runs_finite():
    mask = _mask(30, 10)
    views, _ = _views(30, 11, mask)
    out = _fit(views, mask, precision="bf16", epochs=2, pretrain_epochs=1)
    assert all(math.isfinite(x) for stage in out.extras["loss_history"].values() for x in stage)


def test_input_errors():
    mask = _mask(20, 12, n_views=3)
    views, _ = _views(20, 13, mask, dims=(7, 5, 4))
    with pytest.raises(MvbenchError, match="two different views"):
        _fit(views, mask, views=[1, 1])
    with pytest.raises(MvbenchError, match="out of range"):
        _fit(views, mask, views=[0, 3])
    only_third = mask.clone()
    only_third[0] = torch.tensor([False, False, True])
    with pytest.raises(MvbenchError, match="neither of views"):
        _fit(views, only_third)
    single = torch.zeros(20, 2, dtype=torch.bool)
    single[:, 0] = True
    single[0, 1] = True
    with pytest.raises(MvbenchError, match="fewer than 2 samples"):
        _fit(_views(20, 13, single)[0], single)
    with pytest.raises(MvbenchError, match="1 or 2 values"):
        _fit(views, mask, activations=["relu", "relu", "relu"])
    with pytest.raises(MvbenchError, match="did you mean"):
        Config.from_options({"use_proo": False})


def test_spec_presets_and_variants():
    assert SPEC.name == "proimp" and SPEC.handles_missing and SPEC.version == 1
    assert proimp.mvbench_methods() == [SPEC]
    for preset in SPEC.presets.values():
        resolve_options(SPEC.options, preset)
    assert Config.from_options(SPEC.presets["cub"]).activations == ("sigmoid", "relu")
    assert Config.from_options(SPEC.presets["cub"]).hidden == (512, 1024, 1024)
    ablations = {o.name for o in SPEC.options if o.ablation}
    assert {"use_pro", "use_reg", "impute", "pro_peak"} <= ablations
    for name, variant in SPEC.variants.items():
        assert name.startswith("proimp-")
        resolve_options(SPEC.options, variant.options)


def test_tiny_cli_run_with_get_mask(cli, tmp_path):
    tiny = [f"--set={name}={value}" for name, value in
            {"dataset.samples": 60, "dataset.views": 2, "dataset.dims": 5, "hidden": "16,16,16",
             "dim": 8, "batch_size": 16, "epochs": 2, "pretrain_epochs": 1}.items()]
    code, _, err = cli("-p", "mvbench_plugins.methods.proimp", "-p", "mvbench_plugins.missingness.get_mask",
                       "run", "--method", "proimp", "--dataset", "synthetic", "--missing", "get-mask",
                       "--rate", "0.5", "--seeds", "1,2", *tiny, "--out", str(tmp_path), "-q")
    assert code == 0, err
    records = read_records(tmp_path / "trials.jsonl")
    assert [r["seed"] for r in records] == [1, 2] and all(r["status"] == "ok" for r in records)
    for r in records:
        assert r["missing"] == "get-mask" and r["fill"] is None
        assert r["incomplete_fraction"] == pytest.approx(0.5)  # 2 views: exactly eta of the samples
        assert r["extras"]["views_used"] == [0, 1]
        assert r["extras"]["n_train_pairs"] == 30
